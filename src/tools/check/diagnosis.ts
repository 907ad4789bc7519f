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

function errorCode(e: unknown): string | undefined {
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
