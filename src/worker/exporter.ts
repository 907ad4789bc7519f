import { createNoopMeter, TraceFlags, type Counter, type Meter, type MeterProvider } from '@opentelemetry/api';
import { ExportResultCode, globalErrorHandler, type ExportResult } from '@opentelemetry/core';
import { OTLPExporterBase, OTLPExporterError } from '@opentelemetry/otlp-exporter-base';
import { createOtlpHttpExportDelegate, httpAgentFactoryFromOptions } from '@opentelemetry/otlp-exporter-base/node-http';
import {
  BatchSpanProcessor,
  ConsoleSpanExporter,
  type BatchSpanProcessorOptions,
  type ReadableSpan,
  type SpanExporter,
} from '@opentelemetry/sdk-trace';
import type { BatchConfig, ResolvedConfig } from '../config/types';
import type { ExportStats } from '../types';
import { readCa } from './otlp-post';
import { encodeSpan, requestBody, type EncodedSpan } from './span-bytes';
import { ProtobufTraceSerializer, TraceExporterMetricsHelper } from './trace-transformer';
import { UPSTREAM_TEXT } from './upstream';
import { ExportTimeoutError, WireWatch, type Abandonable } from './wire-watch';

/** An export that got only retryable HTTP answers until its time ran out. */
export class RetriesExhaustedError extends Error {
  constructor(
    /** The last HTTP status received (429, 502, 503 or 504). */
    readonly code: number,
    /** The last `Retry-After` header received, as sent. */
    readonly retryAfter: string | undefined,
    /** The export timeout (OTEL_EXPORTER_OTLP_TIMEOUT) the retries had to fit in. */
    readonly timeoutMillis: number,
  ) {
    super(`HTTP ${code} on every attempt`);
    this.name = 'RetriesExhaustedError';
  }
}

/**
 * The OTLP/HTTP protobuf exporter, assembled from the same parts as
 * `@opentelemetry/exporter-trace-otlp-proto`'s OTLPTraceExporter but configured only from the
 * resolved config. OTLPTraceExporter re-reads the OTEL_EXPORTER_OTLP_* variables itself: it would
 * add back header pairs forktrace rejected, and its warnings quote header values and URLs with
 * credentials (otlp-exporter-base `util.js`, `otlp-node-http-env-configuration.js`).
 *
 * Retries are upstream's (otlp-exporter-base `retrying-transport.js`): 429/502/503/504 and the
 * network errors ECONNRESET, ECONNREFUSED, EPIPE, ETIMEDOUT, EAI_AGAIN, ENOTFOUND, ENETUNREACH,
 * EHOSTUNREACH and a request timeout are retried up to 5 times, with backoff 1 s × 1.5ⁿ (±20 %,
 * at most 5 s) or `Retry-After` when given, and never past `timeoutMillis` from the first attempt.
 */
class OtlpProtoExporter extends OTLPExporterBase<EncodedSpan[]> implements Abandonable {
  private readonly wire: WireWatch;

  constructor(private readonly config: ResolvedConfig) {
    const gzip = config.compression === 'gzip';
    // The body is compressed once, by the serializer; the transport sends it as it gets it.
    const headers = {
      ...config.headers,
      'Content-Type': 'application/x-protobuf',
      ...(gzip ? { 'Content-Encoding': 'gzip' } : {}),
    };
    const wire = new WireWatch(config.timeoutMillis);
    // Read when the first export starts (the factory runs lazily), so that `https` is loaded
    // after the http instrumentation is in place. A custom CA replaces the built-in roots, as
    // OTEL_EXPORTER_OTLP_CERTIFICATE does in the other OpenTelemetry SDKs.
    const agentOptions = { keepAlive: true, ...(config.certificateFile ? { ca: readCa(config.certificateFile) } : {}) };
    super(
      createOtlpHttpExportDelegate(
        {
          url: config.endpoint,
          headers: () => Promise.resolve(headers),
          timeoutMillis: config.timeoutMillis,
          // At most this many exports in flight; beyond it a batch fails fast and is counted as
          // dropped instead of piling up while the endpoint is down.
          concurrencyLimit: 30,
          compression: 'none',
          agentFactory: wire.agentFactory(httpAgentFactoryFromOptions(agentOptions)),
        },
        serializer(gzip),
        'otlp_http_span_exporter',
        // Upstream's helper, counting encoded spans instead of the SDK's.
        { ...TraceExporterMetricsHelper, countItems: (spans: EncodedSpan[]) => spans.length },
        undefined,
      ),
    );
    this.wire = wire;
  }

  override export(spans: EncodedSpan[], resultCallback: (result: ExportResult) => void): void {
    super.export(spans, (result) =>
      resultCallback(result.error ? { ...result, error: this.explain(result.error) } : result),
    );
  }

  /** Upstream's errors, with what the exporter knows added: the last status, the timeout. */
  private explain(e: Error): Error {
    const timeout = this.config.timeoutMillis;
    // Upstream's error for retries run out on a 429/502/503/504 carries no status code.
    if (e instanceof OTLPExporterError && e.code === undefined && e.message === UPSTREAM_TEXT.retryableGaveUp) {
      if (this.wire.lastStatus !== undefined)
        return new RetriesExhaustedError(this.wire.lastStatus, this.wire.lastRetryAfter, timeout);
    }
    if (e.message === UPSTREAM_TEXT.requestTimedOut && !('code' in e)) return new ExportTimeoutError(timeout);
    return e;
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

/**
 * The request body of a batch of spans encoded when they ended (span-bytes.ts `requestBody`),
 * gzipped once when the batch is serialized: the retries of an export send these bytes again.
 */
const serializer = (gzip: boolean) => ({
  serializeRequest: (spans: EncodedSpan[]) => requestBody(spans, gzip),
  deserializeResponse: (data: Uint8Array) => ProtobufTraceSerializer.deserializeResponse(data),
});

export const zeroExportStats = (): ExportStats => ({ exported: 0, delivered: 0, failed: 0, queueFull: 0, dropped: 0 });

/**
 * What a batch processor holds: the SDK's spans for the console exporter, spans encoded when they
 * ended for the OTLP one ({@link EncodingBatchProcessor}).
 */
export type QueuedSpan = ReadableSpan | EncodedSpan;

/** An exporter as the batch processor calls it, with whichever kind of span it queues. */
interface QueueExporter {
  export(spans: QueuedSpan[], resultCallback: (result: ExportResult) => void): void;
  shutdown(): Promise<void>;
  forceFlush?(): Promise<void>;
}

/** Counts what the wrapped exporter delivers and reports each failure. */
export class CountingExporter implements QueueExporter, Abandonable {
  /** Batches handed to the exporter and not answered yet: an exit sends them again. */
  private readonly inFlight = new Set<QueuedSpan[]>();
  /** Told when the last batch in flight is answered ({@link settled}). */
  private waiting: Array<() => void> = [];

  constructor(
    private readonly inner: SpanExporter | OtlpProtoExporter,
    readonly stats: ExportStats,
    private readonly onFailure: (error: Error | undefined, spans: number) => void,
  ) {}

  export(spans: QueuedSpan[], resultCallback: (result: ExportResult) => void): void {
    this.stats.exported += spans.length;
    let called = false;
    this.inFlight.add(spans);
    const done = (result: ExportResult) => {
      if (called) return;
      called = true;
      this.inFlight.delete(spans);
      if (this.inFlight.size === 0 && this.waiting.length > 0) {
        const waiting = this.waiting;
        this.waiting = [];
        for (const resolve of waiting) resolve();
      }
      if (result.code === ExportResultCode.SUCCESS) this.stats.delivered += spans.length;
      else {
        this.stats.failed += spans.length;
        this.stats.dropped += spans.length;
        this.onFailure(result.error, spans.length);
      }
      resultCallback(result);
    };
    try {
      (this.inner as QueueExporter).export(spans, done);
    } catch (e) {
      done({ code: ExportResultCode.FAILED, error: e instanceof Error ? e : new Error(String(e)) });
    }
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }

  abandonInFlight(): number {
    const inner = this.inner as Partial<Abandonable>;
    return inner.abandonInFlight?.() ?? 0;
  }

  /** Whether this sends OTLP (an exit can send its spans from another process) or not (console). */
  get isOtlp(): boolean {
    return isOtlpExporter(this.inner);
  }

  /**
   * Resolves once no batch is waiting for its answer. The batch processor's forceFlush exports
   * what is queued but does not wait for an export its timer started.
   */
  settled(): Promise<void> {
    if (this.inFlight.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** The spans of the exports not answered yet. */
  inFlightSpans(): QueuedSpan[] {
    return [...this.inFlight].flat();
  }
}

/**
 * The spans a batch processor holds and has not exported yet (its private `_finishedSpans`,
 * sdk-trace 3.1 BatchSpanProcessorBase); an exit sends them. Empty if the internals differ.
 */
export function queuedSpans(processor: BatchSpanProcessor): QueuedSpan[] {
  const queue = (processor as unknown as Partial<BatchInternals>)._finishedSpans;
  return Array.isArray(queue) ? (queue as QueuedSpan[]) : [];
}

/**
 * A MeterProvider that only counts the spans a BatchSpanProcessor drops because its queue is
 * full. The processor drops them silently apart from one debug line
 * (sdk-trace `BatchSpanProcessorBase._addToBuffer`); its self-observability counter
 * `otel.sdk.processor.span.processed` with `error.type=queue_full` is the one place that sees each.
 */
export function queueDropCounter(stats: ExportStats): MeterProvider {
  const noop = createNoopMeter();
  const counter: Counter = {
    add(value, attributes) {
      if (attributes?.['error.type'] === 'queue_full') {
        stats.queueFull += value;
        stats.dropped += value;
      }
    },
  };
  const meter: Meter = Object.assign(Object.create(noop) as Meter, {
    createCounter: () => counter,
  });
  return { getMeter: () => meter };
}

/**
 * The SDK's batch processor, queueing each sampled span as its OTLP bytes
 * (src/worker/span-bytes.ts) instead of the span object, so that what waits for export is a few
 * hundred bytes outside the V8 heap. The processor reads only `spanContext().traceFlags` and
 * `resource` of what it queues (sdk-trace 3.1 BatchSpanProcessorBase `onEnd`, `_flushOneBatch`),
 * which {@link EncodedSpan} answers; listed in upstream.ts.
 */
class EncodingBatchProcessor extends BatchSpanProcessor {
  constructor(
    options: BatchSpanProcessorOptions,
    private readonly stats: ExportStats,
  ) {
    super(options);
  }

  override onEnd(span: ReadableSpan): void {
    if ((span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) return;
    let encoded: EncodedSpan;
    try {
      encoded = encodeSpan(span);
    } catch (e) {
      // Never into the app's span.end(): the span is counted as dropped, and the error reported.
      this.stats.dropped++;
      globalErrorHandler(e as Error);
      return;
    }
    super.onEnd(encoded as unknown as ReadableSpan);
  }
}

/**
 * The SDK's BatchSpanProcessor for `exporter`, with spans it drops on a full queue counted in
 * `stats` through its (experimental) `selfObsMeterProvider` option. With `encode`, it queues the
 * spans' OTLP bytes ({@link EncodingBatchProcessor}): for the OTLP exporter.
 */
export function countingBatchProcessor(
  exporter: SpanExporter | QueueExporter,
  batch: BatchConfig,
  stats: ExportStats,
  encode = false,
): BatchSpanProcessor {
  const options: BatchSpanProcessorOptions = {
    ...batch,
    exporter: exporter as SpanExporter,
    selfObsMeterProvider: queueDropCounter(stats),
  };
  const processor = encode ? new EncodingBatchProcessor(options, stats) : new BatchSpanProcessor(options);
  oneExportAtATime(processor);
  return processor;
}

/** The parts of sdk-trace 3.1's BatchSpanProcessorBase that {@link oneExportAtATime} replaces or uses. */
interface BatchInternals {
  _isExporting: boolean;
  _finishedSpans: unknown[];
  _maxExportBatchSize: number;
  _scheduledDelayMillis: number;
  _timer: NodeJS.Timeout | undefined;
  _flushOneBatch(): Promise<void>;
  _clearTimer(): void;
  _maybeStartTimer(): void;
}

/**
 * Keeps the batch processor at one export at a time after failed exports too, as the spec asks
 * ("Export() will never be called concurrently for the same exporter instance", trace/sdk.md).
 * Upstream's `_maybeStartTimer` (sdk-trace 3.1 BatchSpanProcessorBase, unchanged since 2.x) starts the next batch in
 * `.finally()`, then its `.catch()` runs and clears `_isExporting` under that new export, so
 * every failed export lets one more start alongside: while an endpoint refuses connections the
 * exports in flight grow to the exporter's limit of 30, holding 30 batches of spans. Measured
 * under load over 60 s: +94 MB RSS before, see BENCHMARKS.md "Outage under load" for after.
 * The same logic with the two handlers in the right order; if the internals ever differ, the
 * processor is left as upstream made it.
 */
function oneExportAtATime(processor: BatchSpanProcessor): void {
  const p = processor as unknown as BatchInternals;
  if (
    typeof p._maybeStartTimer !== 'function' ||
    typeof p._flushOneBatch !== 'function' ||
    typeof p._clearTimer !== 'function' ||
    typeof p._isExporting !== 'boolean' ||
    !Array.isArray(p._finishedSpans)
  )
    return;
  p._maybeStartTimer = function (this: BatchInternals): void {
    if (this._isExporting) return;
    const flush = () => {
      this._isExporting = true;
      this._flushOneBatch()
        .catch((e: unknown) => globalErrorHandler(e as Error))
        .finally(() => {
          this._isExporting = false;
          if (this._finishedSpans.length > 0) {
            this._clearTimer();
            this._maybeStartTimer();
          }
        });
    };
    if (this._finishedSpans.length >= this._maxExportBatchSize) return flush();
    if (this._timer !== undefined) return;
    this._timer = setTimeout(flush, this._scheduledDelayMillis);
    this._timer.unref();
  };
}

/** Whether `exporter` is forktrace's OTLP exporter, which takes spans encoded when they end. */
export function isOtlpExporter(exporter: unknown): boolean {
  return exporter instanceof OtlpProtoExporter;
}

export function createExporters(config: ResolvedConfig): Array<SpanExporter | OtlpProtoExporter> {
  const out: Array<SpanExporter | OtlpProtoExporter> = [];
  for (const name of config.exporters) {
    if (name === 'otlp') out.push(new OtlpProtoExporter(config));
    else if (name === 'console') out.push(new ConsoleSpanExporter());
  }
  return out;
}
