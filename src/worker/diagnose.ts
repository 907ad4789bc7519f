/**
 * Turns an export failure into one plain sentence: what happened and the likely fix. Shared by
 * the exporter's warnings and `forktrace check`.
 */
import { UPSTREAM_TEXT } from './upstream';

export interface Diagnosis {
  /** A stable short name, used for rate limiting and in `check --json`. */
  kind: string;
  text: string;
}

const NETWORK: Record<string, Diagnosis> = {
  ECONNREFUSED: { kind: 'refused', text: 'connection refused: nothing is listening at that host and port' },
  ENOTFOUND: { kind: 'dns', text: 'the host name does not resolve (DNS)' },
  EAI_AGAIN: { kind: 'dns', text: 'the host name could not be resolved right now (DNS)' },
  ECONNRESET: { kind: 'reset', text: 'the connection was reset by the other side' },
  EPIPE: { kind: 'reset', text: 'the connection was closed while sending' },
  ETIMEDOUT: { kind: 'timeout', text: 'no answer in time' },
  EHOSTUNREACH: { kind: 'unreachable', text: 'the host is unreachable' },
  ENETUNREACH: { kind: 'unreachable', text: 'the network is unreachable' },
};

export function describeHttpStatus(status: number, url?: string): Diagnosis {
  if (status === 401 || status === 403) {
    return {
      kind: 'auth',
      text: `HTTP ${status}: the API key or its header name is wrong (FORKTRACE_API_KEY, FORKTRACE_API_KEY_HEADER or OTEL_EXPORTER_OTLP_HEADERS)`,
    };
  }
  if (status === 404) {
    const hint =
      url && !url.endsWith('/v1/traces')
        ? ' (the URL does not end in /v1/traces: set OTEL_EXPORTER_OTLP_ENDPOINT to the base URL, or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT to the full one)'
        : url && url.includes('/v1/traces/v1/traces')
          ? ' (/v1/traces appears twice: OTEL_EXPORTER_OTLP_ENDPOINT takes the base URL only)'
          : ' (check the path; OTEL_EXPORTER_OTLP_ENDPOINT gets /v1/traces appended, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is used as-is)';
    return { kind: 'path', text: `HTTP 404: no OTLP traces endpoint at ${url ?? 'that URL'}${hint}` };
  }
  if (status === 413)
    return {
      kind: 'too-large',
      text: 'HTTP 413: the batch is too large for the endpoint; lower OTEL_BSP_MAX_EXPORT_BATCH_SIZE',
    };
  if (status === 415)
    return {
      kind: 'protocol',
      text: 'HTTP 415: the endpoint does not take OTLP/HTTP protobuf (is it a gRPC port such as 4317? OTLP/HTTP is usually 4318)',
    };
  if (status === 429) return { kind: 'throttled', text: 'HTTP 429: the endpoint is throttling (rate limit or quota)' };
  if (status === 502 || status === 503 || status === 504)
    return {
      kind: 'unavailable',
      text: `HTTP ${status}: the endpoint is unavailable (down, overloaded, or a proxy in front of it has no backend)`,
    };
  if (status >= 500) return { kind: 'server', text: `HTTP ${status}: the endpoint failed on its side` };
  return { kind: `http-${status}`, text: `HTTP ${status}` };
}

function codeOf(e: unknown): unknown {
  if (typeof e !== 'object' || e === null) return undefined;
  const o = e as { code?: unknown; cause?: unknown };
  return o.code ?? codeOf(o.cause);
}

/** Seconds in a `Retry-After` header (delay-seconds or an HTTP date), or undefined. */
function retryAfterSeconds(value: string, now = Date.now()): number | undefined {
  if (/^\s*\d+\s*$/.test(value)) return Number(value);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.round((at - now) / 1000));
}

/** What the exporter adds to the errors it explains (exporter.ts). */
interface ExporterAnnotations {
  retryAfter?: unknown;
  timeoutMillis?: unknown;
}

/** Why the retries of a retryable answer (429, 502, 503, 504) ended. */
function retriesEnded(a: ExporterAnnotations): string {
  const timeout = `the ${String(a.timeoutMillis)} ms export timeout (OTEL_EXPORTER_OTLP_TIMEOUT)`;
  if (typeof a.retryAfter === 'string') {
    const seconds = retryAfterSeconds(a.retryAfter);
    if (seconds !== undefined && seconds * 1000 > Number(a.timeoutMillis)) {
      return `it asked to retry after ${seconds} s (Retry-After: ${a.retryAfter}), later than ${timeout} allows, so it was not retried`;
    }
    return `retried as asked (Retry-After: ${a.retryAfter}) until ${timeout} ran out`;
  }
  return `retried with backoff until ${timeout} ran out`;
}

/** The reason OpenSSL gives, e.g. "wrong version number" out of "…:ssl3_get_record:wrong version number:…". */
function opensslReason(message: string): string | undefined {
  return /:(?:SSL routines|[^:]*routines):[^:]*:([^:]+)/.exec(message)?.[1]?.trim();
}

function describeTlsError(code: string, message: string): Diagnosis {
  const reason = opensslReason(message);
  if (/wrong version number|packet length too long|http request/i.test(message)) {
    return {
      kind: 'tls',
      text: `TLS failed (${code}: ${reason ?? 'not a TLS answer'}): the port answers in plain http. Use http:// in the endpoint, or the endpoint's TLS port`,
    };
  }
  if (code.includes('CERT') || code.includes('SIGNATURE') || code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return {
      kind: 'tls',
      text: `TLS failed (${code}): the endpoint's certificate is not trusted here. If a private CA signed it, set OTEL_EXPORTER_OTLP_CERTIFICATE to the CA's PEM file`,
    };
  }
  return {
    kind: 'tls',
    text: `TLS failed (${code}${reason ? `: ${reason}` : ''}): check https vs http, and the CA (OTEL_EXPORTER_OTLP_CERTIFICATE)`,
  };
}

export function describeExportError(error: unknown, url?: string): Diagnosis {
  if (error === undefined || error === null) return { kind: 'unknown', text: 'unknown error' };
  const code = codeOf(error);
  const message = error instanceof Error ? error.message : String(error);
  const annotations = error as ExporterAnnotations;
  if (typeof code === 'number') {
    const d = describeHttpStatus(code, url);
    if (typeof annotations.timeoutMillis === 'number') {
      return { kind: d.kind, text: `${d.text}; ${retriesEnded(annotations)}` };
    }
    const data = (error as { data?: unknown }).data;
    // A 4xx body often says exactly what is wrong; keep a trimmed, single-line copy.
    if (code >= 400 && code < 500 && typeof data === 'string' && data.trim() !== '') {
      const body = data.replace(/\s+/g, ' ').trim().slice(0, 200);
      return { kind: d.kind, text: `${d.text}; the endpoint said: ${body}` };
    }
    return d;
  }
  if (code === 'ETIMEDOUT' && typeof annotations.timeoutMillis === 'number') {
    return { kind: 'timeout', text: `no answer within ${annotations.timeoutMillis} ms (OTEL_EXPORTER_OTLP_TIMEOUT)` };
  }
  if (typeof code === 'string') {
    const known = NETWORK[code];
    if (known) return known;
    if (code.startsWith('ERR_TLS') || code.includes('CERT') || code === 'EPROTO' || /SSL|TLS/i.test(code)) {
      return describeTlsError(code, message);
    }
    // Node's HTTP parser rejected the answer: typically the binary HTTP/2 frames a gRPC-only port
    // sends to an HTTP/1.1 request.
    if (code.startsWith('HPE_')) {
      return {
        kind: 'protocol',
        text: `the endpoint did not answer in HTTP/1.1 (${code}): is this the gRPC port 4317? OTLP/HTTP is 4318`,
      };
    }
    return { kind: code.toLowerCase(), text: `${code}: ${message}` };
  }
  if (message === UPSTREAM_TEXT.concurrentLimit) {
    return {
      kind: 'backlog',
      text: 'too many exports already in flight: the endpoint answers slower than the app makes spans',
    };
  }
  if (message === UPSTREAM_TEXT.batchTimeout) {
    // The batch processor's own limit (sdk-trace BatchSpanProcessorBase), not the exporter's.
    return {
      kind: 'timeout',
      text: 'an export ran past OTEL_BSP_EXPORT_TIMEOUT; the batch processor moved on to the next batch',
    };
  }
  if (/timed? ?out/i.test(message)) {
    const within =
      typeof annotations.timeoutMillis === 'number' ? ` within ${annotations.timeoutMillis} ms` : ' in time';
    return { kind: 'timeout', text: `no answer${within} (OTEL_EXPORTER_OTLP_TIMEOUT)` };
  }
  if (/wrong version number|SSL|TLS|certificate/i.test(message)) {
    return {
      kind: 'tls',
      text: `TLS failed: ${message}; check https vs http, and the CA (OTEL_EXPORTER_OTLP_CERTIFICATE)`,
    };
  }
  return { kind: 'error', text: message };
}
