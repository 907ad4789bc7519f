'use strict';
// The example app under node:cluster with BENCH_WORKERS workers, for the 1-vs-2-workers rows of
// `npm run bench -- --scale`. Workers inherit the primary's --require (forktrace traces them;
// the primary stands down) and each prints the app's own {"listening", "pid"} line.
const cluster = require('node:cluster');
const path = require('node:path');

if (cluster.isPrimary) {
  const n = Number(process.env.BENCH_WORKERS || 1);
  for (let i = 0; i < n; i++) cluster.fork();
  // Stop the workers with the primary, the way pm2 and most cluster scripts do.
  process.on('SIGTERM', () => {
    for (const w of Object.values(cluster.workers)) w.process.kill('SIGTERM');
    let left = n;
    cluster.on('exit', () => --left === 0 && process.exit(0));
  });
} else {
  require(path.join(__dirname, '..', 'examples', 'express-mysql2', 'server.js'));
}
