import { redactConfig } from '../../config/resolve';
import { SETTING_ROWS } from '../../config/settings';
import { optionAt } from '../../config/validate';
import type { ResolvedConfig, Source } from '../../config/types';

/** One setting as `check` shows it. */
export interface SettingReport {
  value: unknown;
  source: Source | 'endpoint URL';
  /** The variable that set it, when it came from the environment. */
  variable?: string;
}

/** Its label in the text report: the table's, `header <name>` for one header. */
export function settingLabel(reportKey: string): string {
  if (reportKey.startsWith('headers.')) return `header ${reportKey.slice('headers.'.length)}`;
  return SETTING_ROWS.find((s) => (s.option ?? s.key) === reportKey)?.label ?? reportKey;
}

/**
 * Every setting of the table, in its order, with its value, source and variable; keyed by its
 * option path (its key when it has no option). Secrets replaced: each header is one entry with
 * the value `[REDACTED]`, and the API key shows only whether it is set. Built from the redacted
 * config, never from the raw one.
 */
export function settingsReport(config: ResolvedConfig): Record<string, SettingReport> {
  const r = redactConfig(config);
  const out: Record<string, SettingReport> = {};
  for (const s of SETTING_ROWS) {
    if (s.key === 'headers') {
      for (const name of Object.keys(r.headers)) {
        const source: SettingReport['source'] =
          r.sources[`headers.${name}`] ??
          (name === r.apiKeyHeader && r.hasApiKey ? (r.sources.apiKey ?? 'env') : 'endpoint URL');
        out[`headers.${name}`] = { value: r.headers[name], source };
      }
      continue;
    }
    const path = s.option ?? s.key;
    const source = r.sources[s.key] ?? 'default';
    const report: SettingReport = { value: (s.show ? s.show(r) : optionAt(r, path)) ?? null, source };
    const variable = r.variables[s.key];
    if ((source === 'env' || source === 'pm2 env') && variable !== undefined) report.variable = variable;
    out[path] = report;
  }
  return out;
}
