/**
 * The helpers files of the two instrumentations whose hot path forktrace writes again:
 * instrumentation-express's `dist/utils.cjs` (0.72.0, for express-layer.ts) and
 * instrumentation-http's (0.301.0, for http-server.ts); and instrumentation's require hook
 * singleton (0.301.1, for module-hook.ts). Each package's `exports` map allows only
 * its index, so the files are required by full path; the preload bundle (scripts/bundle.mjs)
 * replaces this module with static requires of the same files. A file that is gone is undefined:
 * then upstream's own code stays. Listed in upstream.ts.
 */
import * as path from 'node:path';

/** Each helpers file: its package, and its name in the package's dist folder. */
export const UTILS_FILES = {
  expressUtils: { pkg: '@opentelemetry/instrumentation-express', file: 'utils.cjs' },
  httpUtils: { pkg: '@opentelemetry/instrumentation-http', file: 'utils.cjs' },
  requireSingleton: { pkg: '@opentelemetry/instrumentation', file: 'platform/node/RequireInTheMiddleSingleton.cjs' },
} as const;

function load({ pkg, file }: { pkg: string; file: string }): Record<string, unknown> | undefined {
  try {
    return require(path.join(path.dirname(require.resolve(pkg)), file)) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

export const expressUtils = load(UTILS_FILES.expressUtils);
export const httpUtils = load(UTILS_FILES.httpUtils);
export const requireSingleton = load(UTILS_FILES.requireSingleton);
