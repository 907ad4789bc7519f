// Server spans started by forktrace's ServerSpanStarter (src/worker/dropped-spans.ts) against the
// SDK tracer's own startSpan, with each sampler forktrace can be set to and each kind of parent:
// the same recording or not, flags, trace id and trace state, and a ratio sampler that samples
// the fraction it is set to.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const api = require('@opentelemetry/api');
const { isTracingSuppressed, suppressTracing, TraceState } = require('@opentelemetry/core');
const sdk = require('@opentelemetry/sdk-trace');
const { HandOverIdGenerator, ServerSpanStarter } = require('../dist/worker/dropped-spans.js');

const { ROOT_CONTEXT, SpanKind, TraceFlags, trace } = api;

/** The samplers OTEL_TRACES_SAMPLER can choose (src/worker/instrument.ts). */
const SAMPLERS = {
  always_on: () => new sdk.AlwaysOnSampler(),
  always_off: () => new sdk.AlwaysOffSampler(),
  traceidratio: () => new sdk.TraceIdRatioBasedSampler(0.5),
  parentbased_always_on: () => new sdk.ParentBasedSampler({ root: new sdk.AlwaysOnSampler() }),
  parentbased_always_off: () => new sdk.ParentBasedSampler({ root: new sdk.AlwaysOffSampler() }),
  parentbased_traceidratio: () => new sdk.ParentBasedSampler({ root: new sdk.TraceIdRatioBasedSampler(0.5) }),
};

function setup(makeSampler) {
  const sampler = makeSampler();
  const ids = new HandOverIdGenerator();
  const provider = new sdk.TracerProvider({ sampler, idGenerator: ids });
  return { tracer: provider.getTracer('test'), starter: new ServerSpanStarter(sampler, ids) };
}

const state = new TraceState('vendor=abc');
const remote = (traceFlags) =>
  trace.setSpanContext(ROOT_CONTEXT, {
    traceId: '0af7651916cd43dd8448eb211c80319c',
    spanId: 'b7ad6b7169203331',
    traceFlags,
    traceState: state,
    isRemote: true,
  });
/** The parents a server span can have. */
const PARENTS = {
  none: () => ROOT_CONTEXT,
  'remote, sampled': () => remote(TraceFlags.SAMPLED),
  'remote, not sampled': () => remote(TraceFlags.NONE),
  'local, not sampled': () =>
    trace.setSpan(
      ROOT_CONTEXT,
      trace.wrapSpanContext({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: 0 }),
    ),
  'tracing suppressed': () => suppressTracing(remote(TraceFlags.SAMPLED)),
};

/** What a caller can tell of a span apart from its random ids. */
function shape(span, parent) {
  const ctx = span.spanContext();
  const parentCtx = trace.getSpanContext(parent);
  const parentValid = parentCtx !== undefined && trace.isSpanContextValid(parentCtx) && !isTracingSuppressed(parent);
  return {
    recording: span.isRecording(),
    kind: span.isRecording() ? span.kind : undefined,
    name: span.isRecording() ? span.name : undefined,
    valid: trace.isSpanContextValid(ctx),
    traceFlags: ctx.traceFlags,
    traceState: ctx.traceState?.serialize(),
    traceId: parentValid ? ctx.traceId : ctx.traceId === parentCtx?.traceId ? 'the parent' : 'new',
    newSpanId: ctx.spanId !== parentCtx?.spanId,
    remote: ctx.isRemote,
  };
}

for (const [samplerName, makeSampler] of Object.entries(SAMPLERS)) {
  for (const [parentName, makeParent] of Object.entries(PARENTS)) {
    if (samplerName.includes('traceidratio') && parentName === 'none') continue;
    test(`${samplerName}, parent ${parentName}: the same span as the SDK's startSpan`, () => {
      const { tracer, starter } = setup(makeSampler);
      const parent = makeParent();
      const ours = starter.start(tracer, 'GET', parent);
      const sdks = tracer.startSpan('GET', { kind: SpanKind.SERVER }, parent);
      assert.deepEqual(shape(ours, parent), shape(sdks, parent));
      assert.equal(ours.constructor, sdks.constructor);
    });
  }
}

for (const samplerName of ['traceidratio', 'parentbased_traceidratio']) {
  test(`${samplerName} 0.5, no parent: a span is kept exactly when the ratio keeps its trace id, half of the time`, () => {
    const { tracer, starter } = setup(SAMPLERS[samplerName]);
    const ratio = new sdk.TraceIdRatioBasedSampler(0.5);
    const seen = new Set();
    let kept = 0;
    const n = 2000;
    for (let i = 0; i < n; i++) {
      const span = starter.start(tracer, 'GET', ROOT_CONTEXT);
      const { traceId, traceFlags } = span.spanContext();
      const wanted = ratio.shouldSample(ROOT_CONTEXT, traceId).decision === sdk.SamplingDecision.RECORD_AND_SAMPLED;
      assert.equal(span.isRecording(), wanted, `trace ${traceId}`);
      assert.equal(traceFlags, wanted ? TraceFlags.SAMPLED : TraceFlags.NONE);
      seen.add(traceId);
      if (wanted) kept++;
    }
    // Two draws per kept span would keep a quarter; 0.44–0.56 is more than five standard deviations wide.
    assert.ok(kept / n > 0.44 && kept / n < 0.56, `kept ${kept} of ${n}`);
    assert.equal(seen.size, n, 'a trace id was used twice');
  });
}

test('the trace id handed to a kept root span is not handed to the next one', () => {
  const { tracer, starter } = setup(SAMPLERS.always_on);
  const first = starter.start(tracer, 'GET', ROOT_CONTEXT);
  const next = tracer.startSpan('other');
  const third = starter.start(tracer, 'GET', ROOT_CONTEXT);
  const traceIds = [first, next, third].map((s) => s.spanContext().traceId);
  assert.equal(new Set(traceIds).size, 3, traceIds.join(' '));
});

test('a dropped server span parents what the request calls: their spans are dropped too, in the same trace', () => {
  const { tracer, starter } = setup(SAMPLERS.parentbased_always_off);
  const server = starter.start(tracer, 'GET', ROOT_CONTEXT);
  assert.equal(server.isRecording(), false);
  const child = tracer.startSpan('SELECT', {}, trace.setSpan(ROOT_CONTEXT, server));
  assert.equal(child.isRecording(), false);
  assert.equal(child.spanContext().traceId, server.spanContext().traceId);
  assert.notEqual(child.spanContext().spanId, server.spanContext().spanId);
});
