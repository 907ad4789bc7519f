// A stand-in for the Datadog agent, for the `ddtrace` configuration: it answers dd-trace's trace
// endpoints (PUT /v0.4/traces and /v0.5/traces, msgpack) on 127.0.0.1 and keeps the same tallies as
// bench/receiver.mjs (spans, bytes, spans per trace grouped by the root span's path), so that the
// report reads both alike. Anything else dd-trace asks for is answered 404 and counted under
// `otherPaths`, so a run shows whether a network feature was left on.
//
// Side channel as bench/receiver.mjs: stdout JSON lines, first {"url": ...}; stdin commands
// stats | reset | close.
import * as http from 'node:http';
import { createTallies, out, serveCommands } from './tallies.mjs';

/**
 * A msgpack decoder for what dd-trace's encoders write (packages/dd-trace/src/encode/0.4.js,
 * 0.5.js): maps, arrays, strings, ints, floats, nil, booleans, bin. uint64 (trace and span ids) is
 * kept as a hex string, the only use being equality.
 */
function decode(buf) {
  let i = 0;
  const u8 = () => buf[i++];
  const str = (n) => {
    const s = buf.toString('utf8', i, i + n);
    i += n;
    return s;
  };
  const bin = (n) => {
    const b = buf.subarray(i, i + n);
    i += n;
    return b;
  };
  const arr = (n) => {
    const a = new Array(n);
    for (let k = 0; k < n; k++) a[k] = value();
    return a;
  };
  const map = (n) => {
    const o = {};
    for (let k = 0; k < n; k++) {
      const key = value();
      o[key] = value();
    }
    return o;
  };
  const read = (fn, n) => {
    const v = buf[fn](i);
    i += n;
    return v;
  };
  function value() {
    const b = u8();
    if (b <= 0x7f) return b;
    if (b >= 0xe0) return b - 0x100;
    if ((b & 0xf0) === 0x80) return map(b & 0x0f);
    if ((b & 0xf0) === 0x90) return arr(b & 0x0f);
    if ((b & 0xe0) === 0xa0) return str(b & 0x1f);
    switch (b) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
        return bin(read('readUInt8', 1));
      case 0xc5:
        return bin(read('readUInt16BE', 2));
      case 0xc6:
        return bin(read('readUInt32BE', 4));
      case 0xca:
        return read('readFloatBE', 4);
      case 0xcb:
        return read('readDoubleBE', 8);
      case 0xcc:
        return read('readUInt8', 1);
      case 0xcd:
        return read('readUInt16BE', 2);
      case 0xce:
        return read('readUInt32BE', 4);
      case 0xcf: {
        const hex = buf.toString('hex', i, i + 8);
        i += 8;
        return hex;
      }
      case 0xd0:
        return read('readInt8', 1);
      case 0xd1:
        return read('readInt16BE', 2);
      case 0xd2:
        return read('readInt32BE', 4);
      case 0xd3:
        return Number(read('readBigInt64BE', 8));
      case 0xd9:
        return str(read('readUInt8', 1));
      case 0xda:
        return str(read('readUInt16BE', 2));
      case 0xdb:
        return str(read('readUInt32BE', 4));
      case 0xdc:
        return arr(read('readUInt16BE', 2));
      case 0xdd:
        return arr(read('readUInt32BE', 4));
      case 0xde:
        return map(read('readUInt16BE', 2));
      case 0xdf:
        return map(read('readUInt32BE', 4));
      default:
        throw new Error(`msgpack: unsupported byte 0x${b.toString(16)} at ${i - 1}`);
    }
  }
  return value();
}

const ZERO_ID = new Set([0, '0000000000000000']);
const KIND = { internal: 1, server: 2, client: 3, producer: 4, consumer: 5 };

/** A v0.4 or v0.5 payload as traces of plain spans { traceId, parentId, name, resource, meta }. */
function spansOf(version, payload) {
  if (version === '0.5') {
    // [string table, traces]; a span is a 12-element array whose strings are table indexes.
    const [strings, traces] = payload;
    const s = (k) => strings[k];
    return traces.map((t) =>
      t.map((x) => ({
        traceId: x[3],
        parentId: x[5],
        name: s(x[1]),
        resource: s(x[2]),
        meta: Object.fromEntries(Object.entries(x[9] ?? {}).map(([k, v]) => [s(Number(k)), s(v)])),
        metrics: Object.fromEntries(Object.entries(x[10] ?? {}).map(([k, v]) => [s(Number(k)), v])),
      })),
    );
  }
  return payload.map((t) =>
    t.map((x) => ({
      traceId: x.trace_id,
      parentId: x.parent_id,
      name: x.name,
      resource: x.resource,
      meta: x.meta ?? {},
      metrics: x.metrics ?? {},
    })),
  );
}

// Root spans by sampling priority (1 AUTO_KEEP, 2 USER_KEEP; 0/-1 would be dropped by an agent).
const tallies = createTallies(() => ({ otherPaths: {}, priorities: {}, decodeErrors: 0 }));

const RESPONSE = JSON.stringify({ rate_by_service: {} });
const server = http.createServer((req, res) => {
  const m = /^\/v(0\.[45])\/traces$/.exec(req.url ?? '');
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const t = tallies.t;
    if (!m || (req.method !== 'PUT' && req.method !== 'POST')) {
      const key = `${req.method} ${req.url}`;
      t.otherPaths[key] = (t.otherPaths[key] ?? 0) + 1;
      res.writeHead(404).end();
      return;
    }
    const body = Buffer.concat(chunks);
    t.requests++;
    t.okRequests++;
    t.wireBytes += body.length;
    t.bodyBytes += body.length;
    t.encodings.msgpack = (t.encodings.msgpack ?? 0) + 1;
    try {
      for (const trace of spansOf(m[1], decode(body))) {
        for (const s of trace) {
          let root;
          if (ZERO_ID.has(s.parentId)) {
            const url = s.meta['http.url'];
            root = url ? new URL(url, 'http://x').pathname : s.resource;
            const p = s.metrics._sampling_priority_v1 ?? 'none';
            t.priorities[p] = (t.priorities[p] ?? 0) + 1;
          }
          tallies.span(s.traceId, root, `${KIND[s.meta['span.kind']] ?? 0} ${s.name}`, Object.keys(s.meta));
        }
      }
    } catch {
      t.decodeErrors++;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(RESPONSE);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(Number(process.argv[2] || 0), '127.0.0.1', () => {
  const { port } = server.address();
  out({ url: `http://127.0.0.1:${port}`, port, pid: process.pid });
});

serveCommands(tallies, () => {
  server.close();
  server.closeAllConnections();
});
