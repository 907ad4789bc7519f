// When the bundled preload's instrumentations load import-in-the-middle (src/worker/esm-hook.ts):
// only where its ESM loader hook is, or may later be, registered. A wrong "no" leaves an ESM app's
// imports untraced; a wrong "yes" costs a CommonJS worker the modules import-in-the-middle loads.
// The whole path (a CommonJS app, an ESM app, a loader hook from another preload) runs in
// package.test.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { esmLoaderPossible, ESM_LOADER, Hook } = require('../dist/worker/esm-hook.js');

const IITM = '/srv/app/node_modules/import-in-the-middle/index.js';

test('import-in-the-middle is needed with forktrace\'s ESM preload, an ESM loader or import flag, or when already loaded', () => {
  const cases = [
    // [execArgv, NODE_OPTIONS, files loaded, mark, expected]
    [[], '', [], undefined, false],
    [['--require', '/x/register.js', '--max-old-space-size=512'], '--enable-source-maps', ['/srv/app/server.js'], undefined, false],
    [[], '', [], true, true],
    [['--import', 'forktrace/register'], '', [], undefined, true],
    [['--import=./otel.mjs'], '', [], undefined, true],
    [[], '--require x --loader ./hook.mjs', [], undefined, true],
    [['--experimental-loader=import-in-the-middle/hook.mjs'], '', [], undefined, true],
    [[], '  --experimental-loader  y.mjs ', [], undefined, true],
    [[], '', ['/srv/app/server.js', IITM], undefined, true],
    // Look-alikes that register no loader.
    [['--imports-are-not-a-flag'], '--loader-x', ['/srv/app/node_modules/import-in-the-middle-like/index.js'], 'true', false],
  ];
  for (const [argv, options, loaded, mark, expected] of cases) {
    assert.equal(esmLoaderPossible(argv, options, loaded, mark), expected, JSON.stringify([argv, options, loaded, mark]));
  }
  assert.equal(ESM_LOADER, Symbol.for('forktrace.esm-loader-registered'), 'register.mts sets this very key');
});

test('without a loader, a Hook loads nothing and unhooks as a no-op; with one, it is import-in-the-middle\'s', () => {
  // This test process has no --import or loader flag and has not loaded import-in-the-middle.
  const iitmLoaded = () => Object.keys(require.cache).some((f) => f.includes('import-in-the-middle'));
  assert.equal(iitmLoaded(), false);
  const calls = [];
  const quiet = new Hook(['express'], { internals: true }, (exports) => calls.push(exports));
  quiet.unhook();
  assert.equal(iitmLoaded(), false, 'a Hook with no loader possible loaded import-in-the-middle');

  globalThis[ESM_LOADER] = true;
  try {
    const real = new Hook(['express'], { internals: true }, (exports) => exports);
    assert.equal(iitmLoaded(), true, 'with the mark set, the Hook did not load import-in-the-middle');
    real.unhook();
  } finally {
    delete globalThis[ESM_LOADER];
  }
  assert.deepEqual(calls, []);
});
