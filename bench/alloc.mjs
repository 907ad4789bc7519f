// Bytes allocated per request, and by which function, for one or more configurations:
//
//   node bench/alloc.mjs [--configs untraced,forktrace] [--route /hello] [--seconds 4] [--top 25]
//                        [--baseline DIR]   (another build, as the configuration forktrace-baseline)
//
// The app runs with bench/alloc-sampler.cjs preloaded (V8's sampling heap profiler, collected
// objects included), gets 2 s of load to warm up, then `--seconds` of load whose allocations are
// kept. Sampled every 4 KB on average: the per-function figures carry sampling noise of a few
// percent. What a request allocates is what the young-generation GC has to deal with.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { allConfigs } from './configs.mjs';
import { APP_CORE, BENCH, runLoad, sleep, spawnNode, startReceiverProcess } from './lib.mjs';

const argv = process.argv.slice(2);
const value = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : dflt;
};
const names = value('configs', 'untraced,forktrace').split(',');
const route = value('route', '/hello');
const seconds = Number(value('seconds', '4'));
const top = Number(value('top', '25'));
const baseline = value('baseline');

/** Self bytes by function ("name file:line"), from a sampling heap profile. */
function byFunction(profile) {
  const out = new Map();
  const walk = (node) => {
    const f = node.callFrame;
    const key = `${f.functionName || '(anonymous)'} ${f.url.split('/').slice(-2).join('/')}:${f.lineNumber + 1}`;
    out.set(key, (out.get(key) ?? 0) + node.selfSize);
    for (const c of node.children) walk(c);
  };
  walk(profile.head);
  return out;
}

const receiver = await startReceiverProcess();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forktrace-alloc-'));
try {
  for (const name of names) {
    const config = allConfigs(receiver.url, { baseline }).find((c) => c.name === name);
    if (!config) throw new Error(`unknown configuration ${name}`);
    const file = path.join(dir, `${name}.json`);
    const app = spawnNode(['--require', path.join(BENCH, 'alloc-sampler.cjs'), ...config.args], {
      env: { PORT: '0', ALLOC_PROFILE_OUT: file, ...config.env },
      cores: APP_CORE,
    });
    const { listening: port } = await app.ready;
    const url = `http://127.0.0.1:${port}${route}`;
    await runLoad({ url, duration: 2, connections: 16 });
    process.kill(app.pid, 'SIGUSR2'); // drops the warm-up's samples
    await sleep(500);
    const r = await runLoad({ url, duration: seconds, connections: 16 });
    fs.rmSync(file, { force: true });
    process.kill(app.pid, 'SIGUSR2');
    for (let i = 0; i < 50 && !fs.existsSync(file); i++) await sleep(100);
    await app.stop('SIGKILL', 5000);
    const fns = byFunction(JSON.parse(fs.readFileSync(file, 'utf8')));
    const total = [...fns.values()].reduce((a, b) => a + b, 0);
    console.log(`\n${config.label}: ${(total / r.responses / 1024).toFixed(1)} KB allocated per ${route} request (${r.responses} requests)`);
    for (const [fn, bytes] of [...fns].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      console.log(`${String(Math.round(bytes / r.responses)).padStart(7)} B  ${fn}`);
    }
  }
} finally {
  await receiver.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
