/**
 * Header values whose percent-encoding is likely not what was meant. OTEL_EXPORTER_OTLP_HEADERS
 * is percent-decoded (the OTel spec's W3C-baggage format), so a key copied with a literal `%2F` in
 * it is sent as `/`, and a value encoded twice is sent still encoded: either gets a 401 that
 * the key itself looks right for. Headers are named, never their values.
 */
import { read } from '../../config/parsers';
import { SETTINGS } from '../../config/settings';
import type { Env } from '../../config/types';
import type { Finding } from '../../types';
import { checkMessages } from './messages';

const ESCAPE = /%[0-9A-Fa-f]{2}/;

function decoded(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch {
    // A malformed escape: resolveConfig already warns, and sends it as written.
    return undefined;
  }
}

/** One note per header whose value decoding changed, or left still encoded. */
export function headerEncodingFindings(env: Env): Finding[] {
  const findings: Finding[] = [];
  for (const variable of SETTINGS.headers.env) {
    const raw = read(env, variable);
    if (raw === undefined) continue;
    for (const pair of raw.split(',')) {
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = decoded(pair.slice(0, eq).trim())?.toLowerCase();
      const value = pair.slice(eq + 1).trim();
      if (name === undefined || !ESCAPE.test(value)) continue;
      const text = decoded(value);
      if (text === undefined) continue;
      findings.push({
        code: ESCAPE.test(text) ? 'header-encoded-twice' : 'header-percent-decoded',
        setting: 'headers',
        severity: 'note',
        text: ESCAPE.test(text)
          ? checkMessages.headerEncodedTwice(name, variable)
          : checkMessages.headerPercentDecoded(name, variable),
      });
    }
  }
  return findings;
}
