// Builds the preload (`forktrace/register`: dist/preload.js, which dist/register.js loads) as one file: the OpenTelemetry
// packages it needs, bundled. Run by `npm run build` after tsc.
//
// Why: a worker's startup is paid at every start and every pm2 reload. Loaded as separate files,
// the preload resolves, reads and compiles ~240 modules (~80 ms on the bench machine); as one
// file it loads in about half that, with the same code (BENCHMARKS.md, "Startup and memory").
// The versions bundled are the exact versions package.json pins, so the bundle and node_modules
// hold the same code; the rest of the package (`require('forktrace')`, the CLI) loads node_modules.
//
// Kept outside the bundle:
// - import-in-the-middle: the ESM loader hook (register.mjs) and the instrumentations must share
//   its one module registry, so both load it from node_modules.
import { build } from 'esbuild';
import * as fs from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// The build output to bundle in place: dist/, or another build's (the bench's baselines).
const distDir = path.resolve(process.argv[2] ?? path.join(ROOT, 'dist'));
// preload.js since the preload has its code cache (register.js is then its small loader,
// src/code-cache.ts); register.js itself in a build from before (the bench's baselines).
const entry = path.join(distDir, fs.existsSync(path.join(distDir, 'preload.js')) ? 'preload.js' : 'register.js');
const external = ['import-in-the-middle'];

/**
 * A module of dist/worker that requires files of upstream packages by a path computed at run
 * time (a package's `exports` map allows only its index). esbuild cannot follow a computed path,
 * so the bundle gets `module` as the static requires `contents(own, file)` writes, where
 * `file(pkg, name)` is a file inside `pkg`'s dist folder and `own` is the module's own exports.
 */
function byPath(module, contents) {
  return {
    name: module,
    setup(b) {
      b.onResolve({ filter: new RegExp(`[\\\\/]${module}$`) }, () => ({ path: module, namespace: module }));
      b.onLoad({ filter: /.*/, namespace: module }, () => {
        const req = createRequire(entry);
        const file = (pkg, ...parts) => JSON.stringify(path.join(path.dirname(req.resolve(pkg)), ...parts));
        return { resolveDir: ROOT, contents: contents(req(`./worker/${module}.js`), file) };
      });
    },
  };
}

// trace-transformer.js: two files of otlp-transformer, whose index also loads sdk-metrics.
const OTLP_TRANSFORMER = '@opentelemetry/otlp-transformer';
const traceTransformer = byPath('trace-transformer', (own, file) =>
  [
    `exports.ProtobufTraceSerializer = require(${file(OTLP_TRANSFORMER, ...own.TRACE_TRANSFORMER_FILES.serializer)}).ProtobufTraceSerializer;`,
    `exports.TraceExporterMetricsHelper = require(${file(OTLP_TRANSFORMER, ...own.TRACE_TRANSFORMER_FILES.metricsHelper)}).TraceExporterMetricsHelper;`,
  ].join('\n'),
);
// upstream-utils.js: the helpers of instrumentation-express and -http, for forktrace's own hot paths.
const upstreamUtils = byPath('upstream-utils', (own, file) =>
  Object.entries(own.UTILS_FILES)
    .map(([name, f]) => `exports.${name} = require(${file(f.pkg, f.file)});`)
    .join('\n'),
);

// @opentelemetry/semantic-conventions: its index defines every stable name (and the deprecated
// maps), about 200 KB that each start runs to read 34 of them. The bundle gets a module with only
// the names its other files mention (found by name, as whole words, in their source), with upstream's
// values. A name that code builds at run time would be missed; none of the bundled code does.
const SEMCONV = '@opentelemetry/semantic-conventions';
async function semconvUsed(file, plugins) {
  const probe = await build({ ...buildOptions(file, plugins), metafile: true, write: false, logLevel: 'silent' });
  const all = createRequire(entry)(SEMCONV);
  const words = new Set();
  for (const input of Object.keys(probe.metafile.inputs)) {
    if (input.includes(`node_modules/${SEMCONV}/`) || !fs.existsSync(path.join(ROOT, input))) continue;
    for (const w of fs.readFileSync(path.join(ROOT, input), 'utf8').match(/\b[A-Z][A-Z0-9_]+\b/g) ?? []) words.add(w);
  }
  const used = Object.keys(all).filter((name) => words.has(name) && typeof all[name] === 'string').sort();
  return {
    name: 'semconv-used',
    setup(b) {
      b.onResolve({ filter: new RegExp(`^${SEMCONV.replace('/', '\\/')}$`) }, () => ({ path: SEMCONV, namespace: 'semconv-used' }));
      b.onLoad({ filter: /.*/, namespace: 'semconv-used' }, () => ({
        resolveDir: ROOT,
        contents: used.map((name) => `exports.${name} = ${JSON.stringify(all[name])};`).join('\n'),
      }));
    },
  };
}

// dist/worker/metrics.js (and sdk-metrics, the metrics serializer, the Prometheus endpoint behind
// it) is loaded only when a metrics exporter is configured: kept out of the bundle, it costs an app
// without metrics nothing (bundled, 1.4 MB more idle RSS on Node 24), and an app with metrics loads
// it from dist/ and node_modules. It shares nothing with the bundle but the API globals and the
// Symbol.for keys those packages already share across copies (src/worker/untraced-servers.ts too).
const metricsOutside = {
  name: 'metrics-outside',
  setup(b) {
    b.onResolve({ filter: /^\.\/metrics$/ }, (args) =>
      args.importer.endsWith(`${path.sep}worker${path.sep}instrument.js`)
        ? { path: './worker/metrics.js', external: true }
        : undefined,
    );
  },
};

/** `name@version (license)` of every package with code in the bundle, for its header. */
function bundledPackages(metafile) {
  const found = new Map();
  for (const input of Object.keys(metafile.inputs)) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (!m || found.has(m[1])) continue;
    const dir = input.slice(0, m.index + m[0].length);
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, dir, 'package.json'), 'utf8'));
    found.set(m[1], `${pkg.name}@${pkg.version} (${pkg.license ?? 'see its package.json'})`);
  }
  return [...found.values()].sort();
}

/**
 * The preload runs from V8's code cache through `vm.Script` (src/code-cache.ts), where an `import()`
 * needs Node's default loader given as an option that prints an ExperimentalWarning into the app's
 * stderr. The bundle's only ones load a Node module (the exporter's http/https, upstream's), so
 * they become `require`s, and any other `import()` fails the build.
 */
function requireBuiltins(text, file) {
  const out = text.replace(/\bimport\("(node:)?([a-z_/]+)"\)/g, (all, node, name) =>
    builtinModules.includes(name) ? `Promise.resolve().then(() => require("${node ?? ''}${name}"))` : all,
  );
  const left = out.match(/.{0,60}\bimport\([^)]{0,40}/g);
  if (left) throw new Error(`${path.relative(ROOT, file)}: import() that the code cache cannot run: ${left.join(', ')}`);
  return out;
}

/** esbuild's options for bundling `file` in place. */
function buildOptions(file, plugins) {
  return {
    entryPoints: [file],
    absWorkingDir: ROOT,
    bundle: true,
    platform: 'node',
    target: 'node22',
    plugins,
    format: 'cjs',
    external,
    write: false,
    metafile: true,
    outfile: file,
    charset: 'ascii',
    logLevel: 'warning',
  };
}

/** Bundles `file` (a built module) in place, with the plugins given; returns its size in KB. */
async function bundle(file, plugins, what, noDynamicImport = false) {
  const result = await build(buildOptions(file, plugins));
  const header = [
    '/*',
    ` * ${what}, built by scripts/bundle.mjs from ${path.relative(ROOT, file)}.`,
    ' * It contains code of these packages, under their own licenses (their package.json and',
    ' * LICENSE files are in node_modules, installed with forktrace):',
    ...bundledPackages(result.metafile).map((p) => ` *   ${p}`),
    ...(plugins.some((p) => p.name === 'semconv-used') ? [` *   ${SEMCONV}@${JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', SEMCONV, 'package.json'), 'utf8')).version} (Apache-2.0): the names used, copied`] : []),
    ` * Loaded from node_modules instead: ${external.join(', ')}.`,
    ' */',
    '',
  ].join('\n');
  // V8 keeps a script's source for as long as its functions may still be compiled, and stores it
  // with two bytes per character if a single character is outside Latin-1: one "…" left in a kept
  // comment doubled the bundle's 0.8 MB on the heap. esbuild escapes strings (charset: 'ascii') but
  // not comments, so any such character left is escaped here.
  let text = (header + result.outputFiles[0].text).replace(
    /[^\t\n\r -~]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  if (noDynamicImport) {
    // The preload: src/code-cache.ts compiles it as a script, which gets the bundle as a function
    // from it (a build from before the prefix, as the bench's baselines, is written as it was).
    const { PRELOAD_PREFIX = '', PRELOAD_SUFFIX = '' } = createRequire(entry)('./code-cache.js');
    text = PRELOAD_PREFIX + requireBuiltins(text, file) + PRELOAD_SUFFIX;
  }
  fs.writeFileSync(file, text);
  console.log(`bundled ${path.relative(ROOT, file)}: ${(text.length / 1024).toFixed(0)} KB`);
}

// import-in-the-middle: the instrumentation package gets dist/worker/esm-hook.js in its place,
// which loads the real one only where an ESM loader hook can be registered (a CommonJS worker
// would load worker_threads and more for hooks that never fire). esm-hook.js's own require of it
// stays external.
const esmHookOnlyWithLoader = {
  name: 'esm-hook-only-with-loader',
  setup(b) {
    b.onResolve({ filter: /^import-in-the-middle$/ }, (args) =>
      args.importer.includes(`${path.sep}node_modules${path.sep}@opentelemetry${path.sep}instrumentation${path.sep}`)
        ? { path: path.join(path.dirname(entry), 'worker', 'esm-hook.js') }
        : undefined,
    );
  },
};

const preloadPlugins = [traceTransformer, upstreamUtils, metricsOutside, esmHookOnlyWithLoader];
await bundle(
  entry,
  [...preloadPlugins, await semconvUsed(entry, preloadPlugins)],
  'forktrace/register: the CommonJS preload',
  path.basename(entry) === 'preload.js',
);
// The metrics code, as one file too: an app with metrics on loads it instead of ~70 files.
await bundle(path.join(path.dirname(entry), 'worker', 'metrics.js'), [], 'forktrace metrics (loaded when on)');
