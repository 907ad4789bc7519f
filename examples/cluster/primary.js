'use strict';
/**
 * A node:cluster primary for the example app: forks WORKERS (default 2) workers of
 * ../express-mysql2/server.js, which share PORT. Run it traced with
 *
 *   node --require forktrace/register examples/cluster/primary.js
 *
 * Workers inherit the primary's execArgv, so the one preload flag traces every worker. The
 * primary itself stands down as soon as it forks (set FORKTRACE_INSTRUMENT_PRIMARY=true to trace
 * it too), so no span is sent twice and the primary sends none.
 *
 * Each worker gets a slot, 0..WORKERS-1, passed as FORKTRACE_WORKER_INDEX: a worker that dies is
 * replaced by one with the same slot, so `forktrace.worker.index` stays stable across restarts
 * (cluster.worker.id, Node's own number, keeps growing).
 *
 * Stop: SIGTERM or SIGINT disconnects every worker (they stop taking connections, finish the ones
 * they have, and forktrace flushes on 'disconnect'), then the primary exits once they have.
 * Prints one JSON line per fork on stdout: {"worker":slot,"pid":pid}.
 */
const cluster = require('node:cluster');
const path = require('node:path');

const WORKERS = Number(process.env.WORKERS || 2);
// A worker still running this long after disconnect (an idle database pool keeps it alive) gets SIGTERM.
const GRACE_MS = Number(process.env.GRACE_MS || 5000);

cluster.setupPrimary({ exec: path.join(__dirname, '..', 'express-mysql2', 'server.js') });

const slotOf = new Map();
let stopping = false;

function fork(slot) {
  const worker = cluster.fork({ FORKTRACE_WORKER_INDEX: String(slot) });
  slotOf.set(worker.id, slot);
  process.stdout.write(JSON.stringify({ worker: slot, pid: worker.process.pid }) + '\n');
}

cluster.on('exit', (worker, code, signal) => {
  const slot = slotOf.get(worker.id);
  slotOf.delete(worker.id);
  if (stopping) return;
  process.stderr.write(`primary: worker ${slot} (pid ${worker.process.pid}) exited (${signal || code}); restarting it\n`);
  fork(slot);
});

function stop() {
  if (stopping) return;
  stopping = true;
  for (const worker of Object.values(cluster.workers)) {
    worker.disconnect();
    setTimeout(() => worker.process.kill('SIGTERM'), GRACE_MS).unref();
  }
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

for (let slot = 0; slot < WORKERS; slot++) fork(slot);
