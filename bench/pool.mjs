// Pools saved runs: for each run (a .bench-out/compare-*.json or ladder-*.json), the ratio of each
// configuration's median CPU µs per request to the untraced median of the same run; then, per
// configuration, the median of those ratios over the runs and their range. On a shared machine a
// single run's ratio moves by ±0.1; the same ratio over several runs, each side by side, moves less.
//   node bench/pool.mjs .bench-out/compare-2026-11-21T*.json [--configs a,b,c]
import * as fs from 'node:fs';
import * as path from 'node:path';

const args = process.argv.slice(2);
const ci = args.indexOf('--configs');
const only = ci >= 0 ? args[ci + 1].split(',') : undefined;
const files = args.filter((a, i) => !a.startsWith('--') && (ci < 0 || i !== ci + 1));

const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** config → { hello: [ratio per run], db: [...], runs: n, rounds: n } */
const pooled = new Map();
for (const file of files) {
  const { result } = JSON.parse(fs.readFileSync(file, 'utf8'));
  const by = new Map();
  for (const r of result.runs) {
    if (!r.hello || !r.db) continue;
    const e = by.get(r.config) ?? { hello: [], db: [] };
    e.hello.push(r.hello.cpuPerReq);
    e.db.push(r.db.cpuPerReq);
    by.set(r.config, e);
  }
  const base = by.get('untraced');
  if (!base) continue;
  for (const [config, e] of by) {
    if (config === 'untraced' || (only && !only.includes(config))) continue;
    const p = pooled.get(config) ?? { hello: [], db: [], runs: 0, rounds: 0, label: '' };
    p.hello.push(median(base.hello) / median(e.hello));
    p.db.push(median(base.db) / median(e.db));
    p.runs += 1;
    p.rounds += e.hello.length;
    p.label = result.configs.find((c) => c.name === config)?.label ?? config;
    pooled.set(config, p);
  }
}

const cell = (a) => `×${median(a).toFixed(2)} <sub>${Math.min(...a).toFixed(2)}–${Math.max(...a).toFixed(2)}</sub>`;
const lines = [
  `Pooled from ${files.length} runs (${files.map((f) => path.basename(f)).join(', ')}): per run, untraced µs ÷ traced µs per request (medians of that run's rounds); cells: median <sub>min–max</sub> over the runs.`,
  '',
  '| configuration | runs (rounds) | /hello throughput as CPU allows | /db throughput as CPU allows |',
  '|---|---|---|---|',
];
for (const [, p] of pooled) lines.push(`| ${p.label} | ${p.runs} (${p.rounds}) | ${cell(p.hello)} | ${cell(p.db)} |`);
process.stdout.write(lines.join('\n') + '\n');
