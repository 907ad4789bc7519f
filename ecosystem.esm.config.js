'use strict';
/**
 * pm2 ecosystem file, ESM variant: the example app's ESM entry (server.mjs, express and mysql2
 * loaded with `import`) in cluster mode, 2 workers, traced by forktrace's `--import` preload, which
 * also registers the loader hook that `import`ed modules need to be traced. Build first, then:
 *
 *   pm2 start /path/to/forktrace/ecosystem.esm.config.js   # works from any directory
 *
 * The same shell variables as ecosystem.config.js apply (PORT, OTEL_EXPORTER_OTLP_ENDPOINT,
 * EXAMPLE_API_KEY, FORKTRACE_SHUTDOWN_TIMEOUT_MS), except the service name: none is set here, so
 * forktrace names the service after the pm2 app, "forktrace-example-esm" (with one warning saying
 * so), never after pm2's ProcessContainer. Set EXAMPLE_SERVICE_NAME to choose one.
 *
 * The file stays CommonJS (`.js` in a `"type": "commonjs"` package) because pm2 loads ecosystem
 * files with require(); the app it starts is ESM.
 */
const path = require('node:path');
const { pathToFileURL } = require('node:url');

// An absolute file: URL. `--import` takes a URL or specifier, and in cluster mode it is resolved
// from the pm2 daemon's cwd, not from this file (see ecosystem.config.js). In your own app:
//   pathToFileURL(path.join(path.dirname(require.resolve('forktrace/package.json')), 'dist/register.mjs')).href
const REGISTER = pathToFileURL(path.join(__dirname, 'dist', 'register.mjs')).href;
const EXAMPLE = path.join(__dirname, 'examples', 'express-mysql2');

const blank = (v) => v === undefined || v.trim() === '';

// See ecosystem.config.js: SIGKILL must not come before forktrace's flush deadline has passed.
const SHUTDOWN_TIMEOUT_MS = blank(process.env.FORKTRACE_SHUTDOWN_TIMEOUT_MS)
  ? 1000
  : Number(process.env.FORKTRACE_SHUTDOWN_TIMEOUT_MS);
const KILL_TIMEOUT_MS = (Number.isFinite(SHUTDOWN_TIMEOUT_MS) ? SHUTDOWN_TIMEOUT_MS : 1000) + 2000;

const env = {
  NODE_ENV: 'production',
  PORT: process.env.PORT || '3000',
  OTEL_EXPORTER_OTLP_ENDPOINT: process.env.OTEL_EXPORTER_OTLP_ENDPOINT || 'http://127.0.0.1:4318',
  FORKTRACE_EXCLUDED_URLS: '^/health$',
};
if (!blank(process.env.EXAMPLE_SERVICE_NAME)) env.OTEL_SERVICE_NAME = process.env.EXAMPLE_SERVICE_NAME;
if (!blank(process.env.EXAMPLE_API_KEY)) env.FORKTRACE_API_KEY = process.env.EXAMPLE_API_KEY;

module.exports = {
  apps: [
    {
      name: 'forktrace-example-esm',
      script: 'server.mjs',
      cwd: EXAMPLE,
      exec_mode: 'cluster',
      instances: 2,
      node_args: ['--import', REGISTER],
      kill_timeout: KILL_TIMEOUT_MS,
      env,
    },
  ],
};
