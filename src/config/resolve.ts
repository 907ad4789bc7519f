/**
 * resolveConfig: options > env > defaults, `OTEL_SDK_DISABLED` over everything, a source for
 * every value. The regular settings come straight from the table (settings.ts); the few that are
 * more than "the first variable set, parsed" have a function each below.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import type { ExitDeliveryName, ExporterName, Finding, ForktraceOptions, MetricsExporterName } from '../types';
import { configMessages as messages } from '../worker/messages';
import { parseKeyValueList, redactUrl } from '../worker/secrets';
import { defaultCacheDir } from '../code-cache';
import { defaultHostFacts, defaultUser, findAppPackage, readTextFile } from './host';
import {
  absolutePath,
  INSTRUMENTATIONS,
  oneLine,
  plainHttpOffHost,
  read,
  splitList,
  urlProblem,
  type Parser,
} from './parsers';
import {
  COMPRESSION,
  DEFAULT_ENDPOINT,
  fallbackText,
  REQUEST_TIMEOUT,
  SETTING_ROWS,
  SETTINGS,
  UNKNOWN_SERVICE,
  type Setting,
  type SettingKey,
} from './settings';
import type {
  BatchConfig,
  Env,
  HostFacts,
  MetricsConfig,
  RedactedConfig,
  ResolvedConfig,
  Source,
  SpoolConfig,
} from './types';
import { optionAt, validateOptions } from './validate';

type Rows = typeof SETTINGS;
/** The settings read by their parser alone. */
type RegularKey = { [K in SettingKey]: Rows[K] extends { parser: Parser<unknown> } ? K : never }[SettingKey];
type Regular = { [K in RegularKey]: Rows[K] extends { parser: Parser<infer T> } ? T : never };

/** What one resolution has found so far: sources, variables, findings, secrets. */
class Resolution {
  readonly sources: Record<string, Source> = {};
  readonly variables: Record<string, string> = {};
  readonly findings: Finding[] = [];
  readonly secrets: string[] = [];
  /** Origins whose plain-http credentials have been warned about: traces and metrics share one. */
  readonly plainHttpWarned = new Set<string>();

  constructor(
    readonly options: ForktraceOptions,
    readonly env: Env,
    readonly host: HostFacts,
  ) {}

  read(name: string): string | undefined {
    return read(this.env, name);
  }

  /** The first of `names` that is set (not blank), with its value. */
  firstSet(names: readonly string[]): { name: string; raw: string } | undefined {
    for (const name of names) {
      const raw = this.read(name);
      if (raw !== undefined) return { name, raw };
    }
    return undefined;
  }

  envSource(name: string): Source {
    return this.host.pm2EnvKeys?.has(name) ? 'pm2 env' : 'env';
  }

  from(key: string, source: Source, variable?: string): void {
    this.sources[key] = source;
    if (variable === undefined) delete this.variables[key];
    else this.variables[key] = variable;
  }

  fromEnv(key: string, variable: string): void {
    this.from(key, this.envSource(variable), variable);
  }

  warn(code: string, setting: SettingKey, text: string, severity: Finding['severity'] = 'problem'): void {
    // A value may hold a line break; printed as is, it would forge a log line of its own.
    this.findings.push({ code, setting, severity, text: oneLine(text) });
  }

  /**
   * A regular setting: the option, else the first variable set (a bad value warns), else the
   * default. `fallback` replaces the row's default for a setting that defaults to another one.
   */
  regular(
    s: Setting & { parser: Parser<unknown> },
    fallback: { value: unknown; text: string } | undefined = undefined,
  ): unknown {
    const option = s.option === undefined ? undefined : optionAt(this.options, s.option);
    if (option !== undefined) {
      this.from(s.key, 'option');
      return option;
    }
    const set = this.firstSet(s.env);
    if (set !== undefined) {
      const value = s.parser.parse(set.raw);
      if (value !== undefined) {
        this.fromEnv(s.key, set.name);
        return value;
      }
      this.warn(
        'bad-value',
        s.key as SettingKey,
        s.secret
          ? messages.badEnvSecretValue(set.name, s.parser.refused ?? `is not ${s.parser.accepted}`, fallbackText(s))
          : messages.badEnvValue(set.name, set.raw, s.parser.accepted, fallback?.text ?? fallbackText(s)),
      );
    }
    this.from(s.key, 'default');
    return fallback ? fallback.value : s.default;
  }
}

/**
 * Resolves the configuration from options, the environment and facts about the host. Options
 * win over env, env over defaults; `OTEL_SDK_DISABLED=true` wins over everything. Pure: it
 * reports operator mistakes in `findings` instead of printing them, and throws only for a wrong
 * option (a programmer error), with a message naming the option and the fix.
 */
export function resolveConfig(
  options: ForktraceOptions = {},
  env: Env = process.env,
  host: HostFacts = defaultHostFacts(),
): ResolvedConfig {
  validateOptions(options);
  const r = new Resolution(options, env, host);
  const v = readRegularSettings(r);
  const resource = resolveResource(r);
  const target = resolveEndpoint(r);
  const apiKeyHeader = v.apiKeyHeader.toLowerCase();
  const apiKey = apiKeyLayer(v.apiKey, apiKeyHeader);
  const headers = mergeHeaders(r, target.credentials, [...tracesHeaderLayers(r, true), apiKey], 'headers');
  warnUnsupportedProtocol(r);
  const certificateFile = resolveCertificate(r, target.url);
  const exporters = applyTlsPolicy(r, target, headers, withoutNone(v.exporters), v.requireTls);
  const metrics = resolveMetrics(r, v, target, certificateFile, apiKey);
  const excludedUrls = resolveExcludedUrls(r);
  const instrumentations = resolveInstrumentations(r);
  const exitDelivery = resolveExitDelivery(r, v.exitDelivery, v.shutdownTimeoutMillis);
  // In table order, so that check and the log list them as the README does.
  const order = new Map(SETTING_ROWS.map((s, i) => [s.key, i]));
  const rank = (f: Finding) => order.get(f.setting ?? '') ?? SETTING_ROWS.length;
  const findings = r.findings
    .map((f, i) => ({ f, i }))
    .sort((a, b) => rank(a.f) - rank(b.f) || a.i - b.i)
    .map(({ f }) => f);
  return {
    ...(regularPart(v) as RegularPart),
    ...resource,
    endpoint: target.endpoint,
    headers,
    apiKeyHeader,
    hasApiKey: v.apiKey !== undefined,
    certificateFile,
    exporters,
    batch: batchConfig(v),
    excludedUrls,
    instrumentations,
    exitDelivery,
    spoolDir: resolveSpoolDir(r, v.spoolDir, exitDelivery),
    cacheDir: v.cacheDir === false ? undefined : (v.cacheDir ?? defaultCacheDir(r.host.tmpdir, r.host.user)),
    metrics,
    sources: r.sources,
    variables: r.variables,
    secrets: [...new Set(r.secrets.filter((s) => s.length > 0))],
    findings,
    warnings: findings.map((f) => f.text),
  };
}

/** Every regular setting, in table order. */
function readRegularSettings(r: Resolution): Regular {
  const out: Record<string, unknown> = {};
  for (const s of SETTING_ROWS)
    if (s.parser !== undefined) out[s.key] = r.regular(s as Setting & { parser: Parser<unknown> });
  return out as Regular;
}

/** The regular settings ResolvedConfig holds as they are: the rest is set by resolveConfig. */
type RegularPart = Pick<ResolvedConfig, Extract<RegularKey, keyof ResolvedConfig>>;

/**
 * The regular settings where ResolvedConfig has them: at their option path (`batch.maxQueueSize`),
 * else under their key. Secrets stay out: they reach the config only as headers.
 */
function regularPart(v: Regular): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const s of SETTING_ROWS) {
    if (s.parser === undefined || s.secret) continue;
    const parts = (s.option ?? s.key).split('.');
    let node = out;
    for (const part of parts.slice(0, -1)) node = (node[part] ??= {}) as Record<string, unknown>;
    node[parts[parts.length - 1] as string] = (v as Record<string, unknown>)[s.key];
  }
  return out;
}

function batchConfig(v: Regular): BatchConfig {
  const { scheduledDelayMillis, exportTimeoutMillis, maxQueueSize, maxExportBatchSize } = v;
  // As the BatchSpanProcessor itself would have it: a batch never holds more than the queue.
  return {
    scheduledDelayMillis,
    exportTimeoutMillis,
    maxQueueSize,
    maxExportBatchSize: Math.min(maxExportBatchSize, maxQueueSize),
  };
}

function withoutNone(exporters: ExporterName[]): ExporterName[] {
  return exporters.includes('none') && exporters.length > 1 ? exporters.filter((e) => e !== 'none') : exporters;
}

/**
 * Metrics go where the spans go unless a metrics variable says otherwise: the same vendor or
 * Collector, its `/v1/metrics`, with the same compression and timeout. What authenticates the
 * spans (their headers, the API key, the CA file) goes along only to the traces' origin: see
 * {@link resolveMetricsHeaders}.
 */
function resolveMetrics(
  r: Resolution,
  v: Regular,
  traces: Target,
  certificateFile: string | undefined,
  apiKey: HeaderLayer,
): MetricsConfig {
  const target = resolveMetricsEndpoint(r, traces, v.metricsExporters.includes('otlp'));
  const sameOrigin = target.url.origin === traces.url.origin;
  const headers = resolveMetricsHeaders(r, traces, target, sameOrigin, apiKey);
  const wanted = v.metricsExporters.filter((e): e is Exclude<MetricsExporterName, 'none'> => e !== 'none');
  const exporters = applyTlsPolicy(r, target, headers, wanted as ExporterName[], v.requireTls, 'metrics');
  const exportIntervalMillis = v.metricsExportIntervalMillis;
  return {
    exporters: exporters as MetricsExporterName[],
    endpoint: target.endpoint,
    headers,
    compression: r.regular(
      { ...SETTINGS.metricsCompression, parser: COMPRESSION },
      {
        value: v.compression,
        text: v.compression,
      },
    ) as MetricsConfig['compression'],
    timeoutMillis: r.regular(
      { ...SETTINGS.metricsTimeoutMillis, parser: REQUEST_TIMEOUT },
      {
        value: v.timeoutMillis,
        text: String(v.timeoutMillis),
      },
    ) as number,
    // A private CA is the traces endpoint's; another origin is checked against the system CAs.
    certificateFile: target.url.protocol === 'https:' && sameOrigin ? certificateFile : undefined,
    temporality: v.metricsTemporality,
    exportIntervalMillis,
    // The SDK's reader refuses a deadline above the interval; clamp it as the reader would.
    exportTimeoutMillis: Math.min(v.metricsExportTimeoutMillis, exportIntervalMillis),
    prometheus: {
      host: v.prometheusHost,
      port: v.prometheusPort,
      prefix: v.prometheusPrefix,
      exemplars: v.prometheusExemplars,
      // Per user and per port: the workers answering one port share it, whatever their app.
      dir: r.regular(
        { ...SETTINGS.prometheusDir, parser: absolutePath },
        {
          value: path.join(r.host.tmpdir ?? os.tmpdir(), `forktrace-metrics-${r.host.user ?? defaultUser()}`),
          text: 'the default folder',
        },
      ) as string,
      dirChosen: r.sources.prometheusDir !== 'default',
    },
  };
}

/**
 * The metrics URL: the option, the signal variable as-is, the generic one + /v1/metrics; else the
 * traces URL (credentials and all) with /v1/traces replaced, or its origin + /v1/metrics when its
 * path is not the standard one, said once, since that is a guess.
 */
function resolveMetricsEndpoint(r: Resolution, traces: Target, otlpOn: boolean): Target {
  if (r.options.metrics?.endpoint !== undefined) {
    r.from('metricsEndpoint', 'option');
    return target(r, r.options.metrics.endpoint);
  }
  // The generic variable's problem is said once, by the traces endpoint.
  const fromEnv = endpointFromEnv(r, 'metricsEndpoint', '/v1/metrics', 'the traces endpoint', false);
  if (fromEnv !== undefined) return target(r, fromEnv);
  r.from('metricsEndpoint', 'default');
  const url = new URL(traces.url.href);
  if (/\/v1\/traces\/?$/.test(url.pathname)) url.pathname = url.pathname.replace(/\/v1\/traces\/?$/, '/v1/metrics');
  else {
    url.pathname = '/v1/metrics';
    url.search = '';
    if (otlpOn)
      r.warn(
        'metrics-endpoint-guessed',
        'metricsEndpoint',
        messages.metricsEndpointGuessed(traces.endpoint, redactUrl(url.href, '')),
      );
  }
  return target(r, url.href);
}

type Resource = Pick<ResolvedConfig, 'serviceName' | 'serviceVersion' | 'environment' | 'resourceAttributes'>;

/**
 * `OTEL_RESOURCE_ATTRIBUTES` with the `resourceAttributes` option on top; its service.name,
 * service.version and deployment.environment(.name) keys become settings of their own.
 */
function resolveResource(r: Resolution): Resource {
  const attributes: Record<string, string | number | boolean> = {};
  const variable = 'OTEL_RESOURCE_ATTRIBUTES';
  const raw = r.read(variable);
  if (raw !== undefined) {
    const parsed = parseKeyValueList(raw);
    for (const p of parsed.problems)
      r.warn('bad-pair', 'resourceAttributes', messages.badPair(variable, 'attribute', p.key, p.why));
    Object.assign(attributes, parsed.values);
  }
  const fromEnv = new Set(Object.keys(attributes));
  const fromOption = new Set(Object.keys(r.options.resourceAttributes ?? {}));
  Object.assign(attributes, r.options.resourceAttributes);
  const sourceOf = (key: string): Source => (fromOption.has(key) ? 'option' : r.envSource(variable));
  const take = (...keys: string[]): ServiceAttribute | undefined => {
    for (const key of keys) {
      const v = attributes[key];
      if (v === undefined) continue;
      for (const k of keys) delete attributes[k];
      const source = sourceOf(key);
      return { value: String(v), source, variable: source === 'option' ? undefined : variable };
    }
    return undefined;
  };
  const attrs: ServiceAttributes = {
    service: take('service.name'),
    version: take('service.version'),
    environment: take('deployment.environment.name', 'deployment.environment'),
  };
  const left = Object.keys(attributes);
  if (left.some((k) => fromOption.has(k))) r.from('resourceAttributes', 'option');
  else if (left.some((k) => fromEnv.has(k))) r.fromEnv('resourceAttributes', variable);
  else r.from('resourceAttributes', 'default');
  const app = findAppPackage(r.host);
  return {
    serviceName: resolveServiceName(r, attrs, app),
    serviceVersion: resolveServiceVersion(r, attrs, app),
    environment: resolveEnvironment(r, attrs),
    resourceAttributes: attributes,
  };
}

/** A service.* key taken out of the resource attributes, and whose it was. */
interface ServiceAttribute {
  value: string;
  source: Source;
  /** The variable it came from; undefined when the option gave it. */
  variable: string | undefined;
}

/** Takes a setting's value from its resource attribute, recording where it came from. */
function fromAttribute(r: Resolution, key: SettingKey, a: ServiceAttribute): string {
  r.from(key, a.source, a.variable);
  return a.value;
}
interface ServiceAttributes {
  service?: ServiceAttribute;
  version?: ServiceAttribute;
  environment?: ServiceAttribute;
}
type AppPackage = ReturnType<typeof findAppPackage>;

/** The option, OTEL_SERVICE_NAME, the attribute, then pm2's app name and the package.json, each fallback said. */
function resolveServiceName(r: Resolution, attrs: ServiceAttributes, app: AppPackage): string {
  const fallback = (name: string, source: Source, from: string, severity: Finding['severity']) => {
    r.from('serviceName', source);
    r.warn('service-name-fallback', 'serviceName', messages.serviceNameFallback(name, from), severity);
    return name;
  };
  if (r.options.serviceName !== undefined) {
    r.from('serviceName', 'option');
    return r.options.serviceName;
  }
  const env = r.read('OTEL_SERVICE_NAME');
  if (env !== undefined) {
    r.fromEnv('serviceName', 'OTEL_SERVICE_NAME');
    return env;
  }
  if (attrs.service !== undefined) return fromAttribute(r, 'serviceName', attrs.service);
  // A name the app chose, if not on purpose: worth a note. unknown_service hides the app in a backend.
  if (r.host.pm2?.appName) return fallback(r.host.pm2.appName, 'pm2 app', 'the pm2 app name', 'note');
  if (app?.name) return fallback(app.name, 'package.json', app.file, 'note');
  return fallback(UNKNOWN_SERVICE, 'default', 'no setting and no package.json', 'problem');
}

function resolveServiceVersion(r: Resolution, attrs: ServiceAttributes, app: AppPackage): string | undefined {
  if (r.options.serviceVersion !== undefined) {
    r.from('serviceVersion', 'option');
    return r.options.serviceVersion;
  }
  if (attrs.version !== undefined) return fromAttribute(r, 'serviceVersion', attrs.version);
  r.from('serviceVersion', app?.version ? 'package.json' : 'default');
  return app?.version;
}

function resolveEnvironment(r: Resolution, attrs: ServiceAttributes): string | undefined {
  if (r.options.environment !== undefined) {
    r.from('environment', 'option');
    return r.options.environment;
  }
  if (attrs.environment !== undefined) return fromAttribute(r, 'environment', attrs.environment);
  const nodeEnv = r.read('NODE_ENV');
  if (nodeEnv !== undefined) r.fromEnv('environment', 'NODE_ENV');
  else r.from('environment', 'default');
  return nodeEnv;
}

interface Target {
  url: URL;
  /** The URL as it may be shown: without credentials. */
  endpoint: string;
  /** The URL's credentials as a Basic authorization header, if it had any. */
  credentials: Record<string, string>;
}

/**
 * The traces URL, per the OTLP exporter spec: the signal-specific variable as-is, the generic one
 * with /v1/traces appended; a bad one warns without quoting it and the next one is tried.
 */
function resolveEndpoint(r: Resolution): Target {
  if (r.options.endpoint !== undefined) {
    r.from('endpoint', 'option');
    return target(r, r.options.endpoint);
  }
  r.from('endpoint', 'default');
  return target(r, endpointFromEnv(r, 'endpoint', '/v1/traces', DEFAULT_ENDPOINT, true) ?? DEFAULT_ENDPOINT);
}

/**
 * A signal's URL from its two variables, per the OTLP exporter spec: the signal-specific one
 * as-is, the generic one with `suffix` appended. A bad one warns without quoting it (`fallback`
 * names what is used instead; `sayGeneric: false` leaves the generic variable's problem to the
 * signal that said it already) and the next one is tried. Records the variable read.
 */
function endpointFromEnv(
  r: Resolution,
  key: 'endpoint' | 'metricsEndpoint',
  suffix: string,
  fallback: string,
  sayGeneric: boolean,
): string | undefined {
  const [signal, generic] = SETTINGS[key].env;
  const genericValue = r.read(generic);
  for (const [name, value] of [
    [signal, r.read(signal)],
    [generic, genericValue === undefined ? undefined : genericValue.replace(/\/+$/, '') + suffix],
  ] as const) {
    if (value === undefined) continue;
    const why = urlProblem(value);
    if (why === undefined) {
      r.fromEnv(key, name);
      return value;
    }
    if (name === signal || sayGeneric) r.warn('bad-value', key, messages.badEnvSecretValue(name, why, fallback));
  }
  return undefined;
}

/** A URL as the exporters use it: credentials moved to an Authorization header, kept secret. */
function target(r: Resolution, endpoint: string): Target {
  const url = new URL(endpoint);
  const credentials: Record<string, string> = {};
  if (url.username !== '' || url.password !== '') {
    // Credentials in the URL become HTTP Basic auth; the URL itself is kept without them so that
    // it can be printed.
    const user = decodeUserinfo(url.username);
    const pass = decodeUserinfo(url.password);
    const basic = Buffer.from(`${user}:${pass}`).toString('base64');
    credentials['authorization'] = `Basic ${basic}`;
    r.secrets.push(user, pass, url.username, url.password, basic);
  }
  return { url, endpoint: redactUrl(url.href, ''), credentials };
}

/** Percent-decodes URL userinfo; a malformed escape is kept as written rather than thrown. */
function decodeUserinfo(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * The metrics headers. On the traces' origin (the same vendor or Collector): what the spans send
 * (the traces URL's credentials, the metrics URL's own, the header variables, the `headers` option,
 * the API key), so that the one vendor key in OTEL_EXPORTER_OTLP_TRACES_HEADERS or
 * FORKTRACE_API_KEY serves both. On another origin, per the OTLP exporter spec: the metrics URL's
 * credentials and OTEL_EXPORTER_OTLP_HEADERS only; the traces' own headers and the API key stay
 * with the spans, so that vendor A's key never goes to vendor B. Either way the metrics-only
 * headers (OTEL_EXPORTER_OTLP_METRICS_HEADERS, then the `metrics.headers` option) come last and
 * win, over the API key too.
 */
function resolveMetricsHeaders(
  r: Resolution,
  traces: Target,
  target: Target,
  sameOrigin: boolean,
  apiKey: HeaderLayer,
): Record<string, string> {
  const own: HeaderLayer[] = [];
  const [variable] = SETTINGS.metricsHeaders.env;
  const raw = r.read(variable);
  if (raw !== undefined) own.push(headerLayer(r, variable, 'metricsHeaders', raw));
  own.push([r.options.metrics?.headers, 'option', 'metricsHeaders']);
  r.from(
    'metricsHeaders',
    raw !== undefined ? r.envSource(variable) : r.options.metrics?.headers ? 'option' : 'default',
  );
  // The traces read these variables first: their problems are said once, there.
  if (sameOrigin)
    return mergeHeaders(
      r,
      { ...traces.credentials, ...target.credentials },
      [...tracesHeaderLayers(r, false), apiKey, ...own],
      'metricsHeaders',
    );
  const generic = SETTINGS.headers.env[1];
  const genericRaw = r.read(generic);
  const layers = genericRaw === undefined ? own : [headerLayer(r, generic, 'headers', genericRaw, false), ...own];
  return mergeHeaders(r, target.credentials, layers, 'metricsHeaders');
}

/**
 * The traces' header layers, lowest precedence first: the generic variable, the signal-specific
 * one, the option. Each bad pair warns when `say`.
 */
function tracesHeaderLayers(r: Resolution, say: boolean): HeaderLayer[] {
  const layers: HeaderLayer[] = [];
  for (const name of [...SETTINGS.headers.env].reverse()) {
    const raw = r.read(name);
    if (raw !== undefined) layers.push(headerLayer(r, name, 'headers', raw, say));
  }
  layers.push([r.options.headers, 'option', 'headers']);
  return layers;
}

/** The API key under its header, as a layer; its source is the `apiKey` setting's. */
function apiKeyLayer(apiKey: string | undefined, apiKeyHeader: string): HeaderLayer {
  return [apiKey === undefined ? undefined : { [apiKeyHeader]: apiKey }, undefined, 'apiKey'];
}

/**
 * Request headers: `base` (a URL's credentials), then each layer over the ones before it, names
 * compared case-insensitively. Sources are recorded for the layers of `setting` only: the metrics
 * read the traces' layers again, and must not change what those say.
 */
function mergeHeaders(
  r: Resolution,
  base: Record<string, string>,
  layers: HeaderLayer[],
  setting: 'headers' | 'metricsHeaders',
): Record<string, string> {
  const headers: Record<string, string> = { ...base };
  for (const [values, source, key] of layers) {
    for (const [k, v] of Object.entries(values ?? {})) {
      headers[k.toLowerCase()] = v;
      r.secrets.push(v);
      if (key === setting && source !== undefined) r.sources[`${key}.${k.toLowerCase()}`] = source;
    }
  }
  return headers;
}

/** Header values, where they came from (none for the API key), and the setting they belong to. */
type HeaderLayer = [Record<string, string> | undefined, Source | undefined, 'headers' | 'metricsHeaders' | 'apiKey'];

/** A header variable's pairs; each bad pair warns (once: `say`). */
function headerLayer(
  r: Resolution,
  name: string,
  key: 'headers' | 'metricsHeaders',
  raw: string,
  say = true,
): HeaderLayer {
  const parsed = parseKeyValueList(raw, { headers: true });
  if (say) for (const p of parsed.problems) r.warn('bad-pair', key, messages.badPair(name, 'header', p.key, p.why));
  return [parsed.values, r.envSource(name), key];
}

function warnUnsupportedProtocol(r: Resolution): void {
  const protocol = r.read('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') ?? r.read('OTEL_EXPORTER_OTLP_PROTOCOL');
  if (protocol !== undefined && protocol !== 'http/protobuf')
    r.warn('protocol-unsupported', 'endpoint', messages.protocolUnsupported(protocol));
  const metrics = r.read('OTEL_EXPORTER_OTLP_METRICS_PROTOCOL');
  if (metrics !== undefined && metrics !== 'http/protobuf')
    r.warn(
      'protocol-unsupported',
      'metricsEndpoint',
      messages.protocolUnsupported(metrics, 'OTEL_EXPORTER_OTLP_METRICS_PROTOCOL'),
    );
}

/** A custom CA for an https endpoint, per the OTLP exporter spec; it replaces the built-in roots. */
function resolveCertificate(r: Resolution, url: URL): string | undefined {
  r.from('certificateFile', 'default');
  const set = r.firstSet(SETTINGS.certificateFile.env);
  if (set === undefined) return undefined;
  const file = path.resolve(r.host.cwd, set.raw);
  const text = (r.host.readFile ?? readTextFile)(file);
  if (text === undefined) {
    r.warn('certificate-unreadable', 'certificateFile', messages.certificateUnreadable(set.name, file));
    return undefined;
  }
  if (!text.includes('-----BEGIN CERTIFICATE-----')) {
    r.warn('certificate-not-pem', 'certificateFile', messages.certificateNotPem(set.name, file));
    return undefined;
  }
  r.fromEnv('certificateFile', set.name);
  if (url.protocol !== 'https:') r.warn('certificate-unused', 'certificateFile', messages.certificateUnused(set.name));
  return file;
}

/**
 * Plain http off this machine puts the headers (the API key among them) on the network readable:
 * a warning, or with FORKTRACE_REQUIRE_TLS=true no OTLP export at all.
 */
function applyTlsPolicy(
  r: Resolution,
  target: Target,
  headers: Record<string, string>,
  exporters: ExporterName[],
  requireTls: boolean,
  signal: 'spans' | 'metrics' = 'spans',
): ExporterName[] {
  if (!exporters.includes('otlp') || !plainHttpOffHost(target.url)) return exporters;
  if (requireTls) {
    r.warn('tls-required', 'requireTls', messages.tlsRequired(target.endpoint, signal));
    return exporters.filter((e) => e !== 'otlp');
  }
  // Said once when metrics go to the same host as the spans.
  if (Object.keys(headers).length > 0 && !r.plainHttpWarned.has(target.url.origin)) {
    r.plainHttpWarned.add(target.url.origin);
    r.warn(
      'credentials-over-http',
      signal === 'spans' ? 'headers' : 'metricsHeaders',
      messages.credentialsOverHttp(target.endpoint, Object.keys(headers)),
    );
  }
  return exporters;
}

/** The option's strings and RegExps, else the variable's comma list; a bad entry warns and is left out. */
function resolveExcludedUrls(r: Resolution): RegExp[] {
  const excluded: RegExp[] = [];
  if (r.options.excludedUrls !== undefined) {
    r.from('excludedUrls', 'option');
    // A /g or /y RegExp keeps state between test() calls and would skip every other request.
    for (const e of r.options.excludedUrls)
      excluded.push(typeof e === 'string' ? new RegExp(e) : new RegExp(e.source, e.flags.replace(/[gy]/g, '')));
    return excluded;
  }
  const [name] = SETTINGS.excludedUrls.env;
  const raw = r.read(name);
  if (raw === undefined) {
    r.from('excludedUrls', 'default');
    return excluded;
  }
  r.fromEnv('excludedUrls', name);
  for (const source of splitList(raw)) {
    try {
      excluded.push(new RegExp(source));
    } catch {
      r.warn(
        'bad-value',
        'excludedUrls',
        messages.badEnvValue(name, source, 'comma-separated regular expressions', 'no exclusion for this entry'),
      );
    }
  }
  return excluded;
}

/** All on; OTEL_NODE_ENABLED_INSTRUMENTATIONS keeps only those named, …_DISABLED turns some off, the option wins. */
function resolveInstrumentations(r: Resolution): ResolvedConfig['instrumentations'] {
  const on: ResolvedConfig['instrumentations'] = { ...SETTINGS.instrumentations.default };
  r.from('instrumentations', 'default');
  const [enabled, disabled] = SETTINGS.instrumentations.env;
  for (const [name, enable] of [
    [enabled, true],
    [disabled, false],
  ] as const) {
    const raw = r.read(name);
    if (raw === undefined) continue;
    const list = splitList(raw).map((s) => s.toLowerCase().replace(/^@opentelemetry\/instrumentation-/, ''));
    // `none` in the enabled list means none, as an empty list would.
    const unknown = list.filter(
      (s) => !(INSTRUMENTATIONS as readonly string[]).includes(s) && !(enable && s === 'none'),
    );
    if (unknown.length > 0)
      r.warn(
        'bad-value',
        'instrumentations',
        messages.badEnvValue(name, unknown.join(','), INSTRUMENTATIONS.join(', '), 'the known names only'),
      );
    if (r.variables.instrumentations === undefined) r.fromEnv('instrumentations', name);
    else r.sources.instrumentations = r.envSource(name);
    for (const i of INSTRUMENTATIONS) {
      if (enable) on[i] = list.includes(i) && on[i];
      else if (list.includes(i)) on[i] = false;
    }
  }
  if (r.options.instrumentations !== undefined) {
    r.from('instrumentations', 'option');
    Object.assign(on, r.options.instrumentations);
  }
  return on;
}

/**
 * An exit delivers within the stop deadline, so a deadline of 0 turns it off; the config says so,
 * with the setting that decided it as its source, so that `forktrace check` shows what will happen.
 */
function resolveExitDelivery(r: Resolution, value: ExitDeliveryName, shutdownTimeoutMillis: number): ExitDeliveryName {
  if (value === 'off' || shutdownTimeoutMillis > 0) return value;
  r.from('exitDelivery', r.sources.shutdownTimeoutMillis ?? 'default', r.variables.shutdownTimeoutMillis);
  return 'off';
}

/**
 * The spool folder, or undefined for none: FORKTRACE_SPOOL_DIR=none, `spoolDir: false`, or no
 * exit delivery at all. The default is straight in the temporary folder, whose sticky bit keeps
 * others from replacing it once made, and per user.
 */
function resolveSpoolDir(
  r: Resolution,
  value: string | false | undefined,
  exitDelivery: ExitDeliveryName,
): string | undefined {
  if (value === false || exitDelivery === 'off') return undefined;
  return value ?? path.join(r.host.tmpdir ?? os.tmpdir(), `forktrace-spool-${r.host.user ?? defaultUser()}`);
}

/** The spool's settings together, or undefined when there is no spool. */
export function spoolConfig(
  config: Pick<ResolvedConfig, 'spoolDir' | 'spoolMaxBytes' | 'spoolMaxAgeMillis' | 'sources'>,
): SpoolConfig | undefined {
  if (config.spoolDir === undefined) return undefined;
  const source = config.sources.spoolDir;
  return {
    dir: config.spoolDir,
    maxBytes: config.spoolMaxBytes,
    maxAgeMillis: config.spoolMaxAgeMillis,
    chosen: source !== undefined && source !== 'default',
  };
}

export function redactConfig(config: ResolvedConfig): RedactedConfig {
  const { secrets: _secrets, ...rest } = config;
  void _secrets;
  const redacted = (h: Record<string, string>) => Object.fromEntries(Object.keys(h).map((k) => [k, '[REDACTED]']));
  return {
    ...rest,
    headers: redacted(config.headers),
    metrics: { ...config.metrics, headers: redacted(config.metrics.headers) },
    excludedUrls: config.excludedUrls.map((r) => String(r)),
  };
}

export { defaultHostFacts } from './host';
export { DEFAULT_API_KEY_HEADER, DEFAULT_ENDPOINT } from './settings';
export { isLoopbackHost, plainHttpOffHost } from './parsers';
export type { RedactedConfig, ResolvedConfig } from './types';
