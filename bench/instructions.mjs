// Instructions per request, counted by valgrind's callgrind: a figure that does not move with
// what else the machine runs, for before/after rows on a shared machine.
//
//   node bench/instructions.mjs [--configs untraced,forktrace] [--route /hello] [--warm 3000]
//                               [--requests 3000] [--baseline DIR | --baseline-ref REF] [--variant 'name:K=V;K=V']
//
// Each configuration's app runs under callgrind (about 50 times slower). After `--warm` requests
// the counters are zeroed (callgrind_control -z), `--requests` more are sent, and the counters are
// dumped: instructions of every thread of the process (the main thread, V8's compiler and GC
// threads, libuv's pool) divided by the requests. Two configurations run at a time, one per core:
// the counts do not depend on the CPU time each gets.
//
// An instruction count is not a time: native code (zlib, memcpy) and JIT code differ in
// instructions per cycle, and a slower path can execute fewer instructions. Use it to see that a
// change removed work, and the bench's CPU time per request for what it is worth.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { allConfigs } from './configs.mjs';
import { APP, buildRef, runLoad, sleep, spawnNode, startReceiverProcess } from './lib.mjs';

const argv = process.argv.slice(2);
const value = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : dflt;
};
const values = (name) => argv.flatMap((a, i) => (a === `--${name}` && argv[i + 1] ? [argv[i + 1]] : []));

const names = value('configs', 'untraced,forktrace').split(',');
const route = value('route', '/hello');
const warm = Number(value('warm', '3000'));
const requests = Number(value('requests', '3000'));

for (const tool of ['valgrind', 'callgrind_control']) {
  if (spawnSync(tool, ['--version']).status !== 0) {
    console.error(`bench/instructions: ${tool} is not installed (Debian package valgrind)`);
    process.exit(2);
  }
}

const ref = value('baseline-ref');
// The "before" of a before/after row: another build's folder, or git REF built as
// `npm run bench -- --baseline-ref` builds it.
const baseline = ref === undefined ? value('baseline') : buildRef(ref);

const receiver = await startReceiverProcess();
const configs = allConfigs(receiver.url, { baseline, variants: values('variant') });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forktrace-callgrind-'));

/** Instructions per request of one configuration. */
async function count(name) {
  const config = configs.find((c) => c.name === name);
  if (!config) throw new Error(`unknown configuration ${name}`);
  const out = path.join(dir, `${name}.%p`);
  // spawnNode runs `node ...args`: here node is valgrind's guest, so the command is spelled out.
  const app = spawnNode([], {
    env: { PORT: '0', ...config.env },
    command: ['valgrind', ['--tool=callgrind', `--callgrind-out-file=${out}`, '--dump-instr=no', process.execPath, ...config.preload, APP]],
    timeoutMs: 240000,
  });
  const { listening: port } = await app.ready;
  const url = `http://127.0.0.1:${port}${route}`;
  await runLoad({ url, amount: warm, connections: 8 });
  await sleep(1000);
  spawnSync('callgrind_control', ['-z', String(app.pid)]);
  const r = await runLoad({ url, amount: requests, connections: 8 });
  await sleep(1000);
  spawnSync('callgrind_control', ['-d', String(app.pid)]);
  await sleep(1000);
  await app.stop('SIGKILL', 5000);
  // valgrind's %p is the pid node was started with: the same configuration may run twice at once.
  const dump = path.join(dir, `${name}.${app.pid}.1`);
  const text = fs.existsSync(dump) ? fs.readFileSync(dump, 'utf8') : '';
  const total = Number((text.match(/^(?:summary|totals): (\d+)/m) ?? [])[1]);
  if (!Number.isFinite(total)) throw new Error(`${name}: no callgrind dump; stderr: ${app.stderr.slice(-500)}`);
  return { name, label: config.label, perRequest: total / r.responses, responses: r.responses };
}

const results = [];
try {
  for (let i = 0; i < names.length; i += 2) results.push(...(await Promise.all(names.slice(i, i + 2).map(count))));
} finally {
  await receiver.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
const first = results[0];
console.log(`Node ${process.version}, ${route}, ${warm} requests to warm up, then ${requests} counted`);
console.log('| configuration | instructions per request | vs first |');
console.log('|---|---|---|');
for (const r of results) {
  const k = (r.perRequest / 1000).toFixed(1);
  console.log(`| ${r.label} | ${k} k | ${r === first ? '' : `${r.perRequest >= first.perRequest ? '+' : ''}${((r.perRequest - first.perRequest) / 1000).toFixed(1)} k`} |`);
}
