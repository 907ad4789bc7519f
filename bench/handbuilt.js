'use strict';
// The "hand-built SDK" peer: what a developer writes from the OpenTelemetry JS docs without
// forktrace. NodeTracerProvider + BatchSpanProcessor (SDK defaults) + the OTLP/HTTP protobuf
// exporter with gzip, and the http, express and mysql2 instrumentations with their defaults.
// Loaded with: node --require ./bench/handbuilt.js server.js (BENCH_OTLP_URL = the traces URL).
const { NodeTracerProvider } = require('@opentelemetry/sdk-trace-node');
const { BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-proto');
const { resourceFromAttributes, defaultResource } = require('@opentelemetry/resources');
const { registerInstrumentations } = require('@opentelemetry/instrumentation');
const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http');
const { ExpressInstrumentation } = require('@opentelemetry/instrumentation-express');
const { MySQL2Instrumentation } = require('@opentelemetry/instrumentation-mysql2');

const provider = new NodeTracerProvider({
  resource: defaultResource().merge(resourceFromAttributes({ 'service.name': 'bench-handbuilt' })),
  spanProcessors: [
    new BatchSpanProcessor(new OTLPTraceExporter({ url: process.env.BENCH_OTLP_URL, compression: 'gzip' })),
  ],
});
provider.register();
registerInstrumentations({
  tracerProvider: provider,
  instrumentations: [new HttpInstrumentation(), new ExpressInstrumentation(), new MySQL2Instrumentation()],
});

// The usual docs pattern: flush on SIGTERM, then exit.
process.once('SIGTERM', () => {
  provider
    .shutdown()
    .catch(() => {})
    .finally(() => process.exit(0));
});
