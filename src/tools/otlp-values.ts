/**
 * What the trace and the metrics decoding share: unwrapping protobufjs'
 * `toObject` output for OTLP common.proto values, and the small walkers that
 * rewrite OTLP/JSON ids before ProtoJSON reads them.
 */

/** protobufjs `toObject` output for an AnyValue; only what unwrapping reads. */
export interface PbAnyValue {
  value?: string;
  stringValue?: string;
  boolValue?: boolean;
  intValue?: bigint;
  doubleValue?: number;
  arrayValue?: { values?: PbAnyValue[] };
  kvlistValue?: { values?: PbKeyValue[] };
  bytesValue?: Uint8Array;
}

/** protobufjs `toObject` output for a KeyValue. */
export interface PbKeyValue {
  key?: string;
  value?: PbAnyValue;
}

/** Lower-case hex of an id, `''` when the field was absent. */
export function hex(bytes: Uint8Array | undefined): string {
  return bytes === undefined ? '' : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** A 64-bit integer as a number when that is exact, else kept as a bigint. */
export function toNumberIfSafe(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function unwrapAnyValue(v: PbAnyValue | undefined): unknown {
  switch (v?.value) {
    case 'stringValue':
      return v.stringValue ?? '';
    case 'boolValue':
      return v.boolValue ?? false;
    case 'intValue':
      return toNumberIfSafe(v.intValue ?? 0n);
    case 'doubleValue':
      return v.doubleValue ?? 0;
    case 'arrayValue':
      return (v.arrayValue?.values ?? []).map(unwrapAnyValue);
    case 'kvlistValue':
      return unwrapAttributes(v.kvlistValue?.values);
    case 'bytesValue':
      return v.bytesValue ?? new Uint8Array(0);
    default:
      return null;
  }
}

/** Attributes as a plain object of unwrapped values (see `DecodedSpan.attributes`). */
export function unwrapAttributes(kvs: PbKeyValue[] | undefined): Record<string, unknown> {
  // fromEntries defines own properties, so a "__proto__" key stays data.
  return Object.fromEntries((kvs ?? []).map((kv) => [kv.key ?? '', unwrapAnyValue(kv.value)]));
}

const HEX_BYTES = /^(?:[0-9a-fA-F]{2})*$/;

/**
 * OTLP/JSON writes trace and span ids as hex where ProtoJSON expects base64
 * (specification.md, "JSON Protobuf Encoding"); rewrites `keys` of `obj` so
 * protobufjs' ProtoJSON reader can do the rest. Strings that are not hex are
 * left alone, so a sender that used plain ProtoJSON base64 still decodes; the
 * two cannot be confused, as base64 of 16 or 8 bytes is 24 or 12 chars, never
 * 32 or 16.
 */
export function hexFieldsToBase64(obj: Record<string, unknown>, keys: readonly string[]): void {
  for (const key of keys) {
    const v = obj[key];
    if (typeof v === 'string' && HEX_BYTES.test(v)) obj[key] = Buffer.from(v, 'hex').toString('base64');
  }
}

/** The first of `names` present on `obj`: ProtoJSON readers accept both the camelCase and the proto name. */
export function field(obj: unknown, ...names: string[]): unknown {
  if (obj === null || typeof obj !== 'object') return undefined;
  for (const name of names) {
    const v = (obj as Record<string, unknown>)[name];
    if (v !== undefined) return v;
  }
  return undefined;
}

/** The plain objects of a JSON array, nothing for anything else. */
export function objects(v: unknown): Array<Record<string, unknown>> {
  if (!Array.isArray(v)) return [];
  return v.filter((x): x is Record<string, unknown> => x !== null && typeof x === 'object' && !Array.isArray(x));
}
