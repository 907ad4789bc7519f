// forktrace's `with` and function binding for the context manager (src/worker/context-binding.ts)
// against upstream's AsyncLocalStorageContextManager on the same calls: what a caller of
// context.with / context.bind sees (the active context inside, `this`, every argument, the return
// value, a thrown error, the bound function's length) must not change.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import * as http from 'node:http';
import { createRequire } from 'node:module';
import * as net from 'node:net';
import { Readable } from 'node:stream';

const require = createRequire(import.meta.url);
const { ROOT_CONTEXT, createContextKey } = require('@opentelemetry/api');
const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks');
const { addUnbound, useLeanBinding } = require('../dist/worker/context-binding.js');

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

/**
 * What an app sees of an emitter bound to `inside`, driven the same way through `manager`: each
 * call of a listener (its event, argument and the context it ran in), the listeners left, and the
 * 'removeListener' events.
 */
function emitterStory(manager, make = () => new EventEmitter()) {
  const ee = manager.bind(inside, make());
  const calls = [];
  const seen = (name) => (x) => calls.push([name, x, manager.active().getValue(KEY) ?? 'root']);
  const onA = seen('onA');
  const onceB = seen('onceB');
  const first = seen('first');
  const firstOnce = seen('firstOnce');
  const twice = seen('twice');
  const removed = [];
  ee.on('removeListener', (event) => removed.push(event));
  ee.on('a', onA);
  ee.addListener('a', twice);
  ee.on('a', twice);
  ee.once('b', onceB);
  ee.prependListener('a', first);
  ee.prependOnceListener('a', firstOnce);
  const emit = (event, x) => manager.with(ROOT_CONTEXT, () => ee.emit(event, x));
  emit('a', 1);
  emit('a', 2);
  emit('b', 3);
  emit('b', 4);
  // Removal by the app's own function: a plain listener, one added twice, and a `once` not yet run.
  ee.once('c', onceB);
  ee.removeListener('c', onceB);
  ee.off('a', twice);
  emit('a', 5);
  ee.removeListener('a', onA);
  emit('a', 6);
  const counts = ['a', 'b', 'c'].map((e) => ee.listenerCount(e));
  ee.removeAllListeners('a');
  emit('a', 7);
  // Bound again to another context: the first binding stays.
  manager.bind(ROOT_CONTEXT.setValue(KEY, 'other'), ee);
  ee.on('d', seen('later'));
  emit('d', 8);
  ee.removeAllListeners();
  return { calls, counts, removed, left: ee.eventNames() };
}

test('a bound emitter: on, once, prepend, off and removeAll behave as upstream, in the bound context', () => {
  const { upstream, lean } = managers();
  const story = emitterStory(lean);
  assert.deepEqual(story, emitterStory(upstream));
  assert.ok(
    story.calls.length > 8 && story.calls.every(([, , value]) => value === 'inside'),
    JSON.stringify(story.calls),
  );
});

/** Emitters of the kinds a traced request binds: Node's HTTP messages get the patched methods from their prototype. */
const EMITTERS = {
  IncomingMessage: () => new http.IncomingMessage(new net.Socket()),
  ServerResponse: () => new http.ServerResponse(new http.IncomingMessage(new net.Socket())),
  OutgoingMessage: () => new http.OutgoingMessage(),
};

for (const [kind, make] of Object.entries(EMITTERS)) {
  test(`a bound ${kind}: on, once, prepend, off and removeAll behave as upstream, in the bound context`, () => {
    const { upstream, lean } = managers();
    const story = emitterStory(lean, make);
    assert.deepEqual(story, emitterStory(upstream, make));
    assert.ok(
      story.calls.length > 8 && story.calls.every(([, , value]) => value === 'inside'),
      JSON.stringify(story.calls),
    );
  });
}

test('an HTTP message gets no methods of its own when bound; one not bound runs its listeners where they are emitted', () => {
  const { lean } = managers();
  const bound = lean.bind(inside, EMITTERS.IncomingMessage());
  const names = ['on', 'addListener', 'once', 'prependListener', 'prependOnceListener', 'removeListener', 'off'];
  assert.deepEqual(
    names.filter((name) => Object.hasOwn(bound, name)),
    [],
  );
  // `for...in` over a message lists the listener methods as it did untraced (EventEmitter's are enumerable).
  const listed = new Set();
  for (const key in bound) listed.add(key);
  const untraced = (name) => {
    for (let o = Object.getPrototypeOf(http.IncomingMessage.prototype); o; o = Object.getPrototypeOf(o)) {
      const d = Object.getOwnPropertyDescriptor(o, name);
      if (d) return d.enumerable;
    }
    return false;
  };
  assert.deepEqual(
    names.map((name) => [name, listed.has(name)]),
    names.map((name) => [name, untraced(name)]),
  );
  assert.ok(listed.has('on'), "EventEmitter's `on` is enumerable: a message lists it");
  const free = EMITTERS.ServerResponse();
  const where = [];
  const listener = () => where.push(lean.active().getValue(KEY) ?? 'root');
  lean.with(inside, () => free.on('x', listener));
  lean.with(ROOT_CONTEXT.setValue(KEY, 'emitter'), () => free.emit('x'));
  assert.deepEqual(where, ['emitter']);
  assert.deepEqual(free.rawListeners('x'), [listener]);
  free.off('x', listener);
  assert.equal(free.listenerCount('x'), 0);
});

// forktrace's own listeners on a bound response (ending the server span and the express handler's
// span) are added as they are: they run where the event is emitted, with no switch of context;
// what the app adds after them is still bound.
for (const kind of ['ServerResponse', 'EventEmitter']) {
  test(`addUnbound on a bound ${kind}: the listener as it is, run where emitted, removable; the app's still bound`, () => {
    const { lean } = managers();
    const emitter = lean.bind(inside, kind === 'EventEmitter' ? new EventEmitter() : EMITTERS.ServerResponse());
    const where = [];
    const own = () => where.push(['own', lean.active().getValue(KEY) ?? 'root']);
    const ownOnce = () => where.push(['own once', lean.active().getValue(KEY) ?? 'root']);
    const app = () => where.push(['app', lean.active().getValue(KEY) ?? 'root']);
    addUnbound(emitter, 'close', own);
    addUnbound(emitter, 'close', ownOnce, true);
    emitter.on('close', app);
    assert.equal(emitter.rawListeners('close')[0], own, 'the own listener was wrapped');
    assert.equal(emitter.listeners('close')[2], app);
    assert.notEqual(emitter.rawListeners('close')[2], app, "the app's listener is no longer bound");
    const elsewhere = ROOT_CONTEXT.setValue(KEY, 'emitter');
    lean.with(elsewhere, () => emitter.emit('close'));
    lean.with(elsewhere, () => emitter.emit('close'));
    assert.deepEqual(where, [
      ['own', 'emitter'],
      ['own once', 'emitter'],
      ['app', 'inside'],
      ['own', 'emitter'],
      ['app', 'inside'],
    ]);
    emitter.removeListener('close', own);
    emitter.off('close', app);
    assert.equal(emitter.listenerCount('close'), 0);
    // A later add by the app, once, is bound as before.
    emitter.once('close', app);
    where.length = 0;
    lean.with(elsewhere, () => emitter.emit('close'));
    assert.deepEqual(where, [['app', 'inside']]);
  });
}

test("a bound HTTP message calls what Readable's `on` is at the time, as an unbound one does", () => {
  const { lean } = managers();
  const message = lean.bind(inside, EMITTERS.IncomingMessage());
  const free = EMITTERS.IncomingMessage();
  const original = Readable.prototype.on;
  const events = [];
  Readable.prototype.on = function (event, listener) {
    events.push(event);
    return original.call(this, event, listener);
  };
  try {
    message.on('late', () => {});
    free.on('free', () => {});
  } finally {
    Readable.prototype.on = original;
  }
  assert.deepEqual(events, ['late', 'free']);
});

test("a bound emitter lists the app's own listeners, and removes a wrapped `once` by the app's function", () => {
  const { lean } = managers();
  const ee = lean.bind(inside, new EventEmitter());
  const listener = () => {};
  ee.on('x', listener);
  ee.once('y', listener);
  // As without tracing: listeners() gives back the function the app added.
  assert.deepEqual(ee.listeners('x'), [listener]);
  assert.equal(ee.listenerCount('x', listener), 1);
  ee.removeListener('y', listener);
  ee.removeListener('x', listener);
  assert.deepEqual(ee.eventNames(), []);
  // Not a function: Node's own error, as without tracing.
  assert.throws(() => ee.on('z', 'not a function'), { code: 'ERR_INVALID_ARG_TYPE' });
});

test('a real request and response bound by the lean binding: body, end and close run in the bound context', async () => {
  const http = require('node:http');
  const { lean } = managers();
  const seen = [];
  const server = http.createServer((req, res) => {
    lean.bind(inside, req);
    lean.bind(inside, res);
    lean.with(ROOT_CONTEXT, () => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        seen.push(['end', body, lean.active().getValue(KEY)]);
        res.end('ok');
      });
      res.once('finish', () => seen.push(['finish', lean.active().getValue(KEY)]));
      res.on('close', () => seen.push(['close', lean.active().getValue(KEY)]));
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  try {
    const { port } = server.address();
    const answer = await new Promise((resolve, reject) => {
      const req = http.request({ port, host: '127.0.0.1', method: 'POST' }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
      req.end('hello body');
    });
    assert.equal(answer, 'ok');
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(seen, [
      ['end', 'hello body', 'inside'],
      ['finish', 'inside'],
      ['close', 'inside'],
    ]);
  } finally {
    server.close();
  }
});
