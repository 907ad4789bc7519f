/**
 * Flattening of a decoded ExportMetricsServiceRequest into one entry per
 * data point, for the receiver's `metrics` and `forktrace tail`.
 *
 * Schema: opentelemetry-proto metrics.proto, in `./otlp-proto`.
 */

import {
  field,
  hex,
  hexFieldsToBase64,
  objects,
  toNumberIfSafe,
  unwrapAttributes,
  type PbKeyValue,
} from './otlp-values';

/** Which member of Metric's `data` oneof a point came in. */
export type MetricKind = 'gauge' | 'sum' | 'histogram' | 'exponentialHistogram' | 'summary';

/** OTLP AggregationTemporality: 0 unspecified, 1 delta, 2 cumulative. */
export type MetricTemporality = 'delta' | 'cumulative' | 'unspecified';

/** An exemplar of a data point, ids in hex like a span's. */
export interface DecodedExemplar {
  /** 32 lower-case hex chars, `''` when the exemplar has no trace. */
  traceId: string;
  /** 16 lower-case hex chars, `''` when the exemplar has no span. */
  spanId: string;
  /** `as_double`, or `as_int` as a number (a bigint beyond 2^53); `undefined` when neither is set. */
  value: number | bigint | undefined;
  timeUnixNano: bigint;
  /** The exemplar's `filtered_attributes`, unwrapped like span attributes. */
  attributes: Record<string, unknown>;
}

/** One bucket range of an exponential histogram. */
export interface ExponentialBuckets {
  offset: number;
  bucketCounts: number[];
}

/**
 * One data point of a metric as decoded from OTLP, with the metric's name,
 * kind and temporality copied onto it. Counts (fixed64/uint64 on the wire)
 * are numbers: exact up to 2^53.
 */
export interface DecodedMetricPoint {
  name: string;
  description: string;
  unit: string;
  kind: MetricKind;
  /** Set for sum, histogram and exponential histogram; absent for gauge and summary, which have none. */
  temporality?: MetricTemporality;
  /** Set for a sum only. */
  monotonic?: boolean;
  /** The point's attributes (its series), unwrapped like span attributes. */
  attributes: Record<string, unknown>;
  startTimeUnixNano: bigint;
  timeUnixNano: bigint;
  /**
   * Gauge and sum: `as_double`, or `as_int` as a number (a bigint beyond
   * 2^53); `undefined` when the point carries neither.
   */
  value?: number | bigint;
  /** Histogram, exponential histogram, summary. */
  count?: number;
  /** Histogram and exponential histogram when sent (it is optional there); always for a summary. */
  sum?: number;
  /** Histogram and exponential histogram, when sent. */
  min?: number;
  /** Histogram and exponential histogram, when sent. */
  max?: number;
  /** Histogram: one more count than there are bounds. */
  bucketCounts?: number[];
  /** Histogram: the buckets' upper bounds (inclusive), ascending. */
  explicitBounds?: number[];
  /** Exponential histogram. */
  scale?: number;
  /** Exponential histogram. */
  zeroCount?: number;
  /** Exponential histogram. */
  zeroThreshold?: number;
  /** Exponential histogram. */
  positive?: ExponentialBuckets;
  /** Exponential histogram. */
  negative?: ExponentialBuckets;
  /** Summary. */
  quantiles?: Array<{ quantile: number; value: number }>;
  /** Gauge, sum, histogram and exponential histogram points may carry exemplars; `[]` when none. */
  exemplars: DecodedExemplar[];
  /** Resource attributes, unwrapped like span attributes. */
  resource: Record<string, unknown>;
  /** The instrumentation scope (meter) the metric was reported under. */
  scope: { name: string; version: string };
}

// ---------------------------------------------------------------------------
// protobufjs `toObject` output (longs as bigint, oneofs named); only what
// flattening reads.

interface PbExemplar {
  filteredAttributes?: PbKeyValue[];
  timeUnixNano?: bigint;
  value?: string;
  asDouble?: number;
  asInt?: bigint;
  spanId?: Uint8Array;
  traceId?: Uint8Array;
}
interface PbNumberDataPoint {
  attributes?: PbKeyValue[];
  startTimeUnixNano?: bigint;
  timeUnixNano?: bigint;
  value?: string;
  asDouble?: number;
  asInt?: bigint;
  exemplars?: PbExemplar[];
}
interface PbHistogramDataPoint {
  attributes?: PbKeyValue[];
  startTimeUnixNano?: bigint;
  timeUnixNano?: bigint;
  count?: bigint;
  sum?: number;
  bucketCounts?: bigint[];
  explicitBounds?: number[];
  exemplars?: PbExemplar[];
  min?: number;
  max?: number;
}
interface PbBuckets {
  offset?: number;
  bucketCounts?: bigint[];
}
interface PbExponentialHistogramDataPoint {
  attributes?: PbKeyValue[];
  startTimeUnixNano?: bigint;
  timeUnixNano?: bigint;
  count?: bigint;
  sum?: number;
  scale?: number;
  zeroCount?: bigint;
  positive?: PbBuckets;
  negative?: PbBuckets;
  exemplars?: PbExemplar[];
  min?: number;
  max?: number;
  zeroThreshold?: number;
}
interface PbSummaryDataPoint {
  attributes?: PbKeyValue[];
  startTimeUnixNano?: bigint;
  timeUnixNano?: bigint;
  count?: bigint;
  sum?: number;
  quantileValues?: Array<{ quantile?: number; value?: number }>;
}
interface PbMetric {
  name?: string;
  description?: string;
  unit?: string;
  data?: string;
  gauge?: { dataPoints?: PbNumberDataPoint[] };
  sum?: { dataPoints?: PbNumberDataPoint[]; aggregationTemporality?: number; isMonotonic?: boolean };
  histogram?: { dataPoints?: PbHistogramDataPoint[]; aggregationTemporality?: number };
  exponentialHistogram?: { dataPoints?: PbExponentialHistogramDataPoint[]; aggregationTemporality?: number };
  summary?: { dataPoints?: PbSummaryDataPoint[] };
}
/** protobufjs `toObject` output for ExportMetricsServiceRequest. */
export interface PbMetricsRequest {
  resourceMetrics?: Array<{
    resource?: { attributes?: PbKeyValue[] };
    scopeMetrics?: Array<{
      scope?: { name?: string; version?: string };
      metrics?: PbMetric[];
    }>;
  }>;
}

/** What both kinds of histogram point say of their values: count, and sum, min and max when sent. */
function distribution(p: { count?: bigint; sum?: number; min?: number; max?: number }) {
  return {
    count: Number(p.count ?? 0n),
    ...optional('sum', p.sum),
    ...optional('min', p.min),
    ...optional('max', p.max),
  };
}

function temporality(v: number | undefined): MetricTemporality {
  return v === 1 ? 'delta' : v === 2 ? 'cumulative' : 'unspecified';
}

/** The value of a NumberDataPoint or an Exemplar, by which member of its `value` oneof is set. */
function numberValue(p: { value?: string; asDouble?: number; asInt?: bigint }): number | bigint | undefined {
  if (p.value === 'asDouble') return p.asDouble ?? 0;
  if (p.value === 'asInt') return toNumberIfSafe(p.asInt ?? 0n);
  return undefined;
}

function exemplars(list: PbExemplar[] | undefined): DecodedExemplar[] {
  return (list ?? []).map((e) => ({
    traceId: hex(e.traceId),
    spanId: hex(e.spanId),
    value: numberValue(e),
    timeUnixNano: e.timeUnixNano ?? 0n,
    attributes: unwrapAttributes(e.filteredAttributes),
  }));
}

function counts(list: bigint[] | undefined): number[] {
  return (list ?? []).map(Number);
}

/** The fields every point has, in the order a reader expects them. */
function common(p: {
  attributes?: PbKeyValue[];
  startTimeUnixNano?: bigint;
  timeUnixNano?: bigint;
}): Pick<DecodedMetricPoint, 'attributes' | 'startTimeUnixNano' | 'timeUnixNano'> {
  return {
    attributes: unwrapAttributes(p.attributes),
    startTimeUnixNano: p.startTimeUnixNano ?? 0n,
    timeUnixNano: p.timeUnixNano ?? 0n,
  };
}

/** Optional doubles are present only when sent: a sent 0 stays 0, an absent one stays absent. */
function optional<K extends 'sum' | 'min' | 'max'>(key: K, v: number | undefined): Partial<Record<K, number>> {
  return v === undefined ? {} : ({ [key]: v } as Record<K, number>);
}

type PointBody = Omit<DecodedMetricPoint, 'name' | 'description' | 'unit' | 'resource' | 'scope'>;

function metricPoints(m: PbMetric): PointBody[] {
  switch (m.data) {
    case 'gauge':
      return (m.gauge?.dataPoints ?? []).map((p) => ({
        kind: 'gauge',
        ...common(p),
        ...numberField(p),
        exemplars: exemplars(p.exemplars),
      }));
    case 'sum': {
      const t = temporality(m.sum?.aggregationTemporality);
      const monotonic = m.sum?.isMonotonic ?? false;
      return (m.sum?.dataPoints ?? []).map((p) => ({
        kind: 'sum',
        temporality: t,
        monotonic,
        ...common(p),
        ...numberField(p),
        exemplars: exemplars(p.exemplars),
      }));
    }
    case 'histogram': {
      const t = temporality(m.histogram?.aggregationTemporality);
      return (m.histogram?.dataPoints ?? []).map((p) => ({
        kind: 'histogram',
        temporality: t,
        ...common(p),
        ...distribution(p),
        bucketCounts: counts(p.bucketCounts),
        explicitBounds: p.explicitBounds ?? [],
        exemplars: exemplars(p.exemplars),
      }));
    }
    case 'exponentialHistogram': {
      const t = temporality(m.exponentialHistogram?.aggregationTemporality);
      const buckets = (b: PbBuckets | undefined): ExponentialBuckets => ({
        offset: b?.offset ?? 0,
        bucketCounts: counts(b?.bucketCounts),
      });
      return (m.exponentialHistogram?.dataPoints ?? []).map((p) => ({
        kind: 'exponentialHistogram',
        temporality: t,
        ...common(p),
        ...distribution(p),
        scale: p.scale ?? 0,
        zeroCount: Number(p.zeroCount ?? 0n),
        zeroThreshold: p.zeroThreshold ?? 0,
        positive: buckets(p.positive),
        negative: buckets(p.negative),
        exemplars: exemplars(p.exemplars),
      }));
    }
    case 'summary':
      return (m.summary?.dataPoints ?? []).map((p) => ({
        kind: 'summary',
        ...common(p),
        count: Number(p.count ?? 0n),
        sum: p.sum ?? 0,
        quantiles: (p.quantileValues ?? []).map((q) => ({ quantile: q.quantile ?? 0, value: q.value ?? 0 })),
        exemplars: [],
      }));
    default:
      // A metric with no data (or a kind newer than this schema) has no points to show.
      return [];
  }
}

function numberField(p: PbNumberDataPoint): { value?: number | bigint } {
  const value = numberValue(p);
  return value === undefined ? {} : { value };
}

/** One entry per data point of every metric in the request, in the order sent. */
export function flattenMetrics(request: PbMetricsRequest): DecodedMetricPoint[] {
  const out: DecodedMetricPoint[] = [];
  for (const rm of request.resourceMetrics ?? []) {
    const resource = unwrapAttributes(rm.resource?.attributes);
    for (const sm of rm.scopeMetrics ?? []) {
      const scope = { name: sm.scope?.name ?? '', version: sm.scope?.version ?? '' };
      for (const m of sm.metrics ?? []) {
        const meta = { name: m.name ?? '', description: m.description ?? '', unit: m.unit ?? '' };
        for (const body of metricPoints(m)) out.push({ ...meta, ...body, resource, scope });
      }
    }
  }
  return out;
}

const DATA_KEYS = ['gauge', 'sum', 'histogram', 'exponentialHistogram', 'exponential_histogram', 'summary'];
const EXEMPLAR_ID_KEYS = ['traceId', 'trace_id', 'spanId', 'span_id'];

/**
 * OTLP/JSON exemplar ids are hex like span ids; rewrites them to the base64
 * ProtoJSON reads (see `hexFieldsToBase64`). Both field spellings, as for
 * spans.
 */
export function metricsHexIdsToBase64(json: unknown): void {
  for (const rm of objects(field(json, 'resourceMetrics', 'resource_metrics'))) {
    for (const sm of objects(field(rm, 'scopeMetrics', 'scope_metrics'))) {
      for (const metric of objects(field(sm, 'metrics'))) {
        for (const key of DATA_KEYS) {
          for (const point of objects(field(field(metric, key), 'dataPoints', 'data_points'))) {
            for (const e of objects(field(point, 'exemplars'))) hexFieldsToBase64(e, EXEMPLAR_ID_KEYS);
          }
        }
      }
    }
  }
}
