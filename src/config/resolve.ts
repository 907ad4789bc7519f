import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type {
  ExitDeliveryName,
  ExporterName,
  ExpressLayerName,
  ForktraceOptions,
  LogLevelName,
  SamplerName,
} from '../types';
import { parseKeyValueList, redactUrl } from '../worker/secrets';

/** Where a resolved setting came from, as `forktrace check` prints it. */
export type Source = 'option' | 'env' | 'pm2 env' | 'package.json' | 'pm2 app' | 'default';

/** Environment variables, as `process.env` holds them. */
export type Env = Readonly<Record<string, string | undefined>>;

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
}

/** The spool's settings together, or undefined when there is no spool. */
export function spoolConfig(
  config: Pick<ResolvedConfig, 'spoolDir' | 'spoolMaxBytes' | 'spoolMaxAgeMillis'>,
): SpoolConfig | undefined {
  return config.spoolDir === undefined
    ? undefined
    : { dir: config.spoolDir, maxBytes: config.spoolMaxBytes, maxAgeMillis: config.spoolMaxAgeMillis };
}

/** The resolved configuration: plain data, built only by {@link resolveConfig}. */
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
  /** Request headers, API key included. Secret: see {@link redactConfig}. */
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
  instrumentPrimary: boolean;
  shutdownTimeoutMillis: number;
  /** What an exit that cannot wait (a crash, `process.exit()`) does with the queued spans. */
  exitDelivery: ExitDeliveryName;
  /** Absolute path of the spool folder, where spans an exit could not deliver wait for the next start; undefined: no spool. */
  spoolDir: string | undefined;
  spoolMaxBytes: number;
  spoolMaxAgeMillis: number;
  /** Where each setting came from. */
  sources: Record<string, Source>;
  /** Every secret value, so that output can be scrubbed of them. */
  secrets: string[];
  /** Operator mistakes and fallbacks, one line each, to print once. */
  warnings: string[];
}

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
const INSTRUMENTATIONS = ['http', 'express', 'mysql2'] as const;
const EXIT_DELIVERIES: readonly ExitDeliveryName[] = ['send', 'spool', 'off'];
/** FORKTRACE_SPOOL_DIR's value that turns the spool off. */
const NO_SPOOL = 'none';

/** Bounds of the numeric settings: [option name, env var, min, max, default]. */
const NUMBERS = {
  timeoutMillis: ['timeoutMillis', 'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT', 1, 600_000, 10_000],
  scheduledDelayMillis: ['batch.scheduledDelayMillis', 'OTEL_BSP_SCHEDULE_DELAY', 0, 3_600_000, 5000],
  exportTimeoutMillis: ['batch.exportTimeoutMillis', 'OTEL_BSP_EXPORT_TIMEOUT', 1, 600_000, 30_000],
  maxQueueSize: ['batch.maxQueueSize', 'OTEL_BSP_MAX_QUEUE_SIZE', 1, 1_000_000, 2048],
  maxExportBatchSize: ['batch.maxExportBatchSize', 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 1, 1_000_000, 512],
  shutdownTimeoutMillis: ['shutdownTimeoutMillis', 'FORKTRACE_SHUTDOWN_TIMEOUT_MS', 0, 60_000, 1000],
  spoolMaxBytes: ['spoolMaxBytes', 'FORKTRACE_SPOOL_MAX_BYTES', 65_536, 1_073_741_824, 8_388_608],
  spoolMaxAgeMillis: ['spoolMaxAgeMillis', 'FORKTRACE_SPOOL_MAX_AGE_MS', 1000, 2_592_000_000, 86_400_000],
} as const;

/** Messages, exported so that tests can assert them word for word. */
export const messages = {
  badEnvValue: (name: string, value: string, accepted: string, fallback: string) =>
    `${name}="${value}" is not supported; accepted: ${accepted}. Using ${fallback}.`,
  badEnvSecretValue: (name: string, why: string, fallback: string) => `${name} ${why}. Using ${fallback}.`,
  serviceNameFallback: (name: string, from: string) =>
    `service.name is "${name}" (from ${from}); set OTEL_SERVICE_NAME or the \`serviceName\` option to choose it.`,
  badHeaderPair: (variable: string, key: string, why: string) => `${variable}: header "${key}" ${why}`,
  protocolUnsupported: (value: string) =>
    `OTEL_EXPORTER_OTLP_PROTOCOL="${value}" is not supported; forktrace sends http/protobuf. Unset it or set http/protobuf.`,
  certificateUnreadable: (name: string, file: string) =>
    `${name}: cannot read "${file}"; using the system CAs. Fix the path or unset ${name}.`,
  certificateNotPem: (name: string, file: string) =>
    `${name}: "${file}" holds no PEM certificate (-----BEGIN CERTIFICATE-----); using the system CAs.`,
  certificateUnused: (name: string) => `${name} is set but the endpoint is http://, so it is not used; use https://.`,
  credentialsOverHttp: (endpoint: string, headerNames: string[]) =>
    `the credentials in ${headerNames.join(', ')} are sent unencrypted to ${endpoint}, which is not this machine. Use an https:// endpoint, or set FORKTRACE_REQUIRE_TLS=true to refuse.`,
  tlsRequired: (endpoint: string) =>
    `FORKTRACE_REQUIRE_TLS=true and the endpoint ${endpoint} is plain http to another machine: no spans are exported. Use an https:// endpoint, or unset FORKTRACE_REQUIRE_TLS.`,
} as const;

/** Blank counts as unset. */
function read(env: Env, name: string): string | undefined {
  const v = env[name];
  if (v === undefined) return undefined;
  const t = v.trim();
  return t === '' ? undefined : t;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Resolves the configuration from options, the environment and facts about the host. Options
 * win over env, env over defaults; `OTEL_SDK_DISABLED=true` wins over everything. Pure: it
 * reports operator mistakes in `warnings` instead of printing them, and throws only for a wrong
 * option (a programmer error), with a message naming the option and the fix.
 */
export function resolveConfig(
  options: ForktraceOptions = {},
  env: Env = process.env,
  host: HostFacts = defaultHostFacts(),
): ResolvedConfig {
  validateOptions(options);
  const warnings: string[] = [];
  const secrets: string[] = [];
  const sources: Record<string, Source> = {};
  const envSource = (name: string): Source => (host.pm2EnvKeys?.has(name) ? 'pm2 env' : 'env');

  /** options > env > default, recording the source. */
  function pick<T>(
    key: string,
    option: T | undefined,
    envName: string | undefined,
    parse: (raw: string, name: string) => T | undefined,
    fallback: T,
  ): T {
    if (option !== undefined) {
      sources[key] = 'option';
      return option;
    }
    if (envName !== undefined) {
      const raw = read(env, envName);
      if (raw !== undefined) {
        const parsed = parse(raw, envName);
        if (parsed !== undefined) {
          sources[key] = envSource(envName);
          return parsed;
        }
      }
    }
    sources[key] = 'default';
    return fallback;
  }

  const enumParser =
    <T extends string>(accepted: readonly T[], fallback: string) =>
    (raw: string, name: string): T | undefined => {
      const v = raw.toLowerCase() as T;
      if (accepted.includes(v)) return v;
      warnings.push(messages.badEnvValue(name, raw, accepted.join(', '), fallback));
      return undefined;
    };
  const boolParser = (fallback: boolean) => (raw: string, name: string) => {
    const v = raw.toLowerCase();
    if (v === 'true') return true;
    if (v === 'false') return false;
    warnings.push(messages.badEnvValue(name, raw, 'true, false', String(fallback)));
    return undefined;
  };
  const numberParser = (min: number, max: number, fallback: number) => (raw: string, name: string) => {
    const n = Number(raw);
    if (/^\s*-?\d+(\.\d+)?\s*$/.test(raw) && Number.isFinite(n) && n >= min && n <= max) return Math.floor(n);
    warnings.push(messages.badEnvValue(name, raw, `a whole number from ${min} to ${max}`, String(fallback)));
    return undefined;
  };
  function num(key: keyof typeof NUMBERS, option: number | undefined, envName?: string): number {
    const [, defaultEnv, min, max, fallback] = NUMBERS[key];
    return pick(key, option, envName ?? defaultEnv, numberParser(min, max, fallback), fallback);
  }

  const disabled = pick('disabled', undefined, 'OTEL_SDK_DISABLED', boolParser(false), false);

  // Resource attributes: OTEL_RESOURCE_ATTRIBUTES, then the option on top.
  const resourceAttributes: Record<string, string | number | boolean> = {};
  const rawAttrs = read(env, 'OTEL_RESOURCE_ATTRIBUTES');
  if (rawAttrs !== undefined) {
    const parsed = parseKeyValueList(rawAttrs);
    for (const p of parsed.problems)
      warnings.push(messages.badHeaderPair('OTEL_RESOURCE_ATTRIBUTES', p.key, p.why).replace('header ', 'attribute '));
    Object.assign(resourceAttributes, parsed.values);
  }
  Object.assign(resourceAttributes, options.resourceAttributes);
  const takeAttr = (key: string): string | undefined => {
    const v = resourceAttributes[key];
    delete resourceAttributes[key];
    return v === undefined ? undefined : String(v);
  };
  const attrService = takeAttr('service.name');
  const attrVersion = takeAttr('service.version');
  const attrEnvironment = takeAttr('deployment.environment.name') ?? takeAttr('deployment.environment');
  const attrSource = envSource('OTEL_RESOURCE_ATTRIBUTES');

  // The application's package.json: from the entry script, unless that is a library or a process
  // manager's wrapper (pm2 runs ProcessContainer.js from its own package), else from the cwd.
  const app = findAppPackage(host);

  let serviceName: string;
  if (options.serviceName !== undefined) {
    serviceName = options.serviceName;
    sources.serviceName = 'option';
  } else if (read(env, 'OTEL_SERVICE_NAME') !== undefined) {
    serviceName = read(env, 'OTEL_SERVICE_NAME') as string;
    sources.serviceName = envSource('OTEL_SERVICE_NAME');
  } else if (attrService !== undefined) {
    serviceName = attrService;
    sources.serviceName = attrSource;
  } else if (host.pm2?.appName) {
    serviceName = host.pm2.appName;
    sources.serviceName = 'pm2 app';
    warnings.push(messages.serviceNameFallback(serviceName, 'the pm2 app name'));
  } else if (app?.name) {
    serviceName = app.name;
    sources.serviceName = 'package.json';
    warnings.push(messages.serviceNameFallback(serviceName, app.file));
  } else {
    serviceName = UNKNOWN_SERVICE;
    sources.serviceName = 'default';
    warnings.push(messages.serviceNameFallback(serviceName, 'no setting and no package.json'));
  }

  let serviceVersion: string | undefined;
  if (options.serviceVersion !== undefined) {
    serviceVersion = options.serviceVersion;
    sources.serviceVersion = 'option';
  } else if (attrVersion !== undefined) {
    serviceVersion = attrVersion;
    sources.serviceVersion = attrSource;
  } else if (app?.version) {
    serviceVersion = app.version;
    sources.serviceVersion = 'package.json';
  } else {
    sources.serviceVersion = 'default';
  }

  let environment: string | undefined;
  if (options.environment !== undefined) {
    environment = options.environment;
    sources.environment = 'option';
  } else if (attrEnvironment !== undefined) {
    environment = attrEnvironment;
    sources.environment = attrSource;
  } else if (read(env, 'NODE_ENV') !== undefined) {
    environment = read(env, 'NODE_ENV');
    sources.environment = envSource('NODE_ENV');
  } else {
    sources.environment = 'default';
  }

  // Endpoint, per the OTLP exporter spec: the signal-specific variable is used as-is, the
  // generic one gets /v1/traces appended.
  let endpointRaw: string;
  if (options.endpoint !== undefined) {
    endpointRaw = options.endpoint;
    sources.endpoint = 'option';
  } else {
    endpointRaw = DEFAULT_ENDPOINT;
    sources.endpoint = 'default';
    const signal = read(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
    const generic = read(env, 'OTEL_EXPORTER_OTLP_ENDPOINT');
    for (const [name, value] of [
      ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', signal],
      ['OTEL_EXPORTER_OTLP_ENDPOINT', generic === undefined ? undefined : generic.replace(/\/+$/, '') + '/v1/traces'],
    ] as const) {
      if (value === undefined) continue;
      const why = urlProblem(value);
      if (why === undefined) {
        endpointRaw = value;
        sources.endpoint = envSource(name);
        break;
      }
      warnings.push(messages.badEnvSecretValue(name, why, DEFAULT_ENDPOINT));
    }
  }
  const url = new URL(endpointRaw);
  const headers: Record<string, string> = {};
  if (url.username !== '' || url.password !== '') {
    // Credentials in the URL become HTTP Basic auth; the URL itself is kept without them so that
    // it can be printed.
    const user = decodeUserinfo(url.username);
    const pass = decodeUserinfo(url.password);
    const basic = Buffer.from(`${user}:${pass}`).toString('base64');
    headers['authorization'] = `Basic ${basic}`;
    secrets.push(user, pass, url.username, url.password, basic);
  }
  const endpoint = redactUrl(url.href, '');

  // Headers: generic < signal-specific < option, keys compared case-insensitively.
  const headerSources: Array<[string, Record<string, string> | undefined, Source]> = [];
  for (const name of ['OTEL_EXPORTER_OTLP_HEADERS', 'OTEL_EXPORTER_OTLP_TRACES_HEADERS']) {
    const raw = read(env, name);
    if (raw === undefined) continue;
    const parsed = parseKeyValueList(raw, { headers: true });
    for (const p of parsed.problems) warnings.push(messages.badHeaderPair(name, p.key, p.why));
    headerSources.push([name, parsed.values, envSource(name)]);
  }
  headerSources.push(['headers', options.headers, 'option']);
  for (const [, values, source] of headerSources) {
    for (const [k, v] of Object.entries(values ?? {})) {
      headers[k.toLowerCase()] = v;
      secrets.push(v);
      sources[`headers.${k.toLowerCase()}`] = source;
    }
  }

  const apiKeyHeader = pick(
    'apiKeyHeader',
    options.apiKeyHeader,
    'FORKTRACE_API_KEY_HEADER',
    (raw, name) => {
      if (/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(raw)) return raw.toLowerCase();
      warnings.push(messages.badEnvValue(name, raw, 'an HTTP header name such as x-api-key', DEFAULT_API_KEY_HEADER));
      return undefined;
    },
    DEFAULT_API_KEY_HEADER,
  ).toLowerCase();
  const apiKey = pick(
    'apiKey',
    options.apiKey,
    'FORKTRACE_API_KEY',
    (raw, name) => {
      if (!/[\r\n\0]/.test(raw)) return raw;
      warnings.push(messages.badEnvSecretValue(name, 'contains a line break or NUL (header injection)', 'no API key'));
      return undefined;
    },
    undefined as string | undefined,
  );
  if (apiKey !== undefined) {
    headers[apiKeyHeader] = apiKey;
    secrets.push(apiKey);
  }

  const protocol = read(env, 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') ?? read(env, 'OTEL_EXPORTER_OTLP_PROTOCOL');
  if (protocol !== undefined && protocol !== 'http/protobuf') warnings.push(messages.protocolUnsupported(protocol));

  const compressionEnv =
    read(env, 'OTEL_EXPORTER_OTLP_TRACES_COMPRESSION') !== undefined
      ? 'OTEL_EXPORTER_OTLP_TRACES_COMPRESSION'
      : 'OTEL_EXPORTER_OTLP_COMPRESSION';
  const compression = pick(
    'compression',
    options.compression,
    compressionEnv,
    enumParser(['gzip', 'none'] as const, 'gzip'),
    'gzip',
  );
  const timeoutEnv =
    read(env, 'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT') !== undefined
      ? 'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT'
      : 'OTEL_EXPORTER_OTLP_TIMEOUT';
  const timeoutMillis = num('timeoutMillis', options.timeoutMillis, timeoutEnv);

  const exporters = pick(
    'exporters',
    options.exporters,
    'OTEL_TRACES_EXPORTER',
    (raw, name) => {
      const list = splitList(raw).map((s) => s.toLowerCase());
      const bad = list.filter((e) => !EXPORTERS.includes(e as ExporterName));
      if (list.length === 0 || bad.length > 0) {
        warnings.push(
          messages.badEnvValue(name, raw, 'otlp, console, none, or a comma list such as otlp,console', 'otlp'),
        );
        return undefined;
      }
      return [...new Set(list as ExporterName[])];
    },
    ['otlp'] as ExporterName[],
  );
  let activeExporters =
    exporters.includes('none') && exporters.length > 1 ? exporters.filter((e) => e !== 'none') : exporters;

  // A custom CA for an https endpoint, per the OTLP exporter spec. It replaces the built-in roots.
  const certEnv =
    read(env, 'OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE') !== undefined
      ? 'OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE'
      : 'OTEL_EXPORTER_OTLP_CERTIFICATE';
  let certificateFile: string | undefined;
  sources.certificateFile = 'default';
  const certRaw = read(env, certEnv);
  if (certRaw !== undefined) {
    const file = path.resolve(host.cwd, certRaw);
    const text = (host.readFile ?? readTextFile)(file);
    if (text === undefined) warnings.push(messages.certificateUnreadable(certEnv, file));
    else if (!text.includes('-----BEGIN CERTIFICATE-----')) warnings.push(messages.certificateNotPem(certEnv, file));
    else {
      certificateFile = file;
      sources.certificateFile = envSource(certEnv);
      if (url.protocol !== 'https:') warnings.push(messages.certificateUnused(certEnv));
    }
  }

  // Plain http off this machine: headers (the API key among them) cross the network readable.
  const requireTls = pick('requireTls', undefined, 'FORKTRACE_REQUIRE_TLS', boolParser(false), false);
  if (activeExporters.includes('otlp') && url.protocol === 'http:' && !isLoopbackHost(url.hostname)) {
    if (requireTls) {
      warnings.push(messages.tlsRequired(endpoint));
      activeExporters = activeExporters.filter((e) => e !== 'otlp');
    } else if (Object.keys(headers).length > 0) {
      warnings.push(messages.credentialsOverHttp(endpoint, Object.keys(headers)));
    }
  }

  const sampler = pick(
    'sampler',
    options.sampler,
    'OTEL_TRACES_SAMPLER',
    enumParser(SAMPLERS, 'parentbased_always_on'),
    'parentbased_always_on',
  );
  const samplerRatio = pick(
    'samplerRatio',
    options.samplerRatio,
    'OTEL_TRACES_SAMPLER_ARG',
    (raw, name) => {
      const n = Number(raw);
      if (Number.isFinite(n) && n >= 0 && n <= 1) return n;
      warnings.push(messages.badEnvValue(name, raw, 'a number from 0 to 1', '1'));
      return undefined;
    },
    1,
  );

  const b = options.batch ?? {};
  const batch: BatchConfig = {
    scheduledDelayMillis: num('scheduledDelayMillis', b.scheduledDelayMillis),
    exportTimeoutMillis: num('exportTimeoutMillis', b.exportTimeoutMillis),
    maxQueueSize: num('maxQueueSize', b.maxQueueSize),
    maxExportBatchSize: num('maxExportBatchSize', b.maxExportBatchSize),
  };
  if (batch.maxExportBatchSize > batch.maxQueueSize) batch.maxExportBatchSize = batch.maxQueueSize;

  const logLevel = pick('logLevel', options.logLevel, 'OTEL_LOG_LEVEL', enumParser(LOG_LEVELS, 'warn'), 'warn');

  const excludedUrls: RegExp[] = [];
  if (options.excludedUrls !== undefined) {
    sources.excludedUrls = 'option';
    // A /g or /y RegExp keeps state between test() calls and would skip every other request.
    for (const e of options.excludedUrls) {
      excludedUrls.push(typeof e === 'string' ? new RegExp(e) : new RegExp(e.source, e.flags.replace(/[gy]/g, '')));
    }
  } else {
    sources.excludedUrls = 'default';
    const raw = read(env, 'FORKTRACE_EXCLUDED_URLS');
    if (raw !== undefined) {
      sources.excludedUrls = envSource('FORKTRACE_EXCLUDED_URLS');
      for (const source of splitList(raw)) {
        try {
          excludedUrls.push(new RegExp(source));
        } catch {
          warnings.push(
            messages.badEnvValue(
              'FORKTRACE_EXCLUDED_URLS',
              source,
              'comma-separated regular expressions',
              'no exclusion for this entry',
            ),
          );
        }
      }
    }
  }

  const instrumentations = { http: true, express: true, mysql2: true };
  sources.instrumentations = 'default';
  for (const [name, enable] of [
    ['OTEL_NODE_ENABLED_INSTRUMENTATIONS', true],
    ['OTEL_NODE_DISABLED_INSTRUMENTATIONS', false],
  ] as const) {
    const raw = read(env, name);
    if (raw === undefined) continue;
    const list = splitList(raw).map((s) => s.toLowerCase().replace(/^@opentelemetry\/instrumentation-/, ''));
    // `none` in the enabled list means none, as an empty list would.
    const unknown = list.filter(
      (s) => !(INSTRUMENTATIONS as readonly string[]).includes(s) && !(enable && s === 'none'),
    );
    if (unknown.length > 0)
      warnings.push(messages.badEnvValue(name, unknown.join(','), INSTRUMENTATIONS.join(', '), 'the known names only'));
    sources.instrumentations = envSource(name);
    for (const i of INSTRUMENTATIONS) {
      if (enable) instrumentations[i] = list.includes(i) && instrumentations[i];
      else if (list.includes(i)) instrumentations[i] = false;
    }
  }
  if (options.instrumentations !== undefined) {
    sources.instrumentations = 'option';
    Object.assign(instrumentations, options.instrumentations);
  }

  const maskDbStatements = pick(
    'maskDbStatements',
    options.maskDbStatements,
    'FORKTRACE_MASK_DB_STATEMENTS',
    boolParser(true),
    true,
  );
  const expressLayers = pick(
    'expressLayers',
    options.expressLayers,
    'FORKTRACE_EXPRESS_LAYERS',
    (raw, name) => {
      if (raw.toLowerCase() === 'none') return [];
      const list = splitList(raw).map((s) => s.toLowerCase());
      if (list.length > 0 && list.every((l) => EXPRESS_LAYERS.includes(l as ExpressLayerName)))
        return list as ExpressLayerName[];
      warnings.push(
        messages.badEnvValue(name, raw, `none, or a comma list of ${EXPRESS_LAYERS.join(', ')}`, 'request_handler'),
      );
      return undefined;
    },
    ['request_handler'] as ExpressLayerName[],
  );

  const instrumentPrimary = pick(
    'instrumentPrimary',
    options.instrumentPrimary,
    'FORKTRACE_INSTRUMENT_PRIMARY',
    boolParser(false),
    false,
  );
  const shutdownTimeoutMillis = num('shutdownTimeoutMillis', options.shutdownTimeoutMillis);

  const exitDelivery = pick(
    'exitDelivery',
    options.exitDelivery,
    'FORKTRACE_EXIT_DELIVERY',
    enumParser(EXIT_DELIVERIES, 'send'),
    'send',
  );
  // Straight in the temporary folder, whose sticky bit keeps others from replacing it once made.
  const defaultSpoolDir = () => path.join(host.tmpdir ?? os.tmpdir(), `forktrace-spool-${host.user ?? defaultUser()}`);
  const spoolDir = pick(
    'spoolDir',
    options.spoolDir,
    'FORKTRACE_SPOOL_DIR',
    (raw, name): string | false | undefined => {
      if (raw.toLowerCase() === NO_SPOOL) return false;
      // Under pm2 the preload runs in the daemon's cwd, not the app's: a relative path would
      // land wherever pm2 was first started.
      if (path.isAbsolute(raw)) return path.normalize(raw);
      warnings.push(messages.badEnvValue(name, raw, `an absolute path, or ${NO_SPOOL}`, 'the default folder'));
      return undefined;
    },
    undefined as string | false | undefined,
  );
  const spoolMaxBytes = num('spoolMaxBytes', options.spoolMaxBytes);
  const spoolMaxAgeMillis = num('spoolMaxAgeMillis', options.spoolMaxAgeMillis);

  return {
    disabled,
    serviceName,
    serviceVersion,
    environment,
    resourceAttributes,
    endpoint,
    headers,
    apiKeyHeader,
    hasApiKey: apiKey !== undefined,
    compression,
    timeoutMillis,
    certificateFile,
    requireTls,
    exporters: activeExporters,
    sampler,
    samplerRatio,
    batch,
    logLevel,
    excludedUrls,
    instrumentations,
    maskDbStatements,
    expressLayers,
    instrumentPrimary,
    shutdownTimeoutMillis,
    exitDelivery,
    spoolDir: spoolDir === false || exitDelivery === 'off' ? undefined : (spoolDir ?? defaultSpoolDir()),
    spoolMaxBytes,
    spoolMaxAgeMillis,
    sources,
    secrets: [...new Set(secrets.filter((s) => s.length > 0))],
    // A value may hold a line break; printed as is, it would forge a log line of its own.
    warnings: warnings.map(oneLine),
  };
}

/** The resolved config as it may be shown: header values and credentials replaced. */
export type RedactedConfig = Omit<ResolvedConfig, 'secrets' | 'excludedUrls'> & { excludedUrls: string[] };

export function redactConfig(config: ResolvedConfig): RedactedConfig {
  const { secrets: _secrets, ...rest } = config;
  void _secrets;
  return {
    ...rest,
    headers: Object.fromEntries(Object.keys(config.headers).map((k) => [k, '[REDACTED]'])),
    excludedUrls: config.excludedUrls.map((r) => String(r)),
  };
}

/** Percent-decodes URL userinfo; a malformed escape is kept as written rather than thrown. */
function decodeUserinfo(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function readTextFile(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** Whether `hostname` (as URL.hostname gives it) is this machine's loopback interface. */
function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (/^\d+\.\d+\.\d+\.\d+$/.test(h)) return h.startsWith('127.');
  return h === '::1' || /^::ffff:127\./.test(h) || /^::ffff:7f/.test(h);
}

function splitList(raw: string): string[] {
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** Why `value` is not a usable exporter URL, without quoting it (it may hold credentials). */
function urlProblem(value: string): string | undefined {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    return 'is not a URL (expected e.g. https://otlp.example.com/v1/traces)';
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    return `uses the unsupported scheme "${u.protocol.replace(/:$/, '')}" (use http or https)`;
  }
  // An '@' the parser did not take as the end of credentials: a password holding '/', '?' or '#'
  // unencoded ends the host early, and the rest of it would be shown as the URL's path.
  if (
    `${u.host}${u.pathname}${u.search}${u.hash}`.includes('@') ||
    (value.includes('@') && u.username === '' && u.password === '')
  ) {
    return "has an '@' outside the credentials: percent-encode '/', '?', '#' and '@' in the user name and password";
  }
  return undefined;
}

/** Control characters escaped, as JSON would write them, so that a message stays on one line. */
function oneLine(text: string): string {
  const named: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };
  return text.replace(
    // eslint-disable-next-line no-control-regex
    /[\x00-\x1f\x7f\u2028\u2029]/g,
    (c) => named[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** Throws for a wrong option: a programmer error, named in backticks with the fix. */
function validateOptions(o: unknown): asserts o is ForktraceOptions {
  if (o === undefined) return;
  if (!isPlainObject(o)) throw new TypeError('`options` must be an object, e.g. instrument({ serviceName: "api" }).');
  const strings = ['serviceName', 'serviceVersion', 'environment', 'apiKey'] as const;
  for (const k of strings) {
    const v = o[k];
    if (v !== undefined && (typeof v !== 'string' || v.trim() === '')) {
      throw new TypeError(`\`${k}\` must be a non-empty string; remove it to use the default.`);
    }
  }
  if (typeof o.apiKey === 'string' && /[\r\n\0]/.test(o.apiKey)) {
    throw new TypeError('`apiKey` must not contain a line break or NUL; check how the key was read.');
  }
  if (
    o.apiKeyHeader !== undefined &&
    (typeof o.apiKeyHeader !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(o.apiKeyHeader))
  ) {
    throw new TypeError('`apiKeyHeader` must be an HTTP header name, e.g. "x-api-key" or "Mackerel-Api-Key".');
  }
  if (o.endpoint !== undefined) {
    const why = typeof o.endpoint === 'string' ? urlProblem(o.endpoint) : 'is not a string';
    if (why !== undefined) throw new TypeError(`\`endpoint\` ${why}.`);
  }
  if (o.headers !== undefined) {
    if (!isPlainObject(o.headers)) throw new TypeError('`headers` must be an object of header names to string values.');
    for (const [k, v] of Object.entries(o.headers)) {
      if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(k))
        throw new TypeError(`\`headers\`: "${oneLine(k)}" is not a valid HTTP header name.`);
      if (typeof v !== 'string') throw new TypeError(`\`headers\`: the value of "${k}" must be a string.`);
      if (/[\r\n\0]/.test(v))
        throw new TypeError(
          `\`headers\`: the value of "${k}" contains a line break or NUL (header injection); remove it.`,
        );
    }
  }
  if (o.resourceAttributes !== undefined) {
    if (!isPlainObject(o.resourceAttributes))
      throw new TypeError('`resourceAttributes` must be an object of string, number or boolean values.');
    for (const [k, v] of Object.entries(o.resourceAttributes)) {
      if (!['string', 'number', 'boolean'].includes(typeof v))
        throw new TypeError(`\`resourceAttributes\`: "${oneLine(k)}" must be a string, number or boolean.`);
    }
  }
  const oneOf = (key: string, value: unknown, accepted: readonly string[]) => {
    if (value !== undefined && !accepted.includes(value as string)) {
      throw new TypeError(`\`${key}\` must be one of ${accepted.map((a) => `"${a}"`).join(', ')}.`);
    }
  };
  oneOf('compression', o.compression, ['gzip', 'none']);
  oneOf('exitDelivery', o.exitDelivery, EXIT_DELIVERIES);
  if (o.spoolDir !== undefined && o.spoolDir !== false) {
    if (typeof o.spoolDir !== 'string' || !path.isAbsolute(o.spoolDir))
      throw new TypeError('`spoolDir` must be an absolute path, or false for no spool.');
  }
  oneOf('sampler', o.sampler, SAMPLERS);
  oneOf('logLevel', o.logLevel, LOG_LEVELS);
  const listOf = (key: string, value: unknown, accepted: readonly string[]) => {
    if (value === undefined) return;
    if (!Array.isArray(value)) throw new TypeError(`\`${key}\` must be an array, e.g. ["${accepted[0]}"].`);
    for (const v of value) oneOf(`${key}[]`, v, accepted);
  };
  listOf('exporters', o.exporters, EXPORTERS);
  listOf('expressLayers', o.expressLayers, EXPRESS_LAYERS);
  const numberOption = (name: string, value: unknown, min: number, max: number) => {
    if (value === undefined) return;
    if (typeof value !== 'number' || !Number.isFinite(value))
      throw new TypeError(`\`${name}\` must be a finite number.`);
    if (value < min || value > max)
      throw new RangeError(`\`${name}\` must be between ${min} and ${max}; got ${value}.`);
  };
  for (const [key, spec] of Object.entries(NUMBERS)) {
    const [name, , min, max] = spec;
    const value = name.startsWith('batch.') ? (isPlainObject(o.batch) ? o.batch[key] : undefined) : o[key];
    numberOption(name, value, min, max);
  }
  if (o.batch !== undefined && !isPlainObject(o.batch))
    throw new TypeError('`batch` must be an object, e.g. { maxQueueSize: 2048 }.');
  numberOption('samplerRatio', o.samplerRatio, 0, 1);
  for (const key of ['maskDbStatements', 'instrumentPrimary'] as const) {
    if (o[key] !== undefined && typeof o[key] !== 'boolean') throw new TypeError(`\`${key}\` must be true or false.`);
  }
  if (o.instrumentations !== undefined) {
    if (!isPlainObject(o.instrumentations))
      throw new TypeError('`instrumentations` must be an object such as { mysql2: false }.');
    for (const [k, v] of Object.entries(o.instrumentations)) {
      if (!(INSTRUMENTATIONS as readonly string[]).includes(k))
        throw new TypeError(
          `\`instrumentations.${oneLine(k)}\` is unknown; forktrace has ${INSTRUMENTATIONS.join(', ')}.`,
        );
      if (typeof v !== 'boolean') throw new TypeError(`\`instrumentations.${k}\` must be true or false.`);
    }
  }
  if (o.excludedUrls !== undefined) {
    if (!Array.isArray(o.excludedUrls))
      throw new TypeError('`excludedUrls` must be an array of strings or RegExps, e.g. ["^/health$"].');
    for (const e of o.excludedUrls) {
      if (e instanceof RegExp) continue;
      if (typeof e !== 'string') throw new TypeError('`excludedUrls` entries must be strings or RegExps.');
      try {
        new RegExp(e);
      } catch {
        throw new TypeError(`\`excludedUrls\`: "${oneLine(e)}" is not a valid regular expression.`);
      }
    }
  }
}

interface AppPackage {
  file: string;
  name?: string;
  version?: string;
}

/**
 * Finds the application's package.json by walking up from the entry script's folder (or the cwd
 * when the entry is inside node_modules, as pm2's ProcessContainer is), never entering or
 * crossing a node_modules folder, so that a library's manifest is never taken for the app's.
 */
export function findAppPackage(host: HostFacts): AppPackage | undefined {
  const starts: string[] = [];
  const entry = host.pm2?.script ?? host.entryScript;
  if (entry && !isInsideNodeModules(entry)) starts.push(path.dirname(path.resolve(host.cwd, entry)));
  starts.push(host.pm2?.cwd ?? host.cwd);
  for (const start of starts) {
    if (isInsideNodeModules(start)) continue;
    let dir = path.resolve(start);
    for (;;) {
      const file = path.join(dir, 'package.json');
      const json = host.readJson(file);
      if (isPlainObject(json)) {
        return {
          file,
          name: typeof json.name === 'string' && json.name !== '' ? json.name : undefined,
          version: typeof json.version === 'string' && json.version !== '' ? json.version : undefined,
        };
      }
      const parent = path.dirname(dir);
      if (parent === dir || path.basename(parent) === 'node_modules') break;
      dir = parent;
    }
  }
  return undefined;
}

function isInsideNodeModules(p: string): boolean {
  return p.split(/[\\/]/).includes('node_modules');
}

/** The uid on POSIX, else the user name, made safe for a file name. */
function defaultUser(): string {
  const uid = process.getuid?.();
  if (uid !== undefined) return String(uid);
  try {
    return os.userInfo().username.replace(/[^A-Za-z0-9_.-]/g, '_');
  } catch {
    return 'user';
  }
}

/** What config needs of pm2's view of the app (src/worker/pm2.ts readPm2). */
export interface Pm2View {
  appName?: string;
  cwd?: string;
  script?: string;
  envKeys?: ReadonlySet<string>;
}

/** The real host, read when resolveConfig is called (never at import time). */
export function defaultHostFacts(pm2?: Pm2View): HostFacts {
  return {
    entryScript: process.argv[1],
    cwd: process.cwd(),
    readJson(file) {
      try {
        return JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
      } catch {
        return undefined;
      }
    },
    pm2: pm2 && { appName: pm2.appName, cwd: pm2.cwd, script: pm2.script },
    pm2EnvKeys: pm2?.envKeys,
  };
}
