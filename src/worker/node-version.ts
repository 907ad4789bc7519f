/**
 * The Node version gate. The preloads and instrument() load this file first and nothing else
 * before it answers: the OpenTelemetry 3.x packages need Node >= 22.15, and on an older Node they
 * may fail to load, or load and misbehave. So this file imports nothing and uses no API newer than
 * Node 12, and on an old Node the app runs untraced after one line saying why.
 */

/** The oldest Node forktrace runs on; `engines.node` in package.json says the same. */
export const MIN_NODE = '22.15.0';

/** The line printed (after `forktrace: `) and reported by `forktrace check` on an older Node. */
export const tooOldMessage = (version: string): string =>
  `not instrumented: needs Node >= ${MIN_NODE.replace(/\.0$/, '')}, this is ${version}`;

function parts(version: string): number[] | undefined {
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(version);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

/** Whether `version` (as `process.version` writes it) is older than {@link MIN_NODE}. */
export function nodeTooOld(version: string): boolean {
  const v = parts(version);
  const min = parts(MIN_NODE) as number[];
  if (!v) return false;
  for (let i = 0; i < 3; i++) if (v[i] !== min[i]) return (v[i] as number) < (min[i] as number);
  return false;
}

// On globalThis: the CJS preload (bundled), the ESM preload and require('forktrace') each have
// their own copy of this module, and the line is printed once per process.
const SAID = Symbol.for('forktrace.node-too-old');

/**
 * On a Node older than {@link MIN_NODE}: prints the "not instrumented" line (once per process)
 * and returns true. Never throws.
 */
export function refuseOldNode(version: string = process.version): boolean {
  if (!nodeTooOld(version)) return false;
  const g = globalThis as typeof globalThis & { [SAID]?: boolean };
  if (g[SAID] !== true) {
    g[SAID] = true;
    try {
      process.stderr.write(`forktrace: ${tooOldMessage(version)}\n`);
    } catch {
      // stderr is gone; the app runs on all the same.
    }
  }
  return true;
}
