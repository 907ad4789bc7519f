/**
 * The app's own copy of @opentelemetry/api, and which copy forktrace registers the API globals
 * (tracer provider, context manager, propagator, diag logger) through.
 *
 * Every copy of the API in a process shares one object of globals, created by the first copy
 * that registers anything and stamped with that copy's version. A copy reads the globals only if
 * the stamp passes its compatibility rule ({@link apiAccepts}): a copy of a newer minor than the
 * stamp sees no tracer provider, and the spans it starts are silently non-recording (issue 10:
 * an app on api 1.10 lost every manual span while forktrace stamped 1.9). An older copy accepts a
 * newer stamp, so the globals are registered through the newest copy in the process: forktrace's
 * own, or the app's when the app's is a newer minor of the same major.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import type { DiagLogger, DiagLoggerOptions } from '@opentelemetry/api';
import { apiMessages } from './messages';

const API_PACKAGE = '@opentelemetry/api';

/**
 * Where every 1.x copy keeps the globals (api `internal/global-utils`: `Symbol.for` of
 * `opentelemetry.js.api.<major>`); the object's `version` is the stamp. See src/worker/upstream.ts.
 */
export const API_GLOBALS_KEY = Symbol.for('opentelemetry.js.api.1');

/** The parts of the API forktrace registers through. */
export type OtelApi = Pick<
  typeof import('@opentelemetry/api'),
  'context' | 'diag' | 'metrics' | 'propagation' | 'trace'
>;

/** A copy of @opentelemetry/api as `require()` finds it. */
export interface FoundApi {
  /** The package folder. */
  dir: string;
  /** The file `require('@opentelemetry/api')` loads. */
  main: string;
  /** Its package.json version; undefined when that cannot be read. */
  version?: string;
}

/**
 * Finds @opentelemetry/api the way a `require()` in `fromFile` would (the file need not exist),
 * or undefined when there is none.
 */
export function findApi(fromFile: string): FoundApi | undefined {
  let main: string;
  try {
    main = createRequire(fromFile).resolve(API_PACKAGE);
  } catch {
    return undefined;
  }
  // The package's exports map hides package.json: walk up from its main file.
  for (let dir = path.dirname(main); ; dir = path.dirname(dir)) {
    try {
      const json = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as Record<string, unknown>;
      if (json.name === API_PACKAGE) {
        const version = typeof json.version === 'string' && json.version !== '' ? json.version : undefined;
        return { dir, main, ...(version === undefined ? {} : { version }) };
      }
    } catch {
      // no readable package.json here; keep walking up
    }
    if (path.dirname(dir) === dir || path.basename(dir) === 'node_modules') return { dir: path.dirname(main), main };
  }
}

/**
 * The app's @opentelemetry/api, resolved from its entry script: pm2's script path under pm2 (where
 * `argv[1]` is pm2's ProcessContainer), else `argv[1]`, else the working directory.
 */
function findAppApi(host: { pm2Script?: string; entryScript?: string; cwd: string }): FoundApi | undefined {
  const entry = host.pm2Script ?? host.entryScript;
  return findApi(entry !== undefined ? path.resolve(host.cwd, entry) : path.join(host.cwd, '[app]'));
}

const SEMVER = /^(\d+)\.(\d+)\.(\d+)(-(.+))?$/;

/**
 * Whether a copy of the API of version `caller` reads globals stamped `stamp`: the rule of
 * @opentelemetry/api `internal/semver` (`isCompatible`), which test/upstream.test.mjs compares
 * with the installed one. A caller it cannot parse reads nothing. Same version: yes. Prereleases:
 * only the same version. Otherwise the majors must match, and the caller's minor must not be
 * newer than the stamp's (on major 0, the minors must match and the patch must not be newer).
 */
export function apiAccepts(caller: string, stamp: string): boolean {
  const c = SEMVER.exec(caller);
  if (!c) return false;
  if (c[4] !== undefined || caller === stamp) return caller === stamp;
  const s = SEMVER.exec(stamp);
  if (!s || s[4] !== undefined) return false;
  const [cMajor, cMinor, cPatch] = [Number(c[1]), Number(c[2]), Number(c[3])];
  const [sMajor, sMinor, sPatch] = [Number(s[1]), Number(s[2]), Number(s[3])];
  if (cMajor !== sMajor) return false;
  if (cMajor === 0) return cMinor === sMinor && cPatch <= sPatch;
  return cMinor <= sMinor;
}

/** Which copy registers the globals, and what to say. */
export type GlobalsPlan =
  { use: 'forktrace'; warning?: string } | { use: 'app'; app: FoundApi & { version: string }; note: string };

/**
 * Decides from the stamp forktrace's own copy put on the globals. `createdHere`: the globals did
 * not exist before forktrace registered its diag logger, so they can still be made anew, stamped
 * by the app's copy.
 */
export function planGlobals(stamp: string | undefined, createdHere: boolean, app: FoundApi | undefined): GlobalsPlan {
  if (app === undefined || stamp === undefined) return { use: 'forktrace' };
  if (app.version === undefined) return { use: 'forktrace', warning: apiMessages.unreadable(app.dir, stamp) };
  if (apiAccepts(app.version, stamp)) return { use: 'forktrace' };
  // Registered through the app's copy, the stamp becomes the app's version: forktrace's copy
  // (and the instrumentations' context lookups through it) must accept that in turn.
  if (createdHere && apiAccepts(stamp, app.version)) {
    return { use: 'app', app: { ...app, version: app.version }, note: apiMessages.throughApp(app.version, stamp) };
  }
  return { use: 'forktrace', warning: apiMessages.notAccepted(app.version, stamp) };
}

function stampOf(): string | undefined {
  const globals = (globalThis as Record<symbol, unknown>)[API_GLOBALS_KEY];
  const version =
    typeof globals === 'object' && globals !== null ? (globals as { version?: unknown }).version : undefined;
  return typeof version === 'string' ? version : undefined;
}

/**
 * Sets forktrace's diag logger, through the copy of the API that must register the globals, and
 * returns that copy: forktrace's own (`own`), or the app's when the app's is a newer minor. What
 * the app's copy would not see is said once, through `logger`.
 */
export function registerDiagThroughNewest(
  own: OtelApi,
  logger: DiagLogger,
  options: DiagLoggerOptions,
  host: { pm2Script?: string; entryScript?: string; cwd: string },
): OtelApi {
  const createdHere = stampOf() === undefined;
  // The first registration stamps the globals with forktrace's own version, which no public API
  // tells (the bundled preload has no package.json of its own copy to read).
  own.diag.setLogger(logger, options);
  const plan = planGlobals(stampOf(), createdHere, findAppApi(host));
  if (plan.use === 'forktrace') {
    if (plan.warning !== undefined) logger.warn(plan.warning);
    return own;
  }
  let app: OtelApi;
  try {
    // The app's own file, loaded as its require() would: the app gets this same instance later.
    app = createRequire(plan.app.main)(plan.app.main) as OtelApi;
  } catch (e) {
    logger.warn(apiMessages.loadFailed(plan.app.version, e instanceof Error ? e.message : String(e), stampOf() ?? '?'));
    return own;
  }
  // The globals hold nothing but forktrace's diag logger yet, and their stamp cannot be changed in
  // place (a copy refuses to register into globals stamped with another version): start them anew.
  own.diag.disable();
  delete (globalThis as Record<symbol, unknown>)[API_GLOBALS_KEY];
  app.diag.setLogger(logger, options);
  logger.debug(plan.note);
  return app;
}
