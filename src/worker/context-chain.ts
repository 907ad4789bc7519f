/**
 * Contexts kept as a chain of the values set on them, in place of @opentelemetry/api's
 * BaseContext for every context forktrace's instrumentations derive.
 *
 * Why: a BaseContext copies its parent's whole Map on each `setValue` (through the Map iterator,
 * an array per entry) and makes three closures. A traced request derives a handful of contexts
 * (the extracted parent, its span, the RPC metadata, each express layer and `next`), and on Node 24
 * that was about 5 KB of the 32 KB a sampled /hello request allocated (BENCHMARKS.md). Here a
 * `setValue` is one small object pointing at its parent, and `getValue` walks up to the nearest
 * entry for the key: a request's chains are a few links long.
 *
 * Same behaviour as BaseContext: contexts are immutable, a set or delete returns a new one, a value
 * set in a child is not seen by its parent, and the newest set or delete of a key wins. One
 * difference: a link keeps its parent, so a value overwritten further down stays reachable while
 * the child is; a chain that grows past {@link MAX_LENGTH} is copied into a short one holding only
 * what is visible, which also bounds a lookup.
 *
 * Contexts start from the API's ROOT_CONTEXT (and from a context manager's `active()`, which
 * returns it when nothing is active): its `setValue` and `deleteValue` are replaced on the copy of
 * @opentelemetry/api forktrace's code uses. ROOT_CONTEXT stays the same object, and a context made
 * by another copy of the API (a BaseContext) keeps working alongside. Listed in upstream.ts.
 */
import type { Context } from '@opentelemetry/api';

/** What a `deleteValue` leaves in the chain: the key reads as unset from there down. */
const DELETED: unique symbol = Symbol('forktrace.context.deleted');

/** Links past which a chain is copied into one holding only the visible values. */
export const MAX_LENGTH = 24;

class ChainedContext implements Context {
  constructor(
    readonly parent: ChainedContext | undefined,
    readonly key: symbol,
    readonly value: unknown,
    /** Links from here to the root, this one included. */
    readonly length: number,
  ) {}

  getValue(key: symbol): unknown {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the walk starts here
    for (let c: ChainedContext | undefined = this; c !== undefined; c = c.parent) {
      if (c.key === key) return c.value === DELETED ? undefined : c.value;
    }
    return undefined;
  }

  setValue(key: symbol, value: unknown): Context {
    return link(this, key, value);
  }

  deleteValue(key: symbol): Context {
    return link(this, key, DELETED);
  }
}

function link(parent: ChainedContext | undefined, key: symbol, value: unknown): ChainedContext {
  if (parent === undefined) return new ChainedContext(undefined, key, value, 1);
  if (parent.length < MAX_LENGTH) return new ChainedContext(parent, key, value, parent.length + 1);
  // The newest entry of each other key, oldest first, without the deleted ones.
  const newest = new Map<symbol, unknown>();
  for (let c: ChainedContext | undefined = parent; c !== undefined; c = c.parent) {
    if (c.key !== key && !newest.has(c.key)) newest.set(c.key, c.value);
  }
  // Built link by link: with more keys than MAX_LENGTH the copy is longer, and the next set copies again.
  let copy: ChainedContext | undefined;
  let length = 0;
  for (const [k, v] of [...newest].reverse()) if (v !== DELETED) copy = new ChainedContext(copy, k, v, ++length);
  return new ChainedContext(copy, key, value, length + 1);
}

/** The members of ROOT_CONTEXT this replaces: own properties of BaseContext instances (api 1.x). */
interface Root {
  setValue(key: symbol, value: unknown): Context;
  deleteValue(key: symbol): Context;
}

/**
 * Makes every context derived from `root` (the API's ROOT_CONTEXT) a chained one. False, and
 * `root` left as it is, if its methods cannot be replaced.
 */
export function chainContextsFrom(root: Context): boolean {
  const r = root as unknown as Root;
  const upstream = { setValue: r.setValue, deleteValue: r.deleteValue };
  const setValue = (key: symbol, value: unknown): Context => link(undefined, key, value);
  // Nothing is set on the root: deleting leaves it as it is.
  const deleteValue = (): Context => root;
  try {
    r.setValue = setValue;
    r.deleteValue = deleteValue;
  } catch {
    try {
      Object.assign(r, upstream);
    } catch {
      // what could not be replaced is still upstream's
    }
    return false;
  }
  return r.setValue === setValue && r.deleteValue === deleteValue;
}
