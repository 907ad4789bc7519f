import cluster from 'node:cluster';
import { isDeepStrictEqual } from 'node:util';
import * as otelApi from '@opentelemetry/api';
import type { Context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import type { Resource } from '@opentelemetry/resources';
import {
  CompositePropagator,
  setGlobalErrorHandler,
  W3CBaggagePropagator,
  W3CTraceContextPropagator,
} from '@opentelemetry/core';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
  type ReadableSpan,
  type Sampler,
  type Span,
  type SpanProcessor,
  type BatchSpanProcessor,
} from '@opentelemetry/sdk-trace';
import { registerDiagThroughNewest, type OtelApi } from './app-api';
import {
  defaultHostFacts,
  redactConfig,
  resolveConfig,
  type RedactedConfig,
  type ResolvedConfig,
} from '../config/resolve';
import { useLeanBinding } from './context-binding';
import { chainContextsFrom } from './context-chain';
import { checkPlainValuesFirst, type CoreAttributes } from './plain-attributes';
import { describeExportError } from './diagnose';
import { CountingExporter, countingBatchProcessor, createExporters, queuedSpans, zeroExportStats } from './exporter';
import type { EncodedSpan } from './span-bytes';
import { deliverSpoolAtStart, installExitDelivery, OpenSpans } from './exit';
import { HandOverIdGenerator, ServerSpanStarter } from './dropped-spans';
import { createInstrumentations, modulesLoadedTooEarly, QueryRedactingProcessor } from './instrumentations';
import { installStopHooks, type FlushParts } from './lifecycle';
import { diagLevel, Logger } from './log';
import { loadOrderWarning, pm2Messages, statusMessages } from './messages';
import { readPm2, whenPm2TakesStderr } from './pm2';
import type { Metrics } from './metrics';
import { buildResource, workerIdentity } from './resource';
import { Redactor } from './secrets';
import { UPSTREAM_TEXT } from './upstream';
import { isStopDeadline } from './wire-watch';
import type { ExportStats, ForktraceOptions, SpanStats } from '../types';

/** What instrument() returns. */
export interface ForktraceHandle {
  /** The resolved configuration, header values and credentials redacted. */
  readonly config: RedactedConfig;
  /** Whether this process is tracing. */
  readonly active: boolean;
  /** Delivers every queued span. Never rejects. */
  forceFlush(): Promise<void>;
  /** Flushes, then stops tracing in this process. Never rejects. */
  shutdown(): Promise<void>;
  /** Span counts since start. */
  stats(): SpanStats;
}

interface State {
  options: ForktraceOptions | undefined;
  handle: ForktraceHandle;
  logger: Logger;
}

// On globalThis, so that a second copy of forktrace (another node_modules folder, or the CJS and
// ESM preload both running) still starts only once per process.
const STATE = Symbol.for('forktrace.state');
type GlobalWithState = typeof globalThis & { [STATE]?: State };

const zeroStats = (): SpanStats => ({ ended: 0, ...zeroExportStats(), pending: 0 });

/** While spans keep being dropped, the totals are printed at most this often (and at shutdown). */
const DROP_SUMMARY_EVERY_MS = 60_000;

function noopHandle(config: RedactedConfig): ForktraceHandle {
  return {
    config,
    active: false,
    forceFlush: () => Promise.resolve(),
    shutdown: () => Promise.resolve(),
    stats: zeroStats,
  };
}

function sampler(config: ResolvedConfig): Sampler {
  switch (config.sampler) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return new TraceIdRatioBasedSampler(config.samplerRatio);
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(config.samplerRatio) });
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}

/** Counts ended spans; the batch processor does not say how many it holds. */
class EndCounter implements SpanProcessor {
  ended = 0;
  onStart(_span: Span, _ctx: Context): void {}
  onEnd(_span: ReadableSpan): void {
    this.ended++;
  }
  forceFlush(): Promise<void> {
    return Promise.resolve();
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * Makes `provider` the process's tracer provider, with the context manager and propagators a Node
 * server needs. sdk-trace 3.x has no NodeTracerProvider.register(); this is what it did. Through
 * `api`, the copy of @opentelemetry/api that every copy in the process accepts (src/worker/app-api.ts).
 */
function registerGlobals(provider: TracerProvider, { context, propagation, trace }: OtelApi): void {
  const manager = new AsyncLocalStorageContextManager();
  useLeanBinding(manager);
  // The root of forktrace's copy of the API, which its instrumentations and this manager derive from.
  chainContextsFrom(otelApi.ROOT_CONTEXT);
  // core's exports object itself (an `import * as` of it would be a copy): the SDK calls through it.
  checkPlainValuesFirst(require('@opentelemetry/core') as CoreAttributes);
  context.setGlobalContextManager(manager.enable());
  propagation.setGlobalPropagator(
    new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }),
  );
  trace.setGlobalTracerProvider(provider);
}

/**
 * Starts tracing in this process: synchronously, so that modules loaded after it returns are
 * traced. Call it before express and mysql2 are loaded, or use the preload
 * (`node --require forktrace/register`).
 *
 * Idempotent: a second call returns the first handle. A wrong option throws a TypeError or
 * RangeError naming it; anything else that goes wrong leaves a no-op handle and one
 * "not instrumented: …" line, and the app runs on.
 */
export function instrument(options?: ForktraceOptions): ForktraceHandle {
  const g = globalThis as GlobalWithState;
  const existing = g[STATE];
  if (existing) {
    if (options !== undefined && !isDeepStrictEqual(options, existing.options)) {
      existing.logger.warn(statusMessages.optionsDiffer);
    }
    return existing.handle;
  }

  const pm2 = readPm2(process.env);
  const config = resolveConfig(options, pm2?.env ?? process.env, defaultHostFacts(pm2));
  const redacted = redactConfig(config);
  const logger = new Logger(new Redactor(config.secrets), diagLevel(config.logLevel));

  const state: State = { options, handle: noopHandle(redacted), logger };
  g[STATE] = state;
  for (const w of config.warnings) logger.warn(w);
  if (pm2?.tracing) logger.warn(pm2Messages.tracing);

  if (config.disabled) {
    logger.status(statusMessages.disabled);
    return state.handle;
  }
  try {
    state.handle = start(config, redacted, logger, pm2);
  } catch (e) {
    logger.status(statusMessages.notInstrumented(e instanceof Error ? e.message : String(e)));
  }
  return state.handle;
}

/**
 * Wires tracing up: the exporters (each failure said once, rate-limited), the provider and its
 * processors, the instrumentations, the stop and exit paths, and the status line.
 */
function start(
  config: ResolvedConfig,
  redacted: RedactedConfig,
  logger: Logger,
  pm2: ReturnType<typeof readPm2>,
): ForktraceHandle {
  const api = registerDiagThroughNewest(
    otelApi,
    logger,
    { logLevel: diagLevel(config.logLevel), suppressOverrideMessage: true },
    { pm2Script: pm2?.script, entryScript: process.argv[1], cwd: process.cwd() },
  );
  const early = modulesLoadedTooEarly(config);
  if (early.length > 0) logger.warn(loadOrderWarning(early));

  const clusterWorker = cluster.worker;
  const worker = workerIdentity(pm2?.env ?? process.env, pm2, clusterWorker?.id);
  const stats: ExportStats = zeroExportStats();
  const exporters = countingExporters(config, stats, logger);
  const resource = buildResource(config, worker);
  const pipeline = buildProvider(config, resource, exporters, stats);
  const { provider, counter } = pipeline;
  registerGlobals(provider, api);
  const metrics = startMetricsIfAsked(config, resource, logger);
  if (metrics) api.metrics.setGlobalMeterProvider(metrics.provider);
  const unregister = registerInstrumentations({
    tracerProvider: provider,
    ...(metrics ? { meterProvider: metrics.provider } : {}),
    instrumentations: createInstrumentations(config, pipeline.serverSpans),
  });

  const statsNow = (): SpanStats => ({
    ...stats,
    ended: counter.ended,
    pending: Math.max(0, counter.ended * exporters.length - stats.delivered - stats.dropped),
  });
  const drops = new DropSummary(statsNow, logger);
  let stopped = false;
  const forceFlush = async (parts: FlushParts = { spans: true, metrics: true }) => {
    await Promise.all([
      // The batch processor's forceFlush exports what is queued but does not wait for an export
      // its timer started; a stop's hand-over (lifecycle.ts) would send that one again.
      parts.spans
        ? provider
            .forceFlush()
            .catch(() => undefined)
            .then(() => Promise.all(exporters.map((e) => e.settled())))
        : undefined,
      parts.metrics ? metrics?.flush() : undefined,
    ]);
  };
  const shutdown = async () => {
    if (stopped) return;
    stopped = true;
    uninstallHooks();
    exit?.uninstall();
    unregister();
    await Promise.all([provider.shutdown().catch(() => undefined), metrics?.shutdown()]);
    drops.stop();
    if (metrics) api.metrics.disable();
    api.trace.disable();
    api.context.disable();
    api.propagation.disable();
  };
  let stopStartedAt: number | undefined;
  // Spans when an exporter takes them; OTLP metrics on their own too (a metrics-only app), in
  // `send` mode: they are never spooled.
  const otlpMetrics = metrics && config.metrics.exporters.includes('otlp') ? metrics : undefined;
  const exit =
    pipeline.open || (otlpMetrics && config.exitDelivery === 'send')
      ? installExitDelivery({
          config,
          ...(pipeline.open
            ? { spans: { open: pipeline.open, backlog: () => backlog(exporters, pipeline.batchers) } }
            : {}),
          logger,
          ...(otlpMetrics ? { metrics: () => metricsAtExit(otlpMetrics, config) } : {}),
          stopStartedAt: () => stopStartedAt,
        })
      : undefined;
  const uninstallHooks = installStopHooks({
    flush: forceFlush,
    report: () => drops.stop(),
    deliverNow: () => exit?.deliverNow(),
    pending: () => statsNow().pending,
    abandon: () => {
      exporters.forEach((e) => e.abandonInFlight());
      metrics?.abandon();
    },
    ended: () => counter.ended,
    ...(metrics ? { metricsRecorded: () => metrics.recordedSinceExport() } : {}),
    timeoutMillis: config.shutdownTimeoutMillis,
    logger,
    pm2ShutdownMessage: pm2?.shutdownWithMessage ?? false,
    clusterWorker,
    onStopStarted: (at) => (stopStartedAt ??= at),
  });
  if (config.spoolDir !== undefined && config.exporters.includes('otlp')) void deliverSpoolAtStart(config, logger);

  // A node:cluster primary usually only forks and supervises; its workers inherit --require and
  // start tracing themselves. Stand down once it forks, before the first worker exists.
  if (cluster.isPrimary && !config.instrumentPrimary) {
    cluster.once('setup', () => {
      logger.status(statusMessages.primaryStandsDown(process.pid));
      void shutdown();
    });
  }

  const status = statusLine(config, worker, process.pid) + (metrics ? metricsStatus(config) : '');
  logger.status(status);
  // Under pm2 a preload's output lands only in the daemon's pm2.log; say it again once pm2 routes
  // stderr to the app's own log, so that `pm2 logs <app>` shows it too.
  if (pm2 && /ProcessContainer/.test(process.argv[1] ?? '')) whenPm2TakesStderr(() => logger.status(status));
  return {
    config: redacted,
    get active() {
      return !stopped;
    },
    forceFlush,
    shutdown,
    stats: statsNow,
  };
}

/**
 * One counting exporter per configured one. Each failed export is said once, rate-limited per
 * cause; the batch processor also hands the same error to the global handler, which lets only
 * the others through.
 */
function countingExporters(config: ResolvedConfig, stats: ExportStats, logger: Logger): CountingExporter[] {
  const reported = new WeakSet<object>();
  const exporters = createExporters(config).map(
    (e) =>
      new CountingExporter(e, stats, (error, spans) => {
        if (error) reported.add(error);
        // The stop path has already said how many spans its deadline cut.
        if (isStopDeadline(error)) return;
        const d = describeExportError(error);
        logger.warnRateLimited(`export:${d.kind}`, statusMessages.exportFailed(config.endpoint, d.text, spans, stats));
      }),
  );
  setGlobalErrorHandler(globalErrors(logger, reported));
  return exporters;
}

/**
 * What OpenTelemetry hands its global error handler: said once per cause, but for the errors an
 * exporter has already said (`reported`), and the metrics reader's re-throw of a failed export.
 */
function globalErrors(logger: Logger, reported: WeakSet<object>): (err: unknown) => void {
  return (err) => {
    if (typeof err === 'object' && err !== null && reported.has(err)) return;
    if (err instanceof Error && err.message.startsWith(UPSTREAM_TEXT.metricsExportFailed)) return;
    const d = describeExportError(err);
    logger.warnRateLimited(`error:${d.kind}`, d.kind === 'error' ? d.text : `export: ${d.text}`);
  };
}

/**
 * The metrics pipeline, when a metrics exporter is configured; its module is loaded only then. A
 * failed export is said once per cause, like a failed span export; the reader's own report of it
 * to the global error handler is skipped there.
 */
function startMetricsIfAsked(config: ResolvedConfig, resource: Resource, logger: Logger): Metrics | undefined {
  if (config.metrics.exporters.length === 0) return undefined;
  const { startMetrics } = require('./metrics') as typeof import('./metrics');
  return startMetrics(config.metrics, resource, {
    mysql2: config.instrumentations.mysql2,
    // The metrics code's own @opentelemetry/core, outside the bundle, has a handler of its own.
    onGlobalError: globalErrors(logger, new WeakSet()),
    logger,
    service: config.serviceName,
    targetInfo: {
      'service.name': config.serviceName,
      ...(config.serviceVersion === undefined ? {} : { 'service.version': config.serviceVersion }),
      ...(config.environment === undefined ? {} : { 'deployment.environment.name': config.environment }),
    },
    onFailure: (error) => {
      // Ended by forktrace at a stop's deadline: said in those words, with the deadline to raise.
      if (isStopDeadline(error)) {
        const text = statusMessages.metricsStopDeadline(config.metrics.endpoint, config.shutdownTimeoutMillis);
        return void logger.warnRateLimited('metrics:stop-deadline', text);
      }
      const d = describeExportError(error);
      logger.warnRateLimited(`metrics:${d.kind}`, statusMessages.metricsExportFailed(config.metrics.endpoint, d.text));
    },
  });
}

/** The OTLP metrics an exit sends, and where: undefined when nothing was recorded since the last export. */
function metricsAtExit(metrics: Metrics, config: ResolvedConfig) {
  const body = metrics.atExit();
  if (body === undefined) return undefined;
  const m = config.metrics;
  return {
    body,
    endpoint: m.endpoint,
    headers: m.headers,
    compression: m.compression,
    ...(m.certificateFile ? { certificateFile: m.certificateFile } : {}),
  };
}

/** What the status line adds when metrics are on: where, and how often. */
function metricsStatus(config: ResolvedConfig): string {
  const m = config.metrics;
  const pushed = m.exporters.filter((e) => e !== 'prometheus').map((e) => (e === 'otlp' ? m.endpoint : e));
  return (
    (pushed.length > 0 ? statusMessages.metricsTo(pushed.join(' + '), m.exportIntervalMillis) : '') +
    (m.exporters.includes('prometheus') ? statusMessages.metricsScraped(m.prometheus.host, m.prometheus.port) : '')
  );
}

interface Pipeline {
  provider: TracerProvider;
  counter: EndCounter;
  /** The spans still open, for an exit to end; only when exits deliver. */
  open?: OpenSpans;
  batchers: BatchSpanProcessor[];
  /** Server spans, started with the provider's sampler and ids. */
  serverSpans: ServerSpanStarter;
}

/** The provider: SQL redaction, the end counter, the open-span set, one batch processor per exporter. */
function buildProvider(
  config: ResolvedConfig,
  resource: Resource,
  exporters: CountingExporter[],
  stats: ExportStats,
): Pipeline {
  const counter = new EndCounter();
  // With no exporter an exit has nothing to deliver, and the list would cost every span a slot.
  const open = config.exitDelivery !== 'off' && exporters.length > 0 ? new OpenSpans() : undefined;
  const batchers = exporters.map((e) => countingBatchProcessor(e, config.batch, stats, e.isOtlp));
  const ids = new HandOverIdGenerator();
  const chosen = sampler(config);
  // No meterProvider: the ServerSpanStarter's dropped spans would be missing from the tracer's own metrics.
  const provider = new TracerProvider({
    resource,
    sampler: chosen,
    idGenerator: ids,
    spanProcessors: [new QueryRedactingProcessor(), counter, ...(open ? [open] : []), ...batchers],
  });
  return { provider, counter, ...(open ? { open } : {}), batchers, serverSpans: new ServerSpanStarter(chosen, ids) };
}

/** What an exit that cannot wait has to deliver: in flight and queued, the OTLP exporters' apart. */
function backlog(exporters: CountingExporter[], batchers: BatchSpanProcessor[]) {
  const pipelines = exporters.map((e, i) => ({
    exporter: e,
    spans: [...e.inFlightSpans(), ...(batchers[i] ? queuedSpans(batchers[i]) : [])],
  }));
  return {
    // An OTLP exporter's processor queues encoded spans (exporter.ts EncodingBatchProcessor).
    otlp: pipelines.filter((p) => p.exporter.isOtlp).flatMap((p) => p.spans as EncodedSpan[]),
    others: pipelines.filter((p) => !p.exporter.isOtlp),
  };
}

/**
 * Each failed export warns (rate-limited, per cause); this line adds up the totals, so that
 * `ended = delivered + dropped` can be checked from the log alone: while spans keep being
 * dropped, at most once a minute, and once more at the stop.
 */
class DropSummary {
  private summarised = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly stats: () => SpanStats,
    private readonly logger: Logger,
  ) {
    this.timer = setInterval(() => this.say(false), DROP_SUMMARY_EVERY_MS).unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.say(true);
  }

  private say(atShutdown: boolean): void {
    const s = this.stats();
    if (s.dropped === 0 || (!atShutdown && s.dropped === this.summarised)) return;
    this.summarised = s.dropped;
    this.logger.warn(statusMessages.dropSummary(s));
  }
}

/** The line a traced process starts with: what, as which process, to where. */
export function statusLine(
  config: Pick<ResolvedConfig, 'serviceName' | 'exporters' | 'endpoint' | 'compression' | 'hasApiKey' | 'apiKeyHeader'>,
  worker: Pick<ReturnType<typeof workerIdentity>, 'processManager' | 'index'>,
  pid: number,
): string {
  const where = config.exporters.includes('otlp')
    ? `${config.endpoint} (${config.compression}${config.hasApiKey ? `, key in ${config.apiKeyHeader}` : ''})`
    : '';
  const to =
    [where, ...config.exporters.filter((e) => e !== 'otlp' && e !== 'none')].filter((s) => s !== '').join(' + ') ||
    (config.exporters.length === 0 ? 'nowhere (FORKTRACE_REQUIRE_TLS)' : 'nowhere (OTEL_TRACES_EXPORTER=none)');
  const who = worker.processManager === 'none' ? '' : `, ${worker.processManager} worker ${worker.index ?? '?'}`;
  return statusMessages.tracing(config.serviceName, pid, who, to);
}
