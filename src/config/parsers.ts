/**
 * How a setting's value is read from a variable and checked as an option, for the settings
 * table (settings.ts). Two kinds of bad input, two answers: a wrong variable (an operator's
 * mistake) is `undefined` here and becomes one warning and the default; a wrong option (a
 * programmer's) throws a TypeError or RangeError naming the option in backticks.
 */
import * as path from 'node:path';
import { HEADER_NAME } from '../worker/secrets';
import type { Env } from './types';

/** How a setting is read from the environment and checked as an option. */
export interface Parser<T> {
  /** The accepted values, as a warning names them. */
  readonly accepted: string;
  /** For a secret setting: why a value was refused, without quoting it. */
  readonly refused?: string;
  /** A variable's text (trimmed, never blank) as a value, or undefined when it is not accepted. */
  parse(raw: string): T | undefined;
  /** Throws for a wrong option value (never called with undefined). */
  check(option: string, value: unknown): void;
}

/** A variable's value, trimmed; blank counts as unset. */
export function read(env: Env, name: string): string | undefined {
  const v = env[name];
  if (v === undefined) return undefined;
  const t = v.trim();
  return t === '' ? undefined : t;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function splitList(raw: string): string[] {
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** Control characters escaped, as JSON would write them, so that a message stays on one line. */
export function oneLine(text: string): string {
  const named: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };
  return text.replace(
    // eslint-disable-next-line no-control-regex
    /[\x00-\x1f\x7f\u2028\u2029]/g,
    (c) => named[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** Why `value` is not a usable exporter URL, without quoting it (it may hold credentials). */
export function urlProblem(value: string): string | undefined {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    return 'is not a URL (expected e.g. https://otlp.example.com/v1/traces)';
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    return `uses the unsupported scheme "${u.protocol.replace(/:$/, '')}" (use http or https)`;
  }
  // An '@' the parser did not take as the end of credentials: a password holding '/', '?' or '#'
  // unencoded ends the host early, and the rest of it would be shown as the URL's path.
  if (
    `${u.host}${u.pathname}${u.search}${u.hash}`.includes('@') ||
    (value.includes('@') && u.username === '' && u.password === '')
  ) {
    return "has an '@' outside the credentials: percent-encode '/', '?', '#' and '@' in the user name and password";
  }
  return undefined;
}

/** Whether `hostname` (as URL.hostname gives it) is this machine's loopback interface. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (/^\d+\.\d+\.\d+\.\d+$/.test(h)) return h.startsWith('127.');
  return h === '::1' || /^::ffff:127\./.test(h) || /^::ffff:7f/.test(h);
}

/** Whether requests to `url` cross the network readable: plain http to another machine. */
export function plainHttpOffHost(url: URL): boolean {
  return url.protocol === 'http:' && !isLoopbackHost(url.hostname);
}

const quoted = (values: readonly string[]) => values.map((a) => `"${a}"`).join(', ');

function checkOneOf(option: string, value: unknown, accepted: readonly string[]): void {
  if (!accepted.includes(value as string)) throw new TypeError(`\`${option}\` must be one of ${quoted(accepted)}.`);
}

function checkNumber(option: string, value: unknown, min: number, max: number): void {
  if (typeof value !== 'number' || !Number.isFinite(value))
    throw new TypeError(`\`${option}\` must be a finite number.`);
  if (value < min || value > max)
    throw new RangeError(`\`${option}\` must be between ${min} and ${max}; got ${value}.`);
}

/** One of `values`, case-insensitive in a variable. */
export function oneOf<T extends string>(values: readonly T[]): Parser<T> {
  return {
    accepted: values.join(', '),
    parse: (raw) => {
      const v = raw.toLowerCase() as T;
      return values.includes(v) ? v : undefined;
    },
    check: (option, value) => checkOneOf(option, value, values),
  };
}

export const bool: Parser<boolean> = {
  accepted: 'true, false',
  parse: (raw) => {
    const v = raw.toLowerCase();
    return v === 'true' ? true : v === 'false' ? false : undefined;
  },
  check: (option, value) => {
    if (typeof value !== 'boolean') throw new TypeError(`\`${option}\` must be true or false.`);
  },
};

/** A whole number in [min, max]; a fraction in a variable is rounded down. */
export function wholeNumber(min: number, max: number): Parser<number> {
  return {
    accepted: `a whole number from ${min} to ${max}`,
    parse: (raw) => {
      const n = Number(raw);
      return /^\s*-?\d+(\.\d+)?\s*$/.test(raw) && Number.isFinite(n) && n >= min && n <= max
        ? Math.floor(n)
        : undefined;
    },
    check: (option, value) => checkNumber(option, value, min, max),
  };
}

/** A number from 0 to 1. */
export const ratio: Parser<number> = {
  accepted: 'a number from 0 to 1',
  parse: (raw) => {
    const n = Number(raw);
    return Number.isFinite(n) && n >= 0 && n <= 1 ? n : undefined;
  },
  check: (option, value) => checkNumber(option, value, 0, 1),
};

/**
 * A comma list of `values` in a variable (`none` meaning the empty list when `noneIsEmpty`), an
 * array of them as an option.
 */
export function listOf<T extends string>(
  values: readonly T[],
  o: { accepted: string; noneIsEmpty?: boolean; unique?: boolean },
): Parser<T[]> {
  return {
    accepted: o.accepted,
    parse: (raw) => {
      if (o.noneIsEmpty && raw.toLowerCase() === 'none') return [];
      const list = splitList(raw).map((s) => s.toLowerCase() as T);
      if (list.length === 0 || !list.every((v) => values.includes(v))) return undefined;
      return o.unique ? [...new Set(list)] : list;
    },
    check: (option, value) => {
      if (!Array.isArray(value)) throw new TypeError(`\`${option}\` must be an array, e.g. ["${values[0]}"].`);
      for (const v of value) checkOneOf(`${option}[]`, v, values);
    },
  };
}

/** An HTTP header name (RFC 9110 token), lowercased. */
export const headerName: Parser<string> = {
  accepted: 'an HTTP header name such as x-api-key',
  parse: (raw) => (HEADER_NAME.test(raw) ? raw.toLowerCase() : undefined),
  check: (option, value) => {
    if (typeof value !== 'string' || !HEADER_NAME.test(value))
      throw new TypeError(`\`${option}\` must be an HTTP header name, e.g. "x-api-key" or "Mackerel-Api-Key".`);
  },
};

/** Text sent as a header value: a key. Never quoted in a message. */
export const secretText: Parser<string> = {
  accepted: 'text without a line break or NUL',
  refused: 'contains a line break or NUL (header injection)',
  parse: (raw) => (/[\r\n\0]/.test(raw) ? undefined : raw),
  check: (option, value) => {
    checkNonEmptyString(option, value);
    if (/[\r\n\0]/.test(value as string))
      throw new TypeError(`\`${option}\` must not contain a line break or NUL; check how the key was read.`);
  },
};

/** An absolute folder, or `none` (an option: `false`) for none at all. */
export const absolutePathOrNone: Parser<string | false> = {
  accepted: 'an absolute path, or none',
  parse: (raw) => {
    if (raw.toLowerCase() === 'none') return false;
    // Under pm2 the preload runs in the daemon's cwd, not the app's: a relative path would
    // land wherever pm2 was first started.
    return path.isAbsolute(raw) ? path.normalize(raw) : undefined;
  },
  check: (option, value) => {
    if (value !== false && (typeof value !== 'string' || !path.isAbsolute(value)))
      throw new TypeError(`\`${option}\` must be an absolute path, or false for no spool.`);
  },
};

export const absolutePath: Parser<string> = {
  accepted: 'an absolute path',
  parse: (raw) => (path.isAbsolute(raw) ? path.normalize(raw) : undefined),
  check: (option, value) => {
    if (typeof value !== 'string' || !path.isAbsolute(value))
      throw new TypeError(`\`${option}\` must be an absolute path.`);
  },
};

/** A host name or address to listen on: letters, digits, dots, colons, hyphens. */
export const listenHost: Parser<string> = {
  accepted: 'a host name or IP address, e.g. localhost, 127.0.0.1 or 0.0.0.0',
  parse: (raw) => (/^[A-Za-z0-9.:-]+$/.test(raw.trim()) ? raw.trim() : undefined),
  check: (option, value) => {
    if (typeof value !== 'string' || !/^[A-Za-z0-9.:-]+$/.test(value))
      throw new TypeError(`\`${option}\` must be a host name or IP address, e.g. '127.0.0.1'.`);
  },
};

/** A Prometheus metric name prefix: empty, or [a-zA-Z_][a-zA-Z0-9_]*. */
export const metricPrefix: Parser<string> = {
  accepted: 'letters, digits and underscores, not starting with a digit',
  parse: (raw) => (/^[A-Za-z_][A-Za-z0-9_]*$/.test(raw.trim()) ? raw.trim() : undefined),
  check: (option, value) => {
    if (typeof value !== 'string' || !/^([A-Za-z_][A-Za-z0-9_]*)?$/.test(value))
      throw new TypeError(
        `\`${option}\` must be letters, digits and underscores, not starting with a digit, e.g. 'shop'.`,
      );
  },
};

// Option checks of the settings resolved by functions of their own (resolve.ts).

export function checkNonEmptyString(option: string, value: unknown): void {
  if (typeof value !== 'string' || value.trim() === '')
    throw new TypeError(`\`${option}\` must be a non-empty string; remove it to use the default.`);
}

export function checkEndpoint(option: string, value: unknown): void {
  const why = typeof value === 'string' ? urlProblem(value) : 'is not a string';
  if (why !== undefined) throw new TypeError(`\`${option}\` ${why}.`);
}

export function checkHeaders(option: string, value: unknown): void {
  if (!isPlainObject(value)) throw new TypeError(`\`${option}\` must be an object of header names to string values.`);
  for (const [k, v] of Object.entries(value)) {
    if (!HEADER_NAME.test(k)) throw new TypeError(`\`${option}\`: "${oneLine(k)}" is not a valid HTTP header name.`);
    if (typeof v !== 'string') throw new TypeError(`\`${option}\`: the value of "${k}" must be a string.`);
    if (/[\r\n\0]/.test(v))
      throw new TypeError(
        `\`${option}\`: the value of "${k}" contains a line break or NUL (header injection); remove it.`,
      );
  }
}

export function checkAttributes(option: string, value: unknown): void {
  if (!isPlainObject(value))
    throw new TypeError(`\`${option}\` must be an object of string, number or boolean values.`);
  for (const [k, v] of Object.entries(value)) {
    if (!['string', 'number', 'boolean'].includes(typeof v))
      throw new TypeError(`\`${option}\`: "${oneLine(k)}" must be a string, number or boolean.`);
  }
}

/** Names of the instrumentations forktrace has, as `instrumentations` and OTEL_NODE_*_INSTRUMENTATIONS name them. */
export const INSTRUMENTATIONS = ['http', 'express', 'mysql2'] as const;

export function checkInstrumentations(option: string, value: unknown): void {
  if (!isPlainObject(value)) throw new TypeError(`\`${option}\` must be an object such as { mysql2: false }.`);
  for (const [k, v] of Object.entries(value)) {
    if (!(INSTRUMENTATIONS as readonly string[]).includes(k))
      throw new TypeError(`\`${option}.${oneLine(k)}\` is unknown; forktrace has ${INSTRUMENTATIONS.join(', ')}.`);
    if (typeof v !== 'boolean') throw new TypeError(`\`${option}.${k}\` must be true or false.`);
  }
}

export function checkExcludedUrls(option: string, value: unknown): void {
  if (!Array.isArray(value))
    throw new TypeError(`\`${option}\` must be an array of strings or RegExps, e.g. ["^/health$"].`);
  for (const e of value) {
    if (e instanceof RegExp) continue;
    if (typeof e !== 'string') throw new TypeError(`\`${option}\` entries must be strings or RegExps.`);
    try {
      new RegExp(e);
    } catch {
      throw new TypeError(`\`${option}\`: "${oneLine(e)}" is not a valid regular expression.`);
    }
  }
}
