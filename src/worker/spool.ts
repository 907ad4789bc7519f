/**
 * The spool: spans an exit could not deliver, kept on local disk until the next forktrace process
 * of the same service on this host sends them (a pm2 restart, a redeploy).
 *
 * Layout: `<spool dir>/<service>-<hash>/<created>-<pid>-<random>.otlp`, the folders owned by the
 * user and mode 0700 (a spool dir the user chose and made keeps its own mode), each file mode 0600
 * and written once by the exiting process. A file is:
 *
 *   "FTSPOOL1" | uint32 BE header length | header JSON | body
 *
 * where the header holds the service name, the writer's pid, the time, the span count, the body's
 * encoding, length and sha256, and the body is the OTLP ExportTraceServiceRequest exactly as it
 * would have been sent. No header, key or URL is ever written: the next process sends with its
 * own configuration.
 *
 * Once and never twice: a sender claims a file by renaming it to `<file>.sending-<pid>`, which
 * only one process can do, and removes it after a 2xx answer. A claim whose process is gone is
 * taken over.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { context } from '@opentelemetry/api';
import { suppressTracing } from '@opentelemetry/core';
import type { SpoolConfig } from '../config/types';
import { errorText, postOtlp, type PostTarget } from './otlp-post';
import { folderProblem, ownDir, uid, writableBy, writePrivate, type DirProblem } from '../private-dir';

/** Why the spool cannot be used, for one warning; undefined when it can. */
export type SpoolProblem = DirProblem;

const MAGIC = Buffer.from('FTSPOOL1', 'latin1');
const SUFFIX = '.otlp';
const CLAIM = /^(.+\.otlp)\.sending-(\d+)$/;
/** A claim this old is stale whatever its pid says (a reused pid in a restarted container). */
const STALE_CLAIM_MS = 5 * 60_000;
/** Files a start looks at, at most; the size bound keeps the folder far below this. */
const MAX_FILES = 1000;
/**
 * The file calls a start makes, as promises of the callback API: `fs.promises` loads Node's whole
 * promise file API (file handles, watchers, readline), 1.5 MB of RSS in a bare Node 24 process.
 */
const files = {
  lstat: promisify(fs.lstat),
  readdir: promisify(fs.readdir),
  rename: promisify(fs.rename),
  unlink: promisify(fs.unlink),
  readFile: promisify(fs.readFile),
};

/** What the exiting process writes, besides the body. */
export interface SpoolHeader {
  v: 1;
  service: string;
  pid: number;
  createdAt: number;
  spans: number;
  encoding: 'gzip' | 'identity';
  bytes: number;
  sha256: string;
}

/** A file name for a service: a readable prefix of its name, and a hash so that any name is safe. */
export function serviceSlug(service: string): string {
  const readable = service.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 40);
  const hash = createHash('sha256').update(service).digest('hex').slice(0, 12);
  return `${readable}-${hash}`;
}

/** The service's folder in the spool. */
export function serviceDir(spool: SpoolConfig, service: string): string {
  return path.join(spool.dir, serviceSlug(service));
}

/** The service's folder, made and checked; or why it cannot be used. */
function prepareServiceDir(spool: SpoolConfig, service: string): { dir: string } | { problem: string } {
  // The default folder sits in the shared temporary folder, where anyone may have made that path
  // first: an existing folder is checked (a real folder, this user's), never trusted.
  const problem = ownDir(spool.dir, spool.chosen !== true) ?? ownDir(serviceDir(spool, service), true);
  return problem === undefined ? { dir: serviceDir(spool, service) } : { problem };
}

interface Entry {
  name: string;
  file: string;
  bytes: number;
  mtimeMs: number;
}

/** The folder's regular files, oldest first; symlinks and the rest are not ours to count. */
function listSync(dir: string): Entry[] {
  const out: Entry[] = [];
  for (const name of fs.readdirSync(dir).slice(0, MAX_FILES)) {
    const file = path.join(dir, name);
    try {
      const st = fs.lstatSync(file);
      if (st.isFile()) out.push({ name, file, bytes: st.size, mtimeMs: st.mtimeMs });
    } catch {
      // removed meanwhile by another process of the service
    }
  }
  return out.sort((a, b) => a.mtimeMs - b.mtimeMs || a.name.localeCompare(b.name));
}

export function encodeSpoolFile(header: Omit<SpoolHeader, 'bytes' | 'sha256'>, body: Uint8Array): Buffer {
  const full: SpoolHeader = {
    ...header,
    bytes: body.byteLength,
    sha256: createHash('sha256').update(body).digest('hex'),
  };
  const json = Buffer.from(JSON.stringify(full), 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(json.length, 0);
  return Buffer.concat([MAGIC, length, json, body]);
}

/** The header and body of a spool file, or why it is not one. */
function decodeSpoolFile(data: Buffer): { header: SpoolHeader; body: Buffer } | { corrupt: string } {
  if (data.length < MAGIC.length + 4 || !data.subarray(0, MAGIC.length).equals(MAGIC))
    return { corrupt: 'not a forktrace spool file' };
  const length = data.readUInt32BE(MAGIC.length);
  const start = MAGIC.length + 4;
  if (length > 64 * 1024 || start + length > data.length) return { corrupt: 'truncated header' };
  let header: SpoolHeader;
  try {
    header = JSON.parse(data.subarray(start, start + length).toString('utf8')) as SpoolHeader;
  } catch {
    return { corrupt: 'unreadable header' };
  }
  if (
    typeof header !== 'object' ||
    header === null ||
    header.v !== 1 ||
    typeof header.service !== 'string' ||
    typeof header.createdAt !== 'number' ||
    typeof header.spans !== 'number' ||
    (header.encoding !== 'gzip' && header.encoding !== 'identity') ||
    typeof header.sha256 !== 'string'
  )
    return { corrupt: 'unknown header' };
  const body = data.subarray(start + length);
  if (body.length !== header.bytes || createHash('sha256').update(body).digest('hex') !== header.sha256)
    return { corrupt: 'body does not match its checksum' };
  return { header, body };
}

/** What {@link writeSpoolSync} did. */
export type SpoolWrite = { file: string; removed: number } | { problem: string };

/**
 * Writes one exit's spans, synchronously (an exit cannot wait). Before writing, removes files
 * past the age bound, then the oldest until the new file fits the size bound.
 */
export function writeSpoolSync(
  spool: SpoolConfig,
  header: Omit<SpoolHeader, 'v' | 'bytes' | 'sha256'>,
  body: Uint8Array,
  now = Date.now(),
): SpoolWrite {
  const prepared = prepareServiceDir(spool, header.service);
  if ('problem' in prepared) return prepared;
  const data = encodeSpoolFile({ v: 1, ...header }, body);
  if (data.length > spool.maxBytes)
    return { problem: `${data.length} bytes exceed FORKTRACE_SPOOL_MAX_BYTES (${spool.maxBytes})` };
  let removed = 0;
  const remove = (e: Entry) => {
    try {
      fs.unlinkSync(e.file);
      removed++;
    } catch {
      // gone already
    }
  };
  const entries = listSync(prepared.dir);
  const kept: Entry[] = [];
  for (const e of entries) {
    if (now - e.mtimeMs > spool.maxAgeMillis) remove(e);
    else kept.push(e);
  }
  let total = kept.reduce((n, e) => n + e.bytes, 0);
  for (const e of kept) {
    if (total + data.length <= spool.maxBytes) break;
    // A file being sent right now is left to its sender; the rest, oldest first.
    if (CLAIM.test(e.name)) continue;
    remove(e);
    total -= e.bytes;
  }
  if (total + data.length > spool.maxBytes)
    return { problem: `FORKTRACE_SPOOL_MAX_BYTES (${spool.maxBytes}) is taken by files being sent` };
  const name = `${now}-${header.pid}-${randomBytes(4).toString('hex')}${SUFFIX}`;
  const tmp = path.join(prepared.dir, `.${name}.tmp`);
  try {
    writePrivate(tmp, path.join(prepared.dir, name), data);
  } catch (e) {
    try {
      fs.unlinkSync(tmp);
    } catch {
      // never created
    }
    return { problem: `cannot write to ${prepared.dir} (${errorText(e)})` };
  }
  return { file: path.join(prepared.dir, name), removed };
}

/** What a start found and did in its service's spool folder. */
export interface SpoolReport {
  delivered: { files: number; spans: number; pids: number[] };
  /** Sent, but the endpoint refused it for good (a 4xx): removed. */
  rejected: { files: number; spans: number; why: string[] };
  /** Not delivered now (endpoint down): released for a later start. */
  kept: { files: number; why: string[] };
  /** Files skipped: corrupt, another user's, another service's or past the age bound. */
  skipped: { corrupt: number; foreign: number; old: number };
  /** The folder could not be used. */
  problem?: string;
  /** Who besides the user may write to a spool dir the user chose: `group`, `others` or both. */
  writableBy?: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Sends the service's spooled files, one at a time, with this process's endpoint and headers;
 * asynchronous, off the start path, and not keeping the process alive. Never rejects.
 */
export async function deliverSpool(
  spool: SpoolConfig,
  service: string,
  target: Omit<PostTarget, 'encoding'>,
  now = Date.now,
): Promise<SpoolReport> {
  const report: SpoolReport = {
    delivered: { files: 0, spans: 0, pids: [] },
    rejected: { files: 0, spans: 0, why: [] },
    kept: { files: 0, why: [] },
    skipped: { corrupt: 0, foreign: 0, old: 0 },
  };
  const dir = serviceDir(spool, service);
  let names: string[];
  try {
    for (const d of [spool.dir, dir]) {
      const st = await files.lstat(d);
      report.problem = folderProblem(d, st);
      if (report.problem !== undefined) return report;
      if (d === spool.dir && spool.chosen === true) report.writableBy = writableBy(st);
    }
    names = (await files.readdir(dir)).slice(0, MAX_FILES).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') report.problem = `cannot read ${dir} (${errorText(e)})`;
    return report;
  }
  for (const name of names) {
    const claim = CLAIM.exec(name);
    if (!name.endsWith(SUFFIX) && !claim) continue;
    const from = path.join(dir, name);
    if (claim) {
      // Another process's claim: taken over only once that process is gone (or it is this pid,
      // reused by a restarted container).
      const pid = Number(claim[2]);
      let stale = pid === process.pid || !alive(pid);
      if (!stale) {
        try {
          stale = now() - (await files.lstat(from)).ctimeMs > STALE_CLAIM_MS;
        } catch {
          continue;
        }
      }
      if (!stale) continue;
    }
    const base = claim ? (claim[1] as string) : name;
    const claimed = path.join(dir, `${base}.sending-${process.pid}`);
    try {
      await files.rename(from, claimed);
    } catch {
      continue; // another process claimed it first
    }
    await deliverOne(spool, service, target, claimed, path.join(dir, base), report, now);
  }
  return report;
}

async function deliverOne(
  spool: SpoolConfig,
  service: string,
  target: Omit<PostTarget, 'encoding'>,
  claimed: string,
  released: string,
  report: SpoolReport,
  now: () => number,
): Promise<void> {
  const drop = () => files.unlink(claimed).catch(() => undefined);
  let data: Buffer;
  try {
    const st = await files.lstat(claimed);
    const me = uid();
    if (!st.isFile() || (me !== undefined && st.uid !== me)) {
      report.skipped.foreign++;
      return;
    }
    if (st.size > spool.maxBytes) {
      report.skipped.corrupt++;
      return drop();
    }
    data = await files.readFile(claimed);
  } catch {
    report.skipped.corrupt++;
    return;
  }
  const decoded = decodeSpoolFile(data);
  if ('corrupt' in decoded) {
    report.skipped.corrupt++;
    return drop();
  }
  const { header, body } = decoded;
  if (header.service !== service) {
    report.skipped.foreign++;
    return drop();
  }
  if (now() - header.createdAt > spool.maxAgeMillis) {
    report.skipped.old++;
    return drop();
  }
  // The spool's own request must not become a span of the app.
  const outcome = await context.with(suppressTracing(context.active()), () =>
    postOtlp({ ...target, encoding: header.encoding }, body, { unref: true }),
  );
  if (outcome.result === 'delivered') {
    report.delivered.files++;
    report.delivered.spans += header.spans;
    if (!report.delivered.pids.includes(header.pid)) report.delivered.pids.push(header.pid);
    return drop();
  }
  if (outcome.result === 'rejected') {
    report.rejected.files++;
    report.rejected.spans += header.spans;
    if (!report.rejected.why.includes(outcome.why)) report.rejected.why.push(outcome.why);
    return drop();
  }
  report.kept.files++;
  if (!report.kept.why.includes(outcome.why)) report.kept.why.push(outcome.why);
  await files.rename(claimed, released).catch(() => undefined);
}
