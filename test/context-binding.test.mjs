// forktrace's `with` and function binding for the context manager (src/worker/context-binding.ts)
// against upstream's AsyncLocalStorageContextManager on the same calls: what a caller of
// context.with / context.bind sees (the active context inside, `this`, every argument, the return
// value, a thrown error, the bound function's length) must not change.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { ROOT_CONTEXT, createContextKey } = require('@opentelemetry/api');
const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks');
const { useLeanBinding } = require('../dist/worker/context-binding.js');

const KEY = createContextKey('forktrace.test');
const inside = ROOT_CONTEXT.setValue(KEY, 'inside');

function managers() {
  const upstream = new AsyncLocalStorageContextManager().enable();
  const lean = new AsyncLocalStorageContextManager().enable();
  assert.equal(useLeanBinding(lean), true);
  return { upstream, lean };
}

/** What a function sees when called through `manager`: its context value, `this`, its arguments. */
function probe(manager) {
  return function (...args) {
    return { value: manager.active().getValue(KEY), self: this, args };
  };
}

test('bind: the same context, this, arguments, return value, error and length as upstream', () => {
  const { upstream, lean } = managers();
  const self = { name: 'receiver' };
  for (const [name, manager] of Object.entries({ upstream, lean })) {
    const seen = probe(manager);
    const bound = manager.bind(inside, seen);
    assert.deepEqual(bound.call(self, 1, 2, 3, 4, 5), { value: 'inside', self, args: [1, 2, 3, 4, 5] }, name);
    assert.deepEqual(bound(), { value: 'inside', self: undefined, args: [] }, name);
    assert.equal(manager.active().getValue(KEY), undefined, `${name}: the context ends with the call`);
    const thrown = manager.bind(inside, () => {
      throw new Error('from the callback');
    });
    assert.throws(thrown, /from the callback/, name);
  }
  // The wrapper's length is the target's, as express and callback-style libraries read it.
  const targets = [() => {}, (a) => a, (a, b) => b, (a, b, c) => c, (a, b, c, d) => d, (a, b, c, d, e) => e];
  for (const target of targets) {
    assert.equal(lean.bind(inside, target).length, target.length);
    assert.equal(lean.bind(inside, target).length, upstream.bind(inside, target).length);
  }
});

test('with: the same context, this and arguments as upstream, with and without a this', () => {
  const { upstream, lean } = managers();
  const self = { name: 'receiver' };
  const calls = (manager) => {
    const seen = probe(manager);
    return [
      manager.with(inside, seen, self, 'a', 'b'),
      manager.with(inside, seen, undefined, 'a'),
      manager.with(inside, () => manager.with(ROOT_CONTEXT, () => manager.active().getValue(KEY))),
    ];
  };
  const [withThis, withoutThis, nested] = calls(lean);
  assert.deepEqual(withThis, { value: 'inside', self, args: ['a', 'b'] });
  assert.deepEqual([withoutThis.value, withoutThis.args], ['inside', ['a']]);
  assert.equal(nested, undefined, 'an inner with() replaces the context');
  assert.deepEqual(calls(lean), calls(upstream));
});

test("a bound emitter: listeners run in the bound context and can be removed by the app's own function", () => {
  const { lean } = managers();
  const ee = lean.bind(inside, new EventEmitter());
  const seen = [];
  const listener = (x) => seen.push([x, lean.active().getValue(KEY)]);
  ee.on('data', listener);
  ee.once('end', listener);
  lean.with(ROOT_CONTEXT, () => ee.emit('data', 1));
  ee.removeListener('data', listener);
  ee.emit('data', 2);
  ee.emit('end', 3);
  ee.emit('end', 4);
  assert.deepEqual(seen, [
    [1, 'inside'],
    [3, 'inside'],
  ]);
  assert.equal(ee.listenerCount('data') + ee.listenerCount('end'), 0);
});
