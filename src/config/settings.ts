/**
 * Every setting forktrace has, defined once. From this table come the option checks
 * (validate.ts), the resolution of every regular setting (resolve.ts: options > env > default,
 * with one warning for a bad variable), `forktrace check`'s settings report and its labels, the
 * list of variables forktrace knows, and the README's configuration table (test/settings.test.mjs
 * fails when the README differs; `npm run readme` rewrites it).
 *
 * A row with a `parser` is regular: resolve.ts reads it with no code of its own. A row without
 * one is resolved by a small named function in resolve.ts (the service-name chain, endpoint and
 * credentials, headers, TLS, resource attributes, instrumentations, excluded URLs), and its
 * `check` validates the option. Adding a setting: a row here, its field in ForktraceOptions and
 * ResolvedConfig, and a case in test/config.test.mjs.
 */
import type {
  ExitDeliveryName,
  ExporterName,
  ExpressLayerName,
  LogLevelName,
  MetricsExporterName,
  MetricsTemporalityName,
  SamplerName,
} from '../types';
import {
  absolutePathOrNone,
  bool,
  checkAttributes,
  checkEndpoint,
  checkExcludedUrls,
  checkHeaders,
  checkInstrumentations,
  checkNonEmptyString,
  headerName,
  absolutePath,
  listenHost,
  listOf,
  metricPrefix,
  oneOf,
  ratio,
  secretText,
  wholeNumber,
  type Parser,
} from './parsers';
import type { RedactedConfig } from './types';

export const DEFAULT_ENDPOINT = 'http://localhost:4318/v1/traces';
export const DEFAULT_API_KEY_HEADER = 'x-api-key';
export const UNKNOWN_SERVICE = 'unknown_service:node';

const EXPORTERS: readonly ExporterName[] = ['otlp', 'console', 'none'];
const SAMPLERS: readonly SamplerName[] = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
];
const LOG_LEVELS: readonly LogLevelName[] = ['none', 'error', 'warn', 'info', 'debug', 'verbose', 'all'];
const EXPRESS_LAYERS: readonly ExpressLayerName[] = ['request_handler', 'middleware', 'router'];
const EXIT_DELIVERIES: readonly ExitDeliveryName[] = ['send', 'spool', 'off'];
const METRICS_EXPORTERS: readonly MetricsExporterName[] = ['otlp', 'prometheus', 'console', 'none'];
const TEMPORALITIES: readonly MetricsTemporalityName[] = ['cumulative', 'delta', 'lowmemory'];
/** Request body compression and timeout: the traces' settings, and the metrics' own, which default to them. */
export const COMPRESSION = oneOf(['gzip', 'none'] as const);
export const REQUEST_TIMEOUT = wholeNumber(1, 600_000);

/** One setting. */
export interface Setting<T = unknown> {
  /** The setting's name: its key in `ResolvedConfig.sources` (and `variables`). */
  readonly key: string;
  /** Its path in ForktraceOptions (`batch.maxQueueSize`); none: set by the environment only. */
  readonly option?: string;
  /** The variables that set it, in precedence order: the first one set (not blank) is read. */
  readonly env: readonly string[];
  /** A regular setting's reader and option check. */
  readonly parser?: Parser<T>;
  /** An irregular setting's option check (resolve.ts resolves it). */
  readonly check?: (option: string, value: unknown) => void;
  readonly default: T;
  /** The default as a warning names it ("Using …"), when its value does not say it. */
  readonly fallback?: string;
  /** Its value is a credential: never printed, never in ResolvedConfig (it becomes a header). */
  readonly secret?: boolean;
  /** Its name in `forktrace check`'s settings report. */
  readonly label: string;
  /** One line for the README: what it does. */
  readonly doc: string;
  /** The default in the README, when its value does not say it. */
  readonly defaultDoc?: string;
  /** What check's report shows; default: the resolved value at the option path (or key). */
  readonly show?: (config: RedactedConfig) => unknown;
}

/** Gives each row its key, keeping each row's own value type. */
function table<const R extends Record<string, Omit<Setting, 'key'>>>(
  rows: R,
): { readonly [K in keyof R]: R[K] & { readonly key: K & string } } {
  return Object.fromEntries(Object.entries(rows).map(([key, row]) => [key, { ...row, key }])) as never;
}

/** The settings, in the order check reports them, warnings are sorted and the README lists them. */
export const SETTINGS = table({
  disabled: {
    env: ['OTEL_SDK_DISABLED'],
    parser: bool,
    default: false,
    label: 'OTEL_SDK_DISABLED',
    doc: '`true`: no tracing at all; it wins over every other setting.',
  },
  serviceName: {
    option: 'serviceName',
    env: ['OTEL_SERVICE_NAME', 'OTEL_RESOURCE_ATTRIBUTES'],
    check: checkNonEmptyString,
    default: UNKNOWN_SERVICE,
    defaultDoc:
      "pm2's app name, else the `name` in the app's package.json, else `unknown_service:node` (each fallback warns once)",
    label: 'service.name',
    doc: '`service.name`: `OTEL_SERVICE_NAME`, else `service.name` in `OTEL_RESOURCE_ATTRIBUTES`.',
  },
  serviceVersion: {
    option: 'serviceVersion',
    env: ['OTEL_RESOURCE_ATTRIBUTES'],
    check: checkNonEmptyString,
    default: undefined,
    defaultDoc: "the `version` in the app's package.json",
    label: 'service.version',
    doc: '`service.version`: `service.version` in `OTEL_RESOURCE_ATTRIBUTES`.',
    show: (c) => c.serviceVersion ?? null,
  },
  environment: {
    option: 'environment',
    env: ['OTEL_RESOURCE_ATTRIBUTES', 'NODE_ENV'],
    check: checkNonEmptyString,
    default: undefined,
    label: 'deployment.environment.name',
    doc: '`deployment.environment.name`: that key in `OTEL_RESOURCE_ATTRIBUTES`, else `NODE_ENV`. Never part of the service name.',
    show: (c) => c.environment ?? null,
  },
  resourceAttributes: {
    option: 'resourceAttributes',
    env: ['OTEL_RESOURCE_ATTRIBUTES'],
    check: checkAttributes,
    default: {},
    label: 'resource attributes',
    doc: 'Extra resource attributes (`key=value,…` in the variable); the option wins.',
  },
  endpoint: {
    option: 'endpoint',
    env: ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'OTEL_EXPORTER_OTLP_ENDPOINT'],
    check: checkEndpoint,
    default: DEFAULT_ENDPOINT,
    label: 'endpoint',
    doc: 'The traces URL: the first variable as-is, the second + `/v1/traces`. Credentials in it (`https://user:pass@host`) are sent as Basic auth and never shown.',
  },
  headers: {
    option: 'headers',
    env: ['OTEL_EXPORTER_OTLP_TRACES_HEADERS', 'OTEL_EXPORTER_OTLP_HEADERS'],
    check: checkHeaders,
    default: {},
    secret: true,
    label: 'header',
    doc: 'Request headers (`key=value,…`, percent-decoded); the traces variable wins over the other, the option over both. Values are never printed.',
  },
  apiKey: {
    option: 'apiKey',
    env: ['FORKTRACE_API_KEY'],
    parser: secretText,
    default: undefined,
    fallback: 'no API key',
    secret: true,
    label: 'API key',
    doc: 'Sent under `apiKeyHeader`; never printed.',
    show: (c) => (c.hasApiKey ? `set (sent in ${c.apiKeyHeader})` : 'not set'),
  },
  apiKeyHeader: {
    option: 'apiKeyHeader',
    env: ['FORKTRACE_API_KEY_HEADER'],
    parser: headerName,
    default: DEFAULT_API_KEY_HEADER,
    label: 'API key header',
    doc: 'The header the API key is sent under, e.g. `Mackerel-Api-Key`.',
  },
  compression: {
    option: 'compression',
    env: ['OTEL_EXPORTER_OTLP_TRACES_COMPRESSION', 'OTEL_EXPORTER_OTLP_COMPRESSION'],
    parser: COMPRESSION,
    default: 'gzip',
    label: 'compression',
    doc: 'Request body compression: `gzip` or `none`.',
  },
  timeoutMillis: {
    option: 'timeoutMillis',
    env: ['OTEL_EXPORTER_OTLP_TRACES_TIMEOUT', 'OTEL_EXPORTER_OTLP_TIMEOUT'],
    parser: REQUEST_TIMEOUT,
    default: 10_000,
    label: 'export timeout (ms)',
    doc: 'How long one export request may take.',
  },
  exporters: {
    option: 'exporters',
    env: ['OTEL_TRACES_EXPORTER'],
    parser: listOf(EXPORTERS, {
      accepted: 'otlp, console, none, or a comma list such as otlp,console',
      unique: true,
    }),
    default: ['otlp'] as ExporterName[],
    label: 'exporters',
    doc: 'Where spans go: `otlp`, `console`, `none`, or a list such as `otlp,console`.',
  },
  certificateFile: {
    env: ['OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE', 'OTEL_EXPORTER_OTLP_CERTIFICATE'],
    default: undefined,
    defaultDoc: 'the system CAs',
    label: 'CA certificate file',
    doc: 'PEM file of a private CA for an https endpoint; it replaces the built-in roots.',
    show: (c) => c.certificateFile ?? null,
  },
  requireTls: {
    env: ['FORKTRACE_REQUIRE_TLS'],
    parser: bool,
    default: false,
    label: 'require TLS',
    doc: '`true`: no export at all to plain `http://` on another machine (credentials sent that way warn by default).',
  },
  sampler: {
    option: 'sampler',
    env: ['OTEL_TRACES_SAMPLER'],
    parser: oneOf(SAMPLERS),
    default: 'parentbased_always_on',
    label: 'sampler',
    doc: 'The head sampler, named as the OpenTelemetry SDK names them.',
  },
  samplerRatio: {
    option: 'samplerRatio',
    env: ['OTEL_TRACES_SAMPLER_ARG'],
    parser: ratio,
    default: 1,
    label: 'sampler ratio',
    doc: 'The ratio of the `*traceidratio` samplers, 0 to 1.',
  },
  scheduledDelayMillis: {
    option: 'batch.scheduledDelayMillis',
    env: ['OTEL_BSP_SCHEDULE_DELAY'],
    parser: wholeNumber(0, 3_600_000),
    default: 5000,
    label: 'batch delay (ms)',
    doc: 'The longest a span waits in the queue before its batch is sent.',
  },
  exportTimeoutMillis: {
    option: 'batch.exportTimeoutMillis',
    env: ['OTEL_BSP_EXPORT_TIMEOUT'],
    parser: wholeNumber(1, 600_000),
    default: 30_000,
    label: 'batch export timeout (ms)',
    doc: 'How long the batch processor waits for one export, retries included.',
  },
  maxQueueSize: {
    option: 'batch.maxQueueSize',
    env: ['OTEL_BSP_MAX_QUEUE_SIZE'],
    parser: wholeNumber(1, 1_000_000),
    default: 2048,
    label: 'batch max queue',
    doc: 'Spans queued at most; spans past it are dropped and counted.',
  },
  maxExportBatchSize: {
    option: 'batch.maxExportBatchSize',
    env: ['OTEL_BSP_MAX_EXPORT_BATCH_SIZE'],
    parser: wholeNumber(1, 1_000_000),
    default: 512,
    label: 'batch max size',
    doc: 'Spans per export at most; never above the queue size.',
  },
  logLevel: {
    option: 'logLevel',
    env: ['OTEL_LOG_LEVEL'],
    parser: oneOf(LOG_LEVELS),
    default: 'warn',
    label: 'log level',
    doc: 'What forktrace and OpenTelemetry print on stderr, secrets scrubbed: `none`, `error`, `warn`, `info`, `debug`, `verbose`, `all`.',
  },
  excludedUrls: {
    option: 'excludedUrls',
    env: ['FORKTRACE_EXCLUDED_URLS'],
    check: checkExcludedUrls,
    default: [],
    label: 'excluded URLs',
    doc: 'Requests whose path matches one of these regular expressions (comma-separated in the variable) get no span.',
  },
  instrumentations: {
    option: 'instrumentations',
    env: ['OTEL_NODE_ENABLED_INSTRUMENTATIONS', 'OTEL_NODE_DISABLED_INSTRUMENTATIONS'],
    check: checkInstrumentations,
    default: { http: true, express: true, mysql2: true },
    defaultDoc: 'all on',
    label: 'instrumentations',
    doc: 'Turns `http`, `express`, `mysql2` on or off (`{ mysql2: false }`; comma lists in the variables).',
  },
  maskDbStatements: {
    option: 'maskDbStatements',
    env: ['FORKTRACE_MASK_DB_STATEMENTS'],
    parser: bool,
    default: true,
    label: 'mask SQL literals',
    doc: 'Replaces the literal values in `db.query.text` with `?`.',
  },
  expressLayers: {
    option: 'expressLayers',
    env: ['FORKTRACE_EXPRESS_LAYERS'],
    parser: listOf(EXPRESS_LAYERS, {
      accepted: `none, or a comma list of ${EXPRESS_LAYERS.join(', ')}`,
      noneIsEmpty: true,
    }),
    default: ['request_handler'] as ExpressLayerName[],
    label: 'express layers',
    doc: 'Express layers that get a span of their own: `none`, or a list of `request_handler`, `middleware`, `router`. The server span has `http.route` either way.',
  },
  expressPatch: {
    env: ['FORKTRACE_EXPRESS_PATCH'],
    parser: oneOf(['forktrace', 'upstream'] as const),
    default: 'forktrace',
    label: 'express layer patch',
    doc: "Which code wraps each express layer: `forktrace` (upstream's, rewritten to keep less alive between GCs; same spans) or `upstream` (instrumentation-express's own).",
  },
  httpPatch: {
    env: ['FORKTRACE_HTTP_PATCH'],
    parser: oneOf(['forktrace', 'upstream'] as const),
    default: 'forktrace',
    label: 'http server handler',
    doc: "Which code starts each request's server span: `forktrace` (upstream's, with the sampling decision before the attributes are collected; same spans) or `upstream` (instrumentation-http's own).",
  },
  instrumentPrimary: {
    option: 'instrumentPrimary',
    env: ['FORKTRACE_INSTRUMENT_PRIMARY'],
    parser: bool,
    default: false,
    label: 'trace cluster primary',
    doc: 'Traces a `node:cluster` primary too; by default it stops tracing when it forks its first worker.',
  },
  shutdownTimeoutMillis: {
    option: 'shutdownTimeoutMillis',
    env: ['FORKTRACE_SHUTDOWN_TIMEOUT_MS'],
    parser: wholeNumber(0, 60_000),
    default: 1000,
    label: 'stop flush deadline (ms)',
    doc: "The most a stop or an exit waits to deliver queued spans, below pm2's 1600 ms `kill_timeout`; 0 turns the stop flush and the exit delivery off.",
  },
  exitDelivery: {
    option: 'exitDelivery',
    env: ['FORKTRACE_EXIT_DELIVERY'],
    parser: oneOf(EXIT_DELIVERIES),
    default: 'send',
    label: 'crash/exit delivery',
    doc: 'What a crash or `process.exit()` does with the queue: `send` (spool what cannot be sent), `spool` (write only; the next start sends), `off`.',
  },
  spoolDir: {
    option: 'spoolDir',
    env: ['FORKTRACE_SPOOL_DIR'],
    parser: absolutePathOrNone,
    default: undefined,
    fallback: 'the default folder',
    defaultDoc: '`forktrace-spool-<uid>` in `os.tmpdir()`',
    label: 'spool folder',
    doc: 'Where spans an exit could not deliver wait for the next start: an absolute path, or `none` (option: `false`) for no spool.',
    show: (c) => c.spoolDir ?? null,
  },
  spoolMaxBytes: {
    option: 'spoolMaxBytes',
    env: ['FORKTRACE_SPOOL_MAX_BYTES'],
    parser: wholeNumber(65_536, 1_073_741_824),
    default: 8_388_608,
    defaultDoc: '8388608 (8 MiB)',
    label: 'spool max bytes',
    doc: 'Bytes one service keeps in the spool; the oldest files go first.',
  },
  spoolMaxAgeMillis: {
    option: 'spoolMaxAgeMillis',
    env: ['FORKTRACE_SPOOL_MAX_AGE_MS'],
    parser: wholeNumber(1000, 2_592_000_000),
    default: 86_400_000,
    defaultDoc: '86400000 (24 h)',
    label: 'spool max age (ms)',
    doc: 'Spooled spans older than this are removed, not sent.',
  },
  cacheDir: {
    env: ['FORKTRACE_CACHE_DIR'],
    parser: absolutePathOrNone,
    default: undefined,
    fallback: 'the default folder',
    defaultDoc: '`forktrace-cache-<uid>` in `os.tmpdir()`',
    label: 'preload code cache folder',
    doc: "Where the preload (`forktrace/register`) keeps V8's compiled code between starts, to start faster: an absolute path only you can write, or `none`.",
    show: (c) => c.cacheDir ?? null,
  },
  metricsExporters: {
    option: 'metrics.exporters',
    env: ['OTEL_METRICS_EXPORTER'],
    parser: listOf(METRICS_EXPORTERS, {
      accepted: 'otlp, prometheus, console, none, or a comma list such as otlp,prometheus',
      unique: true,
      noneIsEmpty: true,
    }),
    default: [] as MetricsExporterName[],
    fallback: 'none',
    defaultDoc: '`none`',
    label: 'metrics exporters',
    doc: 'Where metrics go: `otlp`, `prometheus` (one scrape endpoint for all workers), `console`, `none`, or a list. Off by default (see "Metrics"): a vendor may bill for them.',
    show: (c) => (c.metrics.exporters.length === 0 ? ['none'] : c.metrics.exporters),
  },
  metricsEndpoint: {
    option: 'metrics.endpoint',
    env: ['OTEL_EXPORTER_OTLP_METRICS_ENDPOINT', 'OTEL_EXPORTER_OTLP_ENDPOINT'],
    check: checkEndpoint,
    default: undefined,
    defaultDoc: 'the traces endpoint with `/v1/traces` replaced by `/v1/metrics`',
    label: 'metrics endpoint',
    doc: "The metrics URL: the first variable as-is, the second + `/v1/metrics`. Credentials in it are sent as Basic auth and never shown. On the traces endpoint's origin (scheme, host, port), metrics exports send the traces' headers, API key and CA file too; on another origin, only `OTEL_EXPORTER_OTLP_HEADERS`, this URL's credentials and the metrics headers, checked against the system CAs.",
    show: (c) => c.metrics.endpoint,
  },
  metricsHeaders: {
    option: 'metrics.headers',
    env: ['OTEL_EXPORTER_OTLP_METRICS_HEADERS'],
    check: checkHeaders,
    default: {},
    secret: true,
    label: 'metrics header',
    doc: "Headers for metrics exports only; they win over every other header, the API key included. Sent on top of the traces' headers and API key when the metrics endpoint has the traces' origin, else on top of `OTEL_EXPORTER_OTLP_HEADERS` alone. Values are never printed.",
    show: (c) => Object.keys(c.metrics.headers),
  },
  metricsCompression: {
    option: 'metrics.compression',
    env: ['OTEL_EXPORTER_OTLP_METRICS_COMPRESSION'],
    check: COMPRESSION.check,
    default: undefined,
    defaultDoc: "the traces' compression",
    label: 'metrics compression',
    doc: 'Metrics request body compression: `gzip` or `none`.',
    show: (c) => c.metrics.compression,
  },
  metricsTimeoutMillis: {
    option: 'metrics.timeoutMillis',
    env: ['OTEL_EXPORTER_OTLP_METRICS_TIMEOUT'],
    check: REQUEST_TIMEOUT.check,
    default: undefined,
    defaultDoc: "the traces' export timeout",
    label: 'metrics export timeout (ms)',
    doc: 'How long one metrics export request may take.',
    show: (c) => c.metrics.timeoutMillis,
  },
  metricsTemporality: {
    option: 'metrics.temporality',
    env: ['OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE'],
    parser: oneOf(TEMPORALITIES),
    default: 'cumulative',
    label: 'metrics temporality',
    doc: '`cumulative` (totals since the worker started), `delta` (what changed since the last export), or `lowmemory` (delta for counters and histograms).',
  },
  metricsExportIntervalMillis: {
    option: 'metrics.exportIntervalMillis',
    env: ['OTEL_METRIC_EXPORT_INTERVAL'],
    parser: wholeNumber(100, 86_400_000),
    default: 60_000,
    label: 'metrics interval (ms)',
    doc: 'How often metrics are exported; every stop path exports them once more.',
  },
  metricsExportTimeoutMillis: {
    option: 'metrics.exportTimeoutMillis',
    env: ['OTEL_METRIC_EXPORT_TIMEOUT'],
    parser: wholeNumber(1, 600_000),
    default: 30_000,
    label: 'metrics deadline (ms)',
    doc: 'How long one metrics export may take, retries included; never above the interval.',
    show: (c) => c.metrics.exportTimeoutMillis,
  },
  prometheusHost: {
    option: 'metrics.prometheus.host',
    env: ['OTEL_EXPORTER_PROMETHEUS_HOST'],
    parser: listenHost,
    default: 'localhost',
    label: 'Prometheus host',
    doc: 'The address the scrape endpoint listens on.',
  },
  prometheusPort: {
    option: 'metrics.prometheus.port',
    env: ['OTEL_EXPORTER_PROMETHEUS_PORT'],
    parser: wholeNumber(1, 65_535),
    default: 9464,
    label: 'Prometheus port',
    doc: "The scrape endpoint's port, shared by all workers of a pm2 app or node:cluster; give each app its own.",
  },
  prometheusPrefix: {
    option: 'metrics.prometheus.prefix',
    env: ['FORKTRACE_PROMETHEUS_PREFIX'],
    parser: metricPrefix,
    default: '',
    defaultDoc: 'none',
    label: 'Prometheus name prefix',
    show: (c) => c.metrics.prometheus.prefix || 'none',
    doc: 'Prepended to every metric name with `_`, e.g. `shop` gives `shop_http_server_request_duration_seconds`.',
  },
  prometheusExemplars: {
    option: 'metrics.prometheus.exemplars',
    env: ['FORKTRACE_PROMETHEUS_EXEMPLARS'],
    parser: bool,
    default: false,
    label: 'Prometheus exemplars',
    doc: "`true`: histogram buckets and counters carry the trace and span id of a sampled request, when the scraper asks for OpenMetrics (Prometheus's `--enable-feature=exemplar-storage`).",
  },
  prometheusDir: {
    option: 'metrics.prometheus.dir',
    env: ['FORKTRACE_PROMETHEUS_DIR'],
    check: absolutePath.check,
    default: undefined,
    defaultDoc: '`forktrace-metrics-<uid>` in `os.tmpdir()`',
    label: 'Prometheus state folder',
    doc: "Where each worker keeps its totals for the scrape, and a dead worker's stay: an absolute path; each port gets a folder inside it.",
    show: (c) => c.metrics.prometheus.dir,
  },
});

export type SettingKey = keyof typeof SETTINGS;

/** The rows, in table order. */
export const SETTING_ROWS: readonly Setting[] = Object.values(SETTINGS) as readonly Setting[];

/**
 * Variables forktrace reads that set no setting of the table: the protocol (forktrace has one,
 * and warns about any other) and the slot a node:cluster primary hands its workers.
 */
const OTHER_VARIABLES = [
  'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL',
  'OTEL_EXPORTER_OTLP_METRICS_PROTOCOL',
  'OTEL_EXPORTER_OTLP_PROTOCOL',
  'FORKTRACE_WORKER_INDEX',
] as const;

/** Every variable forktrace reads. */
export const KNOWN_VARIABLES: readonly string[] = [
  ...new Set([...SETTING_ROWS.flatMap((s) => s.env), ...OTHER_VARIABLES]),
];

/** The default as a warning names it: "Using <this>." */
export function fallbackText(s: Setting): string {
  if (s.fallback !== undefined) return s.fallback;
  return Array.isArray(s.default) ? s.default.join(', ') : String(s.default);
}
