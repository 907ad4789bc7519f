/**
 * forktrace: OpenTelemetry tracing for Node servers that fork (pm2 cluster mode, node:cluster).
 * Named exports only; this is the whole public surface.
 */
import { defaultHostFacts, redactConfig, resolveConfig } from './config/resolve';
import type { ForktraceHandle } from './worker/instrument';
import { nodeTooOld, refuseOldNode } from './worker/node-version';
import { readPm2 } from './worker/pm2';
import type { ForktraceOptions } from './types';

export type { ForktraceHandle } from './worker/instrument';
export { statusMessages, loadOrderWarning, configMessages as messages } from './worker/messages';
export { resolveConfig, redactConfig, DEFAULT_ENDPOINT, DEFAULT_API_KEY_HEADER } from './config/resolve';
export type { ResolvedConfig, RedactedConfig, Source, Env, HostFacts } from './config/types';
export type {
  ForktraceOptions,
  ExporterName,
  SamplerName,
  ExpressLayerName,
  LogLevelName,
  ExitDeliveryName,
  SpanStats,
  Finding,
} from './types';
export { withSpan, injectTraceHeaders, extractTraceContext } from './worker/with-span';
export type { WithSpanOptions } from './worker/with-span';
export { ATTR_WORKER_INDEX, ATTR_PROCESS_MANAGER } from './types';

/**
 * Starts tracing in this process: synchronously, so that modules loaded after it returns are
 * traced. Call it before express and mysql2 are loaded, or use the preload
 * (`node --require forktrace/register`).
 *
 * Idempotent: a second call returns the first handle. A wrong option throws a TypeError or
 * RangeError naming it; anything else that goes wrong leaves a no-op handle and one
 * "not instrumented: …" line, and the app runs on. So does a Node older than 22.15.
 */
export function instrument(options?: ForktraceOptions): ForktraceHandle {
  if (nodeTooOld(process.version)) return untraced(options);
  // The SDK is loaded here, on the first call, and not by `require('forktrace')`: an app traced
  // through the preload (one bundled file) that requires forktrace for `withSpan` loads only the API.
  return (require('./worker/instrument') as typeof import('./worker/instrument')).instrument(options);
}

/**
 * The handle on a Node too old for the SDK, which is never loaded there. The options are still
 * resolved first, so that a wrong one throws on every Node alike.
 */
function untraced(options: ForktraceOptions | undefined): ForktraceHandle {
  const pm2 = readPm2(process.env);
  const config = redactConfig(resolveConfig(options, pm2?.env ?? process.env, defaultHostFacts(pm2)));
  refuseOldNode();
  const zero = { ended: 0, exported: 0, delivered: 0, failed: 0, queueFull: 0, dropped: 0, pending: 0 };
  return {
    config,
    active: false,
    forceFlush: () => Promise.resolve(),
    shutdown: () => Promise.resolve(),
    stats: () => ({ ...zero }),
  };
}
