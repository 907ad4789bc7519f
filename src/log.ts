import { DiagLogLevel, type DiagLogger } from '@opentelemetry/api';
import type { LogLevelName } from './types';
import type { Redactor } from './secrets';

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

const SUPERSEDED = [/Module \S+ has been loaded before \S+ so it might not work/];

function stringify(arg: unknown): string {
  if (typeof arg === 'string') return arg;
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

  constructor(
    private readonly redactor: Redactor,
    private readonly level: DiagLogLevel,
    private readonly write: (line: string) => void = (line) => process.stderr.write(line + '\n'),
    private readonly repeatMillis = 30_000,
  ) {}

  private print(level: DiagLogLevel, prefix: string, args: unknown[]): void {
    if (level > this.level) return;
    try {
      this.write(this.redactor.scrub(`forktrace: ${prefix}${args.map(stringify).join(' ')}`));
    } catch {
      // stderr may be closed (a detached daemon); tracing must not fail because of it.
    }
  }

  error(message: string, ...args: unknown[]): void {
    this.print(DiagLogLevel.ERROR, 'error: ', [message, ...args]);
  }
  warn(message: string, ...args: unknown[]): void {
    // forktrace prints its own load-order warning, with the fix; the instrumentations' own
    // version of it would say the same thing less usefully, once per module.
    if (SUPERSEDED.some((r) => r.test([message, ...args].join(' ')))) return;
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
    const last = this.lastPrinted.get(key);
    if (last !== undefined && now - last < this.repeatMillis) return false;
    this.lastPrinted.set(key, now);
    this.warn(message);
    return true;
  }
}
