/**
 * ESM preload: `node --import forktrace/register app.mjs`. Registers the import-in-the-middle
 * loader hook so that modules loaded with `import` are traced, then starts tracing exactly as the
 * CommonJS preload does. Never throws.
 */
import { createRequire, register } from 'node:module';

const require = createRequire(import.meta.url);

try {
  // Hook only the modules the instrumentations ask for; hooking every module slows startup.
  const iitm = require('import-in-the-middle') as typeof import('import-in-the-middle');
  const { registerOptions, waitForAllMessagesAcknowledged } = iitm.createAddHookMessageChannel();
  register('import-in-the-middle/hook.mjs', import.meta.url, registerOptions);
  require('./register.js');
  await waitForAllMessagesAcknowledged();
} catch (e) {
  try {
    const why = e instanceof Error ? e.message : String(e);
    process.stderr.write(`forktrace: not instrumented: ${why.replace(/(\/\/)[^/\s@]+@/g, '$1***@')}\n`);
  } catch {
    // stderr is gone; nothing more to do.
  }
}
