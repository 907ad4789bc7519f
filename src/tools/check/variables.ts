/**
 * Variable names forktrace does not know, and the known name each was likely meant to be. A
 * misspelt name is silently ignored by a worker: the setting it was meant for keeps its default,
 * and nothing says so. Names only; a value is never read here.
 */
import { KNOWN_VARIABLES, SETTING_ROWS } from '../../config/settings';

/** An OTEL_ or FORKTRACE_ name that is not one forktrace reads. */
export interface UnknownVariable {
  name: string;
  /** The known name it most likely stands for, if one is close enough. */
  nearest?: string;
  /** The setting that known name sets. */
  setting?: string;
}

const OURS = /^(otel|forktrace)_/i;

/**
 * Optimal string alignment distance: insertions, deletions, substitutions and transpositions of
 * two neighbours each cost 1 (`SERIVCE` is one step from `SERVICE`).
 */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 1; j <= b.length; j++) (d[0] as number[])[j] = j;
  for (let i = 1; i <= a.length; i++) {
    const row = d[i] as number[];
    const prev = d[i - 1] as number[];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min((prev[j] as number) + 1, (row[j - 1] as number) + 1, (prev[j - 1] as number) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        v = Math.min(v, ((d[i - 2] as number[])[j - 2] as number) + 1);
      row[j] = v;
    }
  }
  return (d[a.length] as number[])[b.length] as number;
}

/** Whether one name is the other with one `_`-separated word more (`OTEL_EXPORTER_ENDPOINT`). */
function oneWordApart(a: string, b: string): boolean {
  const [short, long] = a.length < b.length ? [a.split('_'), b.split('_')] : [b.split('_'), a.split('_')];
  if (long.length !== short.length + 1) return false;
  for (let skip = 0; skip < long.length; skip++) {
    if (long.filter((_, i) => i !== skip).join('_') === short.join('_')) return true;
  }
  return false;
}

/** Words of the OpenTelemetry variables of other signals, which forktrace does not send. */
const OTHER_SIGNALS = new Set(['LOGS', 'PROFILES']);

/**
 * The known variable `name` was most likely meant to be, or undefined when none is close: two
 * edits at most (more would match one real name to another: TRACES and LOGS are 5 apart), or one
 * word more or less. A variable of another signal (`OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`) is
 * not a misspelling of a traces one.
 */
export function nearestKnown(name: string, known: readonly string[] = KNOWN_VARIABLES): string | undefined {
  const upper = name.toUpperCase();
  if (upper.split('_').some((w) => OTHER_SIGNALS.has(w))) return undefined;
  let best: { name: string; score: [number, number] } | undefined;
  for (const k of known) {
    const edits = editDistance(upper, k);
    const score: [number, number] = [oneWordApart(upper, k) ? Math.min(1, edits) : edits, edits];
    if (best === undefined || score[0] < best.score[0] || (score[0] === best.score[0] && score[1] < best.score[1]))
      best = { name: k, score };
  }
  return best !== undefined && best.score[0] <= 2 ? best.name : undefined;
}

/** The OTEL_ and FORKTRACE_ names among `names` that forktrace does not read, with their nearest known name. */
export function unknownVariables(names: Iterable<string>): UnknownVariable[] {
  const known = new Set(KNOWN_VARIABLES);
  const out: UnknownVariable[] = [];
  for (const name of names) {
    if (!OURS.test(name) || known.has(name)) continue;
    const nearest = nearestKnown(name);
    const setting = nearest === undefined ? undefined : SETTING_ROWS.find((s) => s.env.includes(nearest))?.key;
    out.push({ name, ...(nearest === undefined ? {} : { nearest }), ...(setting === undefined ? {} : { setting }) });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
