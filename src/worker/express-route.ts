import { ServerResponse } from 'node:http';
import type { Span } from '@opentelemetry/api';
import { context } from '@opentelemetry/api';
import { getRPCMetadata, RPCType } from '@opentelemetry/core';
import { InstrumentationBase, InstrumentationNodeModuleDefinition } from '@opentelemetry/instrumentation';

/**
 * Where instrumentation-express keeps, on the request, the path of each router and route the
 * request is inside, outermost first (its internal-types.ts `_LAYERS_STORE_PROPERTY`; listed in
 * upstream.ts).
 */
export const LAYERS_STORE = '__ot_middlewares';

const STATE = Symbol('forktrace.express.route');

/**
 * Set once express is loaded (and patched): before that no express layer can write a route, so a
 * request needs no state of its own, and a route the app writes itself stays as written.
 */
let expressLoaded = false;

/** What express leaves on a request (express 4 `lib/router`, express 5 `router`). */
interface ExpressRequest {
  /** The route express matched last; express sets it and never clears it. */
  route?: { path?: unknown };
  [LAYERS_STORE]?: unknown;
}

/** A sub-app's mount path, and how many store entries stood before it when the request entered. */
interface Mount {
  readonly depth: number;
  readonly path: string;
}
const NO_MOUNTS: readonly Mount[] = [];

/** What forktrace follows of one request, from its first express layer to its response. */
class RouteState {
  /** The route instrumentation-express wrote last. */
  written: string | undefined = undefined;
  expressWrote = false;
  /** `req.route` when last seen, and its template. */
  lastRoute: unknown = undefined;
  template: string | undefined = undefined;
  /** The store's length and last entry when instrumentation-express last wrote a route. */
  seenLength = 0;
  seenTop: unknown = undefined;
  /** The sub-apps the request is inside whose mount path the store dropped; most requests enter none. */
  mounts: Mount[] | undefined = undefined;
  /** The route read once the response ended, when req and res are let go. */
  final: string | undefined = undefined;

  constructor(
    public req: ExpressRequest | undefined,
    public res: ServerResponse | undefined,
  ) {}
}

interface TrackedMetadata {
  [STATE]: RouteState;
}

function stateOfThisRequest(): RouteState | undefined {
  return (getRPCMetadata(context.active()) as Partial<TrackedMetadata> | undefined)?.[STATE];
}

// One getter and setter for all requests, each request's state on its metadata object: accessors
// made per request would give every metadata object a map of its own in V8 (about 1 µs a request,
// and megamorphic reads wherever upstream touches the metadata).
const ROUTE_ACCESSOR: PropertyDescriptor = {
  configurable: true,
  enumerable: true,
  get(this: TrackedMetadata): string | undefined {
    const state = this[STATE];
    const res = state.res;
    if (res === undefined) return state.final;
    let route = state.template;
    if (route === undefined && !(state.expressWrote && state.lastRoute === undefined && res.statusCode === 404)) {
      route = state.written;
    }
    // The request's context, and this metadata with it, can outlive the request: req and res
    // kept reachable from it then survive into the old generation, which cost about a quarter
    // more CPU per request on /hello, nearly all of it GC (measured on Node 24).
    if (res.writableEnded || res.destroyed) {
      state.final = route;
      state.req = state.res = undefined;
    }
    return route;
  },
  set(this: TrackedMetadata, value: string | undefined) {
    const state = this[STATE];
    state.written = value;
    state.expressWrote = true;
    const req = state.req;
    const store = req?.[LAYERS_STORE];
    if (req === undefined || !Array.isArray(store)) return;
    state.seenLength = store.length;
    state.seenTop = store[store.length - 1];
    const route = req.route;
    if (route !== undefined && route !== state.lastRoute) {
      state.lastRoute = route;
      state.template = routeTemplate(store, route.path, state.mounts ?? NO_MOUNTS);
    }
  },
};

/**
 * Makes the server span's `http.route` the full template of the express route that handled the
 * request; instrumentation-http's `responseHook`.
 *
 * instrumentation-express (0.72) writes `http.route` into the request's RPC metadata from every
 * express layer it enters, and instrumentation-http reads it when the response ends. Two of its
 * rules lose the route:
 * - `GET /?q=1` on `app.get('/')` gets none: the root route is recognised only when
 *   `req.originalUrl === '/'`, and originalUrl keeps the query string (utils.ts
 *   `getActualMatchedRoute`).
 * - a handler that calls `next()` hands the request to later middleware, and each of those writes
 *   its own, shorter route over the handler's (instrumentation.ts `_applyPatch`;
 *   open-telemetry/opentelemetry-js-contrib#2884): json-server 0.17 reports `GET /posts/:id` as
 *   `/posts`.
 *
 * So the metadata's `route` becomes an accessor. Each write is kept as instrumentation-express
 * made it; the one made as express enters a newly matched route (`req.route` changed) is also
 * turned into that route's template, which later writes do not replace. A request no route
 * matched keeps what instrumentation-express wrote, except that a 404 then has no route. Sub-apps:
 * {@link ExpressMountInstrumentation}.
 */
export function trackExpressRoute(_span: Span, response: unknown): void {
  // The hook also runs for client responses, possibly inside a server request's context.
  if (!expressLoaded || !(response instanceof ServerResponse)) return;
  const metadata = getRPCMetadata(context.active());
  if (metadata?.type !== RPCType.HTTP) return;
  const state = new RouteState(response.req as ExpressRequest, response);
  state.written = metadata.route;
  (metadata as unknown as TrackedMetadata)[STATE] = state;
  Object.defineProperty(metadata, 'route', ROUTE_ACCESSOR);
}

/**
 * A route's full template, its mount paths and own path written as instrumentation-express
 * writes them (a RegExp as its literal, an array joined by `,`). `store` ends with the route's own
 * path; `mounts` puts back the sub-app paths it dropped. `undefined` when the store does not end
 * with `path`, i.e. is not the record expected (a route instrumentation-express did not patch, or
 * a new upstream format), so that what instrumentation-express wrote stands.
 */
function routeTemplate(store: readonly unknown[], path: unknown, mounts: readonly Mount[]): string | undefined {
  const own = pathString(path);
  if (own === undefined || store.length === 0 || store[store.length - 1] !== own) return undefined;
  let out = '';
  let m = 0;
  for (let i = 0; i < store.length - 1; i++) {
    for (; m < mounts.length && mounts[m]!.depth <= i; m++) out = joinPath(out, mounts[m]!.path);
    const entry: unknown = store[i];
    if (typeof entry === 'string') out = joinPath(out, entry);
  }
  for (; m < mounts.length; m++) out = joinPath(out, mounts[m]!.path);
  out = joinPath(out, own);
  return out === '' ? '/' : out;
}

/** A route or mount path as instrumentation-express writes it (utils.ts `getLayerPath`). */
function pathString(path: unknown): string | undefined {
  if (typeof path === 'string') return path;
  if (path instanceof RegExp) return path.toString();
  if (Array.isArray(path)) {
    return path
      .map((p: unknown) =>
        typeof p === 'string' ? p : p instanceof RegExp || typeof p === 'number' ? p.toString() : '',
      )
      .join(',');
  }
  return undefined;
}

// A '/' mount adds nothing, and neither does a route '/' under a mount: router.get('/') mounted
// at /api answers /api.
function joinPath(head: string, tail: string): string {
  if (tail === '' || tail === '/') return head;
  return head.endsWith('/') && tail.startsWith('/') ? head + tail.slice(1) : head + tail;
}

type Handle = (this: unknown, req: ExpressRequest, res: unknown, done?: unknown) => unknown;
interface ExpressModule {
  application?: { handle?: Handle };
}

/**
 * Keeps the mount path of the sub-apps a request enters (`app.use('/admin', admin)`) for
 * {@link routeTemplate}. instrumentation-express pushes the path of the layer that runs a sub-app
 * onto its store, but pops it at once when middleware layers get no span (forktrace's default,
 * `FORKTRACE_EXPRESS_LAYERS`): `/admin/users/:id` would lose `/admin`. A sub-app is entered right
 * after that layer wrote its route, so a store one shorter than then means its path was dropped.
 */
export class ExpressMountInstrumentation extends InstrumentationBase {
  constructor() {
    super('forktrace-express-mounts', '1.0.0', {});
  }

  protected init() {
    return [
      new InstrumentationNodeModuleDefinition(
        'express',
        ['>=4.0.0 <6'],
        (express: ExpressModule | undefined) => {
          expressLoaded = true;
          const app = express?.application;
          if (typeof app?.handle === 'function') this._wrap(app as { handle: Handle }, 'handle', keepMountPath);
          return express;
        },
        (express: ExpressModule | undefined) => {
          if (express?.application) this._unwrap(express.application as { handle: Handle }, 'handle');
        },
      ),
    ];
  }
}

function keepMountPath(original: Handle): Handle {
  return function handle(req, res, done) {
    // The top app is called without `done`, a sub-app by the layer that mounts it.
    if (typeof done !== 'function') return original.call(this, req, res, done);
    const state = stateOfThisRequest();
    const store = req[LAYERS_STORE];
    if (
      state === undefined ||
      !Array.isArray(store) ||
      state.seenLength !== store.length + 1 ||
      typeof state.seenTop !== 'string'
    ) {
      return original.call(this, req, res, done);
    }
    const mount: Mount = { depth: store.length, path: state.seenTop };
    const mounts = (state.mounts ??= []);
    mounts.push(mount);
    return original.call(this, req, res, function (this: unknown, ...args: unknown[]) {
      const at = mounts.lastIndexOf(mount);
      if (at >= 0) mounts.splice(at, 1);
      return (done as (...a: unknown[]) => unknown).apply(this, args);
    });
  };
}
