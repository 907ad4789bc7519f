/** The libraries the app has, as its require() finds them, and whether their spans will be kept. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ResolvedConfig } from '../../config/types';
import { findApi, planGlobals } from '../../worker/app-api';
import { apiMessages } from '../../worker/messages';

/** One library `check` looks for in the app. */
export interface LibraryReport {
  name: 'http' | 'express' | 'mysql2';
  installed: boolean;
  version?: string;
  /** Where it was found (its package folder), or `node:http` for the built-in. */
  location?: string;
  /** The versions the instrumentation patches, as it declares them. */
  supportedRange: string;
  /** undefined when not installed, or when the range is in a form this check cannot read. */
  supported?: boolean;
  /** Whether forktrace's instrumentation for it is on (OTEL_NODE_*_INSTRUMENTATIONS). */
  enabled: boolean;
}

/** The version ranges the pinned instrumentations declare (read from them at run time). */
function declaredRanges(): Record<'express' | 'mysql2', string> {
  const read = (load: () => { getModuleDefinitions(): Array<{ name: string; supportedVersions: string[] }> }) => {
    try {
      return load().getModuleDefinitions()[0]?.supportedVersions.join(' || ') ?? '*';
    } catch {
      return '*';
    }
  };
  return {
    // enabled: false: build the definitions without hooking require().
    express: read(() => {
      const m =
        require('@opentelemetry/instrumentation-express') as typeof import('@opentelemetry/instrumentation-express');
      return new m.ExpressInstrumentation({ enabled: false });
    }),
    mysql2: read(() => {
      const m =
        require('@opentelemetry/instrumentation-mysql2') as typeof import('@opentelemetry/instrumentation-mysql2');
      return new m.MySQL2Instrumentation({ enabled: false });
    }),
  };
}

/** Finds `name`'s package.json the way require() would from `fromDir`: up through node_modules folders. */
function findPackage(name: string, fromDir: string): { dir: string; version?: string } | undefined {
  let dir = path.resolve(fromDir);
  for (;;) {
    if (path.basename(dir) !== 'node_modules') {
      const pkgDir = path.join(dir, 'node_modules', name);
      try {
        const json = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')) as { version?: unknown };
        return { dir: pkgDir, ...(typeof json.version === 'string' ? { version: json.version } : {}) };
      } catch {
        // not here; keep walking up
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

type Version = [number, number, number];

function parseVersion(v: string): Version | undefined {
  const m = /^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(v.trim());
  if (!m) return undefined;
  return [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)];
}

function compare(a: Version, b: Version): number {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return (a[i] as number) - (b[i] as number);
  return 0;
}

/**
 * Whether `version` is in `range`, for the plain comparator ranges the instrumentations declare
 * (`>=4.0.0 <6`, alternatives joined by `||`, `*`). Returns undefined for syntax it does not read
 * (`^`, `~`, `x`, hyphen ranges) rather than guessing.
 */
export function satisfies(version: string, range: string): boolean | undefined {
  const v = parseVersion(version);
  if (!v) return undefined;
  let unknown = false;
  for (const alternative of range.split('||')) {
    const parts = alternative.trim().split(/\s+/).filter(Boolean);
    let all = true;
    for (const part of parts) {
      if (part === '*' || part === '') continue;
      const m = /^(>=|<=|>|<|=)?(\d+(?:\.\d+){0,2})$/.exec(part);
      const bound = m ? parseVersion(m[2] as string) : undefined;
      if (!m || !bound) {
        unknown = true;
        all = false;
        break;
      }
      const c = compare(v, bound);
      const op = m[1] ?? '=';
      const ok = op === '>=' ? c >= 0 : op === '<=' ? c <= 0 : op === '>' ? c > 0 : op === '<' ? c < 0 : c === 0;
      if (!ok) all = false;
    }
    if (all) return true;
  }
  return unknown ? undefined : false;
}

/**
 * Which of the supported libraries the app has installed, resolved from the app's folder the way
 * its require() would, with versions and whether the pinned instrumentation supports them.
 */
export function inspectLibraries(appDir: string, config: ResolvedConfig): LibraryReport[] {
  const ranges = declaredRanges();
  const out: LibraryReport[] = [
    {
      name: 'http',
      installed: true,
      version: process.versions.node,
      location: 'node:http',
      supportedRange: '*',
      supported: true,
      enabled: config.instrumentations.http,
    },
  ];
  for (const name of ['express', 'mysql2'] as const) {
    const found = findPackage(name, appDir);
    const report: LibraryReport = {
      name,
      installed: found !== undefined,
      supportedRange: ranges[name],
      enabled: config.instrumentations[name],
    };
    if (found) {
      report.location = found.dir;
      if (found.version !== undefined) {
        report.version = found.version;
        const s = satisfies(found.version, ranges[name]);
        if (s !== undefined) report.supported = s;
      }
    }
    out.push(report);
  }
  return out;
}

/** The app's own @opentelemetry/api, as `check` reports it. */
export interface ApiReport {
  /** The version forktrace registers the API globals as (its own copy's). */
  forktrace?: string;
  /** The app's copy, resolved from its folder the way its require() would; absent when it has none. */
  app?: { version?: string; location: string };
  /** Whether spans started through the app's copy are recorded; absent when it has none or it cannot tell. */
  kept?: boolean;
  /** The verdict in words: how they are kept, or why not and the fix. */
  text: string;
}

/**
 * Whether the spans the app starts through its own @opentelemetry/api will be recorded, decided
 * by the same {@link planGlobals} a worker runs at start.
 */
export function inspectApi(appDir: string): ApiReport {
  // forktrace's copy in node_modules: the one instrument() loads, and the version the preload bundles.
  const own = findApi(__filename)?.version;
  const found = findApi(path.join(appDir, '[app]'));
  const forktrace = own === undefined ? {} : { forktrace: own };
  if (found === undefined) return { ...forktrace, text: 'not installed' };
  const app = { ...(found.version === undefined ? {} : { version: found.version }), location: found.dir };
  if (own === undefined) return { ...forktrace, app, text: "forktrace's own @opentelemetry/api is missing" };
  const plan = planGlobals(own, true, found);
  if (plan.use === 'app') return { ...forktrace, app, kept: true, text: apiMessages.keptThroughApp(own) };
  if (plan.warning === undefined) return { ...forktrace, app, kept: true, text: apiMessages.kept(own) };
  return { ...forktrace, app, ...(found.version === undefined ? {} : { kept: false }), text: plan.warning };
}
