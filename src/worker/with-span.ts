import {
  context,
  propagation,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
  type SpanKind,
} from '@opentelemetry/api';

const TRACER = 'forktrace';

export interface WithSpanOptions {
  attributes?: Attributes;
  kind?: SpanKind;
}

function fail(span: Span, err: unknown): void {
  span.recordException(err instanceof Error ? err : String(err));
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
}

/**
 * Runs `fn` inside a new active span named `name`, ending it when `fn` returns or its promise
 * settles. A thrown error or rejection is recorded on the span, sets ERROR status, and is passed
 * on unchanged.
 */
export function withSpan<T>(name: string, fn: (span: Span) => T, options: WithSpanOptions = {}): T {
  const tracer = trace.getTracer(TRACER);
  return tracer.startActiveSpan(name, { attributes: options.attributes, kind: options.kind }, (span) => {
    let result: T;
    try {
      result = fn(span);
    } catch (err) {
      fail(span, err);
      span.end();
      throw err;
    }
    if (result instanceof Promise) {
      return result.then(
        (value: unknown) => {
          span.end();
          return value;
        },
        (err: unknown) => {
          fail(span, err);
          span.end();
          throw err;
        },
      ) as T;
    }
    span.end();
    return result;
  });
}

/**
 * Writes the active trace context into `carrier` (W3C `traceparent`/`tracestate`), for transports
 * nothing instruments: a queue message's headers, a job record, a child process's env.
 */
export function injectTraceHeaders<T extends Record<string, unknown>>(carrier: T, ctx: Context = context.active()): T {
  propagation.inject(ctx, carrier);
  return carrier;
}

/**
 * Reads a trace context from `carrier`; run the receiving side's work inside it with
 * `context.with(extractTraceContext(headers), () => withSpan(...))`.
 */
export function extractTraceContext(carrier: Record<string, unknown>, ctx: Context = context.active()): Context {
  return propagation.extract(ctx, carrier);
}
