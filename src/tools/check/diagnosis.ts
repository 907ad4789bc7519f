/**
 * The probe's failures in plain words: what `describeExportError` (shared with the worker's
 * export warnings) says, plus what only a probe can tell, such as a gRPC port or a TLS handshake
 * that never completed.
 */
import { describeExportError, type Diagnosis } from '../../worker/diagnose';
import { checkMessages } from './messages';

/** The URL's port, the scheme's default when none is written. */
export function portOf(u: URL): number {
  return u.port !== '' ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
}

/** An error's string `code`, if it has one. */
export function errorCode(e: unknown): string | undefined {
  if (typeof e !== 'object' || e === null) return undefined;
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/** Network error codes that happen before (or instead of) a TLS handshake. */
const NOT_TLS = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT']);

/**
 * Turns a failed request into a diagnosis, adding what `describeExportError` cannot know: an
 * HTTP/1.1 request to a gRPC (HTTP/2 only) port gets binary HTTP/2 frames back, which Node's parser
 * rejects with an `HPE_*` code, or a reset; a TLS handshake that never completed.
 */
export function describeProbeError(
  error: unknown,
  url: string,
  opts: { timeoutMs?: number; tlsConnected?: boolean } = {},
): Diagnosis {
  const u = new URL(url);
  const code = errorCode(error);
  const grpcPort = portOf(u) === 4317;
  if (code === 'ETIMEDOUT' && opts.timeoutMs !== undefined) {
    return { kind: 'timeout', text: checkMessages.timeout(opts.timeoutMs, u.host) };
  }
  if (code !== undefined && code.startsWith('HPE_')) {
    const d = describeExportError(error, url);
    return { kind: d.kind, text: `${u.host}: ${d.text}${grpcPort ? checkMessages.tryPort4318 : ''}` };
  }
  if (
    u.protocol === 'https:' &&
    opts.tlsConnected === false &&
    (code === undefined || !NOT_TLS.has(code)) &&
    code !== 'ECONNRESET'
  ) {
    const d = describeExportError(error, url);
    if (d.kind === 'tls') return d;
    const why = error instanceof Error ? error.message : String(error);
    return { kind: 'tls', text: checkMessages.tlsFailed(code ?? why) };
  }
  const d = describeExportError(error, url);
  if (d.kind === 'reset' && grpcPort) return { kind: 'protocol', text: `${d.text}: ${checkMessages.grpcHint}` };
  if (d.kind === 'refused') return { kind: d.kind, text: `${d.text} (${u.host})` };
  if (d.kind === 'dns') return { kind: d.kind, text: `${d.text}: "${u.hostname}"` };
  return d;
}

/**
 * The `<title>` of an HTML page, one line, trimmed and clipped, or undefined. A sign-in page or a
 * proxy's error page says in its title what the endpoint really is, where the status code does not.
 */
export function htmlTitle(body: string): string | undefined {
  const m = /<title[^>]*>([\s\S]*?)<\/title>/i.exec(body);
  if (!m?.[1]) return undefined;
  const entities: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'", apos: "'", nbsp: ' ' };
  const title = m[1]
    .replace(/&(amp|lt|gt|quot|#39|apos|nbsp);/g, (_, e: string) => entities[e] ?? '')
    .replace(/\s+/g, ' ')
    .trim();
  if (title === '') return undefined;
  return title.length > 100 ? `${title.slice(0, 99)}…` : title;
}

/** Whether an answer's body is an HTML page, by its content-type or its first bytes. */
export function isHtml(contentType: string, body: string): boolean {
  return /text\/html|application\/xhtml/i.test(contentType) || /^\s*<(!doctype html|html)/i.test(body);
}

/**
 * Where a redirect points, safe to print: resolved against the URL asked, without user info and
 * without the query (either may hold a key, and neither is among the secrets output is scrubbed of).
 * `dropped` says whether a query was removed, so the reader knows to add it back.
 */
export function redirectTarget(location: string, from: string): { url: string; dropped: boolean } | undefined {
  let u: URL;
  try {
    u = new URL(location, from);
  } catch {
    return undefined;
  }
  const dropped = u.search !== '' || u.hash !== '';
  u.username = '';
  u.password = '';
  u.search = '';
  u.hash = '';
  return { url: u.href, dropped };
}

/**
 * The names a certificate was issued for, from its subjectAltName (`DNS:a, IP Address:1.2.3.4`),
 * else its subject's CN; at most five, then how many more.
 */
export function certNames(cert: { subjectaltname?: string; subject?: { CN?: string | string[] } }): string[] {
  const san = (cert.subjectaltname ?? '')
    .split(/,\s*/)
    .map((n) => n.replace(/^(DNS|IP Address|IP):/i, '').trim())
    .filter((n) => n !== '');
  const cn = cert.subject?.CN;
  const names = san.length > 0 ? san : cn === undefined ? [] : Array.isArray(cn) ? cn : [cn];
  return names.length > 5 ? [...names.slice(0, 5), `${names.length - 5} more`] : names;
}
