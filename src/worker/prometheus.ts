/**
 * One Prometheus scrape endpoint for all the workers of a pm2 app or a node:cluster, in the spirit
 * of prometheus_client's multiprocess mode, with no code in the primary (pm2 runs none there):
 *
 * - Each worker keeps its cumulative totals in a file of its own in a folder per scrape port
 *   (`<pid>-<instance>.json`), rewritten every second, at every stop and, synchronously, in the
 *   `exit` event of a crash or `process.exit()`.
 * - Every worker listens on the port. In a cluster worker, `listen()` goes through the primary,
 *   which shares one socket among the workers (node:cluster "How it works"), so there is one
 *   endpoint, and any worker can answer: it reads every file and sums them.
 * - A dead worker's counters and histograms stay in the sum (folded into `archive.json`), so a
 *   counter never goes backwards across a restart, a crash or a reload; its gauges and up-down
 *   counters leave with it.
 *
 * A worker killed by SIGKILL (or the OOM killer) loses what it counted since its last write, at
 * most a second: an undercount, never a step back.
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { context as apiContext, trace, type Attributes, type Context } from '@opentelemetry/api';
import { millisToHrTime } from '@opentelemetry/core';
import {
  AggregationTemporality,
  DataPointType,
  MetricReader,
  type MetricData,
  type ResourceMetrics,
} from '@opentelemetry/sdk-metrics';
import type { PrometheusConfig } from '../config/types';
import type { Logger } from './log';
import { statusMessages } from './messages';
import {
  contentType,
  negotiate,
  render,
  type Exemplar,
  type Family,
  type FamilyType,
  type Series,
} from './prometheus-text';
import { ownDir, writePrivate } from '../private-dir';
import { serviceSlug } from './spool';
import { UNTRACED_SERVERS } from './untraced-servers';

/** How often a worker rewrites its file: what a SIGKILL can lose at most. */
const WRITE_EVERY_MS = 1000;
const FORMAT_VERSION = 1;
/** Each service's archive: `archive-<name>-<hash>.json`. */
const ARCHIVE_PREFIX = 'archive-';
/** How long a scrape waits for another worker's fold of dead files, and when a lock is stale. */
const LOCK_WAIT_MS = 500;
const STALE_LOCK_MS = 5000;

/** What one worker's file holds. */
interface Snapshot {
  v: number;
  pid: number;
  instance: string;
  service: string;
  time: number;
  families: Family[];
}

/**
 * Reads this worker's totals for the scrape endpoint: cumulative, as a scrape wants them, and
 * written to the worker's file. `collectNow` is the synchronous path for the `exit` event, where
 * no promise settles.
 */
export class SnapshotReader extends MetricReader {
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly store: SnapshotStore,
    private readonly exemplars: ExemplarStore | undefined,
  ) {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }

  protected override onInitialized(): void {
    this.timer = setInterval(() => void this.writeFresh().catch(() => undefined), WRITE_EVERY_MS).unref();
  }

  /** The families last written: what a scrape during the stop reports for this worker. */
  private last: Family[] = [];

  /** Collects and writes this worker's file; resolves with its families for the scrape. */
  async writeFresh(): Promise<Family[]> {
    if (this.closed) return this.last;
    const { resourceMetrics } = await this.collect();
    this.last = toFamilies(resourceMetrics, this.exemplars);
    this.store.write(this.last);
    return this.last;
  }

  /**
   * The same, synchronously, from the SDK's storages (upstream internals: see upstream.ts), for
   * the `exit` event. Never throws: an exit listener that throws changes the exit code.
   */
  writeNow(): void {
    if (this.closed) return;
    try {
      const rm = collectNow(this);
      if (rm !== undefined) this.store.write(toFamilies(rm, this.exemplars));
    } catch {
      // the file written a second ago stands
    }
  }

  protected override async onForceFlush(): Promise<void> {
    await this.writeFresh();
  }

  protected override async onShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.writeFresh().catch(() => undefined);
    this.closed = true;
  }
}

/** The parts of sdk-metrics 3.1's collection path that {@link collectNow} walks. */
interface CollectorInternals {
  _sharedState?: {
    resource: ResourceMetrics['resource'];
    meterSharedStates?: Map<
      unknown,
      {
        _instrumentationScope: ResourceMetrics['scopeMetrics'][number]['scope'];
        metricStorageRegistry: {
          getStorages(
            collector: unknown,
          ): Array<{ collect(collector: unknown, time: unknown): MetricData | undefined }>;
        };
      }
    >;
  };
}

/**
 * The reader's data now, without a promise: what MetricCollector.collect does, minus the
 * observable callbacks (their last values stand). Undefined if the internals moved.
 */
export function collectNow(reader: MetricReader): ResourceMetrics | undefined {
  const collector = (reader as unknown as { _sdkMetricProducer?: CollectorInternals })._sdkMetricProducer;
  const shared = collector?._sharedState;
  if (shared?.meterSharedStates === undefined) return undefined;
  try {
    const time = millisToHrTime(Date.now());
    const scopeMetrics: ResourceMetrics['scopeMetrics'] = [];
    for (const meter of shared.meterSharedStates.values()) {
      const metrics = meter.metricStorageRegistry
        .getStorages(collector)
        .map((storage) => storage.collect(collector, time))
        .filter((m): m is MetricData => m != null);
      if (metrics.length > 0) scopeMetrics.push({ scope: meter._instrumentationScope, metrics });
    }
    return { resource: shared.resource, scopeMetrics };
  } catch {
    return undefined;
  }
}

/** OpenTelemetry's cumulative data as the renderer's families; exponential histograms are left out. */
function toFamilies(rm: ResourceMetrics, exemplars: ExemplarStore | undefined): Family[] {
  const out: Family[] = [];
  for (const scope of rm.scopeMetrics) {
    for (const m of scope.metrics) {
      const { name, description, unit } = m.descriptor;
      if (m.dataPointType === DataPointType.HISTOGRAM) {
        const bounds = m.dataPoints[0]?.value.buckets.boundaries ?? [];
        out.push({
          name,
          description,
          unit,
          type: 'histogram',
          bounds,
          series: m.dataPoints.map((p) => ({
            attributes: p.attributes as Series['attributes'],
            count: p.value.count,
            sum: p.value.sum ?? 0,
            bucketCounts: [...p.value.buckets.counts],
            ...withExemplars(exemplars?.take(name, p.attributes)),
          })),
        });
      } else if (m.dataPointType === DataPointType.SUM || m.dataPointType === DataPointType.GAUGE) {
        const type: FamilyType =
          m.dataPointType === DataPointType.GAUGE ? 'gauge' : m.isMonotonic ? 'counter' : 'updowncounter';
        out.push({
          name,
          description,
          unit,
          type,
          series: m.dataPoints.map((p) => ({
            attributes: p.attributes as Series['attributes'],
            value: p.value,
            ...withExemplars(type === 'counter' ? exemplars?.take(name, p.attributes) : undefined),
          })),
        });
      }
    }
  }
  return out;
}

function withExemplars(e: Array<Exemplar | undefined> | undefined): Partial<Pick<Series, 'exemplars'>> {
  return e === undefined ? {} : { exemplars: e };
}

/** A stable key of an attribute set. */
function seriesKey(attributes: Attributes | Series['attributes']): string {
  return JSON.stringify(Object.entries(attributes).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** A scrape that cannot be answered without risking a counter going backwards: answered 503. */
export class NotNowError extends Error {}

/**
 * The folder the workers of one scrape port share: each worker's file, and one archive per
 * service of the workers that died. Files are written whole and renamed into place, so a reader
 * never sees half of one. The folder sits in the shared temporary folder by default, so it is
 * checked like the spool's (a real folder of this user's, made private), and files are created
 * without following links.
 */
export class SnapshotStore {
  readonly file: string;
  readonly dir: string;
  private readonly archive: string;
  private readonly instance = randomUUID();
  private problem: string | undefined | null = null;

  constructor(
    private readonly config: Pick<PrometheusConfig, 'dir' | 'dirChosen' | 'port'>,
    private readonly service: string,
    private readonly onProblem: (why: string) => void = () => undefined,
  ) {
    this.dir = path.join(config.dir, String(config.port));
    this.file = path.join(this.dir, `${process.pid}-${this.instance}.json`);
    this.archive = path.join(this.dir, `${ARCHIVE_PREFIX}${serviceSlug(service)}.json`);
  }

  /** Makes and checks the folder once; says once why it cannot be used. */
  private usable(): boolean {
    if (this.problem === null) {
      this.problem = ownDir(this.config.dir, !this.config.dirChosen) ?? ownDir(this.dir, true);
      if (this.problem !== undefined) this.onProblem(this.problem);
    }
    return this.problem === undefined;
  }

  write(families: Family[]): void {
    if (!this.usable()) return;
    const snapshot: Snapshot = {
      v: FORMAT_VERSION,
      pid: process.pid,
      instance: this.instance,
      service: this.service,
      time: Date.now(),
      families,
    };
    try {
      writeWhole(this.file, JSON.stringify(snapshot));
    } catch {
      // A full disk must not take the app down; the next write tries again.
    }
  }

  /**
   * The sum over this service's workers, live and dead: `own` stands for this worker's file. Dead
   * workers' files are folded into the service's archive on the way. Returns the families and
   * the names of other services whose live workers answer on this port (a mistake).
   *
   * A counter must never read lower than at the scrape before, or Prometheus takes it for a
   * reset. Three things keep the sum monotonic. Every scrape writes the answering worker's fresh
   * totals to its file, and files only grow, so whichever worker answers next reads at least what
   * this one added up. The archive and the dead files are read and folded under a lock, so no
   * reader sees a dead worker both in the archive and in its own file; and the archive names the
   * files it holds, so a file that could not be removed is never added twice. When the lock or
   * the archive cannot be had, the scrape fails (NotNowError, a 503) rather than answer low.
   */
  async sum(own: Family[]): Promise<{ families: Family[]; others: string[] }> {
    if (!this.usable()) return { families: new Totals().addAll(own, true), others: [] };
    const total = new Totals();
    total.add(own, true);
    const others = new Set<string>();
    const unlock = await this.lock();
    if (unlock === undefined) throw new NotNowError('another worker holds the folder');
    try {
      const archive = readArchive(this.archive);
      const dead: Array<{ name: string; file: string; snapshot: Snapshot }> = [];
      for (const name of safeReaddir(this.dir)) {
        if (!name.endsWith('.json') || name.startsWith(ARCHIVE_PREFIX)) continue;
        const file = path.join(this.dir, name);
        if (file === this.file) continue;
        const s = readSnapshot(file);
        if (s === undefined) continue;
        const live = alive(s.pid);
        if (s.service !== this.service) {
          if (live) others.add(s.service);
          continue;
        }
        if (live) total.add(s.families, true);
        else if (archive.folded.includes(name)) removeQuietly(file);
        else dead.push({ name, file, snapshot: s });
      }
      let families = archive.families;
      if (dead.length > 0) {
        const folded = new Totals();
        folded.add(archive.families, false);
        for (const d of dead) folded.add(d.snapshot.families, false);
        families = folded.families();
        // Names whose files are gone need no remembering.
        const names = [...archive.folded, ...dead.map((d) => d.name)].filter((n) =>
          fs.existsSync(path.join(this.dir, n)),
        );
        writeWhole(
          this.archive,
          JSON.stringify({ v: FORMAT_VERSION, service: this.service, time: Date.now(), folded: names, families }),
        );
        for (const d of dead) removeQuietly(d.file);
      }
      total.add(families, false);
    } finally {
      unlock();
    }
    return { families: total.families(), others: [...others] };
  }

  /**
   * Takes the folder's lock (a directory: mkdir either makes it or fails, atomically), waiting up
   * to LOCK_WAIT_MS; a lock older than STALE_LOCK_MS was left by a worker that died holding it.
   * Resolves with the release, or undefined when the lock could not be had.
   */
  private async lock(): Promise<(() => void) | undefined> {
    const dir = path.join(this.dir, '.lock');
    for (const end = Date.now() + LOCK_WAIT_MS; ;) {
      try {
        fs.mkdirSync(dir);
        return () => fs.rmSync(dir, { recursive: true, force: true });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') return undefined;
      }
      try {
        if (Date.now() - fs.statSync(dir).mtimeMs > STALE_LOCK_MS) fs.rmSync(dir, { recursive: true, force: true });
      } catch {
        // released meanwhile
      }
      if (Date.now() > end) return undefined;
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}

/** A service's archive: the dead workers' totals, and the files already in them. */
function readArchive(file: string): { families: Family[]; folded: string[] } {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { families: [], folded: [] };
    // Answering without the archive would step every counter back.
    throw new NotNowError(`cannot read the archive (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  try {
    const a = JSON.parse(text) as { v?: number; families?: Family[]; folded?: string[] };
    if (a.v !== FORMAT_VERSION || !Array.isArray(a.families)) throw new Error('format');
    return { families: normalize(a.families), folded: Array.isArray(a.folded) ? a.folded : [] };
  } catch {
    throw new NotNowError('the archive is not readable');
  }
}

function removeQuietly(file: string): void {
  try {
    fs.rmSync(file, { force: true });
  } catch {
    // the archive names it: it is not counted again
  }
}

/** Adds families up: counters and histograms always, gauges and up-down counters of live workers only. */
class Totals {
  private readonly byName = new Map<string, { family: Family; series: Map<string, Series> }>();

  /** `add`, then the families: for one set alone. */
  addAll(families: Family[], live: boolean): Family[] {
    this.add(families, live);
    return this.families();
  }

  add(families: Family[], live: boolean): void {
    for (const f of families) {
      if (!live && (f.type === 'gauge' || f.type === 'updowncounter')) continue;
      let entry = this.byName.get(f.name);
      if (entry === undefined) {
        entry = { family: { ...f, series: [] }, series: new Map() };
        this.byName.set(f.name, entry);
      } else if (entry.family.type !== f.type || !sameBounds(entry.family.bounds, f.bounds)) {
        continue; // another shape under the same name (a changed app): the first one seen stands
      }
      for (const s of f.series) {
        const key = seriesKey(s.attributes);
        const seen = entry.series.get(key);
        entry.series.set(key, seen === undefined ? copy(s) : plus(seen, s));
      }
    }
  }

  families(): Family[] {
    return [...this.byName.values()].map(({ family, series }) => ({ ...family, series: [...series.values()] }));
  }
}

function sameBounds(a: number[] | undefined, b: number[] | undefined): boolean {
  return (a ?? []).length === (b ?? []).length && (a ?? []).every((x, i) => x === b?.[i]);
}

function copy(s: Series): Series {
  return {
    ...s,
    ...(s.bucketCounts ? { bucketCounts: [...s.bucketCounts] } : {}),
    ...(s.exemplars ? { exemplars: [...s.exemplars] } : {}),
  };
}

function plus(a: Series, b: Series): Series {
  const out: Series = { attributes: a.attributes };
  if (a.value !== undefined || b.value !== undefined) out.value = (a.value ?? 0) + (b.value ?? 0);
  if (a.count !== undefined || b.count !== undefined) out.count = (a.count ?? 0) + (b.count ?? 0);
  if (a.sum !== undefined || b.sum !== undefined) out.sum = (a.sum ?? 0) + (b.sum ?? 0);
  if (a.bucketCounts || b.bucketCounts) {
    const n = Math.max(a.bucketCounts?.length ?? 0, b.bucketCounts?.length ?? 0);
    out.bucketCounts = Array.from({ length: n }, (_, i) => (a.bucketCounts?.[i] ?? 0) + (b.bucketCounts?.[i] ?? 0));
  }
  if (a.exemplars || b.exemplars) {
    const n = Math.max(a.exemplars?.length ?? 0, b.exemplars?.length ?? 0);
    out.exemplars = Array.from({ length: n }, (_, i) => newest(a.exemplars?.[i], b.exemplars?.[i]));
  }
  return out;
}

function newest(a: Exemplar | undefined, b: Exemplar | undefined): Exemplar | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return b.timeUnixMs > a.timeUnixMs ? b : a;
}

/** Whether a process is running: signal 0 checks without sending anything. */
function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it runs, as another user.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

function readSnapshot(file: string): Snapshot | undefined {
  try {
    const s = JSON.parse(fs.readFileSync(file, 'utf8')) as Snapshot;
    if (s.v !== FORMAT_VERSION || !Array.isArray(s.families)) return undefined;
    s.families = normalize(s.families);
    return s;
  } catch {
    return undefined;
  }
}

/** JSON writes a bucket without an exemplar as null; the renderer wants it absent. */
function normalize(families: Family[]): Family[] {
  for (const f of families)
    for (const series of f.series) if (series.exemplars) series.exemplars = series.exemplars.map((e) => e ?? undefined);
  return families;
}

/** Writes `file` whole, as the spool writes its files (spool.ts writePrivate). */
function writeWhole(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  removeQuietly(tmp);
  writePrivate(tmp, file, Buffer.from(text));
}

/**
 * The latest sampled request behind each histogram bucket (and each counter series): its trace
 * and span id, for OpenMetrics exemplars. OpenTelemetry JS records none (opentelemetry-js #5147),
 * so each recorded value is heard (metrics.ts taps the instruments) and the active span noted, when
 * it is sampled.
 */
export class ExemplarStore {
  private readonly byMetric = new Map<string, { series: Map<string, Array<Exemplar | undefined>> }>();

  /** The exemplars of a series, one per bucket (a counter: one), as of now. */
  take(metric: string, attributes: Attributes): Array<Exemplar | undefined> | undefined {
    return this.byMetric.get(metric)?.series.get(seriesKey(attributes));
  }

  /** Hears every recorded value (metrics.ts taps the instruments): notes a histogram's or counter's. */
  readonly note: RecordTap = (instrument, value, attributes, ctx) => {
    if (instrument.kind !== 'histogram' && instrument.kind !== 'counter') return;
    const span = trace.getSpan(ctx ?? apiContext.active());
    const sc = span?.spanContext();
    if (sc === undefined || (sc.traceFlags & 1) === 0) return;
    let entry = this.byMetric.get(instrument.name);
    if (entry === undefined) this.byMetric.set(instrument.name, (entry = { series: new Map() }));
    const key = seriesKey(attributes ?? {});
    let list = entry.series.get(key);
    if (list === undefined) {
      // As many series as sdk-metrics keeps by default (its cardinality limit), no more.
      if (entry.series.size >= MAX_EXEMPLAR_SERIES) return;
      entry.series.set(key, (list = []));
    }
    const bounds = instrument.kind === 'histogram' ? (instrument.bounds ?? DEFAULT_BOUNDS) : undefined;
    const i = bounds === undefined ? 0 : bucketIndex(bounds, value);
    list[i] = { value, traceId: sc.traceId, spanId: sc.spanId, timeUnixMs: Date.now() };
  };
}

/** An instrument as a tap sees it: its name, kind, and the buckets its histogram was advised. */
export interface TappedInstrument {
  name: string;
  kind: 'counter' | 'updowncounter' | 'histogram' | 'gauge';
  bounds?: number[];
}

/** Called after each value an instrument records. */
export type RecordTap = (
  instrument: TappedInstrument,
  value: number,
  attributes: Attributes | undefined,
  ctx: Context | undefined,
) => void;

const MAX_EXEMPLAR_SERIES = 2000;

/** sdk-metrics' default explicit bucket boundaries (ExplicitBucketHistogramAggregation). */
const DEFAULT_BOUNDS = [0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000];

/** The bucket a value falls in: the first bound it does not exceed (OpenTelemetry's `le`). */
function bucketIndex(bounds: readonly number[], value: number): number {
  for (let i = 0; i < bounds.length; i++) if (value <= (bounds[i] as number)) return i;
  return bounds.length;
}

/** The scrape endpoint and its state, as startMetrics keeps them. */
export interface PrometheusEndpoint {
  reader: SnapshotReader;
  /** With exemplars on, what hears each recorded value. */
  tap: RecordTap | undefined;
  /** Stops listening; the reader's shutdown writes the last totals. */
  close(): void;
}

/**
 * The scrape endpoint: a reader that keeps this worker's file, and the server that sums the
 * files. The server listens on the next turn of the event loop, once the main module has run: a
 * node:cluster primary has forked by then and stands down (instrument.ts), and must not hold the
 * port its workers share. A port in use is one warning; the app runs on.
 */
export function startPrometheus(
  config: PrometheusConfig,
  service: string,
  targetInfo: Record<string, string | number | boolean>,
  logger: Logger,
): PrometheusEndpoint {
  const exemplars = config.exemplars ? new ExemplarStore() : undefined;
  const store = new SnapshotStore(config, service, (why) => logger.warn(statusMessages.prometheusFolderUnusable(why)));
  const reader = new SnapshotReader(store, exemplars);
  let warnedOthers = false;
  const server = http.createServer((req, res) => {
    void answer(req, res).catch((e: unknown) => {
      // 503: Prometheus records a failed scrape, not a reset; the next one answers.
      if (!res.headersSent) res.writeHead(e instanceof NotNowError ? 503 : 500, { 'content-type': 'text/plain' });
      res.end(e instanceof NotNowError ? `${e.message}; scrape again\n` : undefined);
    });
  });
  UNTRACED_SERVERS.add(server);
  // Prometheus keeps its connection open between scrapes: it must not keep the worker alive.
  server.on('connection', (socket) => socket.unref());
  const answer = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' || (url !== '/metrics' && url !== '/')) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('scrape /metrics\n');
      return;
    }
    const own = await reader.writeFresh();
    const { families, others } = await store.sum(own);
    if (others.length > 0 && !warnedOthers) {
      warnedOthers = true;
      logger.warn(statusMessages.prometheusShared(config.port, service, others));
    }
    const format = negotiate(req.headers.accept);
    const body = render(families, {
      format,
      namespace: config.prefix,
      exemplars: config.exemplars,
      targetInfo,
      // Every scrape meets the same problem again: said once per interval.
      onProblem: (p) => logger.warnRateLimited(`prometheus:${p.code}:${p.metric}`, p.text),
    });
    res.writeHead(200, { 'content-type': contentType(format), 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  let closed = false;
  server.on('error', (e: NodeJS.ErrnoException) => {
    logger.warn(statusMessages.prometheusListenFailed(config.host, config.port, e.code ?? e.name));
  });
  setImmediate(() => {
    if (closed) return;
    server.listen({ host: config.host, port: config.port });
    // The endpoint must not keep a worker alive that has nothing else to do.
    server.unref();
  });
  return {
    reader,
    tap: exemplars?.note,
    close: () => {
      closed = true;
      server.close();
    },
  };
}
