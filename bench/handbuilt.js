'use strict';
// The "hand-built SDK" peer: what a developer writes from the OpenTelemetry JS docs without
// forktrace. sdk-trace 3.x TracerProvider with the AsyncLocalStorage context manager and W3C
// propagators (what 2.x's NodeTracerProvider.register() did) + BatchSpanProcessor (SDK defaults) + the OTLP/HTTP protobuf
// exporter with gzip, and the http, express and mysql2 instrumentations with their defaults.
// Loaded with: node --require ./bench/handbuilt.js server.js (BENCH_OTLP_URL = the traces URL).
const { context, propagation, trace } = require('@opentelemetry/api');
const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks');
const { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } = require('@opentelemetry/core');
const { BatchSpanProcessor, TracerProvider } = require('@opentelemetry/sdk-trace');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-proto');
const { resourceFromAttributes, defaultResource } = require('@opentelemetry/resources');
const { registerInstrumentations } = require('@opentelemetry/instrumentation');
const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http');
const { ExpressInstrumentation } = require('@opentelemetry/instrumentation-express');
const { MySQL2Instrumentation } = require('@opentelemetry/instrumentation-mysql2');

const provider = new TracerProvider({
  resource: defaultResource().merge(resourceFromAttributes({ 'service.name': 'bench-handbuilt' })),
  spanProcessors: [
    new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: process.env.BENCH_OTLP_URL, compression: 'gzip' }) }),
  ],
});
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
propagation.setGlobalPropagator(
  new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }),
);
trace.setGlobalTracerProvider(provider);
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
