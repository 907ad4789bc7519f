// The SDK's attribute checks with forktrace's short way for strings, numbers and booleans
// (src/worker/plain-attributes.ts) against the SDK's own: the same calls on spans must give the same
// attributes, dropped counts and warnings. In process, on the CommonJS builds forktrace loads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const api = require('@opentelemetry/api');
const core = require('@opentelemetry/core');
const { TracerProvider } = require('@opentelemetry/sdk-trace');
const { checkPlainValuesFirst } = require('../dist/worker/plain-attributes.js');

const warnings = [];
const record = (...args) => warnings.push(args.map(String).join(' '));
api.diag.setLogger(
  { error: record, warn: record, info: () => {}, debug: () => {}, verbose: () => {} },
  api.DiagLogLevel.WARN,
);

const LONG = 'x'.repeat(40);
const nested = { a: 1, b: 'two', c: [1, 2, 3], d: { e: null } };
const cyclic = { name: 'cycle' };
cyclic.self = cyclic;

/** Every kind of value an app or an instrumentation may set, through each way of setting it. */
function story() {
  warnings.length = 0;
  const spans = [];
  const provider = new TracerProvider({
    spanLimits: { attributeCountLimit: 12, attributeValueLengthLimit: 16 },
    spanProcessors: [
      { onStart() {}, onEnd: (s) => spans.push(s), forceFlush: async () => {}, shutdown: async () => {} },
    ],
  });
  const tracer = provider.getTracer('plain-attributes-test');
  const values = {
    str: 'short',
    long: LONG,
    int: 42,
    float: 1.5,
    nan: NaN,
    yes: true,
    no: false,
    undef: undefined,
    nul: null,
    arr: ['a', LONG, 'c'],
    mixed: [1, 'a', true],
    obj: nested,
    bytes: new Uint8Array([1, 2, 3]),
    fn: () => {},
    sym: Symbol('s'),
    big: 10n,
    cyc: cyclic,
    '': 'empty key',
  };
  // Start options: only plain values, and every kind.
  spans.push(tracer.startSpan('plain', { attributes: { a: 'x', b: 1, c: true, d: undefined, e: LONG } }).end());
  spans.push(tracer.startSpan('every kind', { attributes: values }).end());
  const span = tracer.startSpan('set one by one');
  for (const [key, value] of Object.entries(values)) span.setAttribute(key, value);
  // Past the count limit (12), then an existing key overwritten.
  for (let i = 0; i < 6; i++) span.setAttribute(`extra.${i}`, i);
  span.setAttribute('str', 'overwritten');
  span.setAttributes({ many: 'a', more: 2 });
  span.addEvent('event', { s: LONG, n: 1, o: nested });
  span.addLink({ context: span.spanContext(), attributes: { s: LONG, o: nested } });
  span.end();
  span.setAttribute('after end', 1);
  return {
    spans: spans.filter(Boolean).map((s) => ({
      name: s.name,
      attributes: s.attributes,
      dropped: s.droppedAttributesCount,
      events: s.events.map((e) => ({ name: e.name, attributes: e.attributes, dropped: e.droppedAttributesCount })),
      links: s.links.map((l) => ({ attributes: l.attributes, dropped: l.droppedAttributesCount })),
    })),
    warnings: warnings.map((w) => w.replace(/traceId: \w+, spanId: \w+/g, 'ids').replace(/\n.*/s, '')),
  };
}

/** `story()`, and how many WeakSets it made (core's full check makes one per value it looks at). */
function storyCountingWeakSets() {
  const Original = globalThis.WeakSet;
  let made = 0;
  globalThis.WeakSet = class extends Original {
    constructor(...args) {
      super(...args);
      made++;
    }
  };
  try {
    return { ...story(), made };
  } finally {
    globalThis.WeakSet = Original;
  }
}

test("spans get the same attributes, dropped counts and warnings as with the SDK's own checks", () => {
  const { made: before, ...upstream } = storyCountingWeakSets();
  assert.ok(upstream.spans.length === 3 && upstream.warnings.length > 3, JSON.stringify(upstream.warnings));
  assert.equal(checkPlainValuesFirst(core), true);
  const { made: after, ...shortWay } = storyCountingWeakSets();
  assert.deepEqual(shortWay, upstream);
  // The short way was taken for plain values; the others still went through the full check.
  assert.ok(after > 0 && before - after >= 10, `WeakSets made: ${before} before, ${after} after`);
  assert.equal(checkPlainValuesFirst(core), true, 'a second call changes nothing');
});
