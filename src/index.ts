/**
 * forktrace: OpenTelemetry tracing for Node servers that fork (pm2 cluster mode, node:cluster).
 * Named exports only; this is the whole public surface.
 */
export { instrument, statusMessages } from './instrument';
export type { ForktraceHandle, SpanStats } from './instrument';
export { resolveConfig, redactConfig, messages, DEFAULT_ENDPOINT, DEFAULT_API_KEY_HEADER } from './config';
export type { ResolvedConfig, RedactedConfig, Source, Env, HostFacts } from './config';
export type { ForktraceOptions, ExporterName, SamplerName, ExpressLayerName, LogLevelName } from './types';
export { withSpan, injectTraceHeaders, extractTraceContext } from './api';
export type { WithSpanOptions } from './api';
export { ATTR_WORKER_INDEX, ATTR_PROCESS_MANAGER } from './resource';
export { loadOrderWarning } from './instrumentations';
