// A controllable OTLP/HTTP endpoint for the fault tests: one port whose behaviour is switched
// while the app runs. In `ok` mode each request is forwarded to the project's real receiver
// (src/tools/receiver.ts), which decodes it; every other mode answers (or fails to) on its own.
// Every request is logged with a hash of its body: upstream's retries re-send the same bytes,
// so attempts per export are counted exactly by grouping on the hash.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import * as http from 'node:http';
import * as net from 'node:net';
import * as https from 'node:https';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { startReceiver } = require('../dist/tools/receiver.js');

const HOP_BY_HOP = new Set(['host', 'connection', 'keep-alive', 'transfer-encoding', 'content-length']);

/**
 * Modes:
 *   { kind: 'ok' }                                   forward to the decoding receiver
 *   { kind: 'status', status, headers?, body? }      answer with that status
 *   { kind: 'hang' }                                 read the body, never answer
 *   { kind: 'slow', ms }                             answer (forward) after `ms`, if the client still waits
 *   { kind: 'drip', ms, every }                      200 at once, then one body byte every `every` ms for `ms`
 *   down() / up()                                    stop listening (connection refused) / listen again
 */
export async function startFaultReceiver({ tls } = {}) {
  const inner = await startReceiver();
  const requests = []; // { at, mode, hash, bytes, status }
  const connections = []; // { at, tls }
  const open = new Set();
  let mode = { kind: 'ok' };
  let server;
  let port = 0;
  let listeningTls = tls;
  // While going down gracefully: requests already read finish normally; any other gets its
  // connection closed unread, so that a span is never both decoded and reported failed.
  let refusing = false;

  function forward(req, body, res, entry) {
    const headers = {};
    for (const [k, v] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(k)) headers[k] = v;
    const out = http.request(inner.url, { method: 'POST', headers, agent: false }, (r) => {
      const chunks = [];
      r.on('data', (c) => chunks.push(c));
      r.on('end', () => {
        entry.status = r.statusCode;
        if (res.destroyed) return;
        const close = refusing ? { connection: 'close' } : {};
        res.writeHead(r.statusCode, { 'content-type': r.headers['content-type'] ?? 'application/x-protobuf', ...close });
        res.end(Buffer.concat(chunks));
      });
    });
    out.on('error', () => res.destroy());
    out.end(body);
  }

  async function handle(req, res) {
    if (refusing) return req.socket.destroy();
    const chunks = [];
    try {
      for await (const c of req) chunks.push(c);
    } catch {
      return;
    }
    const body = Buffer.concat(chunks);
    const m = mode;
    const entry = { at: Date.now(), mode: m.kind, hash: createHash('sha1').update(body).digest('hex'), bytes: body.length, status: 0 };
    requests.push(entry);
    switch (m.kind) {
      case 'ok':
        return forward(req, body, res, entry);
      case 'status':
        entry.status = m.status;
        res.writeHead(m.status, m.headers ?? {});
        return res.end(m.body ?? '');
      case 'hang':
        return;
      case 'slow': {
        const t = setTimeout(() => {
          if (!res.destroyed && !req.socket.destroyed) forward(req, body, res, entry);
        }, m.ms);
        res.on('close', () => clearTimeout(t));
        return;
      }
      case 'drip': {
        entry.status = 200;
        res.writeHead(200, { 'content-type': 'application/x-protobuf' });
        const started = Date.now();
        const t = setInterval(() => {
          if (res.destroyed) return clearInterval(t);
          if (Date.now() - started >= m.ms) {
            clearInterval(t);
            return res.end();
          }
          res.write(Buffer.alloc(1));
        }, m.every);
        res.on('close', () => clearInterval(t));
        return;
      }
      default:
        throw new Error(`unknown mode ${m.kind}`);
    }
  }

  async function listen(useTls) {
    listeningTls = useTls;
    server = useTls ? https.createServer({ key: useTls.key, cert: useTls.cert }, handle) : http.createServer(handle);
    // Count TCP connections (a TLS handshake against a plain port never becomes a request).
    server.on('connection', (socket) => {
      connections.push({ at: Date.now(), tls: Boolean(useTls) });
      open.add(socket);
      socket.on('close', () => open.delete(socket));
    });
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
    port = server.address().port;
  }
  await listen(tls);

  const self = {
    inner,
    requests,
    connections,
    get port() {
      return port;
    },
    /** The endpoint URL; `scheme` defaults to what is listening. */
    url(scheme = listeningTls ? 'https' : 'http', host = '127.0.0.1') {
      return `${scheme}://${host}:${port}/v1/traces`;
    },
    setMode(m) {
      mode = m;
    },
    /**
     * Stops listening: new connections are refused. Open connections are dropped, or with
     * `graceful`, requests being answered finish first and the rest are closed unread.
     */
    async down({ graceful = false } = {}) {
      if (!server) return;
      const s = server;
      server = undefined;
      const closed = new Promise((r) => s.close(r));
      if (graceful) {
        refusing = true;
        s.closeIdleConnections();
      } else {
        for (const socket of open) socket.destroy();
      }
      await closed;
      refusing = false;
    },
    /** Listens again on the same port, plain or with `tls` ({ key, cert }). */
    async up(useTls = listeningTls) {
      if (server) await self.down();
      await listen(useTls);
    },
    /** Groups requests by body: each group is one export and its retries. */
    exports() {
      const groups = new Map();
      for (const r of requests) {
        const g = groups.get(r.hash) ?? [];
        g.push(r);
        groups.set(r.hash, g);
      }
      return [...groups.values()];
    },
    async close() {
      await self.down();
      await inner.close();
    },
  };
  return self;
}

// Kept here too for the files that import it from the fault receiver.
export { selfSignedCert } from './helpers.mjs';

/** One command to the app's probe; resolves with its JSON answer. */
export function probe(port, command = 'stats') {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let buf = '';
    s.setEncoding('utf8');
    s.on('data', (c) => (buf += c));
    s.on('end', () => {
      try {
        resolve(JSON.parse(buf));
      } catch (e) {
        reject(e);
      }
    });
    s.on('error', reject);
    s.write(command + '\n');
  });
}

/** GET `route` every `everyMs` until stop(); resolves stop() with the outcome of every request. */
export function load(base, everyMs = 25, route = '/hello') {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const results = [];
  const inflight = new Set();
  const timer = setInterval(() => {
    const started = Date.now();
    const p = new Promise((resolve) => {
      const req = http.get(`${base}${route}`, { agent }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode, ms: Date.now() - started }));
      });
      req.setTimeout(5000, () => req.destroy(new Error('client timeout')));
      req.on('error', (e) => resolve({ status: 0, error: e.message, ms: Date.now() - started }));
    }).then((r) => {
      results.push(r);
      inflight.delete(p);
    });
    inflight.add(p);
  }, everyMs);
  return {
    results,
    async stop() {
      clearInterval(timer);
      await Promise.all(inflight);
      agent.destroy();
      const ms = results.map((r) => r.ms).sort((a, b) => a - b);
      return {
        requests: results.length,
        ok: results.filter((r) => r.status === 200).length,
        errors: results.filter((r) => r.status !== 200).slice(0, 3),
        p99: ms[Math.floor(ms.length * 0.99)] ?? 0,
        max: ms[ms.length - 1] ?? 0,
      };
    },
  };
}

