/**
 * Every place where forktrace relies on something OpenTelemetry JS does not promise: a private
 * member, a file behind a package's `exports` map, or the exact text of an error or log line.
 * Each is named here with the version it was checked against; test/upstream.test.mjs checks each
 * against what is installed and fails by name when one moves.
 */
/** One reliance on upstream internals. */
export interface UpstreamInternal {
  /** The name test/upstream.test.mjs reports. */
  readonly name: string;
  /** The package it lives in. */
  readonly package: string;
  /** The version of that package it was read from. */
  readonly checked: string;
  /** What forktrace does with it, and what happens if it moves. */
  readonly why: string;
  /** For a matched text: a literal that must appear in the package's built files. */
  readonly text?: string;
}

/** The strings forktrace matches in upstream's errors and diag lines. */
export const UPSTREAM_TEXT = {
  /** otlp-exporter-base `otlp-export-delegate`: retries of a 429/502/503/504 ran out. */
  retryableGaveUp: 'Export failed with retryable status',
  /** otlp-exporter-base `http-transport-utils`: an attempt got no answer in time. */
  requestTimedOut: 'Request timed out',
  /** otlp-exporter-base `otlp-export-delegate`: the delegate's concurrency limit. */
  concurrentLimit: 'Concurrent export limit reached',
  /** otlp-exporter-base `otlp-export-delegate`: a 2xx whose body is not an OTLP response. */
  badResponse: 'Export succeeded but could not deserialize response',
  /** sdk-trace `BatchSpanProcessorBase._flushOneBatch`: OTEL_BSP_EXPORT_TIMEOUT ran out. */
  batchTimeout: 'Timeout',
  /** sdk-trace `BatchSpanProcessorBase._addToBuffer`, once the queue accepts spans again. */
  queueFullDropped: /Dropped (\d+) spans because maxQueueSize reached/,
  /** sdk-metrics `PeriodicExportingMetricReader._doRun`: an export failed (already said by forktrace). */
  metricsExportFailed: 'PeriodicExportingMetricReader: metrics export failed',
  /** sdk-metrics `PeriodicExportingMetricReader._doRun` (diag.error): OTEL_METRIC_EXPORT_TIMEOUT ran out. */
  metricsExportTimedOut: /PeriodicExportingMetricReader: metrics export timed out after (\d+) ?ms/,
  /** sdk-metrics `PeriodicExportingMetricReader._doRun` (diag.error): observable callbacks failed. */
  metricsCollectionErrors: 'PeriodicExportingMetricReader: metrics collection errors',
  /** instrumentation `InstrumentationBase` (node platform): a module was loaded too early. */
  loadedTooEarly: /Module \S+ has been loaded before \S+ so it might not work/,
} as const;

const SDK_TRACE = { package: '@opentelemetry/sdk-trace', checked: '3.1.1' };
const EXPORTER_BASE = { package: '@opentelemetry/otlp-exporter-base', checked: '0.301.1' };
const TRANSFORMER = { package: '@opentelemetry/otlp-transformer', checked: '0.301.1' };
const EXPRESS_INSTRUMENTATION = { package: '@opentelemetry/instrumentation-express', checked: '0.72.0' };
const INSTRUMENTATION = { package: '@opentelemetry/instrumentation', checked: '0.301.1' };
const HTTP_INSTRUMENTATION = { package: '@opentelemetry/instrumentation-http', checked: '0.301.0' };
const API = { package: '@opentelemetry/api', checked: '1.10.0' };
const SDK_METRICS = { package: '@opentelemetry/sdk-metrics', checked: '3.1.1' };
const IF_REWORDED = 'if it is reworded, the error is shown as upstream words it';

/** The list test/upstream.test.mjs walks: one entry per reliance, each checked by its name. */
export const UPSTREAM_INTERNALS: readonly UpstreamInternal[] = [
  {
    name: 'BatchSpanProcessorBase._maybeStartTimer',
    ...SDK_TRACE,
    why: 'replaced so that a failed export does not let a second one start alongside (exporter.ts oneExportAtATime); if the private members it uses are gone, upstream is left as is',
  },
  {
    name: 'BatchSpanProcessorBase._finishedSpans',
    ...SDK_TRACE,
    why: 'the queued spans an exit that cannot wait sends (exporter.ts queuedSpans, exit.ts); if it moves, an exit sends only the spans in flight and those it ends',
  },
  {
    name: 'BatchSpanProcessorBase reads only spanContext() and resource of what it queues',
    ...SDK_TRACE,
    why: "the OTLP exporter's processor queues spans encoded when they ended (exporter.ts EncodingBatchProcessor, span-bytes.ts EncodedSpan), which answer only those two; if the processor reads more, spans could be dropped or exports fail",
  },
  {
    name: 'BatchSpanProcessor selfObsMeterProvider queue_full counter',
    ...SDK_TRACE,
    why: 'the only place a span dropped on a full queue is counted (exporter.ts queueDropCounter); if it moves, stats.queueFull stays 0',
  },
  {
    name: 'otlp-transformer trace files',
    ...TRANSFORMER,
    why: "trace-transformer.ts loads dist/trace/protobuf/trace.cjs and dist/trace/index.cjs by path; the package index also loads sdk-metrics (~10 ms of every worker's start). If they move, the index is loaded instead",
  },
  {
    name: 'API globals: stamp and compatibility rule',
    ...API,
    why: "app-api.ts reads the `version` stamped on globalThis[Symbol.for('opentelemetry.js.api.1')], mirrors internal/semver isCompatible to tell whether the app's own copy reads it, and, since registerGlobal refuses globals stamped with another version, deletes the fresh object to register again through the app's newer copy. If any of it moves, an app on a newer API minor loses its manual spans again, silently",
  },
  {
    name: 'text retryableGaveUp',
    ...EXPORTER_BASE,
    text: UPSTREAM_TEXT.retryableGaveUp,
    why: `exporter.ts names the last HTTP status instead; ${IF_REWORDED}`,
  },
  {
    name: 'text requestTimedOut',
    ...EXPORTER_BASE,
    text: UPSTREAM_TEXT.requestTimedOut,
    why: `exporter.ts names the export timeout; ${IF_REWORDED}`,
  },
  {
    name: 'text concurrentLimit',
    ...EXPORTER_BASE,
    text: UPSTREAM_TEXT.concurrentLimit,
    why: `diagnose.ts explains the backlog; ${IF_REWORDED}`,
  },
  {
    name: 'text badResponse',
    ...EXPORTER_BASE,
    text: UPSTREAM_TEXT.badResponse,
    why: `log.ts rate-limits it and drops the quoted body; if reworded, every batch logs the whole body again`,
  },
  {
    name: 'text batchTimeout',
    ...SDK_TRACE,
    text: '"Timeout"',
    why: `diagnose.ts names OTEL_BSP_EXPORT_TIMEOUT; ${IF_REWORDED}`,
  },
  {
    name: 'text queueFullDropped',
    ...SDK_TRACE,
    text: 'spans because maxQueueSize reached',
    why: 'log.ts rate-limits it into one line that names the fix; if reworded, it repeats with every overflow',
  },
  {
    name: 'MetricReader._sdkMetricProducer collection path',
    ...SDK_METRICS,
    why: "prometheus.ts collectNow: a crash or process.exit() writes the worker's totals for the scrape endpoint from the SDK's storages (MetricCollector._sharedState.meterSharedStates → metricStorageRegistry.getStorages → storage.collect), since no promise settles in 'exit'; if it moves, such a death loses what was counted since the last write (at most a second)",
  },
  {
    name: 'text metricsExportFailed',
    ...SDK_METRICS,
    text: UPSTREAM_TEXT.metricsExportFailed,
    why: 'the reader re-throws a failed export to the global error handler, which instrument.ts skips because metrics.ts has said it in its words; if reworded, a failed metrics export is said twice',
  },
  {
    name: 'text metricsExportTimedOut',
    ...SDK_METRICS,
    text: 'PeriodicExportingMetricReader: metrics export timed out after',
    why: 'log.ts rate-limits it into one line that names OTEL_METRIC_EXPORT_TIMEOUT; if reworded, it prints with every interval while the endpoint is slow',
  },
  {
    name: 'text metricsCollectionErrors',
    ...SDK_METRICS,
    text: UPSTREAM_TEXT.metricsCollectionErrors,
    why: "log.ts rate-limits it into one line with the first callback's error; if reworded, it prints with every interval while a callback fails",
  },
  {
    name: 'text loadedTooEarly',
    ...INSTRUMENTATION,
    text: 'has been loaded before',
    why: 'log.ts drops it, forktrace warns once with the fix; if reworded, both print',
  },
  {
    name: 'instrumentation-express request property __ot_middlewares',
    ...EXPRESS_INSTRUMENTATION,
    text: '_LAYERS_STORE_PROPERTY = "__ot_middlewares"',
    why: 'the path of each router and route a request is inside, read when express matches a route to build http.route (express-route.ts LAYERS_STORE); if it moves or changes form, the server span keeps the route instrumentation-express wrote',
  },
  {
    name: 'instrumentation-express layer patch writes rpcMetadata.route on every layer',
    ...EXPRESS_INSTRUMENTATION,
    text: 'rpcMetadata.route = actualMatchedRoute',
    why: 'the write is when express-route.ts sees a newly matched route and a sub-app mount path about to be dropped; if upstream stops writing from ignored layers, FORKTRACE_EXPRESS_LAYERS=none loses those corrections',
  },
  {
    name: 'instrumentation-express _applyPatch and its utils file',
    ...EXPRESS_INSTRUMENTATION,
    why: "express-layer.ts replaces the private _applyPatch (which the route and use patches call as `instrumentation._applyPatch(layer, path)`) with the same steps written without `arguments`, calling upstream's helpers from dist/utils.cjs by path (upstream-utils.ts). If the helpers move, upstream's own patch stays; if _applyPatch is renamed, ours is never called and upstream's runs: the same spans, and the young-generation survival it causes",
  },
  {
    name: 'instrumentation-http _incomingRequestFunction, its members and its utils file',
    ...HTTP_INSTRUMENTATION,
    why: "http-server.ts replaces the private _incomingRequestFunction (which the http and https patches call as `this._incomingRequestFunction(component, original)` to wrap Server.prototype.emit) with the same steps, the sampler asked first; it starts the span as the private _startHttpSpan does and adds it to the private WeakSet _spanNotEnded only when it will be closed; it calls the private _onServerResponseFinish, _onServerResponseError, _closeHttpSpan, the request/response/start hooks' callers and _headerCapture, and upstream's helpers from dist/utils.cjs by path (upstream-utils.ts). If the helpers move, upstream's own handler stays; if _incomingRequestFunction is renamed, ours is never called and upstream's runs: the same spans, with unsampled requests paying for their attributes",
  },
  {
    name: 'instrumentation-http getIncomingRequestAttributes of a plain request',
    ...HTTP_INSTRUMENTATION,
    why: "request-attributes.ts computes a plain request's server-span attributes itself, as this helper does without its URL parse (test/request-attributes.test.mjs compares the two on many requests); if upstream adds, drops or computes an attribute differently, the check fails by name and the copy must be read again",
  },
  {
    name: 'context-async-hooks AsyncLocalStorageContextManager _asyncLocalStorage and _bindFunction',
    package: '@opentelemetry/context-async-hooks',
    checked: '3.1.1',
    why: "context-binding.ts replaces the manager's `with` and its private _bindFunction (which `bind` and the event-emitter binding call as `this._bindFunction`) with versions that enter the private _asyncLocalStorage without a bind or a closure per call; if either member is gone, upstream's manager is left as it is",
  },
  {
    name: 'context-async-hooks AsyncLocalStorageContextManager _bindEventEmitter and _kOtListeners',
    package: '@opentelemetry/context-async-hooks',
    checked: '3.1.1',
    why: "context-binding.ts replaces the private _bindEventEmitter (which `bind` calls as `this._bindEventEmitter` for an EventEmitter) with one that keeps the context on the emitter and binds listeners without a closure per method or a map per event, and reads _kOtListeners to leave alone an emitter upstream's binding already patched; if either is gone, upstream's emitter binding stays",
  },
  {
    name: "sdk-trace Tracer.startSpan: a root span's trace id from the provider's idGenerator, no metrics without a meterProvider",
    ...SDK_TRACE,
    why: "dropped-spans.ts makes a server span its sampler drops itself, and hands the trace id the sampler saw to the provider's id generator for a span it keeps; it relies on the tracer taking a root span's trace id from the TracerProvider's `idGenerator` option by one generateTraceId call inside startSpan, and on the tracer counting spans only for a provider given a meterProvider. If the id is taken another way, a kept root span would sample a fraction of a fraction: the check fails by name",
  },
  {
    name: 'api ROOT_CONTEXT setValue and deleteValue',
    ...API,
    why: "context-chain.ts replaces ROOT_CONTEXT's setValue and deleteValue (own properties of api 1.x's BaseContext) so that every context derived from it is a chain of the values set instead of a copied Map; if they cannot be replaced, contexts stay BaseContexts",
  },
  {
    name: "core maybeAddAttribute and cleanAttributes, called by sdk-trace through core's exports",
    package: '@opentelemetry/core',
    checked: '3.1.1',
    why: "plain-attributes.ts puts core's simple checks in front of maybeAddAttribute and cleanAttributes for string, number and boolean values (the same result without a WeakSet per value); it relies on sdk-trace's Span and Tracer calling them through core's exports object. If sdk-trace stops doing so, its spans take the full checks again, as before",
  },
  {
    name: 'instrumentation-mysql2 _patchQuery',
    package: '@opentelemetry/instrumentation-mysql2',
    checked: '0.70.0',
    why: "instrumentations.ts wraps the private _patchQuery(format, isPrepared) (which the module patch calls as `this._patchQuery(format, …)` for query and execute) so that a query inside a request that is not sampled runs the original; if it is gone, upstream's patch runs for every query, as before",
  },
  {
    name: "instrumentation-mysql2 wraps a query's callback with this._wrap(arguments, index)",
    package: '@opentelemetry/instrumentation-mysql2',
    checked: '0.70.0',
    why: "instrumentations.ts plainCallbackWraps replaces the instance's `_wrap` so that a numbered argument (the query's callback) is wrapped by plain assignment instead of shimmer's defineProperty calls; if the query patch stops wrapping the callback through `this._wrap` with its index, the replacement is never reached and shimmer's wrap runs, as before",
  },
  {
    name: 'instrumentation RequireInTheMiddleSingleton file, _instance and register()',
    ...INSTRUMENTATION,
    why: "module-hook.ts sets the private static _instance of RequireInTheMiddleSingleton (dist/platform/node/RequireInTheMiddleSingleton.cjs, required by path through upstream-utils.ts) before forktrace creates its instrumentations, so that they register (`register(moduleName, onRequire)`, called by InstrumentationBase.enable through its `_requireInTheMiddleSingleton` field) with one hook limited to their modules. If the file, the field or getInstance moves, upstream's singleton stays: the same patches, with the start paying for a resolution of every file the app loads",
  },
  {
    name: 'instrumentation InstrumentationBase uses import-in-the-middle only through `new Hook(modules, options, fn)`',
    ...INSTRUMENTATION,
    why: "the bundled preload gives the package esm-hook.ts in place of import-in-the-middle (scripts/bundle.mjs), whose Hook is the real one only where an ESM loader hook can be registered, and offers only the constructor and unhook(); if upstream uses more of import-in-the-middle, the preload's instrumentations would call what esm-hook.ts does not have: the check fails by name",
  },
  {
    name: 'instrumentation InstrumentationBase._extractPackageVersion(baseDir)',
    ...INSTRUMENTATION,
    why: "module-hook.ts shareVersionLookups wraps this private method (which _onRequire calls as `this._extractPackageVersion(baseDir)` for every file of a hooked package) on each of forktrace's instrumentations so that each folder's package.json is read once; if it is renamed, the wrapper is never called and each file reads it again, as upstream does",
  },
  {
    name: 'express application.handle(req, res, done)',
    package: 'express',
    checked: '4.22.3 and 5.3.0',
    why: 'wrapped to see a request enter a sub-app (express-route.ts ExpressMountInstrumentation); if it goes, a sub-app mount path is missing from http.route again',
  },
];

/** `helpers` (an upstream helpers file, upstream-utils.ts) as `T` when each of `names` is a function in it. */
export function withHelpers<T>(helpers: Record<string, unknown> | undefined, names: readonly string[]): T | undefined {
  return helpers !== undefined && names.every((n) => typeof helpers[n] === 'function') ? (helpers as T) : undefined;
}
