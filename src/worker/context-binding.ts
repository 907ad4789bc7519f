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
 * Here the store is entered with `Reflect.apply` as the callback (no bind, no closure per call),
 * and a wrapper for a function of up to three parameters is made with that many, so that its
 * `length` is right without redefining it. The event-emitter binding stays upstream's.
 * Listed in upstream.ts.
 */
import type { AsyncLocalStorage } from 'node:async_hooks';
import type { Context } from '@opentelemetry/api';
import type { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';

type Fn = (this: unknown, ...args: unknown[]) => unknown;

/** The members of the manager this replaces or reads. */
interface Internals {
  _asyncLocalStorage: AsyncLocalStorage<Context>;
  with: (context: Context, fn: Fn, thisArg?: unknown, ...args: unknown[]) => unknown;
  _bindFunction: (context: Context, target: Fn) => Fn;
}

/** The manager's private members this relies on. */
export const CONTEXT_MANAGER_MEMBERS = ['_asyncLocalStorage', '_bindFunction'] as const;

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

/** Replaces `manager`'s `with` and function binding with the cheaper ones; false if its members moved. */
export function useLeanBinding(manager: AsyncLocalStorageContextManager): boolean {
  const self = manager as unknown as Internals;
  const store = self._asyncLocalStorage;
  if (typeof store?.run !== 'function' || typeof self._bindFunction !== 'function') return false;
  const upstreamBind = self._bindFunction.bind(manager);
  self.with = (context, fn, thisArg, ...args) =>
    thisArg == null ? store.run(context, fn, ...args) : store.run(context, Reflect.apply, fn, thisArg, args);
  self._bindFunction = (context, target) => {
    const make = WRAPPERS[target.length];
    return make === undefined ? upstreamBind(context, target) : make(store, context, target);
  };
  return true;
}
