/**
 * A local OTLP/HTTP trace and metrics receiver: what the test suite asserts
 * against and what `forktrace tail` prints from. It decodes real exporter traffic with the
 * real `protobufjs` library against the OTLP schema in `./otlp-proto`.
 *
 * Wire protocol: OTLP/HTTP, opentelemetry-proto docs/specification.md
 * ("OTLP/HTTP" and "JSON Protobuf Encoding").
 */

import { EventEmitter } from 'node:events';
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import type * as Protobuf from 'protobufjs';

import { flattenMetrics, metricsHexIdsToBase64, type DecodedMetricPoint, type PbMetricsRequest } from './metric-points';
import {
  EXPORT_METRICS_REQUEST_TYPE,
  EXPORT_METRICS_RESPONSE_TYPE,
  EXPORT_TRACE_REQUEST_TYPE,
  EXPORT_TRACE_RESPONSE_TYPE,
  OTLP_PROTO_FILES,
} from './otlp-proto';
import { field, hex, hexFieldsToBase64, objects, unwrapAttributes, type PbKeyValue } from './otlp-values';

export type {
  DecodedExemplar,
  DecodedMetricPoint,
  ExponentialBuckets,
  MetricKind,
  MetricTemporality,
} from './metric-points';

/** The OTLP/HTTP path for traces. */
const TRACES_PATH = '/v1/traces';

/** The OTLP/HTTP path for metrics. */
const METRICS_PATH = '/v1/metrics';

/** Default cap on both the received and the decompressed body size. */
const DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024;

/** Default time {@link Receiver.waitFor} and {@link Receiver.waitForMetrics} wait before rejecting. */
const DEFAULT_WAIT_TIMEOUT_MS = 10_000;

/** How many span (or metric) names a `waitFor` (`waitForMetrics`) timeout message lists before eliding. */
const MAX_NAMES_IN_MESSAGE = 40;

/** One HTTP request the receiver got, as kept in {@link Receiver.requests}. */
export interface ReceivedRequest {
  /** Request path without the query string, e.g. `/v1/traces` or `/v1/metrics`. */
  path: string;
  /** All request headers, keys lower-case, as Node's `IncomingMessage.headers`. */
  headers: Record<string, string | string[] | undefined>;
  /** The `content-type` header as sent, `''` when absent. */
  contentType: string;
  /** The `content-encoding` header as sent, `''` when absent (identity). */
  contentEncoding: string;
  /** Body size as received, before decompression. */
  wireBytes: number;
  /** Body size after decompression; 0 when the body was not decoded. */
  bodyBytes: number;
  /** Number of spans decoded from the body; 0 for a metrics request. */
  spanCount: number;
  /** Number of metric data points decoded from the body; 0 for a traces request. */
  pointCount: number;
  /** `Date.now()` when the body had been read. */
  receivedAt: number;
  /** HTTP status the receiver answered with; 0 for a request left hanging by `respond`. */
  status: number;
  /** Why the request was rejected, when {@link status} is not 200. */
  error?: string;
}

/** A span as decoded from OTLP, with ids in hex and attribute values unwrapped. */
export interface DecodedSpan {
  /** 32 lower-case hex chars. */
  traceId: string;
  /** 16 lower-case hex chars. */
  spanId: string;
  /** The parent's span id, `''` for a root span. */
  parentSpanId: string;
  name: string;
  /** OTLP SpanKind: 0 unspecified, 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
  /** `endTimeUnixNano - startTimeUnixNano` in milliseconds (fractional). */
  durationMs: number;
  /**
   * Attribute values unwrapped from OTLP AnyValue: string, boolean, number
   * (int64 beyond 2^53 stays a bigint), array, plain object for a kvlist,
   * `Uint8Array` for bytes and `null` for an empty AnyValue.
   */
  attributes: Record<string, unknown>;
  /** OTLP StatusCode: 0 unset, 1 ok, 2 error. */
  status: { code: number; message: string };
  events: Array<{ name: string; timeUnixNano: bigint; attributes: Record<string, unknown> }>;
  links: Array<{ traceId: string; spanId: string; attributes: Record<string, unknown> }>;
  /** Resource attributes, unwrapped like {@link attributes}. */
  resource: Record<string, unknown>;
  /** The instrumentation scope the span was reported under. */
  scope: { name: string; version: string };
}

/** A decoded span together with the HTTP request it arrived in. */
export interface ReceivedSpan extends DecodedSpan {
  request: ReceivedRequest;
}

/** A decoded metric data point together with the HTTP request it arrived in. */
export interface ReceivedMetricPoint extends DecodedMetricPoint {
  request: ReceivedRequest;
}

/** The answer a {@link ReceiverOptions.respond} hook makes the receiver send. */
export interface InjectedResponse {
  status: number;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

/** Options of {@link startReceiver}. */
export interface ReceiverOptions {
  /** TCP port; 0 (the default) picks a free one. */
  port?: number;
  /** Interface to listen on; default `'127.0.0.1'`. */
  host?: string;
  /** Largest body accepted, both as received and decompressed; default 32 MiB. Larger bodies get 413. */
  maxBodyBytes?: number;
  /**
   * Fault injection for tests and the CLI, called per request with the raw
   * request before anything else: return a response to send instead of
   * decoding, `'hang'` to read the body and never answer, or `undefined` to
   * behave normally.
   */
  respond?: (req: http.IncomingMessage) => InjectedResponse | 'hang' | undefined;
}

/** A running receiver; see {@link startReceiver}. */
export interface Receiver {
  /** The traces endpoint, e.g. `'http://127.0.0.1:4318/v1/traces'`. */
  readonly url: string;
  /** The metrics endpoint, e.g. `'http://127.0.0.1:4318/v1/metrics'`. */
  readonly metricsUrl: string;
  readonly port: number;
  /** Every span received since start or the last {@link reset}, in arrival order. */
  readonly spans: ReceivedSpan[];
  /**
   * Every metric data point received since start or the last {@link reset},
   * in arrival order: one entry per point, with its metric's name, kind and
   * temporality on it.
   */
  readonly metrics: ReceivedMetricPoint[];
  /** Every request received since start or the last {@link reset}, rejected ones included (see `status`). */
  readonly requests: ReceivedRequest[];
  /** Emitted after a request's spans have been decoded and kept. */
  on(event: 'spans', listener: (spans: ReceivedSpan[], req: ReceivedRequest) => void): this;
  /** Emitted after a metrics request's data points have been decoded and kept. */
  on(event: 'metrics', listener: (points: ReceivedMetricPoint[], req: ReceivedRequest) => void): this;
  /** Emitted for every request once it has been answered (or left hanging), including rejected ones. */
  on(event: 'request', listener: (req: ReceivedRequest) => void): this;
  off(event: 'spans', listener: (spans: ReceivedSpan[], req: ReceivedRequest) => void): this;
  off(event: 'metrics', listener: (points: ReceivedMetricPoint[], req: ReceivedRequest) => void): this;
  off(event: 'request', listener: (req: ReceivedRequest) => void): this;
  /**
   * Resolves with (a copy of) all spans received so far once
   * `predicate(allSpans)` is true, checking now and after every request.
   * Rejects after `timeoutMs` (default 10000) with a message giving the span
   * count and names received, or when the receiver is closed.
   */
  waitFor(predicate: (spans: ReceivedSpan[]) => boolean, timeoutMs?: number): Promise<ReceivedSpan[]>;
  /**
   * Like {@link waitFor} for metric data points: resolves with (a copy of)
   * all points received so far once `predicate(allPoints)` is true. The
   * timeout message gives the point count per metric name received.
   */
  waitForMetrics(
    predicate: (points: ReceivedMetricPoint[]) => boolean,
    timeoutMs?: number,
  ): Promise<ReceivedMetricPoint[]>;
  /** Forget all kept spans, metric points and requests. */
  reset(): void;
  /** Stop listening, destroy open sockets (hung requests included) and resolve once closed. */
  close(): Promise<void>;
}

/**
 * An OTLP request the receiver cannot accept; `statusCode` is the HTTP
 * status to answer with (400 undecodable, 413 too large, 415 unsupported
 * media type or content encoding).
 */
export class OtlpRequestError extends Error {
  readonly statusCode: number;

  constructor(statusCode: number, message: string) {
    super(message);
    this.name = 'OtlpRequestError';
    this.statusCode = statusCode;
  }
}

// ---------------------------------------------------------------------------
// Schema loading

type ProtoJson = typeof import('protobufjs/ext/protojson.js');

/** The two signals the receiver takes, by the OTLP/HTTP path they are posted to. */
type Signal = 'traces' | 'metrics';

interface SignalCodec {
  request: Protobuf.Type;
  response: Protobuf.Type;
  /** The request message's short name, for error messages. */
  requestName: string;
  /** Rewrites OTLP/JSON's hex ids to the base64 ProtoJSON reads. */
  fixJsonIds(json: unknown): void;
}

interface OtlpCodec {
  traces: SignalCodec;
  metrics: SignalCodec;
  protojson: ProtoJson;
}

let codecPromise: Promise<OtlpCodec> | undefined;

/**
 * Loads protobufjs and parses the schema on first use only (first
 * `startReceiver`, `decodeTraceRequest` or `decodeMetricsRequest`): that costs tens of milliseconds,
 * which a process that imports this module but never receives should not pay.
 */
function loadCodec(): Promise<OtlpCodec> {
  codecPromise ??= (async () => {
    const pb = (await import('protobufjs')).default;
    const protojson = (await import('protobufjs/ext/protojson.js')).default;
    const root = new pb.Root();
    for (const source of OTLP_PROTO_FILES) pb.parse(source, root);
    root.resolveAll();
    return {
      traces: {
        request: root.lookupType(EXPORT_TRACE_REQUEST_TYPE),
        response: root.lookupType(EXPORT_TRACE_RESPONSE_TYPE),
        requestName: 'ExportTraceServiceRequest',
        fixJsonIds: hexIdsToBase64,
      },
      metrics: {
        request: root.lookupType(EXPORT_METRICS_REQUEST_TYPE),
        response: root.lookupType(EXPORT_METRICS_RESPONSE_TYPE),
        requestName: 'ExportMetricsServiceRequest',
        fixJsonIds: metricsHexIdsToBase64,
      },
      protojson,
    };
  })().catch((err: unknown) => {
    // A failed load must not poison later attempts in a long-lived process.
    codecPromise = undefined;
    throw err;
  });
  return codecPromise;
}

// ---------------------------------------------------------------------------
// Decoding

type MediaKind = 'protobuf' | 'json';

function mediaKind(contentType: string): MediaKind | undefined {
  const essence = (contentType.split(';')[0] ?? '').trim().toLowerCase();
  if (essence === 'application/x-protobuf' || essence === 'application/protobuf') return 'protobuf';
  if (essence === 'application/json') return 'json';
  return undefined;
}

const gunzip = promisify(zlib.gunzip);
const inflate = promisify(zlib.inflate);
const inflateRaw = promisify(zlib.inflateRaw);

function zlibFailure(err: unknown, encoding: string): OtlpRequestError {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'ERR_BUFFER_TOO_LARGE') {
    return new OtlpRequestError(413, `${encoding} body decompresses to more than the size limit`);
  }
  return new OtlpRequestError(400, `invalid ${encoding} body: ${e.message}`);
}

async function decompress(body: Buffer, contentEncoding: string, maxBytes: number): Promise<Buffer> {
  const encoding = contentEncoding.trim().toLowerCase();
  // maxOutputLength bounds a decompression bomb before it is materialised.
  const opts = { maxOutputLength: maxBytes };
  switch (encoding) {
    case '':
    case 'identity':
      return body;
    case 'gzip':
    case 'x-gzip':
      try {
        return await gunzip(body, opts);
      } catch (err) {
        throw zlibFailure(err, 'gzip');
      }
    case 'deflate':
      // HTTP "deflate" means zlib-wrapped (RFC 9110 8.4.1.2), but some
      // clients send raw deflate; accept both rather than guess wrong.
      try {
        return await inflate(body, opts);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw zlibFailure(err, 'deflate');
        try {
          return await inflateRaw(body, opts);
        } catch (rawErr) {
          throw zlibFailure(rawErr, 'deflate');
        }
      }
    default:
      throw new OtlpRequestError(415, `unsupported content-encoding: ${contentEncoding}`);
  }
}

/**
 * OTLP/JSON trace and span ids are hex where ProtoJSON expects base64; see
 * {@link hexFieldsToBase64}.
 */
function hexIdsToBase64(json: unknown): void {
  // Both spellings: ProtoJSON readers accept original field names too, and the
  // id must not be read as base64 just because the sender used snake_case.
  const spanIdKeys = ['traceId', 'trace_id', 'spanId', 'span_id', 'parentSpanId', 'parent_span_id'];
  const linkIdKeys = ['traceId', 'trace_id', 'spanId', 'span_id'];
  for (const rs of objects(field(json, 'resourceSpans', 'resource_spans'))) {
    for (const ss of objects(field(rs, 'scopeSpans', 'scope_spans'))) {
      for (const span of objects(field(ss, 'spans'))) {
        hexFieldsToBase64(span, spanIdKeys);
        for (const link of objects(field(span, 'links'))) hexFieldsToBase64(link, linkIdKeys);
      }
    }
  }
}

/** protobufjs `toObject` output for the trace request; only what flattening reads. */
interface PbSpan {
  traceId?: Uint8Array;
  spanId?: Uint8Array;
  parentSpanId?: Uint8Array;
  name?: string;
  kind?: number;
  startTimeUnixNano?: bigint;
  endTimeUnixNano?: bigint;
  attributes?: PbKeyValue[];
  events?: Array<{ timeUnixNano?: bigint; name?: string; attributes?: PbKeyValue[] }>;
  links?: Array<{ traceId?: Uint8Array; spanId?: Uint8Array; attributes?: PbKeyValue[] }>;
  status?: { code?: number; message?: string };
}
interface PbRequest {
  resourceSpans?: Array<{
    resource?: { attributes?: PbKeyValue[] };
    scopeSpans?: Array<{
      scope?: { name?: string; version?: string };
      spans?: PbSpan[];
    }>;
  }>;
}

const TO_OBJECT_OPTIONS: Protobuf.IConversionOptions = {
  // fixed64 nanosecond timestamps exceed 2^53; BigInt keeps them exact.
  longs: BigInt,
  // Names which member of AnyValue's oneof is set, so an explicit empty
  // string / false / 0 is told apart from an empty AnyValue.
  oneofs: true,
};

function flatten(request: PbRequest): DecodedSpan[] {
  const out: DecodedSpan[] = [];
  for (const rs of request.resourceSpans ?? []) {
    const resource = unwrapAttributes(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      const scope = { name: ss.scope?.name ?? '', version: ss.scope?.version ?? '' };
      for (const s of ss.spans ?? []) {
        const start = s.startTimeUnixNano ?? 0n;
        const end = s.endTimeUnixNano ?? 0n;
        out.push({
          traceId: hex(s.traceId),
          spanId: hex(s.spanId),
          parentSpanId: hex(s.parentSpanId),
          name: s.name ?? '',
          kind: s.kind ?? 0,
          startTimeUnixNano: start,
          endTimeUnixNano: end,
          durationMs: Number(end - start) / 1e6,
          attributes: unwrapAttributes(s.attributes),
          status: { code: s.status?.code ?? 0, message: s.status?.message ?? '' },
          events: (s.events ?? []).map((e) => ({
            name: e.name ?? '',
            timeUnixNano: e.timeUnixNano ?? 0n,
            attributes: unwrapAttributes(e.attributes),
          })),
          links: (s.links ?? []).map((l) => ({
            traceId: hex(l.traceId),
            spanId: hex(l.spanId),
            attributes: unwrapAttributes(l.attributes),
          })),
          resource,
          scope,
        });
      }
    }
  }
  return out;
}

/** A request body decoded to protobufjs' `toObject` form, before flattening. */
interface DecodedBody {
  obj: unknown;
  bodyBytes: number;
  kind: MediaKind;
}

async function decodeBody(
  signal: Signal,
  body: Buffer,
  contentType: string,
  contentEncoding: string,
  maxBytes: number,
): Promise<DecodedBody> {
  const kind = mediaKind(contentType);
  if (kind === undefined) {
    throw new OtlpRequestError(
      415,
      `unsupported content-type: ${contentType || '(none)'}; use application/x-protobuf or application/json`,
    );
  }
  const codec = await loadCodec();
  const sc = codec[signal];
  const raw = await decompress(body, contentEncoding, maxBytes);
  let message: Protobuf.Message;
  if (kind === 'protobuf') {
    try {
      message = sc.request.decode(raw);
    } catch (err) {
      throw new OtlpRequestError(400, `invalid protobuf ${sc.requestName}: ${(err as Error).message}`);
    }
  } else {
    try {
      const json: unknown = JSON.parse(raw.toString('utf8'));
      sc.fixJsonIds(json);
      // Unknown fields must be ignored (specification.md, "JSON Protobuf Encoding").
      message = codec.protojson.fromJson(sc.request, json, { ignoreUnknownFields: true });
    } catch (err) {
      throw new OtlpRequestError(400, `invalid JSON ${sc.requestName}: ${(err as Error).message}`);
    }
  }
  return { obj: sc.request.toObject(message, TO_OBJECT_OPTIONS), bodyBytes: raw.length, kind };
}

/**
 * Decodes one OTLP/HTTP trace export body into flat spans, without a server.
 *
 * @param body The request body as received.
 * @param contentType The `content-type` header: `application/x-protobuf` or `application/json` (parameters ignored).
 * @param contentEncoding The `content-encoding` header: `''`/`identity`, `gzip` or `deflate`.
 * @throws {OtlpRequestError} with `statusCode` 400 for an undecodable body, 413 for
 *   one that decompresses beyond 32 MiB, 415 for an unsupported type or encoding.
 */
export async function decodeTraceRequest(
  body: Buffer,
  contentType: string,
  contentEncoding: string,
): Promise<DecodedSpan[]> {
  const decoded = await decodeBody('traces', body, contentType, contentEncoding, DEFAULT_MAX_BODY_BYTES);
  return flatten(decoded.obj as PbRequest);
}

/**
 * Decodes one OTLP/HTTP metrics export body (ExportMetricsServiceRequest)
 * into one entry per data point, without a server.
 *
 * @param body The request body as received.
 * @param contentType The `content-type` header: `application/x-protobuf` or `application/json` (parameters ignored).
 * @param contentEncoding The `content-encoding` header: `''`/`identity`, `gzip` or `deflate`.
 * @throws {OtlpRequestError} with `statusCode` 400 for an undecodable body, 413 for
 *   one that decompresses beyond 32 MiB, 415 for an unsupported type or encoding.
 */
export async function decodeMetricsRequest(
  body: Buffer,
  contentType: string,
  contentEncoding: string,
): Promise<DecodedMetricPoint[]> {
  const decoded = await decodeBody('metrics', body, contentType, contentEncoding, DEFAULT_MAX_BODY_BYTES);
  return flattenMetrics(decoded.obj as PbMetricsRequest);
}

// ---------------------------------------------------------------------------
// Server

class BodyTooLarge extends Error {}

function readBody(req: http.IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > maxBytes) {
        req.off('data', onData);
        req.resume();
        reject(new BodyTooLarge());
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => resolve(Buffer.concat(chunks, size)));
    req.once('error', reject);
    // A client that disconnects mid-body gets no 'end'; don't leave this pending.
    req.once('close', () => reject(new Error('connection closed before the body ended')));
  });
}

function headerString(v: string | string[] | undefined): string {
  return Array.isArray(v) ? v.join(', ') : (v ?? '');
}

function describeSpans(spans: readonly ReceivedSpan[], requests: number): string {
  const names = spans.slice(0, MAX_NAMES_IN_MESSAGE).map((s) => JSON.stringify(s.name));
  const more = spans.length > MAX_NAMES_IN_MESSAGE ? `, … ${spans.length - MAX_NAMES_IN_MESSAGE} more` : '';
  return (
    `received ${spans.length} span(s) in ${requests} request(s)` +
    (spans.length > 0 ? `: [${names.join(', ')}${more}]` : '')
  );
}

function describeMetrics(points: readonly ReceivedMetricPoint[], requests: number): string {
  const perName = new Map<string, number>();
  for (const p of points) perName.set(p.name, (perName.get(p.name) ?? 0) + 1);
  const names = [...perName].slice(0, MAX_NAMES_IN_MESSAGE).map(([name, n]) => `${JSON.stringify(name)} (${n})`);
  const more = perName.size > MAX_NAMES_IN_MESSAGE ? `, … ${perName.size - MAX_NAMES_IN_MESSAGE} more` : '';
  return (
    `received ${points.length} metric point(s) in ${requests} request(s)` +
    (points.length > 0 ? `, points per metric: [${names.join(', ')}${more}]` : '')
  );
}

interface Waiter {
  check(): void;
  /** Rejects with `reason` followed by what was received. */
  fail(reason: string): void;
}

class ReceiverImpl extends EventEmitter implements Receiver {
  readonly spans: ReceivedSpan[] = [];
  readonly metrics: ReceivedMetricPoint[] = [];
  readonly requests: ReceivedRequest[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly waiters = new Set<Waiter>();
  private closing: Promise<void> | undefined;
  private address = { url: '', metricsUrl: '', port: 0 };

  constructor(
    private readonly server: http.Server,
    private readonly codec: OtlpCodec,
    private readonly options: ReceiverOptions,
    private readonly maxBodyBytes: number,
  ) {
    super();
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) {
          this.sendText(res, 500, `receiver error: ${(err as Error).message}`);
          return;
        }
        // Once answered, the only thing left to throw is a 'spans'/'metrics'/'request'
        // listener; surface it as an uncaught exception, as an EventEmitter
        // used from an I/O callback would, rather than swallow it.
        process.nextTick(() => {
          throw err;
        });
      });
    });
  }

  get url(): string {
    return this.address.url;
  }

  get metricsUrl(): string {
    return this.address.metricsUrl;
  }

  get port(): number {
    return this.address.port;
  }

  /** Called once by startReceiver when the server is listening. */
  listening(host: string): void {
    const { port } = this.server.address() as AddressInfo;
    const origin = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    this.address = { url: `${origin}${TRACES_PATH}`, metricsUrl: `${origin}${METRICS_PATH}`, port };
  }

  waitFor(predicate: (spans: ReceivedSpan[]) => boolean, timeoutMs = DEFAULT_WAIT_TIMEOUT_MS): Promise<ReceivedSpan[]> {
    return this.wait(
      'waitFor',
      this.spans,
      () => describeSpans(this.spans, this.requests.length),
      predicate,
      timeoutMs,
    );
  }

  waitForMetrics(
    predicate: (points: ReceivedMetricPoint[]) => boolean,
    timeoutMs = DEFAULT_WAIT_TIMEOUT_MS,
  ): Promise<ReceivedMetricPoint[]> {
    const describe = (): string => describeMetrics(this.metrics, this.requests.length);
    return this.wait('waitForMetrics', this.metrics, describe, predicate, timeoutMs);
  }

  /** `items` is the live array (reset empties it in place), checked now and after every decoded request. */
  private wait<T>(
    method: string,
    items: T[],
    describe: () => string,
    predicate: (items: T[]) => boolean,
    timeoutMs: number,
  ): Promise<T[]> {
    return new Promise<T[]>((resolve, reject) => {
      const settle = (err?: Error): void => {
        this.waiters.delete(waiter);
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(items.slice());
      };
      const waiter: Waiter = {
        check: () => {
          try {
            if (predicate(items)) settle();
          } catch (err) {
            settle(err as Error);
          }
        },
        fail: (reason) => settle(new Error(`${reason}; ${describe()}`)),
      };
      const timer = setTimeout(() => waiter.fail(`${method} timed out after ${timeoutMs} ms`), timeoutMs);
      this.waiters.add(waiter);
      waiter.check();
    });
  }

  reset(): void {
    this.spans.length = 0;
    this.metrics.length = 0;
    this.requests.length = 0;
  }

  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      for (const w of [...this.waiters]) w.fail('receiver closed while waiting');
      this.server.close(() => resolve());
      // server.close() alone waits for keep-alive and hung requests to end.
      for (const socket of this.sockets) socket.destroy();
    });
    return this.closing;
  }

  private record(request: ReceivedRequest): void {
    this.requests.push(request);
    this.emit('request', request);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const contentType = headerString(req.headers['content-type']);
    const contentEncoding = headerString(req.headers['content-encoding']);
    const base = (wireBytes: number, status: number, error?: string): ReceivedRequest => ({
      path,
      headers: { ...req.headers },
      contentType,
      contentEncoding,
      wireBytes,
      bodyBytes: 0,
      spanCount: 0,
      pointCount: 0,
      receivedAt: Date.now(),
      status,
      ...(error === undefined ? {} : { error }),
    });

    const injected = this.options.respond?.(req);
    if (injected !== undefined) {
      const body = await this.readOrReject(req, res, base);
      if (body === undefined) return;
      if (injected === 'hang') {
        this.record(base(body.length, 0));
        return;
      }
      res.writeHead(injected.status, injected.headers);
      res.end(injected.body);
      this.record(base(body.length, injected.status));
      return;
    }

    const signal: Signal | undefined = path === TRACES_PATH ? 'traces' : path === METRICS_PATH ? 'metrics' : undefined;
    if (signal === undefined) {
      const msg = `not found: ${path}; OTLP traces go to POST ${TRACES_PATH}, metrics to POST ${METRICS_PATH}`;
      this.reject(res, 404, msg, base(0, 404));
      return;
    }
    if (req.method !== 'POST') {
      this.reject(res, 405, `method ${req.method ?? ''} not allowed; use POST`, base(0, 405), {
        allow: 'POST',
      });
      return;
    }
    if (mediaKind(contentType) === undefined) {
      const msg = `unsupported content-type: ${contentType || '(none)'}; use application/x-protobuf or application/json`;
      this.reject(res, 415, msg, base(0, 415));
      return;
    }
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > this.maxBodyBytes) {
      this.reject(res, 413, `body of ${declared} bytes exceeds the ${this.maxBodyBytes} byte limit`, base(0, 413));
      return;
    }

    const body = await this.readOrReject(req, res, base);
    if (body === undefined) return;

    let decoded: DecodedBody;
    try {
      decoded = await decodeBody(signal, body, contentType, contentEncoding, this.maxBodyBytes);
    } catch (err) {
      if (!(err instanceof OtlpRequestError)) throw err;
      this.reject(res, err.statusCode, err.message, base(body.length, err.statusCode));
      return;
    }

    const ok = { ...base(body.length, 200), bodyBytes: decoded.bodyBytes };
    if (signal === 'traces') {
      const spans = flatten(decoded.obj as PbRequest);
      const request: ReceivedRequest = { ...ok, spanCount: spans.length };
      const received = spans.map((s): ReceivedSpan => ({ ...s, request }));
      this.spans.push(...received);
      this.answer(res, signal, decoded.kind);
      this.record(request);
      this.emit('spans', received, request);
    } else {
      const points = flattenMetrics(decoded.obj as PbMetricsRequest);
      const request: ReceivedRequest = { ...ok, pointCount: points.length };
      const received = points.map((p): ReceivedMetricPoint => ({ ...p, request }));
      this.metrics.push(...received);
      this.answer(res, signal, decoded.kind);
      this.record(request);
      this.emit('metrics', received, request);
    }
    for (const w of [...this.waiters]) w.check();
  }

  /**
   * An empty ExportTraceServiceResponse or ExportMetricsServiceResponse: no
   * partial_success means everything was accepted (specification.md, "Full
   * Success").
   */
  private answer(res: http.ServerResponse, signal: Signal, kind: MediaKind): void {
    if (kind === 'protobuf') {
      const response = this.codec[signal].response;
      const payload = response.encode(response.create({})).finish();
      res.writeHead(200, {
        'content-type': 'application/x-protobuf',
        'content-length': payload.length,
      });
      res.end(payload);
    } else {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': 2 });
      res.end('{}');
    }
  }

  /** Reads the body, or answers 413 and returns undefined when it is too large. */
  private async readOrReject(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    base: (wireBytes: number, status: number, error?: string) => ReceivedRequest,
  ): Promise<Buffer | undefined> {
    try {
      return await readBody(req, this.maxBodyBytes);
    } catch (err) {
      if (!(err instanceof BodyTooLarge)) throw err;
      const msg = `body exceeds the ${this.maxBodyBytes} byte limit`;
      // Close so the client stops streaming a body nobody will read.
      this.reject(res, 413, msg, base(this.maxBodyBytes, 413, msg), { connection: 'close' });
      return undefined;
    }
  }

  private reject(
    res: http.ServerResponse,
    status: number,
    message: string,
    request: ReceivedRequest,
    headers: Record<string, string> = {},
  ): void {
    this.sendText(res, status, message, headers);
    this.record({ ...request, error: message });
  }

  private sendText(
    res: http.ServerResponse,
    status: number,
    message: string,
    headers: Record<string, string> = {},
  ): void {
    const body = `${message}\n`;
    res.writeHead(status, {
      ...headers,
      'content-type': 'text/plain; charset=utf-8',
      'content-length': Buffer.byteLength(body),
    });
    res.end(body);
  }
}

/**
 * Starts an OTLP/HTTP receiver for traces (POST `/v1/traces`) and metrics
 * (POST `/v1/metrics`), protobuf or JSON, gzip/deflate/identity, and
 * resolves once it is listening.
 *
 * @example
 * const receiver = await startReceiver();
 * process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = receiver.url;
 * process.env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT = receiver.metricsUrl;
 * const spans = await receiver.waitFor((s) => s.some((x) => x.name === 'GET /'));
 * const points = await receiver.waitForMetrics((p) => p.some((x) => x.name === 'http.server.request.duration'));
 * await receiver.close();
 */
export async function startReceiver(options: ReceiverOptions = {}): Promise<Receiver> {
  const codec = await loadCodec();
  const host = options.host ?? '127.0.0.1';
  const server = http.createServer();
  const receiver = new ReceiverImpl(server, codec, options, options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  receiver.listening(host);
  return receiver;
}
