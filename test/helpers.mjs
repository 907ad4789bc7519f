// Shared by the tests: spawning real processes (and only killing those), the local MariaDB, HTTP.
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as net from 'node:net';
import * as http from 'node:http';
import * as https from 'node:https';
import { fileURLToPath } from 'node:url';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { after, before } from 'node:test';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const DIST = path.join(ROOT, 'dist');
export const REGISTER_CJS = path.join(DIST, 'register.js');
export const REGISTER_ESM = path.join(DIST, 'register.mjs');
export const EXAMPLE = path.join(ROOT, 'examples', 'express-mysql2');
export const MYSQL_URL = process.env.MYSQL_URL || 'mysql://root@127.0.0.1:3306/test';

/**
 * Whether MariaDB/MySQL answers at MYSQL_URL. Under CI=true a missing database fails the test
 * (CI must prove the mysql2 path); elsewhere the caller skips with this reason.
 */
export async function mysqlReachable() {
  const u = new URL(MYSQL_URL);
  const ok = await new Promise((resolve) => {
    const s = net.connect({ host: u.hostname, port: Number(u.port || 3306) });
    s.setTimeout(1500);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.once('timeout', () => {
      s.destroy();
      resolve(false);
    });
  });
  if (!ok && process.env.CI === 'true') {
    throw new Error(`MySQL is not reachable at ${u.host} and CI=true: start it (start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd) or set MYSQL_URL`);
  }
  return ok;
}

// The apps' spool (spans an exit could not send) goes to a folder of this test file's own, never
// to the user's default one: a test must neither leave spans there nor send the user's.
const SPOOL_DIR = path.join(os.tmpdir(), `forktrace-test-spool-${process.pid}`);
process.once('exit', () => fs.rmSync(SPOOL_DIR, { recursive: true, force: true }));

/**
 * process.env without the developer's own OTEL_/FORKTRACE_/pm2 settings, plus `extra`; the spool
 * in a folder of the test file's own (`FORKTRACE_SPOOL_DIR: ''` in `extra` gives the default).
 */
export function cleanEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(OTEL_|FORKTRACE_|PM2_|pm2_|NODE_OPTIONS$|NODE_ENV$|NODE_APP_INSTANCE$|pm_id$)/.test(k)) continue;
    env[k] = v;
  }
  return { ...env, FORKTRACE_SPOOL_DIR: SPOOL_DIR, ...extra };
}

const started = new Set();
// A test file that ends without reaching its after() hooks (a failed before(), a timeout) must
// not leave its apps running: kill what is left, by pid, as the process exits.
process.once('exit', () => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/**
 * Spawns `node ...args` and collects its output. `ready` (a RegExp or a JSON key) resolves
 * `proc.ready` with the first matching stdout JSON line. The process is killed by pid at `kill()`
 * or when the test file ends. `execPath`: another Node binary than the one running the tests.
 */
export function spawnNode(args, { env = {}, cwd = ROOT, readyKey = 'listening', timeoutMs = 15000, execPath = process.execPath } = {}) {
  const child = spawn(execPath, args, { cwd, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  started.add(child);
  let stdout = '';
  let stderr = '';
  const lines = [];
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "${readyKey}" line within ${timeoutMs} ms; stderr: ${stderr}`)), timeoutMs);
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      for (const line of chunk.split('\n')) {
        if (!line.startsWith('{')) continue;
        try {
          const obj = JSON.parse(line);
          lines.push(obj);
          if (readyKey in obj) {
            clearTimeout(timer);
            resolve(obj);
          }
        } catch {
          // not one of ours
        }
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`exited (${code ?? signal}) before "${readyKey}"; stderr: ${stderr}`));
    });
  });
  ready.catch(() => {});
  child.stderr.on('data', (c) => (stderr += c));
  const exited = once(child, 'exit').then(([code, signal]) => {
    started.delete(child);
    return { code, signal };
  });
  return {
    child,
    pid: child.pid,
    ready,
    exited,
    lines,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    kill(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Kills every process spawnNode started that is still running; for `after()` hooks. */
export async function killStarted() {
  await Promise.all(
    [...started].map((c) => {
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      return once(c, 'exit').catch(() => {});
    }),
  );
}

/**
 * Polls `predicate` (sync or async) every `everyMs` until it returns something truthy, and
 * resolves with that. Past `timeoutMs` it fails with what it waited for: `what` is a string, or a
 * function for what is known only then (an app's output).
 */
export async function waitUntil(predicate, { timeoutMs = 10_000, what = 'a condition', everyMs = 50 } = {}) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > end) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'function' ? what() : what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** GET with node:http (no keep-alive), resolving { status, body, headers }. */
export function get(url, headers = {}) {
  return send(url, { headers });
}

/** A request with node:http (no keep-alive) and an optional body, resolving { status, body, headers }. */
export function send(url, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode, body: text, headers: res.headers }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A free TCP port on 127.0.0.1. */
export async function freePort() {
  const s = net.createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

/** Span lookups on what the receiver decoded. */
export const byName = (spans, name) => spans.filter((s) => s.name === name);
export const childrenOf = (spans, parent) => spans.filter((s) => s.parentSpanId === parent.spanId && s.traceId === parent.traceId);
export const SERVER = 2;
export const CLIENT = 3;
export const INTERNAL = 1;

/** Attributes that differ from one connection to the next: left out of {@link traceShapes}. */
export const PER_CONNECTION = new Set(['network.peer.port', 'client.port', 'network.peer.address', 'client.address', 'server.port']);

/**
 * Each trace of `service` as sorted lines "parent > name (kind) status attributes events", keyed by
 * its root's path and query: what two runs of one app must agree on, without timings and ids.
 */
export function traceShapes(spans, service) {
  const mine = spans.filter((s) => s.resource['service.name'] === service);
  const byId = new Map(mine.map((s) => [s.spanId, s]));
  const traces = new Map();
  for (const s of mine) {
    const attrs = Object.entries(s.attributes)
      .filter(([k]) => !PER_CONNECTION.has(k))
      .sort(([a], [b]) => a.localeCompare(b));
    const events = (s.events ?? []).map((e) => `${e.name}:${e.attributes?.['exception.message'] ?? ''}`);
    const parent = byId.get(s.parentSpanId)?.name ?? '-';
    const line = `${parent} > ${s.name} (${s.kind}) ${s.status?.code ?? 0}:${s.status?.message ?? ''} ${JSON.stringify(attrs)} ${events.join(',')}`;
    (traces.get(s.traceId) ?? traces.set(s.traceId, []).get(s.traceId)).push(line);
  }
  const out = {};
  for (const [traceId, lines] of traces) {
    const root = mine.find((s) => s.traceId === traceId && s.kind === SERVER && !byId.has(s.parentSpanId));
    const q = root?.attributes['url.query'];
    out[root ? root.attributes['url.path'] + (q ? `?${q}` : '') : traceId] = lines.sort();
  }
  return out;
}

/**
 * For a test file that sends its apps' spans to one receiver: starts it before the file's tests
 * and, after them, kills the apps the file started and closes it. The returned object stands for
 * the receiver once the tests run (`receiver.url`, `.reset()`, `.waitFor()`, …).
 */
export function receiverForThisFile() {
  let started;
  before(async () => {
    const { startReceiver } = createRequire(import.meta.url)('../dist/tools/receiver.js');
    started = await startReceiver();
  });
  after(async () => {
    await killStarted();
    await started?.close();
  });
  return new Proxy(
    {},
    {
      get(_target, key) {
        if (started === undefined) throw new Error('the receiver starts in before(); use it inside a test');
        const value = started[key];
        return typeof value === 'function' ? value.bind(started) : value;
      },
    },
  );
}

/**
 * A self-signed certificate made with the openssl CLI in a temporary folder: by default for
 * localhost and 127.0.0.1. Returns { key, cert, keyFile, certFile, dir }, or undefined when openssl
 * is missing; under CI=true a missing openssl fails instead, so that no TLS test is skipped there.
 */
export function selfSignedCert({ cn = 'localhost', san = 'DNS:localhost,IP:127.0.0.1' } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forktrace-tls-'));
  const keyFile = path.join(dir, 'key.pem');
  const certFile = path.join(dir, 'cert.pem');
  try {
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', `/CN=${cn}`, '-addext', `subjectAltName=${san}`],
      { stdio: 'ignore' },
    );
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true });
    if (process.env.CI === 'true') throw new Error(`openssl could not make a certificate and CI=true: install openssl (${e.message})`);
    return undefined;
  }
  return { key: fs.readFileSync(keyFile), cert: fs.readFileSync(certFile), keyFile, certFile, dir };
}

/**
 * An https endpoint on 127.0.0.1 that answers every POST with an empty OTLP response, with a
 * certificate from {@link selfSignedCert} (`cert` its options); closed, and the certificate removed,
 * after test `t`. Returns { certFile, endpoint, requests() }, or undefined when openssl is missing
 * (and CI is not set; selfSignedCert throws there).
 */
export async function tlsOtlpServer(t, cert = {}) {
  const made = selfSignedCert(cert);
  if (made === undefined) return undefined;
  t.after(() => fs.rmSync(made.dir, { recursive: true, force: true }));
  let requests = 0;
  const server = https.createServer({ key: made.key, cert: made.cert }, (req, res) => {
    requests++;
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  return { certFile: made.certFile, endpoint: `https://127.0.0.1:${server.address().port}`, requests: () => requests };
}

/**
 * The installed @opentelemetry/api loaded again as new module instances, with a ROOT_CONTEXT of its
 * own that nothing in this process has touched; the require cache is put back as it was.
 */
export function freshApi() {
  const req = createRequire(import.meta.url);
  const main = req.resolve('@opentelemetry/api');
  const dir = path.dirname(main);
  const ours = () => Object.keys(req.cache).filter((k) => k.startsWith(dir));
  const kept = Object.fromEntries(ours().map((k) => [k, req.cache[k]]));
  for (const k of ours()) delete req.cache[k];
  try {
    return req(main);
  } finally {
    for (const k of ours()) delete req.cache[k];
    Object.assign(req.cache, kept);
  }
}
