'use strict';
/**
 * pm2 ecosystem file: the example express + mysql2 app (examples/express-mysql2) in cluster mode,
 * 2 workers, traced by forktrace's CommonJS preload. Build first (`npm run build`), then:
 *
 *   pm2 start /path/to/forktrace/ecosystem.config.js     # works from any directory
 *   pm2 reload forktrace-example                          # zero downtime, zero lost spans
 *   pm2 stop forktrace-example
 *
 * What you may set in the shell that runs `pm2 start` (read here, when pm2 loads this file):
 *
 *   PORT                            port both workers share            default 3000
 *   OTEL_EXPORTER_OTLP_ENDPOINT     Collector / vendor base URL        default http://127.0.0.1:4318
 *   EXAMPLE_SERVICE_NAME            becomes OTEL_SERVICE_NAME          default forktrace-example
 *   EXAMPLE_API_KEY                 becomes FORKTRACE_API_KEY          default none
 *   FORKTRACE_SHUTDOWN_TIMEOUT_MS   forktrace's flush deadline on stop default 1000 (kill_timeout follows it)
 *
 * pm2 also copies the whole environment of the `pm2 start` shell into the app's env (keys in `env`
 * below win), so any other OTEL_* / FORKTRACE_* variable set there reaches the workers as well,
 * e.g. `OTEL_BSP_SCHEDULE_DELAY=500 pm2 start ecosystem.config.js`.
 */
const path = require('node:path');

// Absolute paths only. In cluster mode every worker's argv[1] is pm2's ProcessContainer.js and a
// `--require` is resolved from the cwd of the pm2 *daemon* (wherever it was first spawned), not
// from this file nor from `cwd` below: a relative `--require ./dist/register.js` crash-loops as
// soon as pm2 runs from another directory. In your own app use
// `require.resolve('forktrace/register')`, which resolves to the same file in node_modules.
const REGISTER = path.join(__dirname, 'dist', 'register.js');
const EXAMPLE = path.join(__dirname, 'examples', 'express-mysql2');

const blank = (v) => v === undefined || v.trim() === '';

// pm2 sends SIGINT, waits kill_timeout (default 1600 ms), then SIGKILLs. forktrace spends at most
// FORKTRACE_SHUTDOWN_TIMEOUT_MS (default 1000) flushing queued spans before letting the worker end
// the way it would have without forktrace. kill_timeout must cover that deadline plus the app's own
// drain and process exit, with room for a busy machine, or pm2 kills the worker mid-flush and the
// last spans are lost. 2000 ms of margin; a larger value only slows a stop when a worker hangs.
const SHUTDOWN_TIMEOUT_MS = blank(process.env.FORKTRACE_SHUTDOWN_TIMEOUT_MS)
  ? 1000
  : Number(process.env.FORKTRACE_SHUTDOWN_TIMEOUT_MS);
const KILL_TIMEOUT_MS = (Number.isFinite(SHUTDOWN_TIMEOUT_MS) ? SHUTDOWN_TIMEOUT_MS : 1000) + 2000;

const env = {
  NODE_ENV: 'production',
  PORT: process.env.PORT || '3000',
  // The preload runs before pm2 applies this block to process.env; forktrace reads it from
  // pm2's pm2_env instead, so OTEL_* and FORKTRACE_* keys set here take effect.
  OTEL_SERVICE_NAME: process.env.EXAMPLE_SERVICE_NAME || 'forktrace-example',
  OTEL_EXPORTER_OTLP_ENDPOINT: process.env.OTEL_EXPORTER_OTLP_ENDPOINT || 'http://127.0.0.1:4318',
  FORKTRACE_EXCLUDED_URLS: '^/health$',
};
if (!blank(process.env.EXAMPLE_API_KEY)) env.FORKTRACE_API_KEY = process.env.EXAMPLE_API_KEY;

module.exports = {
  apps: [
    {
      name: 'forktrace-example',
      script: 'server.js',
      // The app's own folder: pm2 chdirs each worker here, and forktrace finds the app's
      // package.json (service.version) from it.
      cwd: EXAMPLE,
      exec_mode: 'cluster',
      instances: 2,
      // An array, not a string: pm2 splits a string on spaces, which breaks paths with spaces.
      node_args: ['--require', REGISTER],
      kill_timeout: KILL_TIMEOUT_MS,
      env,
    },
  ],
};
