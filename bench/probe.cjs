'use strict';
// Loaded after forktrace's preload in the bench's outage and scale modes:
// `node --require dist/register.js --require bench/probe.cjs app.js`. On SIGUSR2 it prints the
// process's span counts (handle.stats()) as one stdout JSON line, {"stats": {...}}.
// instrument() is idempotent, so this returns the handle the preload created.
const path = require('node:path');
const { instrument } = require(path.join(__dirname, '..', 'dist', 'index.js'));
process.on('SIGUSR2', () => {
  process.stdout.write(JSON.stringify({ stats: instrument().stats(), rss: process.memoryUsage().rss }) + '\n');
});
