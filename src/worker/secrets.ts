/**
 * Parsing and scrubbing of values that may be secrets: header lists, URL credentials. Nothing in
 * here ever puts a header value or a credential into a message.
 */

export interface KeyValueProblem {
  /** The key, or `#n` (the pair's position) when even the key cannot be shown safely. */
  key: string;
  why: string;
}

export interface KeyValueList {
  values: Record<string, string>;
  problems: KeyValueProblem[];
}

/** An HTTP header name: an RFC 9110 token. The one place forktrace writes it. */
export const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// Percent-escapes per RFC 3986: a '%' must be followed by two hex digits.
const STRAY_PERCENT = /%(?![0-9A-Fa-f]{2})/;

function decode(s: string): { text: string; ok: boolean } {
  if (!s.includes('%')) return { text: s, ok: true };
  if (STRAY_PERCENT.test(s)) return { text: s, ok: false };
  try {
    return { text: decodeURIComponent(s), ok: true };
  } catch {
    return { text: s, ok: false };
  }
}

/**
 * Parses `key1=value1,key2=value2` as the OTLP exporter spec defines `OTEL_EXPORTER_OTLP_HEADERS`
 * (and the SDK spec `OTEL_RESOURCE_ATTRIBUTES`): pairs split on the first '=', trimmed and
 * percent-decoded. A value whose '%' starts no escape is kept as written, with a warning, rather
 * than silently dropped: a dropped API key only shows up later as a 401.
 */
export function parseKeyValueList(raw: string, opts: { headers?: boolean } = {}): KeyValueList {
  const values: Record<string, string> = {};
  const problems: KeyValueProblem[] = [];
  const pairs = raw.split(',');
  pairs.forEach((pair, i) => {
    if (pair.trim() === '') return;
    const at = `#${i + 1}`;
    const eq = pair.indexOf('=');
    if (eq < 0) {
      const hint = pair.includes(':') ? ' (write key=value, not key: value)' : ' (write key=value)';
      problems.push({ key: at, why: `has no '='${hint}; skipped` });
      return;
    }
    const key = decode(pair.slice(0, eq).trim());
    const value = decode(pair.slice(eq + 1).trim());
    if (key.text === '') {
      problems.push({ key: at, why: 'has an empty name; skipped' });
      return;
    }
    if (opts.headers && !HEADER_NAME.test(key.text)) {
      problems.push({ key: at, why: 'has a name that is not a valid HTTP header name; skipped' });
      return;
    }
    if (/[\r\n\0]/.test(value.text)) {
      problems.push({ key: key.text, why: 'has a line break or NUL in its value (header injection); skipped' });
      return;
    }
    // eslint-disable-next-line no-control-regex
    if (opts.headers && /[\x00-\x08\x0a-\x1f\x7f]/.test(value.text)) {
      problems.push({ key: key.text, why: 'has a control character in its value; skipped' });
      return;
    }
    if (value.text === '') {
      problems.push({ key: key.text, why: 'has an empty value; skipped' });
      return;
    }
    if (!value.ok) {
      problems.push({
        key: key.text,
        why: "has a '%' that starts no percent-escape; sent as written (write %25 for a literal '%')",
      });
    }
    values[key.text] = value.text;
  });
  return { values, problems };
}

/** `scheme://user:pass@host/…` → `scheme://<replacement>host/…`; non-URLs come back unchanged. */
export function redactUrl(href: string, replacement = '***@'): string {
  try {
    const u = new URL(href);
    if (u.username === '' && u.password === '') return u.href;
    u.username = '';
    u.password = '';
    return u.href.replace('//', `//${replacement}`);
  } catch {
    return href;
  }
}

const USERINFO = /(\b[a-z][a-z0-9+.-]*:\/\/)[^/\s@]+@/gi;

/** Scrubs known secret values, and anything shaped like URL credentials, out of text. */
export class Redactor {
  private readonly secrets: string[];

  constructor(secrets: readonly string[]) {
    // Each secret also as it would be printed inside a URL or a JSON string. Longest first, so
    // that a secret containing another is replaced whole. Secrets shorter than 3 characters would
    // turn ordinary words into [REDACTED]; no real key is that short.
    const forms = secrets.flatMap((s) => [s, encodeURIComponent(s), JSON.stringify(s).slice(1, -1)]);
    this.secrets = [...new Set(forms)].filter((s) => s.length >= 3).sort((a, b) => b.length - a.length);
  }

  scrub(text: string): string {
    let out = text.replace(USERINFO, '$1***@');
    for (const s of this.secrets) {
      if (out.includes(s)) out = out.split(s).join('[REDACTED]');
    }
    return out;
  }
}
