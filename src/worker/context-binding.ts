/**
 * Cheaper `with` and function binding for context-async-hooks' AsyncLocalStorageContextManager
 * (2.x/3.x), the context manager forktrace registers. Same behaviour, fewer allocations:
 * - upstream's `with(context, fn, thisArg, ...args)` makes `fn.bind(thisArg)` on every call that
 *   passes a `this` (each express layer of each request does);
 * - upstream's `bind(context, fn)` (every listener added to a request or response, every bound
 *   callback) makes a wrapper, then a closure on every call, and redefines the wrapper's `length`
 *   with Object.defineProperty, which V8 handles slowly: together about 3 % of a Node 24 worker's
 *   busy time at 1 % sampling (BENCHMARKS.md).
 *
 * - upstream's event-emitter binding (the request and the response of every traced request) puts
 *   eight closures of its own on the emitter, and a WeakMap per event name from each listener to
 *   its wrapper: about 2 KB a request on Node 24 (BENCHMARKS.md).
 *
 * Here the store is entered with `Reflect.apply` as the callback (no bind, no closure per call),
 * and a wrapper for a function of up to three parameters is made with that many, so that its
 * `length` is right without redefining it. A bound emitter gets the context under a symbol and
 * shared methods that read it: an HTTP request or response from its prototype, patched once,
 * any other emitter as its own. Each wrapper names its listener as `listener`, as Node's own
 * `once` wrappers do, so that Node's removeListener finds it by the app's function without a map.
 * Listed in upstream.ts.
 */
import type { AsyncLocalStorage } from 'node:async_hooks';
import type { EventEmitter } from 'node:events';
import type { Context } from '@opentelemetry/api';
import type { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';

type Fn = (this: unknown, ...args: unknown[]) => unknown;

/** The members of the manager this replaces or reads. */
interface Internals {
  _asyncLocalStorage: AsyncLocalStorage<Context>;
  with: (context: Context, fn: Fn, thisArg?: unknown, ...args: unknown[]) => unknown;
  _bindFunction: (context: Context, target: Fn) => Fn;
  _bindEventEmitter: (context: Context, emitter: Emitter) => Emitter;
  _kOtListeners: symbol;
}

/** The manager's private members this relies on. */
export const CONTEXT_MANAGER_MEMBERS = [
  '_asyncLocalStorage',
  '_bindFunction',
  '_bindEventEmitter',
  '_kOtListeners',
] as const;

type Store = AsyncLocalStorage<Context>;

// One maker per parameter count: the wrapper declares as many parameters as the target, which
// gives it the target's `length`; it passes on every argument it is called with, not only those.
const WRAPPERS: ReadonlyArray<(store: Store, context: Context, target: Fn) => Fn> = [
  (store, context, target) =>
    function (this: unknown) {
      // eslint-disable-next-line prefer-rest-params
      return store.run(context, Reflect.apply, target, this, arguments);
    },
  (store, context, target) =>
    function (this: unknown, _a: unknown) {
      // eslint-disable-next-line prefer-rest-params
      return store.run(context, Reflect.apply, target, this, arguments);
    },
  (store, context, target) =>
    function (this: unknown, _a: unknown, _b: unknown) {
      // eslint-disable-next-line prefer-rest-params
      return store.run(context, Reflect.apply, target, this, arguments);
    },
  (store, context, target) =>
    function (this: unknown, _a: unknown, _b: unknown, _c: unknown) {
      // eslint-disable-next-line prefer-rest-params
      return store.run(context, Reflect.apply, target, this, arguments);
    },
];

/** Replaces `manager`'s `with` and its function and emitter binding with the cheaper ones; false if its members moved. */
export function useLeanBinding(manager: AsyncLocalStorageContextManager): boolean {
  const self = manager as unknown as Internals;
  const store = self._asyncLocalStorage;
  if (typeof store?.run !== 'function' || typeof self._bindFunction !== 'function') return false;
  const upstreamBind = self._bindFunction.bind(manager);
  self.with = (context, fn, thisArg, ...args) =>
    thisArg == null ? store.run(context, fn, ...args) : store.run(context, Reflect.apply, fn, thisArg, args);
  const bindFunction = (context: Context, target: Fn): Fn => {
    const make = WRAPPERS[target.length];
    return make === undefined ? upstreamBind(context, target) : make(store, context, target);
  };
  self._bindFunction = bindFunction;
  // _kOtListeners marks an emitter upstream's binding patched before this call: it keeps upstream's methods.
  if (typeof self._bindEventEmitter === 'function' && typeof self._kOtListeners === 'symbol') {
    self._bindEventEmitter = leanEmitterBinding(bindFunction, self._kOtListeners);
  }
  return true;
}

type Listener = (...args: unknown[]) => unknown;
type Method = (this: Emitter, event: string | symbol, listener: Listener) => unknown;
type BindFunction = (context: Context, target: Fn) => Fn;
interface Emitter {
  [BOUND]?: Context;
  [BINDER]?: BindFunction;
  [PATCHED_PROTOTYPE]?: true;
  rawListeners?(event: string | symbol): Array<Listener & { listener?: Listener & { listener?: Listener } }>;
  listenerCount?(event: string | symbol): number;
  [method: string]: unknown;
}

/** Where a bound emitter keeps its context, and the binding (of its manager) its listeners get. */
const BOUND = Symbol('forktrace.boundContext');
const BINDER = Symbol('forktrace.binder');
/** Set on a prototype whose add and remove methods are already the patched ones. */
const PATCHED_PROTOTYPE = Symbol('forktrace.patchedPrototype');
const ADD_METHODS = ['addListener', 'on', 'once', 'prependListener', 'prependOnceListener'] as const;
const REMOVE_METHODS = ['removeListener', 'off'] as const;

// Set while an original add runs: Node's `once` adds its own wrapper through `this.on`.
let adding = false;

/**
 * Adds forktrace's own `listener` to `emitter` as it is, not bound to the context the emitter is
 * bound to: a listener that only ends a span needs no context, and a bound one switches to it at
 * each call. On Node 24 a switch makes two AsyncLocalStorage frames (a copy of a Map each), and a
 * response's 'close' comes in the express handler's context, not the request's: two of the five
 * switches of a sampled /hello request (BENCHMARKS.md, change 15). The other patches of the
 * emitter's methods still run. Under upstream's binding (when this module's could not be used),
 * the listener is bound as before.
 */
export function addUnbound(
  emitter: Pick<EventEmitter, 'on' | 'once'>,
  event: string | symbol,
  listener: Parameters<EventEmitter['on']>[1],
  once = false,
): void {
  const was = adding;
  adding = true;
  try {
    if (once) emitter.once(event, listener);
    else emitter.on(event, listener);
  } finally {
    adding = was;
  }
}

/** An add method that binds a listener added to a bound emitter, then adds it with `original`. */
const adder = (original: Method): Method =>
  function (this: Emitter, event, listener) {
    const context = this[BOUND];
    if (adding || context === undefined || typeof listener !== 'function') {
      return original.call(this, event, listener);
    }
    const wrapper = this[BINDER]!(context, listener as Fn) as Listener & { listener?: Listener };
    wrapper.listener = listener;
    adding = true;
    try {
      return original.call(this, event, wrapper);
    } finally {
      adding = false;
    }
  };

// Node finds a wrapper by its `listener`, except under its own `once` wrapper, whose `listener`
// is this binding's wrapper: when Node removed nothing, that one is looked for and removed by
// its wrapper. (Node's own `once` wrapper removes itself through here each time it fires.)
const remover = (original: Method): Method =>
  function (this: Emitter, event, listener) {
    if (this[BOUND] === undefined) return original.call(this, event, listener);
    const count = typeof this.listenerCount === 'function' ? this.listenerCount(event) : undefined;
    const out = original.call(this, event, listener);
    if (count === undefined || typeof listener !== 'function' || this.listenerCount!(event) !== count) return out;
    const raw = typeof this.rawListeners === 'function' ? this.rawListeners(event) : [];
    for (let i = raw.length - 1; i >= 0; i--) {
      const entry = raw[i]!;
      if (entry.listener?.listener === listener) return original.call(this, event, entry.listener);
    }
    return out;
  };

const PATCHES: ReadonlyArray<readonly [readonly string[], (original: Method) => Method]> = [
  [ADD_METHODS, adder],
  [REMOVE_METHODS, remover],
];

/**
 * Gives the prototypes of Node's HTTP messages (the server's request and response, the client's
 * request and response) the patched methods, once per process. Binding one of those messages is
 * then two property stores: patching seven methods onto each request and response was about a
 * third of what an unsampled request cost over untraced (BENCHMARKS.md, change 12). A message that
 * is not bound pays one property read per listener added or removed. A method the prototype
 * inherits is looked up at each call, so a later patch of Readable or EventEmitter still applies.
 */
function patchHttpPrototypes(): void {
  const http = require('node:http') as typeof import('node:http');
  for (const proto of [http.IncomingMessage.prototype, http.OutgoingMessage.prototype] as unknown as Emitter[]) {
    for (const [names, patch] of PATCHES) {
      for (const name of names) {
        const own = Object.prototype.hasOwnProperty.call(proto, name) ? proto[name] : undefined;
        const original: Method =
          typeof own === 'function'
            ? (own as Method)
            : function (this: Emitter, event, listener) {
                return (Object.getPrototypeOf(proto) as Record<string, Method>)[name]!.call(this, event, listener);
              };
        // As enumerable as the method it stands in for, so that `for...in` over a message lists what it did.
        Object.defineProperty(proto, name, {
          value: patch(original),
          writable: true,
          configurable: true,
          enumerable: isEnumerableIn(proto, name),
        });
      }
    }
    Object.defineProperty(proto, PATCHED_PROTOTYPE, { value: true });
  }
}
let httpPrototypesPatched = false;

/** Whether `name` is enumerable where `object`'s prototype chain first has it. */
function isEnumerableIn(object: object, name: string): boolean {
  for (let o: object | null = object; o !== null; o = Object.getPrototypeOf(o) as object | null) {
    const found = Object.getOwnPropertyDescriptor(o, name);
    if (found !== undefined) return found.enumerable === true;
  }
  return false;
}

/**
 * upstream's `_bindEventEmitter`, with a context property instead of eight closures per emitter,
 * and no listener map: a listener added to a bound emitter is bound to the emitter's context (the
 * first it was bound to), and its wrapper carries it as `listener`. An HTTP message gets the
 * patched methods from its prototype; any other emitter gets them as its own, one shared function
 * per original method.
 */
function leanEmitterBinding(
  bindFunction: BindFunction,
  upstreamMark: symbol,
): (context: Context, emitter: Emitter) => Emitter {
  // One patched method per original method (a handful: EventEmitter's, Readable's, ...), shared by
  // every emitter bound.
  const patchedMethods = new Map<Method, Method>();
  const patchedFor = (original: Method, patch: (original: Method) => Method): Method => {
    let patched = patchedMethods.get(original);
    if (patched === undefined) patchedMethods.set(original, (patched = patch(original)));
    return patched;
  };

  return (context, emitter) => {
    if (emitter[BOUND] !== undefined || (emitter as Record<symbol, unknown>)[upstreamMark] !== undefined)
      return emitter;
    if (!httpPrototypesPatched) {
      httpPrototypesPatched = true;
      patchHttpPrototypes();
    }
    emitter[BOUND] = context;
    emitter[BINDER] = bindFunction;
    if (emitter[PATCHED_PROTOTYPE] === true) return emitter;
    for (const [names, patch] of PATCHES) {
      for (const name of names) {
        const original = emitter[name];
        if (typeof original === 'function') emitter[name] = patchedFor(original as Method, patch);
      }
    }
    return emitter;
  };
}
