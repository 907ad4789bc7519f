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
import { createTallies, out, serveCommands } from './tallies.mjs';

const require = createRequire(import.meta.url);
const { startReceiver } = require('../dist/tools/receiver.js');

let mode = 'normal';
const port = Number(process.argv[2] || 0);
const EMPTY_RESPONSE = { status: 200, headers: { 'content-type': 'application/x-protobuf' }, body: '' };
const receiver = await startReceiver({
  port,
  respond: () => (mode === 'hang' ? 'hang' : mode === 'fast' ? EMPTY_RESPONSE : undefined),
});

const tallies = createTallies();

receiver.on('request', (r) => {
  const t = tallies.t;
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
  for (const s of spans) {
    const a = s.attributes;
    const root = s.parentSpanId === '' ? String(a['url.path'] ?? a['http.target'] ?? s.name).split('?')[0] : undefined;
    tallies.span(s.traceId, root, `${s.kind} ${s.name}`, Object.keys(a));
  }
  // Nothing else reads the kept spans; drop them so memory stays flat.
  receiver.reset();
});

out({ url: receiver.url, port: receiver.port, pid: process.pid });

const setMode = (m) => () => {
  mode = m;
  out({ mode });
};
serveCommands(tallies, () => receiver.close(), { hang: setMode('hang'), normal: setMode('normal'), fast: setMode('fast') });
