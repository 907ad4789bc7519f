/**
 * Spans turned into OTLP protobuf bytes when they end, and export requests assembled from those
 * bytes.
 *
 * A sampled span used to wait in the batch processor as the SDK's span object (its attributes,
 * events, context, status: about 1 KB of objects) until its batch was serialized. At the load of
 * `npm run bench` that wait outlives a young-generation GC, and steady survival makes V8 grow the
 * young generation to its cap (2 × 64 MB on Node 24): the larger part of the RSS the traced app
 * gains under load (BENCHMARKS.md, "Memory after load on Node 24"). Encoded at its end, a span
 * waits as one small object holding a slice of Node's buffer pool, which lives outside the V8 heap.
 *
 * The encoding is the OTLP one (opentelemetry-proto `trace/v1/trace.proto`,
 * `common/v1/common.proto`, `resource/v1/resource.proto`), written field for field in the order
 * otlp-transformer 0.301 writes it, so that a request of one span is the same bytes as upstream's
 * (test/span-bytes.test.mjs checks that, and the decoded spans of whole batches).
 */
import * as zlib from 'node:zlib';
import type { Attributes, AttributeValue, HrTime, Link, SpanContext } from '@opentelemetry/api';
import type { InstrumentationScope } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan, TimedEvent } from '@opentelemetry/sdk-trace';

/** Wire types (protobuf encoding guide). */
const VARINT = 0;
const I64 = 1;
const LEN = 2;
const I32 = 5;

/** `SpanFlags` (trace.proto): the span's context says whether its parent was remote. */
const FLAGS_HAS_IS_REMOTE = 0x100;
const FLAGS_IS_REMOTE = 0x200;

const MAX_INT64 = 2 ** 63;
const TWO_32 = 2 ** 32;

/** A growable byte buffer with the few protobuf writes a span needs. */
class Writer {
  buf: Buffer;
  pos = 0;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  private grow(needed: number): void {
    let size = this.buf.length * 2;
    while (size < this.pos + needed) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  room(n: number): void {
    if (this.pos + n > this.buf.length) this.grow(n);
  }

  /** A varint of a non-negative integer below 2³², or of any int64 (two's complement, 10 bytes when negative). */
  varint(value: number): void {
    this.room(10);
    const b = this.buf;
    if (value >= 0 && value < TWO_32) {
      let v = value >>> 0;
      while (v > 127) {
        b[this.pos++] = (v & 127) | 128;
        v >>>= 7;
      }
      b[this.pos++] = v;
      return;
    }
    const abs = Math.abs(value);
    let low = abs >>> 0;
    let high = Math.floor(abs / TWO_32) >>> 0;
    if (value < 0) {
      low = ~low >>> 0;
      high = ~high >>> 0;
      low = (low + 1) >>> 0;
      if (low === 0) high = (high + 1) >>> 0;
    }
    while (high > 0 || low > 127) {
      b[this.pos++] = (low & 127) | 128;
      low = ((low >>> 7) | (high << 25)) >>> 0;
      high >>>= 7;
    }
    b[this.pos++] = low;
  }

  tag(field: number, wireType: number): void {
    // Every field number here is below 16: the tag is one byte.
    this.room(1);
    this.buf[this.pos++] = (field << 3) | wireType;
  }

  fixed32(v: number): void {
    this.room(4);
    this.buf.writeUInt32LE(v >>> 0, this.pos);
    this.pos += 4;
  }

  /** An HrTime as nanoseconds since the epoch, fixed64: past 2⁵³, so written as two 32-bit halves. */
  hrTime(time: HrTime): void {
    const [seconds, nanos] = time;
    // seconds × 10⁹ + nanos = (high × 2¹⁶ + low) × 10⁹ + nanos; each product is exact in a double.
    const high = Math.floor(seconds / 65536);
    const low = seconds - high * 65536;
    const part = low * 1e9 + nanos; // < 2⁵³
    const upper = high * 1e9; // < 2⁵³; to be multiplied by 2¹⁶
    // upper × 2¹⁶ = (upper div 2¹⁶) × 2³² + (upper mod 2¹⁶) × 2¹⁶
    const lowSum = (part % TWO_32) + (upper % 65536) * 65536;
    const lo = lowSum % TWO_32;
    const hi = Math.floor(part / TWO_32) + Math.floor(upper / 65536) + Math.floor(lowSum / TWO_32);
    this.room(8);
    this.buf.writeUInt32LE(lo >>> 0, this.pos);
    this.buf.writeUInt32LE(hi >>> 0, this.pos + 4);
    this.pos += 8;
  }

  double(v: number): void {
    this.room(8);
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }

  /**
   * A string, ASCII written byte by byte as it is scanned (cheaper for the short keys and values
   * of a span than a call into Buffer's native writer); at the first other character, UTF-8.
   */
  string(s: string): void {
    const n = s.length;
    const start = this.pos;
    this.varint(n);
    this.room(n);
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c > 127) {
        this.pos = start;
        return this.utf8(s);
      }
      b[p++] = c;
    }
    this.pos = p;
  }

  private utf8(s: string): void {
    const bytes = Buffer.byteLength(s, 'utf8');
    this.varint(bytes);
    this.room(bytes);
    this.buf.write(s, this.pos, bytes, 'utf8');
    this.pos += bytes;
  }

  bytes(data: Uint8Array): void {
    this.varint(data.length);
    this.room(data.length);
    this.buf.set(data, this.pos);
    this.pos += data.length;
  }

  /** A trace or span id, given in hex as the API holds it, as its bytes. */
  hexId(hex: string): void {
    const n = hex.length >>> 1;
    this.varint(n);
    this.room(n);
    for (let i = 0; i < n; i++) {
      this.buf[this.pos++] = (HEX[hex.charCodeAt(2 * i) & 127]! << 4) | HEX[hex.charCodeAt(2 * i + 1) & 127]!;
    }
  }

  /** Starts a length-delimited field whose length is not known yet: one byte is kept for it. */
  open(field: number): number {
    this.tag(field, LEN);
    this.room(1);
    return this.pos++;
  }

  /** Writes the length kept by {@link open}, moving the content when it needs more than one byte. */
  close(at: number): void {
    const length = this.pos - at - 1;
    if (length < 128) {
      this.buf[at] = length;
      return;
    }
    let extra = 1;
    while (length >= 2 ** (7 * (extra + 1))) extra++;
    this.room(extra);
    this.buf.copy(this.buf, at + 1 + extra, at + 1, this.pos);
    this.pos += extra;
    let v = length;
    let p = at;
    while (v > 127) {
      this.buf[p++] = (v & 127) | 128;
      v >>>= 7;
    }
    this.buf[p] = v;
  }
}

/** The value of each hex digit by its character code; ids are lowercase, upper case is read too. */
const HEX = new Uint8Array(128);
for (let i = 0; i < 16; i++) {
  HEX['0123456789abcdef'.charCodeAt(i)] = i;
  HEX['0123456789ABCDEF'.charCodeAt(i)] = i;
}

/** `AnyValue` fields: string 1, bool 2, int 3, double 4, array 5, kvlist 6, bytes 7. */
function anyValue(w: Writer, value: unknown): void {
  switch (typeof value) {
    case 'string':
      w.tag(1, LEN);
      w.string(value);
      return;
    case 'boolean':
      w.tag(2, VARINT);
      w.varint(value ? 1 : 0);
      return;
    case 'number':
      if (Number.isInteger(value) && value >= -MAX_INT64 && value < MAX_INT64) {
        w.tag(3, VARINT);
        w.varint(value);
      } else {
        w.tag(4, I64);
        w.double(value);
      }
      return;
  }
  if (value instanceof Uint8Array) {
    w.tag(7, LEN);
    w.bytes(value);
  } else if (Array.isArray(value)) {
    const array = w.open(5);
    for (const item of value) {
      const at = w.open(1);
      anyValue(w, item);
      w.close(at);
    }
    w.close(array);
  } else if (typeof value === 'object' && value !== null) {
    const list = w.open(6);
    keyValues(w, value as Record<string, unknown>, 1);
    w.close(list);
  }
  // undefined and null: an empty AnyValue, as upstream sends.
}

/** `KeyValue` { key 1, value 2 }, repeated in `field`. */
function keyValues(w: Writer, attributes: Attributes | Record<string, unknown>, field: number): void {
  for (const key in attributes) {
    if (!Object.prototype.hasOwnProperty.call(attributes, key)) continue;
    const kv = w.open(field);
    w.tag(1, LEN);
    w.string(key);
    const value = w.open(2);
    anyValue(w, attributes[key] as AttributeValue | undefined);
    w.close(value);
    w.close(kv);
  }
}

function spanFlags(context: SpanContext, remoteParent: boolean | undefined): number {
  return (context.traceFlags & 0xff) | FLAGS_HAS_IS_REMOTE | (remoteParent ? FLAGS_IS_REMOTE : 0);
}

/** trace_id 1, span_id 2 and trace_state 3: the same fields in a `Span` and a `Span.Link`. */
function contextFields(w: Writer, c: SpanContext): void {
  w.tag(1, LEN);
  w.hexId(c.traceId);
  w.tag(2, LEN);
  w.hexId(c.spanId);
  const state = c.traceState?.serialize();
  if (state) {
    w.tag(3, LEN);
    w.string(state);
  }
}

/** `Span.Event` { time 1, name 2, attributes 3, dropped_attributes_count 4 }. */
function event(w: Writer, e: TimedEvent): void {
  const at = w.open(11);
  w.tag(1, I64);
  w.hrTime(e.time);
  w.tag(2, LEN);
  w.string(e.name);
  if (e.attributes) keyValues(w, e.attributes, 3);
  w.tag(4, VARINT);
  w.varint(e.droppedAttributesCount ?? 0);
  w.close(at);
}

/** `Span.Link` { trace_id 1, span_id 2, trace_state 3, attributes 4, dropped_attributes_count 5, flags 6 }. */
function link(w: Writer, l: Link): void {
  const at = w.open(13);
  const c = l.context;
  contextFields(w, c);
  if (l.attributes) keyValues(w, l.attributes, 4);
  w.tag(5, VARINT);
  w.varint(l.droppedAttributesCount ?? 0);
  w.tag(6, I32);
  w.fixed32(spanFlags(c, c.isRemote));
  w.close(at);
}

/**
 * The `Span` message's fields, without its own tag and length: trace_id 1, span_id 2,
 * trace_state 3, parent_span_id 4, name 5, kind 6, start 7, end 8, attributes 9, dropped
 * attributes 10, events 11, dropped events 12, links 13, dropped links 14, status 15, flags 16.
 */
function spanFields(w: Writer, span: ReadableSpan): void {
  const ctx = span.spanContext();
  contextFields(w, ctx);
  const parent = span.parentSpanContext;
  if (parent?.spanId) {
    w.tag(4, LEN);
    w.hexId(parent.spanId);
  }
  w.tag(5, LEN);
  w.string(span.name);
  // The API's SpanKind starts at INTERNAL = 0; OTLP's at UNSPECIFIED = 0, INTERNAL = 1.
  const kind = span.kind == null ? 0 : span.kind + 1;
  if (kind !== 0) {
    w.tag(6, VARINT);
    w.varint(kind);
  }
  w.tag(7, I64);
  w.hrTime(span.startTime);
  w.tag(8, I64);
  w.hrTime(span.endTime);
  keyValues(w, span.attributes, 9);
  w.tag(10, VARINT);
  w.varint(span.droppedAttributesCount);
  for (const e of span.events) event(w, e);
  w.tag(12, VARINT);
  w.varint(span.droppedEventsCount);
  for (const l of span.links) link(w, l);
  w.tag(14, VARINT);
  w.varint(span.droppedLinksCount);
  // `Status` { message 2, code 3 }
  const status = w.open(15);
  if (span.status.message) {
    w.tag(2, LEN);
    w.string(span.status.message);
  }
  w.tag(3, VARINT);
  w.varint(span.status.code);
  w.close(status);
  // Field 16's tag is two bytes (16 << 3 | 5 = 133).
  w.room(2);
  w.buf[w.pos++] = 0x85;
  w.buf[w.pos++] = 0x01;
  w.fixed32(spanFlags(ctx, parent?.isRemote));
}

/**
 * A sampled span as it waits for export: its `Span` message and what places it in a request.
 * `spanContext()` and `resource` are what the SDK's batch processor reads of what it queues.
 */
export class EncodedSpan {
  constructor(
    /** The `Span` message's bytes, without its tag and length. */
    readonly bytes: Buffer,
    readonly resource: Resource,
    readonly scope: InstrumentationScope,
  ) {}

  spanContext(): { traceFlags: number } {
    return SAMPLED;
  }
}

const SAMPLED = Object.freeze({ traceFlags: 1 });

/** One writer for every span: encoding is synchronous, and the bytes are copied out. */
const SCRATCH_SIZE = 16 * 1024;
const MAX_KEPT_SCRATCH = 256 * 1024;
const scratch = new Writer(SCRATCH_SIZE);

/** The span's `Span` message, in a buffer of its own size (from Node's pool when small). */
export function encodeSpan(span: ReadableSpan): EncodedSpan {
  scratch.pos = 0;
  spanFields(scratch, span);
  const bytes = Buffer.allocUnsafe(scratch.pos);
  scratch.buf.copy(bytes, 0, 0, scratch.pos);
  // A span with a long stack or body grows the writer; it is not kept that large.
  if (scratch.buf.length > MAX_KEPT_SCRATCH) scratch.buf = Buffer.allocUnsafe(SCRATCH_SIZE);
  return new EncodedSpan(bytes, span.resource, span.instrumentationScope);
}

/** `Resource` { attributes 1, dropped_attributes_count 2 }, as its own bytes. */
function resourceFields(resource: Resource): Buffer {
  const w = new Writer(1024);
  keyValues(w, resource.attributes, 1);
  w.tag(2, VARINT);
  w.varint(0);
  return Buffer.from(w.buf.subarray(0, w.pos));
}

/** `InstrumentationScope` { name 1, version 2, attributes 3, dropped_attributes_count 4 }. */
function scopeFields(scope: InstrumentationScope): Buffer {
  const w = new Writer(256);
  w.tag(1, LEN);
  w.string(scope.name);
  if (scope.version) {
    w.tag(2, LEN);
    w.string(scope.version);
  }
  const s = scope as InstrumentationScope & { attributes?: Attributes; droppedAttributesCount?: number };
  if (s.attributes) keyValues(w, s.attributes, 3);
  if (s.droppedAttributesCount) {
    w.tag(4, VARINT);
    w.varint(s.droppedAttributesCount);
  }
  return Buffer.from(w.buf.subarray(0, w.pos));
}

/**
 * Encoded once each: a provider has one resource and a tracer one scope object. A resource
 * whose detectors are still running is encoded again at each export (the batch processor waits
 * for them before it exports).
 */
const resourceBytes = new WeakMap<Resource, Buffer>();
const scopeBytes = new WeakMap<InstrumentationScope, Buffer>();

function cachedResource(resource: Resource): Buffer {
  let bytes = resourceBytes.get(resource);
  if (bytes === undefined) {
    bytes = resourceFields(resource);
    if (!resource.asyncAttributesPending) resourceBytes.set(resource, bytes);
  }
  return bytes;
}

function cachedScope(scope: InstrumentationScope): Buffer {
  let bytes = scopeBytes.get(scope);
  if (bytes === undefined) {
    bytes = scopeFields(scope);
    scopeBytes.set(scope, bytes);
  }
  return bytes;
}

/** Spans per `ResourceSpans` of a request: see {@link serializeEncoded}. */
export const SPANS_PER_PART = 64;

function varintSize(v: number): number {
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/** A field's size with its one-byte tag and its length. */
const field = (length: number) => 1 + varintSize(length) + length;

/** One `ScopeSpans` of a request: its scope, its spans, and its size without its tag and length. */
interface ScopeGroup {
  scope: InstrumentationScope;
  bytes: Buffer;
  spans: EncodedSpan[];
  size: number;
}
/** One `ResourceSpans` of a request. */
interface ResourceGroup {
  resource: Resource;
  bytes: Buffer;
  scopes: ScopeGroup[];
  size: number;
}

/** Groups `spans` (one part) by resource, then scope, in the order each first appears. */
function group(spans: readonly EncodedSpan[]): ResourceGroup[] {
  const byResource = new Map<Resource, Map<InstrumentationScope, EncodedSpan[]>>();
  for (const span of spans) {
    let scopes = byResource.get(span.resource);
    if (scopes === undefined) byResource.set(span.resource, (scopes = new Map()));
    const list = scopes.get(span.scope);
    if (list === undefined) scopes.set(span.scope, [span]);
    else list.push(span);
  }
  const out: ResourceGroup[] = [];
  for (const [resource, byScope] of byResource) {
    const bytes = cachedResource(resource);
    const scopes: ScopeGroup[] = [];
    let size = field(bytes.length);
    for (const [scope, list] of byScope) {
      const encodedScope = cachedScope(scope);
      let scopeSize = field(encodedScope.length);
      for (const s of list) scopeSize += field(s.bytes.length);
      if (scope.schemaUrl) scopeSize += field(Buffer.byteLength(scope.schemaUrl));
      scopes.push({ scope, bytes: encodedScope, spans: list, size: scopeSize });
      size += field(scopeSize);
    }
    if (resource.schemaUrl) size += field(Buffer.byteLength(resource.schemaUrl));
    out.push({ resource, bytes, scopes, size });
  }
  return out;
}

/**
 * An `ExportTraceServiceRequest` of `spans`, in the order they ended, cut into parts of
 * {@link SPANS_PER_PART}: each part is one `ResourceSpans` per resource, its spans grouped by
 * scope. A request's spans end within a few milliseconds, so they land in one part or two
 * neighbours, about 20 KB at most apart: inside gzip's 32 KB window, where its trace id is found
 * again instead of sent anew. (Upstream groups a whole batch by scope, which puts a request's
 * http, express and mysql2 spans 30–70 KB apart.) Repeated `resource_spans` are legal OTLP: a
 * receiver reads them as one list.
 */
export function serializeEncoded(spans: readonly EncodedSpan[]): Uint8Array | undefined {
  if (spans.length === 0) return undefined;
  // Sizes first, so that the request is written once into a buffer of its exact size.
  const groups: ResourceGroup[] = [];
  for (let i = 0; i < spans.length; i += SPANS_PER_PART) groups.push(...group(spans.slice(i, i + SPANS_PER_PART)));
  let total = 0;
  for (const g of groups) total += field(g.size);

  const w = new Writer(total);
  const len = (field: number, length: number) => {
    w.tag(field, LEN);
    w.varint(length);
  };
  const raw = (bytes: Buffer) => {
    bytes.copy(w.buf, w.pos);
    w.pos += bytes.length;
  };
  for (const { resource, bytes, scopes, size } of groups) {
    // ResourceSpans { resource 1, scope_spans 2, schema_url 3 }
    len(1, size);
    len(1, bytes.length);
    raw(bytes);
    for (const { scope, bytes: sc, spans: list, size: scopeSize } of scopes) {
      // ScopeSpans { scope 1, spans 2, schema_url 3 }
      len(2, scopeSize);
      len(1, sc.length);
      raw(sc);
      for (const s of list) {
        len(2, s.bytes.length);
        raw(s.bytes);
      }
      if (scope.schemaUrl) {
        w.tag(3, LEN);
        w.string(scope.schemaUrl);
      }
    }
    if (resource.schemaUrl) {
      w.tag(3, LEN);
      w.string(resource.schemaUrl);
    }
  }
  return w.buf.subarray(0, w.pos);
}

/**
 * gzip's fastest level. Upstream's transport piped the body through a gzip stream at the default
 * level (6), in 16 KB chunks on the thread pool: on Node 24 that was about 12 % of the
 * instructions tracing added to a /hello request (BENCHMARKS.md, change 11). Level 1 in one call
 * takes about half the CPU for about 5 % more bytes on the wire (a span's bytes repeat within a
 * batch: trace ids, attribute names, the resource).
 */
export const GZIP_LEVEL = zlib.constants.Z_BEST_SPEED;

/**
 * The body of an export request of `spans`, as the exporter sends it and the exit path sends or
 * spools it: {@link serializeEncoded}, gzipped in one call when `gzip`.
 */
export function requestBody(spans: readonly EncodedSpan[], gzip: boolean): Uint8Array | undefined {
  const raw = serializeEncoded(spans);
  return raw === undefined || !gzip ? raw : zlib.gzipSync(raw, { level: GZIP_LEVEL });
}
