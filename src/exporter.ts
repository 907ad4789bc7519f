import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { OTLPExporterBase } from '@opentelemetry/otlp-exporter-base';
import { createOtlpHttpExportDelegate, httpAgentFactoryFromOptions } from '@opentelemetry/otlp-exporter-base/node-http';
import { ProtobufTraceSerializer, TraceExporterMetricsHelper } from '@opentelemetry/otlp-transformer';
import { ConsoleSpanExporter, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { ResolvedConfig } from './config';

/**
 * The OTLP/HTTP protobuf exporter, assembled from the same parts as
 * `@opentelemetry/exporter-trace-otlp-proto`'s OTLPTraceExporter but configured only from the
 * resolved config. OTLPTraceExporter re-reads the OTEL_EXPORTER_OTLP_* variables itself: it would
 * add back header pairs forktrace rejected, and its warnings quote header values and URLs with
 * credentials (otlp-exporter-base `util.js`, `otlp-node-http-env-configuration.js`).
 */
class OtlpProtoExporter extends OTLPExporterBase<ReadableSpan[]> implements SpanExporter {
  constructor(config: ResolvedConfig) {
    const headers = { ...config.headers, 'Content-Type': 'application/x-protobuf' };
    super(
      createOtlpHttpExportDelegate(
        {
          url: config.endpoint,
          headers: () => Promise.resolve(headers),
          timeoutMillis: config.timeoutMillis,
          // At most this many exports in flight; beyond it a batch fails fast and is counted as
          // dropped instead of piling up while the endpoint is down.
          concurrencyLimit: 30,
          compression: config.compression,
          agentFactory: httpAgentFactoryFromOptions({ keepAlive: true }),
        },
        ProtobufTraceSerializer,
        'otlp_http_span_exporter',
        TraceExporterMetricsHelper,
        undefined,
      ),
    );
  }
}

/** Span counts since start. `ended = delivered + dropped + pending`. */
export interface ExportStats {
  /** Spans handed to exporters. */
  exported: number;
  /** Spans the endpoint accepted. */
  delivered: number;
  /** Spans an export gave up on. */
  failed: number;
}

/** Counts what the wrapped exporter delivers and reports each failure. */
export class CountingExporter implements SpanExporter {
  constructor(
    private readonly inner: SpanExporter,
    readonly stats: ExportStats,
    private readonly onFailure: (error: Error | undefined, spans: number) => void,
  ) {}

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    this.stats.exported += spans.length;
    let called = false;
    const done = (result: ExportResult) => {
      if (called) return;
      called = true;
      if (result.code === ExportResultCode.SUCCESS) this.stats.delivered += spans.length;
      else {
        this.stats.failed += spans.length;
        this.onFailure(result.error, spans.length);
      }
      resultCallback(result);
    };
    try {
      this.inner.export(spans, done);
    } catch (e) {
      done({ code: ExportResultCode.FAILED, error: e instanceof Error ? e : new Error(String(e)) });
    }
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

export function createExporters(config: ResolvedConfig): SpanExporter[] {
  const out: SpanExporter[] = [];
  for (const name of config.exporters) {
    if (name === 'otlp') out.push(new OtlpProtoExporter(config));
    else if (name === 'console') out.push(new ConsoleSpanExporter());
  }
  return out;
}
