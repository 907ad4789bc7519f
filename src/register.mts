/**
 * ESM preload: `node --import forktrace/register app.mjs`. Registers the import-in-the-middle
 * loader hook so that modules loaded with `import` are traced, then starts tracing exactly as the
 * CommonJS preload does. Never throws.
 */
// A namespace import: a named `register` would fail to link, before any code runs, on a Node too
// old to have it, and the version check below must get to say so.
import * as nodeModule from 'node:module';

const require = nodeModule.createRequire(import.meta.url);

try {
  // Before the loader hook and import-in-the-middle, which may not load on an older Node.
  if (!(require('./worker/node-version.js') as typeof import('./worker/node-version.js')).refuseOldNode()) {
    // Hook only the modules the instrumentations ask for; hooking every module slows startup.
    const iitm = require('import-in-the-middle') as typeof import('import-in-the-middle');
    const { registerOptions, waitForAllMessagesAcknowledged } = iitm.createAddHookMessageChannel();
    // In-thread hooks (module.registerHooks) where Node runs import-in-the-middle's synchronous
    // loader correctly; module.register() elsewhere. Node 26 deprecates module.register() and
    // says so on stderr (DEP0205) in every process that calls it.
    const sync = (await import('import-in-the-middle/register-hooks.mjs')) as {
      supportsSyncHooks(): boolean;
      register(options: object): void;
    };
    if (sync.supportsSyncHooks()) sync.register(registerOptions.data);
    else nodeModule.register('import-in-the-middle/hook.mjs', import.meta.url, registerOptions);
    // The preload's instrumentations load import-in-the-middle only when told so (worker/esm-hook.ts).
    const { ESM_LOADER } = require('./worker/esm-hook.js') as typeof import('./worker/esm-hook.js');
    (globalThis as Record<symbol, unknown>)[ESM_LOADER] = true;
    require('./register.js');
    await waitForAllMessagesAcknowledged();
  }
} catch (e) {
  try {
    const why = e instanceof Error ? e.message : String(e);
    process.stderr.write(`forktrace: not instrumented: ${why.replace(/(\/\/)[^/\s@]+@/g, '$1***@')}\n`);
  } catch {
    // stderr is gone; nothing more to do.
  }
}
