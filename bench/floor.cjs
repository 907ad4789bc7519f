'use strict';
// The "lean floor": the cheapest tracing the bench could build that still carries what users rely
// on, to learn whether the throughput targets are reachable at all with the OpenTelemetry SDK.
// Bench-only, not product code. Loaded with: node --require ./bench/floor.cjs server.js
//
// Same SDK and export path as forktrace: sdk-trace's TracerProvider (AsyncLocalStorage context manager,
// W3C propagator, ParentBased(AlwaysOn) sampler), forktrace's resource, its OTLP/HTTP protobuf
// exporter with gzip and its BatchSpanProcessor (dist/worker/exporter.js), endpoint from
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT. Instead of instrumentation-http/-express/-mysql2, two
// hand-written patches:
//   http.Server.prototype.emit('request'): one SERVER span per request, the listener run inside
//     its context, ended on the response's 'close' (which Node emits after 'finish', and on abort);
//   mysql2 Connection.prototype.query/execute: one CLIENT span per query, statement masked,
//     callback run in the caller's context; Pool.prototype.getConnection binds its callback to the
//     caller's context (a queued callback is otherwise run from another request's release()).
//
// Switches (all default on): FLOOR_MYSQL=0 no mysql2 hook · FLOOR_BIND=0 do not bind the request
// and response emitters to the span's context · FLOOR_EXPORT=0 record spans, export nothing ·
// FLOOR_SAMPLE=0 hooks installed, no span sampled.
const http = require('node:http');
const Module = require('node:module');
const path = require('node:path');
const api = require('@opentelemetry/api');
const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks');
const { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } = require('@opentelemetry/core');
const { AlwaysOffSampler, TracerProvider } = require('@opentelemetry/sdk-trace');
const { resolveConfig, defaultHostFacts } = require('../dist/config/resolve.js');
const { createExporters, countingBatchProcessor, isOtlpExporter, zeroExportStats } = require('../dist/worker/exporter.js');
const { buildResource, workerIdentity } = require('../dist/worker/resource.js');
const { redactQuery } = require('../dist/worker/redact-url.js');

const { context, trace, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode } = api;
const on = (name) => process.env[name] !== '0';
const MYSQL = on('FLOOR_MYSQL');
const BIND = on('FLOOR_BIND');
const EXPORT = on('FLOOR_EXPORT');
const SAMPLE = on('FLOOR_SAMPLE');

// ---- provider and export: forktrace's own parts -------------------------------------------------
const config = resolveConfig(undefined, process.env, defaultHostFacts());
const stats = zeroExportStats();
const provider = new TracerProvider({
  resource: buildResource(config, workerIdentity(process.env, undefined, undefined)),
  ...(SAMPLE ? {} : { sampler: new AlwaysOffSampler() }),
  // The OTLP exporter takes spans encoded when they end, as forktrace's pipeline gives it.
  spanProcessors: EXPORT
    ? createExporters(config).map((e) => countingBatchProcessor(e, config.batch, stats, isOtlpExporter(e)))
    : [],
});
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
propagation.setGlobalPropagator(
  new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }),
);
trace.setGlobalTracerProvider(provider);
const tracer = provider.getTracer('forktrace-floor', '0.0.0');

process.once('SIGTERM', () => {
  provider
    .shutdown()
    .catch(() => {})
    .finally(() => process.exit(0));
});

// ---- http server ----------------------------------------------------------------------------
const ATTR_ROUTE = 'http.route';
const origEmit = http.Server.prototype.emit;

function onResponseClose() {
  // `this` is the ServerResponse; the span and request were stashed on it.
  const span = this._floorSpan;
  if (span === undefined) return;
  this._floorSpan = undefined;
  const req = this.req;
  const status = this.statusCode;
  const r = req.route;
  let route;
  if (r !== undefined && typeof r.path === 'string') route = (req.baseUrl || '') + r.path;
  span.setAttribute('http.response.status_code', status);
  if (route !== undefined) {
    span.setAttribute(ATTR_ROUTE, route);
    span.updateName(`${req.method} ${route}`);
  }
  if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
  else if (!this.writableFinished) span.setStatus({ code: SpanStatusCode.ERROR, message: 'response aborted' });
  span.end();
}

http.Server.prototype.emit = function emit(event, req, res) {
  if (event !== 'request') return origEmit.apply(this, arguments);
  const headers = req.headers;
  // The W3C propagator reads only traceparent/tracestate: skip it when there is nothing to read.
  const parent = headers.traceparent === undefined ? ROOT_CONTEXT : propagation.extract(ROOT_CONTEXT, headers);
  const url = req.url;
  const q = url.indexOf('?');
  const socket = req.socket;
  const host = headers.host;
  let serverAddress = host;
  if (host !== undefined) {
    const colon = host.lastIndexOf(':');
    if (colon > 0 && host.indexOf(']') < colon) serverAddress = host.slice(0, colon);
  }
  const attributes = {
    'http.request.method': req.method,
    'url.path': q < 0 ? url : url.slice(0, q),
    'url.scheme': socket.encrypted ? 'https' : 'http',
    'server.address': serverAddress,
    'server.port': socket.localPort,
    'network.protocol.version': req.httpVersion,
    'client.address': socket.remoteAddress,
    'network.peer.address': socket.remoteAddress,
    'network.peer.port': socket.remotePort,
  };
  // forktrace's redaction of sensitive query values (?token=, ?api_key=, …).
  if (q >= 0) attributes['url.query'] = redactQuery(url.slice(q + 1));
  const span = tracer.startSpan(req.method, { kind: SpanKind.SERVER, attributes }, parent);
  const ctx = trace.setSpan(parent, span);
  res._floorSpan = span;
  res.once('close', onResponseClose);
  if (BIND) {
    // Listeners added later on the request/response (body parsers' 'data'/'end', on-finished)
    // otherwise run in the socket's context, and a query started from them loses its parent.
    context.bind(ctx, req);
    context.bind(ctx, res);
  }
  return context.with(ctx, origEmit, this, event, req, res);
};

// ---- mysql2 -----------------------------------------------------------------------------------
const BOUND = Symbol('floor.bound');
const MASK_CACHE_MAX = 1000;
const maskCache = new Map();
/** upstream instrumentation-mysql2's default masking (numbers and quoted strings → ?), cached. */
function mask(sql) {
  let m = maskCache.get(sql);
  if (m === undefined) {
    m = sql.replace(/\b\d+\b/g, '?').replace(/(["'])(?:(?=(\\?))\2.)*?\1/g, '?');
    if (maskCache.size >= MASK_CACHE_MAX) maskCache.clear();
    maskCache.set(sql, m);
  }
  return m;
}

function patchQuery(proto, method) {
  const orig = proto[method];
  if (typeof orig !== 'function' || orig[BOUND]) return;
  const patched = function (sql, _values, _cb) {
    const text = typeof sql === 'string' ? sql : sql && typeof sql.sql === 'string' ? sql.sql : undefined;
    if (text === undefined) return orig.apply(this, arguments);
    const parentCtx = context.active();
    const cfg = this.config;
    const sp = text.indexOf(' ');
    const span = tracer.startSpan(
      sp < 0 ? text : text.slice(0, sp),
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'db.system.name': 'mysql',
          'db.query.text': mask(text),
          'db.namespace': cfg.database,
          'server.address': cfg.host,
          'server.port': cfg.port,
        },
      },
      parentCtx,
    );
    let ended = false;
    const end = (err) => {
      if (ended) return;
      ended = true;
      if (err) span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
      span.end();
    };
    const wrap = (fn) =>
      function (err) {
        end(err);
        return context.with(parentCtx, fn, this, ...arguments);
      };
    const args = Array.prototype.slice.call(arguments);
    let i = -1;
    if (typeof args[1] === 'function') i = 1;
    else if (typeof args[2] === 'function') i = 2;
    if (i > 0) {
      args[i] = wrap(args[i]);
      return orig.apply(this, args);
    }
    if (typeof sql === 'object' && typeof sql.onResult === 'function') {
      // A Query command built elsewhere (pool.query passes one in).
      sql.onResult = wrap(sql.onResult);
      return orig.apply(this, args);
    }
    // Event-emitter / promise-wrapper style: the command emits 'error' or 'end'.
    const cmd = orig.apply(this, args);
    if (cmd && typeof cmd.once === 'function') {
      cmd.once('error', end);
      cmd.once('end', () => end());
    } else end();
    return cmd;
  };
  patched[BOUND] = true;
  proto[method] = patched;
}

function patchGetConnection(proto) {
  const orig = proto.getConnection;
  if (typeof orig !== 'function' || orig[BOUND]) return;
  proto.getConnection = function getConnection(cb) {
    if (typeof cb !== 'function' || cb[BOUND]) return orig.call(this, cb);
    const ctx = context.active();
    const bound = function () {
      return context.with(ctx, cb, this, ...arguments);
    };
    bound[BOUND] = true;
    return orig.call(this, bound);
  };
  proto.getConnection[BOUND] = true;
}

let mysqlPatched = false;
function patchMysql2(mainFile) {
  mysqlPatched = true;
  // mysql2's package.json "exports" hides lib/; an absolute path is not subject to it.
  const lib = path.join(path.dirname(mainFile), 'lib');
  const Connection = require(path.join(lib, 'connection.js'));
  const base = Object.getPrototypeOf(Connection.prototype);
  // mysql2 ≥ 3.11.5 has query/execute on BaseConnection (what instrumentation-mysql2 patches too).
  const proto = typeof base?.query === 'function' && typeof base?.execute === 'function' ? base : Connection.prototype;
  patchQuery(proto, 'query');
  patchQuery(proto, 'execute');
  const Pool = require(path.join(lib, 'pool.js'));
  const pbase = Object.getPrototypeOf(Pool.prototype);
  patchGetConnection(typeof pbase?.getConnection === 'function' ? pbase : Pool.prototype);
}

if (MYSQL) {
  const origRequire = Module.prototype.require;
  Module.prototype.require = function require(id) {
    const out = origRequire.apply(this, arguments);
    if (!mysqlPatched && (id === 'mysql2' || id.startsWith('mysql2/'))) {
      try {
        patchMysql2(Module._resolveFilename('mysql2', this));
      } catch (e) {
        process.stderr.write(`floor: mysql2 not patched: ${e.message}\n`);
      }
      Module.prototype.require = origRequire;
    }
    return out;
  };
}
