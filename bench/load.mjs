// The load generator, in its own process (pinned away from the app by run.mjs): autocannon with
// a fixed number of connections for a fixed time. argv[2] is a JSON object:
//   { url, duration (s), connections, paths?: ['/hello', '/db'] (cycled per connection),
//     rate?: requests per second in all (autocannon's overallRate; default: as fast as answered),
//     amount?: this many requests in all instead of a duration }
// Prints one JSON line with what the bench reads.
import autocannon from 'autocannon';

const o = JSON.parse(process.argv[2]);
const opts = {
  url: o.url,
  connections: o.connections,
  pipelining: 1,
};
if (o.rate) opts.overallRate = o.rate;
if (o.amount) opts.amount = o.amount;
else opts.duration = o.duration;
if (o.paths) opts.requests = o.paths.map((path) => ({ method: 'GET', path }));

const started = process.hrtime.bigint();
const r = await autocannon(opts);
const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
const responses = r['1xx'] + r['2xx'] + r['3xx'] + r['4xx'] + r['5xx'];
process.stdout.write(
  JSON.stringify({
    responses,
    ok: r['2xx'],
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    duration: r.duration,
    elapsed,
    rps: responses / r.duration,
    p50: r.latency.p50,
    p99: r.latency.p99,
    max: r.latency.max,
    cpu: process.cpuUsage(),
  }) + '\n',
);
