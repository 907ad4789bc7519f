/**
 * import-in-the-middle's `Hook`, as the bundled preload's instrumentations see it: the real one
 * only in a process where an ESM loader hook can be registered.
 *
 * @opentelemetry/instrumentation creates an import-in-the-middle `Hook` next to each
 * require-in-the-middle hook, for the modules an app loads with `import`. Such a hook does
 * nothing unless import-in-the-middle's loader hook is registered in the process, and loading
 * import-in-the-middle loads `worker_threads` and its dependencies, for hooks that can never fire:
 * 4.7 MB of RSS in a bare Node 24 process, mostly Node's own code paged in; in the example app,
 * which pages in much of the same code, 0.4 MB with the spool's `fs.promises` (BENCHMARKS.md,
 * change 14).
 *
 * scripts/bundle.mjs gives the instrumentation package this module in place of
 * import-in-the-middle. The real package is loaded, and the hook made, when
 * - the ESM preload (`--import forktrace/register`, register.mts) registered the loader hook, and
 *   said so with {@link ESM_LOADER};
 * - import-in-the-middle is loaded already (another preload or the app registered its hook);
 * - or the command line or NODE_OPTIONS has `--import`, `--loader` or `--experimental-loader`: a
 *   preload that runs after this one may register the loader hook, and the hooks must be there by
 *   then.
 * An app that registers import-in-the-middle's loader hook from its own code after the preload ran,
 * with none of those, gets its `import`s untraced; it can start with `--import forktrace/register`.
 */

/** Set to true on `globalThis` by register.mts once it has registered the loader hook. */
export const ESM_LOADER = Symbol.for('forktrace.esm-loader-registered');

const LOADER_FLAG = /^--(import|loader|experimental-loader)(=|$)/;
const IITM_FILE = /[\\/]node_modules[\\/]import-in-the-middle[\\/]/;

/** Whether import-in-the-middle's loader hook is, or may later be, registered in this process. */
export function esmLoaderPossible(
  execArgv: readonly string[] = process.execArgv,
  nodeOptions: string = process.env.NODE_OPTIONS ?? '',
  loaded: readonly string[] = Object.keys(require.cache),
  mark: unknown = (globalThis as Record<symbol, unknown>)[ESM_LOADER],
): boolean {
  if (mark === true) return true;
  if ([...execArgv, ...nodeOptions.split(/\s+/)].some((a) => LOADER_FLAG.test(a))) return true;
  return loaded.some((f) => IITM_FILE.test(f));
}

type HookFn = (exports: unknown, name: string, baseDir?: string) => unknown;
interface RealHook {
  unhook(): void;
}

/** What the instrumentation package uses of import-in-the-middle's `Hook`: the constructor and `unhook`. */
export class Hook {
  private readonly real: RealHook | undefined;

  constructor(modules: string[], options: object, hookFn: HookFn) {
    if (!esmLoaderPossible()) return;
    // Left outside the bundle (scripts/bundle.mjs): one module registry with the loader hook.
    const iitm = require('import-in-the-middle') as {
      Hook: new (m: string[], o: object, f: HookFn) => RealHook;
    };
    this.real = new iitm.Hook(modules, options, hookFn);
  }

  unhook(): void {
    this.real?.unhook();
  }
}
