/**
 * One require-in-the-middle hook for the modules forktrace's instrumentations patch, in place of
 * @opentelemetry/instrumentation's `RequireInTheMiddleSingleton`.
 *
 * Upstream's singleton hooks every `require` of the process and gives each module's name to a trie
 * of the names instrumentations asked for. To find that name, require-in-the-middle resolves the
 * file, parses its path and resolves its package's main again, for every file the app loads: on
 * Node 24, measured on the example app's start (about 540 requires), that was most of the time
 * tracing added to a start (BENCHMARKS.md, "Startup on Node 24"). Given a list of names,
 * require-in-the-middle stops as soon as it has the package's name and it is not in the list.
 *
 * So, before forktrace creates its instrumentations, it puts this object where upstream keeps its
 * singleton (the copy of @opentelemetry/instrumentation that forktrace loads; an app's own copy is
 * not touched, unless `instrument()` runs unbundled and shares it). The instrumentations register
 * with it as they would with upstream's, and the hook starts once they are all created; a name
 * registered later only widens what it lets through.
 */
import Module from 'node:module';
import { Hook } from 'require-in-the-middle';

type RequireFn = (this: NodeJS.Module, id: string) => unknown;
type OnRequire = (exports: unknown, name: string, basedir?: string) => unknown;

/** What upstream's singleton returns for a registration. */
interface Hooked {
  moduleName: string;
  onRequire: OnRequire;
}

/** The part of upstream's `RequireInTheMiddleSingleton` class that forktrace uses. */
export interface SingletonClass {
  _instance?: unknown;
  getInstance(): unknown;
}

export class NamedModulesHook {
  /** In the order they were registered: upstream calls matching hooks in that order. */
  private readonly hooked: Hooked[] = [];
  private names: string[] = [];
  /** Whether a require may be for one of {@link names}; rebuilt when a name is added. */
  private mayBeHooked = hookedRequire([]);
  private started = false;
  private installed = false;

  /** Upstream's signature: `moduleName` is a package ("mysql2", "@scope/pkg") or a core module. */
  register(moduleName: string, onRequire: OnRequire): Hooked {
    const hooked = { moduleName, onRequire };
    this.hooked.push(hooked);
    if (!this.names.includes(moduleName)) {
      this.names = [...this.names, moduleName];
      this.mayBeHooked = hookedRequire(this.names);
      if (this.started) this.install();
    }
    return hooked;
  }

  /** Starts the hook, for the names registered so far and any registered later. */
  start(): void {
    this.started = true;
    this.install();
  }

  /** The names the hook is for. */
  get moduleNames(): readonly string[] {
    return this.names;
  }

  /**
   * One require-in-the-middle hook, and a require in front of it that passes it only the calls
   * {@link hookedRequire} lets through: require-in-the-middle needs no list of names of its own
   * (the dispatch below matches them), so a name registered later needs no new hook.
   */
  private install(): void {
    // No name, no hook: require-in-the-middle would still resolve every file the app loads.
    if (this.installed || this.names.length === 0) return;
    this.installed = true;
    const proto = Module.prototype as { require: RequireFn };
    const below = proto.require;
    new Hook(null, { internals: true }, ((exports: unknown, name: string, basedir?: string) =>
      this.onRequire(exports, name, basedir)) as never);
    const hooked = proto.require;
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the front runs as require, `this` is the module
    const self = this;
    // Module.prototype.require takes the id only.
    proto.require = function (this: NodeJS.Module, id: string) {
      return self.mayBeHooked(id, this) ? hooked.call(this, id) : below.call(this, id);
    };
  }

  /**
   * As upstream's trie: a core module (no `basedir`) matches its name only; a package's file
   * ("mysql2/lib/connection.js") matches every registration for the package and for each folder
   * above the file.
   */
  private onRequire(exports: unknown, name: string, basedir?: string): unknown {
    const normalized = name.replace(/\\/g, '/');
    let out = exports;
    for (const { moduleName, onRequire } of this.hooked) {
      if (normalized === moduleName || (basedir !== undefined && normalized.startsWith(`${moduleName}/`)))
        out = onRequire(out, name, basedir);
    }
    return out;
  }
}

/** An instrumentation, as far as {@link shareVersionLookups} reads it. */
interface ReadsVersions {
  _extractPackageVersion?: (baseDir: string) => string | undefined;
}

/**
 * Upstream reads and parses a package's package.json for every file of the package it is handed
 * (instrumentation-mysql2: about 100 files of mysql2, each read again), to check the version
 * against the supported ranges. The version of a folder does not change while the process runs:
 * the instrumentations read each folder's once, and share it.
 */
export function shareVersionLookups(instrumentations: readonly object[]): void {
  const versions = new Map<string, string | undefined>();
  for (const instrumentation of instrumentations as ReadsVersions[]) {
    const own = instrumentation._extractPackageVersion;
    if (typeof own !== 'function') continue;
    instrumentation._extractPackageVersion = (baseDir: string) => {
      if (!versions.has(baseDir)) versions.set(baseDir, own.call(instrumentation, baseDir));
      return versions.get(baseDir);
    };
  }
}

/**
 * Puts a {@link NamedModulesHook} in place of upstream's singleton, unless one was already made
 * (an instrumentation of forktrace's copy created earlier) or the class is not what forktrace
 * knows (then upstream's stays). Returns it, to be started once the instrumentations exist.
 */
export function replaceSingleton(singleton: SingletonClass | undefined): NamedModulesHook | undefined {
  if (singleton === undefined || typeof singleton.getInstance !== 'function') return undefined;
  if (singleton._instance !== undefined) return undefined;
  const hook = new NamedModulesHook();
  singleton._instance = hook;
  return hook;
}

/**
 * Whether `require(id)` from `parent` may load a file require-in-the-middle would hand over for
 * `names`. It resolves every file it is handed first, even when given a list of names, and that was
 * most of what it cost a start (Node resolves the file again right after); so the calls that cannot
 * be for a listed name skip it. It hands over a core module by its name, and a file by the folder under `node_modules` it is
 * in, so it can be for a listed name only when:
 * - `id` is that core module ("http", "node:http"), or a package's name or a path inside it
 *   ("mysql2", "mysql2/promise", "@scope/pkg/x");
 * - `id` is a relative or absolute path, and it or the requiring file's path goes through
 *   `node_modules/<name>/` (a package's own files, or a path into a package).
 */
export function hookedRequire(
  names: readonly string[],
): (id: string, parent: { filename?: string } | undefined) => boolean {
  const listed = new Set(names);
  const escaped = names.map((n) => n.replace(/[.*+?^${}()|[\]\\/]/g, (c) => (c === '/' ? '[\\\\/]' : `\\${c}`)));
  const inPackage = new RegExp(`[\\\\/]node_modules[\\\\/](?:${escaped.join('|')})(?:[\\\\/]|$)`);
  return (id, parent) => {
    if (typeof id !== 'string') return true;
    const c = id.charCodeAt(0);
    // '.', '/', or a Windows drive or UNC path
    if (c === 46 || c === 47 || c === 92 || (id.length > 1 && id.charCodeAt(1) === 58)) {
      return inPackage.test(id) || (typeof parent?.filename === 'string' && inPackage.test(parent.filename));
    }
    const bare = id.startsWith('node:') ? id.slice(5) : id;
    const slash = bare.indexOf('/');
    if (slash < 0) return listed.has(bare);
    if (bare.charCodeAt(0) !== 64) return listed.has(bare.slice(0, slash));
    const second = bare.indexOf('/', slash + 1);
    return listed.has(second < 0 ? bare : bare.slice(0, second));
  };
}
