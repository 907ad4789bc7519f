'use strict';
/**
 * pm2 ecosystem file, ESM variant: the example app's ESM entry (server.mjs, express and mysql2
 * loaded with `import`) in cluster mode, 2 workers, traced by forktrace's `--import` preload, which
 * also registers the loader hook that `import`ed modules need to be traced. Build first, then:
 *
 *   pm2 start /path/to/forktrace/ecosystem.esm.config.js   # works from any directory
 *
 * Everything else is ecosystem.config.js (same shell variables, same kill_timeout reasoning),
 * except the service name: none is set here unless EXAMPLE_SERVICE_NAME is, so forktrace names
 * the service after the pm2 app, "forktrace-example-esm" (with one warning saying so), never after
 * pm2's ProcessContainer.
 *
 * The file stays CommonJS because pm2 loads ecosystem files with require(); the app it starts is ESM.
 */
const path = require('node:path');
const { pathToFileURL } = require('node:url');
const {
  apps: [cjs],
} = require('./ecosystem.config.js');

// An absolute file: URL. `--import` takes a URL or specifier, and in cluster mode it is resolved
// from the pm2 daemon's cwd, not from this file (see ecosystem.config.js). In your own app:
//   pathToFileURL(path.join(path.dirname(require.resolve('forktrace/package.json')), 'dist/register.mjs')).href
const REGISTER = pathToFileURL(path.join(__dirname, 'dist', 'register.mjs')).href;

const env = { ...cjs.env };
if (!process.env.EXAMPLE_SERVICE_NAME?.trim()) delete env.OTEL_SERVICE_NAME;

module.exports = {
  apps: [{ ...cjs, name: 'forktrace-example-esm', script: 'server.mjs', node_args: ['--import', REGISTER], env }],
};
