/**
 * CommonJS preload: `node --require forktrace/register app.js`, or in ecosystem.config.js
 * `node_args: ['--require', require.resolve('forktrace/register')]` (pm2 resolves a bare name from its daemon's cwd). Configured by environment variables only.
 * It never throws: on any failure it prints one "not instrumented" line and the app runs.
 */
try {
  // Required inside the try: a broken install must not stop the app either. The Node version is
  // checked first, before the SDK, which may not even load on an older Node.
  if (!(require('./worker/node-version') as typeof import('./worker/node-version')).refuseOldNode()) {
    (require('./worker/instrument') as typeof import('./worker/instrument')).instrument();
  }
} catch (e) {
  try {
    const why = e instanceof Error ? e.message : String(e);
    // No secret is known here; scrub anything shaped like URL credentials all the same.
    process.stderr.write(`forktrace: not instrumented: ${why.replace(/(\/\/)[^/\s@]+@/g, '$1***@')}\n`);
  } catch {
    // stderr is gone; nothing more to do.
  }
}
