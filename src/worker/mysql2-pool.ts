import { context } from '@opentelemetry/api';
import {
  InstrumentationBase,
  InstrumentationNodeModuleDefinition,
  InstrumentationNodeModuleFile,
} from '@opentelemetry/instrumentation';

/** Marks a callback already bound to its caller's context, so a re-queued one is not wrapped twice. */
const BOUND = Symbol('forktrace.mysql2.boundCallback');

/** The mysql2 versions instrumentation-mysql2 0.70 supports. */
const SUPPORTED = ['>=1.4.2 <4'];

type GetConnection = (this: unknown, cb?: unknown, ...rest: unknown[]) => unknown;
interface PoolPrototype {
  getConnection: GetConnection;
}

/**
 * Runs each mysql2 pool `getConnection` callback in the context of the code that asked for the
 * connection.
 *
 * A busy pool queues the callback and calls it when another request releases a connection
 * (mysql2 `BasePool.releaseConnection`: `process.nextTick(this.getConnection.bind(this, cb))`), so
 * it runs in the *releasing* request's async context. `pool.query()` and `pool.execute()` call
 * `getConnection` too, and instrumentation-mysql2 starts the query span inside that callback: the
 * query span becomes the child of whichever request released the connection. Measured with
 * 16 concurrent requests against a pool of 4: 68–73 of 400 query spans under the wrong request
 * (test/mysql2-pool.test.mjs). instrumentation-mysql2 (0.69, and 0.70 still) does not wrap `getConnection`;
 * the same fix landed in dd-trace-js (DataDog/dd-trace-js#8826).
 *
 * Hooks `mysql2/lib/pool.js`: its class has `getConnection` itself up to mysql2 3.11.4 and
 * inherits it from `lib/base/pool.js` from 3.11.5; the method is patched where it is defined.
 */
export class Mysql2PoolContextInstrumentation extends InstrumentationBase {
  constructor() {
    super('forktrace-mysql2-pool-context', '1.0.0', {});
  }

  protected init() {
    return [
      new InstrumentationNodeModuleDefinition('mysql2', SUPPORTED, undefined, undefined, [
        new InstrumentationNodeModuleFile(
          'mysql2/lib/pool.js',
          SUPPORTED,
          (Pool: { prototype?: object } | undefined) => {
            const owner = ownerOf(Pool?.prototype, 'getConnection');
            if (owner) this._wrap(owner, 'getConnection', bindCallbackToCaller);
            return Pool;
          },
          (Pool: { prototype?: object } | undefined) => {
            const owner = ownerOf(Pool?.prototype, 'getConnection');
            if (owner) this._unwrap(owner, 'getConnection');
          },
        ),
      ]),
    ];
  }
}

/** The object on `proto`'s chain that defines `name` as a function. */
function ownerOf(proto: object | undefined, name: string): PoolPrototype | undefined {
  for (let o = proto; o && o !== Object.prototype; o = Object.getPrototypeOf(o) as object | undefined) {
    if (Object.prototype.hasOwnProperty.call(o, name) && typeof (o as Record<string, unknown>)[name] === 'function')
      return o as PoolPrototype;
  }
  return undefined;
}

function bindCallbackToCaller(original: GetConnection): GetConnection {
  return function getConnection(this: unknown, cb?: unknown, ...rest: unknown[]) {
    if (typeof cb !== 'function' || (cb as { [BOUND]?: true })[BOUND]) return original.call(this, cb, ...rest);
    const bound = context.bind(context.active(), cb as (...args: unknown[]) => unknown) as ((
      ...args: unknown[]
    ) => unknown) & { [BOUND]?: true };
    bound[BOUND] = true;
    return original.call(this, bound, ...rest);
  };
}
