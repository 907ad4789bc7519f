// Crash delivery (issue 12), measured: `npm run build && node bench/crash.mjs [--rounds=5]`.
// Prints a Markdown report; BENCHMARKS.md "Crash delivery" quotes a run.
//
// 1. mechanisms: how long the `exit` event takes to hand over one request body of a full queue,
//    without forktrace: spawnSync of a node sender, a worker thread waited for with
//    Atomics.wait, a synchronous write to a file;
// 2. end to end: test/fixtures/crash-app.js serves `requests` /hello, then /crash; time from the
//    crash request to the exit (the client's view), untraced and per FORKTRACE_EXIT_DELIVERY,
//    and traces received out of those sent; the endpoint up, refusing, or blackholed;
// 3. the spool file of a full queue (2048 spans), for the disk bound;
// 4. the hot path: what tracking open spans adds to a span's start and end.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { ROOT, sleep, spawnNode } from './lib.mjs';

const require = createRequire(import.meta.url);
const { startReceiver } = require('../dist/tools/receiver.js');
const { serviceDir } = require('../dist/worker/spool.js');
const APP = path.join(ROOT, 'test', 'fixtures', 'crash-app.js');
const REGISTER = path.join(ROOT, 'dist', 'register.js');
const ROUNDS = Number(/--rounds=(\d+)/.exec(process.argv.join(' '))?.[1] ?? 5);
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'forktrace-bench-crash-'));
const SPOOL = path.join(TMP, 'spool');
process.once('exit', () => fs.rmSync(TMP, { recursive: true, force: true }));
/** A crash ends within the 1 s stop deadline; a run still going long after that is a failure. */
const EXIT_TIMEOUT_MS = 10_000;

const execFileAsync = promisify(execFile);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const range = (xs) => `${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)}`;
const out = [];
const say = (line = '') => {
  out.push(line);
  console.log(line);
};

function get(port, p) {
  return new Promise((resolve) => {
    http
      .get(`http://127.0.0.1:${port}${p}`, { agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      })
      .on('error', (e) => resolve(e.code));
  });
}

/** One run of the crash app; resolves { ms, code }. Fails when it does not start or end in time. */
async function crashRun({ traced, env, requests, service }) {
  const app = spawnNode([...(traced ? ['--require', REGISTER] : []), APP], {
    env: { OTEL_SERVICE_NAME: service, OTEL_BSP_SCHEDULE_DELAY: '60000', OTEL_BSP_MAX_QUEUE_SIZE: '4096', FORKTRACE_SPOOL_DIR: SPOOL, ...env },
  });
  const { listening: port } = await app.ready;
  for (let i = 0; i < requests; i += 16) await Promise.all(Array.from({ length: Math.min(16, requests - i) }, () => get(port, '/hello')));
  let at;
  app.child.once('exit', () => (at = performance.now()));
  const sent = performance.now();
  void get(port, '/crash');
  const ended = await Promise.race([app.exited, sleep(EXIT_TIMEOUT_MS).then(() => undefined)]);
  if (ended === undefined) {
    app.child.kill('SIGKILL');
    throw new Error(`${service}: still running ${EXIT_TIMEOUT_MS} ms after the crash request; stderr: ${app.stderr.slice(-2000)}`);
  }
  return { ms: at - sent, code: ended.code };
}

/** The spool files of `service` and the spans their headers count ("FTSPOOL1" | uint32 BE length | header JSON | body). */
function spooled(service) {
  const dir = serviceDir({ dir: SPOOL }, service);
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.otlp')) : [];
  let spans = 0;
  for (const f of files) {
    const data = fs.readFileSync(path.join(dir, f));
    spans += JSON.parse(data.subarray(12, 12 + data.readUInt32BE(8)).toString('utf8')).spans;
  }
  return { files: files.length, spans };
}

// 1. mechanisms
async function mechanisms() {
  // A plain server that reads the body and answers 200: the hand-over alone, no decoding.
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end());
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const receiver = { close: () => new Promise((resolve) => server.close(resolve)) };
  const body = Buffer.alloc(68_000, 7); // a gzipped full queue (section 3)
  const { port } = server.address();
  const scripts = {
    'spawnSync(node sender)': `
      const { spawnSync } = require('node:child_process');
      const code = "const h=require('node:http');const c=[];process.stdin.on('data',d=>c.push(d));process.stdin.on('end',()=>{const r=h.request({host:'127.0.0.1',port:${port},method:'POST',path:'/v1/traces'},s=>{s.resume();s.on('end',()=>process.exit(0))});r.on('error',()=>process.exit(4));r.end(Buffer.concat(c))})";
      process.on('exit', () => { const t = performance.now(); spawnSync(process.execPath, ['-e', code], { input: Buffer.alloc(${body.length}, 7), timeout: 1000, env: {} }); require('fs').writeSync(1, String(performance.now() - t)); });`,
    'worker thread + Atomics.wait': `
      const { Worker } = require('node:worker_threads');
      process.on('exit', () => { const t = performance.now(); const sab = new SharedArrayBuffer(4); const f = new Int32Array(sab);
        new Worker("const {workerData:w}=require('node:worker_threads');const f=new Int32Array(w.sab);const r=require('node:http').request({host:'127.0.0.1',port:${port},method:'POST',path:'/v1/traces'},s=>{s.resume();s.on('end',()=>{Atomics.store(f,0,1);Atomics.notify(f,0)})});r.end(Buffer.alloc(${body.length},7))", { eval: true, workerData: { sab }, execArgv: [], env: {} });
        Atomics.wait(f, 0, 0, 1000); require('fs').writeSync(1, String(performance.now() - t)); });`,
    'writeFileSync (spool)': `
      process.on('exit', () => { const t = performance.now(); require('fs').writeFileSync(${JSON.stringify(path.join(TMP, 'w'))} + process.pid, Buffer.alloc(${body.length}, 7), { mode: 0o600 }); require('fs').writeSync(1, String(performance.now() - t)); });`,
  };
  say('| hand-over inside `exit` (68 KB body, endpoint on 127.0.0.1) | ms, median (range) |');
  say('|---|---|');
  for (const [name, script] of Object.entries(scripts)) {
    const ms = [];
    // Spawned asynchronously: the server above runs in this process.
    for (let i = 0; i < ROUNDS * 2; i++) ms.push(Number((await execFileAsync(process.execPath, ['-e', script])).stdout));
    say(`| ${name} | ${median(ms).toFixed(1)} (${range(ms)}) |`);
  }
  await receiver.close();
}

// 2. end to end
async function endToEnd() {
  const up = await startReceiver();
  const hung = await startReceiver({ respond: () => 'hang' });
  const refused = `http://127.0.0.1:1/v1/traces`;
  say('| run | requests before the crash | crash request → exit, ms median (range) | traces received / sent (spans spooled / sent) |');
  say('|---|---|---|---|');
  const rows = [
    ['untraced', false, {}, up],
    ['send (default), endpoint up', true, {}, up],
    ['spool, endpoint up', true, { FORKTRACE_EXIT_DELIVERY: 'spool' }, up],
    ['off', true, { FORKTRACE_EXIT_DELIVERY: 'off' }, up],
    ['send, endpoint refusing', true, { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: refused }, undefined],
    ['send, endpoint blackholed', true, { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: hung.url }, undefined],
  ];
  for (const requests of [19, 1000]) {
    for (const [name, traced, env, receiver] of rows) {
      const ms = [];
      let received = 0;
      const spool = { files: 0, spans: 0 };
      for (let r = 0; r < ROUNDS; r++) {
        const service = `bench-${name.replace(/\W+/g, '-')}-${requests}-${r}`;
        receiver?.reset();
        const run = await crashRun({ traced, requests, service, env: { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: up.url, ...env } });
        if (run.code !== 1) throw new Error(`${name}: exit code ${run.code}`);
        ms.push(run.ms);
        await new Promise((resolve) => setTimeout(resolve, 100));
        received += receiver ? new Set(receiver.spans.map((s) => s.traceId)).size : 0;
        if (!receiver) {
          const s = spooled(service);
          spool.files += s.files;
          spool.spans += s.spans;
        }
      }
      const sent = (requests + 1) * ROUNDS;
      // Two spans a request: the server span and the express handler's.
      const outcome = receiver
        ? traced
          ? `${received} / ${sent}`
          : '–'
        : `spooled: ${spool.files} file(s) of ${ROUNDS} crash(es), ${spool.spans} / ${2 * sent} spans`;
      say(`| ${name} | ${requests} | ${median(ms).toFixed(0)} (${range(ms)}) | ${outcome} |`);
    }
  }
  await up.close();
  await hung.close();
}

// 3. the spool file of a full queue
async function spoolSize() {
  const service = 'bench-spool-size';
  await crashRun({ traced: true, requests: 1023, service, env: { FORKTRACE_EXIT_DELIVERY: 'spool' } });
  const dir = serviceDir({ dir: SPOOL }, service);
  const [file] = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.otlp')) : [];
  if (file === undefined) throw new Error(`${service}: the crash spooled nothing`);
  const bytes = fs.statSync(path.join(dir, file)).size;
  say(`Spool file of one crash with 1024 traces (2048 spans) queued: ${bytes} bytes (${(bytes / 2048).toFixed(1)} bytes/span, gzip).`);
}

// 4. hot path
function hotPath() {
  const { TracerProvider } = require('@opentelemetry/sdk-trace');
  const { OpenSpans } = require('../dist/worker/exit.js');
  const noop = { onStart() {}, onEnd() {}, forceFlush: () => Promise.resolve(), shutdown: () => Promise.resolve() };
  const measure = (processors) => {
    const tracer = new TracerProvider({ spanProcessors: processors }).getTracer('bench');
    const n = 200_000;
    for (let i = 0; i < n; i++) tracer.startSpan('warm').end();
    const t = process.hrtime.bigint();
    for (let i = 0; i < n; i++) tracer.startSpan('x').end();
    return Number(process.hrtime.bigint() - t) / n;
  };
  const base = [];
  const tracked = [];
  // Alternated, each against the same number of processors (the SDK loops over them).
  for (let r = 0; r < ROUNDS * 2; r++) {
    base.push(measure([noop, { ...noop }]));
    tracked.push(measure([noop, new OpenSpans()]));
  }
  say(`Span start + end: ${median(base).toFixed(0)} ns with a no-op processor in its place, ${median(tracked).toFixed(0)} ns with open-span tracking (median of ${ROUNDS * 2}, alternated).`);
  // The tracking alone, 64 spans open at a time.
  const alone = [];
  const spans = Array.from({ length: 1000 }, () => ({}));
  for (let r = 0; r < ROUNDS * 2; r++) {
    const open = new OpenSpans();
    const n = 2_000_000;
    const t = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      open.onStart(spans[i % 1000]);
      if (i >= 64) open.onEnd(spans[(i - 64) % 1000]);
    }
    alone.push(Number(process.hrtime.bigint() - t) / n);
  }
  say(`Open-span tracking alone: ${median(alone).toFixed(0)} ns per span (range ${range(alone)}).`);
}

say(`Node ${process.version}, ${os.cpus().length} cores, ${ROUNDS} rounds.`);
say();
await mechanisms();
say();
await endToEnd();
say();
await spoolSize();
hotPath();
