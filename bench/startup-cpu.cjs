'use strict';
// Loaded first by bench/startup.mjs: `node --require bench/startup-cpu.cjs [--require preload] app.js`.
// When the app's first server listens, it prints the process's CPU time so far (user + system, all
// threads) and its RSS as one stdout JSON line, {"startupCpu": µs, "rss": bytes}. CPU time is
// steadier than the time to listening on a shared machine: it does not count waiting for a core.
const http = require('node:http');

const listen = http.Server.prototype.listen;
let said = false;
http.Server.prototype.listen = function (...args) {
  if (!said) {
    this.once('listening', () => {
      if (said) return;
      said = true;
      const { user, system } = process.cpuUsage();
      process.stdout.write(JSON.stringify({ startupCpu: user + system, rss: process.memoryUsage().rss }) + '\n');
    });
  }
  return listen.apply(this, args);
};
