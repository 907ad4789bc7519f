// forktrace's chained contexts (src/worker/context-chain.ts) against the API's own BaseContext: the
// same sequence of setValue and deleteValue calls, on any context of either, must read the same.
// In process, on a copy of @opentelemetry/api loaded for this test alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

import { freshApi } from './helpers.mjs';

const require = createRequire(import.meta.url);
const { chainContextsFrom, MAX_LENGTH } = require('../dist/worker/context-chain.js');

const base = freshApi();
const chained = freshApi();
assert.notEqual(base.ROOT_CONTEXT, chained.ROOT_CONTEXT);
assert.equal(chainContextsFrom(chained.ROOT_CONTEXT), true);

const KEYS = ['span', 'rpc', 'baggage', 'suppress', 'app'].map((d) => base.createContextKey(`forktrace.test.${d}`));

/** A small deterministic generator, so that a failure can be replayed. */
function random(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

test('any sequence of sets and deletes reads as with BaseContext, on every context made', () => {
  for (const seed of [1, 2, 3, 42, 2026]) {
    const next = random(seed);
    const a = [base.ROOT_CONTEXT];
    const b = [chained.ROOT_CONTEXT];
    for (let step = 0; step < 3000; step++) {
      // Mostly extend the newest context (a request's chain), sometimes branch from an older one.
      const from = next() < 0.7 ? a.length - 1 : Math.floor(next() * a.length);
      const key = KEYS[Math.floor(next() * KEYS.length)];
      if (next() < 0.2) {
        a.push(a[from].deleteValue(key));
        b.push(b[from].deleteValue(key));
      } else {
        const value = next() < 0.1 ? undefined : { step };
        a.push(a[from].setValue(key, value));
        b.push(b[from].setValue(key, value));
      }
    }
    for (let i = 0; i < a.length; i++) {
      for (const key of KEYS) {
        assert.equal(b[i].getValue(key), a[i].getValue(key), `seed ${seed}, context ${i}, ${key.description}`);
      }
    }
  }
});

test('a context is immutable: a child sees its parent, the parent never sees the child', () => {
  const [k1, k2] = KEYS;
  const root = chained.ROOT_CONTEXT;
  const parent = root.setValue(k1, 'one');
  const child = parent.setValue(k2, 'two').setValue(k1, 'replaced');
  const deleted = child.deleteValue(k1);
  assert.deepEqual([parent.getValue(k1), parent.getValue(k2)], ['one', undefined]);
  assert.deepEqual([child.getValue(k1), child.getValue(k2)], ['replaced', 'two']);
  assert.deepEqual([deleted.getValue(k1), deleted.getValue(k2)], [undefined, 'two']);
  assert.equal(deleted.setValue(k1, 'back').getValue(k1), 'back');
  assert.equal(root.getValue(k1), undefined, 'the root stays empty');
  assert.equal(root.deleteValue(k1).getValue(k1), undefined);
});

test('a chain past its length limit is copied, keeping exactly what is visible', () => {
  const [k1, k2, k3] = KEYS;
  let ctx = chained.ROOT_CONTEXT.setValue(k1, 'kept').setValue(k3, 'gone').deleteValue(k3);
  let ref = base.ROOT_CONTEXT.setValue(k1, 'kept').setValue(k3, 'gone').deleteValue(k3);
  // Overwrite one key many times: without the copy, the chain would hold every value.
  for (let i = 0; i < MAX_LENGTH * 5; i++) {
    ctx = ctx.setValue(k2, i);
    ref = ref.setValue(k2, i);
  }
  assert.deepEqual(
    KEYS.map((k) => ctx.getValue(k)),
    KEYS.map((k) => ref.getValue(k)),
  );
  let links = 0;
  for (let c = ctx; c !== undefined; c = c.parent) links++;
  assert.ok(links <= MAX_LENGTH, `the chain is ${links} links long`);
});

test('more keys than a chain is long before it is copied: every value still reads as with BaseContext', () => {
  const keys = Array.from({ length: MAX_LENGTH * 2 }, (_, i) => base.createContextKey(`forktrace.test.many.${i}`));
  let ctx = chained.ROOT_CONTEXT;
  let ref = base.ROOT_CONTEXT;
  for (let round = 0; round < 3; round++) {
    for (const [i, key] of keys.entries()) {
      const deleting = round === 1 && i % 3 === 0;
      ctx = deleting ? ctx.deleteValue(key) : ctx.setValue(key, `${round}.${i}`);
      ref = deleting ? ref.deleteValue(key) : ref.setValue(key, `${round}.${i}`);
      assert.deepEqual(
        keys.map((k) => ctx.getValue(k)),
        keys.map((k) => ref.getValue(k)),
        `round ${round}, key ${i}`,
      );
    }
  }
});

test('contexts of another copy of the API (BaseContext) and chained ones work alongside', () => {
  const [k1, k2] = KEYS;
  // An app's own copy of the API makes a BaseContext; forktrace's code sets values on whatever it gets.
  const fromApp = base.ROOT_CONTEXT.setValue(k1, 'app');
  assert.equal(fromApp.setValue(k2, 'forktrace').getValue(k1), 'app');
  const fromForktrace = chained.ROOT_CONTEXT.setValue(k1, 'forktrace');
  assert.equal(
    base.trace.setSpan(fromForktrace, base.trace.wrapSpanContext(base.INVALID_SPAN_CONTEXT)).getValue(k1),
    'forktrace',
  );
});
