/**
 * The preload's V8 code cache. `forktrace/register` is one bundled file (preload.js, ~0.8 MB);
 * compiling it, and the functions it runs while the app starts, is most of what the preload costs
 * a start. V8 can save that work: after the start, this writes `vm.Script#createCachedData()` (the
 * bytecode of every function compiled so far) to a file, and the next start of any app on this
 * host with the same Node, flags and forktrace build reads it instead of compiling.
 *
 * The folder: FORKTRACE_CACHE_DIR (absolute), or `forktrace-cache-<uid>` in the temporary folder;
 * FORKTRACE_CACHE_DIR=none turns the cache off. The folder must be this user's and writable by no
 * one else, and each file this user's, mode 0600: V8 runs what a cache file holds, so a file
 * someone else could write would be their code in this process. A folder that fails that check is
 * one warning and a start without cache. Nothing but compiled code is written: no setting, no
 * header, no key.
 *
 * V8 checks a cache against the source and its own version and flags, and a rejected one is
 * rewritten. Any other failure here (a full disk, an odd file) costs only the cache: the preload
 * runs as `require` would run it.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import Module from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vm from 'node:vm';
import { defaultUser, ownDir, uid, writableBy, writePrivate } from './private-dir';

/** The preload proper; `__dirname` is dist/, where tsc puts this file. */
export const PRELOAD = path.join(__dirname, 'preload.js');
/**
 * What the build puts before the bundle in preload.js (scripts/bundle.mjs), on its first line:
 * run by `require`, where the top-level `this` is `module.exports`, the file runs the bundle as any
 * CommonJS file; compiled here as a script, where `this` is the global object, its value is the
 * bundle as a function to call as `require` would. So V8 compiles and keeps the file's own text as
 * it is. Wrapped here instead, the file would be read into one string and copied into another, and
 * the dead first copy (0.7 MB) would stay until V8's next collection, which an idle app may not
 * reach (BENCHMARKS.md, change 14).
 */
export const PRELOAD_PREFIX =
  '(this === globalThis ? (f) => f : (f) => f.call(exports, exports, require, module, __filename, __dirname))(function (exports, require, module, __filename, __dirname) { ';
/** What the build puts after the bundle. */
export const PRELOAD_SUFFIX = '\n});\n';
/** The cache is written this long after the start, so that it holds what the app's start compiled too. */
export const WRITE_AFTER_MS = 10_000;
/** Cache files kept in the folder (one per Node version, flags and forktrace build). */
const KEEP = 8;
const PREFIX = 'preload-';
const SUFFIX = '.v8cache';
/** A temporary file left by a process that died while writing is removed after this long. */
const STALE_TMP_MS = 60_000;

/** The cache folder, and whether forktrace chose it; undefined when the cache is off or the value is bad (config warns). */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): { dir: string; ours: boolean } | undefined {
  const raw = env.FORKTRACE_CACHE_DIR?.trim();
  if (raw === undefined || raw === '') return { dir: defaultCacheDir(), ours: true };
  if (raw.toLowerCase() === 'none' || !path.isAbsolute(raw)) return undefined;
  return { dir: path.normalize(raw), ours: false };
}

export function defaultCacheDir(tmpdir = os.tmpdir(), user = defaultUser()): string {
  return path.join(tmpdir, `forktrace-cache-${user}`);
}

/** Node options that name files or code, not how V8 compiles: apps that differ only in these share a cache. */
const NOT_FLAGS = /^(-r|--require|--import|--loader|--experimental-loader|-e|--eval|-p|--print)(=|$)/;

/**
 * The command line's options that may change how V8 compiles (V8 rejects a cache made under other
 * flags): every option but those naming a preload or code. Approximate on purpose: at worst two
 * apps get a file each, or one cache is rejected and written again.
 */
export function flagsOf(execArgv: readonly string[], nodeOptions = ''): string[] {
  const out: string[] = [];
  const all = [...execArgv, ...nodeOptions.split(/\s+/).filter(Boolean)];
  for (let i = 0; i < all.length; i++) {
    const m = NOT_FLAGS.exec(all[i] as string);
    if (m === null) out.push(all[i] as string);
    else if (m[2] === '') i++; // its value is the next word
  }
  return out;
}

/** The file for this Node, these V8 flags and this build of the preload. */
function cacheFile(dir: string, preload: fs.Stats): string {
  const key = createHash('sha256')
    .update(
      JSON.stringify([
        process.version,
        process.arch,
        flagsOf(process.execArgv, process.env.NODE_OPTIONS),
        preload.size,
        preload.mtimeMs,
      ]),
    )
    .digest('hex')
    .slice(0, 16);
  return path.join(dir, `${PREFIX}${key}${SUFFIX}`);
}

/** The cache file's bytes, if it is a regular file of this user's that no one else can write. */
function readCache(file: string): Buffer | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | (fs.constants.O_NOFOLLOW ?? 0));
  } catch {
    return undefined;
  }
  try {
    const st = fs.fstatSync(fd);
    const me = uid();
    if (!st.isFile() || (me !== undefined && st.uid !== me) || writableBy(st) !== undefined) return undefined;
    return fs.readFileSync(fd);
  } catch {
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

/** Writes the cache, then keeps the newest {@link KEEP} files of the folder. */
function writeCache(script: vm.Script, dir: string, file: string): void {
  writePrivate(`${file}.${process.pid}.tmp`, file, script.createCachedData());
  const mine: { file: string; mtimeMs: number }[] = [];
  for (const name of fs.readdirSync(dir)) {
    if (!name.startsWith(PREFIX)) continue;
    const f = path.join(dir, name);
    const st = fs.lstatSync(f);
    if (!st.isFile()) continue;
    if (name.endsWith('.tmp')) {
      if (Date.now() - st.mtimeMs > STALE_TMP_MS) fs.rmSync(f, { force: true });
    } else if (name.endsWith(SUFFIX)) {
      mine.push({ file: f, mtimeMs: st.mtimeMs });
    }
  }
  mine.sort((a, b) => b.mtimeMs - a.mtimeMs);
  for (const old of mine.slice(KEEP)) fs.rmSync(old.file, { force: true });
}

/**
 * Runs preload.js as `require` would, from V8's code cache when there is a usable one, and writes
 * the cache {@link WRITE_AFTER_MS} after the start when there was none or V8 rejected it.
 */
export function loadPreload(parent: NodeJS.Module): void {
  let run: (() => void) | undefined;
  try {
    run = prepare(parent);
  } catch {
    run = undefined;
  }
  if (run === undefined) require(PRELOAD);
  else run();
}

/** The preload compiled with its cache, ready to run; undefined to load it plainly. */
function prepare(parent: NodeJS.Module): (() => void) | undefined {
  const where = cacheDir();
  if (where === undefined) return undefined;
  let problem = ownDir(where.dir, where.ours);
  const who = problem === undefined ? writableBy(fs.lstatSync(where.dir)) : undefined;
  if (who !== undefined) problem = `${where.dir} is writable by ${who}`;
  if (problem !== undefined) {
    process.stderr.write(
      `forktrace: warning: the preload's code cache is off (${problem}); set FORKTRACE_CACHE_DIR to a folder only you can write, or to none.\n`,
    );
    return undefined;
  }
  const file = cacheFile(where.dir, fs.statSync(PRELOAD));
  const cached = readCache(file);
  const text = fs.readFileSync(PRELOAD, 'utf8');
  // A preload.js not built by scripts/bundle.mjs gets the wrapper `require` puts around a CommonJS
  // file, on its first line so that its line numbers stay as they are.
  const source = text.startsWith(PRELOAD_PREFIX)
    ? text
    : `(function (exports, require, module, __filename, __dirname) { ${text}\n})`;
  const script = new vm.Script(source, {
    filename: PRELOAD,
    cachedData: cached,
    // No dynamic import option: the build turned the bundle's into requires (scripts/bundle.mjs), since
    // Node's default loader as this option prints an ExperimentalWarning into the app's stderr.
  });
  const mod = new Module(PRELOAD, parent);
  mod.filename = PRELOAD;
  mod.paths = parent.paths;
  return () => {
    // Registered first, as require does, so that a second require of preload.js finds it.
    require.cache[PRELOAD] = mod;
    const fn = script.runInThisContext() as (...args: unknown[]) => void;
    fn.call(mod.exports, mod.exports, Module.createRequire(PRELOAD), mod, PRELOAD, __dirname);
    mod.loaded = true;
    if (cached !== undefined && !script.cachedDataRejected) return;
    setTimeout(() => {
      try {
        writeCache(script, where.dir, file);
      } catch {
        // No cache this time: the next start compiles, and tries again.
      }
    }, WRITE_AFTER_MS).unref();
  };
}
