/**
 * instrumentation-http's handler of a server's `request` event (its private
 * `_incomingRequestFunction`, 0.301.0), written again so that the sampler decides first.
 *
 * Why: upstream collects the server span's attributes before it starts the span (parsing the URL
 * with `new URL`, the Host and Forwarded headers, the SDK's attribute checks), so a request that is
 * not sampled pays for attributes nobody keeps. On Node 24 that was about a quarter of what
 * tracing adds to a request at 1 % sampling (BENCHMARKS.md). Here the span starts bare; only a
 * recording span gets the attributes, from upstream's own helper (or, for a plain request, the
 * same attributes without its URL parse: request-attributes.ts), and a span that does not record
 * gets the few the request-duration metric needs.
 *
 * The rest is upstream's, step for step: the ignore hook, extraction of the parent, the RPC
 * metadata instrumentation-express writes the route into, the binding of the request and response
 * to the span's context, the request and response hooks, the end on the response's `close` and
 * on an error. A recording span ends through upstream's own `_onServerResponseFinish`. Those two
 * listeners are not bound to the request's context (context-binding.ts addUnbound): the route
 * upstream reads from the active context is there whenever the response closes in a context of
 * the request, and the end runs in the request's context otherwise.
 *
 * forktrace's samplers do not read attributes (settings.ts lists them), so starting bare changes no
 * decision. forktrace's query redaction runs on a span's attributes when it starts
 * (QueryRedactingProcessor), which here is before they are set: they are redacted here instead.
 * Turned off by FORKTRACE_HTTP_PATCH=upstream. Listed in upstream.ts.
 */
import { errorMonitor } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  context,
  propagation,
  trace,
  INVALID_SPAN_CONTEXT,
  ROOT_CONTEXT,
  SpanKind,
  type Attributes,
  type Context,
  type HrTime,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import {
  getRPCMetadata,
  hrTime,
  RPCType,
  setRPCMetadata,
  suppressTracing,
  type RPCMetadata,
} from '@opentelemetry/core';
import { safeExecuteInTheMiddle } from '@opentelemetry/instrumentation';
import {
  ATTR_HTTP_REQUEST_METHOD as METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE as STATUS_CODE,
  ATTR_HTTP_ROUTE as ROUTE,
  ATTR_NETWORK_PROTOCOL_VERSION as PROTOCOL_VERSION,
  ATTR_URL_SCHEME as SCHEME,
} from '@opentelemetry/semantic-conventions';
import type { HttpInstrumentation, HttpInstrumentationConfig } from '@opentelemetry/instrumentation-http';
import { addUnbound } from './context-binding';
import type { ServerSpanStarter } from './dropped-spans';
import { redactUrlAttributes } from './redact-url';
import { fastRequestAttributes, normalizeMethod, type RequestAttributes } from './request-attributes';

/** The helpers of instrumentation-http's utils file this handler calls. */
export interface HttpUtils {
  getIncomingRequestAttributes: RequestAttributes;
  getIncomingStableRequestMetricAttributesOnResponse(spanAttributes: Attributes): Attributes;
}

/** The helpers, by name: all must be functions, or upstream's own handler stays. */
export const HTTP_UTILS_NAMES = [
  'getIncomingRequestAttributes',
  'getIncomingStableRequestMetricAttributesOnResponse',
] as const;

type Emit = (this: unknown, event: string | symbol, ...args: unknown[]) => boolean;

/** What the handler reaches of the instrumentation: its protected and private members. */
interface Instrumentation {
  _diag: unknown;
  _headerCapture: { server: { captureRequestHeaders(get: (header: string) => unknown): Attributes } };
  getConfig(): HttpInstrumentationConfig;
  readonly tracer: Tracer;
  /** Spans `_closeHttpSpan` will end: it ends only those it finds here. */
  _spanNotEnded: WeakSet<Span>;
  _callStartSpanHook(request: IncomingMessage, hook: unknown): Attributes | undefined;
  _callRequestHook(span: Span, request: IncomingMessage): void;
  _callResponseHook(span: Span, response: ServerResponse): void;
  _onServerResponseFinish(
    request: IncomingMessage,
    response: ServerResponse,
    span: Span,
    metricAttributes: Attributes,
    startTime: HrTime,
  ): void;
  _onServerResponseError(span: Span, metricAttributes: Attributes, startTime: HrTime, error: unknown): void;
  _closeHttpSpan(span: Span, kind: SpanKind, startTime: HrTime, metricAttributes: Attributes): void;
}

/** The private method the handler replaces; the module patches call it as `this._incomingRequestFunction`. */
export const INCOMING_REQUEST_FUNCTION = '_incomingRequestFunction';

/**
 * Replaces `instrumentation`'s handler of incoming requests with this one. Unless requests that are
 * not sampled are `measured` (metrics), such a request gets only its place in the trace: the
 * context that tells what it calls that it is not sampled, bound to the request and response.
 */
export function useLeanServerPatch(
  instrumentation: HttpInstrumentation,
  utils: HttpUtils,
  measured: boolean,
  serverSpans?: ServerSpanStarter,
): void {
  const self = instrumentation as unknown as Instrumentation;
  const helpers: HttpUtils = {
    getIncomingRequestAttributes: fastRequestAttributes(utils.getIncomingRequestAttributes),
    getIncomingStableRequestMetricAttributesOnResponse: utils.getIncomingStableRequestMetricAttributesOnResponse,
  };
  (instrumentation as unknown as Record<string, unknown>)[INCOMING_REQUEST_FUNCTION] = (
    component: 'http' | 'https',
    original: Emit,
  ): Emit =>
    function emit(event, ...args) {
      if (event !== 'request') return original.apply(this, [event, ...args]);
      return incomingRequest(
        self,
        helpers,
        component,
        measured,
        serverSpans,
        original,
        this,
        args[0] as IncomingMessage,
        args[1] as ServerResponse,
      );
    };
}

/** The metric attributes of a request nobody measures: never read. */
const NOT_MEASURED: Attributes = Object.freeze({});

/** One request: upstream's handler, with the sampler's decision before the attributes. */
function incomingRequest(
  self: Instrumentation,
  utils: HttpUtils,
  component: 'http' | 'https',
  measured: boolean,
  serverSpans: ServerSpanStarter | undefined,
  original: Emit,
  server: unknown,
  request: IncomingMessage,
  response: ServerResponse,
): boolean {
  const config = self.getConfig();
  const ignore = config.ignoreIncomingRequestHook;
  if (ignore !== undefined && ignored(ignore, request)) {
    return context.with(suppressTracing(context.active()), () => {
      context.bind(context.active(), request);
      context.bind(context.active(), response);
      return original.call(server, 'request', request, response);
    });
  }
  const method = request.method || 'GET';
  const parent = propagation.extract(ROOT_CONTEXT, request.headers);
  const startTime = hrTime();
  const span = startServerSpan(self, config, method, parent, serverSpans);
  const recording = span.isRecording();
  // Only a span that `_closeHttpSpan` will close goes in its WeakSet: adding the others cost about
  // 2 % of busy time at 1 % sampled, and each entry is work for the GC until the span is freed.
  if (recording || measured) self._spanNotEnded.add(span);
  let metricAttributes = NOT_MEASURED;
  if (recording) {
    const attributes = utils.getIncomingRequestAttributes(
      request,
      {
        component,
        hookAttributes: self._callStartSpanHook(request, config.startIncomingSpanHook),
        enableSyntheticSourceDetection: config.enableSyntheticSourceDetection || false,
        redactedQueryParams: config.redactedQueryParamsServer,
      },
      self._diag,
    );
    Object.assign(
      attributes,
      self._headerCapture.server.captureRequestHeaders((header) => request.headers[header]),
    );
    redactUrlAttributes(attributes, (key, value) => (attributes[key] = value));
    span.setAttributes(attributes);
    metricAttributes = { [METHOD]: attributes[METHOD], [SCHEME]: attributes[SCHEME] };
    if (attributes[PROTOCOL_VERSION]) metricAttributes[PROTOCOL_VERSION] = attributes[PROTOCOL_VERSION];
  } else if (measured) {
    metricAttributes = { [METHOD]: normalizeMethod(method), [SCHEME]: component };
    if (request.httpVersion) metricAttributes[PROTOCOL_VERSION] = request.httpVersion;
  }
  const rpc: RPCMetadata = { type: RPCType.HTTP, span };
  const ctx = setRPCMetadata(trace.setSpan(parent, span), rpc);
  return context.with(ctx, () => {
    context.bind(ctx, request);
    context.bind(ctx, response);
    if (config.requestHook) self._callRequestHook(span, request);
    // Nothing to end and nothing to count: the response hook (the route) and the end are skipped.
    if (!recording && !measured) return original.call(server, 'request', request, response);
    if (config.responseHook) self._callResponseHook(span, response);
    let hasError = false;
    // forktrace's own listeners, not bound to the request's context (addUnbound: a bound listener
    // switches context at each call, and the response closes in the express handler's context).
    addUnbound(response, 'close', () => {
      if (hasError) return;
      if (!recording) return closeUnrecorded(self, utils, response, span, metricAttributes, startTime, rpc);
      // upstream's end reads the route from the active context's RPC metadata. Where the response
      // closes in a context of this request (the usual case), that is `rpc`; anywhere else, the
      // end runs in the request's context, as it would bound.
      if (getRPCMetadata(context.active()) === rpc)
        self._onServerResponseFinish(request, response, span, metricAttributes, startTime);
      else context.with(ctx, () => self._onServerResponseFinish(request, response, span, metricAttributes, startTime));
    });
    addUnbound(response, errorMonitor, (error: unknown) => {
      hasError = true;
      self._onServerResponseError(span, metricAttributes, startTime, error);
    });
    try {
      return original.call(server, 'request', request, response);
    } catch (error) {
      self._onServerResponseError(span, metricAttributes, startTime, error);
      throw error;
    }
  });
}

/**
 * upstream's `_startHttpSpan` for a server span (`requireParentforIncomingSpans` included),
 * without adding the span to `_spanNotEnded`: the caller does, for a span that will be closed. A
 * span the sampler drops is made by `serverSpans` (dropped-spans.ts) when given.
 */
function startServerSpan(
  self: Instrumentation,
  config: HttpInstrumentationConfig,
  method: string,
  parent: Context,
  serverSpans: ServerSpanStarter | undefined,
): Span {
  if (config.requireParentforIncomingSpans === true) {
    const current = trace.getSpan(parent);
    if (!current || !trace.isSpanContextValid(current.spanContext()))
      return trace.wrapSpanContext(INVALID_SPAN_CONTEXT);
    if (current.spanContext().isRemote) return current;
  }
  if (serverSpans !== undefined) return serverSpans.start(self.tracer, method, parent);
  return self.tracer.startSpan(method, { kind: SpanKind.SERVER }, parent);
}

/** upstream's call of the ignore hook: a hook that throws ignores nothing. */
function ignored(hook: (request: IncomingMessage) => boolean, request: IncomingMessage): boolean {
  return safeExecuteInTheMiddle(
    () => hook(request),
    () => {},
    true,
  );
}

/**
 * The end of a span that does not record: what upstream's `_onServerResponseFinish` gives the
 * request-duration metric (status code, route, error type), without the span's attributes. The
 * route is read from the request's RPC metadata itself, where upstream reads the active context's.
 */
function closeUnrecorded(
  self: Instrumentation,
  utils: HttpUtils,
  response: ServerResponse,
  span: Span,
  metricAttributes: Attributes,
  startTime: HrTime,
  rpc: RPCMetadata,
): void {
  const onResponse: Attributes = { [STATUS_CODE]: response.statusCode };
  if (rpc.route !== undefined) onResponse[ROUTE] = rpc.route;
  Object.assign(metricAttributes, utils.getIncomingStableRequestMetricAttributesOnResponse(onResponse));
  self._closeHttpSpan(span, SpanKind.SERVER, startTime, metricAttributes);
}
