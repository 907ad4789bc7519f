/**
 * Every line a traced process prints, word for word: configuration warnings, status lines, and
 * what pm2, the app's API copy, an exit and the spool make it say. Tests assert these texts by
 * calling the same functions; code decides on a warning's `code` (src/types.ts `Finding`), never
 * on its text. This module imports nothing at run time: config, the worker and the preload bundle
 * all load it. (`forktrace check`'s own lines are in src/tools/check/messages.ts; the Node
 * version gate's one line stays in node-version.ts, which must load before anything else.)
 */
import type { SpanStats } from '../types';

/** Operator mistakes and fallbacks in the configuration: `Finding` texts of resolveConfig. */
export const configMessages = {
  badEnvValue: (name: string, value: string, accepted: string, fallback: string) =>
    `${name}="${value}" is not supported; accepted: ${accepted}. Using ${fallback}.`,
  badEnvSecretValue: (name: string, why: string, fallback: string) => `${name} ${why}. Using ${fallback}.`,
  serviceNameFallback: (name: string, from: string) =>
    `service.name is "${name}" (from ${from}); set OTEL_SERVICE_NAME or the \`serviceName\` option to choose it.`,
  /** A pair of a `key=value,…` list: `what` is `header` (OTEL_EXPORTER_OTLP_HEADERS) or `attribute`. */
  badPair: (variable: string, what: 'header' | 'attribute', key: string, why: string) =>
    `${variable}: ${what} "${key}" ${why}`,
  protocolUnsupported: (value: string, name = 'OTEL_EXPORTER_OTLP_PROTOCOL') =>
    `${name}="${value}" is not supported; forktrace sends http/protobuf. Unset it or set http/protobuf.`,
  metricsEndpointGuessed: (traces: string, metrics: string) =>
    `the traces endpoint ${traces} does not end in /v1/traces, so metrics go to ${metrics}; set OTEL_EXPORTER_OTLP_METRICS_ENDPOINT if that is not the vendor's metrics URL.`,
  certificateUnreadable: (name: string, file: string) =>
    `${name}: cannot read "${file}"; using the system CAs. Fix the path or unset ${name}.`,
  certificateNotPem: (name: string, file: string) =>
    `${name}: "${file}" holds no PEM certificate (-----BEGIN CERTIFICATE-----); using the system CAs.`,
  certificateUnused: (name: string) => `${name} is set but the endpoint is http://, so it is not used; use https://.`,
  credentialsOverHttp: (endpoint: string, headerNames: string[]) =>
    `the credentials in ${headerNames.join(', ')} are sent unencrypted to ${endpoint}, which is not this machine. Use an https:// endpoint, or set FORKTRACE_REQUIRE_TLS=true to refuse.`,
  tlsRequired: (endpoint: string, what: 'spans' | 'metrics' = 'spans') =>
    `FORKTRACE_REQUIRE_TLS=true and the endpoint ${endpoint} is plain http to another machine: no ${what} are exported. Use an https:// endpoint, or unset FORKTRACE_REQUIRE_TLS.`,
} as const;

/** The status lines forktrace prints, word for word (tests assert them). */
export const statusMessages = {
  disabled: 'not instrumented: OTEL_SDK_DISABLED=true.',
  notInstrumented: (why: string) => `not instrumented: ${why}`,
  optionsDiffer:
    "instrument() was called again with different options; the first call's configuration stays in effect.",
  dropSummary: (s: SpanStats) =>
    `spans since start: ${s.ended} ended, ${s.delivered} delivered, ${s.dropped} dropped (${s.failed} in failed exports, ${s.queueFull} on a full queue: OTEL_BSP_MAX_QUEUE_SIZE), ${s.pending} pending.`,
  primaryStandsDown: (pid: number) =>
    `pid ${pid} is a node:cluster primary: tracing stopped here, workers are traced. Set FORKTRACE_INSTRUMENT_PRIMARY=true to trace the primary too.`,
  /** The line each traced process starts with: what it traces, as which process, to where. */
  tracing: (service: string, pid: number, who: string, to: string) => `tracing ${service} (pid ${pid}${who}) to ${to}`,
  exportFailed: (endpoint: string, why: string, spans: number, stats: { dropped: number; delivered: number }) =>
    `export to ${endpoint} failed: ${why}. ${spans} span(s) dropped; ${stats.dropped} since start (delivered ${stats.delivered}).`,
  metricsExportFailed: (endpoint: string, why: string) =>
    `metrics export to ${endpoint} failed: ${why}. The next export sends them again if temporality is cumulative.`,
  metricsStopDeadline: (endpoint: string, deadline: number) =>
    `metrics export to ${endpoint} given up: no answer within the ${deadline} ms stop deadline (FORKTRACE_SHUTDOWN_TIMEOUT_MS).`,
  prometheusListenFailed: (host: string, port: number, code: string) =>
    `the Prometheus endpoint cannot listen on ${host}:${port} (${code}): no scrape endpoint in this process. Set OTEL_EXPORTER_PROMETHEUS_PORT to a free port.`,
  prometheusFolderUnusable: (why: string) =>
    `the Prometheus state folder cannot be used: ${why}. The endpoint reports this worker only, and a dead worker's counts are lost. Set FORKTRACE_PROMETHEUS_DIR to a folder of this user.`,
  prometheusShared: (port: number, service: string, others: string[]) =>
    `port ${port} serves the Prometheus metrics of ${service} and also ${others.join(', ')}: a scrape answers for whichever app's worker takes it. Give each app its own OTEL_EXPORTER_PROMETHEUS_PORT.`,
  /** Added to the status line when metrics are on. */
  metricsTo: (to: string, intervalMillis: number) => `; metrics to ${to} every ${intervalMillis / 1000} s`,
  metricsScraped: (host: string, port: number) => `; metrics for Prometheus at http://${host}:${port}/metrics`,
  stopDeadline: (why: string, left: number, deadline: number, took: number) =>
    `${why}: ${left} span(s) not delivered within the ${deadline} ms stop deadline (FORKTRACE_SHUTDOWN_TIMEOUT_MS); took ${took} ms.`,
  /** Upstream warnings that repeat with every batch, said once per interval in forktrace's words. */
  queueFull: (dropped: string) =>
    `the span queue was full, so spans were dropped (${dropped}): the endpoint is slower than the app, or down. Raise OTEL_BSP_MAX_QUEUE_SIZE, or sample (OTEL_TRACES_SAMPLER).`,
  metricsExportTimedOut: (ms: string) =>
    `a metrics export was given up after ${ms} ms (OTEL_METRIC_EXPORT_TIMEOUT): the metrics endpoint is slow or does not answer.`,
  metricsCollectionFailed: (why: string) =>
    `collecting the metrics failed: ${why}. An observable instrument's callback threw, or took longer than OTEL_METRIC_EXPORT_TIMEOUT; its instrument keeps its last value.`,
  notOtlpResponse:
    'the endpoint accepted an export but its answer is not an OTLP response; is the URL an OTLP/HTTP traces endpoint (or a proxy page)?',
} as const;

/** The warning when express or mysql2 was loaded before forktrace. */
export const loadOrderWarning = (names: string[]) =>
  `${names.join(' and ')} ${names.length > 1 ? 'were' : 'was'} loaded before forktrace, so ${names.length > 1 ? 'they are' : 'it is'} not traced. ` +
  'Load forktrace first: node --require forktrace/register app.js (ESM: --import forktrace/register); ' +
  "under pm2, node_args: ['--require', require.resolve('forktrace/register')] in ecosystem.config.js.";

/** Lines forktrace prints about pm2. */
export const pm2Messages = {
  // pm2 7's ProcessUtils.injectModules starts @opentelemetry/sdk-node with auto-instrumentations
  // in each worker when `trace` is on; its instrumentations then also feed forktrace's tracer
  // (the registration of its own provider fails), so express spans arrive twice.
  tracing:
    "pm2's own tracing is on for this app (`trace: true`, --trace or deep_monitoring): it starts a second OpenTelemetry SDK in each worker and spans get duplicated. Remove `trace` from the ecosystem file; forktrace traces the app.",
} as const;

/** What forktrace prints or reports about the app's API copy. */
export const apiMessages = {
  throughApp: (app: string, own: string) =>
    `the app's @opentelemetry/api ${app} is newer than forktrace's ${own}: the API globals are registered through the app's copy, so that both copies see them.`,
  notAccepted: (app: string, stamp: string) =>
    `the app's @opentelemetry/api is ${app}, which ignores the API globals forktrace registers (@opentelemetry/api ${stamp}): spans the app and its libraries start through it are not recorded. Fix: a ${stamp.split('.')[0]}.x release in the app, npm install @opentelemetry/api@^${stamp} (forktrace's withSpan() is traced either way).`,
  unreadable: (dir: string, stamp: string) =>
    `cannot read the version of the app's @opentelemetry/api (${dir}): spans started through it may not be recorded. Reinstall it: npm install @opentelemetry/api@^${stamp}.`,
  kept: (own: string) => `spans kept (forktrace registers the API globals as ${own}, which this copy reads)`,
  keptThroughApp: (own: string) =>
    `spans kept (newer than forktrace's ${own}: forktrace registers the API globals through this copy)`,
  loadFailed: (app: string, why: string, stamp: string) =>
    `the app's @opentelemetry/api ${app} could not be loaded (${why}), so the API globals stay at forktrace's ${stamp}, which that copy ignores: spans started through it are not recorded.`,
} as const;

/** The lines an exit prints. */
export const exitMessages = {
  spooled: (spans: number, why: string, dir: string) =>
    `exit: ${spans} span(s) not sent (${why}); saved in the spool (${dir}) for the next start of this service.`,
  lost: (spans: number, why: string) => `exit: ${spans} span(s) lost: ${why}.`,
  rejected: (spans: number, endpoint: string, why: string) =>
    `exit: ${spans} span(s) refused by ${endpoint} (${why}); not kept.`,
  metricsLost: (endpoint: string, why: string) =>
    `exit: the metrics recorded since the last export were not sent to ${endpoint} (${why}); they are lost.`,
} as const;

/** The lines the spool prints at a start. */
export const spoolMessages = {
  delivered: (spans: number, pids: number[]) =>
    `delivered ${spans} span(s) spooled at the exit of pid ${pids.join(', ')}.`,
  rejected: (spans: number, endpoint: string, why: string) =>
    `spool: ${spans} span(s) refused by ${endpoint} (${why}); removed.`,
  kept: (files: number, why: string, dir: string) =>
    `spool: ${files} file(s) not delivered (${why}); kept in ${dir} for a later start.`,
  skipped: (dir: string, corrupt: number, foreign: number, old: number) =>
    `spool: skipped ${corrupt + foreign + old} file(s) in ${dir}: ${corrupt} corrupt, ${foreign} not this user's or service's, ${old} older than FORKTRACE_SPOOL_MAX_AGE_MS; removed those of this user.`,
  /** A spool folder the user chose, and others may write to: used as it is. */
  writableByOthers: (dir: string, who: string) =>
    `spool: FORKTRACE_SPOOL_DIR ${dir} is writable by ${who}, who could remove or replace spooled spans; it is used as it is. Fix: chmod go-w ${dir}, or set FORKTRACE_SPOOL_DIR to a folder only this user can write to.`,
  unusable: (problem: string) =>
    `spool: ${problem}; spans an exit cannot send are lost. Set FORKTRACE_SPOOL_DIR to a folder of this user.`,
} as const;
