// What both of the bench's receivers keep (bench/receiver.mjs for OTLP, bench/dd-agent.mjs for
// dd-trace), so that compare.mjs reads them alike: request and byte counts, spans per trace grouped
// by the root span's path, one example of each span name with its attribute keys. And their side
// channel: stdout JSON lines, stdin commands `stats`, `reset`, `close` and any the receiver adds.
import * as readline from 'node:readline';

/** Tallies since the last reset; `extra()` returns the receiver's own fields, zeroed. */
export function createTallies(extra = () => ({})) {
  const fresh = () => ({
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
    ...extra(),
  });
  const tallies = {
    t: fresh(),
    zero() {
      tallies.t = fresh();
    },
    /** One decoded span: its trace, its root's route when it is a root, its name key and attribute keys. */
    span(traceId, rootRoute, key, attrKeys) {
      const t = tallies.t;
      t.spans++;
      t.perTrace.set(traceId, (t.perTrace.get(traceId) ?? 0) + 1);
      if (rootRoute !== undefined) t.rootRoute.set(traceId, rootRoute);
      if (!(key in t.names)) {
        t.names[key] = 0;
        t.attrKeys[key] = attrKeys.slice().sort();
      }
      t.names[key]++;
    },
    summary() {
      const { perTrace, rootRoute, ...rest } = tallies.t;
      const routes = {};
      for (const [traceId, n] of perTrace) {
        const r = (routes[rootRoute.get(traceId) ?? '(root not received)'] ??= { traces: 0, spans: 0 });
        r.traces++;
        r.spans += n;
      }
      return { ...rest, routes, rss: process.memoryUsage().rss, cpu: process.cpuUsage() };
    },
  };
  return tallies;
}

export const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

/**
 * Answers stdin commands: `stats` (tallies since the last reset), `reset` (the same, then zeroed),
 * `close` (runs `close`, then exits), and those in `more` (name → handler). Exits when stdin ends.
 */
export function serveCommands(tallies, close, more = {}) {
  readline.createInterface({ input: process.stdin }).on('line', async (line) => {
    const cmd = line.trim();
    if (cmd === 'stats') out({ stats: tallies.summary() });
    else if (cmd === 'reset') {
      out({ stats: tallies.summary() });
      tallies.zero();
    } else if (cmd === 'close') {
      await close();
      out({ closed: true });
      process.exit(0);
    } else if (cmd in more) more[cmd]();
  });
  process.stdin.on('end', () => Promise.resolve(close()).then(() => process.exit(0)));
}
