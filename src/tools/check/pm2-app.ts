/**
 * What `check` configures from, read as a worker would: the environment (and a script's
 * package.json), or a pm2 app of an ecosystem file, loaded as `pm2 start` loads it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { defaultHostFacts, resolveConfig } from '../../config/resolve';
import type { Env, HostFacts, ResolvedConfig } from '../../config/types';
import { readPm2 } from '../../worker/pm2';
import { checkMessages } from './messages';

/** A problem in what `check` was asked to do (a missing ecosystem file, an unknown app). */
export class CheckInputError extends Error {
  override name = 'CheckInputError';
}

/** The pm2 app `check --pm2` configures from, as pm2 would start it. */
export interface Pm2App {
  /** The ecosystem file, absolute. */
  file: string;
  name: string;
  /** pm2's `pm_cwd`: the app's `cwd` resolved from the current directory, as pm2 does. */
  cwd: string;
  /** pm2's `pm_exec_path`: the script resolved from `cwd`. */
  script: string;
  /** `--env <name>`: the `env_<name>` block pm2 would merge over `env`. */
  envName?: string;
  /** The app's `env`, values as pm2 keeps them (objects stringified, numbers left as numbers). */
  env: Record<string, unknown>;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Loads an ecosystem file the way `pm2 start <file>` does (pm2 7 `API.js` `_startJson`,
 * `Common.js` `verifyConfs`, `prepareAppConf`, `mergeEnvironmentVariables`): `apps` (or `pm2`,
 * or the file itself) holds the apps; the app's name defaults to its script's base name; a
 * relative `cwd` is resolved from the current directory, not from the file's folder.
 */
export function loadPm2App(file: string, appName?: string, envName?: string, cwd = process.cwd()): Pm2App {
  const abs = path.resolve(cwd, file);
  if (!fs.existsSync(abs)) throw new CheckInputError(`ecosystem file not found: ${abs}`);
  let loaded: unknown;
  try {
    loaded = require(abs) as unknown;
  } catch (e) {
    throw new CheckInputError(
      `cannot load the ecosystem file ${abs}: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`,
    );
  }
  const root = isObject(loaded) && 'default' in loaded && isObject(loaded.default) ? loaded.default : loaded;
  const list: unknown = isObject(root) ? (root.apps ?? root.pm2 ?? root) : root;
  const apps = (Array.isArray(list) ? list : [list]).filter(isObject);
  if (apps.length === 0)
    throw new CheckInputError(`${abs} defines no apps (expected module.exports = { apps: [...] })`);
  const scriptOf = (a: Record<string, unknown>) => [a.script, a.cmd, a.command].find((s) => typeof s === 'string');
  const nameOf = (a: Record<string, unknown>) => {
    if (typeof a.name === 'string' && a.name !== '') return a.name;
    const s = scriptOf(a);
    return typeof s === 'string' ? path.basename(s, path.extname(s)) : 'undefined';
  };
  const app = appName === undefined ? apps[0] : apps.find((a) => nameOf(a) === appName);
  if (app === undefined) {
    throw new CheckInputError(
      `no app named "${appName ?? ''}" in ${abs}; it has: ${apps.map((a) => JSON.stringify(nameOf(a))).join(', ')}`,
    );
  }
  const script = scriptOf(app);
  if (typeof script !== 'string') throw new CheckInputError(`app "${nameOf(app)}" in ${abs} has no script`);
  const appCwd = typeof app.cwd === 'string' && app.cwd !== '' ? path.resolve(cwd, app.cwd) : cwd;

  const env: Record<string, unknown> = {};
  const merge = (block: unknown) => {
    if (!isObject(block)) return;
    for (const [k, v] of Object.entries(block)) {
      if (v === undefined) continue;
      env[k] = typeof v === 'object' && v !== null ? JSON.stringify(v) : v;
    }
  };
  merge(app.env);
  if (envName !== undefined) {
    if (!isObject(app[`env_${envName}`])) {
      throw new CheckInputError(`app "${nameOf(app)}" in ${abs} has no env_${envName} block (--env ${envName})`);
    }
    merge(app[`env_${envName}`]);
  }
  return {
    file: abs,
    name: nameOf(app),
    cwd: appCwd,
    script: path.resolve(appCwd, script),
    ...(envName === undefined ? {} : { envName }),
    env,
  };
}

/** What `check` resolved, and from where. */
export interface CheckConfig {
  config: ResolvedConfig;
  /** The folder the app's `require()` resolves libraries from. */
  appDir: string;
  pm2?: Pm2App;
  /** With `pm2`: the app's OTEL_ / FORKTRACE_ settings the preload does not read, one sentence each. */
  unread?: string[];
  /** Every variable name the worker would see, and whether it is in the pm2 app's env (else the environment's). */
  names: Map<string, 'env' | 'pm2 env'>;
}

/**
 * Resolves the configuration through the same `resolveConfig` and (with `pm2`) the same `readPm2`
 * a worker's preload uses: the worker sees the ecosystem `env` only inside `pm2_env`, so that is
 * where it is put here too, and settings from it are reported as sourced from 'pm2 env'.
 */
export function resolveCheckConfig(opts: { pm2?: Pm2App; script?: string; env?: Env; cwd?: string }): CheckConfig {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  if (opts.pm2) {
    const app = opts.pm2;
    // The shape of pm2_env the preload reads (pm2 merges the app's env into its top level).
    const pm2Env = { ...app.env, name: app.name, pm_cwd: app.cwd, pm_exec_path: app.script, env: app.env };
    const pm2 = readPm2({ ...env, pm2_env: JSON.stringify(pm2Env) });
    const host: HostFacts = { ...defaultHostFacts(pm2), entryScript: app.script, cwd: app.cwd };
    const config = resolveConfig(undefined, pm2?.env ?? env, host);
    // A setting in the app's env that the preload did not take from pm2_env (null, or a value
    // pm2 would not turn into a usable string).
    const unread = Object.entries(app.env)
      .filter(([k]) => /^(OTEL_|FORKTRACE_)/.test(k) && !(pm2?.envKeys.has(k) ?? false))
      .map(([k, v]) => pm2EnvNotRead(k, v));
    const names = new Map<string, 'env' | 'pm2 env'>(Object.keys(env).map((k) => [k, 'env']));
    for (const k of Object.keys(app.env)) names.set(k, 'pm2 env');
    return { config, appDir: path.dirname(app.script), pm2: app, unread, names };
  }
  const script = opts.script === undefined ? undefined : path.resolve(cwd, opts.script);
  const host: HostFacts = { ...defaultHostFacts(), entryScript: script, cwd };
  return {
    config: resolveConfig(undefined, env, host),
    appDir: script ? path.dirname(script) : cwd,
    names: new Map(Object.keys(env).map((k) => [k, 'env'])),
  };
}

/** Why a key of the ecosystem `env` does not reach the preload, and the fix. */
export function pm2EnvNotRead(key: string, value: unknown): string {
  // The value is not shown: it may be a key, and one the preload never read is not among the
  // secrets that output is scrubbed of.
  return checkMessages.pm2EnvNotRead(key, value === null ? 'null' : `a ${typeof value}`);
}
