import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tty from 'node:tty';
import { pathToFileURL } from 'node:url';
import { DIST_DIR } from '../paths';
import { EXIT, parse, UsageError } from './common';

export const RUN_HELP = `Usage: forktrace run [--esm] -- <command> [args...]

Runs <command> with forktrace's preload injected through NODE_OPTIONS, so that every Node process
it starts is traced without a code change (the Node counterpart of opentelemetry-instrument):

  --require <absolute path of forktrace/register>        (default: CommonJS apps)
  --import <file URL of forktrace/register.mjs>          (--esm: apps that load express/mysql2 with import)

  --esm         use the ESM preload (it covers require() as well)
  -h, --help    this help

NODE_OPTIONS you already have is kept, after the preload. SIGTERM, SIGHUP and SIGINT are passed on
to the command (SIGINT not when on a terminal: Ctrl+C reaches the command there already);
forktrace run ends the way the command ended (its exit code, or its signal).
Configure tracing with the usual variables, e.g.
  OTEL_SERVICE_NAME=api OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 forktrace run -- node server.js

Exit codes: the command's; 2 wrong usage; 127 the command was not found.
`;

/**
 * Quotes a NODE_OPTIONS value the way Node's own parser reads it (src/node_options.cc
 * ParseNodeOptionsEnvVar): inside double quotes a backslash escapes the next character.
 */
export function quoteNodeOption(value: string): string {
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** NODE_OPTIONS with the preload first, so that tracing starts before any other preload. */
export function withPreload(existing: string | undefined, esm: boolean, distDir: string): string {
  const flag = esm
    ? `--import ${quoteNodeOption(pathToFileURL(path.join(distDir, 'register.mjs')).href)}`
    : `--require ${quoteNodeOption(path.join(distDir, 'register.js'))}`;
  const rest = (existing ?? '').trim();
  return rest === '' ? flag : `${flag} ${rest}`;
}

const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** `forktrace run`; resolves to the exit code (or never, when it re-raises the child's signal). */
export async function runCommand(argv: string[]): Promise<number> {
  // Everything after the first "--" (or the first positional) is the command, untouched.
  const dash = argv.indexOf('--');
  const own = dash >= 0 ? argv.slice(0, dash) : argv;
  const { values, positionals } = parse('run', {
    args: own,
    strict: true,
    allowPositionals: true,
    options: { esm: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    process.stdout.write(RUN_HELP);
    return EXIT.ok;
  }
  const command = dash >= 0 ? [...positionals, ...argv.slice(dash + 1)] : positionals;
  if (command.length === 0) throw new UsageError('no command given, e.g. forktrace run -- node server.js', 'run');

  const preload = path.join(DIST_DIR, values.esm ? 'register.mjs' : 'register.js');
  if (!fs.existsSync(preload)) {
    process.stderr.write(`forktrace run: the preload ${preload} is missing; run npm run build.\n`);
    return EXIT.problem;
  }
  const env = { ...process.env, NODE_OPTIONS: withPreload(process.env.NODE_OPTIONS, values.esm === true, DIST_DIR) };
  const [file, ...args] = command as [string, ...string[]];
  const child = spawn(file, args, { stdio: 'inherit', env });

  const onTerminal = [0, 1, 2].some((fd) => tty.isatty(fd));
  const handlers = new Map<NodeJS.Signals, () => void>();
  for (const signal of FORWARDED) {
    const handler = () => {
      // Ctrl+C on a terminal reaches the whole foreground process group, the command included;
      // sending it a second SIGINT would cut its shutdown short (forktrace's preload treats a
      // second SIGINT as "kill now"). From `kill` or a process manager it reaches only us. Node
      // cannot ask for the terminal's foreground group, so "attached to a terminal" stands in.
      if (signal === 'SIGINT' && onTerminal) return;
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    };
    handlers.set(signal, handler);
    process.on(signal, handler);
  }

  return new Promise<number>((resolve) => {
    child.once('error', (e: NodeJS.ErrnoException) => {
      for (const [s, h] of handlers) process.removeListener(s, h);
      const notFound = e.code === 'ENOENT';
      process.stderr.write(`forktrace run: ${file}: ${notFound ? 'command not found' : e.message}\n`);
      resolve(notFound ? 127 : 126);
    });
    child.once('exit', (code, signal) => {
      for (const [s, h] of handlers) process.removeListener(s, h);
      if (signal !== null) {
        // End the way the command ended, so that a caller sees the same signal.
        process.kill(process.pid, signal);
        // Only a signal whose default action is not to terminate gets here: exit as a shell reports it.
        setTimeout(() => resolve(128 + (os.constants.signals[signal] ?? 0)), 1000).unref();
        return;
      }
      resolve(code ?? 0);
    });
  });
}
