#!/usr/bin/env node
/**
 * The `forktrace` command: check, tail, run. Exit codes everywhere: 0 ok, 1 a problem was found,
 * 2 wrong usage (run passes its command's exit code through).
 */
import { checkCommand } from './check';
import { EXIT, UsageError } from './common';
import { runCommand } from './run';
import { tailCommand } from './tail';

const HELP = `Usage: forktrace <command> [options]

Commands:
  check   resolve the configuration as a traced worker would, send one real empty export, and
          name what is wrong (key, path, port, TLS, DNS, libraries)
  tail    run a local OTLP/HTTP receiver and print each trace as a tree
  run     run a command with the tracing preload injected through NODE_OPTIONS

  forktrace <command> --help   options of one command
  forktrace --version          the installed version

Exit codes: 0 ok, 1 a problem was found, 2 wrong usage.
`;

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  check: checkCommand,
  tail: tailCommand,
  run: runCommand,
};

async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === '-h' || first === '--help' || first === 'help') {
    if (first === 'help' && rest[0] !== undefined && COMMANDS[rest[0]]) return COMMANDS[rest[0]]!(['--help']);
    (first === undefined ? process.stderr : process.stdout).write(HELP);
    return first === undefined ? EXIT.usage : EXIT.ok;
  }
  if (first === '--version' || first === '-v') {
    const pkg = require('../../package.json') as { version: string };
    process.stdout.write(`${pkg.version}\n`);
    return EXIT.ok;
  }
  const command = COMMANDS[first];
  if (!command) throw new UsageError(`unknown command "${first}"; commands: ${Object.keys(COMMANDS).join(', ')}`, '');
  return command(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof UsageError) {
      const help = e.command === '' ? 'forktrace --help' : `forktrace ${e.command} --help`;
      process.stderr.write(`forktrace${e.command === '' ? '' : ` ${e.command}`}: ${e.message}\nSee ${help}.\n`);
      process.exitCode = EXIT.usage;
      return;
    }
    process.stderr.write(`forktrace: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = EXIT.problem;
  },
);
