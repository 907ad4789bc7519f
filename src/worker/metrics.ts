/**
 * Metrics in a worker: one MeterProvider on the same resource as the spans (so each worker's
 * series carry its own `service.instance.id`, and a restarted worker starts new series instead of
 * making a cumulative one go backwards), the exporters the config names, and the request-duration
 * histograms:
 * - `http.server.request.duration` and `http.client.request.duration`: instrumentation-http
 *   records them once it has a meter provider (its stable metrics are on by default since 0.200);
 *   `http.route` is the same template the server span gets (express-route.ts);
 * - `db.client.operation.duration`: instrumentation-mysql2 (0.70) records none, so it is measured
 *   here from mysql2's own tracing channels (mysql2 >= 3.20), sampled or not.
 *
 * Loaded only when a metrics exporter is configured: sdk-metrics and the metrics serializer cost a
 * worker's start about 10 ms that an app without metrics should not pay.
 */
import * as diagnosticsChannel from 'node:diagnostics_channel';
import type { Attributes, Context, Histogram, Meter, MeterProvider as ApiMeterProvider } from '@opentelemetry/api';
import { OTLPExporterBase } from '@opentelemetry/otlp-exporter-base';
import { createOtlpHttpExportDelegate, httpAgentFactoryFromOptions } from '@opentelemetry/otlp-exporter-base/node-http';
import { MetricsExporterMetricsHelper, ProtobufMetricsSerializer } from '@opentelemetry/otlp-transformer';
import type { Resource } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  ConsoleMetricExporter,
  InstrumentType,
  MeterProvider,
  PeriodicExportingMetricReader,
  type MetricReader,
  type PushMetricExporter,
  type ResourceMetrics,
} from '@opentelemetry/sdk-metrics';
import { ExportResultCode, setGlobalErrorHandler, type ExportResult } from '@opentelemetry/core';
import type { MetricsConfig } from '../config/types';
import type { MetricsTemporalityName } from '../types';
import type { Logger } from './log';
import { readCa } from './otlp-post';
import { collectNow, startPrometheus, type RecordTap, type TappedInstrument } from './prometheus';
import { WireWatch, type Abandonable } from './wire-watch';

/** What instrument() keeps of the metrics pipeline. */
export interface Metrics {
  /** The provider the instrumentations and the app's own meters record into. */
  provider: ApiMeterProvider;
  /** Exports what has been recorded since the last export. Never rejects. */
  flush(): Promise<void>;
  /** Exports once more, then stops: every stop path ends with it. Never rejects. */
  shutdown(): Promise<void>;
  /**
   * Values recorded through the synchronous instruments since the last export began (or the last
   * flush), by any exporter that pushes: a `beforeExit` flush runs for metrics only when this is
   * not 0. 0 without a pushing exporter (Prometheus writes its file itself).
   */
  recordedSinceExport(): number;
  /** Ends the OTLP export requests in flight, once a stop's deadline has passed. */
  abandon(): void;
  /**
   * For an exit that cannot wait (a crash, process.exit()): the OTLP data recorded since the last
   * successful export, serialized synchronously; undefined when there is none or OTLP is off.
   */
  atExit(): Uint8Array | undefined;
}

/** How a failed metrics export is reported: once per cause, rate-limited by the caller. */
export type MetricsFailure = (error: Error | undefined) => void;

/** Starts metrics for this worker, or returns undefined when no metrics exporter is configured. */
export function startMetrics(
  config: MetricsConfig,
  resource: Resource,
  options: {
    mysql2: boolean;
    onFailure: MetricsFailure;
    logger: Logger;
    /** The app's service.name, and the labels every worker of the app shares (Prometheus `target_info`). */
    service: string;
    targetInfo: Record<string, string | number | boolean>;
    /** The global error handler, for the copy of @opentelemetry/core this module loads. */
    onGlobalError?: (err: unknown) => void;
  },
): Metrics | undefined {
  if (options.onGlobalError) setGlobalErrorHandler(options.onGlobalError);
  const prometheus = config.exporters.includes('prometheus')
    ? startPrometheus(config.prometheus, options.service, options.targetInfo, options.logger)
    : undefined;
  const recordings = new Recordings(prometheus?.tap);
  const pushers: NotingExporter[] = [];
  let otlp: { exporter: OtlpMetricExporter; reader: MetricReader } | undefined;
  const readers: MetricReader[] = [];
  for (const name of config.exporters) {
    if (name === 'prometheus') continue;
    const inner =
      name === 'otlp'
        ? new OtlpMetricExporter(config, options.onFailure)
        : new ConsoleMetricExporter({ temporalitySelector: temporalitySelector(config.temporality) });
    const exporter = new NotingExporter(inner, recordings);
    pushers.push(exporter);
    const reader = new PeriodicExportingMetricReader({
      exporter,
      exportIntervalMillis: config.exportIntervalMillis,
      exportTimeoutMillis: config.exportTimeoutMillis,
    });
    if (inner instanceof OtlpMetricExporter) otlp = { exporter: inner, reader };
    readers.push(reader);
  }
  if (prometheus) readers.push(prometheus.reader);
  if (readers.length === 0) return undefined;
  const sdkProvider = new MeterProvider({ resource, readers });
  const provider = recordings.wrap(sdkProvider);
  const unsubscribe = options.mysql2 ? recordMysql2Durations(provider.getMeter('forktrace')) : () => undefined;
  // A crash or process.exit(): no promise settles in 'exit', so the totals are written as they are.
  const onExit = () => prometheus?.reader.writeNow();
  if (prometheus) process.on('exit', onExit);
  let stopped = false;
  return {
    provider,
    flush: () => {
      if (stopped) return Promise.resolve();
      for (const p of pushers) p.note();
      return sdkProvider.forceFlush().catch(() => undefined);
    },
    recordedSinceExport: () => (pushers.length === 0 ? 0 : recordings.count - Math.min(...pushers.map((p) => p.noted))),
    abandon: () => otlp?.exporter.abandonInFlight(),
    atExit: () => {
      if (stopped || otlp === undefined) return undefined;
      const rm = collectNow(otlp.reader);
      if (rm === undefined || !otlp.exporter.isNews(rm)) return undefined;
      return ProtobufMetricsSerializer.serializeRequest(rm);
    },
    shutdown: () => {
      if (stopped) return Promise.resolve();
      stopped = true;
      unsubscribe();
      process.removeListener('exit', onExit);
      prometheus?.close();
      return sdkProvider.shutdown().catch(() => undefined);
    },
  };
}

/**
 * Counts the values recorded through the synchronous instruments (counters, up-down counters,
 * histograms, gauges) of every meter the provider hands out: one increment per value, so that a
 * `beforeExit` can tell whether there is anything to export without collecting (a collection
 * would consume delta data). `tap` (the Prometheus exemplars) hears each value too: one wrapper
 * per instrument, whatever listens.
 */
class Recordings {
  count = 0;

  constructor(private readonly tap: RecordTap | undefined) {}

  wrap(inner: ApiMeterProvider): ApiMeterProvider {
    return { getMeter: (name, version, options) => this.wrapMeter(inner.getMeter(name, version, options)) };
  }

  private wrapMeter(meter: Meter): Meter {
    const counting = <T extends object>(instrument: T, method: 'add' | 'record', tapped: TappedInstrument): T => {
      const original = (instrument as Record<string, (value: number, a?: Attributes, c?: Context) => void>)[method];
      if (typeof original !== 'function') return instrument;
      const wrapped = Object.create(instrument) as Record<string, unknown>;
      const tap = this.tap;
      wrapped[method] = (value: number, attributes?: Attributes, ctx?: Context) => {
        this.count++;
        original.call(instrument, value, attributes, ctx);
        tap?.(tapped, value, attributes, ctx);
      };
      return wrapped as T;
    };
    return new Proxy(meter, {
      get(target, key, receiver) {
        const kind = INSTRUMENT_KINDS[key as keyof typeof INSTRUMENT_KINDS];
        if (kind !== undefined) {
          const create = (target[key as keyof typeof INSTRUMENT_KINDS] as (n: string, o?: unknown) => object).bind(
            target,
          );
          return (name: string, options?: { advice?: { explicitBucketBoundaries?: number[] } }) => {
            const bounds = options?.advice?.explicitBucketBoundaries;
            const tapped: TappedInstrument = { name, kind, ...(bounds ? { bounds } : {}) };
            return counting(create(name, options), kind === 'histogram' || kind === 'gauge' ? 'record' : 'add', tapped);
          };
        }
        const v: unknown = Reflect.get(target, key, receiver);
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
  }
}

/** The synchronous instruments a meter creates, by the method that creates them. */
const INSTRUMENT_KINDS = {
  createCounter: 'counter',
  createUpDownCounter: 'updowncounter',
  createHistogram: 'histogram',
  createGauge: 'gauge',
} as const;

/** A pushing exporter that notes how many values had been recorded when its last export began. */
class NotingExporter implements PushMetricExporter {
  noted = 0;
  readonly selectAggregationTemporality?: PushMetricExporter['selectAggregationTemporality'];
  readonly selectAggregation?: PushMetricExporter['selectAggregation'];

  constructor(
    private readonly inner: PushMetricExporter,
    private readonly recordings: Recordings,
  ) {
    // The reader binds these when the exporter has them, and only then.
    if (inner.selectAggregationTemporality)
      this.selectAggregationTemporality = inner.selectAggregationTemporality.bind(inner);
    if (inner.selectAggregation) this.selectAggregation = inner.selectAggregation.bind(inner);
  }

  /** What is recorded from now on is the next export's. */
  note(): void {
    this.noted = this.recordings.count;
  }

  export(metrics: ResourceMetrics, resultCallback: (result: ExportResult) => void): void {
    this.note();
    this.inner.export(metrics, resultCallback);
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
}

/**
 * What an exit has to send of `rm`, in short: its delta points (each is news: recorded since the
 * last collection), and a fingerprint of its cumulative points (the number of points, the sum of
 * their counts and of their values), which equals the last successful export's when nothing was
 * recorded since. Cheap, and the same data always gives the same fingerprint: the SDK collects
 * its storages and series in the same order every time.
 */
function summarize(rm: ResourceMetrics): { deltaPoints: number; cumulativePoints: number; cumulative: string } {
  let deltaPoints = 0;
  let points = 0;
  let counts = 0;
  let values = 0;
  for (const scope of rm.scopeMetrics) {
    for (const metric of scope.metrics) {
      if (metric.aggregationTemporality === AggregationTemporality.DELTA) {
        deltaPoints += metric.dataPoints.length;
        continue;
      }
      for (const point of metric.dataPoints) {
        points++;
        const v = point.value as number | { count: number; sum?: number };
        if (typeof v === 'number') values += v;
        else {
          counts += v.count;
          values += v.sum ?? 0;
        }
      }
    }
  }
  return { deltaPoints, cumulativePoints: points, cumulative: `${points}:${counts}:${values}` };
}

/**
 * Which temporality each kind of instrument is exported with, per the OTLP metrics exporter spec
 * (`OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`): up-down counters stay cumulative under
 * `delta`, and `lowmemory` also keeps asynchronous counters cumulative, so that the SDK need not
 * remember their last value.
 */
export function temporalitySelector(
  preference: MetricsTemporalityName,
): (type: InstrumentType) => AggregationTemporality {
  const { DELTA, CUMULATIVE } = AggregationTemporality;
  if (preference === 'cumulative') return () => CUMULATIVE;
  return (type) => {
    switch (type) {
      case InstrumentType.COUNTER:
      case InstrumentType.HISTOGRAM:
        return DELTA;
      case InstrumentType.OBSERVABLE_COUNTER:
        return preference === 'delta' ? DELTA : CUMULATIVE;
      default:
        return CUMULATIVE;
    }
  };
}

/**
 * OTLP/HTTP protobuf to `/v1/metrics`, gzip and headers as the span exporter sends them, from the
 * same upstream parts (otlp-exporter-base's export delegate: its retries, timeout and concurrency
 * limit), configured only from the resolved config for the same reason (exporter.ts
 * OtlpProtoExporter): upstream's exporter re-reads the variables and quotes what it rejects.
 */
class OtlpMetricExporter extends OTLPExporterBase<ResourceMetrics> implements PushMetricExporter, Abandonable {
  readonly selectAggregationTemporality: (type: InstrumentType) => AggregationTemporality;
  private readonly wire: WireWatch;
  /** The cumulative fingerprint of the last export that succeeded (see {@link summarize}). */
  private exported: string | undefined;

  constructor(
    config: MetricsConfig,
    private readonly onFailure: MetricsFailure,
  ) {
    const headers = { ...config.headers, 'Content-Type': 'application/x-protobuf' };
    const ca = config.certificateFile ? readCa(config.certificateFile) : undefined;
    // Its requests watched as the span exporter's are: each attempt bounded, and ended at a stop's
    // deadline, so that a blackholed metrics endpoint cannot hold a stopping worker open.
    const wire = new WireWatch(config.timeoutMillis);
    super(
      createOtlpHttpExportDelegate(
        {
          url: config.endpoint,
          headers: () => Promise.resolve(headers),
          timeoutMillis: config.timeoutMillis,
          // One export per interval; a second only while the first is still retrying.
          concurrencyLimit: 2,
          compression: config.compression,
          agentFactory: wire.agentFactory(httpAgentFactoryFromOptions({ keepAlive: true, ...(ca ? { ca } : {}) })),
        },
        ProtobufMetricsSerializer,
        'otlp_http_metric_exporter',
        MetricsExporterMetricsHelper,
        undefined,
      ),
    );
    this.wire = wire;
    this.selectAggregationTemporality = temporalitySelector(config.temporality);
  }

  override export(metrics: ResourceMetrics, resultCallback: (result: ExportResult) => void): void {
    const { cumulative } = summarize(metrics);
    super.export(metrics, (result) => {
      if (result.code === ExportResultCode.SUCCESS) this.exported = cumulative;
      else this.onFailure(result.error);
      resultCallback(result);
    });
  }

  /**
   * Whether `rm` (collected at an exit) holds anything the last successful export did not: under
   * cumulative temporality every collection returns the totals, and sending them again at every
   * exit after a flush would cost an exit its deadline for nothing.
   */
  isNews(rm: ResourceMetrics): boolean {
    const { deltaPoints, cumulativePoints, cumulative } = summarize(rm);
    return deltaPoints > 0 || (cumulativePoints > 0 && cumulative !== this.exported);
  }

  /** Ends the attempts in flight: see {@link WireWatch.abandonInFlight}. */
  abandonInFlight(): number {
    return this.wire.abandonInFlight();
  }

  override shutdown(): Promise<void> {
    this.wire.close();
    return super.shutdown();
  }
}

// mysql2 >= 3.20 publishes each query and execute on these (lib/tracing.js), with the
// connection's database, host and port in the context object it passes to every event.
const MYSQL2_CHANNELS = ['mysql2:query', 'mysql2:execute'] as const;

/** The context object mysql2 publishes, plus the start time forktrace puts on it. */
interface Mysql2Context {
  query?: unknown;
  database?: unknown;
  serverAddress?: unknown;
  serverPort?: unknown;
  error?: unknown;
  [STARTED]?: number;
}
const STARTED = Symbol('forktrace.started');

/** The semantic conventions' advice for `db.client.operation.duration`, in seconds. */
const DB_DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10];

/**
 * Records `db.client.operation.duration` (seconds) for every mysql2 query and execute, with the
 * stable database attributes. Returns what undoes the subscriptions.
 */
function recordMysql2Durations(meter: Meter): () => void {
  const histogram = meter.createHistogram('db.client.operation.duration', {
    description: 'Duration of database client operations.',
    unit: 's',
    advice: { explicitBucketBoundaries: DB_DURATION_BUCKETS },
  });
  const handlers = {
    start: (message: unknown) => {
      (message as Mysql2Context)[STARTED] = performance.now();
    },
    // The callback (or the promise) got its result: the operation is over for the app.
    asyncStart: (message: unknown) => record(histogram, message as Mysql2Context),
    // Thrown before anything was sent (a bad argument): no asyncStart follows.
    end: (message: unknown) => {
      const ctx = message as Mysql2Context;
      if (ctx.error !== undefined) record(histogram, ctx);
    },
  };
  const channels = MYSQL2_CHANNELS.map((name) => diagnosticsChannel.tracingChannel(name));
  for (const channel of channels) channel.subscribe(handlers as never);
  return () => {
    for (const channel of channels) channel.unsubscribe(handlers as never);
  };
}

function record(histogram: Histogram, ctx: Mysql2Context): void {
  const started = ctx[STARTED];
  if (started === undefined) return;
  delete ctx[STARTED];
  const attributes: Record<string, string | number> = { 'db.system.name': 'mysql' };
  if (typeof ctx.database === 'string' && ctx.database !== '') attributes['db.namespace'] = ctx.database;
  const operation = operationName(ctx.query);
  if (operation !== undefined) attributes['db.operation.name'] = operation;
  if (typeof ctx.serverAddress === 'string') attributes['server.address'] = ctx.serverAddress;
  if (typeof ctx.serverPort === 'number') attributes['server.port'] = ctx.serverPort;
  if (ctx.error !== undefined) {
    const e = ctx.error as { code?: unknown; errno?: unknown; name?: unknown };
    attributes['error.type'] = typeof e.code === 'string' ? e.code : typeof e.name === 'string' ? e.name : '_OTHER';
    if (typeof e.errno === 'number') attributes['db.response.status_code'] = String(e.errno);
  }
  histogram.record((performance.now() - started) / 1000, attributes);
}

/**
 * The statement's first keyword, when it is one of these: a closed set, so that the attribute
 * cannot take one value per statement and blow up the number of series.
 */
const OPERATIONS = new Set([
  'SELECT',
  'INSERT',
  'UPDATE',
  'DELETE',
  'REPLACE',
  'CALL',
  'WITH',
  'BEGIN',
  'START',
  'COMMIT',
  'ROLLBACK',
  'SET',
  'SHOW',
  'CREATE',
  'ALTER',
  'DROP',
  'TRUNCATE',
  'USE',
]);

function operationName(query: unknown): string | undefined {
  if (typeof query !== 'string') return undefined;
  const m = /^[\s(]*([A-Za-z]+)/.exec(query);
  const word = m?.[1]?.toUpperCase();
  return word !== undefined && OPERATIONS.has(word) ? word : undefined;
}
