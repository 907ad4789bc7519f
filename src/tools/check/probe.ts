/** The one real, empty export `check` sends, and what came back. */
import * as http from 'node:http';
import * as net from 'node:net';
import * as https from 'node:https';
import * as tls from 'node:tls';
import type { PeerCertificate } from 'node:tls';
import { performance } from 'node:perf_hooks';
import * as zlib from 'node:zlib';
import type { ResolvedConfig } from '../../config/types';
import { describeHttpStatus, type Diagnosis } from '../../worker/diagnose';
import { readCa } from '../../worker/otlp-post';
import { Redactor } from '../../worker/secrets';
import { certNames, describeProbeError, errorCode, htmlTitle, isHtml, portOf, redirectTarget } from './diagnosis';
import { checkMessages } from './messages';

/** nginx's page for plain http on a TLS port (its 497 error, sent as a 400). */
const PLAIN_HTTP_TO_TLS_PORT = /The plain HTTP request was sent to HTTPS port/i;

/** The result of the one real export `check` sends. */
export interface ExportProbe {
  url: string;
  /** False when the export was not attempted (`--no-send`, no OTLP exporter, tracing disabled). */
  sent: boolean;
  ok: boolean;
  status?: number;
  latencyMs?: number;
  /** The response's content-type, on an HTTP answer. */
  contentType?: string;
  /** On a 2xx: whether the answer is OTLP's (protobuf, JSON or empty) rather than, say, a web page; `ok` is false when not. */
  otlp?: boolean;
  diagnosis: Diagnosis;
}

/**
 * Sends one real, empty OTLP/HTTP export (an ExportTraceServiceRequest with no spans: zero
 * protobuf bytes, gzip-compressed when configured) with the configured headers, and reports the
 * HTTP status and latency. `scrub` is applied to anything the endpoint sends back.
 */
export function sendEmptyExport(config: ResolvedConfig, timeoutMs: number): Promise<ExportProbe> {
  const url = config.endpoint;
  const u = new URL(url);
  const redactor = new Redactor(config.secrets);
  const body = config.compression === 'gzip' ? zlib.gzipSync(Buffer.alloc(0)) : Buffer.alloc(0);
  const headers: Record<string, string> = {
    ...config.headers,
    'content-type': 'application/x-protobuf',
    'content-length': String(body.length),
  };
  if (config.compression === 'gzip') headers['content-encoding'] = 'gzip';
  const transport = u.protocol === 'https:' ? https : http;
  // The CA the exporter trusts (OTEL_EXPORTER_OTLP_CERTIFICATE), so that the check trusts the same.
  const ca =
    u.protocol === 'https:' && config.certificateFile !== undefined ? readCa(config.certificateFile) : undefined;
  return new Promise<ExportProbe>((resolve) => {
    const started = performance.now();
    const elapsed = () => Math.round((performance.now() - started) * 10) / 10;
    let tlsConnected = false;
    let settled = false;
    const finish = (p: ExportProbe) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(p);
    };
    const req = transport.request(u, { method: 'POST', headers, agent: false, ...(ca ? { ca } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        if (size < 64 * 1024) chunks.push(c);
        size += c.length;
      });
      res.on('error', () => undefined);
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        const contentType = String(res.headers['content-type'] ?? '');
        const latencyMs = elapsed();
        const raw = Buffer.concat(chunks).toString('utf8');
        const html = isHtml(contentType, raw);
        // An HTML page's title can echo what was asked (a key in a query, a user name): scrubbed.
        const title = html ? htmlTitle(raw) : undefined;
        const shownTitle = title === undefined ? undefined : redactor.scrub(title);
        const answered = (diagnosis: Diagnosis, extra: { ok?: boolean; otlp?: boolean } = {}) =>
          finish({ url, sent: true, ok: false, status, latencyMs, contentType, ...extra, diagnosis });
        if (status >= 200 && status < 300) {
          const otlp =
            !html && (/application\/(x-)?protobuf|application\/json/i.test(contentType) || contentType === '');
          // A 2xx that is not OTLP's answer (a sign-in page behind a proxy, a dashboard) means the
          // exporter's spans are dropped with no error anywhere: a problem, not a success.
          return answered(
            otlp
              ? { kind: 'ok', text: checkMessages.accepted(status) }
              : {
                  kind: 'not-otlp',
                  text: html ? checkMessages.htmlPage(status, shownTitle) : checkMessages.notOtlp(status, contentType),
                },
            { ok: otlp, otlp },
          );
        }
        if ([301, 302, 303, 307, 308].includes(status)) {
          const location = res.headers.location;
          const target = location === undefined ? undefined : redirectTarget(location, url);
          return answered({
            kind: 'redirect',
            text: checkMessages.redirect(
              status,
              target === undefined ? undefined : redactor.scrub(target.url),
              target?.dropped ?? false,
            ),
          });
        }
        // A TLS port that got plain http: nginx (and servers copying it) answer 400 with this page
        // instead of failing the handshake, so the answer looks like an HTTP error, not a TLS one.
        if (status === 400 && u.protocol === 'http:' && PLAIN_HTTP_TO_TLS_PORT.test(raw))
          return answered({ kind: 'tls', text: checkMessages.plainHttpToTlsPort(u.host) });
        const d = describeHttpStatus(status, url);
        const text = raw.replace(/\s+/g, ' ').trim().slice(0, 200);
        const said =
          shownTitle !== undefined
            ? checkMessages.pageTitle(shownTitle)
            : text !== '' && !html
              ? checkMessages.endpointSaid(redactor.scrub(text))
              : '';
        const grpc = status === 415 && portOf(u) === 4317 ? checkMessages.grpcStatus : '';
        answered({ ...d, text: d.text + said + grpc });
      });
    });
    req.on('socket', (socket) => socket.once('secureConnect', () => (tlsConnected = true)));
    req.on('error', (error) => {
      const base = {
        url,
        sent: true,
        ok: false,
        latencyMs: elapsed(),
        diagnosis: describeProbeError(error, url, { timeoutMs: timedOut ? timeoutMs : undefined, tlsConnected }),
      };
      const code = errorCode(error);
      if (u.protocol !== 'https:' || code === undefined || !/CERT|SELF_SIGNED/.test(code)) return finish(base);
      // A certificate for another host name is otherwise blamed on the CA: say which names it holds.
      const named = (error as { cert?: PeerCertificate }).cert;
      void (named ? Promise.resolve(named) : peerCertificate(u, remaining())).then((cert) => {
        const names = cert ? certNames(cert) : [];
        const mismatch =
          cert !== undefined && names.length > 0 && tls.checkServerIdentity(u.hostname.replace(/^\[|\]$/g, ''), cert);
        finish(
          mismatch
            ? {
                ...base,
                diagnosis: {
                  kind: 'tls',
                  text: checkMessages.certOtherHost(code, u.host, names, code !== 'ERR_TLS_CERT_ALTNAME_INVALID'),
                },
              }
            : base,
        );
      });
    });
    const remaining = () => Math.max(1, timeoutMs - (performance.now() - started));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      req.destroy(Object.assign(new Error(checkMessages.abortTimeout(timeoutMs)), { code: 'ETIMEDOUT' }));
    }, timeoutMs);
    req.end(body);
  });
}

/**
 * The certificate an https endpoint presents, read by a handshake that verifies nothing and
 * sends nothing after it (no request, so no header or key), or undefined. Used only to name the
 * host names of a certificate the real request already refused.
 */
function peerCertificate(u: URL, timeoutMs: number): Promise<PeerCertificate | undefined> {
  return new Promise((resolve) => {
    const host = u.hostname.replace(/^\[|\]$/g, '');
    const socket = tls.connect({
      host,
      port: portOf(u),
      ...(net.isIP(host) === 0 ? { servername: host } : {}),
      rejectUnauthorized: false,
    });
    const done = (cert: PeerCertificate | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(cert);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    socket.once('secureConnect', () => {
      const cert = socket.getPeerCertificate();
      done(cert && Object.keys(cert).length > 0 ? cert : undefined);
    });
    socket.once('error', () => done(undefined));
  });
}
