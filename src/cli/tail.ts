import * as fs from 'node:fs';
import {
  startReceiver,
  type DecodedMetricPoint,
  type DecodedSpan,
  type Receiver,
  type ReceivedMetricPoint,
  type ReceivedSpan,
} from '../tools/receiver';
import { TraceAssembler } from '../tools/trace-assembler';
import { EXIT, intOption, paint, padEnd, padStart, parse, UsageError, useColor, type Paint } from './common';

export const TAIL_HELP = `Usage: forktrace tail [options]

Runs a local OTLP/HTTP receiver and prints each trace as a tree with a waterfall, and one line per
metrics export. Point your app at it with OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 (the
default endpoint already is): traces arrive at /v1/traces, metrics at /v1/metrics.

  --port <n>        port to listen on (default 4318; 0 picks a free one)
  --host <addr>     interface to listen on (default 127.0.0.1)
  --settle <ms>     print a trace this long after its last span arrived (default 1500): spans of
                    one trace from several processes or batches are grouped by trace id
  --json            print one span per line as JSON, as it arrives, instead of trees (the metrics
                    lines then go to stderr, so stdout stays JSON)
  --save <file>     also append every span as one JSON line to <file> (spans only)
  -h, --help        this help

Each span shows its name, duration, status, key attributes (http.route, status code, db.query.text,
url.full) and where it ran: service.name, process.pid and forktrace.worker.index. Colour only on a
terminal (NO_COLOR turns it off, FORCE_COLOR on). A metrics line names the service, the number of
data points, and each metric with its kind and number of series (attribute sets), e.g.
  metrics  api  4 points: http.server.request.duration (histogram, 3 series), jobs (sum, 1 series)
Ctrl+C or SIGTERM prints what is pending and exits 0.

Exit codes: 0 stopped by a signal, 1 could not listen, 2 wrong usage.
`;

const KIND = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'];
const BAR_WIDTH = 20;
const MAX_NAME_WIDTH = 52;

/** A span as `--json` and `--save` print it: one line, ids in hex, times as decimal strings. */
export function spanJson(s: DecodedSpan): string {
  return JSON.stringify(
    {
      traceId: s.traceId,
      spanId: s.spanId,
      parentSpanId: s.parentSpanId,
      name: s.name,
      kind: KIND[s.kind] ?? String(s.kind),
      startTimeUnixNano: s.startTimeUnixNano,
      durationMs: Math.round(s.durationMs * 1000) / 1000,
      status: s.status,
      service: s.resource['service.name'],
      pid: s.resource['process.pid'],
      workerIndex: s.resource['forktrace.worker.index'],
      attributes: s.attributes,
      events: s.events.map((e) => ({ name: e.name, attributes: e.attributes })),
      resource: s.resource,
      scope: s.scope.name,
    },
    (_k, v: unknown) =>
      typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v,
  );
}

function ms(n: number): string {
  return n >= 1000 ? `${(n / 1000).toFixed(2)} s` : n >= 10 ? `${n.toFixed(1)} ms` : `${n.toFixed(2)} ms`;
}

function trim(s: string, max: number): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length > max ? one.slice(0, max - 1) + '…' : one;
}

/** The attributes worth a glance, in the order a reader scans them. */
function keyAttributes(s: DecodedSpan): string[] {
  const a = s.attributes;
  const out: string[] = [];
  const route = a['http.route'];
  if (typeof route === 'string' && !s.name.includes(route)) out.push(`route=${route}`);
  const code = a['http.response.status_code'] ?? a['http.status_code'];
  if (code !== undefined) out.push(String(code));
  const query = a['db.query.text'] ?? a['db.statement'];
  if (typeof query === 'string') out.push(trim(query, 60));
  const url = a['url.full'] ?? a['http.url'];
  if (typeof url === 'string') out.push(trim(url, 80));
  const errorType = a['error.type'];
  if (typeof errorType === 'string' && s.status.code === 2 && code === undefined) out.push(`error.type=${errorType}`);
  const exception = s.events.find((e) => e.name === 'exception');
  const message = s.status.message || (exception ? String(exception.attributes['exception.message'] ?? '') : '');
  if (message !== '') out.push(`"${trim(message, 60)}"`);
  return out;
}

function where(s: DecodedSpan): string {
  const r = s.resource;
  const worker = r['forktrace.worker.index'];
  return `${String(r['service.name'] ?? '?')} pid ${String(r['process.pid'] ?? '?')}${worker === undefined ? '' : ` w${String(worker)}`}`;
}

function status(s: DecodedSpan, p: Paint): string {
  if (s.status.code === 2) return p.red('ERROR');
  if (s.status.code === 1) return p.green('OK');
  return p.dim('-');
}

/**
 * One line for one metrics export: its services, its point count, and each metric in the order
 * sent with its kind and number of series (points, as one export has one point per attribute set).
 */
export function renderMetrics(points: readonly DecodedMetricPoint[], opts: { color: boolean }): string {
  const p = paint(opts.color);
  const services = [...new Set(points.map((x) => String(x.resource['service.name'] ?? '?')))];
  const perMetric = new Map<string, { kind: string; series: number }>();
  for (const x of points) {
    const entry = perMetric.get(x.name) ?? { kind: x.kind, series: 0 };
    entry.series++;
    perMetric.set(x.name, entry);
  }
  const metrics = [...perMetric].map(([name, m]) => `${name} ${p.dim(`(${m.kind}, ${m.series} series)`)}`);
  const count = `${points.length} point${points.length === 1 ? '' : 's'}`;
  return `${p.bold('metrics')}  ${services.join(', ') || '?'}  ${count}${metrics.length > 0 ? ': ' : ''}${metrics.join(', ')}\n`;
}

/**
 * Renders one trace as an indented tree, children under their parent in start order, with a
 * waterfall bar placing each span in the trace's time span. Spans whose parent is not among
 * `spans` are printed as roots, marked as such (a remote parent, or one that never arrived).
 */
export function renderTrace(spans: readonly DecodedSpan[], opts: { color: boolean; continued?: boolean }): string {
  const p = paint(opts.color);
  if (spans.length === 0) return '';
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  const children = new Map<string, DecodedSpan[]>();
  const roots: DecodedSpan[] = [];
  for (const s of spans) {
    if (s.parentSpanId !== '' && byId.has(s.parentSpanId) && s.parentSpanId !== s.spanId) {
      const list = children.get(s.parentSpanId) ?? [];
      list.push(s);
      children.set(s.parentSpanId, list);
    } else roots.push(s);
  }
  const byStart = (a: DecodedSpan, b: DecodedSpan) =>
    a.startTimeUnixNano < b.startTimeUnixNano ? -1 : a.startTimeUnixNano > b.startTimeUnixNano ? 1 : 0;
  roots.sort(byStart);
  for (const list of children.values()) list.sort(byStart);

  const t0 = spans.reduce((m, s) => (s.startTimeUnixNano < m ? s.startTimeUnixNano : m), spans[0]!.startTimeUnixNano);
  const t1 = spans.reduce((m, s) => (s.endTimeUnixNano > m ? s.endTimeUnixNano : m), spans[0]!.endTimeUnixNano);
  const total = Number(t1 - t0) / 1e6;

  // Depth-first order with tree prefixes.
  const rows: Array<{ span: DecodedSpan; prefix: string; orphan: boolean }> = [];
  const seen = new Set<string>();
  const walk = (s: DecodedSpan, lead: string, branch: string, orphan: boolean) => {
    if (seen.has(s.spanId)) return;
    seen.add(s.spanId);
    rows.push({ span: s, prefix: lead + branch, orphan });
    const kids = children.get(s.spanId) ?? [];
    const next = lead + (branch === '' ? '' : branch === '└─ ' ? '   ' : '│  ');
    kids.forEach((k, i) => walk(k, next, i === kids.length - 1 ? '└─ ' : '├─ ', false));
  };
  for (const r of roots) walk(r, '', '', r.parentSpanId !== '');

  const nameWidth = Math.min(MAX_NAME_WIDTH, Math.max(...rows.map((r) => r.prefix.length + r.span.name.length)));
  const services = [...new Set(rows.map((r) => String(r.span.resource['service.name'] ?? '?')))];
  const head =
    `${opts.continued ? 'trace (continued) ' : 'trace '}${spans[0]!.traceId}  ` +
    `${spans.length} span${spans.length === 1 ? '' : 's'}, ${services.length} service${services.length === 1 ? '' : 's'} (${services.join(', ')}), ${ms(total)}`;
  const lines = [p.bold(head)];
  for (const { span: s, prefix, orphan } of rows) {
    const offset = Number(s.startTimeUnixNano - t0) / 1e6;
    const start = total > 0 ? Math.min(BAR_WIDTH - 1, Math.floor((offset / total) * BAR_WIDTH)) : 0;
    const len =
      total > 0 ? Math.max(1, Math.min(BAR_WIDTH - start, Math.round((s.durationMs / total) * BAR_WIDTH))) : BAR_WIDTH;
    const bar = '·'.repeat(start) + '█'.repeat(len) + '·'.repeat(BAR_WIDTH - start - len);
    const kind = s.kind === 2 ? p.cyan(s.name) : s.kind === 3 ? p.magenta(s.name) : s.name;
    const name = padEnd(p.dim(prefix) + kind, nameWidth);
    const attrs = keyAttributes(s).join('  ');
    const mark = orphan ? p.yellow(' (parent not received)') : '';
    lines.push(
      `${name} ${padStart(ms(s.durationMs), 9)} ${padEnd(status(s, p), 5)} ${p.dim(bar)} ${attrs}${attrs === '' ? '' : '  '}${p.dim(`[${where(s)}]`)}${mark}`,
    );
  }
  return lines.join('\n') + '\n';
}

/** `forktrace tail`; resolves to the exit code once stopped by SIGINT/SIGTERM. */
export async function tailCommand(argv: string[]): Promise<number> {
  const { values } = parse('tail', {
    args: argv,
    strict: true,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      settle: { type: 'string' },
      json: { type: 'boolean' },
      save: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(TAIL_HELP);
    return EXIT.ok;
  }
  const port = intOption('tail', 'port', values.port, 4318, 0, 65535);
  const settleMs = intOption('tail', 'settle', values.settle, 1500, 0, 600_000);
  const host = values.host ?? '127.0.0.1';
  if (host.trim() === '') throw new UsageError('--host must not be empty', 'tail');
  const color = useColor(process.stdout);

  let saveFd: number | undefined;
  if (values.save !== undefined) {
    try {
      saveFd = fs.openSync(values.save, 'a');
    } catch (e) {
      process.stderr.write(`forktrace tail: cannot open --save file: ${(e as Error).message}\n`);
      return EXIT.problem;
    }
  }

  let receiver: Receiver;
  try {
    receiver = await startReceiver({ port, host });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'EADDRINUSE'
        ? `port ${port} on ${host} is in use (a Collector or another tail?); pick another with --port`
        : (e as Error).message;
    process.stderr.write(`forktrace tail: cannot listen: ${why}\n`);
    return EXIT.problem;
  }

  let spanCount = 0;
  let traceCount = 0;
  let pointCount = 0;
  const assembler = new TraceAssembler(settleMs, (spans, continued) => {
    if (!continued) traceCount++;
    process.stdout.write(renderTrace(spans, { color, continued }) + '\n');
  });
  receiver.on('spans', (spans: ReceivedSpan[]) => {
    // The receiver keeps every span for tests' waitFor; a long-running tail must not.
    receiver.reset();
    spanCount += spans.length;
    if (saveFd !== undefined) fs.writeSync(saveFd, spans.map((s) => spanJson(s) + '\n').join(''));
    if (values.json) process.stdout.write(spans.map((s) => spanJson(s) + '\n').join(''));
    else assembler.add(spans);
  });
  const metricsOut = values.json ? process.stderr : process.stdout;
  receiver.on('metrics', (points: ReceivedMetricPoint[]) => {
    // As for spans: a long-running tail must not keep every point.
    receiver.reset();
    pointCount += points.length;
    // A line of its own, set off by a blank line like a tree, so trees and metrics never run together.
    metricsOut.write(renderMetrics(points, { color: useColor(metricsOut) }) + '\n');
  });
  receiver.on('request', (req) => {
    if (req.status !== 200 && req.status !== 0) {
      process.stderr.write(
        `forktrace tail: rejected a request to ${req.path}: HTTP ${req.status} ${req.error ?? ''}\n`,
      );
    }
  });
  const base = receiver.url.replace(/\/v1\/traces$/, '');
  process.stderr.write(
    `forktrace tail: receiving OTLP/HTTP at ${receiver.url} and ${receiver.metricsUrl}; send with OTEL_EXPORTER_OTLP_ENDPOINT=${base}. Ctrl+C to stop.\n`,
  );

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      assembler.flush();
      void receiver.close().then(() => {
        if (saveFd !== undefined) fs.closeSync(saveFd);
        const points = pointCount === 0 ? '' : `, ${pointCount} metric point${pointCount === 1 ? '' : 's'}`;
        process.stderr.write(
          `forktrace tail: stopped (${signal}); ${spanCount} span${spanCount === 1 ? '' : 's'}${values.json ? '' : ` in ${traceCount} trace${traceCount === 1 ? '' : 's'}`}${points}.\n`,
        );
        resolve(EXIT.ok);
      });
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
}
