/** The one real, empty export `check` sends, and what came back. */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { performance } from 'node:perf_hooks';
import * as zlib from 'node:zlib';
import type { ResolvedConfig } from '../../config/types';
import { describeHttpStatus, type Diagnosis } from '../../worker/diagnose';
import { Redactor } from '../../worker/secrets';
import { describeProbeError, portOf } from './diagnosis';
import { checkMessages } from './messages';

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
  /** On a 2xx: whether the answer is OTLP's (protobuf, JSON or empty) rather than, say, a web page. */
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
  const caFile = config.certificateFile;
  let ca: Buffer | undefined;
  try {
    ca = u.protocol === 'https:' && caFile !== undefined ? fs.readFileSync(caFile) : undefined;
  } catch {
    ca = undefined;
  }
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
        if (status >= 200 && status < 300) {
          const otlp = /application\/(x-)?protobuf|application\/json/i.test(contentType) || contentType === '';
          finish({
            url,
            sent: true,
            ok: true,
            status,
            latencyMs,
            contentType,
            otlp,
            diagnosis: {
              kind: 'ok',
              text: otlp ? checkMessages.accepted(status) : checkMessages.notOtlp(status, contentType),
            },
          });
          return;
        }
        const d = describeHttpStatus(status, url);
        const text = Buffer.concat(chunks).toString('utf8').replace(/\s+/g, ' ').trim().slice(0, 200);
        const said =
          text !== '' && !/^<(!doctype|html)/i.test(text) ? checkMessages.endpointSaid(redactor.scrub(text)) : '';
        const grpc = status === 415 && portOf(u) === 4317 ? checkMessages.grpcStatus : '';
        finish({
          url,
          sent: true,
          ok: false,
          status,
          latencyMs,
          contentType,
          diagnosis: { ...d, text: d.text + said + grpc },
        });
      });
    });
    req.on('socket', (socket) => socket.once('secureConnect', () => (tlsConnected = true)));
    req.on('error', (error) => {
      finish({
        url,
        sent: true,
        ok: false,
        latencyMs: elapsed(),
        diagnosis: describeProbeError(error, url, { timeoutMs: timedOut ? timeoutMs : undefined, tlsConnected }),
      });
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      req.destroy(Object.assign(new Error(checkMessages.abortTimeout(timeoutMs)), { code: 'ETIMEDOUT' }));
    }, timeoutMs);
    req.end(body);
  });
}
