/**
 * CommonJS preload: `node --require forktrace/register app.js`, or in ecosystem.config.js
 * `node_args: ['--require', require.resolve('forktrace/register')]` (pm2 resolves a bare name from its daemon's cwd). Configured by environment variables only.
 * It never throws: on any failure it prints one "not instrumented" line and the app runs.
 *
 * This file only loads the preload proper (preload.js), through V8's code cache (code-cache.ts)
 * on a Node forktrace supports; on an older one preload.js says why it does nothing.
 */
let plain = true;
try {
  if (!(require('./worker/node-version') as typeof import('./worker/node-version')).nodeTooOld(process.version)) {
    plain = false;
    (require('./code-cache') as typeof import('./code-cache')).loadPreload(module);
  }
} catch {
  plain = true;
}
// preload.js catches everything itself; once it ran, require returns it without running it again.
if (plain) require('./preload');
