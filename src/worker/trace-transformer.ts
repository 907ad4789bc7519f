/**
 * The trace part of otlp-transformer: its protobuf serializer and the metrics helper the export
 * delegate takes, without the package index, which also loads the metrics serializer and
 * @opentelemetry/sdk-metrics (~10 ms of every worker's start). The package's `exports` map allows
 * only its index, so the two files are required by full path; the preload bundle
 * (scripts/bundle.mjs) replaces this module with static requires of the same two files. Listed in
 * upstream.ts.
 */
import * as path from 'node:path';
import type {
  ProtobufTraceSerializer as Serializer,
  TraceExporterMetricsHelper as Helper,
} from '@opentelemetry/otlp-transformer';

/** Paths inside otlp-transformer's dist folder (0.301.1). */
export const TRACE_TRANSFORMER_FILES = {
  serializer: ['trace', 'protobuf', 'trace.cjs'],
  metricsHelper: ['trace', 'index.cjs'],
} as const;

type Transformer = { ProtobufTraceSerializer: typeof Serializer; TraceExporterMetricsHelper: typeof Helper };

function load(): Transformer {
  try {
    const dist = path.dirname(require.resolve('@opentelemetry/otlp-transformer'));
    const file = (parts: readonly string[]) => require(path.join(dist, ...parts)) as Partial<Transformer>;
    const { ProtobufTraceSerializer } = file(TRACE_TRANSFORMER_FILES.serializer);
    const { TraceExporterMetricsHelper } = file(TRACE_TRANSFORMER_FILES.metricsHelper);
    if (ProtobufTraceSerializer !== undefined && TraceExporterMetricsHelper !== undefined) {
      return { ProtobufTraceSerializer, TraceExporterMetricsHelper };
    }
  } catch {
    // A file gone or renamed upstream: the index, below.
  }
  // Moved upstream: the index has both, at the cost the two files avoid.
  return require('@opentelemetry/otlp-transformer') as typeof import('@opentelemetry/otlp-transformer');
}

export const { ProtobufTraceSerializer, TraceExporterMetricsHelper } = load();
