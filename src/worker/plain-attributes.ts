/**
 * The SDK's attribute checks, with a string, number or boolean value taken the short way.
 *
 * Why: @opentelemetry/core 3.x checks every attribute value a span gets with `isAnyValue`, which
 * makes a WeakSet (to find cycles in nested values) before it looks at the value's type. A span's
 * attributes are nearly all strings and numbers, so a sampled /hello request made about thirty
 * WeakSets: 2.3 KB of its allocations on Node 24, and each one work for the GC
 * (BENCHMARKS.md).
 *
 * For such values core's own "simple" checks (`maybeAddSimpleAttribute`, `cleanSimpleAttributes`)
 * give exactly the same result, limits, truncation and warnings included: both accept a string,
 * number or boolean, and differ only on arrays, objects, byte arrays and null, which still go to
 * the full checks. The SDK calls core's `maybeAddAttribute` and `cleanAttributes` through core's
 * exports object at each call (sdk-trace 3.1 Span.setAttribute, Tracer.startSpan), which is where
 * these go. Listed in upstream.ts.
 */

/** The functions of @opentelemetry/core's exports this reads and replaces. */
export interface CoreAttributes {
  maybeAddAttribute: (opts: { value: unknown }) => number;
  maybeAddSimpleAttribute: (opts: { value: unknown }) => number;
  cleanAttributes: (attributes: unknown, limits: unknown) => unknown;
  cleanSimpleAttributes: (attributes: unknown, limits: unknown) => unknown;
}

export const CORE_ATTRIBUTE_FUNCTIONS = [
  'maybeAddAttribute',
  'maybeAddSimpleAttribute',
  'cleanAttributes',
  'cleanSimpleAttributes',
] as const;

const MARK = Symbol.for('forktrace.plainAttributes');

function isPlain(value: unknown): boolean {
  const type = typeof value;
  return type === 'string' || type === 'number' || type === 'boolean';
}

/** True when every value set is a string, number or boolean (unset ones are skipped by both checks). */
function allPlain(attributes: object): boolean {
  for (const key in attributes) {
    const value = (attributes as Record<string, unknown>)[key];
    if (value !== undefined && !isPlain(value)) return false;
  }
  return true;
}

/**
 * Puts the short way in front of `core`'s `maybeAddAttribute` and `cleanAttributes`. False, and
 * `core` left as it is, if one of the four functions is missing or cannot be replaced.
 */
export function checkPlainValuesFirst(core: CoreAttributes): boolean {
  const c = core as CoreAttributes & { [MARK]?: boolean };
  if (c[MARK] === true) return true;
  if (CORE_ATTRIBUTE_FUNCTIONS.some((name) => typeof c[name] !== 'function')) return false;
  const { maybeAddAttribute: anyAdd, maybeAddSimpleAttribute: simpleAdd } = c;
  const { cleanAttributes: anyClean, cleanSimpleAttributes: simpleClean } = c;
  const maybeAddAttribute: CoreAttributes['maybeAddAttribute'] = (opts) =>
    isPlain(opts.value) ? simpleAdd(opts) : anyAdd(opts);
  const cleanAttributes: CoreAttributes['cleanAttributes'] = (attributes, limits) =>
    typeof attributes === 'object' && attributes !== null && allPlain(attributes)
      ? simpleClean(attributes, limits)
      : anyClean(attributes, limits);
  try {
    c.maybeAddAttribute = maybeAddAttribute;
  } catch {
    return false;
  }
  try {
    c.cleanAttributes = cleanAttributes;
  } catch {
    c.maybeAddAttribute = anyAdd;
    return false;
  }
  c[MARK] = true;
  return c.maybeAddAttribute === maybeAddAttribute && c.cleanAttributes === cleanAttributes;
}
