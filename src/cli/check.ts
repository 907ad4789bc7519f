import { CheckInputError, loadPm2App, type Pm2App } from '../tools/check/pm2-app';
import { runCheck, type CheckReport } from '../tools/check/run';
import { settingLabel } from '../tools/check/settings-report';
import { Redactor } from '../worker/secrets';
import { EXIT, intOption, paint, padEnd, parse, UsageError, useColor } from './common';

export const CHECK_HELP = `Usage: forktrace check [script] [options]
       forktrace check --pm2 <ecosystem file> [--app <name>] [--env <name>] [options]

Resolves forktrace's configuration exactly as a traced process would, sends one real, empty
OTLP/HTTP export to the endpoint, and says what is wrong.

  [script]              the app's entry file: its package.json gives service.name/version
                        (default: the package.json found from the current directory)
  --pm2 <file>          read the app's env from a pm2 ecosystem file, as pm2 would start it
  --app <name>          the app in the ecosystem file (default: the first)
  --env <name>          also merge the app's env_<name> block (pm2 start --env <name>)
  --timeout <ms>        how long to wait for the endpoint (default: the exporter timeout)
  --no-send             check the configuration and libraries only; send nothing
  --allow-plain-http    send even when credentials would go unencrypted to another host
  --json                print the report as JSON
  -h, --help            this help

Prints every setting with its source (option, env, pm2 env, package.json, pm2 app, default),
never a secret: header values and the API key are shown as [REDACTED] / "set". Lists the
libraries the app has (express, mysql2, its own @opentelemetry/api) and whether their spans will
be kept, and says so when this Node is too old for forktrace.

Exit codes: 0 nothing wrong, 1 a problem was found (listed), 2 wrong usage.
`;

function show(value: unknown): string {
  if (value === null || value === undefined) return '(unset)';
  if (Array.isArray(value)) return value.length === 0 ? '(none)' : value.join(', ');
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 0) return '(none)';
    return entries
      .map(([k, v]) => (typeof v === 'boolean' ? `${k} ${v ? 'on' : 'off'}` : `${k}=${String(v)}`))
      .join(', ');
  }
  return String(value);
}

function renderText(report: CheckReport, color: boolean): string {
  const p = paint(color);
  const lines: string[] = [];
  const t = report.target;
  lines.push(
    p.bold('forktrace check') +
      (t.kind === 'pm2'
        ? ` - pm2 app "${t.app}" from ${t.file}${t.env ? ` (--env ${t.env})` : ''}`
        : ` - this environment${t.script ? `, app ${t.script}` : ''} (cwd ${t.cwd})`),
  );
  lines.push('', p.bold('Settings') + p.dim('  (value, source, variable)'));
  for (const [key, s] of Object.entries(report.settings)) {
    const label = settingLabel(key);
    const source = s.source === 'default' ? p.dim(s.source) : s.source === 'pm2 env' ? p.cyan(s.source) : s.source;
    lines.push(
      `  ${padEnd(label, 27)} ${padEnd(show(s.value), 44)} ${padEnd(source, 12)} ${p.dim(s.variable ?? '')}`.trimEnd(),
    );
  }

  lines.push('', p.bold('Export'));
  const e = report.export;
  if (!e.sent) lines.push(`  POST ${e.url}: ${p.yellow(e.diagnosis.text)}`);
  else {
    const head = e.status !== undefined ? `HTTP ${e.status}` : 'no HTTP answer';
    const verdict = e.ok ? p.green('ok') : p.red('FAILED');
    lines.push(`  POST ${e.url} (one empty export) -> ${head} in ${e.latencyMs ?? '?'} ms: ${verdict}`);
    lines.push(`  ${e.ok ? p.green(e.diagnosis.text) : p.red(e.diagnosis.text)}`);
  }

  lines.push('', p.bold('Libraries') + p.dim(`  (resolved from ${report.libraries.resolvedFrom})`));
  for (const lib of report.libraries.list) {
    const version =
      lib.name === 'http'
        ? `built in (Node ${lib.version ?? '?'})`
        : lib.installed
          ? (lib.version ?? '?')
          : 'not installed';
    const verdict = !lib.installed
      ? p.dim('-')
      : lib.supported === true
        ? p.green('supported')
        : lib.supported === false
          ? p.red(`NOT supported (${lib.supportedRange})`)
          : p.yellow(`unknown (supported: ${lib.supportedRange})`);
    const range =
      lib.installed && lib.supported === true && lib.name !== 'http' ? p.dim(` (${lib.supportedRange})`) : '';
    const off = lib.enabled ? '' : p.yellow('  instrumentation off');
    lines.push(`  ${padEnd(lib.name, 9)} ${padEnd(version, 26)} ${verdict}${range}${off}`);
  }

  const api = report.api;
  const apiVersion = api.app === undefined ? 'not installed' : (api.app.version ?? 'version unreadable');
  const apiVerdict =
    api.app === undefined ? p.dim('-') : api.kept === true ? p.green(api.text) : p.red('spans NOT kept (see below)');
  lines.push(`  ${padEnd('@opentelemetry/api', 19)} ${padEnd(apiVersion, 16)} ${apiVerdict}`);

  if (report.notes.length > 0) {
    lines.push('', p.bold('Notes'));
    for (const n of report.notes) lines.push(`  - ${n}`);
  }
  lines.push('');
  if (report.problems.length === 0) lines.push(p.green('OK: nothing wrong found.'));
  else {
    lines.push(p.red(p.bold(`${report.problems.length} problem${report.problems.length === 1 ? '' : 's'} found:`)));
    for (const prob of report.problems) lines.push(`  ${p.red('x')} ${prob}`);
  }
  return lines.join('\n') + '\n';
}

/** `forktrace check`; resolves to the exit code. */
export async function checkCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse('check', {
    args: argv,
    strict: true,
    allowPositionals: true,
    options: {
      pm2: { type: 'string' },
      app: { type: 'string' },
      env: { type: 'string' },
      timeout: { type: 'string' },
      'no-send': { type: 'boolean' },
      'allow-plain-http': { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(CHECK_HELP);
    return EXIT.ok;
  }
  if (positionals.length > 1) throw new UsageError(`expected at most one script, got ${positionals.length}`, 'check');
  if (values.pm2 === undefined && (values.app !== undefined || values.env !== undefined)) {
    throw new UsageError('--app and --env need --pm2 <ecosystem file>', 'check');
  }
  if (values.pm2 !== undefined && positionals.length > 0) {
    throw new UsageError('give either a script or --pm2, not both (the ecosystem file names the script)', 'check');
  }
  const timeoutMs =
    values.timeout === undefined ? undefined : intOption('check', 'timeout', values.timeout, 0, 1, 600_000);

  let pm2: Pm2App | undefined;
  try {
    if (values.pm2 !== undefined) pm2 = loadPm2App(values.pm2, values.app, values.env);
  } catch (e) {
    if (e instanceof CheckInputError) throw new UsageError(e.message, 'check');
    throw e;
  }
  const { report, secrets } = await runCheck({
    ...(pm2 ? { pm2 } : {}),
    ...(positionals[0] !== undefined ? { script: positionals[0] } : {}),
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    send: values['no-send'] !== true,
    allowPlainHttp: values['allow-plain-http'] === true,
  });
  // The report is built from the redacted config; scrub once more so that no path can leak one.
  const redactor = new Redactor(secrets);
  const out = values.json ? JSON.stringify(report, null, 2) + '\n' : renderText(report, useColor(process.stdout));
  process.stdout.write(redactor.scrub(out));
  return report.ok ? EXIT.ok : EXIT.problem;
}
