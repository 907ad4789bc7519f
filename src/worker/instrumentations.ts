import type { IncomingMessage } from 'node:http';
import { context as otelContext, createNoopMeter, type Context, type Meter } from '@opentelemetry/api';
import { isTracingSuppressed } from '@opentelemetry/core';
import type { Instrumentation } from '@opentelemetry/instrumentation';
import type { ReadableSpan, Span, SpanProcessor } from '@opentelemetry/sdk-trace';
import type { ResolvedConfig } from '../config/types';
import { replaceSingleton, shareVersionLookups, type SingletonClass } from './module-hook';
import { notRecording } from './not-recording';
import { redactUrlAttributes } from './redact-url';
import type { ExpressUtils } from './express-layer';
import type { ServerSpanStarter } from './dropped-spans';
import type { HttpUtils } from './http-server';
import { onUntracedServer } from './untraced-servers';
import { withHelpers } from './upstream';

/** The upstream helpers files, read when a patch of forktrace's is first installed. */
const upstreamUtils = () => require('./upstream-utils') as typeof import('./upstream-utils');

/**
 * Redacts sensitive query values in URL attributes when a span starts, for every
 * instrumentation alike. instrumentation-http's own list is exact-match and case-sensitive
 * (`sig`, `X-Amz-Signature`, …), so `?token=` or `?api_key=` would be kept.
 */
export class QueryRedactingProcessor implements SpanProcessor {
  onStart(span: Span, _parentContext: Context): void {
    redactUrlAttributes(span.attributes, (key, value) => span.setAttribute(key, value));
  }
  onEnd(_span: ReadableSpan): void {}
  forceFlush(): Promise<void> {
    return Promise.resolve();
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/** Modules that are silently untraced when loaded before instrument(). */
const WATCHED = ['express', 'mysql2'] as const;

/** Watched modules already in the require cache, i.e. loaded before instrumentation started. */
export function modulesLoadedTooEarly(
  config: ResolvedConfig,
  cacheKeys: string[] = Object.keys(require.cache),
): string[] {
  return WATCHED.filter((name) => {
    if (!config.instrumentations[name]) return false;
    const marker = `node_modules/${name}/`;
    return cacheKeys.some((k) => k.replace(/\\/g, '/').includes(marker));
  });
}

/**
 * Whether instrumentation-http records its request-duration metric, which needs the route and the
 * end of every request, sampled or not: into forktrace's metrics (set on it once they start), or
 * into a meter provider the app registered before forktrace started (the instrumentation took its
 * meter from it when made). If not, a request that is not sampled needs neither.
 */
function measures(http: Instrumentation, config: ResolvedConfig): boolean {
  if (config.metrics.exporters.length > 0) return true;
  // `meter` is InstrumentationBase's protected getter, there for instrumentation authors.
  const { meter } = http as unknown as { meter: Meter };
  return meter.constructor !== createNoopMeter().constructor;
}

type Query = (this: unknown, ...args: unknown[]) => unknown;

/**
 * A query inside a request that is not sampled skips instrumentation-mysql2's work (its
 * attributes, the masking, a span that does not record, the wrapped callback): the original query
 * runs as is. db.client.operation.duration does not come from there (metrics.ts). Through the
 * private `_patchQuery(format, isPrepared)`, listed in upstream.ts; if it is gone, upstream's
 * patch runs for every query.
 */
function skipQueriesNotRecorded(instrumentation: Instrumentation): void {
  const self = instrumentation as unknown as {
    _patchQuery?: (format: unknown, isPrepared: boolean) => (original: Query) => Query;
  };
  const upstream = self._patchQuery;
  if (typeof upstream !== 'function') return;
  self._patchQuery = function (this: unknown, format, isPrepared) {
    const patch = upstream.call(this, format, isPrepared);
    return (original) => {
      const traced = patch(original);
      return function query(this: unknown, ...args: unknown[]) {
        return (notRecording() ? original : traced).apply(this, args);
      };
    };
  };
}

type Wrap = (target: Record<PropertyKey, unknown>, name: PropertyKey, wrapper: (original: Query) => Query) => unknown;

/**
 * instrumentation-mysql2 (0.70) wraps each query's callback where it sits in the query's
 * `arguments`, with InstrumentationBase's `_wrap`: shimmer defines the argument as a property and
 * marks the wrapper with three more, so that it could be unwrapped, which nothing does with a
 * callback of one query. Those `defineProperty` calls were 0.6 % of a busy worker's time (change 13,
 * BENCHMARKS.md). A callback (a numbered argument) is replaced by plain assignment here, with the
 * same wrapper; anything else goes to upstream's `_wrap`. Listed in upstream.ts.
 */
export function plainCallbackWraps(instrumentation: Instrumentation): void {
  const self = instrumentation as unknown as { _wrap?: Wrap };
  const upstream = self._wrap;
  if (typeof upstream !== 'function') return;
  self._wrap = function (this: unknown, target, name, wrapper) {
    const original = typeof name === 'number' ? target[name] : undefined;
    if (typeof original !== 'function') return upstream.call(this, target, name, wrapper);
    const wrapped = wrapper(original as Query);
    target[name] = wrapped;
    return wrapped;
  };
}

/**
 * Creates and enables the instrumentations. They patch modules through require/import hooks, so
 * only modules loaded after this call are traced.
 */
export function createInstrumentations(config: ResolvedConfig, serverSpans?: ServerSpanStarter): Instrumentation[] {
  // Before the first instrumentation exists: it makes upstream's require hook (module-hook.ts).
  const hook = replaceSingleton(upstreamUtils().requireSingleton?.RequireInTheMiddleSingleton as SingletonClass);
  const out: Instrumentation[] = [];
  // Whether a request that is not sampled is still measured (instrumentation-http's metric).
  let measured = false;
  if (config.instrumentations.http) {
    const { HttpInstrumentation } =
      require('@opentelemetry/instrumentation-http') as typeof import('@opentelemetry/instrumentation-http');
    const excluded = config.excludedUrls;
    const instrumentation = new HttpInstrumentation({
      // Puts right the http.route instrumentation-express leaves on the server span.
      responseHook: config.instrumentations.express
        ? (require('./express-route') as typeof import('./express-route')).trackExpressRoute
        : undefined,
      ignoreIncomingRequestHook:
        excluded.length === 0 && !config.metrics.exporters.includes('prometheus')
          ? undefined
          : (req: IncomingMessage) => {
              if (onUntracedServer(req)) return true;
              const url = req.url ?? '/';
              const q = url.indexOf('?');
              const p = q >= 0 ? url.slice(0, q) : url;
              return excluded.some((r) => r.test(p));
            },
      // instrumentation-http (0.301) records http.client.request.duration even for a request
      // made with tracing suppressed, which is how the SDK sends its exports: every span and
      // metrics export would count as a request of the app's. Such a request is left alone.
      ignoreOutgoingRequestHook:
        config.metrics.exporters.length === 0 ? undefined : () => isTracingSuppressed(otelContext.active()),
    });
    measured = measures(instrumentation, config);
    if (config.httpPatch === 'forktrace') {
      const { HTTP_UTILS_NAMES, useLeanServerPatch } = require('./http-server') as typeof import('./http-server');
      const utils = withHelpers<HttpUtils>(upstreamUtils().httpUtils, HTTP_UTILS_NAMES);
      if (utils !== undefined) useLeanServerPatch(instrumentation, utils, measured, serverSpans);
    }
    out.push(instrumentation);
  }
  if (config.instrumentations.express) {
    const express =
      require('@opentelemetry/instrumentation-express') as typeof import('@opentelemetry/instrumentation-express');
    const all = [
      express.ExpressLayerType.ROUTER,
      express.ExpressLayerType.MIDDLEWARE,
      express.ExpressLayerType.REQUEST_HANDLER,
    ];
    const instrumentation = new express.ExpressInstrumentation({
      ignoreLayersType: all.filter((t) => !(config.expressLayers as string[]).includes(t)),
      // A request that is not sampled gets no layer spans, so it need not pay for them either:
      // upstream would still make a non-recording span per layer, bind it, wrap `next` and
      // listen for the response's close. An ignored layer keeps http.route as it is written
      // with FORKTRACE_EXPRESS_LAYERS=none.
      ignoreLayers: [notRecording],
      // Express 5's router names every handler span "request handler"; name the route, as
      // express 4 did, so the span says which handler ran.
      spanNameHook: (info, defaultName) =>
        info.layerType === express.ExpressLayerType.REQUEST_HANDLER && info.route && !defaultName.includes(info.route)
          ? `${defaultName} - ${info.route}`
          : defaultName,
    });
    if (config.expressPatch === 'forktrace') {
      const { EXPRESS_UTILS_NAMES, useLeanLayerPatch } = require('./express-layer') as typeof import('./express-layer');
      const utils = withHelpers<ExpressUtils>(upstreamUtils().expressUtils, EXPRESS_UTILS_NAMES);
      if (utils !== undefined) useLeanLayerPatch(instrumentation, utils, measured);
    }
    out.push(instrumentation);
  }
  if (config.instrumentations.express && config.instrumentations.http) {
    // The sub-app mount paths trackExpressRoute needs; see express-route.ts.
    const { ExpressMountInstrumentation } = require('./express-route') as typeof import('./express-route');
    out.push(new ExpressMountInstrumentation());
  }
  if (config.instrumentations.mysql2) {
    const { MySQL2Instrumentation } =
      require('@opentelemetry/instrumentation-mysql2') as typeof import('@opentelemetry/instrumentation-mysql2');
    const { Mysql2PoolContextInstrumentation } = require('./mysql2-pool') as typeof import('./mysql2-pool');
    const mysql2 = new MySQL2Instrumentation({ maskStatement: config.maskDbStatements });
    skipQueriesNotRecorded(mysql2);
    plainCallbackWraps(mysql2);
    out.push(
      mysql2,
      // Without it a busy pool parents query spans under the wrong request; see mysql2-pool.ts.
      new Mysql2PoolContextInstrumentation(),
    );
  }
  shareVersionLookups(out);
  hook?.start();
  return out;
}
