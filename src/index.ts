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
export type { ForktraceOptions, ExporterName, SamplerName, ExpressLayerName, LogLevelName } from './types';
export { withSpan, injectTraceHeaders, extractTraceContext } from './api';
export type { WithSpanOptions } from './api';
export { ATTR_WORKER_INDEX, ATTR_PROCESS_MANAGER } from './types';

/**
 * Starts tracing in this process and returns its handle; see README "Use it in your app".
 * The SDK is loaded on the first call, not by `require('forktrace')`: an app traced through the
 * preload (`--require forktrace/register`, one bundled file) that requires forktrace for
 * `withSpan` loads only the API, not a second copy of the SDK.
 */
export function instrument(options?: ForktraceOptions): ForktraceHandle {
  return (require('./instrument') as typeof import('./instrument')).instrument(options);
}
