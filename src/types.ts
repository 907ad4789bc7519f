/**
 * Public option types. Every option can also be set through an environment variable; an option
 * passed to `instrument()` wins over the variable, and `OTEL_SDK_DISABLED=true` wins over both.
 */

/** Where finished spans go. */
export type ExporterName = 'otlp' | 'console' | 'none';

/** Where metrics go. */
export type MetricsExporterName = 'otlp' | 'prometheus' | 'console' | 'none';

/**
 * How OTLP metrics report sums and histograms (`OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`):
 * `cumulative` totals since the worker started; `delta` what changed since the last export;
 * `lowmemory` delta for counters and histograms, cumulative for up-down counters.
 */
export type MetricsTemporalityName = 'cumulative' | 'delta' | 'lowmemory';

/** Head sampler names, as in the OpenTelemetry SDK environment specification. */
export type SamplerName =
  | 'always_on'
  | 'always_off'
  | 'traceidratio'
  | 'parentbased_always_on'
  | 'parentbased_always_off'
  | 'parentbased_traceidratio';

/** Express layer kinds that may get a span of their own. */
export type ExpressLayerName = 'request_handler' | 'middleware' | 'router';

/**
 * What an exit that cannot wait (an uncaught exception, a fatal unhandled rejection,
 * `process.exit()`) does with the spans still queued:
 * - `send`: sends them before the process ends, by a short-lived child process, within
 *   `shutdownTimeoutMillis`; what it cannot deliver goes to the spool;
 * - `spool`: writes them to the spool only (about 2 ms); the next start of the service sends them;
 * - `off`: nothing, as without forktrace.
 */
export type ExitDeliveryName = 'send' | 'spool' | 'off';

/** Levels of the OpenTelemetry diagnostic log (`OTEL_LOG_LEVEL`). */
export type LogLevelName = 'none' | 'error' | 'warn' | 'info' | 'debug' | 'verbose' | 'all';

export interface ForktraceOptions {
  /**
   * `service.name`. Default: `OTEL_SERVICE_NAME`, then `service.name` in
   * `OTEL_RESOURCE_ATTRIBUTES`, then pm2's app name, then the `name` of the application's
   * package.json, then `unknown_service:node` (each fallback prints one warning).
   * @example 'checkout-api'
   */
  serviceName?: string;
  /**
   * `service.version`. Default: `service.version` in `OTEL_RESOURCE_ATTRIBUTES`, then the
   * application's package.json `version`.
   */
  serviceVersion?: string;
  /**
   * `deployment.environment.name`. Default: `deployment.environment.name` in
   * `OTEL_RESOURCE_ATTRIBUTES`, then `NODE_ENV`. It never becomes part of the service name.
   * @example 'production'
   */
  environment?: string;
  /** Extra resource attributes. They win over `OTEL_RESOURCE_ATTRIBUTES`. */
  resourceAttributes?: Record<string, string | number | boolean>;

  /**
   * Full URL spans are POSTed to, used as-is. Default: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as-is,
   * else `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`, else `http://localhost:4318/v1/traces`.
   */
  endpoint?: string;
  /**
   * Extra request headers for the exporter. They win over `OTEL_EXPORTER_OTLP_TRACES_HEADERS`,
   * which wins over `OTEL_EXPORTER_OTLP_HEADERS`. Values are secrets: they are never printed.
   */
  headers?: Record<string, string>;
  /** API key sent under `apiKeyHeader`. Env: `FORKTRACE_API_KEY`. Never printed. */
  apiKey?: string;
  /**
   * Header the API key is sent under. Default `x-api-key`; env `FORKTRACE_API_KEY_HEADER`.
   * @example 'Mackerel-Api-Key'
   * @example 'lightstep-access-token'
   */
  apiKeyHeader?: string;
  /** Body compression. Default `gzip`; env `OTEL_EXPORTER_OTLP_TRACES_COMPRESSION`, `OTEL_EXPORTER_OTLP_COMPRESSION`. */
  compression?: 'gzip' | 'none';
  /** Export request timeout in ms. Default 10000; env `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`, `OTEL_EXPORTER_OTLP_TIMEOUT`. */
  timeoutMillis?: number;
  /**
   * Exporters. Default `otlp`; env `OTEL_TRACES_EXPORTER` (`otlp`, `console`, `none`, or a comma
   * list such as `otlp,console`).
   */
  exporters?: ExporterName[];

  /** Head sampler. Default `parentbased_always_on`; env `OTEL_TRACES_SAMPLER`. */
  sampler?: SamplerName;
  /** Ratio for the `*traceidratio` samplers, 0..1. Default 1; env `OTEL_TRACES_SAMPLER_ARG`. */
  samplerRatio?: number;
  /** Batch span processor settings. Env: `OTEL_BSP_SCHEDULE_DELAY`, `OTEL_BSP_EXPORT_TIMEOUT`, `OTEL_BSP_MAX_QUEUE_SIZE`, `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`. */
  batch?: {
    /** Default 5000. */
    scheduledDelayMillis?: number;
    /** Default 30000. */
    exportTimeoutMillis?: number;
    /** Default 2048. */
    maxQueueSize?: number;
    /** Default 512; never above `maxQueueSize`. */
    maxExportBatchSize?: number;
  };

  /** Diagnostic log level. Default `warn`; env `OTEL_LOG_LEVEL`. Messages are redacted. */
  logLevel?: LogLevelName;

  /**
   * Incoming requests whose path matches any of these get no span at all. A string is a regular
   * expression source. Env `FORKTRACE_EXCLUDED_URLS`: comma-separated regular expressions.
   * @example ['^/health$', /^\/metrics/]
   */
  excludedUrls?: Array<string | RegExp>;
  /**
   * Turn single instrumentations off. Default: all on. Env `OTEL_NODE_ENABLED_INSTRUMENTATIONS`
   * and `OTEL_NODE_DISABLED_INSTRUMENTATIONS` (comma lists of `http`, `express`, `mysql2`).
   */
  instrumentations?: { http?: boolean; express?: boolean; mysql2?: boolean };
  /**
   * Replace literal values in SQL statements (`db.query.text`) with `?`. Default true; env
   * `FORKTRACE_MASK_DB_STATEMENTS=false` opts out.
   */
  maskDbStatements?: boolean;
  /**
   * Express layers that get their own span. The server span always carries `http.route`.
   * Default `['request_handler']`; env `FORKTRACE_EXPRESS_LAYERS` (comma list, or `none`).
   */
  expressLayers?: ExpressLayerName[];

  /**
   * Trace the `node:cluster` primary as well. Default false: a primary stops tracing when it
   * forks its first worker. Env `FORKTRACE_INSTRUMENT_PRIMARY`.
   */
  instrumentPrimary?: boolean;
  /**
   * How long a stop (signal, pm2 shutdown message, cluster disconnect, exit) may wait for queued
   * spans to be delivered, in ms. Default 1000, below pm2's 1600 ms `kill_timeout`. 0 turns the
   * stop flush off (no signal listener is installed). Env `FORKTRACE_SHUTDOWN_TIMEOUT_MS`.
   */
  shutdownTimeoutMillis?: number;
  /**
   * What an uncaught exception, a fatal unhandled rejection or `process.exit()` does with the
   * queued spans (see {@link ExitDeliveryName}). The spans open in the failing request end with
   * status ERROR and an `exception` event. Default `send`; env `FORKTRACE_EXIT_DELIVERY`.
   * `shutdownTimeoutMillis: 0` turns it off as well.
   */
  exitDelivery?: ExitDeliveryName;
  /**
   * Absolute path of the folder (mode 0700, one per user) where spans an exit could not deliver
   * wait for the next start of the same service on this host, or `false` for no spool. Default:
   * `forktrace-spool-<uid>` in the OS temporary folder (`os.tmpdir()`); env `FORKTRACE_SPOOL_DIR` (`none` for no
   * spool). The files hold the OTLP request body and the service name, never headers or keys.
   * A folder you name and make yourself keeps its mode; forktrace warns once when group or
   * others may write to it.
   */
  spoolDir?: string | false;
  /**
   * Bound on the bytes one service keeps in the spool; the oldest files are removed first.
   * Default 8388608 (8 MiB); env `FORKTRACE_SPOOL_MAX_BYTES`.
   */
  spoolMaxBytes?: number;
  /** Spooled spans older than this are removed, not sent. Default 86400000 (24 h); env `FORKTRACE_SPOOL_MAX_AGE_MS`. */
  spoolMaxAgeMillis?: number;

  /**
   * Metrics: request durations from the same instrumentations (`http.server.request.duration`,
   * `http.client.request.duration`, `db.client.operation.duration`) and the app's own instruments
   * through `@opentelemetry/api`. Off unless `exporters` (env `OTEL_METRICS_EXPORTER`) names one.
   */
  metrics?: {
    /**
     * Default `none`; env `OTEL_METRICS_EXPORTER` (`otlp`, `console`, `none`, or a comma list).
     * @example ['otlp']
     */
    exporters?: MetricsExporterName[];
    /**
     * Full URL metrics are POSTed to. Default: `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` as-is, else
     * `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/metrics`, else the traces endpoint with `/v1/traces`
     * replaced by `/v1/metrics`. On the traces endpoint's origin, metrics exports send the traces'
     * headers, API key and CA file too; on another origin only `OTEL_EXPORTER_OTLP_HEADERS`, the
     * URL's own credentials and `headers` below, checked against the system CAs.
     */
    endpoint?: string;
    /**
     * Headers for metrics exports only; they win over every other header, the API key included.
     * Env `OTEL_EXPORTER_OTLP_METRICS_HEADERS`, which this option wins over. Never printed.
     */
    headers?: Record<string, string>;
    /** Default: the traces' `compression`; env `OTEL_EXPORTER_OTLP_METRICS_COMPRESSION`. */
    compression?: 'gzip' | 'none';
    /** Export request timeout in ms. Default: the traces' `timeoutMillis`; env `OTEL_EXPORTER_OTLP_METRICS_TIMEOUT`. */
    timeoutMillis?: number;
    /** Default `cumulative`; env `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`. */
    temporality?: MetricsTemporalityName;
    /** How often metrics are exported, in ms. Default 60000; env `OTEL_METRIC_EXPORT_INTERVAL`. */
    exportIntervalMillis?: number;
    /** How long one export may take, retries included, in ms; never above the interval. Default 30000; env `OTEL_METRIC_EXPORT_TIMEOUT`. */
    exportTimeoutMillis?: number;
    /**
     * The Prometheus scrape endpoint (`exporters: ['prometheus']`): one per pm2 app or
     * node:cluster, reporting the sum over its workers, dead workers' totals included.
     */
    prometheus?: {
      /** Default `localhost`; env `OTEL_EXPORTER_PROMETHEUS_HOST`. */
      host?: string;
      /** Default 9464; env `OTEL_EXPORTER_PROMETHEUS_PORT`. Give each app its own. */
      port?: number;
      /** Metric name prefix. Default none; env `FORKTRACE_PROMETHEUS_PREFIX`. @example 'shop' */
      prefix?: string;
      /** Exemplars (trace and span id) in the OpenMetrics format. Default false; env `FORKTRACE_PROMETHEUS_EXEMPLARS`. */
      exemplars?: boolean;
      /** Absolute path of the workers' shared state folder (a folder per port inside it). Default `forktrace-metrics-<uid>` in `os.tmpdir()`; env `FORKTRACE_PROMETHEUS_DIR`. */
      dir?: string;
    };
  };
}

/**
 * Span counts since start, per exporter summed. With one exporter,
 * `ended = delivered + dropped + pending`, and `dropped = failed + queueFull`.
 */
export interface ExportStats {
  /** Spans handed to exporters. */
  exported: number;
  /** Spans the endpoint accepted. */
  delivered: number;
  /** Spans an export gave up on (after upstream's retries). */
  failed: number;
  /** Spans the batch queue dropped because it was full (`OTEL_BSP_MAX_QUEUE_SIZE`); never exported. */
  queueFull: number;
  /** Spans that will never be delivered: `failed + queueFull`. */
  dropped: number;
}

/**
 * Span counts for this process. With one exporter, `ended = delivered + dropped + pending`; once
 * nothing is pending (after a flush or shutdown), every span sent is either delivered or dropped.
 */
export interface SpanStats extends ExportStats {
  /** Sampled spans that ended. */
  ended: number;
  /** Ended spans neither delivered nor dropped yet: queued or in flight. */
  pending: number;
}

/**
 * A warning or a problem, as a value: code decides on `code` and `setting`, never on `text`.
 * resolveConfig returns one for each operator mistake or fallback (`ResolvedConfig.findings`);
 * `forktrace check` adds its own and sorts them by `severity`.
 */
export interface Finding {
  /** The kind of mistake, stable across releases: `bad-value`, `service-name-fallback`, … */
  code: string;
  /** The setting it is about (a key of `ResolvedConfig.sources`), when it is about one. */
  setting?: string;
  /** `problem`: something is wrong, and check exits 1; `note`: worth knowing, not wrong. */
  severity: 'problem' | 'note';
  /** One line for people; it never holds a secret. */
  text: string;
}

/**
 * forktrace's own resource attributes. `forktrace.worker.index` is the worker's slot: pm2's
 * `NODE_APP_INSTANCE` (0..instances-1, kept across restarts and reloads), else
 * `FORKTRACE_WORKER_INDEX` set by a node:cluster primary, else `cluster.worker.id` (which Node
 * increments when a worker is replaced, so it is not stable across restarts).
 */
export const ATTR_WORKER_INDEX = 'forktrace.worker.index';
/** `pm2`, `node:cluster` or `none`: who started this process. */
export const ATTR_PROCESS_MANAGER = 'forktrace.process_manager';
