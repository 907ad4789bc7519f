import { createNoopMeter, type Counter, type Meter, type MeterProvider } from '@opentelemetry/api';
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
class OtlpProtoExporter extends OTLPExporterBase<ReadableSpan[]> implements SpanExporter, Abandonable {
  private readonly wire: WireWatch;

  constructor(private readonly config: ResolvedConfig) {
    const headers = { ...config.headers, 'Content-Type': 'application/x-protobuf' };
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
          compression: config.compression,
          agentFactory: wire.agentFactory(httpAgentFactoryFromOptions(agentOptions)),
        },
        TraceOrderedSerializer,
        'otlp_http_span_exporter',
        TraceExporterMetricsHelper,
        undefined,
      ),
    );
    this.wire = wire;
  }

  override export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
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

/** Spans per part of a serialized batch (about 20 KB, inside gzip's 32 KB window); see {@link serializeByTrace}. */
const SPANS_PER_PART = 64;

/**
 * Serializes a batch with each trace's spans close together, so that gzip finds a child's trace
 * id a few hundred bytes back instead of sending 16 new bytes. Upstream's serializer groups a
 * whole batch by instrumentation scope, which puts a request's http, express and mysql2 spans
 * 30–70 KB apart, past gzip's 32 KB window. So the batch is cut into parts of whole traces of
 * about {@link SPANS_PER_PART} spans, each serialized by upstream, and the parts are concatenated:
 * concatenated protobuf messages parse as one, with the repeated `resource_spans` appended (the
 * protobuf encoding guide, "Concatenated messages"), so the request holds one ResourceSpans per
 * part. Measured: 39 → 29 wire bytes per span, same CPU, no information lost (BENCHMARKS.md).
 */
export function serializeByTrace(spans: ReadableSpan[]): Uint8Array | undefined {
  if (spans.length <= SPANS_PER_PART) return ProtobufTraceSerializer.serializeRequest(spans);
  const traces = new Map<string, ReadableSpan[]>();
  for (const span of spans) {
    const id = span.spanContext().traceId;
    const list = traces.get(id);
    if (list) list.push(span);
    else traces.set(id, [span]);
  }
  const parts: Uint8Array[] = [];
  let part: ReadableSpan[] = [];
  const flush = () => {
    const bytes = ProtobufTraceSerializer.serializeRequest(part);
    if (bytes) parts.push(bytes);
    part = [];
  };
  for (const list of traces.values()) {
    for (const span of list) part.push(span);
    if (part.length >= SPANS_PER_PART) flush();
  }
  if (part.length > 0) flush();
  return parts.length === 1 ? parts[0] : Buffer.concat(parts);
}

const TraceOrderedSerializer: typeof ProtobufTraceSerializer = {
  serializeRequest: serializeByTrace,
  deserializeResponse: (data) => ProtobufTraceSerializer.deserializeResponse(data),
};

export const zeroExportStats = (): ExportStats => ({ exported: 0, delivered: 0, failed: 0, queueFull: 0, dropped: 0 });

/** Counts what the wrapped exporter delivers and reports each failure. */
export class CountingExporter implements SpanExporter, Abandonable {
  /** Batches handed to the exporter and not answered yet: an exit sends them again. */
  private readonly inFlight = new Set<ReadableSpan[]>();

  constructor(
    private readonly inner: SpanExporter,
    readonly stats: ExportStats,
    private readonly onFailure: (error: Error | undefined, spans: number) => void,
  ) {}

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    this.stats.exported += spans.length;
    let called = false;
    this.inFlight.add(spans);
    const done = (result: ExportResult) => {
      if (called) return;
      called = true;
      this.inFlight.delete(spans);
      if (result.code === ExportResultCode.SUCCESS) this.stats.delivered += spans.length;
      else {
        this.stats.failed += spans.length;
        this.stats.dropped += spans.length;
        this.onFailure(result.error, spans.length);
      }
      resultCallback(result);
    };
    try {
      this.inner.export(spans, done);
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
    return this.inner instanceof OtlpProtoExporter;
  }

  /** The spans of the exports not answered yet. */
  inFlightSpans(): ReadableSpan[] {
    return [...this.inFlight].flat();
  }
}

/**
 * The spans a batch processor holds and has not exported yet (its private `_finishedSpans`,
 * sdk-trace 3.1 BatchSpanProcessorBase); an exit sends them. Empty if the internals differ.
 */
export function queuedSpans(processor: BatchSpanProcessor): ReadableSpan[] {
  const queue = (processor as unknown as Partial<BatchInternals>)._finishedSpans;
  return Array.isArray(queue) ? (queue as ReadableSpan[]) : [];
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
 * The SDK's BatchSpanProcessor for `exporter`, with spans it drops on a full queue counted in
 * `stats` through its (experimental) `selfObsMeterProvider` option.
 */
export function countingBatchProcessor(
  exporter: SpanExporter,
  batch: BatchConfig,
  stats: ExportStats,
): BatchSpanProcessor {
  const options: BatchSpanProcessorOptions = {
    ...batch,
    exporter,
    selfObsMeterProvider: queueDropCounter(stats),
  };
  const processor = new BatchSpanProcessor(options);
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

export function createExporters(config: ResolvedConfig): SpanExporter[] {
  const out: SpanExporter[] = [];
  for (const name of config.exporters) {
    if (name === 'otlp') out.push(new OtlpProtoExporter(config));
    else if (name === 'console') out.push(new ConsoleSpanExporter());
  }
  return out;
}
