/**
 * The logic behind `forktrace check`: resolve the configuration exactly as a worker would, send
 * one real (empty) export, and say in plain words what is wrong. Nothing here prints; the CLI
 * (src/cli/check.ts) decides how to show the report.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import * as zlib from 'node:zlib';
import {
  defaultHostFacts,
  redactConfig,
  resolveConfig,
  type Env,
  type HostFacts,
  type RedactedConfig,
  type ResolvedConfig,
  type Source,
} from '../../config/resolve';
import { apiMessages, findApi, planGlobals } from '../../worker/app-api';
import { describeExportError, describeHttpStatus, type Diagnosis } from '../../worker/diagnose';
import { nodeTooOld, tooOldMessage } from '../../worker/node-version';
import { readPm2 } from '../../worker/pm2';
import { Redactor } from '../../worker/secrets';

/** A problem in what `check` was asked to do (a missing ecosystem file, an unknown app). */
export class CheckInputError extends Error {
  override name = 'CheckInputError';
}

/** The pm2 app `check --pm2` configures from, as pm2 would start it. */
export interface Pm2App {
  /** The ecosystem file, absolute. */
  file: string;
  name: string;
  /** pm2's `pm_cwd`: the app's `cwd` resolved from the current directory, as pm2 does. */
  cwd: string;
  /** pm2's `pm_exec_path`: the script resolved from `cwd`. */
  script: string;
  /** `--env <name>`: the `env_<name>` block pm2 would merge over `env`. */
  envName?: string;
  /** The app's `env`, values as pm2 keeps them (objects stringified, numbers left as numbers). */
  env: Record<string, unknown>;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Loads an ecosystem file the way `pm2 start <file>` does (pm2 7 `API.js` `_startJson`,
 * `Common.js` `verifyConfs`, `prepareAppConf`, `mergeEnvironmentVariables`): `apps` (or `pm2`,
 * or the file itself) holds the apps; the app's name defaults to its script's base name; a
 * relative `cwd` is resolved from the current directory, not from the file's folder.
 */
export function loadPm2App(file: string, appName?: string, envName?: string, cwd = process.cwd()): Pm2App {
  const abs = path.resolve(cwd, file);
  if (!fs.existsSync(abs)) throw new CheckInputError(`ecosystem file not found: ${abs}`);
  let loaded: unknown;
  try {
    loaded = require(abs) as unknown;
  } catch (e) {
    throw new CheckInputError(
      `cannot load the ecosystem file ${abs}: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`,
    );
  }
  const root = isObject(loaded) && 'default' in loaded && isObject(loaded.default) ? loaded.default : loaded;
  const list: unknown = isObject(root) ? (root.apps ?? root.pm2 ?? root) : root;
  const apps = (Array.isArray(list) ? list : [list]).filter(isObject);
  if (apps.length === 0)
    throw new CheckInputError(`${abs} defines no apps (expected module.exports = { apps: [...] })`);
  const scriptOf = (a: Record<string, unknown>) => [a.script, a.cmd, a.command].find((s) => typeof s === 'string');
  const nameOf = (a: Record<string, unknown>) => {
    if (typeof a.name === 'string' && a.name !== '') return a.name;
    const s = scriptOf(a);
    return typeof s === 'string' ? path.basename(s, path.extname(s)) : 'undefined';
  };
  const app = appName === undefined ? apps[0] : apps.find((a) => nameOf(a) === appName);
  if (app === undefined) {
    throw new CheckInputError(
      `no app named "${appName ?? ''}" in ${abs}; it has: ${apps.map((a) => JSON.stringify(nameOf(a))).join(', ')}`,
    );
  }
  const script = scriptOf(app);
  if (typeof script !== 'string') throw new CheckInputError(`app "${nameOf(app)}" in ${abs} has no script`);
  const appCwd = typeof app.cwd === 'string' && app.cwd !== '' ? path.resolve(cwd, app.cwd) : cwd;

  const env: Record<string, unknown> = {};
  const merge = (block: unknown) => {
    if (!isObject(block)) return;
    for (const [k, v] of Object.entries(block)) {
      if (v === undefined) continue;
      env[k] = typeof v === 'object' && v !== null ? JSON.stringify(v) : v;
    }
  };
  merge(app.env);
  if (envName !== undefined) {
    if (!isObject(app[`env_${envName}`])) {
      throw new CheckInputError(`app "${nameOf(app)}" in ${abs} has no env_${envName} block (--env ${envName})`);
    }
    merge(app[`env_${envName}`]);
  }
  return {
    file: abs,
    name: nameOf(app),
    cwd: appCwd,
    script: path.resolve(appCwd, script),
    ...(envName === undefined ? {} : { envName }),
    env,
  };
}

/** What `check` resolved, and from where. */
export interface CheckConfig {
  config: ResolvedConfig;
  /** The folder the app's `require()` resolves libraries from. */
  appDir: string;
  pm2?: Pm2App;
  /** With `pm2`: the app's OTEL_ / FORKTRACE_ settings the preload does not read, one sentence each. */
  unread?: string[];
}

/** Why a key of the ecosystem `env` does not reach the preload, and the fix. */
export function pm2EnvNotRead(key: string, value: unknown): string {
  // The value is not shown: it may be a key, and one the preload never read is not among the
  // secrets that output is scrubbed of.
  const kind = value === null ? 'null' : `a ${typeof value}`;
  return (
    `${key} in the app's env is ${kind}, which forktrace's preload does not read from pm2_env: ` +
    `the worker starts without it. Write the value as a string (in quotes).`
  );
}

/**
 * Resolves the configuration through the same `resolveConfig` and (with `pm2`) the same `readPm2`
 * a worker's preload uses: the worker sees the ecosystem `env` only inside `pm2_env`, so that is
 * where it is put here too, and settings from it are reported as sourced from 'pm2 env'.
 */
export function resolveCheckConfig(opts: { pm2?: Pm2App; script?: string; env?: Env; cwd?: string }): CheckConfig {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  if (opts.pm2) {
    const app = opts.pm2;
    // The shape of pm2_env the preload reads (pm2 merges the app's env into its top level).
    const pm2Env = { ...app.env, name: app.name, pm_cwd: app.cwd, pm_exec_path: app.script, env: app.env };
    const pm2 = readPm2({ ...env, pm2_env: JSON.stringify(pm2Env) });
    const host: HostFacts = { ...defaultHostFacts(pm2), entryScript: app.script, cwd: app.cwd };
    const config = resolveConfig(undefined, pm2?.env ?? env, host);
    // A setting in the app's env that the preload did not take from pm2_env (null, or a value
    // pm2 would not turn into a usable string).
    const unread = Object.entries(app.env)
      .filter(([k]) => /^(OTEL_|FORKTRACE_)/.test(k) && !(pm2?.envKeys.has(k) ?? false))
      .map(([k, v]) => pm2EnvNotRead(k, v));
    return { config, appDir: path.dirname(app.script), pm2: app, unread };
  }
  const script = opts.script === undefined ? undefined : path.resolve(cwd, opts.script);
  const host: HostFacts = { ...defaultHostFacts(), entryScript: script, cwd };
  return { config: resolveConfig(undefined, env, host), appDir: script ? path.dirname(script) : cwd };
}

/** One setting as `check` shows it. */
export interface SettingReport {
  value: unknown;
  source: Source | 'endpoint URL';
  /** The variable that set it, when it came from the environment. */
  variable?: string;
}

/** Setting → the variables that can set it, in the order resolveConfig reads them. */
const VARIABLES: Record<string, string[]> = {
  disabled: ['OTEL_SDK_DISABLED'],
  serviceName: ['OTEL_SERVICE_NAME', 'OTEL_RESOURCE_ATTRIBUTES'],
  serviceVersion: ['OTEL_RESOURCE_ATTRIBUTES'],
  environment: ['OTEL_RESOURCE_ATTRIBUTES', 'NODE_ENV'],
  endpoint: ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'OTEL_EXPORTER_OTLP_ENDPOINT'],
  apiKey: ['FORKTRACE_API_KEY'],
  apiKeyHeader: ['FORKTRACE_API_KEY_HEADER'],
  compression: ['OTEL_EXPORTER_OTLP_TRACES_COMPRESSION', 'OTEL_EXPORTER_OTLP_COMPRESSION'],
  timeoutMillis: ['OTEL_EXPORTER_OTLP_TRACES_TIMEOUT', 'OTEL_EXPORTER_OTLP_TIMEOUT'],
  exporters: ['OTEL_TRACES_EXPORTER'],
  sampler: ['OTEL_TRACES_SAMPLER'],
  samplerRatio: ['OTEL_TRACES_SAMPLER_ARG'],
  scheduledDelayMillis: ['OTEL_BSP_SCHEDULE_DELAY'],
  exportTimeoutMillis: ['OTEL_BSP_EXPORT_TIMEOUT'],
  maxQueueSize: ['OTEL_BSP_MAX_QUEUE_SIZE'],
  maxExportBatchSize: ['OTEL_BSP_MAX_EXPORT_BATCH_SIZE'],
  logLevel: ['OTEL_LOG_LEVEL'],
  excludedUrls: ['FORKTRACE_EXCLUDED_URLS'],
  instrumentations: ['OTEL_NODE_ENABLED_INSTRUMENTATIONS', 'OTEL_NODE_DISABLED_INSTRUMENTATIONS'],
  maskDbStatements: ['FORKTRACE_MASK_DB_STATEMENTS'],
  expressLayers: ['FORKTRACE_EXPRESS_LAYERS'],
  instrumentPrimary: ['FORKTRACE_INSTRUMENT_PRIMARY'],
  shutdownTimeoutMillis: ['FORKTRACE_SHUTDOWN_TIMEOUT_MS'],
};

/**
 * Every setting with its value and source, secrets replaced: header values are `[REDACTED]`, the
 * API key shows only whether it is set. Built from {@link redactConfig}, never from the raw config.
 */
export function settingsReport(config: ResolvedConfig, env: Env): Record<string, SettingReport> {
  const r: RedactedConfig = redactConfig(config);
  const out: Record<string, SettingReport> = {};
  const add = (key: string, value: unknown, sourceKey = key) => {
    const source = r.sources[sourceKey] ?? 'default';
    const report: SettingReport = { value, source };
    if (source === 'env' || source === 'pm2 env') {
      const variable = (VARIABLES[sourceKey] ?? []).find((v) => (env[v] ?? '').trim() !== '');
      if (variable !== undefined) report.variable = variable;
    }
    out[key] = report;
  };
  add('disabled', r.disabled);
  add('serviceName', r.serviceName);
  add('serviceVersion', r.serviceVersion ?? null);
  add('environment', r.environment ?? null);
  out.resourceAttributes = {
    value: r.resourceAttributes,
    source: Object.keys(r.resourceAttributes).length > 0 ? 'env' : 'default',
  };
  add('endpoint', r.endpoint);
  add('apiKey', r.hasApiKey ? `set (sent in ${r.apiKeyHeader})` : 'not set');
  add('apiKeyHeader', r.apiKeyHeader);
  for (const name of Object.keys(r.headers)) {
    const source: SettingReport['source'] =
      r.sources[`headers.${name}`] ??
      (name === r.apiKeyHeader && r.hasApiKey ? (r.sources.apiKey ?? 'env') : 'endpoint URL');
    out[`headers.${name}`] = { value: r.headers[name], source };
  }
  add('compression', r.compression);
  add('timeoutMillis', r.timeoutMillis);
  add('exporters', r.exporters);
  add('sampler', r.sampler);
  add('samplerRatio', r.samplerRatio);
  add('batch.scheduledDelayMillis', r.batch.scheduledDelayMillis, 'scheduledDelayMillis');
  add('batch.exportTimeoutMillis', r.batch.exportTimeoutMillis, 'exportTimeoutMillis');
  add('batch.maxQueueSize', r.batch.maxQueueSize, 'maxQueueSize');
  add('batch.maxExportBatchSize', r.batch.maxExportBatchSize, 'maxExportBatchSize');
  add('logLevel', r.logLevel);
  add('excludedUrls', r.excludedUrls);
  add('instrumentations', r.instrumentations);
  add('maskDbStatements', r.maskDbStatements);
  add('expressLayers', r.expressLayers);
  add('instrumentPrimary', r.instrumentPrimary);
  add('shutdownTimeoutMillis', r.shutdownTimeoutMillis);
  // Settings added to resolveConfig later show up too, under their own name.
  const reported = new Set([
    ...Object.keys(out),
    'apiKey',
    'scheduledDelayMillis',
    'exportTimeoutMillis',
    'maxQueueSize',
    'maxExportBatchSize',
  ]);
  for (const key of Object.keys(r.sources)) {
    if (reported.has(key) || key.startsWith('headers.')) continue;
    add(key, (r as unknown as Record<string, unknown>)[key] ?? null);
  }
  return out;
}

/** Whether `hostname` (as URL.hostname gives it) is this machine's loopback interface. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (net.isIPv4(h)) return h.startsWith('127.');
  if (net.isIPv6(h)) return h === '::1' || /^::ffff:127\./.test(h) || /^::ffff:7f/.test(h);
  return false;
}

/**
 * The warning for credentials that would cross the network unencrypted, or undefined. It names
 * the headers, never their values.
 */
export function plainHttpCredentialWarning(config: ResolvedConfig): string | undefined {
  const u = new URL(config.endpoint);
  const names = Object.keys(config.headers);
  if (u.protocol !== 'http:' || names.length === 0 || isLoopbackHost(u.hostname)) return undefined;
  return (
    `the API key / credential headers (${names.join(', ')}) would travel unencrypted over plain http to ${u.host}, ` +
    `which is not this machine: use an https:// endpoint, or a Collector on localhost`
  );
}

/** The result of the one real export `check` sends. */
export interface ExportProbe {
  url: string;
  /** False when the export was not attempted (`--no-send`, no OTLP exporter, tracing disabled). */
  sent: boolean;
  ok: boolean;
  status?: number;
  latencyMs?: number;
  /** The response's content-type, on an HTTP answer. */
  contentType?: string;
  diagnosis: Diagnosis;
}

const GRPC_HINT = 'is this the gRPC port 4317? OTLP/HTTP is 4318';

/** The URL's port, the scheme's default when none is written. */
function portOf(u: URL): number {
  return u.port !== '' ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
}

function errorCode(e: unknown): string | undefined {
  if (typeof e !== 'object' || e === null) return undefined;
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/** Network error codes that happen before (or instead of) a TLS handshake. */
const NOT_TLS = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT']);

/**
 * Turns a failed request into a diagnosis, adding what `describeExportError` cannot know: an
 * HTTP/1.1 request to a gRPC (HTTP/2 only) port gets binary HTTP/2 frames back, which Node's parser
 * rejects with an `HPE_*` code, or a reset; a TLS handshake that never completed.
 */
export function describeProbeError(
  error: unknown,
  url: string,
  opts: { timeoutMs?: number; tlsConnected?: boolean } = {},
): Diagnosis {
  const u = new URL(url);
  const code = errorCode(error);
  const grpcPort = portOf(u) === 4317;
  if (code === 'ETIMEDOUT' && opts.timeoutMs !== undefined) {
    return {
      kind: 'timeout',
      text: `no answer within ${opts.timeoutMs} ms from ${u.host} (check --timeout, OTEL_EXPORTER_OTLP_TRACES_TIMEOUT, or a firewall dropping packets)`,
    };
  }
  if (code !== undefined && code.startsWith('HPE_')) {
    const d = describeExportError(error, url);
    return { kind: d.kind, text: `${u.host}: ${d.text}${grpcPort ? ' (try port 4318)' : ''}` };
  }
  if (
    u.protocol === 'https:' &&
    opts.tlsConnected === false &&
    (code === undefined || !NOT_TLS.has(code)) &&
    code !== 'ECONNRESET'
  ) {
    const d = describeExportError(error, url);
    if (d.kind === 'tls') return d;
    const why = error instanceof Error ? error.message : String(error);
    return {
      kind: 'tls',
      text: `TLS failed (${code ?? why}): check https vs http, the certificate and the CA (NODE_EXTRA_CA_CERTS)`,
    };
  }
  const d = describeExportError(error, url);
  if (d.kind === 'reset' && grpcPort) return { kind: 'protocol', text: `${d.text}: ${GRPC_HINT}` };
  if (d.kind === 'refused') return { kind: d.kind, text: `${d.text} (${u.host})` };
  if (d.kind === 'dns') return { kind: d.kind, text: `${d.text}: "${u.hostname}"` };
  return d;
}

/**
 * Sends one real, empty OTLP/HTTP export (an ExportTraceServiceRequest with no spans: zero
 * protobuf bytes, gzip-compressed when configured) with the configured headers, and reports the
 * HTTP status and latency. `scrub` is applied to anything the endpoint sends back.
 */
export function sendEmptyExport(config: ResolvedConfig, timeoutMs: number): Promise<ExportProbe> {
  const url = config.endpoint;
  const u = new URL(url);
  const redactor = new Redactor(config.secrets);
  const body = config.compression === 'gzip' ? zlib.gzipSync(Buffer.alloc(0)) : Buffer.alloc(0);
  const headers: Record<string, string> = {
    ...config.headers,
    'content-type': 'application/x-protobuf',
    'content-length': String(body.length),
  };
  if (config.compression === 'gzip') headers['content-encoding'] = 'gzip';
  const transport = u.protocol === 'https:' ? https : http;
  // The CA the exporter trusts (OTEL_EXPORTER_OTLP_CERTIFICATE), so that the check trusts the same.
  const caFile = config.certificateFile;
  let ca: Buffer | undefined;
  try {
    ca = u.protocol === 'https:' && caFile !== undefined ? fs.readFileSync(caFile) : undefined;
  } catch {
    ca = undefined;
  }
  return new Promise<ExportProbe>((resolve) => {
    const started = performance.now();
    const elapsed = () => Math.round((performance.now() - started) * 10) / 10;
    let tlsConnected = false;
    let settled = false;
    const finish = (p: ExportProbe) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(p);
    };
    const req = transport.request(u, { method: 'POST', headers, agent: false, ...(ca ? { ca } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        if (size < 64 * 1024) chunks.push(c);
        size += c.length;
      });
      res.on('error', () => undefined);
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        const contentType = String(res.headers['content-type'] ?? '');
        const latencyMs = elapsed();
        if (status >= 200 && status < 300) {
          const otlp = /application\/(x-)?protobuf|application\/json/i.test(contentType) || contentType === '';
          finish({
            url,
            sent: true,
            ok: true,
            status,
            latencyMs,
            contentType,
            diagnosis: {
              kind: 'ok',
              text: otlp
                ? `HTTP ${status}: the endpoint accepted an OTLP/HTTP protobuf export`
                : `HTTP ${status}, but the answer is ${contentType}, not OTLP: make sure this URL is an OTLP endpoint and not a web page`,
            },
          });
          return;
        }
        const d = describeHttpStatus(status, url);
        const text = Buffer.concat(chunks).toString('utf8').replace(/\s+/g, ' ').trim().slice(0, 200);
        const said =
          text !== '' && !/^<(!doctype|html)/i.test(text) ? `; the endpoint said: ${redactor.scrub(text)}` : '';
        const grpc = status === 415 && portOf(u) === 4317 ? ' Port 4317 is the OTLP gRPC port; use 4318.' : '';
        finish({
          url,
          sent: true,
          ok: false,
          status,
          latencyMs,
          contentType,
          diagnosis: { ...d, text: d.text + said + grpc },
        });
      });
    });
    req.on('socket', (socket) => socket.once('secureConnect', () => (tlsConnected = true)));
    req.on('error', (error) => {
      finish({
        url,
        sent: true,
        ok: false,
        latencyMs: elapsed(),
        diagnosis: describeProbeError(error, url, { timeoutMs: timedOut ? timeoutMs : undefined, tlsConnected }),
      });
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      req.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' }));
    }, timeoutMs);
    req.end(body);
  });
}

/** One library `check` looks for in the app. */
export interface LibraryReport {
  name: 'http' | 'express' | 'mysql2';
  installed: boolean;
  version?: string;
  /** Where it was found (its package folder), or `node:http` for the built-in. */
  location?: string;
  /** The versions the instrumentation patches, as it declares them. */
  supportedRange: string;
  /** undefined when not installed, or when the range is in a form this check cannot read. */
  supported?: boolean;
  /** Whether forktrace's instrumentation for it is on (OTEL_NODE_*_INSTRUMENTATIONS). */
  enabled: boolean;
}

/** The version ranges the pinned instrumentations declare (read from them at run time). */
function declaredRanges(): Record<'express' | 'mysql2', string> {
  const read = (load: () => { getModuleDefinitions(): Array<{ name: string; supportedVersions: string[] }> }) => {
    try {
      return load().getModuleDefinitions()[0]?.supportedVersions.join(' || ') ?? '*';
    } catch {
      return '*';
    }
  };
  return {
    // enabled: false: build the definitions without hooking require().
    express: read(() => {
      const m =
        require('@opentelemetry/instrumentation-express') as typeof import('@opentelemetry/instrumentation-express');
      return new m.ExpressInstrumentation({ enabled: false });
    }),
    mysql2: read(() => {
      const m =
        require('@opentelemetry/instrumentation-mysql2') as typeof import('@opentelemetry/instrumentation-mysql2');
      return new m.MySQL2Instrumentation({ enabled: false });
    }),
  };
}

/** Finds `name`'s package.json the way require() would from `fromDir`: up through node_modules folders. */
function findPackage(name: string, fromDir: string): { dir: string; version?: string } | undefined {
  let dir = path.resolve(fromDir);
  for (;;) {
    if (path.basename(dir) !== 'node_modules') {
      const pkgDir = path.join(dir, 'node_modules', name);
      try {
        const json = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')) as { version?: unknown };
        return { dir: pkgDir, ...(typeof json.version === 'string' ? { version: json.version } : {}) };
      } catch {
        // not here; keep walking up
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

type Version = [number, number, number];

function parseVersion(v: string): Version | undefined {
  const m = /^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(v.trim());
  if (!m) return undefined;
  return [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)];
}

function compare(a: Version, b: Version): number {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return (a[i] as number) - (b[i] as number);
  return 0;
}

/**
 * Whether `version` is in `range`, for the plain comparator ranges the instrumentations declare
 * (`>=4.0.0 <6`, alternatives joined by `||`, `*`). Returns undefined for syntax it does not read
 * (`^`, `~`, `x`, hyphen ranges) rather than guessing.
 */
export function satisfies(version: string, range: string): boolean | undefined {
  const v = parseVersion(version);
  if (!v) return undefined;
  let unknown = false;
  for (const alternative of range.split('||')) {
    const parts = alternative.trim().split(/\s+/).filter(Boolean);
    let all = true;
    for (const part of parts) {
      if (part === '*' || part === '') continue;
      const m = /^(>=|<=|>|<|=)?(\d+(?:\.\d+){0,2})$/.exec(part);
      const bound = m ? parseVersion(m[2] as string) : undefined;
      if (!m || !bound) {
        unknown = true;
        all = false;
        break;
      }
      const c = compare(v, bound);
      const op = m[1] ?? '=';
      const ok = op === '>=' ? c >= 0 : op === '<=' ? c <= 0 : op === '>' ? c > 0 : op === '<' ? c < 0 : c === 0;
      if (!ok) all = false;
    }
    if (all) return true;
  }
  return unknown ? undefined : false;
}

/**
 * Which of the supported libraries the app has installed, resolved from the app's folder the way
 * its require() would, with versions and whether the pinned instrumentation supports them.
 */
export function inspectLibraries(appDir: string, config: ResolvedConfig): LibraryReport[] {
  const ranges = declaredRanges();
  const out: LibraryReport[] = [
    {
      name: 'http',
      installed: true,
      version: process.versions.node,
      location: 'node:http',
      supportedRange: '*',
      supported: true,
      enabled: config.instrumentations.http,
    },
  ];
  for (const name of ['express', 'mysql2'] as const) {
    const found = findPackage(name, appDir);
    const report: LibraryReport = {
      name,
      installed: found !== undefined,
      supportedRange: ranges[name],
      enabled: config.instrumentations[name],
    };
    if (found) {
      report.location = found.dir;
      if (found.version !== undefined) {
        report.version = found.version;
        const s = satisfies(found.version, ranges[name]);
        if (s !== undefined) report.supported = s;
      }
    }
    out.push(report);
  }
  return out;
}

/** The app's own @opentelemetry/api, as `check` reports it. */
export interface ApiReport {
  /** The version forktrace registers the API globals as (its own copy's). */
  forktrace?: string;
  /** The app's copy, resolved from its folder the way its require() would; absent when it has none. */
  app?: { version?: string; location: string };
  /** Whether spans started through the app's copy are recorded; absent when it has none or it cannot tell. */
  kept?: boolean;
  /** The verdict in words: how they are kept, or why not and the fix. */
  text: string;
}

/**
 * Whether the spans the app starts through its own @opentelemetry/api will be recorded, decided
 * by the same {@link planGlobals} a worker runs at start.
 */
export function inspectApi(appDir: string): ApiReport {
  // forktrace's copy in node_modules: the one instrument() loads, and the version the preload bundles.
  const own = findApi(__filename)?.version;
  const found = findApi(path.join(appDir, '[app]'));
  const forktrace = own === undefined ? {} : { forktrace: own };
  if (found === undefined) return { ...forktrace, text: 'not installed' };
  const app = { ...(found.version === undefined ? {} : { version: found.version }), location: found.dir };
  if (own === undefined) return { ...forktrace, app, text: "forktrace's own @opentelemetry/api is missing" };
  const plan = planGlobals(own, true, found);
  if (plan.use === 'app') return { ...forktrace, app, kept: true, text: apiMessages.keptThroughApp(own) };
  if (plan.warning === undefined) return { ...forktrace, app, kept: true, text: apiMessages.kept(own) };
  return { ...forktrace, app, ...(found.version === undefined ? {} : { kept: false }), text: plan.warning };
}

/** The whole `check` report. `problems` empty means exit 0. */
export interface CheckReport {
  ok: boolean;
  /** Where the configuration came from. */
  target:
    | { kind: 'env'; script?: string; cwd: string }
    | { kind: 'pm2'; file: string; app: string; cwd: string; script: string; env?: string };
  settings: Record<string, SettingReport>;
  /** resolveConfig's warnings: mistakes in variables, fallbacks. */
  warnings: string[];
  export: ExportProbe;
  libraries: { resolvedFrom: string; list: LibraryReport[] };
  /** The app's own @opentelemetry/api. */
  api: ApiReport;
  /** The Node running the check, and whether forktrace instruments on it. */
  node: { version: string; supported: boolean };
  /** One sentence per thing that is wrong. */
  problems: string[];
  /** Things worth knowing that are not wrong. */
  notes: string[];
}

/** Runs every check. The report holds no secret; the CLI scrubs its output once more anyway. */
export async function runCheck(opts: {
  pm2?: Pm2App;
  script?: string;
  env?: Env;
  cwd?: string;
  timeoutMs?: number;
  send?: boolean;
  /** Send even when credentials would cross the network in clear text (then only a note). */
  allowPlainHttp?: boolean;
}): Promise<{ report: CheckReport; secrets: string[] }> {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  const resolved = resolveCheckConfig({ ...opts, env, cwd });
  const { config } = resolved;
  const problems: string[] = [...(resolved.unread ?? [])];
  const notes: string[] = [];
  // The Node this check runs on; under pm2 that is the one `pm2 start` uses unless the app sets
  // an `interpreter`.
  const node = { version: process.version, supported: !nodeTooOld(process.version) };
  if (!node.supported) problems.push(tooOldMessage(node.version));

  // A fallback service name is a note, except unknown_service, under which traces are lost to view.
  const warnings = [...config.warnings];
  for (const w of warnings) {
    if (w.startsWith('service.name is "') && config.sources.serviceName !== 'default') notes.push(w);
    else problems.push(w);
  }
  if (config.disabled) problems.push('OTEL_SDK_DISABLED=true: tracing is off, nothing will be exported.');
  const otlp = config.exporters.includes('otlp');
  if (!otlp && !config.disabled) {
    problems.push(
      `OTEL_TRACES_EXPORTER=${config.exporters.join(',')}: no OTLP exporter, spans never reach the endpoint.`,
    );
  }
  // Sending the check itself would put the key on the wire in clear text: not without consent.
  // resolveConfig may already say so (then it is among the problems above).
  const plain = plainHttpCredentialWarning(config);
  const said = warnings.some((w) => /unencrypted/.test(w));
  if (plain && opts.allowPlainHttp) {
    if (!said) notes.push(plain);
  } else if (plain && !said) problems.push(plain);

  const timeoutMs = opts.timeoutMs ?? config.timeoutMillis;
  let probe: ExportProbe;
  const skip =
    opts.send === false
      ? 'not sent (--no-send)'
      : config.disabled
        ? 'not sent (tracing is disabled)'
        : !otlp
          ? 'not sent (no OTLP exporter)'
          : plain && !opts.allowPlainHttp
            ? 'not sent: it would carry the credentials unencrypted (fix the endpoint, or pass --allow-plain-http)'
            : undefined;
  if (skip !== undefined) {
    const why = skip;
    probe = { url: config.endpoint, sent: false, ok: false, diagnosis: { kind: 'skipped', text: why } };
  } else {
    probe = await sendEmptyExport(config, timeoutMs);
    if (!probe.ok) problems.push(`export to ${probe.url} failed: ${probe.diagnosis.text}`);
    else if (!/accepted/.test(probe.diagnosis.text)) notes.push(probe.diagnosis.text);
  }

  const list = inspectLibraries(resolved.appDir, config);
  for (const lib of list) {
    if (lib.installed && lib.supported === false) {
      problems.push(
        `${lib.name} ${lib.version ?? ''} is installed but the instrumentation supports ${lib.supportedRange}: its spans will be missing.`,
      );
    }
    if (lib.installed && !lib.enabled && lib.name !== 'http')
      notes.push(`${lib.name} is installed but its instrumentation is turned off.`);
  }

  const api = inspectApi(resolved.appDir);
  if (api.app !== undefined && api.kept !== true) problems.push(api.text);

  const target: CheckReport['target'] = resolved.pm2
    ? {
        kind: 'pm2',
        file: resolved.pm2.file,
        app: resolved.pm2.name,
        cwd: resolved.pm2.cwd,
        script: resolved.pm2.script,
        ...(resolved.pm2.envName === undefined ? {} : { env: resolved.pm2.envName }),
      }
    : { kind: 'env', cwd, ...(opts.script === undefined ? {} : { script: path.resolve(cwd, opts.script) }) };
  const settingsEnv = resolved.pm2 ? { ...env, ...stringValues(resolved.pm2.env) } : env;
  return {
    report: {
      ok: problems.length === 0,
      target,
      settings: settingsReport(config, settingsEnv),
      warnings,
      export: probe,
      libraries: { resolvedFrom: resolved.appDir, list },
      api,
      node,
      problems,
      notes,
    },
    secrets: config.secrets,
  };
}

function stringValues(env: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  // As readPm2 reads them: pm2 turns numbers and booleans into strings in process.env.
  for (const [k, v] of Object.entries(env)) if (['string', 'number', 'boolean'].includes(typeof v)) out[k] = String(v);
  return out;
}
