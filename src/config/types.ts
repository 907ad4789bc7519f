import type {
  ExitDeliveryName,
  ExporterName,
  ExpressLayerName,
  Finding,
  LogLevelName,
  MetricsExporterName,
  MetricsTemporalityName,
  SamplerName,
} from '../types';

/** Where a resolved setting came from, as `forktrace check` prints it. */
export type Source = 'option' | 'env' | 'pm2 env' | 'package.json' | 'pm2 app' | 'default';

/** Environment variables, as `process.env` holds them. */
export type Env = Readonly<Record<string, string | undefined>>;

/** What config needs of pm2's view of the app (src/worker/pm2.ts `readPm2`). */
export interface Pm2View {
  appName?: string;
  cwd?: string;
  script?: string;
  /** Env keys whose value came from pm2's `pm2_env`, not from the real environment. */
  envKeys?: ReadonlySet<string>;
}

/** Facts about the host process that config needs; injectable so resolveConfig stays testable. */
export interface HostFacts {
  /** The application's entry script (argv[1]), if any. */
  entryScript?: string;
  cwd: string;
  /** Returns the parsed JSON at `file`, or undefined when it cannot be read. */
  readJson(file: string): unknown;
  /** pm2's view of the app, when running under pm2. */
  pm2?: { appName?: string; cwd?: string; script?: string };
  /** Env keys whose value came from pm2's `pm2_env`, not from the real environment. */
  pm2EnvKeys?: ReadonlySet<string>;
  /** Returns the text of `file`, or undefined when it cannot be read (the CA file). Default: fs. */
  readFile?(file: string): string | undefined;
  /** The folder the default spool folder goes in. Default: `os.tmpdir()`. */
  tmpdir?: string;
  /** Who runs the process, so that the default spool folder is per user. Default: the uid. */
  user?: string;
}

export interface BatchConfig {
  scheduledDelayMillis: number;
  exportTimeoutMillis: number;
  maxQueueSize: number;
  maxExportBatchSize: number;
}

export interface SpoolConfig {
  /** Absolute path of the per-user spool folder; each service has a folder inside it. */
  dir: string;
  /** Bound on the bytes of one service's spool folder; the oldest files go first. */
  maxBytes: number;
  /** Files older than this are removed, not delivered. */
  maxAgeMillis: number;
  /**
   * The user named `dir` (FORKTRACE_SPOOL_DIR, `spoolDir`): its mode is theirs, so forktrace
   * never changes it, and says so when others may write to it.
   */
  chosen?: boolean;
}

/** Where and how metrics are exported. */
export interface MetricsConfig {
  /** The exporters, `none` left out: empty when metrics are off. */
  exporters: MetricsExporterName[];
  /** The metrics URL, without credentials (they move to an Authorization header). */
  endpoint: string;
  /**
   * Request headers: the traces' (API key included) only on the traces' origin, the metrics-only
   * ones last. Secret: see `redactConfig`.
   */
  headers: Record<string, string>;
  compression: 'gzip' | 'none';
  timeoutMillis: number;
  /** The traces' `certificateFile`, when the metrics endpoint is https on the traces' origin. */
  certificateFile: string | undefined;
  temporality: MetricsTemporalityName;
  exportIntervalMillis: number;
  /** Never above `exportIntervalMillis`. */
  exportTimeoutMillis: number;
  prometheus: PrometheusConfig;
}

/** The scrape endpoint the workers of one app share. */
export interface PrometheusConfig {
  host: string;
  port: number;
  prefix: string;
  exemplars: boolean;
  /** Absolute path of the folder the workers keep their totals in: one folder per port inside it. */
  dir: string;
  /** Whether the user chose `dir` (its mode is theirs), or it is forktrace's default. */
  dirChosen: boolean;
}

/** The resolved configuration: plain data, built only by `resolveConfig`. */
export interface ResolvedConfig {
  /** True when `OTEL_SDK_DISABLED=true`: instrument() returns a no-op handle. */
  disabled: boolean;
  serviceName: string;
  serviceVersion: string | undefined;
  environment: string | undefined;
  /** Merged `OTEL_RESOURCE_ATTRIBUTES` + `resourceAttributes`, minus the keys above. */
  resourceAttributes: Record<string, string | number | boolean>;
  /** The traces URL, without credentials (they move to an Authorization header). */
  endpoint: string;
  /** Request headers, API key included. Secret: see `redactConfig`. */
  headers: Record<string, string>;
  apiKeyHeader: string;
  hasApiKey: boolean;
  compression: 'gzip' | 'none';
  timeoutMillis: number;
  /** PEM file of the CA(s) that sign the endpoint's certificate (`OTEL_EXPORTER_OTLP_CERTIFICATE`). */
  certificateFile: string | undefined;
  /** `FORKTRACE_REQUIRE_TLS=true`: an http:// endpoint off this machine gets no export at all. */
  requireTls: boolean;
  exporters: ExporterName[];
  sampler: SamplerName;
  samplerRatio: number;
  batch: BatchConfig;
  logLevel: LogLevelName;
  excludedUrls: RegExp[];
  instrumentations: { http: boolean; express: boolean; mysql2: boolean };
  maskDbStatements: boolean;
  expressLayers: ExpressLayerName[];
  /** Which layer patch the express instrumentation uses (worker/express-layer.ts). */
  expressPatch: 'forktrace' | 'upstream';
  /** Which code handles a server's requests (worker/http-server.ts or instrumentation-http's own). */
  httpPatch: 'forktrace' | 'upstream';
  instrumentPrimary: boolean;
  shutdownTimeoutMillis: number;
  /** What an exit that cannot wait (a crash, `process.exit()`) does with the queued spans. */
  exitDelivery: ExitDeliveryName;
  /** Absolute path of the spool folder, where spans an exit could not deliver wait for the next start; undefined: no spool. */
  spoolDir: string | undefined;
  spoolMaxBytes: number;
  spoolMaxAgeMillis: number;
  /** Absolute path of the preload's code cache folder (code-cache.ts); undefined: none. */
  cacheDir: string | undefined;
  metrics: MetricsConfig;
  /** Where each setting came from. */
  sources: Record<string, Source>;
  /** For each setting that came from the environment: the variable it was read from. */
  variables: Record<string, string>;
  /** Every secret value, so that output can be scrubbed of them. */
  secrets: string[];
  /** Operator mistakes and fallbacks, in the order of the settings table. */
  findings: Finding[];
  /** The texts of `findings`, one line each, to print once. */
  warnings: string[];
}

/** The resolved config as it may be shown: header values and credentials replaced. */
export type RedactedConfig = Omit<ResolvedConfig, 'secrets' | 'excludedUrls'> & { excludedUrls: string[] };
