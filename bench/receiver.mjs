// The bench's OTLP receiver, in its own process: dist/tools/receiver.js startReceiver (real protobuf
// decoding), keeping only tallies so that memory stays flat however long the run.
//
// Side channel: stdout JSON lines. The first is {"url": ...}. Then each stdin line is a command:
//   stats  → {"stats": {...}}      tallies since the last reset
//   reset  → {"stats": {...}}      the same, then zero the tallies
//   hang   → from now on read bodies and never answer (blackhole, for --outage)
//   fast   → answer 200 at once without decoding (export ceiling, for --scale; counts only bytes)
//   normal → answer normally again
//   close  → stop listening (connection refused) and exit
import { createRequire } from 'node:module';
import * as readline from 'node:readline';

const require = createRequire(import.meta.url);
const { startReceiver } = require('../dist/tools/receiver.js');

let mode = 'normal';
const port = Number(process.argv[2] || 0);
const EMPTY_RESPONSE = { status: 200, headers: { 'content-type': 'application/x-protobuf' }, body: '' };
const receiver = await startReceiver({
  port,
  respond: () => (mode === 'hang' ? 'hang' : mode === 'fast' ? EMPTY_RESPONSE : undefined),
});

let t;
function zero() {
  t = {
    requests: 0,
    okRequests: 0,
    failedRequests: 0,
    hungRequests: 0,
    spans: 0,
    wireBytes: 0,
    bodyBytes: 0,
    encodings: {},
    // traceId -> spans seen; traceId -> the root span's route (roots end last, so they arrive last).
    perTrace: new Map(),
    rootRoute: new Map(),
    names: {},
    attrKeys: {},
  };
}
zero();

receiver.on('request', (r) => {
  t.requests++;
  if (r.status === 200) t.okRequests++;
  else if (r.status === 0) t.hungRequests++;
  else t.failedRequests++;
  t.encodings[r.contentEncoding || 'identity'] = (t.encodings[r.contentEncoding || 'identity'] ?? 0) + 1;
  if (r.status === 200) {
    t.wireBytes += r.wireBytes;
    t.bodyBytes += r.bodyBytes;
  }
});

receiver.on('spans', (spans) => {
  t.spans += spans.length;
  for (const s of spans) {
    t.perTrace.set(s.traceId, (t.perTrace.get(s.traceId) ?? 0) + 1);
    if (s.parentSpanId === '') {
      const a = s.attributes;
      const path = a['url.path'] ?? a['http.target'] ?? s.name;
      t.rootRoute.set(s.traceId, String(path).split('?')[0]);
    }
    // One example of each span name with its attribute keys: what the defaults produce.
    const key = `${s.kind} ${s.name}`;
    if (!(key in t.names)) {
      t.names[key] = 0;
      t.attrKeys[key] = Object.keys(s.attributes).sort();
    }
    t.names[key]++;
  }
  // Nothing else reads the kept spans; drop them so memory stays flat.
  receiver.reset();
});

function summary() {
  const routes = {};
  for (const [traceId, n] of t.perTrace) {
    const route = t.rootRoute.get(traceId) ?? '(root not received)';
    const r = (routes[route] ??= { traces: 0, spans: 0 });
    r.traces++;
    r.spans += n;
  }
  const { perTrace: _p, rootRoute: _r, ...rest } = t;
  return { ...rest, routes, rss: process.memoryUsage().rss, cpu: process.cpuUsage() };
}

const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
out({ url: receiver.url, port: receiver.port, pid: process.pid });

readline.createInterface({ input: process.stdin }).on('line', async (line) => {
  const cmd = line.trim();
  if (cmd === 'stats') out({ stats: summary() });
  else if (cmd === 'reset') {
    out({ stats: summary() });
    zero();
  } else if (cmd === 'hang' || cmd === 'normal' || cmd === 'fast') {
    mode = cmd;
    out({ mode });
  } else if (cmd === 'close') {
    await receiver.close();
    out({ closed: true });
    process.exit(0);
  }
});
process.stdin.on('end', () => receiver.close().then(() => process.exit(0)));
