// The folder the workers of one scrape port share (src/worker/prometheus.ts SnapshotStore): what
// a scrape adds up when workers live, die and come back. The workers here are files written the
// way a worker writes its own; a dead worker is a real process that has exited, so that the
// liveness check is the real one. The end-to-end version, with pm2 and a Prometheus server, is
// test/prometheus.test.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { SnapshotStore, NotNowError } = require('../dist/worker/prometheus.js');

/** The pid of a process that has already exited. */
function deadPid() {
  return spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout.trim() * 1;
}

const requests = (count, exemplar) => ({
  name: 'http.server.request.duration',
  description: '',
  unit: 's',
  type: 'histogram',
  bounds: [0.1, 1],
  series: [{ attributes: { 'http.route': '/a' }, count, sum: count * 0.05, bucketCounts: [count, 0, 0], ...(exemplar ? { exemplars: [exemplar, undefined, undefined] } : {}) }],
});
const inFlight = (value) => ({ name: 'app.in_flight', description: '', unit: '', type: 'updowncounter', series: [{ attributes: {}, value }] });

/** A store on a fresh folder (the user's choice, port 9464), and the folder the workers share. */
/** A store in a folder of its own, removed when test `t` ends. */
function newStore(t, service = 'shop', problems = []) {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'forktrace-store-'));
  t.after(() => fs.rmSync(base, { recursive: true, force: true }));
  const store = new SnapshotStore({ dir: base, dirChosen: true, port: 9464 }, service, (why) => problems.push(why));
  fs.mkdirSync(store.dir, { recursive: true });
  return { dir: store.dir, store };
}
const archives = (dir) => fs.readdirSync(dir).filter((n) => n.startsWith('archive-'));

/** Writes a worker's file as SnapshotStore.write does, for a pid that is not this process. */
function workerFile(dir, pid, families, service = 'shop') {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `${pid}-x${pid}.json`), JSON.stringify({ v: 1, pid, instance: `x${pid}`, service, time: Date.now(), families }));
}

const countIn = (families) => families.find((f) => f.name === 'http.server.request.duration')?.series.reduce((n, s) => n + s.count, 0);

test("a dead worker's counts stay in the sum, once, scrape after scrape; its up-down counters leave with it", async (t) => {
  const { dir, store } = newStore(t);
  const gone = deadPid();
  workerFile(dir, gone, [requests(7), inFlight(4)]);
  // This worker, live: 3 requests, 1 in flight.
  const first = await store.sum([requests(3), inFlight(1)]);
  assert.equal(countIn(first.families), 10);
  assert.equal(first.families.find((f) => f.name === 'app.in_flight').series[0].value, 1, 'only the live worker is in flight');
  // The dead file was folded into the archive: counted once, from there, from now on.
  assert.deepEqual(fs.readdirSync(dir), archives(dir));
  assert.equal(archives(dir).length, 1);
  for (let i = 0; i < 3; i++) assert.equal(countIn((await store.sum([requests(3)])).families), 10, `scrape ${i + 2}`);
  // Another worker dies: the archive adds it up with the first.
  workerFile(dir, deadPid(), [requests(5)]);
  assert.equal(countIn((await store.sum([requests(4)])).families), 16);
});

test('a live worker is read from its file, never folded; another app on the same port is named, not added', async (t) => {
  const { dir, store } = newStore(t);
  workerFile(dir, process.ppid, [requests(2)]); // the test runner: alive
  workerFile(dir, process.pid, [requests(9)], 'billing'); // a live worker of another app
  workerFile(dir, deadPid(), [requests(9)], 'old-name'); // a dead one, e.g. before a rename: not named
  const { families, others } = await store.sum([requests(1)]);
  assert.equal(countIn(families), 3);
  assert.deepEqual(others, ['billing']);
  assert.ok(fs.existsSync(path.join(dir, `${process.ppid}-x${process.ppid}.json`)), 'the live worker keeps its file');
});

test("exemplars: the newest of a bucket's across workers, and a file's empty buckets read back as none", async (t) => {
  const { dir, store } = newStore(t);
  const old = { value: 0.05, traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), timeUnixMs: 1000 };
  const recent = { value: 0.07, traceId: 'c'.repeat(32), spanId: 'd'.repeat(16), timeUnixMs: 2000 };
  workerFile(dir, deadPid(), [requests(1, old)]);
  const { families } = await store.sum([requests(1, recent)]);
  const [series] = families[0].series;
  assert.deepEqual(series.exemplars, [recent, undefined, undefined]);
});

test('a lock left by a worker that died while folding is taken over once stale', async (t) => {
  const { dir, store } = newStore(t);
  workerFile(dir, deadPid(), [requests(2)]);
  const lock = path.join(dir, '.lock');
  fs.mkdirSync(lock);
  const past = new Date(Date.now() - 60_000);
  fs.utimesSync(lock, past, past);
  assert.equal(countIn((await store.sum([requests(1)])).families), 3);
  assert.deepEqual(fs.readdirSync(dir), archives(dir), 'folded, and the lock released');
});

test('a dead file the archive already holds (its removal failed) is not added again', async (t) => {
  const { dir, store } = newStore(t);
  const pid = deadPid();
  workerFile(dir, pid, [requests(4)]);
  assert.equal(countIn((await store.sum([])).families), 4);
  // As if the removal had failed: the file is back, the archive names it.
  workerFile(dir, pid, [requests(4)]);
  assert.equal(countIn((await store.sum([])).families), 4);
  assert.equal(countIn((await store.sum([])).families), 4);
});

test('a scrape that cannot have the lock, or the archive, fails (503) rather than answer low', async (t) => {
  const { dir, store } = newStore(t);
  workerFile(dir, deadPid(), [requests(2)]);
  fs.mkdirSync(path.join(dir, '.lock')); // another worker folding right now
  await assert.rejects(store.sum([]), NotNowError);
  fs.rmSync(path.join(dir, '.lock'), { recursive: true });
  assert.equal(countIn((await store.sum([])).families), 2);
  fs.writeFileSync(path.join(dir, archives(dir)[0]), '{ not json');
  await assert.rejects(store.sum([]), NotNowError);
});

test("a folder that is a symlink, or another user's, is refused with one problem; nothing is written through it", async () => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'forktrace-store-'));
  try {
    const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'forktrace-elsewhere-'));
    fs.symlinkSync(elsewhere, path.join(base, '9464'));
    const problems = [];
    const store = new SnapshotStore({ dir: base, dirChosen: true, port: 9464 }, 'shop', (why) => problems.push(why));
    store.write([requests(1)]);
    store.write([requests(2)]);
    assert.equal(problems.length, 1);
    assert.match(problems[0], /symlink/);
    assert.deepEqual(fs.readdirSync(elsewhere), []);
    assert.equal(countIn((await store.sum([requests(3)])).families), 3, 'this worker alone');
    fs.rmSync(elsewhere, { recursive: true, force: true });
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
});
