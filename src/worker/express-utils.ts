/**
 * instrumentation-express's own helpers (its `dist/utils.cjs`, 0.72.0), for the layer patch in
 * express-layer.ts. The package's `exports` map allows only its index, so the file is required by
 * full path; the preload bundle (scripts/bundle.mjs) replaces this module with a static require of
 * the same file. Undefined if it is gone: then upstream's own patch stays. Listed in upstream.ts.
 */
import * as path from 'node:path';

/** The file inside instrumentation-express's dist folder. */
export const EXPRESS_UTILS_FILE = 'utils.cjs';

function load(): Record<string, unknown> | undefined {
  try {
    const dist = path.dirname(require.resolve('@opentelemetry/instrumentation-express'));
    return require(path.join(dist, EXPRESS_UTILS_FILE)) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

export const expressUtils = load();
