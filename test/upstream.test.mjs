// Every reliance on OpenTelemetry JS internals listed in src/worker/upstream.ts, checked against what is
// installed. A test fails by the entry's name when upstream moves under it, and says what to do.
// In process: no build of the app, no spawned worker.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';

import { ExportResultCode, setGlobalErrorHandler } from '@opentelemetry/core';
import { BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';

import { freshApi } from './helpers.mjs';

const require = createRequire(import.meta.url);
const { UPSTREAM_INTERNALS, withHelpers } = require('../dist/worker/upstream.js');
const { countingBatchProcessor, queuedSpans, zeroExportStats } = require('../dist/worker/exporter.js');

// Upstream's batch processor reports each failed export to the global handler; not wanted here.
setGlobalErrorHandler(() => {});

/** The package's folder; 3.x packages do not export ./package.json. */
function packageRoot(pkg) {
  let dir = path.dirname(require.resolve(pkg));
  while (!fs.existsSync(path.join(dir, 'package.json')) || JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).name !== pkg) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`no package.json of ${pkg} above its main file`);
    dir = up;
  }
  return dir;
}

function installedVersion(pkg) {
  // An npm alias (express4 is express@4) has another name in its package.json: read it by path.
  if (pkg === 'express4') return require('express4/package.json').version;
  return JSON.parse(fs.readFileSync(path.join(packageRoot(pkg), 'package.json'), 'utf8')).version;
}

function builtFiles(pkg) {
  const root = packageRoot(pkg);
  const out = [];
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(c?js|mjs)$/.test(e.name)) out.push(p);
    }
  };
  walk(path.join(root, 'dist'));
  return out;
}

/**
 * Ends `count` spans, a few every millisecond, into `processor` while `exporter` fails every batch
 * after 30 ms; returns the most exports the exporter saw in flight at once.
 */
async function maxExportsInFlight(makeProcessor) {
  let inFlight = 0;
  let max = 0;
  let calls = 0;
  const exporter = {
    export(_spans, done) {
      calls++;
      max = Math.max(max, ++inFlight);
      setTimeout(() => {
        inFlight--;
        done({ code: ExportResultCode.FAILED, error: new Error('rejected by the test') });
      }, 30);
    },
    shutdown: () => Promise.resolve(),
  };
  const processor = makeProcessor(exporter);
  const tracer = new TracerProvider({ spanProcessors: [processor] }).getTracer('upstream-test');
  for (let round = 0; round < 100; round++) {
    for (let i = 0; i < 5; i++) tracer.startSpan('work').end();
    await new Promise((r) => setTimeout(r, 3));
  }
  await new Promise((r) => setTimeout(r, 200));
  assert.ok(calls >= 5, `only ${calls} exports started`);
  return max;
}

const BATCH = { maxExportBatchSize: 5, scheduledDelayMillis: 1, maxQueueSize: 10_000, exportTimeoutMillis: 5_000 };

const CHECKS = {
  'API globals: stamp and compatibility rule': () => {
    const api = require('@opentelemetry/api');
    const { API_GLOBALS_KEY, apiAccepts } = require('../dist/worker/app-api.js');
    const installed = installedVersion('@opentelemetry/api');
    const quiet = { error() {}, warn() {}, info() {}, debug() {}, verbose() {} };
    assert.equal(globalThis[API_GLOBALS_KEY], undefined, 'nothing in this test process registered API globals yet');
    try {
      // The first registration creates the globals under the key app-api.ts reads, stamped with the version.
      api.diag.setLogger(quiet);
      assert.equal(globalThis[API_GLOBALS_KEY]?.version, installed, `the globals are no longer at Symbol.for('opentelemetry.js.api.1') with a version stamp`);
      // A copy refuses to register into globals stamped with another version: why app-api.ts starts them anew.
      delete globalThis[API_GLOBALS_KEY];
      globalThis[API_GLOBALS_KEY] = { version: '1.9.0' };
      assert.equal(api.diag.setLogger(quiet), false, 'registering into globals of another version now succeeds: app-api.ts need not delete them');
    } finally {
      delete globalThis[API_GLOBALS_KEY];
    }
    // The compatibility rule, as the installed API applies it, against the mirror in app-api.ts.
    const semver = path.join(packageRoot('@opentelemetry/api'), 'dist', 'internal', 'semver.cjs');
    assert.ok(fs.existsSync(semver), `${semver} is gone: re-read the rule and update apiAccepts in src/worker/app-api.ts`);
    const { _makeCompatibilityCheck } = require(semver);
    const versions = ['0.9.0', '0.9.3', '0.10.0', '1.0.0', '1.9.0', '1.10.0', '1.10.3', '1.11.0', '1.11.0-rc.1', '2.0.0', 'garbage'];
    for (const caller of versions) {
      for (const stamp of versions) {
        assert.equal(apiAccepts(caller, stamp), _makeCompatibilityCheck(caller)(stamp), `a ${caller} copy reading globals stamped ${stamp}`);
      }
    }
  },
  'BatchSpanProcessorBase._maybeStartTimer': async (t) => {
    // Upstream lets one more export start beside the running one after each failure. Once it
    // stops doing so, exporter.ts oneExportAtATime can go.
    const upstream = await maxExportsInFlight((exporter) => new BatchSpanProcessor({ exporter, ...BATCH }));
    t.diagnostic(`upstream: ${upstream} exports in flight at once`);
    assert.ok(
      upstream > 1,
      'upstream BatchSpanProcessor now keeps one export at a time after failures: remove oneExportAtATime from src/worker/exporter.ts and this entry from src/worker/upstream.ts',
    );
    // The replacement found the private members it needs and holds the line.
    const patched = await maxExportsInFlight((exporter) => {
      const p = countingBatchProcessor(exporter, BATCH, zeroExportStats());
      assert.ok(Object.hasOwn(p, '_maybeStartTimer'), 'oneExportAtATime did not apply: the private members it uses moved');
      return p;
    });
    assert.equal(patched, 1, `${patched} exports in flight at once with oneExportAtATime`);
  },
  'BatchSpanProcessorBase._finishedSpans': () => {
    // An exit that cannot wait sends what the processor still holds; it reads the queue here.
    const exporter = { export: () => {}, shutdown: () => Promise.resolve() };
    const processor = new BatchSpanProcessor({ exporter, ...BATCH, maxExportBatchSize: 100, scheduledDelayMillis: 60_000 });
    const tracer = new TracerProvider({ spanProcessors: [processor] }).getTracer('upstream-test');
    for (const name of ['a', 'b', 'c']) tracer.startSpan(name).end();
    assert.deepEqual(
      queuedSpans(processor).map((s) => s.name),
      ['a', 'b', 'c'],
      'the queued spans are no longer in _finishedSpans: an exit would send only the spans in flight',
    );
  },
  'BatchSpanProcessorBase reads only spanContext() and resource of what it queues': async () => {
    // The OTLP exporter's processor queues encoded spans: they must reach the exporter, in order,
    // in batches of the configured size.
    const batches = [];
    const exporter = { export: (spans, done) => { batches.push(spans); done({ code: ExportResultCode.SUCCESS }); }, shutdown: () => Promise.resolve() };
    const stats = zeroExportStats();
    const processor = countingBatchProcessor(exporter, { ...BATCH, scheduledDelayMillis: 60_000 }, stats, true);
    const provider = new TracerProvider({ spanProcessors: [processor] });
    const tracer = provider.getTracer('upstream-test');
    for (let i = 0; i < 12; i++) tracer.startSpan(`s${i}`).end();
    await processor.forceFlush();
    assert.deepEqual(batches.map((b) => b.length), [5, 5, 2], 'the processor no longer batches encoded spans as it did');
    const { EncodedSpan } = require('../dist/worker/span-bytes.js');
    assert.ok(batches.flat().every((s) => s instanceof EncodedSpan), 'what reached the exporter is not the encoded spans');
    assert.equal(stats.queueFull, 0);
    await provider.shutdown();
  },
  'MetricReader._sdkMetricProducer collection path': () => {
    // A crash writes the Prometheus totals synchronously, through the SDK's storages.
    const { MeterProvider, MetricReader } = require('@opentelemetry/sdk-metrics');
    const { collectNow } = require('../dist/worker/prometheus.js');
    const reader = new (class extends MetricReader {
      onForceFlush() {
        return Promise.resolve();
      }
      onShutdown() {
        return Promise.resolve();
      }
    })();
    const meter = new MeterProvider({ readers: [reader] }).getMeter('upstream-test');
    meter.createCounter('c').add(3, { k: 'v' });
    meter.createHistogram('h').record(0.2);
    const rm = collectNow(reader);
    assert.ok(rm, 'collectNow found no collector: the internals it walks have moved');
    const metrics = rm.scopeMetrics.flatMap((s) => s.metrics);
    assert.deepEqual(
      metrics.map((m) => [m.descriptor.name, m.dataPoints.length]),
      [['c', 1], ['h', 1]],
    );
    assert.equal(metrics[0].dataPoints[0].value, 3);
    assert.equal(metrics[1].dataPoints[0].value.count, 1);
  },
  'BatchSpanProcessor selfObsMeterProvider queue_full counter': async () => {
    const stats = zeroExportStats();
    const exporter = { export: () => {}, shutdown: () => Promise.resolve() };
    const processor = countingBatchProcessor(exporter, { ...BATCH, maxQueueSize: 3, maxExportBatchSize: 3, scheduledDelayMillis: 60_000 }, stats);
    const tracer = new TracerProvider({ spanProcessors: [processor] }).getTracer('upstream-test');
    // The first 3 fill the queue and start an export that never ends; the next 3 fit again; 4 more are dropped.
    for (let i = 0; i < 10; i++) tracer.startSpan('work').end();
    assert.equal(stats.queueFull, 4, 'spans dropped on a full queue are no longer counted through selfObsMeterProvider');
  },
  'express application.handle(req, res, done)': () => {
    // express-route.ts wraps it on express 4 and 5 alike to see a request enter a sub-app.
    for (const name of ['express', 'express4']) {
      const { application } = require(name);
      assert.equal(typeof application?.handle, 'function', `${name}: application.handle is gone`);
      assert.equal(application.handle.length, 3, `${name}: application.handle no longer takes (req, res, done)`);
    }
  },
  'instrumentation-express _applyPatch and its utils file': () => {
    const { ExpressInstrumentation } = require('@opentelemetry/instrumentation-express');
    const applyPatch = ExpressInstrumentation.prototype._applyPatch;
    assert.equal(typeof applyPatch, 'function', 'ExpressInstrumentation.prototype._applyPatch is gone');
    assert.equal(applyPatch.length, 2, '_applyPatch no longer takes (layer, layerPath)');
    // The route and use patches reach it through the instance, where express-layer.ts puts its own.
    const built = builtFiles('@opentelemetry/instrumentation-express').map((f) => fs.readFileSync(f, 'utf8')).join('\n');
    assert.ok(built.includes('instrumentation._applyPatch(layer,'), 'the route/use patches no longer call instrumentation._applyPatch');
    const { expressUtils, UTILS_FILES } = require('../dist/worker/upstream-utils.js');
    const { EXPRESS_UTILS_NAMES } = require('../dist/worker/express-layer.js');
    assert.ok(expressUtils, `dist/${UTILS_FILES.expressUtils.file} is gone from instrumentation-express`);
    const missing = EXPRESS_UTILS_NAMES.filter((n) => typeof expressUtils[n] !== 'function');
    assert.deepEqual(missing, [], 'helpers gone from its utils file');
    assert.ok(withHelpers(expressUtils, EXPRESS_UTILS_NAMES));
  },
  'instrumentation-http _incomingRequestFunction, its members and its utils file': () => {
    const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http');
    const { HTTP_UTILS_NAMES, INCOMING_REQUEST_FUNCTION } = require('../dist/worker/http-server.js');
    const proto = HttpInstrumentation.prototype;
    assert.equal(proto[INCOMING_REQUEST_FUNCTION]?.length, 2, `HttpInstrumentation.prototype.${INCOMING_REQUEST_FUNCTION}(component, original) is gone`);
    const members = ['_startHttpSpan', '_onServerResponseFinish', '_onServerResponseError', '_closeHttpSpan', '_callStartSpanHook', '_callRequestHook', '_callResponseHook'];
    assert.deepEqual(members.filter((m) => typeof proto[m] !== 'function'), [], 'members the handler calls are gone');
    const instance = new HttpInstrumentation({ enabled: false });
    assert.equal(typeof instance._headerCapture?.server?.captureRequestHeaders, 'function', '_headerCapture.server is gone');
    // The handler starts the span itself and puts it where _closeHttpSpan looks; upstream's
    // _startHttpSpan must still be only that (requireParent, startSpan, _spanNotEnded.add).
    assert.ok(instance._spanNotEnded instanceof WeakSet, '_spanNotEnded is no longer a WeakSet');
    assert.equal(typeof instance.tracer?.startSpan, 'function', 'the tracer getter is gone');
    const startHttpSpan = proto._startHttpSpan.toString();
    for (const step of ['requireParentforIncomingSpans', 'isSpanContextValid', 'isRemote', 'this.tracer.startSpan(name, options, ctx)', 'this._spanNotEnded.add(span)']) {
      assert.ok(startHttpSpan.includes(step), `_startHttpSpan no longer has \`${step}\`: compare it with http-server.ts startServerSpan`);
    }
    assert.ok(startHttpSpan.split('\n').length <= 11, `_startHttpSpan grew to ${startHttpSpan.split('\n').length} lines: compare it with http-server.ts startServerSpan`);
    // The http and https patches reach it through the instance, where http-server.ts puts its own.
    const built = builtFiles('@opentelemetry/instrumentation-http').map((f) => fs.readFileSync(f, 'utf8')).join('\n');
    assert.ok(built.includes(`this.${INCOMING_REQUEST_FUNCTION}(component, original)`), `the server patches no longer call this.${INCOMING_REQUEST_FUNCTION}`);
    const { httpUtils, UTILS_FILES } = require('../dist/worker/upstream-utils.js');
    assert.ok(httpUtils, `dist/${UTILS_FILES.httpUtils.file} is gone from instrumentation-http`);
    assert.deepEqual(HTTP_UTILS_NAMES.filter((n) => typeof httpUtils[n] !== 'function'), [], 'helpers gone from its utils file');
    assert.ok(withHelpers(httpUtils, HTTP_UTILS_NAMES));
  },
  'context-async-hooks AsyncLocalStorageContextManager _asyncLocalStorage and _bindFunction': () => {
    const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks');
    const { CONTEXT_MANAGER_MEMBERS, useLeanBinding } = require('../dist/worker/context-binding.js');
    const manager = new AsyncLocalStorageContextManager();
    assert.equal(typeof manager._asyncLocalStorage?.run, 'function', '_asyncLocalStorage is gone');
    assert.equal(typeof manager._bindFunction, 'function', '_bindFunction is gone');
    assert.deepEqual(CONTEXT_MANAGER_MEMBERS.filter((m) => !(m in manager)), []);
    // bind() and the emitter patches reach it through the instance, where context-binding.ts puts its own.
    const built = builtFiles('@opentelemetry/context-async-hooks').map((f) => fs.readFileSync(f, 'utf8')).join('\n');
    assert.ok(built.includes('this._bindFunction(context, target)'), 'bind() no longer calls this._bindFunction');
    assert.equal(useLeanBinding(manager), true);
  },
  'context-async-hooks AsyncLocalStorageContextManager _bindEventEmitter and _kOtListeners': () => {
    const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks');
    const { EventEmitter } = require('node:events');
    const { useLeanBinding } = require('../dist/worker/context-binding.js');
    const upstream = new AsyncLocalStorageContextManager();
    assert.equal(typeof upstream._bindEventEmitter, 'function', '_bindEventEmitter is gone');
    assert.equal(typeof upstream._kOtListeners, 'symbol', '_kOtListeners is gone');
    // bind() must hand an emitter to the instance's _bindEventEmitter, where forktrace puts its own.
    const lean = new AsyncLocalStorageContextManager();
    useLeanBinding(lean);
    const upstreamEmitter = upstream.bind(require('@opentelemetry/api').ROOT_CONTEXT, new EventEmitter());
    assert.ok(upstreamEmitter[upstream._kOtListeners], 'upstream no longer marks a bound emitter under _kOtListeners');
    const leanEmitter = lean.bind(require('@opentelemetry/api').ROOT_CONTEXT, new EventEmitter());
    assert.equal(leanEmitter[lean._kOtListeners], undefined, 'bind() no longer calls this._bindEventEmitter');
    assert.ok(Object.hasOwn(leanEmitter, 'on'), "forktrace's binding did not patch the emitter");
  },
  "sdk-trace Tracer.startSpan: a root span's trace id from the provider's idGenerator, no metrics without a meterProvider": () => {
    const { TracerProvider } = require('@opentelemetry/sdk-trace');
    const { HandOverIdGenerator } = require('../dist/worker/dropped-spans.js');
    const { ROOT_CONTEXT, trace } = require('@opentelemetry/api');
    const ids = new HandOverIdGenerator();
    const tracer = new TracerProvider({ idGenerator: ids }).getTracer('upstream-test');
    const handed = '0123456789abcdef0123456789abcdef';
    ids.handOver(handed);
    const root = tracer.startSpan('root');
    assert.equal(root.spanContext().traceId, handed, 'startSpan no longer takes a root trace id from idGenerator.generateTraceId');
    assert.notEqual(tracer.startSpan('next').spanContext().traceId, handed, 'startSpan takes the trace id more than once');
    // A child keeps its parent's trace id and leaves a handed-over id alone.
    const parent = trace.setSpan(ROOT_CONTEXT, tracer.startSpan('parent'));
    ids.handOver(handed);
    const child = tracer.startSpan('child', {}, parent);
    assert.notEqual(child.spanContext().traceId, handed, 'a child span took the handed-over trace id');
    assert.equal(tracer.startSpan('root').spanContext().traceId, handed, 'a child span used up the handed-over trace id');
    // The tracer's started-span counter must be a no-op without a meterProvider: dropped server spans skip it.
    const counter = tracer._tracerMetrics?.startedSpans;
    assert.ok(counter, 'the tracer no longer has _tracerMetrics.startedSpans; re-read how it counts spans');
    assert.equal(counter.constructor.name.startsWith('Noop'), true, 'the tracer counts spans without a meterProvider');
  },
  'instrumentation-http getIncomingRequestAttributes of a plain request': async () => {
    const http = require('node:http');
    const { httpUtils } = require('../dist/worker/upstream-utils.js');
    const { fastRequestAttributes } = require('../dist/worker/request-attributes.js');
    const options = { component: 'http', enableSyntheticSourceDetection: false };
    let calls = 0;
    const fast = fastRequestAttributes((...args) => {
      calls++;
      return httpUtils.getIncomingRequestAttributes(...args);
    });
    let ours;
    let theirs;
    const server = http.createServer((req, res) => {
      ours = fast(req, options, undefined);
      theirs = httpUtils.getIncomingRequestAttributes(req, options, undefined);
      res.end();
    });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    try {
      await new Promise((resolve, reject) => {
        http.get({ host: '127.0.0.1', port: server.address().port, path: '/plain/path', headers: { 'user-agent': 'check' } }, (res) => {
          res.resume();
          res.on('end', resolve);
        }).on('error', reject);
      });
      assert.equal(calls, 0, "a plain request went to upstream's helper");
      assert.deepEqual(ours, theirs, 'upstream computes the attributes of a plain request differently now');
      assert.deepEqual(Object.keys(ours), Object.keys(theirs), 'upstream orders the attributes of a plain request differently now');
    } finally {
      server.close();
    }
  },
  'api ROOT_CONTEXT setValue and deleteValue': () => {
    // A copy of the installed API this process has not touched: its files loaded anew.
    const fresh = freshApi();
    const { chainContextsFrom } = require('../dist/worker/context-chain.js');
    const root = fresh.ROOT_CONTEXT;
    assert.ok(
      Object.hasOwn(root, 'setValue') && Object.hasOwn(root, 'deleteValue'),
      'ROOT_CONTEXT no longer has setValue and deleteValue of its own',
    );
    assert.equal(chainContextsFrom(root), true, "ROOT_CONTEXT's setValue and deleteValue can no longer be replaced");
    const key = fresh.createContextKey('forktrace.upstream-test');
    assert.equal(root.setValue(key, 1).getValue(key), 1);
    assert.equal(root.getValue(key), undefined);
  },
  "core maybeAddAttribute and cleanAttributes, called by sdk-trace through core's exports": () => {
    const core = require('@opentelemetry/core');
    const { checkPlainValuesFirst, CORE_ATTRIBUTE_FUNCTIONS } = require('../dist/worker/plain-attributes.js');
    assert.deepEqual(
      CORE_ATTRIBUTE_FUNCTIONS.filter((f) => typeof core[f] !== 'function'),
      [],
      'a function of core is gone',
    );
    assert.equal(checkPlainValuesFirst(core), true, "core's exports can no longer be replaced");
    // sdk-trace must call them through the exports object, at each call.
    const calls = { add: 0, clean: 0 };
    const { maybeAddAttribute, cleanAttributes } = core;
    core.maybeAddAttribute = (o) => (calls.add++, maybeAddAttribute(o));
    core.cleanAttributes = (a, l) => (calls.clean++, cleanAttributes(a, l));
    try {
      // The CommonJS build, as forktrace loads it (the ESM one imports core's ESM build, a module of its own).
      const { TracerProvider: CjsProvider } = require('@opentelemetry/sdk-trace');
      const span = new CjsProvider().getTracer('upstream-test').startSpan('s', { attributes: { a: 1 } });
      span.setAttribute('b', 'x');
      span.end();
    } finally {
      core.maybeAddAttribute = maybeAddAttribute;
      core.cleanAttributes = cleanAttributes;
    }
    assert.ok(calls.add >= 1, "Span.setAttribute no longer calls core's maybeAddAttribute through its exports");
    assert.ok(calls.clean >= 1, "Tracer.startSpan no longer calls core's cleanAttributes through its exports");
  },
  'instrumentation RequireInTheMiddleSingleton file, _instance and register()': () => {
    const { requireSingleton, UTILS_FILES } = require('../dist/worker/upstream-utils.js');
    assert.ok(requireSingleton, `dist/${UTILS_FILES.requireSingleton.file} is gone from @opentelemetry/instrumentation`);
    const Singleton = requireSingleton.RequireInTheMiddleSingleton;
    assert.equal(typeof Singleton?.getInstance, 'function', 'RequireInTheMiddleSingleton.getInstance is gone');
    assert.ok('_instance' in Singleton, 'the static _instance field is gone');
    assert.equal(typeof Singleton.prototype.register, 'function', 'register(moduleName, onRequire) is gone');
    assert.equal(Singleton.prototype.register.length, 2, 'register no longer takes (moduleName, onRequire)');
    // getInstance must hand back what is in _instance (module-hook.ts puts its own there), and each
    // instrumentation must register through the instance it got.
    const singletonText = Singleton.getInstance.toString();
    assert.match(singletonText, /this\._instance \?\?/, 'getInstance no longer returns _instance when set');
    const built = builtFiles('@opentelemetry/instrumentation').map((f) => fs.readFileSync(f, 'utf8')).join('\n');
    assert.ok(built.includes('RequireInTheMiddleSingleton.getInstance()'), 'InstrumentationBase no longer takes the singleton from getInstance()');
    assert.ok(built.includes('this._requireInTheMiddleSingleton.register(module.name, onRequire)'), 'enable() no longer registers with the singleton');
  },
  "instrumentation InstrumentationBase uses import-in-the-middle only through `new Hook(modules, options, fn)`": () => {
    const users = builtFiles('@opentelemetry/instrumentation').filter((f) => f.endsWith('.cjs') && fs.readFileSync(f, 'utf8').includes('import-in-the-middle'));
    assert.deepEqual(
      users.map((f) => path.basename(f)),
      ['instrumentation.cjs'],
      'another CommonJS file of @opentelemetry/instrumentation loads import-in-the-middle',
    );
    const text = fs.readFileSync(users[0], 'utf8');
    const binding = /(\w+) = require\("import-in-the-middle"\)/.exec(text)?.[1];
    assert.ok(binding, 'instrumentation.cjs no longer requires import-in-the-middle as one binding');
    const uses = [...text.matchAll(new RegExp(`\\b${binding}\\b(.{0,6})`, 'g'))].map((m) => m[1]).slice(1);
    assert.deepEqual(uses, ['.Hook('], `instrumentation.cjs uses ${binding} otherwise than as new ${binding}.Hook(...)`);
    assert.match(text, new RegExp(`new ${binding}\\.Hook\\(\\[module\\.name\\], \\{ internals: true \\}, hookFn\\)`), 'the ESM hook is no longer made as new Hook([name], options, fn)');
    const hookUses = [...text.matchAll(/_hooks(\s*=|\.\w+)/g)].map((m) => m[1].trim());
    assert.deepEqual([...new Set(hookUses)].sort(), ['.length', '.push', '='], 'InstrumentationBase does more with its hooks than keep them');
  },
  'instrumentation InstrumentationBase._extractPackageVersion(baseDir)': () => {
    const { MySQL2Instrumentation } = require('@opentelemetry/instrumentation-mysql2');
    const instance = new MySQL2Instrumentation({ enabled: false });
    assert.equal(typeof instance._extractPackageVersion, 'function', 'InstrumentationBase._extractPackageVersion is gone');
    assert.equal(instance._extractPackageVersion.length, 1, '_extractPackageVersion no longer takes (baseDir)');
    const mysql2Dir = path.dirname(require.resolve('mysql2/package.json'));
    assert.equal(instance._extractPackageVersion(mysql2Dir), require('mysql2/package.json').version);
    const built = builtFiles('@opentelemetry/instrumentation').map((f) => fs.readFileSync(f, 'utf8')).join('\n');
    assert.ok(built.includes('this._extractPackageVersion(baseDir)'), '_onRequire no longer calls this._extractPackageVersion');
  },
  'instrumentation-mysql2 _patchQuery': () => {
    const { MySQL2Instrumentation } = require('@opentelemetry/instrumentation-mysql2');
    assert.equal(MySQL2Instrumentation.prototype._patchQuery?.length, 2, 'MySQL2Instrumentation.prototype._patchQuery(format, isPrepared) is gone');
    const built = builtFiles('@opentelemetry/instrumentation-mysql2').map((f) => fs.readFileSync(f, 'utf8')).join('\n');
    assert.ok(built.includes('this._patchQuery(format, false)'), 'the module patch no longer calls this._patchQuery');
  },
  "instrumentation-mysql2 wraps a query's callback with this._wrap(arguments, index)": () => {
    const { MySQL2Instrumentation } = require('@opentelemetry/instrumentation-mysql2');
    const { plainCallbackWraps } = require('../dist/worker/instrumentations.js');
    const instrumentation = new MySQL2Instrumentation({ enabled: false });
    plainCallbackWraps(instrumentation);
    const forktraceWrap = instrumentation._wrap;
    const calls = [];
    instrumentation._wrap = function (target, name, wrapper) {
      calls.push(name);
      return forktraceWrap.call(this, target, name, wrapper);
    };
    let passed;
    const original = function (...args) {
      passed = args;
    };
    const query = instrumentation._patchQuery(undefined, false)(original);
    const answers = [];
    const callback = (...args) => answers.push(args);
    query.call({ config: {} }, 'SELECT 1', callback);
    assert.deepEqual(calls, [1], "the query patch no longer wraps the callback through this._wrap(arguments, 1, …)");
    assert.equal(passed.length, 2);
    assert.notEqual(passed[1], callback, 'the callback was not wrapped');
    passed[1](null, [{ one: 1 }], []);
    assert.deepEqual(answers, [[null, [{ one: 1 }], []]], 'the wrapped callback does not call the app with what it got');
  },
  'otlp-transformer trace files': () => {
    const { TRACE_TRANSFORMER_FILES, ProtobufTraceSerializer, TraceExporterMetricsHelper } = require('../dist/worker/trace-transformer.js');
    const dist = path.dirname(require.resolve('@opentelemetry/otlp-transformer'));
    const serializer = path.join(dist, ...TRACE_TRANSFORMER_FILES.serializer);
    const helper = path.join(dist, ...TRACE_TRANSFORMER_FILES.metricsHelper);
    assert.ok(fs.existsSync(serializer), `${path.relative(dist, serializer)} is gone from otlp-transformer`);
    assert.ok(fs.existsSync(helper), `${path.relative(dist, helper)} is gone from otlp-transformer`);
    // Loaded from the files, not from the index fallback.
    assert.equal(ProtobufTraceSerializer, require(serializer).ProtobufTraceSerializer);
    assert.equal(TraceExporterMetricsHelper, require(helper).TraceExporterMetricsHelper);
    // And the files hold what the index exports.
    const index = require('@opentelemetry/otlp-transformer');
    assert.equal(ProtobufTraceSerializer, index.ProtobufTraceSerializer);
    assert.equal(TraceExporterMetricsHelper, index.TraceExporterMetricsHelper);
  },
};

test('otlp-transformer trace files gone (a later upstream): trace-transformer falls back to the package index', () => {
  const Module = require('node:module');
  const file = require.resolve('../dist/worker/trace-transformer.js');
  const { TRACE_TRANSFORMER_FILES } = require(file);
  const dist = path.dirname(require.resolve('@opentelemetry/otlp-transformer'));
  const index = require('@opentelemetry/otlp-transformer');
  // Each file missing in turn: forktrace's by-path require fails, the index's own relative one does not.
  for (const parts of Object.values(TRACE_TRANSFORMER_FILES)) {
    const gone = path.join(dist, ...parts);
    const load = Module._load;
    Module._load = function (request, ...rest) {
      if (request === gone) throw Object.assign(new Error(`Cannot find module '${request}'`), { code: 'MODULE_NOT_FOUND' });
      return load.call(this, request, ...rest);
    };
    delete require.cache[file];
    try {
      const fresh = require(file);
      assert.equal(fresh.ProtobufTraceSerializer, index.ProtobufTraceSerializer, parts.join('/'));
      assert.equal(fresh.TraceExporterMetricsHelper, index.TraceExporterMetricsHelper, parts.join('/'));
    } finally {
      Module._load = load;
      delete require.cache[file];
    }
  }
});

for (const entry of UPSTREAM_INTERNALS) {
  test(`upstream internal: ${entry.name} (${entry.package} ${entry.checked})`, async (t) => {
    // express is checked on both lines the tests run (express 4 is the `express4` alias).
    const installed =
      entry.package === 'express' ? `${installedVersion('express4')} and ${installedVersion('express')}` : installedVersion(entry.package);
    if (installed !== entry.checked) t.diagnostic(`installed ${entry.package} is ${installed}; re-read it and update src/worker/upstream.ts`);
    if (entry.text !== undefined) {
      const found = builtFiles(entry.package).some((f) => fs.readFileSync(f, 'utf8').includes(entry.text));
      assert.ok(found, `${entry.package} ${installed} no longer contains ${JSON.stringify(entry.text)}: ${entry.why}`);
      return;
    }
    const check = CHECKS[entry.name];
    assert.ok(check, `no check for ${entry.name} in test/upstream.test.mjs`);
    await check(t);
  });
}

test('every check here belongs to an entry of src/worker/upstream.ts', () => {
  const names = new Set(UPSTREAM_INTERNALS.map((e) => e.name));
  assert.deepEqual(Object.keys(CHECKS).filter((n) => !names.has(n)), []);
});

test("sdk-metrics' errors at every interval (export timed out, callbacks failed) print once, in forktrace's words", async () => {
  // The reader says both with diag.error at each interval while the cause lasts: here an exporter
  // that never answers (each export times out after 20 ms) and a gauge callback that throws,
  // every 40 ms for 400 ms. Through forktrace's logger, each is one line until its interval passes.
  const { diag, DiagLogLevel } = require('@opentelemetry/api');
  const { MeterProvider, PeriodicExportingMetricReader } = require('@opentelemetry/sdk-metrics');
  const { Logger } = require('../dist/worker/log.js');
  const { Redactor } = require('../dist/worker/secrets.js');
  const { statusMessages } = require('../dist/worker/messages.js');
  const lines = [];
  diag.setLogger(new Logger(new Redactor([]), DiagLogLevel.WARN, (line) => lines.push(line)), { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true });
  const exporter = { export: () => {}, forceFlush: () => Promise.resolve(), shutdown: () => Promise.resolve() };
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 40, exportTimeoutMillis: 20 });
  const provider = new MeterProvider({ readers: [reader] });
  const meter = provider.getMeter('upstream-test');
  meter.createCounter('c').add(1);
  meter.createObservableGauge('g').addCallback(() => {
    throw new RangeError('the gauge callback blew up');
  });
  try {
    await new Promise((r) => setTimeout(r, 400));
  } finally {
    diag.disable();
  }
  // Earlier tests here leave batch processors that still report their failed exports.
  assert.deepEqual(lines.filter((l) => /metric/i.test(l)), [
    `forktrace: error: ${statusMessages.metricsCollectionFailed('RangeError: the gauge callback blew up')}`,
    `forktrace: error: ${statusMessages.metricsExportTimedOut('20')}`,
  ]);
});
