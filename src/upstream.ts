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
  /** The package and version it was read from. */
  readonly checked: string;
  /** What forktrace does with it, and what happens if it moves. */
  readonly why: string;
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
  /** instrumentation `InstrumentationBase` (node platform): a module was loaded too early. */
  loadedTooEarly: /Module \S+ has been loaded before \S+ so it might not work/,
} as const;

/** The list the test walks; keep one entry per reliance. */
export const UPSTREAM_INTERNALS: readonly UpstreamInternal[] = [
  {
    name: 'BatchSpanProcessorBase._maybeStartTimer',
    checked: '@opentelemetry/sdk-trace 3.1.1',
    why: 'replaced so that a failed export does not let a second one start alongside (exporter.ts oneExportAtATime); if the private members it uses are gone, upstream is left as is',
  },
  {
    name: 'BatchSpanProcessorBase._finishedSpans',
    checked: '@opentelemetry/sdk-trace 3.1.1',
    why: 'the queued spans an exit that cannot wait sends (exporter.ts queuedSpans, exit.ts); if it moves, an exit sends only the spans in flight and those it ends',
  },
  {
    name: 'BatchSpanProcessor selfObsMeterProvider queue_full counter',
    checked: '@opentelemetry/sdk-trace 3.1.1',
    why: 'the only place a span dropped on a full queue is counted (exporter.ts queueDropCounter); if it moves, stats.queueFull stays 0',
  },
  {
    name: 'otlp-transformer dist/trace/protobuf/trace.cjs',
    checked: '@opentelemetry/otlp-transformer 0.301.1',
    why: "the trace serializer alone; the package index also loads the metrics serializer and @opentelemetry/sdk-metrics (~10 ms of every worker's start)",
  },
  {
    name: 'otlp-transformer dist/trace/index.cjs',
    checked: '@opentelemetry/otlp-transformer 0.301.1',
    why: 'TraceExporterMetricsHelper, which the export delegate needs, without the package index',
  },
  ...Object.entries(UPSTREAM_TEXT).map(([key, text]) => ({
    name: `text ${key}`,
    checked:
      key === 'batchTimeout' || key === 'queueFullDropped'
        ? '@opentelemetry/sdk-trace 3.1.1'
        : key === 'loadedTooEarly'
          ? '@opentelemetry/instrumentation 0.301.1'
          : '@opentelemetry/otlp-exporter-base 0.301.1',
    why: `matched as ${String(text)}; if the wording changes, the error is shown as upstream worded it`,
  })),
];
