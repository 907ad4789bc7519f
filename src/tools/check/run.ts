/**
 * The logic behind `forktrace check`: resolve the configuration exactly as a worker would, send
 * one real (empty) export, and say in plain words what is wrong. Nothing here prints; the CLI
 * (src/cli/check.ts) decides how to show the report.
 */
import * as path from 'node:path';
import type { Env, ResolvedConfig } from '../../config/types';
import type { Finding } from '../../types';
import { nodeTooOld, tooOldMessage } from '../../worker/node-version';
import { inspectApi, inspectLibraries, type ApiReport, type LibraryReport } from './libraries';
import { headerEncodingFindings } from './headers';
import { checkMessages } from './messages';
import { resolveCheckConfig, type Pm2App } from './pm2-app';
import { sendEmptyExport, type ExportProbe } from './probe';
import { settingsReport, type SettingReport } from './settings-report';
import { unknownVariables } from './variables';

/** The whole `check` report. `problems` empty means exit 0. */
export interface CheckReport {
  ok: boolean;
  /** Where the configuration came from. */
  target:
    | { kind: 'env'; script?: string; cwd: string }
    | { kind: 'pm2'; file: string; app: string; cwd: string; script: string; env?: string };
  settings: Record<string, SettingReport>;
  /** resolveConfig's warnings: mistakes in variables, fallbacks. */
  warnings: string[];
  export: ExportProbe;
  libraries: { resolvedFrom: string; list: LibraryReport[] };
  /** The app's own @opentelemetry/api. */
  api: ApiReport;
  /** The Node running the check, and whether forktrace instruments on it. */
  node: { version: string; supported: boolean };
  /** One sentence per thing that is wrong. */
  problems: string[];
  /** Things worth knowing that are not wrong. */
  notes: string[];
  /** `problems` and `notes` as values, in that order of discovery: resolveConfig's and check's own. */
  findings: Finding[];
}

/** Runs every check. The report holds no secret; the CLI scrubs its output once more anyway. */
export async function runCheck(opts: {
  pm2?: Pm2App;
  script?: string;
  env?: Env;
  cwd?: string;
  timeoutMs?: number;
  send?: boolean;
  /** Send even when credentials would cross the network in clear text (then only a note). */
  allowPlainHttp?: boolean;
}): Promise<{ report: CheckReport; secrets: string[] }> {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  const resolved = resolveCheckConfig({ ...opts, env, cwd });
  const { config } = resolved;
  const findings = [
    ...unknownVariableFindings(resolved.names),
    ...collectFindings(config, resolved.unread ?? []),
    ...(resolved.appFindings ?? []),
    ...headerEncodingFindings(resolved.env),
  ];
  const node = { version: process.version, supported: !nodeTooOld(process.version) };
  const otlp = config.exporters.includes('otlp');
  // Sending the check itself would put the key on the wire in clear text: not without consent.
  // resolveConfig says when (among the findings above); it does only when OTLP is exported.
  const plain = config.findings.some((f) => f.code === 'credentials-over-http');

  const timeoutMs = opts.timeoutMs ?? config.timeoutMillis;
  let probe: ExportProbe;
  const skip =
    opts.send === false
      ? checkMessages.notSent.noSend
      : config.disabled
        ? checkMessages.notSent.disabled
        : !otlp
          ? checkMessages.notSent.noOtlp
          : plain && !opts.allowPlainHttp
            ? checkMessages.notSent.plainHttp
            : undefined;
  if (skip !== undefined) {
    probe = { url: config.endpoint, sent: false, ok: false, diagnosis: { kind: 'skipped', text: skip } };
  } else {
    probe = await sendEmptyExport(config, timeoutMs);
    if (probe.otlp === false)
      findings.push({
        code: 'export-not-otlp',
        setting: 'endpoint',
        severity: 'problem',
        text: checkMessages.exportFailed(probe.url, probe.diagnosis.text),
      });
    else if (!probe.ok)
      findings.push({
        code: probe.diagnosis.kind === 'redirect' ? 'export-redirect' : 'export-failed',
        setting: 'endpoint',
        severity: 'problem',
        text: checkMessages.exportFailed(probe.url, probe.diagnosis.text),
      });
  }

  const list = inspectLibraries(resolved.appDir, config);
  for (const lib of list) {
    if (lib.installed && lib.supported === false) {
      findings.push({
        code: 'library-unsupported',
        setting: 'instrumentations',
        severity: 'problem',
        text: checkMessages.libraryUnsupported(lib.name, lib.version ?? '', lib.supportedRange),
      });
    }
    if (lib.installed && !lib.enabled && lib.name !== 'http')
      findings.push({
        code: 'instrumentation-off',
        setting: 'instrumentations',
        severity: 'note',
        text: checkMessages.instrumentationOff(lib.name),
      });
  }

  const api = inspectApi(resolved.appDir);
  if (api.app !== undefined && api.kept !== true)
    findings.push({ code: 'api-not-kept', severity: 'problem', text: api.text });

  const target: CheckReport['target'] = resolved.pm2
    ? {
        kind: 'pm2',
        file: resolved.pm2.file,
        app: resolved.pm2.name,
        cwd: resolved.pm2.cwd,
        script: resolved.pm2.script,
        ...(resolved.pm2.envName === undefined ? {} : { env: resolved.pm2.envName }),
      }
    : { kind: 'env', cwd, ...(opts.script === undefined ? {} : { script: path.resolve(cwd, opts.script) }) };
  const problems = findings.filter((f) => f.severity === 'problem').map((f) => f.text);
  return {
    report: {
      ok: problems.length === 0,
      target,
      settings: settingsReport(config),
      warnings: config.warnings,
      export: probe,
      libraries: { resolvedFrom: resolved.appDir, list },
      api,
      node,
      problems,
      notes: findings.filter((f) => f.severity === 'note').map((f) => f.text),
      findings,
    },
    secrets: config.secrets,
  };
}

/**
 * What is wrong before anything is sent: settings pm2 would not hand the worker, a Node too old,
 * resolveConfig's own findings (a fallback service name is a note, unknown_service a problem),
 * tracing turned off.
 */
function collectFindings(config: ResolvedConfig, unread: string[]): Finding[] {
  const findings: Finding[] = unread.map((text) => ({ code: 'pm2-env-not-read', severity: 'problem', text }));
  // The Node this check runs on; under pm2 that is the one `pm2 start` uses unless the app sets
  // an `interpreter`.
  if (nodeTooOld(process.version))
    findings.push({ code: 'node-too-old', severity: 'problem', text: tooOldMessage(process.version) });
  findings.push(...config.findings);
  if (config.disabled)
    findings.push({ code: 'disabled', setting: 'disabled', severity: 'problem', text: checkMessages.disabled });
  if (!config.exporters.includes('otlp') && !config.disabled)
    findings.push({
      code: 'no-otlp-exporter',
      setting: 'exporters',
      severity: 'problem',
      text: checkMessages.noOtlpExporter(config.exporters),
    });
  return findings;
}

/**
 * A name close to a known one is a misspelling, and so is any unknown FORKTRACE_ name: problems.
 * Another OTEL_ name may be meant for another tool: a note.
 */
export function unknownVariableFindings(names: ReadonlyMap<string, 'env' | 'pm2 env'>): Finding[] {
  return unknownVariables(names.keys()).map((u): Finding => {
    const where = names.get(u.name) === 'pm2 env' ? checkMessages.inPm2Env : '';
    if (u.nearest !== undefined)
      return {
        code: 'unknown-variable',
        ...(u.setting === undefined ? {} : { setting: u.setting }),
        severity: 'problem',
        text: checkMessages.misspeltVariable(u.name, where, u.nearest),
      };
    return /^forktrace_/i.test(u.name)
      ? { code: 'unknown-variable', severity: 'problem', text: checkMessages.unknownForktraceVariable(u.name, where) }
      : { code: 'unknown-variable', severity: 'note', text: checkMessages.otherOtelVariable(u.name, where) };
  });
}
