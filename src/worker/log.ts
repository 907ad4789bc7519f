import { DiagLogLevel, type DiagLogger } from '@opentelemetry/api';
import type { LogLevelName } from '../types';
import { statusMessages } from './messages';
import type { Redactor } from './secrets';
import { UPSTREAM_TEXT } from './upstream';

const LEVELS: Record<LogLevelName, DiagLogLevel> = {
  none: DiagLogLevel.NONE,
  error: DiagLogLevel.ERROR,
  warn: DiagLogLevel.WARN,
  info: DiagLogLevel.INFO,
  debug: DiagLogLevel.DEBUG,
  verbose: DiagLogLevel.VERBOSE,
  all: DiagLogLevel.ALL,
};

export function diagLevel(name: LogLevelName): DiagLogLevel {
  return LEVELS[name];
}

/**
 * Upstream lines that say again, less usefully, what forktrace has said already: the
 * instrumentations' load-order warning, once per module. (sdk-trace 2.x also read
 * OTEL_TRACES_SAMPLER itself and warned a second time; 3.x reads no environment.)
 */
const SUPERSEDED = [UPSTREAM_TEXT.loadedTooEarly];

/** The leading strings of a diag call (a component logger's namespace, then the message). */
function head(args: unknown[]): string {
  // Joining every argument would turn a 4 MiB body into a string first.
  return args
    .slice(0, 3)
    .filter((a) => typeof a === 'string')
    .join(' ');
}

/** The message of the first Error among a diag call's arguments. */
function firstError(args: unknown[]): string {
  const e = args.find((a): a is Error => a instanceof Error);
  return e === undefined ? 'unknown error' : `${e.name}: ${e.message}`;
}

/**
 * Upstream warnings and errors that repeat with every batch or interval while something is wrong:
 * printed at most once per interval, as forktrace's own line, at upstream's level. The
 * BatchSpanProcessor warns each time its queue has overflowed and accepts a span again (sdk-trace
 * `BatchSpanProcessorBase._addToBuffer`); the OTLP delegate warns on every 2xx answer it cannot
 * decode, quoting the whole body (up to 4 MiB); sdk-metrics' PeriodicExportingMetricReader says
 * an error at every interval whose export times out or whose observable callbacks fail.
 */
const REPEATING: ReadonlyArray<{ test: RegExp; key: string; text: (upstream: string, args: unknown[]) => string }> = [
  {
    test: UPSTREAM_TEXT.queueFullDropped,
    key: 'queue-full',
    text: (u) => statusMessages.queueFull(/Dropped \d+ spans/.exec(u)?.[0] ?? 'some'),
  },
  {
    test: new RegExp(UPSTREAM_TEXT.badResponse),
    key: 'bad-response',
    text: () => statusMessages.notOtlpResponse,
  },
  {
    test: UPSTREAM_TEXT.metricsExportTimedOut,
    key: 'metrics-timeout',
    text: (u) => statusMessages.metricsExportTimedOut(UPSTREAM_TEXT.metricsExportTimedOut.exec(u)?.[1] ?? '?'),
  },
  {
    test: new RegExp(UPSTREAM_TEXT.metricsCollectionErrors),
    key: 'metrics-collection',
    text: (_u, args) => statusMessages.metricsCollectionFailed(firstError(args)),
  },
];

/** Longest piece of an argument printed; a diag call may pass a whole request or response body. */
const MAX_ARG_CHARS = 2000;

function clip(text: string): string {
  return text.length > MAX_ARG_CHARS ? `${text.slice(0, MAX_ARG_CHARS)}… (${text.length} chars)` : text;
}

function stringify(arg: unknown): string {
  return clip(stringifyWhole(arg));
}

function stringifyWhole(arg: unknown): string {
  if (typeof arg === 'string') return arg;
  if (Buffer.isBuffer(arg) || arg instanceof Uint8Array) return `<${arg.byteLength} bytes>`;
  if (arg instanceof Error) return arg.stack ?? `${arg.name}: ${arg.message}`;
  try {
    return JSON.stringify(arg, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v));
  } catch {
    return String(arg);
  }
}

/**
 * forktrace's only way to print. Every line goes to stderr prefixed `forktrace:`, scrubbed of
 * secrets, and a repeated warning is printed at most once per `repeatMillis`: a collector that is
 * down for an hour must not write a line per batch.
 */
export class Logger implements DiagLogger {
  private readonly lastPrinted = new Map<string, number>();
  private lines = 0;

  constructor(
    private readonly redactor: Redactor,
    private readonly level: DiagLogLevel,
    private readonly write: (line: string) => void = (line) => process.stderr.write(line + '\n'),
    private readonly repeatMillis = 30_000,
  ) {}

  private print(level: DiagLogLevel, prefix: string, args: unknown[]): void {
    if (level > this.level) return;
    this.lines++;
    try {
      this.write(this.redactor.scrub(`forktrace: ${prefix}${args.map(stringify).join(' ')}`));
    } catch {
      // stderr may be closed (a detached daemon); tracing must not fail because of it.
    }
  }

  /** Lines printed so far (or attempted, when stderr is closed). */
  get printed(): number {
    return this.lines;
  }

  error(message: string, ...args: unknown[]): void {
    const text = head([message, ...args]);
    if (SUPERSEDED.some((r) => r.test(text))) return;
    const repeating = REPEATING.find((r) => r.test.test(text));
    if (repeating) {
      this.printRateLimited(DiagLogLevel.ERROR, 'error: ', repeating.key, repeating.text(text, args));
      return;
    }
    this.print(DiagLogLevel.ERROR, 'error: ', [message, ...args]);
  }
  warn(message: string, ...args: unknown[]): void {
    const text = head([message, ...args]);
    if (SUPERSEDED.some((r) => r.test(text))) return;
    const repeating = REPEATING.find((r) => r.test.test(text));
    if (repeating) {
      this.warnRateLimited(repeating.key, repeating.text(text, args));
      return;
    }
    this.print(DiagLogLevel.WARN, 'warning: ', [message, ...args]);
  }
  info(message: string, ...args: unknown[]): void {
    this.print(DiagLogLevel.INFO, '', [message, ...args]);
  }
  debug(message: string, ...args: unknown[]): void {
    this.print(DiagLogLevel.DEBUG, 'debug: ', [message, ...args]);
  }
  verbose(message: string, ...args: unknown[]): void {
    this.print(DiagLogLevel.VERBOSE, 'verbose: ', [message, ...args]);
  }

  /** A line shown at the default level: the per-process status, "not instrumented: …". */
  status(message: string): void {
    this.print(DiagLogLevel.WARN, '', [message]);
  }

  /** A warning printed at most once per interval for the same `key`; returns whether it printed. */
  warnRateLimited(key: string, message: string, now = Date.now()): boolean {
    return this.printRateLimited(DiagLogLevel.WARN, 'warning: ', key, message, now);
  }

  private printRateLimited(level: DiagLogLevel, prefix: string, key: string, message: string, now = Date.now()) {
    if (level > this.level) return false;
    const last = this.lastPrinted.get(key);
    if (last !== undefined && now - last < this.repeatMillis) return false;
    this.lastPrinted.set(key, now);
    this.print(level, prefix, [message]);
    return true;
  }
}
