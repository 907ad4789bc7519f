/**
 * Exits that cannot wait: an uncaught exception, an unhandled rejection that Node makes fatal,
 * and `process.exit()` called by the app. None of them lets an asynchronous export finish, so
 * the queued spans die with the process (the stop paths, src/worker/lifecycle.ts, can wait: signals,
 * pm2's message, cluster disconnect, beforeExit). Here, inside the process's `exit` event, which
 * all three reach and which runs synchronous code only:
 *
 * 1. the spans still open end; those of the trace whose code threw get status ERROR and an
 *    `exception` event (recorded by `uncaughtExceptionMonitor`, which runs before Node's own
 *    handling and, unlike an `uncaughtException` listener, changes nothing in it: pm2's
 *    ProcessContainer exits the worker only when its own listener is the only one);
 * 2. every span queued or in flight is serialized and gzipped as the exporter would (span-bytes.ts
 *    requestBody);
 * 3. `send`: a short-lived sender process (dist/worker/exit-sender.js) run by `spawnSync` posts it, within
 *    what is left of `shutdownTimeoutMillis`; what it cannot deliver, and everything in `spool`
 *    mode, is written to the spool (src/worker/spool.ts) for the next start of the service.
 *
 * Chosen by measurement (BENCHMARKS.md "Crash delivery"): handing a full queue (68 KB) over
 * inside `exit` took 46–61 ms by `spawnSync` of a node sender and 32–60 ms by a worker thread
 * waited for with Atomics.wait (medians, Node 22–26), a synchronous file write under 1 ms. The
 * sender process won on what the numbers do not show: `spawnSync` kills it at the deadline, and
 * it starts clean, without the dying process's heap, preloads, loader hooks or environment. The
 * file write is the fallback, and the `spool` mode. Nothing is printed on success, so an exit's
 * error output is Node's own; nothing runs on the hot path but the open-span set below.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { context, SpanStatusCode, trace, type Context, type Exception } from '@opentelemetry/api';
import type { ReadableSpan, Span, SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace';
import { spoolConfig, type ResolvedConfig } from '../config/resolve';
import { EXIT_SENDER } from '../paths';
import type { QueuedSpan } from './exporter';
import type { Logger } from './log';
import { exitMessages, spoolMessages } from './messages';
import { errorText, SENDER_EXIT_CODE, type PostOutcome, type PostTarget } from './otlp-post';
import { requestBody, type EncodedSpan } from './span-bytes';
import { deliverSpool, serviceDir, writeSpoolSync } from './spool';

/** Set on every span the exit ended: it did not end by itself. */
export const ATTR_ENDED_AT_EXIT = 'forktrace.ended_at_exit';

/**
 * Kept out of the sender's share of the deadline: the spool write (under 1 ms measured) and the
 * process's own end, so that a blackholed endpoint still adds less than the deadline in all
 * (measured: 975–1061 ms with 50 ms kept, at the 1000 ms default).
 */
const SPOOL_RESERVE_MS = 100;
/** Below this, a sender process could hardly start (measured: 40–80 ms to deliver). */
const MIN_SEND_MS = 100;

/**
 * Spans tracked at most: a span the app never ends would otherwise be held here for good, where
 * without forktrace it is garbage once unreferenced. Past this, new spans are not tracked and an
 * exit does not end them.
 */
const MAX_OPEN_SPANS = 10_000;
/** Slots at first; doubled when they run out, up to {@link MAX_OPEN_SPANS}. */
const INITIAL_SLOTS = 64;

/** Where a tracked span sits in {@link OpenSpans}; set on the SDK's span object. */
const SLOT = Symbol('forktrace.openSpanSlot');
type Tracked = Span & { [SLOT]?: number };

/**
 * The spans started and not yet ended, so that an exit can end them.
 *
 * Held in slots that are reused, not in a `Set` or an array that grows and shrinks: measured on
 * Node 24 under the bench's load (`node bench/gc.mjs`), a `Set` (add at start, delete at end) made
 * 3.4 % of what the app allocates survive a young-generation GC instead of 1.1 %, and V8 grew the
 * young generation to 2 × 64 MB instead of 2 × 32 MB (+47 MB RSS after load). An array with push
 * and pop did the same (3.8 %), and so did a `Set` of `WeakRef`s (3.3 %); slots written and
 * cleared in place, 1.4 %. Why V8 keeps more alive when a container of young objects is resized
 * under it was not found; the slots avoid it.
 */
export class OpenSpans implements SpanProcessor {
  private slots: Array<Tracked | undefined> = new Array<Tracked | undefined>(INITIAL_SLOTS).fill(undefined);
  /** Slots handed out so far; those below it and not in `free` hold a span. */
  private used = 0;
  private free: number[] = [];

  onStart(span: Span, _ctx: Context): void {
    let at = this.free.pop();
    if (at === undefined) {
      if (this.used === this.slots.length) {
        if (this.used >= MAX_OPEN_SPANS) return;
        const more = Math.min(this.used, MAX_OPEN_SPANS - this.used);
        this.slots = this.slots.concat(new Array<Tracked | undefined>(more).fill(undefined));
      }
      at = this.used++;
    }
    this.slots[at] = span;
    (span as Tracked)[SLOT] = at;
  }

  onEnd(span: ReadableSpan): void {
    const tracked = span as Tracked;
    const at = tracked[SLOT];
    if (at === undefined || this.slots[at] !== tracked) return;
    this.slots[at] = undefined;
    tracked[SLOT] = undefined;
    this.free.push(at);
  }

  /** The spans open now. */
  get spans(): Span[] {
    const open: Span[] = [];
    for (let i = 0; i < this.used; i++) {
      const span = this.slots[i];
      if (span !== undefined) open.push(span);
    }
    return open;
  }

  forceFlush(): Promise<void> {
    return Promise.resolve();
  }

  shutdown(): Promise<void> {
    this.slots = new Array<Tracked | undefined>(INITIAL_SLOTS).fill(undefined);
    this.used = 0;
    this.free = [];
    return Promise.resolve();
  }
}

/** What each exporter has not delivered yet: queued in its batch processor or in flight. */
export interface Backlog {
  /** Encoded when they ended (src/worker/span-bytes.ts). */
  otlp: EncodedSpan[];
  others: Array<{ exporter: { export: SpanExporter['export'] }; spans: QueuedSpan[] }>;
}

export interface ExitDeliveryOptions {
  config: Pick<
    ResolvedConfig,
    | 'exitDelivery'
    | 'shutdownTimeoutMillis'
    | 'serviceName'
    | 'endpoint'
    | 'headers'
    | 'compression'
    | 'certificateFile'
    | 'spoolDir'
    | 'spoolMaxBytes'
    | 'spoolMaxAgeMillis'
    | 'sources'
  >;
  /** The spans: the open ones and the exporters' backlog; none when only metrics are delivered. */
  spans?: { open: OpenSpans; backlog(): Backlog };
  /**
   * The OTLP metrics recorded since their last successful export, serialized, and where they go:
   * sent after the spans, within the same deadline, in `send` mode only, and never spooled (the
   * next start is another worker, with series of its own).
   */
  metrics?():
    | {
        body: Uint8Array;
        endpoint: string;
        headers: Record<string, string>;
        compression: 'gzip' | 'none';
        certificateFile?: string;
      }
    | undefined;
  logger: Logger;
  /**
   * When a stop (a signal, pm2's message, cluster disconnect) began, if one did: an app with its
   * own stop handler exits later with process.exit(), and that exit must keep to the stop's
   * deadline, not start one of its own (pm2's SIGKILL counts from the signal).
   */
  stopStartedAt(): number | undefined;
}

export interface ExitDelivery {
  /** Removes the exit's hooks. */
  uninstall(): void;
  /**
   * Delivers now, synchronously, what an exit would: for an end that is not an exit (a re-raised
   * signal). Each span is handed over once, however often this and the exit run; metrics once.
   */
  deliverNow(): void;
}

/** Installs the exit delivery. */
export function installExitDelivery(o: ExitDeliveryOptions): ExitDelivery {
  // The failing trace is marked at once: the exit that follows ends its spans, and an app whose
  // own uncaughtException listener survives the error keeps a trace that says what happened.
  const onCrash = (error: unknown) => {
    try {
      const span = trace.getSpan(context.active());
      if (span !== undefined && o.spans) markTrace(o.spans.open, span.spanContext().traceId, error);
    } catch {
      // never in the way of Node's own handling
    }
  };
  const handedOver: HandedOver = { spans: new WeakSet(), metrics: false };
  const onExit = () => {
    try {
      deliverAtExit(o, handedOver);
    } catch {
      // An exit listener that throws changes the exit code and the error output.
    }
  };
  process.on('exit', onExit);
  if (o.spans === undefined) return { uninstall: () => process.removeListener('exit', onExit), deliverNow: onExit };
  const { open } = o.spans;
  process.on('uncaughtExceptionMonitor', onCrash);
  const uninstallRejections = followRejectionListeners(open);
  const uninstall = () => {
    process.removeListener('uncaughtExceptionMonitor', onCrash);
    process.removeListener('exit', onExit);
    uninstallRejections();
  };
  return { uninstall, deliverNow: onExit };
}

/** What a delivery at exit has handed over already: the queue still holds those spans. */
interface HandedOver {
  spans: WeakSet<object>;
  metrics: boolean;
}

/** The items of `list` not handed over yet, now marked as handed over. */
function notYetHandedOver<T extends object>(list: T[], handedOver: HandedOver): T[] {
  const fresh = list.filter((x) => !handedOver.spans.has(x));
  for (const x of fresh) handedOver.spans.add(x);
  return fresh;
}

/**
 * An unhandled rejection that some listener takes (pm2 cluster mode's ProcessContainer logs it)
 * is not fatal: the request that made it hangs until its client gives up, and upstream then ends
 * its span as if nothing happened (status unset, code 200). So, while another listener exists,
 * forktrace listens too and marks the open spans of that trace ERROR with the exception event.
 * Never alone: a listener of forktrace's own would make every unhandled rejection non-fatal.
 */
function followRejectionListeners(open: OpenSpans): () => void {
  const EVENT = 'unhandledRejection';
  const onRejection = (reason: unknown) => {
    try {
      const active = trace.getSpan(context.active());
      if (active === undefined) return;
      markTrace(open, active.spanContext().traceId, reason);
    } catch {
      // never in the way of the app's own listener
    }
  };
  const others = () => process.listeners(EVENT).filter((l) => l !== onRejection).length;
  const onNew = (event: string | symbol, listener: unknown) => {
    if (event === EVENT && listener !== onRejection && !process.listeners(EVENT).includes(onRejection))
      process.on(EVENT, onRejection);
  };
  const onRemoved = (event: string | symbol) => {
    if (event === EVENT && others() === 0) process.removeListener(EVENT, onRejection);
  };
  process.on('newListener', onNew);
  process.on('removeListener', onRemoved);
  if (others() > 0) process.on(EVENT, onRejection);
  return () => {
    process.removeListener('newListener', onNew);
    process.removeListener('removeListener', onRemoved);
    process.removeListener(EVENT, onRejection);
  };
}

/** The open spans of `traceId` get status ERROR and the exception event. */
function markTrace(open: OpenSpans, traceId: string, error: unknown): void {
  for (const span of open.spans) {
    if (span.ended || span.spanContext().traceId !== traceId) continue;
    span.recordException(asException(error));
    span.setStatus({ code: SpanStatusCode.ERROR, message: describe(error) });
  }
}

function endOpenSpans(open: OpenSpans): void {
  for (const span of open.spans) {
    if (span.ended) continue;
    span.setAttribute(ATTR_ENDED_AT_EXIT, true);
    span.end();
  }
}

function deliverAtExit(o: ExitDeliveryOptions, handedOver: HandedOver): void {
  const started = Date.now();
  if (o.spans) deliverSpansAtExit(o, o.spans, started, handedOver);
  if (o.config.exitDelivery === 'send' && !handedOver.metrics) {
    handedOver.metrics = true;
    deliverMetricsAtExit(o, started);
  }
}

/** What is left of the stop deadline, counted from the stop if one began, less the spool's reserve. */
function budgetLeft(o: ExitDeliveryOptions, started: number): { budget: number; since: number } {
  const since = Math.min(started, o.stopStartedAt() ?? started);
  return { budget: o.config.shutdownTimeoutMillis - (Date.now() - since) - SPOOL_RESERVE_MS, since };
}

function deliverMetricsAtExit(o: ExitDeliveryOptions, started: number): void {
  const m = o.metrics?.();
  if (m === undefined) return;
  const { budget } = budgetLeft(o, started);
  const gzip = m.compression === 'gzip';
  const target: PostTarget = {
    url: m.endpoint,
    headers: m.headers,
    encoding: gzip ? 'gzip' : 'identity',
    ...(m.certificateFile ? { certificateFile: m.certificateFile } : {}),
    timeoutMillis: budget,
  };
  const outcome =
    budget >= MIN_SEND_MS
      ? sendSync(target, gzip ? zlib.gzipSync(m.body) : m.body, budget)
      : { result: 'failed', why: `the ${o.config.shutdownTimeoutMillis} ms stop deadline left no time to send` };
  if (outcome.result !== 'delivered') o.logger.warn(exitMessages.metricsLost(m.endpoint, outcome.why));
}

function deliverSpansAtExit(
  o: ExitDeliveryOptions,
  spans: NonNullable<ExitDeliveryOptions['spans']>,
  started: number,
  handedOver: HandedOver,
): void {
  const { config, logger } = o;
  endOpenSpans(spans.open);
  const backlog = spans.backlog();
  const otlp = notYetHandedOver(backlog.otlp, handedOver);
  // The console exporter writes synchronously.
  for (const { exporter, spans } of backlog.others) {
    const fresh = notYetHandedOver(spans, handedOver);
    if (fresh.length > 0) exporter.export(fresh as ReadableSpan[], () => undefined);
  }
  if (otlp.length === 0) return;
  const gzip = config.compression === 'gzip';
  const body = requestBody(otlp, gzip);
  if (body === undefined) return;
  const encoding = gzip ? 'gzip' : 'identity';

  let why: string | undefined;
  if (config.exitDelivery === 'send') {
    const { budget, since } = budgetLeft(o, started);
    const target: PostTarget = {
      url: config.endpoint,
      headers: config.headers,
      encoding,
      ...(config.certificateFile ? { certificateFile: config.certificateFile } : {}),
      timeoutMillis: budget,
    };
    const outcome: PostOutcome =
      budget >= MIN_SEND_MS
        ? sendSync(target, body, budget)
        : {
            result: 'failed',
            why:
              since < started
                ? `the ${config.shutdownTimeoutMillis} ms stop deadline, counted from the stop, left no time to send`
                : `${config.shutdownTimeoutMillis} ms stop deadline too short to send`,
          };
    if (outcome.result === 'delivered') return;
    if (outcome.result === 'rejected')
      return logger.warn(exitMessages.rejected(otlp.length, config.endpoint, outcome.why));
    why = outcome.why;
  }
  const spool = spoolConfig(config);
  if (spool === undefined) {
    logger.warn(
      exitMessages.lost(otlp.length, `${why ?? 'not sent'}, and there is no spool (FORKTRACE_SPOOL_DIR=none)`),
    );
    return;
  }
  const written = writeSpoolSync(
    spool,
    { service: config.serviceName, pid: process.pid, createdAt: Date.now(), spans: otlp.length, encoding },
    body,
  );
  if ('problem' in written) {
    logger.warn(exitMessages.lost(otlp.length, `${why ? `${why}; ` : ''}spool: ${written.problem}`));
    return;
  }
  // In `spool` mode that is the plan, and the next start says what it delivered.
  if (why !== undefined) logger.warn(exitMessages.spooled(otlp.length, why, path.dirname(written.file)));
}

/** One POST by a sender process, waited for: the only way to send from inside an exit. */
function sendSync(target: PostTarget, body: Uint8Array, budget: number): PostOutcome {
  if (isSingleExecutable()) return { result: 'failed', why: 'a single executable application cannot run the sender' };
  const json = Buffer.from(JSON.stringify(target), 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(json.length, 0);
  let r: ReturnType<typeof spawnSync>;
  try {
    r = spawnSync(process.execPath, [...process.execArgv.filter((a) => CA_FLAGS.has(a)), EXIT_SENDER], {
      input: Buffer.concat([length, json, body]),
      timeout: budget,
      killSignal: 'SIGKILL',
      stdio: ['pipe', 'pipe', 'ignore'],
      env: senderEnv(),
      windowsHide: true,
    });
  } catch (e) {
    // spawnSync throws rather than failing under Node's permission model (ERR_ACCESS_DENIED).
    return { result: 'failed', why: errorText(e) };
  }
  const said = r.stdout?.toString('utf8').trim().slice(0, 200) || undefined;
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    return { result: 'failed', why: code === 'ETIMEDOUT' ? `no answer within ${budget} ms` : (code ?? 'spawn failed') };
  }
  if (r.status === SENDER_EXIT_CODE.delivered) return { result: 'delivered', why: said ?? 'sent' };
  if (r.status === SENDER_EXIT_CODE.rejected) return { result: 'rejected', why: said ?? 'rejected' };
  return { result: 'failed', why: said ?? `sender exited ${r.status ?? r.signal}` };
}

/** Node flags that choose which CAs it trusts: the sender must trust what the exporter trusted. */
const CA_FLAGS = new Set(['--use-system-ca', '--use-openssl-ca', '--use-bundled-ca']);
/**
 * What the sender keeps of the app's environment: only what decides how Node reaches the endpoint
 * (extra CAs, OpenSSL's CA locations, an HTTP proxy Node is told to use), as the exporter in the
 * worker did. Nothing else: no NODE_OPTIONS preload, no secret the sender does not need.
 */
const SENDER_ENV = [
  'NODE_EXTRA_CA_CERTS',
  'SSL_CERT_FILE',
  'SSL_CERT_DIR',
  'NODE_USE_ENV_PROXY',
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'NO_PROXY',
  'http_proxy',
  'https_proxy',
  'no_proxy',
  'SystemRoot',
];

function senderEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const name of SENDER_ENV) if (process.env[name] !== undefined) env[name] = process.env[name];
  return env;
}

function isSingleExecutable(): boolean {
  try {
    return (require('node:sea') as { isSea(): boolean }).isSea();
  } catch {
    return false;
  }
}

function asException(error: unknown): Exception {
  if (typeof error === 'object' && error !== null) return error as Exception;
  return String(error);
}

function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

/**
 * Sends what earlier exits of this service spooled, once tracing has started: asynchronously,
 * without holding the process, and says in one line each what it delivered, kept or skipped.
 * Never rejects.
 */
export async function deliverSpoolAtStart(
  config: Pick<
    ResolvedConfig,
    | 'spoolDir'
    | 'spoolMaxBytes'
    | 'spoolMaxAgeMillis'
    | 'sources'
    | 'serviceName'
    | 'endpoint'
    | 'headers'
    | 'certificateFile'
    | 'timeoutMillis'
  >,
  logger: Logger,
): Promise<void> {
  const spool = spoolConfig(config);
  if (spool === undefined) return;
  try {
    const report = await deliverSpool(spool, config.serviceName, {
      url: config.endpoint,
      headers: config.headers,
      ...(config.certificateFile ? { certificateFile: config.certificateFile } : {}),
      timeoutMillis: config.timeoutMillis,
    });
    const dir = serviceDir(spool, config.serviceName);
    if (report.problem !== undefined) logger.warn(spoolMessages.unusable(report.problem));
    if (report.writableBy !== undefined) logger.warn(spoolMessages.writableByOthers(spool.dir, report.writableBy));
    if (report.delivered.files > 0)
      logger.status(spoolMessages.delivered(report.delivered.spans, report.delivered.pids));
    if (report.rejected.files > 0)
      logger.warn(spoolMessages.rejected(report.rejected.spans, config.endpoint, report.rejected.why.join(', ')));
    if (report.kept.files > 0) logger.warn(spoolMessages.kept(report.kept.files, report.kept.why.join(', '), dir));
    const { corrupt, foreign, old } = report.skipped;
    if (corrupt + foreign + old > 0) logger.warn(spoolMessages.skipped(dir, corrupt, foreign, old));
  } catch {
    // The spool must never take the app down.
  }
}
