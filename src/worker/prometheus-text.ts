/**
 * A Prometheus scrape response from metrics already aggregated across a server's workers: the
 * Prometheus text format 0.0.4 or OpenMetrics 1.0, named and typed as OpenTelemetry's "Prometheus
 * and OpenMetrics Compatibility" spec says
 * (https://opentelemetry.io/docs/specs/otel/compatibility/prometheus_and_openmetrics/), so that
 * `http.server.request.duration` in seconds is queried as
 * `http_server_request_duration_seconds_bucket`, as with any other OpenTelemetry exporter.
 *
 * Pure: no I/O and no SDK types. The caller aggregates, serves, and logs what render() reports
 * through `onProblem`.
 */

export type FamilyType = 'counter' | 'updowncounter' | 'gauge' | 'histogram';

export interface Exemplar {
  value: number;
  /** 32 lowercase hex digits; an exemplar whose ids are not valid is not rendered. */
  traceId: string;
  /** 16 lowercase hex digits. */
  spanId: string;
  timeUnixMs: number;
}

export interface Series {
  attributes: Record<string, string | number | boolean>;
  /** counter / updowncounter / gauge */
  value?: number;
  /** histogram */
  count?: number;
  sum?: number;
  /**
   * histogram: per-bucket counts as OpenTelemetry keeps them (not cumulative):
   * `bucketCounts.length === bounds.length + 1`, the last one is the +Inf bucket.
   */
  bucketCounts?: number[];
  /** histogram: one optional exemplar per bucket (same length as bucketCounts); counter: exemplars?.[0] */
  exemplars?: Array<Exemplar | undefined>;
}

export interface Family {
  /** The OpenTelemetry instrument name, e.g. `http.server.request.duration`. */
  name: string;
  description: string;
  /** The OpenTelemetry (UCUM) unit, e.g. `s`, `By`, `{request}`; '' for none. */
  unit: string;
  type: FamilyType;
  /** histogram: the explicit bucket boundaries, increasing. */
  bounds?: number[];
  series: Series[];
}

/**
 * Something render() left out or chose, for the caller to log: rate-limited, since a scrape every
 * few seconds renders the same problem each time. `code` is stable; `text` is for people.
 */
export interface RenderProblem {
  code: 'type-conflict' | 'name-clash' | 'duplicate-series' | 'bad-series' | 'reserved-label' | 'help-conflict';
  /** The Prometheus metric family name it is about. */
  metric: string;
  text: string;
}

export interface RenderOptions {
  format: 'prometheus' | 'openmetrics';
  /** prefix added as `<namespace>_`; '' for none */
  namespace: string;
  /** attach exemplars (OpenMetrics only; the text format has none) */
  exemplars: boolean;
  /** labels of a `target_info` info family (e.g. service.name → service_name); omitted when empty */
  targetInfo: Record<string, string | number | boolean>;
  /** Told of each family, series or label left out, and why. Default: nothing is told. */
  onProblem?: (problem: RenderProblem) => void;
}

/** The texts of RenderProblem, word for word (tests assert them). */
export const prometheusMessages = {
  typeConflict: (metric: string, name: string, type: string, keptName: string, keptType: string) =>
    `${metric}: "${name}" (${type}) is left out: "${keptName}" (${keptType}) has the same Prometheus name. Rename one of the instruments.`,
  nameClash: (metric: string, name: string, sample: string) =>
    `${metric}: "${name}" is left out: its sample name ${sample} is already used by another metric. Rename the instrument.`,
  duplicateSeries: (metric: string, labels: string) =>
    `${metric}: two series have the labels {${labels}}; the second is left out.`,
  bucketCounts: (metric: string, counts: number, bounds: number) =>
    `${metric}: a series has ${counts} bucket counts for ${bounds} bounds (expected ${bounds + 1}); it is left out.`,
  noValue: (metric: string) => `${metric}: a series has no value; it is left out.`,
  reservedLabel: (metric: string, key: string) =>
    `${metric}: the attribute "${key}" is left out: a histogram's "le" label is its bucket bound.`,
  helpConflict: (metric: string, kept: string) =>
    `${metric}: instruments with the same Prometheus name have different descriptions; HELP is the one of "${kept}".`,
} as const;

const CONTENT_TYPES = {
  prometheus: 'text/plain; version=0.0.4; charset=utf-8',
  openmetrics: 'application/openmetrics-text; version=1.0.0; charset=utf-8',
} as const;

/** The Content-Type for each format: text/plain; version=0.0.4; charset=utf-8 and application/openmetrics-text; version=1.0.0; charset=utf-8 */
export function contentType(format: RenderOptions['format']): string {
  return CONTENT_TYPES[format];
}

/**
 * Which format a scrape's Accept header asks for (OpenMetrics when it lists application/openmetrics-text, as Prometheus does).
 *
 * The q-values count: OpenMetrics is chosen when its best q is above 0 and at least that of any
 * range the text format satisfies (text/plain, text/*, *\/*). Prometheus 2.x sends
 * `application/openmetrics-text;version=1.0.0,…,text/plain;version=0.0.4;q=0.5,*\/*;q=0.1`
 * (with native histograms on, protobuf first and OpenMetrics at q=0.8: protobuf is not offered
 * here, so OpenMetrics). No header, or one naming neither, gets the text format.
 */
export function negotiate(accept: string | undefined): RenderOptions['format'] {
  let openMetrics = 0;
  let text = 0;
  for (const range of (accept ?? '').split(',')) {
    const [mediaType = '', ...params] = range.split(';').map((s) => s.trim().toLowerCase());
    let q = 1;
    let version: string | undefined;
    for (const param of params) {
      const [key, value = ''] = param.split('=', 2).map((s) => s.trim());
      if (key === 'q') q = Number(value);
      else if (key === 'version') version = value;
    }
    if (!(q > 0)) continue;
    if (mediaType === 'application/openmetrics-text') {
      // 0.0.1 is the draft Prometheus also lists; client_golang answers it with 1.0.0 too.
      if (version === undefined || version === '0.0.1' || version.startsWith('1.'))
        openMetrics = Math.max(openMetrics, q);
    } else if (mediaType === 'text/plain' || mediaType === 'text/*' || mediaType === '*/*') {
      text = Math.max(text, q);
    }
  }
  return openMetrics > 0 && openMetrics >= text ? 'openmetrics' : 'prometheus';
}

/**
 * The scrape response for `families`: one family per Prometheus name, `target_info` first, then
 * the others by name, each family's series in the order given; it ends with a newline, and in
 * OpenMetrics with `# EOF`.
 *
 * Families whose names become the same Prometheus name are merged into one (their series in the
 * order of their OpenTelemetry names) when their types agree. When they do not, the first by
 * OpenTelemetry name is kept and the others are left out, as the spec requires (two TYPE lines
 * for one name would fail the whole scrape); so is a family one of whose sample names another
 * family already uses (a gauge `x_count` beside a histogram `x`). A series with a wrong bucket
 * layout or no value, or whose labels repeat another series' in its family, is left out. Each is
 * told to `onProblem`.
 */
export function render(families: Family[], options: RenderOptions): string {
  const om = options.format === 'openmetrics';
  const report = options.onProblem ?? (() => {});
  const lines: string[] = [];
  // Sample and family names taken so far: OpenMetrics forbids a family whose samples could be
  // read as another family's (`x_count` beside a histogram `x`).
  const taken = new Set<string>();

  const targetLabels = labelPairs(options.targetInfo);
  if (targetLabels.length > 0) {
    taken.add('target').add('target_info');
    const help = 'Target metadata';
    if (om) lines.push('# TYPE target info', `# HELP target ${help}`);
    else lines.push(`# HELP target_info ${help}`, '# TYPE target_info gauge');
    lines.push(`target_info${labelText(targetLabels)} 1`);
  }

  for (const group of groupFamilies(families, options.namespace, report)) {
    const names = [group.name, ...sampleSuffixes[group.type].map((s) => joinName(group.name, s))];
    const clash = names.find((n) => taken.has(n));
    if (clash !== undefined) {
      for (const f of group.families)
        report(problem('name-clash', group.name, prometheusMessages.nameClash(group.name, f.name, clash)));
      continue;
    }
    const samples = renderSamples(group, om && options.exemplars, report);
    if (samples.length === 0) continue;
    for (const n of names) taken.add(n);

    // The text format names a counter's family after its sample (`x_total`); OpenMetrics after
    // the family (`x`), the sample keeping `_total`.
    const family = group.type === 'counter' && !om ? joinName(group.name, 'total') : group.name;
    const help = group.help === '' ? [] : [`# HELP ${family} ${escapeHelp(group.help, om)}`];
    const type = `# TYPE ${family} ${group.type}`;
    if (om) lines.push(type, ...(group.unit === '' ? [] : [`# UNIT ${family} ${group.unit}`]), ...help);
    else lines.push(...help, type);
    lines.push(...samples);
  }

  if (om) lines.push('# EOF');
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

type PromType = 'counter' | 'gauge' | 'histogram';

/** The suffixes of the samples render() writes (no `_created`: the start time is not given). */
const sampleSuffixes: Record<PromType, string[]> = {
  counter: ['total'],
  gauge: [],
  histogram: ['bucket', 'sum', 'count'],
};

/** Families of one Prometheus name. */
interface Group {
  /** The family name: sanitized, namespaced, with the unit suffix, without `_total`. */
  name: string;
  type: PromType;
  /** The unit suffix of `name`, for OpenMetrics' UNIT line; '' for none. */
  unit: string;
  help: string;
  families: Family[];
}

function groupFamilies(families: Family[], namespace: string, report: (p: RenderProblem) => void): Group[] {
  const named = families.map((family) => ({ family, type: promType(family.type), ...familyName(family, namespace) }));
  // Sorted by OpenTelemetry name within a Prometheus name, so which family wins a conflict does
  // not depend on the order workers' data arrived in.
  named.sort((a, b) => compare(a.name, b.name) || compare(a.family.name, b.family.name) || compare(a.type, b.type));
  const groups = new Map<string, Group>();
  for (const { family, type, name, unit } of named) {
    const group = groups.get(name);
    if (group === undefined) {
      groups.set(name, { name, type, unit, help: family.description, families: [family] });
      continue;
    }
    const first = group.families[0]!;
    if (group.type !== type) {
      report(
        problem(
          'type-conflict',
          name,
          prometheusMessages.typeConflict(name, family.name, type, first.name, group.type),
        ),
      );
      continue;
    }
    group.families.push(family);
    if (group.help === '') group.help = family.description;
    else if (family.description !== '' && family.description !== group.help) {
      report(problem('help-conflict', name, prometheusMessages.helpConflict(name, first.name)));
    }
    if (group.unit === '') group.unit = unit;
  }
  return [...groups.values()];
}

function renderSamples(group: Group, exemplars: boolean, report: (p: RenderProblem) => void): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const family of group.families) {
    for (const series of family.series) {
      const pairs = labelPairs(series.attributes).filter(([key]) => {
        if (group.type !== 'histogram' || key !== 'le') return true;
        report(problem('reserved-label', group.name, prometheusMessages.reservedLabel(group.name, key)));
        return false;
      });
      const labels = labelText(pairs);
      if (seen.has(labels)) {
        report(
          problem('duplicate-series', group.name, prometheusMessages.duplicateSeries(group.name, labels.slice(1, -1))),
        );
        continue;
      }
      const lines =
        group.type === 'histogram'
          ? histogramLines(group.name, family.bounds ?? [], series, pairs, exemplars, report)
          : valueLine(group, series, labels, exemplars, report);
      if (lines.length === 0) continue;
      seen.add(labels);
      out.push(...lines);
    }
  }
  return out;
}

function valueLine(
  group: Group,
  series: Series,
  labels: string,
  exemplars: boolean,
  report: (p: RenderProblem) => void,
): string[] {
  if (series.value === undefined) {
    report(problem('bad-series', group.name, prometheusMessages.noValue(group.name)));
    return [];
  }
  if (group.type === 'gauge') return [`${group.name}${labels} ${formatNumber(series.value)}`];
  const exemplar = exemplars ? usableExemplar(series.exemplars?.[0]) : undefined;
  return [`${joinName(group.name, 'total')}${labels} ${formatNumber(series.value)}${exemplarText(exemplar)}`];
}

function histogramLines(
  name: string,
  bounds: number[],
  series: Series,
  pairs: Array<[string, string]>,
  exemplars: boolean,
  report: (p: RenderProblem) => void,
): string[] {
  const counts = series.bucketCounts ?? [...bounds.map(() => 0), series.count ?? 0];
  if (counts.length !== bounds.length + 1) {
    report(problem('bad-series', name, prometheusMessages.bucketCounts(name, counts.length, bounds.length)));
    return [];
  }
  const out: string[] = [];
  let cumulative = 0;
  // The spec wants an exemplar on every bucket that can have one: a bucket without its own takes
  // the one below it, which is also within its bound (buckets are cumulative).
  let exemplar: Exemplar | undefined;
  counts.forEach((count, i) => {
    cumulative += count;
    const bound = bounds[i] ?? Infinity;
    const own = exemplars ? usableExemplar(series.exemplars?.[i]) : undefined;
    // OpenMetrics: an exemplar's value must be within its bucket.
    if (own !== undefined && own.value <= bound) exemplar = own;
    const labels = labelText([...pairs, ['le', formatBound(bound)]]);
    out.push(`${joinName(name, 'bucket')}${labels} ${formatNumber(cumulative)}${exemplarText(exemplar)}`);
  });
  // OpenMetrics: no _sum when buckets can hold negative values (it would not be a counter), and
  // _count only beside a _sum. Both formats get the same samples.
  if (series.sum !== undefined && (bounds[0] ?? 0) >= 0) {
    const labels = labelText(pairs);
    out.push(`${joinName(name, 'sum')}${labels} ${formatNumber(series.sum)}`);
    out.push(`${joinName(name, 'count')}${labels} ${formatNumber(series.count ?? cumulative)}`);
  }
  return out;
}

function problem(code: RenderProblem['code'], metric: string, text: string): RenderProblem {
  return { code, metric, text };
}

function promType(type: FamilyType): PromType {
  return type === 'updowncounter' ? 'gauge' : type;
}

// --- Names ---

/** UCUM units to the words Prometheus names use, as the spec and the Collector's translator map them. */
const UNIT_WORDS: Record<string, string> = {
  d: 'days',
  h: 'hours',
  min: 'minutes',
  s: 'seconds',
  ms: 'milliseconds',
  us: 'microseconds',
  ns: 'nanoseconds',
  By: 'bytes',
  KiBy: 'kibibytes',
  MiBy: 'mebibytes',
  GiBy: 'gibibytes',
  TiBy: 'tebibytes',
  KBy: 'kilobytes',
  MBy: 'megabytes',
  GBy: 'gigabytes',
  TBy: 'terabytes',
  m: 'meters',
  V: 'volts',
  A: 'amperes',
  J: 'joules',
  W: 'watts',
  g: 'grams',
  Cel: 'celsius',
  Hz: 'hertz',
  '%': 'percent',
};

/** The denominator of `a/b` in the singular: `By/s` is bytes_per_second. */
const PER_WORDS: Record<string, string> = {
  s: 'second',
  m: 'minute',
  h: 'hour',
  d: 'day',
  w: 'week',
  mo: 'month',
  y: 'year',
};

/** The unit suffix of a family: '' when the unit is only an annotation (`{request}`) or `1` on a non-gauge. */
function unitSuffix(unit: string, type: FamilyType): string {
  const bare = unit.replace(/\{[^}]*\}/g, '').trim();
  // `1` is a ratio only on a gauge: on a counter or histogram it is a count of things.
  if (bare === '1') return type === 'gauge' ? 'ratio' : '';
  const slash = bare.indexOf('/');
  const numerator = slash < 0 ? bare : bare.slice(0, slash).trim();
  const denominator = slash < 0 ? '' : bare.slice(slash + 1).trim();
  const words: string[] = [];
  if (numerator !== '' && numerator !== '1') words.push(UNIT_WORDS[numerator] ?? numerator);
  if (denominator !== '') words.push('per', PER_WORDS[denominator] ?? UNIT_WORDS[denominator] ?? denominator);
  return trimUnderscores(collapse(words.join('_').replace(/[^a-zA-Z0-9_]/g, '_')));
}

/** A family's Prometheus name (without a counter's `_total`) and the unit suffix it ends with. */
function familyName(family: Pick<Family, 'name' | 'unit' | 'type'>, namespace: string): { name: string; unit: string } {
  const unit = unitSuffix(family.unit, family.type);
  let name = collapse((namespace === '' ? family.name : `${namespace}_${family.name}`).replace(/[^a-zA-Z0-9_:]/g, '_'));
  // `_total` goes after the unit (`x_seconds_total`), so a counter already named `x_total` loses
  // it here and gets it back on its sample.
  if (family.type === 'counter' && name.endsWith('_total')) name = name.slice(0, -'_total'.length);
  if (unit !== '' && name !== unit && !name.endsWith(`_${unit}`)) name = joinName(name, unit);
  if (/^[0-9]/.test(name)) name = `_${name}`;
  return { name, unit };
}

/** A label name from an attribute key: `http.route` → `http_route`. */
function labelName(key: string): string {
  const name = collapse(key.replace(/[^a-zA-Z0-9_]/g, '_'));
  return /^[0-9]/.test(name) ? `_${name}` : name;
}

function joinName(name: string, suffix: string): string {
  return name.endsWith('_') ? `${name}${suffix}` : `${name}_${suffix}`;
}

function collapse(s: string): string {
  return s.replace(/_{2,}/g, '_');
}

function trimUnderscores(s: string): string {
  return s.replace(/^_+|_+$/g, '');
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// --- Labels ---

/**
 * Sorted label pairs from attributes. Keys that become the same label name share it, their values
 * joined with `;` in the order of the original keys, as the spec says.
 */
function labelPairs(attributes: Record<string, string | number | boolean>): Array<[string, string]> {
  const byName = new Map<string, Array<[string, string]>>();
  for (const [key, value] of Object.entries(attributes)) {
    const name = labelName(key);
    if (name === '') continue;
    const list = byName.get(name) ?? [];
    list.push([key, String(value)]);
    byName.set(name, list);
  }
  return [...byName]
    .map(([name, list]): [string, string] => [
      name,
      list
        .sort((a, b) => compare(a[0], b[0]))
        .map(([, v]) => v)
        .join(';'),
    ])
    .sort((a, b) => compare(a[0], b[0]));
}

function labelText(pairs: Array<[string, string]>): string {
  return pairs.length === 0 ? '' : `{${pairs.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}}`;
}

function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
}

/**
 * HELP text: both formats escape backslash and newline; OpenMetrics also a double quote, which
 * the text format's parser rejects as an unknown escape.
 */
function escapeHelp(help: string, om: boolean): string {
  return help.replace(om ? /[\\"\n]/g : /[\\\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
}

// --- Numbers ---

/** A sample or exemplar value: integers in full (no exponent), others as JavaScript writes them. */
function formatNumber(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  if (Number.isInteger(n) && Math.abs(n) >= 1e21) return BigInt(n).toString();
  return String(n);
}

/**
 * An `le` value as OpenMetrics wants it ("Canonical Numbers": Go's %g with `.0` added to a whole
 * number: `0.005`, `1.0`, `100000.0`, `1e+06`, `+Inf`). The text format gets the same: Prometheus
 * 2 kept `le="1"` and `le="1.0"` as different series, and Prometheus 3 stores `1.0` either way.
 */
function formatBound(n: number): string {
  if (!Number.isFinite(n)) return formatNumber(n);
  const [digits = '', exponent = '0'] = n.toExponential().split('e');
  const exp = Number(exponent);
  // Go's %g with the shortest digits switches to an exponent below 1e-4 and from 1e+06 on.
  const text =
    exp < -4 || exp >= 6 ? `${digits}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}` : String(n);
  return /[.e]/.test(text) ? text : `${text}.0`;
}

// --- Exemplars ---

function usableExemplar(e: Exemplar | undefined): Exemplar | undefined {
  // A trace link is the point of an exemplar; without valid ids there is nothing to follow.
  if (e === undefined || !/^[0-9a-f]{32}$/.test(e.traceId) || !/^[0-9a-f]{16}$/.test(e.spanId)) return undefined;
  if (/^0+$/.test(e.traceId) || /^0+$/.test(e.spanId)) return undefined;
  return e;
}

function exemplarText(e: Exemplar | undefined): string {
  if (e === undefined) return '';
  const time = Number.isFinite(e.timeUnixMs) ? ` ${(e.timeUnixMs / 1000).toFixed(3)}` : '';
  return ` # {trace_id="${e.traceId}",span_id="${e.spanId}"} ${formatNumber(e.value)}${time}`;
}
