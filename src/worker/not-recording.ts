import { context, trace } from '@opentelemetry/api';

/**
 * True inside a request whose server span is not sampled (false outside any span). A span started
 * there does not record either: forktrace's samplers follow a local parent's decision (the
 * `parentbased_*` ones) or decide by the trace id the parent already had (`traceidratio`).
 */
export function notRecording(): boolean {
  const span = trace.getSpan(context.active());
  return span !== undefined && !span.isRecording();
}
