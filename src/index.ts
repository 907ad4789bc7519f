/**
 * forktrace: OpenTelemetry tracing for Node servers that fork (pm2 cluster mode, node:cluster).
 * Named exports only; this is the whole public surface.
 */
import type { ForktraceHandle } from './instrument';
import type { ForktraceOptions } from './types';

export type { ForktraceHandle, SpanStats } from './instrument';
export { statusMessages, loadOrderWarning } from './log';
export { resolveConfig, redactConfig, messages, DEFAULT_ENDPOINT, DEFAULT_API_KEY_HEADER } from './config';
export type { ResolvedConfig, RedactedConfig, Source, Env, HostFacts } from './config';
export type {
  ForktraceOptions,
  ExporterName,
  SamplerName,
  ExpressLayerName,
  LogLevelName,
  ExitDeliveryName,
} from './types';
export { withSpan, injectTraceHeaders, extractTraceContext } from './api';
export type { WithSpanOptions } from './api';
export { ATTR_WORKER_INDEX, ATTR_PROCESS_MANAGER } from './types';

/**
 * Starts tracing in this process: synchronously, so that modules loaded after it returns are
 * traced. Call it before express and mysql2 are loaded, or use the preload
 * (`node --require forktrace/register`).
 *
 * Idempotent: a second call returns the first handle. A wrong option throws a TypeError or
 * RangeError naming it; anything else that goes wrong leaves a no-op handle and one
 * "not instrumented: …" line, and the app runs on.
 */
export function instrument(options?: ForktraceOptions): ForktraceHandle {
  // The SDK is loaded here, on the first call, and not by `require('forktrace')`: an app traced
  // through the preload (one bundled file) that requires forktrace for `withSpan` loads only the API.
  return (require('./instrument') as typeof import('./instrument')).instrument(options);
}
