/**
 * One OTLP/HTTP POST of a body that is already serialized (and compressed): what an exit's sender
 * process and the spool's delivery at the next start send. No retries: what fails stays in the
 * spool for a later start.
 */
import * as fs from 'node:fs';
import type * as http from 'node:http';
import { errorText } from '../private-dir';

export { errorText };

/** Where and how to send; the headers are secrets and are never printed nor written to disk. */
export interface PostTarget {
  url: string;
  headers: Record<string, string>;
  /** `gzip` when the body is gzip-compressed. */
  encoding: 'gzip' | 'identity';
  /** PEM file of the CA(s) for an https endpoint (OTEL_EXPORTER_OTLP_CERTIFICATE). */
  certificateFile?: string;
  timeoutMillis: number;
}

/**
 * - `delivered`: a 2xx answer;
 * - `rejected`: a 4xx other than 408 and 429, which sending again would not change;
 * - `failed`: anything else (no connection, 5xx, 408, 429, timeout): worth another try later.
 */
export type PostOutcome = { result: 'delivered' | 'rejected' | 'failed'; why: string };

/** Exit codes of the sender process (src/worker/exit-sender.ts), one per outcome. */
export const SENDER_EXIT_CODE = { delivered: 0, rejected: 3, failed: 4 } as const;

export function postOtlp(
  target: PostTarget,
  body: Uint8Array,
  options: { unref?: boolean } = {},
): Promise<PostOutcome> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (outcome: PostOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(outcome);
    };
    let request: http.ClientRequest | undefined;
    const timer = setTimeout(() => {
      request?.destroy();
      done({ result: 'failed', why: `no answer within ${target.timeoutMillis} ms` });
    }, target.timeoutMillis);
    if (options.unref) timer.unref();
    try {
      const url = new URL(target.url);
      const https = url.protocol === 'https:';
      const transport = (https ? require('node:https') : require('node:http')) as typeof http;
      const headers: Record<string, string | number> = {
        ...target.headers,
        'content-type': 'application/x-protobuf',
        'content-length': body.byteLength,
      };
      if (target.encoding === 'gzip') headers['content-encoding'] = 'gzip';
      const ca = https && target.certificateFile ? readCa(target.certificateFile) : undefined;
      request = transport.request(url, { method: 'POST', headers, agent: false, ...(ca ? { ca } : {}) }, (res) => {
        res.resume();
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) done({ result: 'delivered', why: `HTTP ${status}` });
          else if (status >= 400 && status < 500 && status !== 408 && status !== 429)
            done({ result: 'rejected', why: `HTTP ${status}` });
          else done({ result: 'failed', why: `HTTP ${status}` });
        });
        res.on('error', (e) => done({ result: 'failed', why: errorText(e) }));
      });
      // A process that has nothing else to do must not wait for a spool delivery.
      if (options.unref) request.on('socket', (s) => s.unref());
      request.on('error', (e) => done({ result: 'failed', why: errorText(e) }));
      request.end(body);
    } catch (e) {
      done({ result: 'failed', why: errorText(e) });
    }
  });
}

/**
 * The CA file's PEM (OTEL_EXPORTER_OTLP_CERTIFICATE), read when a connection needs it. resolveConfig
 * checked the file; if it vanished since, undefined: the system CAs, as for every sender alike.
 */
export function readCa(file: string): Buffer | undefined {
  try {
    return fs.readFileSync(file);
  } catch {
    return undefined;
  }
}
