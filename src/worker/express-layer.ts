/**
 * instrumentation-express's per-layer patch (its private `_applyPatch`, 0.72.0), written again
 * with the same behaviour and without `arguments`.
 *
 * Why: on Node 24, V8 keeps far more of a request alive across young-generation GCs when a
 * function that is called per request both reads `arguments` and makes closures (a context of its
 * own); upstream's patched `handle` does both for every express layer a request enters. The same
 * few lines in an untraced express app (a route layer whose `handle` makes a closure for `next`
 * and passes `arguments` on) make V8 grow the young generation from 16 to 128 MB (RSS after the
 * bench's load: 118 → 206 MB); passing named parameters instead, it stays at 16 MB
 * (BENCHMARKS.md, "Memory after load on Node 24"). With this patch, 4.2 % of what forktrace's app
 * allocates survives a scavenge instead of 8.9 %.
 *
 * Same spans, names, attributes, ends, errors and layer path bookkeeping as upstream, from
 * upstream's own helpers (its utils file, loaded by path: upstream-utils.ts). Turned off by
 * FORKTRACE_EXPRESS_PATCH=upstream. Listed in upstream.ts.
 */
import type { EventEmitter } from 'node:events';
import { context, diag, trace, SpanStatusCode, type Attributes, type Context, type Span } from '@opentelemetry/api';
import { getRPCMetadata, RPCType } from '@opentelemetry/core';
import { safeExecuteInTheMiddle } from '@opentelemetry/instrumentation';
import type { ExpressInstrumentation, ExpressInstrumentationConfig } from '@opentelemetry/instrumentation-express';
import { addUnbound } from './context-binding';
import { LAYERS_STORE } from './express-route';
import { notRecording } from './not-recording';

/** The helpers of instrumentation-express's utils file this patch calls. */
export interface ExpressUtils {
  storeLayerPath(req: object, value?: string): { isLayerPathStored: boolean };
  getConstructedRoute(req: object): string;
  getActualMatchedRoute(req: object): string | undefined;
  getLayerMetadata(
    route: string,
    layer: object,
    layerPath?: string,
  ): { attributes: Record<string, string>; name: string };
  isLayerIgnored(name: string, type: string, config?: ExpressInstrumentationConfig): boolean;
  asErrorAndMessage(error: unknown): [string | Error, string];
}

/** The helpers, by name: all must be functions, or upstream's own patch stays. */
export const EXPRESS_UTILS_NAMES = [
  'storeLayerPath',
  'getConstructedRoute',
  'getActualMatchedRoute',
  'getLayerMetadata',
  'isLayerIgnored',
  'asErrorAndMessage',
] as const;

const PATCHED = Symbol('forktrace.express.layerPatched');
/** What `next()` passes that is routing, not an error. */
const NOT_ERRORS = new Set<unknown>([undefined, null, 'route', 'router']);

type Handle = (this: unknown, req: Request, res: Response, next: Next) => unknown;
type Next = (this: unknown, ...args: unknown[]) => unknown;
interface Request {
  res?: Response;
  route?: unknown;
  [LAYERS_STORE]?: unknown[];
}
type Response = Pick<EventEmitter, 'on' | 'once' | 'removeListener'>;
interface Layer {
  handle: Handle;
  [PATCHED]?: boolean;
}
/** What the patch reaches of the instrumentation: protected and public members. */
interface Instrumentation {
  tracer: { startSpan(name: string, options: { attributes: Attributes }): Span };
  getConfig(): ExpressInstrumentationConfig;
  _getSpanName(info: { request: unknown; layerType: string; route: string }, defaultName: string): string;
  _wrap(target: object, name: string, wrapper: (original: Handle) => Handle): void;
}

/**
 * Replaces `instrumentation`'s layer patch with this one. Unless requests that are not sampled are
 * `measured` (metrics), such a request goes through its layers untouched: no span, and no route
 * kept for a metric nobody records.
 */
export function useLeanLayerPatch(
  instrumentation: ExpressInstrumentation,
  utils: ExpressUtils,
  measured: boolean,
): void {
  const self = instrumentation as unknown as Instrumentation;
  (instrumentation as unknown as { _applyPatch: (layer: Layer, layerPath?: string) => void })._applyPatch = (
    layer,
    layerPath,
  ) => {
    if (layer[PATCHED] === true) return;
    layer[PATCHED] = true;
    self._wrap(layer, 'handle', (original) => {
      // An error handler (four parameters) is left as it is, as upstream does.
      if (original.length === 4) return original;
      const patched: Handle = function (req, res, next) {
        if (!measured && notRecording()) return original.call(this, req, res, next);
        return handleLayer(self, utils, layer, layerPath, original, this, req, res, next);
      };
      // Express reads and writes properties of the handle (a router's stack, its params).
      for (const key in original) {
        Object.defineProperty(patched, key, {
          get: () => (original as unknown as Record<string, unknown>)[key],
          set: (value: unknown) => {
            (original as unknown as Record<string, unknown>)[key] = value;
          },
        });
      }
      return patched;
    });
  };
}

/** One request through one layer: upstream's patched `handle`, step by step. */
function handleLayer(
  self: Instrumentation,
  utils: ExpressUtils,
  layer: Layer,
  layerPath: string | undefined,
  original: Handle,
  thisArg: unknown,
  req: Request,
  res: Response,
  next: Next,
): unknown {
  const { isLayerPathStored } = utils.storeLayerPath(req, layerPath);
  const constructedRoute = utils.getConstructedRoute(req);
  const actualMatchedRoute = utils.getActualMatchedRoute(req);
  const metadata = utils.getLayerMetadata(constructedRoute, layer, layerPath);
  const type = metadata.attributes['express.type'] as string;
  const rpcMetadata = getRPCMetadata(context.active());
  if (rpcMetadata?.type === RPCType.HTTP) rpcMetadata.route = actualMatchedRoute;
  const config = self.getConfig();
  if (utils.isLayerIgnored(metadata.name, type, config)) {
    if (type !== 'router' && isLayerPathStored) req[LAYERS_STORE]?.pop();
    return original.call(thisArg, req, res, next);
  }
  if (trace.getSpan(context.active()) === undefined) return original.call(thisArg, req, res, next);

  const spanName = self._getSpanName({ request: req, layerType: type, route: constructedRoute }, metadata.name);
  const span = self.tracer.startSpan(spanName, {
    attributes: { 'http.route': actualMatchedRoute, ...metadata.attributes },
  });
  const parentContext = context.active();
  let currentContext: Context = trace.setSpan(parentContext, span);
  const { requestHook } = config;
  if (requestHook) {
    safeExecuteInTheMiddle(
      () => requestHook(span, { request: req as never, layerType: type as never, route: constructedRoute }),
      (e) => {
        if (e) diag.error('express instrumentation: request hook failed', e);
      },
      true,
    );
  }
  let ended = false;
  if (type === 'router') {
    // A router's span ends at once: the layers inside it have their own.
    span.end();
    ended = true;
    currentContext = parentContext;
  }
  const onResponseEnded = (): void => {
    if (!ended) {
      ended = true;
      span.end();
    }
  };
  const wrappedNext: Next = function (...args) {
    const maybeError = args[0];
    const isError = !NOT_ERRORS.has(maybeError);
    if (!ended && isError) {
      const [error, message] = utils.asErrorAndMessage(maybeError);
      span.recordException(error);
      span.setStatus({ code: SpanStatusCode.ERROR, message });
    }
    if (!ended) {
      ended = true;
      req.res?.removeListener('close', onResponseEnded);
      span.end();
    }
    if (!(req.route && isError) && isLayerPathStored) req[LAYERS_STORE]?.pop();
    const parentSpan = trace.getSpan(parentContext);
    const active = context.active();
    const nextContext = parentSpan ? trace.setSpan(active, parentSpan) : active;
    return context.with(nextContext, next, this, ...args);
  };
  try {
    return context.with(currentContext, original, thisArg, req, res, wrappedNext);
  } catch (anyError) {
    const [error, message] = utils.asErrorAndMessage(anyError);
    span.recordException(error);
    span.setStatus({ code: SpanStatusCode.ERROR, message });
    throw anyError;
  } finally {
    // Not called back yet: the layer answers later, or answered itself; the response's end says.
    if (!ended) addUnbound(res, 'close', onResponseEnded, true);
  }
}
