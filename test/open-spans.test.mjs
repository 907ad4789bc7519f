// OpenSpans (src/worker/exit.ts): the spans an exit that cannot wait ends and delivers. What a user
// relies on: at a crash, every span still open is there, once, and no span that already ended (it
// was delivered the usual way). The crash tests check that through real exits; this one drives the
// slots it keeps through starts and ends in any order, and its cap.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { TracerProvider } from '@opentelemetry/sdk-trace';
import { OpenSpans } from '../dist/worker/exit.js';

function tracked() {
  const open = new OpenSpans();
  const tracer = new TracerProvider({ spanProcessors: [open] }).getTracer('open-spans-test');
  return { open, start: (name) => tracer.startSpan(name) };
}

const names = (open) => open.spans.map((s) => s.name).sort();

test('the open spans are those started and not ended, whatever the order of ends', () => {
  const { open, start } = tracked();
  const live = new Map();
  let n = 0;
  // 20 rounds: start a few, end a random few; checked against the plain truth each round.
  for (let round = 0; round < 20; round++) {
    for (let i = 0; i < 1 + (round % 7) * 20; i++) {
      const name = `s${n++}`;
      live.set(name, start(name));
    }
    for (const [name, span] of [...live]) {
      if (Math.random() < 0.5) {
        span.end();
        live.delete(name);
      }
    }
    assert.deepEqual(names(open), [...live.keys()].sort(), `round ${round}`);
  }
  for (const span of live.values()) span.end();
  assert.deepEqual(open.spans, []);
  // Ending a span twice, or one that was never tracked, changes nothing.
  const again = start('again');
  again.end();
  again.end();
  assert.deepEqual(open.spans, []);
});

test('at most 10 000 spans are tracked; a slot freed by an end is used again', () => {
  const { open, start } = tracked();
  const spans = [];
  for (let i = 0; i < 10_050; i++) spans.push(start(`s${i}`));
  assert.equal(open.spans.length, 10_000);
  assert.ok(!names(open).includes('s10049'), 'a span past the cap is not tracked');
  spans[5].end();
  start('after an end');
  assert.equal(open.spans.length, 10_000);
  assert.ok(names(open).includes('after an end'));
  assert.ok(!names(open).includes('s5'));
});

test('shutdown forgets every span', async () => {
  const { open, start } = tracked();
  start('a');
  start('b');
  await open.shutdown();
  assert.deepEqual(open.spans, []);
  start('c');
  assert.deepEqual(names(open), ['c']);
});
