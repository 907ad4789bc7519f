/**
 * A server span the sampler drops, made without the SDK tracer's `startSpan`.
 *
 * Why: for a span it will not record, the SDK's `startSpan` still cleans the (absent) attributes
 * and links, builds the self-observability attributes and calls through ParentBasedSampler to
 * the root sampler; on Node 24 that was about a sixth of what an unsampled request cost over
 * untraced (BENCHMARKS.md, change 12). Here the sampler the provider was built with is asked the
 * same question, with the same trace id, and a span it drops is made as the SDK makes it: a
 * non-recording span with a new span id, the trace id (the parent's, or a new one), no flags, and
 * the sampler's trace state or else the parent's.
 *
 * A span the sampler keeps is left to the SDK's `startSpan`, with the trace id the sampler saw:
 * the provider's id generator hands it over ({@link HandOverIdGenerator}). Asking a ratio sampler
 * twice with two different ids would sample a fraction of a fraction.
 *
 * Exact only for samplers that decide by the parent and the trace id alone (forktrace's, all of
 * them: settings.ts), and only when the tracer records no metrics of its own (no `meterProvider`
 * given to the provider: its started-span counter would miss these). Listed in upstream.ts.
 */
import { diag, trace, SpanKind, TraceFlags, type Context, type Span, type Tracer } from '@opentelemetry/api';
import { isTracingSuppressed } from '@opentelemetry/core';
import { RandomIdGenerator, SamplingDecision, type Sampler } from '@opentelemetry/sdk-trace';

/**
 * The provider's id generator: random ids, except that the trace id handed over is what the next
 * `generateTraceId` returns. Only {@link ServerSpanStarter} hands one over, right before it calls
 * `startSpan` for a root span, and takes it back after.
 */
export class HandOverIdGenerator extends RandomIdGenerator {
  private next: string | undefined;

  override generateTraceId(): string {
    const id = this.next;
    if (id === undefined) return super.generateTraceId();
    this.next = undefined;
    return id;
  }

  handOver(traceId: string | undefined): void {
    this.next = traceId;
  }
}

const NO_ATTRIBUTES = Object.freeze({});
const NO_LINKS = Object.freeze([]) as [];

/** Starts server spans: a dropped one here, a kept one through the tracer. */
export class ServerSpanStarter {
  constructor(
    private readonly sampler: Sampler,
    private readonly ids: HandOverIdGenerator,
  ) {}

  start(tracer: Tracer, name: string, parent: Context): Span {
    if (isTracingSuppressed(parent)) return tracer.startSpan(name, { kind: SpanKind.SERVER }, parent);
    const parentSpan = trace.getSpanContext(parent);
    const valid = parentSpan !== undefined && trace.isSpanContextValid(parentSpan);
    const traceId = valid ? parentSpan.traceId : this.ids.generateTraceId();
    const result = this.sampler.shouldSample(parent, traceId, name, SpanKind.SERVER, NO_ATTRIBUTES, NO_LINKS);
    if (result.decision === SamplingDecision.NOT_RECORD) {
      diag.debug('Recording is off, propagating context in a non-recording span');
      return trace.wrapSpanContext({
        traceId,
        spanId: this.ids.generateSpanId(),
        traceFlags: TraceFlags.NONE,
        traceState: result.traceState ?? (valid ? parentSpan.traceState : undefined),
      });
    }
    if (valid) return tracer.startSpan(name, { kind: SpanKind.SERVER }, parent);
    this.ids.handOver(traceId);
    try {
      return tracer.startSpan(name, { kind: SpanKind.SERVER }, parent);
    } finally {
      this.ids.handOver(undefined);
    }
  }
}
