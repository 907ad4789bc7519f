import type { ForktraceOptions } from '../types';
import { isPlainObject } from './parsers';
import { SETTING_ROWS } from './settings';

/** The value at an option path (`batch.maxQueueSize`); undefined when a parent is not an object. */
export function optionAt(options: object, optionPath: string): unknown {
  let value: unknown = options;
  for (const part of optionPath.split('.')) {
    if (!isPlainObject(value)) return undefined;
    value = value[part];
  }
  return value;
}

/**
 * Throws for a wrong option: a programmer error, named in backticks with the fix. Each option is
 * checked by its row of the settings table; options the table does not know are ignored.
 */
export function validateOptions(o: unknown): asserts o is ForktraceOptions {
  if (o === undefined) return;
  if (!isPlainObject(o)) throw new TypeError('`options` must be an object, e.g. instrument({ serviceName: "api" }).');
  for (const s of SETTING_ROWS) {
    if (s.option === undefined) continue;
    const value = optionAt(o, s.option);
    if (value !== undefined) (s.parser?.check ?? s.check)?.(s.option, value);
  }
  if (o.batch !== undefined && !isPlainObject(o.batch))
    throw new TypeError('`batch` must be an object, e.g. { maxQueueSize: 2048 }.');
}
