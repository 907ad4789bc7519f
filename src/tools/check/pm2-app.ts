/**
 * What `check` configures from, read as a worker would: the environment (and a script's
 * package.json), or a pm2 app of an ecosystem file, loaded as `pm2 start` loads it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isPlainObject } from '../../config/parsers';
import { defaultHostFacts, resolveConfig } from '../../config/resolve';
import type { Env, HostFacts, ResolvedConfig } from '../../config/types';
import type { Finding } from '../../types';
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
  /** `kill_timeout` as written (pm2 waits this long after SIGINT before SIGKILL), if it is. */
  killTimeout?: unknown;
  /** `node_args` (or its aliases `interpreter_args`, `interpreterArgs`), one argument each. */
  nodeArgs: string[];
  /** Whether pm2 runs the app in cluster mode, where workers start in the daemon's cwd. */
  cluster: boolean;
  /** The `env_<name>` blocks not merged (no `--env <name>`), with the OTEL_/FORKTRACE_ names only they set. */
  unmergedBlocks: { block: string; names: string[] }[];
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
  const root = isPlainObject(loaded) && 'default' in loaded && isPlainObject(loaded.default) ? loaded.default : loaded;
  const list: unknown = isPlainObject(root) ? (root.apps ?? root.pm2 ?? root) : root;
  const apps = (Array.isArray(list) ? list : [list]).filter(isPlainObject);
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
    if (!isPlainObject(block)) return;
    for (const [k, v] of Object.entries(block)) {
      if (v === undefined) continue;
      env[k] = typeof v === 'object' && v !== null ? JSON.stringify(v) : v;
    }
  };
  merge(app.env);
  if (envName !== undefined) {
    if (!isPlainObject(app[`env_${envName}`])) {
      throw new CheckInputError(`app "${nameOf(app)}" in ${abs} has no env_${envName} block (--env ${envName})`);
    }
    merge(app[`env_${envName}`]);
  }
  const unmergedBlocks: Pm2App['unmergedBlocks'] = [];
  // Only without --env: with one, the other blocks are for other deployments.
  for (const [key, block] of envName === undefined ? Object.entries(app) : []) {
    if (!key.startsWith('env_') || !isPlainObject(block)) continue;
    const names = Object.keys(block).filter((k) => /^(OTEL_|FORKTRACE_)/.test(k) && !(k in env));
    if (names.length > 0) unmergedBlocks.push({ block: key, names });
  }
  const rawArgs = app.node_args ?? app.interpreter_args ?? app.interpreterArgs;
  // pm2 takes node_args as an array or as one string it splits on spaces.
  const nodeArgs = Array.isArray(rawArgs)
    ? rawArgs.filter((a): a is string => typeof a === 'string')
    : typeof rawArgs === 'string'
      ? rawArgs.split(/\s+/).filter((a) => a !== '')
      : [];
  // pm2's Common.determineExecMode: `instances` without `exec_mode` means cluster mode (for node).
  const mode = typeof app.exec_mode === 'string' ? app.exec_mode : undefined;
  const interpreter = typeof app.interpreter === 'string' ? path.basename(app.interpreter) : 'node';
  const cluster =
    mode !== undefined ? mode.startsWith('cluster') : app.instances !== undefined && /(node|bun)$/.test(interpreter);
  return {
    file: abs,
    name: nameOf(app),
    cwd: appCwd,
    script: path.resolve(appCwd, script),
    ...(envName === undefined ? {} : { envName }),
    env,
    ...(app.kill_timeout === undefined ? {} : { killTimeout: app.kill_timeout }),
    nodeArgs,
    cluster,
    unmergedBlocks,
  };
}

/** pm2's `kill_timeout` when an app sets none (pm2 7 `lib/API/schema.json`). */
const PM2_DEFAULT_KILL_TIMEOUT_MS = 1600;
/** Room the app needs on top of forktrace's flush: its own close, and the process's exit. */
const KILL_TIMEOUT_MARGIN_MS = 500;

/** The preloads in node args: `--require X`, `-r X`, `--import X`, and their `=` forms. */
export function preloadsOf(args: readonly string[]): { flag: '--require' | '--import'; specifier: string }[] {
  const out: { flag: '--require' | '--import'; specifier: string }[] = [];
  for (let i = 0; i < args.length; i++) {
    const m = /^(--require|-r|--import)(?:=(.*))?$/.exec(args[i] ?? '');
    if (!m) continue;
    const specifier = m[2] ?? args[++i];
    if (specifier !== undefined && specifier !== '')
      out.push({ flag: m[1] === '--import' ? '--import' : '--require', specifier });
  }
  return out;
}

/**
 * What in the pm2 app, beyond its env, decides whether a worker starts, flushes before pm2's
 * SIGKILL, and sees its settings.
 */
function pm2AppFindings(app: Pm2App, config: ResolvedConfig): Finding[] {
  const findings: Finding[] = [];
  const flush = config.shutdownTimeoutMillis;
  const written = typeof app.killTimeout === 'string' ? Number(app.killTimeout) : app.killTimeout;
  const kill = typeof written === 'number' && Number.isFinite(written) ? written : undefined;
  const effective = kill ?? PM2_DEFAULT_KILL_TIMEOUT_MS;
  if (flush > 0 && effective < flush + KILL_TIMEOUT_MARGIN_MS)
    findings.push({
      code: 'pm2-kill-timeout',
      setting: 'shutdownTimeoutMillis',
      severity: 'note',
      text: checkMessages.killTimeoutShort(effective, kill === undefined, flush, flush + KILL_TIMEOUT_MARGIN_MS),
    });
  for (const { flag, specifier } of preloadsOf(app.nodeArgs)) {
    if (specifier.startsWith('file:') || path.isAbsolute(specifier)) {
      let file = specifier;
      try {
        file = specifier.startsWith('file:') ? fileURLToPath(specifier) : specifier;
      } catch {
        // Not a file URL Node would accept either; reported as missing below.
      }
      if (!fs.existsSync(file))
        findings.push({
          code: 'pm2-preload-missing',
          severity: 'problem',
          text: checkMessages.preloadMissing(flag, specifier),
        });
      continue;
    }
    // In cluster mode the workers are forked by pm2's daemon and start in its cwd, so a bare or
    // relative --require is resolved from there (README "pm2"); in fork mode from the app's cwd.
    findings.push({
      code: 'pm2-preload-relative',
      severity: app.cluster ? 'problem' : 'note',
      text: checkMessages.preloadRelative(flag, specifier, app.cluster),
    });
  }
  for (const { block, names } of app.unmergedBlocks)
    findings.push({
      code: 'pm2-env-block-not-merged',
      severity: 'note',
      text: checkMessages.envBlockNotMerged(names, block.slice('env_'.length)),
    });
  return findings;
}

/** What `check` resolved, and from where. */
interface CheckConfig {
  config: ResolvedConfig;
  /** The folder the app's `require()` resolves libraries from. */
  appDir: string;
  pm2?: Pm2App;
  /** With `pm2`: the app's OTEL_ / FORKTRACE_ settings the preload does not read, one sentence each. */
  unread?: string[];
  /** With `pm2`: what its fields (kill_timeout, node_args, env_<name> blocks) get wrong. */
  appFindings?: Finding[];
  /** The environment the worker's configuration is resolved from (with pm2: the app's env over this one). */
  env: Env;
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
    return {
      config,
      env: pm2?.env ?? env,
      appDir: path.dirname(app.script),
      pm2: app,
      unread,
      names,
      appFindings: pm2AppFindings(app, config),
    };
  }
  const script = opts.script === undefined ? undefined : path.resolve(cwd, opts.script);
  const host: HostFacts = { ...defaultHostFacts(), entryScript: script, cwd };
  return {
    config: resolveConfig(undefined, env, host),
    env,
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
