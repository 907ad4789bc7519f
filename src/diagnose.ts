/**
 * Turns an export failure into one plain sentence: what happened and the likely fix. Shared by
 * the exporter's warnings and `forktrace check`.
 */

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
  if (status === 429)
    return { kind: 'throttled', text: 'HTTP 429: the endpoint is throttling; spans were retried with backoff' };
  if (status >= 500) return { kind: 'server', text: `HTTP ${status}: the endpoint failed on its side` };
  return { kind: `http-${status}`, text: `HTTP ${status}` };
}

function codeOf(e: unknown): unknown {
  if (typeof e !== 'object' || e === null) return undefined;
  const o = e as { code?: unknown; cause?: unknown };
  return o.code ?? codeOf(o.cause);
}

export function describeExportError(error: unknown, url?: string): Diagnosis {
  if (error === undefined || error === null) return { kind: 'unknown', text: 'unknown error' };
  const code = codeOf(error);
  const message = error instanceof Error ? error.message : String(error);
  if (typeof code === 'number') {
    const d = describeHttpStatus(code, url);
    const data = (error as { data?: unknown }).data;
    // A 4xx body often says exactly what is wrong; keep a trimmed, single-line copy.
    if (code >= 400 && code < 500 && typeof data === 'string' && data.trim() !== '') {
      const body = data.replace(/\s+/g, ' ').trim().slice(0, 200);
      return { kind: d.kind, text: `${d.text}; the endpoint said: ${body}` };
    }
    return d;
  }
  if (typeof code === 'string') {
    const known = NETWORK[code];
    if (known) return known;
    if (code.startsWith('ERR_TLS') || code.includes('CERT') || code === 'EPROTO' || /SSL|TLS/i.test(code)) {
      return {
        kind: 'tls',
        text: `TLS failed (${code}): check https vs http, and the CA (OTEL_EXPORTER_OTLP_CERTIFICATE)`,
      };
    }
    return { kind: code.toLowerCase(), text: `${code}: ${message}` };
  }
  if (/timeout/i.test(message)) return { kind: 'timeout', text: 'no answer in time (OTEL_EXPORTER_OTLP_TIMEOUT)' };
  if (/wrong version number|SSL|TLS|certificate/i.test(message)) {
    return {
      kind: 'tls',
      text: `TLS failed: ${message}; check https vs http, and the CA (OTEL_EXPORTER_OTLP_CERTIFICATE)`,
    };
  }
  return { kind: 'error', text: message };
}
