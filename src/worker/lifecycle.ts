import type { Logger } from './log';
import { statusMessages } from './messages';

/** What a flush delivers: both at a stop; at `beforeExit`, only what has news. */
export interface FlushParts {
  spans: boolean;
  metrics: boolean;
}

export interface StopHooksOptions {
  /**
   * Deliver queued spans and recorded metrics (both when `parts` is not given); resolves when done
   * (or failed), exports the batch timer started included.
   */
  flush(parts?: FlushParts): Promise<void>;
  /** Says the stop's totals (the drop summary); called once the final flush is done. */
  report(): void;
  /**
   * Hands over, synchronously, what is still queued or open, as an exit does (exit.ts): the last
   * step before a re-raised signal ends the process, so that no request can end in between.
   */
  deliverNow(): void;
  /** Spans ended but not yet handed to a finished export. */
  pending(): number;
  /** Ends exports still in flight once the deadline has passed, so they do not hold the process. */
  abandon(): void;
  /** Spans ended since start; a beforeExit flush delivers spans only when this moved. */
  ended(): number;
  /** Metrics recorded since their last export began; a beforeExit flush delivers metrics only when not 0. */
  metricsRecorded?(): number;
  /** The stop deadline (FORKTRACE_SHUTDOWN_TIMEOUT_MS); 0 turns the stop flush off. */
  timeoutMillis: number;
  logger: Logger;
  /** Listen for pm2's `shutdown` message (ecosystem `shutdown_with_message: true`). */
  pm2ShutdownMessage: boolean;
  /** The cluster worker object, when this process is a node:cluster (or pm2 cluster) worker. */
  clusterWorker: NodeJS.EventEmitter | undefined;
  /** Told when the first stop began (Date.now()), so that an exit after it keeps to the same deadline. */
  onStopStarted?(at: number): void;
}

const SIGNALS = ['SIGINT', 'SIGTERM'] as const;
/** Flushes before the final shutdown on a terminating signal; see drainThenShutdown. */
const MAX_DRAIN_ROUNDS = 5;
/** How long a re-raise waits for a replaced stderr (pm2's log files) to take the last lines. */
const OUTPUT_WAIT_MS = 200;

/**
 * Flushes queued spans on every way a worker stops: SIGINT/SIGTERM (pm2 stop/reload send SIGINT,
 * then SIGKILL after kill_timeout, 1600 ms by default), pm2's `shutdown` message, cluster
 * `disconnect`, and `beforeExit`. Each flush waits at most `timeoutMillis`.
 *
 * Node's own behaviour is kept. A signal listener removes Node's default "terminate", so:
 * - when forktrace's listener is the only one for the signal, it flushes, removes itself and
 *   re-raises the signal: the process ends by that signal, as it would have without forktrace;
 * - when the app has listeners of its own, forktrace starts the flush and returns at once; the
 *   app decides when to exit, and `beforeExit` catches spans its drain ends later.
 * A second signal during the flush re-raises at once, so a double Ctrl+C still kills.
 * Under pm2 a re-raise also waits (at most OUTPUT_WAIT_MS) for pm2's log stream to take the lines
 * printed during the flush.
 *
 * Returns a function that removes every hook.
 */
export function installStopHooks(o: StopHooksOptions): () => void {
  const stderrWrite = process.stderr.write;
  let flushing: Promise<boolean> | undefined;
  // FORKTRACE_SHUTDOWN_TIMEOUT_MS=0 turns the stop flush off: a stop is exactly what it would be
  // without forktrace, queued spans included.
  const off = o.timeoutMillis === 0;
  /** Resolves whether the flush finished within the deadline. */
  const flushWithDeadline = (why: string, final: boolean, parts?: FlushParts): Promise<boolean> => {
    if (off) return Promise.resolve(true);
    if (flushing) return flushing;
    const started = Date.now();
    o.onStopStarted?.(started);
    const work = (final ? drain() : o.flush(parts)).catch(() => undefined);
    // Not unref'd on purpose: after beforeExit, or once the app's own stop handler has closed
    // everything, this timer is what lets the flush finish, and only until the deadline.
    let deadline: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((resolve) => (deadline = setTimeout(() => resolve(false), o.timeoutMillis)));
    flushing = Promise.race([work.then(() => true), late]).then((inTime) => {
      clearTimeout(deadline);
      flushing = undefined;
      const left = o.pending();
      if (!inTime && left > 0) {
        o.logger.warn(statusMessages.stopDeadline(why, left, o.timeoutMillis, Date.now() - started));
      }
      // Past the deadline an export still in flight (a blackholed endpoint) would hold the
      // process open until its own timeout, after the app's stop handler is done.
      if (!inTime) o.abandon();
      return inTime;
    });
    return flushing;
  };

  // The worker keeps serving until the signal ends it (the cluster primary, and pm2, still send it
  // connections): requests in flight at the signal end while the flush runs. Flush again while
  // spans keep ending (a few rounds, all within the deadline above); what ends after the last round
  // is handed over synchronously just before the re-raise (reraiseAfterOutput). Nothing is shut
  // down: the process ends by the signal, and a shutdown here would drop the spans of requests
  // that end after it (1 in about 8 demo runs lost a request's spans during `pm2 reload` so).
  // Each round's flush also waits for an export the batch timer started: the hand-over sends what
  // is still in flight (an exit cannot know whether it arrived), so one left running would arrive twice.
  const drain = async () => {
    for (let round = 0; round < MAX_DRAIN_ROUNDS; round++) {
      const before = o.ended();
      await o.flush();
      if (o.ended() === before) break;
    }
    o.report();
  };

  const signalled = new Set<string>();
  const ours = new Map<NodeJS.Signals, () => void>(SIGNALS.map((s) => [s, () => onSignal(s)]));
  // Listeners of the app's own, i.e. any but forktrace's.
  const others = (signal: NodeJS.Signals) => process.listeners(signal).filter((l) => l !== ours.get(signal)).length;
  const reraise = (signal: NodeJS.Signals) => {
    uninstall();
    process.kill(process.pid, signal);
  };
  // Under pm2, stderr is a file stream written asynchronously (ProcessContainer replaces
  // process.stderr.write once it has opened the app's log files), so the lines printed during the
  // flush (the stop-deadline warning, the drop summary) died with the process and never reached
  // `pm2 logs`. The callback of an empty write comes once every earlier line is written; pm2's
  // `pm2 logs` skips the empty line. Plain stderr (file, pipe, TTY) is synchronous on POSIX.
  const afterOutput = (then: () => void) => {
    if (process.stderr.write === stderrWrite) return then();
    let done = false;
    const go = () => {
      if (done) return;
      done = true;
      clearTimeout(cap);
      then();
    };
    const cap = setTimeout(go, OUTPUT_WAIT_MS);
    try {
      process.stderr.write('', go);
    } catch {
      go();
    }
  };
  // From the hand-over to the re-raise the code is synchronous, so no request ends in between. A
  // hand-over prints only when it fails (spooled, lost); under pm2 its lines get one more wait, and
  // what ended during that wait is handed over too (lines of a second failure may not reach pm2).
  const reraiseAfterOutput = (signal: NodeJS.Signals, inTime: boolean) =>
    afterOutput(() => {
      // Past the deadline the warning has said what was not delivered; pm2's SIGKILL is near.
      if (!inTime) return reraise(signal);
      const printed = o.logger.printed;
      o.deliverNow();
      if (o.logger.printed === printed) return reraise(signal);
      afterOutput(() => {
        o.deliverNow();
        reraise(signal);
      });
    });
  const onSignal = (signal: NodeJS.Signals) => {
    const onlyUs = others(signal) === 0;
    if (signalled.has(signal)) {
      if (onlyUs) reraise(signal);
      return;
    }
    signalled.add(signal);
    void flushWithDeadline(signal, onlyUs).then((inTime) => {
      // Re-check: the app may have added a listener while we flushed.
      if (onlyUs && others(signal) === 0) reraiseAfterOutput(signal, inTime);
    });
  };
  if (!off) for (const [s, l] of ours) process.on(s, l);

  const onMessage = (m: unknown) => {
    if (m === 'shutdown') void flushWithDeadline('pm2 shutdown message', false);
  };
  if (o.pm2ShutdownMessage) process.on('message', onMessage);

  const onDisconnect = () => void flushWithDeadline('cluster disconnect', false);
  o.clusterWorker?.on('disconnect', onDisconnect);

  // The batch processor's and the metrics reader's timers do not keep the process alive, so a
  // script that simply ends would drop its last spans and metrics. beforeExit runs again after
  // the flush; it flushes spans only if spans ended since the last time, and metrics only if some
  // were recorded since their last export began: a cumulative export always has data, and
  // sending it again after a stop's flush (to an endpoint that did not answer, say) would hold the
  // exit for another deadline.
  let endedAtLastExitFlush = 0;
  const onBeforeExit = () => {
    const ended = o.ended();
    const parts: FlushParts = { spans: ended !== endedAtLastExitFlush, metrics: (o.metricsRecorded?.() ?? 0) > 0 };
    if (!parts.spans && !parts.metrics) return;
    endedAtLastExitFlush = ended;
    void flushWithDeadline('exit', false, parts);
  };
  process.on('beforeExit', onBeforeExit);

  function uninstall() {
    for (const [s, l] of ours) process.removeListener(s, l);
    process.removeListener('message', onMessage);
    process.removeListener('beforeExit', onBeforeExit);
    o.clusterWorker?.removeListener('disconnect', onDisconnect);
  }
  return uninstall;
}
