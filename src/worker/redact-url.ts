/**
 * Redaction of sensitive query values (`?token=`, `?api_key=`, …) in URL attributes, for every
 * instrumentation's spans (instrumentations.ts) and for forktrace's request handler (http-server.ts).
 */
import type { Attributes } from '@opentelemetry/api';

/** Query parameters whose values are replaced in URL attributes (matched case-insensitively). */
const SENSITIVE_QUERY_KEY = /token|key|secret|passw|pwd|signature|^sig$|auth|credential|session|^code$/i;
export const REDACTED = 'REDACTED';
const URL_ATTRIBUTES = ['url.full', 'url.query', 'http.url', 'http.target'];

/** Replaces the values of sensitive parameters in a query string or a URL that has one. */
export function redactQuery(value: string): string {
  const q = value.indexOf('?');
  if (q < 0 && (value.startsWith('/') || value.includes('://'))) return value;
  // With no '?', the value is a bare query string (url.query).
  const head = value.slice(0, q + 1);
  const rest = value.slice(q + 1);
  const hash = rest.indexOf('#');
  const query = hash >= 0 ? rest.slice(0, hash) : rest;
  const tail = hash >= 0 ? rest.slice(hash) : '';
  let changed = false;
  const parts = query.split('&').map((part) => {
    const eq = part.indexOf('=');
    if (eq < 0) return part;
    let key = part.slice(0, eq);
    try {
      key = decodeURIComponent(key.replace(/\+/g, ' '));
    } catch {
      // keep the raw key
    }
    if (!SENSITIVE_QUERY_KEY.test(key)) return part;
    changed = true;
    return `${part.slice(0, eq)}=${REDACTED}`;
  });
  return changed ? head + parts.join('&') + tail : value;
}

/** Calls `set` with each URL attribute of `attrs` whose redaction changes it, redacted. */
export function redactUrlAttributes(attrs: Attributes, set: (key: string, value: string) => void): void {
  for (const key of URL_ATTRIBUTES) {
    const v = attrs[key];
    if (typeof v === 'string' && v.includes('=')) {
      const redacted = redactQuery(v);
      if (redacted !== v) set(key, redacted);
    }
  }
}
