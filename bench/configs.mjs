// The configurations the bench compares. Each runs examples/express-mysql2/server.js unchanged;
// only the preload and the environment differ.
import * as path from 'node:path';
import { APP, BENCH, ROOT } from './lib.mjs';

/**
 * @param receiverUrl the bench receiver's traces URL (http://127.0.0.1:PORT/v1/traces)
 * @param baseline a folder holding another forktrace build (its register.js), compared as
 *   `forktrace-baseline`: the "before" of a before/after row.
 * @param baselineEnv extra environment for that build ("K=V;K=V"), e.g. to compare one setting
 *   before and after a change.
 * @param ddAgentUrl the bench's stand-in for the Datadog agent (bench/dd-agent.mjs), for `ddtrace`.
 */
export function allConfigs(receiverUrl, { baseline, baselineEnv = '', variants = [], ddAgentUrl } = {}) {
  const origin = new URL(receiverUrl).origin;
  const forktraceEnv = { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: receiverUrl, OTEL_SERVICE_NAME: 'bench' };
  const list = [
    { name: 'untraced', label: 'untraced', preload: [], env: {} },
    {
      name: 'forktrace',
      label: 'forktrace (defaults)',
      preload: ['--require', path.join(ROOT, 'dist', 'register.js')],
      env: forktraceEnv,
    },
    {
      name: 'forktrace-nolayers',
      label: 'forktrace, FORKTRACE_EXPRESS_LAYERS=none',
      preload: ['--require', path.join(ROOT, 'dist', 'register.js')],
      env: { ...forktraceEnv, FORKTRACE_EXPRESS_LAYERS: 'none' },
    },
    {
      // The unsampled path: 1 request in 100 sampled, as a busy service would set it.
      name: 'forktrace-1pct',
      label: 'forktrace, 1 % sampled (parentbased_traceidratio 0.01)',
      preload: ['--require', path.join(ROOT, 'dist', 'register.js')],
      env: { ...forktraceEnv, OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.01' },
    },
    {
      name: 'handbuilt',
      label: 'hand-built SDK',
      preload: ['--require', path.join(BENCH, 'handbuilt.js')],
      env: { BENCH_OTLP_URL: receiverUrl },
    },
    {
      name: 'auto',
      label: 'auto-instrumentations-node/register',
      preload: ['--require', '@opentelemetry/auto-instrumentations-node/register'],
      env: {
        // The default detector list probes cloud metadata addresses; only 127.0.0.1 may be contacted.
        OTEL_NODE_RESOURCE_DETECTORS: 'env,host,os,process,serviceinstance',
        OTEL_TRACES_EXPORTER: 'otlp',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
        OTEL_EXPORTER_OTLP_ENDPOINT: origin,
        // NodeSDK would also start OTLP metrics and logs exporters by default; this compares traces.
        OTEL_METRICS_EXPORTER: 'none',
        OTEL_LOGS_EXPORTER: 'none',
        OTEL_SERVICE_NAME: 'bench-auto',
      },
    },
    {
      // Datadog's own tracer (not built on the OpenTelemetry SDK), with its defaults: every
      // integration it has (http, express, mysql2, and dns/net for the pool's connections),
      // express middleware spans, priority sampling. The stand-in agent sends no sampling rates,
      // so every trace is kept (AUTO_KEEP, counted by bench/dd-agent.mjs). Everything that would
      // talk to Datadog beyond the trace endpoint is off, and the agent URL is 127.0.0.1. What is
      // left (dd-trace 6.21: its DogStatsD client's own telemetry, POST /dogstatsd/v2/proxy every
      // 10 s) goes to the stand-in too, which answers 404 and logs it.
      name: 'ddtrace',
      label: 'dd-trace',
      agent: 'dd',
      preload: ['--require', path.join(ROOT, 'node_modules', 'dd-trace', 'init.js')],
      env: {
        DD_TRACE_AGENT_URL: ddAgentUrl ?? 'http://127.0.0.1:9',
        DD_SERVICE: 'bench-dd',
        DD_REMOTE_CONFIGURATION_ENABLED: 'false',
        DD_INSTRUMENTATION_TELEMETRY_ENABLED: 'false',
        DD_TRACE_STARTUP_LOGS: 'false',
        DD_PROFILING_ENABLED: 'false',
        DD_RUNTIME_METRICS_ENABLED: 'false',
        // On by default: a crash handler that would report to the agent.
        DD_CRASHTRACKING_ENABLED: 'false',
        // Unset means "off until remote configuration turns it on"; remote configuration is off.
        DD_APPSEC_ENABLED: 'false',
        DD_IAST_ENABLED: 'false',
        DD_DYNAMIC_INSTRUMENTATION_ENABLED: 'false',
        DD_DATA_STREAMS_ENABLED: 'false',
        DD_TRACE_STATS_COMPUTATION_ENABLED: 'false',
        DD_LLMOBS_ENABLED: 'false',
      },
    },
    // The lean floor: the SDK TracerProvider + forktrace's batch processor and OTLP exporter, but a
    // minimal hand-written http/mysql2 hook instead of the upstream instrumentations (bench/floor.cjs).
    ...[
      ['floor', 'lean floor (bench/floor.cjs, not forktrace)', {}],
      ['floor-http', 'lean floor, http hook only (FLOOR_MYSQL=0)', { FLOOR_MYSQL: '0' }],
      ['floor-nobind', 'lean floor, emitters not bound (FLOOR_BIND=0)', { FLOOR_BIND: '0' }],
      ['floor-noexport', 'lean floor, spans recorded, not exported (FLOOR_EXPORT=0)', { FLOOR_EXPORT: '0' }],
      ['floor-unsampled', 'lean floor, hooks only, nothing sampled (FLOOR_SAMPLE=0)', { FLOOR_SAMPLE: '0' }],
    ].map(([name, label, env]) => ({
      name,
      label,
      preload: ['--require', path.join(BENCH, 'floor.cjs')],
      env: { ...forktraceEnv, ...env },
    })),
  ];
  if (baseline) {
    const extra = parseEnv(baselineEnv);
    const shown = Object.entries(extra).map(([k, x]) => `, ${k}=${x}`);
    list.push({
      name: 'forktrace-baseline',
      label: `forktrace before (${path.basename(path.dirname(path.resolve(ROOT, baseline))).replace(/^baseline-/, '')}${shown.join('')})`,
      preload: ['--require', path.join(path.resolve(ROOT, baseline), 'register.js')],
      env: { ...forktraceEnv, ...extra },
    });
  }
  // Ad-hoc variants for experiments: "name:KEY=VALUE;KEY=VALUE" (of forktrace), or
  // "name@base:KEY=VALUE" (of another configuration, e.g. untraced or ddtrace with NODE_OPTIONS).
  for (const v of variants) {
    const [head, spec = ''] = v.split(/:(.*)/s);
    const [name, baseName = 'forktrace'] = head.split('@');
    const base = list.find((c) => c.name === baseName);
    if (!base) throw new Error(`--variant ${v}: no configuration ${baseName}`);
    const env = parseEnv(spec);
    list.push({
      ...base,
      name,
      label: `${baseName === 'forktrace' ? 'forktrace' : base.label}, ${Object.entries(env)
        .map(([k, x]) => `${k}=${x}`)
        .join(' ')}`,
      env: { ...base.env, ...env },
    });
  }
  for (const c of list) c.args = [...c.preload, APP];
  return list;
}

/** "K=V;K=V" → { K: V, … }. */
function parseEnv(spec) {
  return Object.fromEntries(
    spec
      .split(';')
      .filter(Boolean)
      .map((kv) => kv.split(/=(.*)/s).slice(0, 2)),
  );
}

export const DEFAULT_CONFIGS = ['untraced', 'forktrace', 'forktrace-nolayers', 'forktrace-1pct', 'handbuilt', 'auto', 'ddtrace'];

/**
 * `--ladder`: forktrace taken apart, one layer of cost at a time, to show where the per-request
 * cost goes (each is "name:environment" for --variant).
 */
export const LADDER_VARIANTS = [
  // The tracer provider and the AsyncLocalStorage context manager, no instrumentation.
  'provider-only:OTEL_NODE_ENABLED_INSTRUMENTATIONS=none',
  // instrumentation-http patched in, but no span sampled: the cost of the hooks alone.
  'http-unsampled:OTEL_NODE_ENABLED_INSTRUMENTATIONS=http;OTEL_TRACES_SAMPLER=always_off',
  // All three instrumentations, no span sampled.
  'all-unsampled:OTEL_TRACES_SAMPLER=always_off',
  // Only http spans, recorded and exported.
  'http-only:OTEL_NODE_ENABLED_INSTRUMENTATIONS=http',
  // Every span recorded, none exported (no batch processor, no serialization, no gzip).
  'no-export:OTEL_TRACES_EXPORTER=none',
];
