import { parseArgs, type ParseArgsConfig } from 'node:util';

/** Exit codes of every subcommand. */
export const EXIT = { ok: 0, problem: 1, usage: 2 } as const;

/** A mistake in how the command was called; printed with a pointer to `--help`, exit 2. */
export class UsageError extends Error {
  override name = 'UsageError';
  constructor(
    message: string,
    readonly command: string,
  ) {
    super(message);
  }
}

/** `parseArgs` (strict), its errors turned into a {@link UsageError} for `command`. */
export function parse<T extends ParseArgsConfig>(command: string, config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e), command);
  }
}

/** A whole number option in [min, max], or a UsageError naming it. */
export function intOption(
  command: string,
  name: string,
  raw: string | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || n < min || n > max) {
    throw new UsageError(`--${name} must be a whole number from ${min} to ${max}; got "${raw}"`, command);
  }
  return n;
}

/**
 * Whether to colour a stream: only a TTY, unless FORCE_COLOR says otherwise; NO_COLOR (any
 * non-empty value, https://no-color.org) always wins.
 */
export function useColor(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv = process.env): boolean {
  if ((env.NO_COLOR ?? '') !== '') return false;
  const force = env.FORCE_COLOR;
  if (force !== undefined && force !== '') return force !== '0' && force !== 'false';
  return stream.isTTY === true;
}

export interface Paint {
  bold(s: string): string;
  dim(s: string): string;
  red(s: string): string;
  green(s: string): string;
  yellow(s: string): string;
  cyan(s: string): string;
  magenta(s: string): string;
}

const sgr = (open: number, close: number) => (s: string) => `\x1b[${open}m${s}\x1b[${close}m`;

export function paint(enabled: boolean): Paint {
  const id = (s: string) => s;
  return enabled
    ? {
        bold: sgr(1, 22),
        dim: sgr(2, 22),
        red: sgr(31, 39),
        green: sgr(32, 39),
        yellow: sgr(33, 39),
        cyan: sgr(36, 39),
        magenta: sgr(35, 39),
      }
    : { bold: id, dim: id, red: id, green: id, yellow: id, cyan: id, magenta: id };
}

/** Display width of a string without its ANSI colour codes. */
export function visibleLength(s: string): number {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;]*m/g, '').length;
}

export function padEnd(s: string, width: number): string {
  const n = visibleLength(s);
  return n >= width ? s : s + ' '.repeat(width - n);
}

export function padStart(s: string, width: number): string {
  const n = visibleLength(s);
  return n >= width ? s : ' '.repeat(width - n) + s;
}
