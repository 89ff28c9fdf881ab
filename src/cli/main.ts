#!/usr/bin/env node
/**
 * The `tunsec` command: `tunsec <command> [options]`. Each command is a
 * CommandSpec in ./commands/ with its options (parsed by node's
 * util.parseArgs), its help text and its completion hints; this module
 * lists them and dispatches. `tunsec help` lists the commands,
 * `tunsec help VERB` or `tunsec VERB --help` explains one.
 *
 * Exit codes: 0 ok, 1 failed (daemon unavailable too), 2 usage error,
 * 3 not found, 4 timed out; `check` uses the Nagios plugin codes 0-3 (./commands/common.ts).
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { packageVersion } from '../util/version.js';
import { checkCommand } from './commands/check.js';
import { EXIT, HELP_OPTION, UsageError, parseArgs, reportError, usage, type CommandSpec, type Io } from './commands/common.js';
import { completionCommand } from './commands/completion.js';
import { configCommand } from './commands/config.js';
import { daemonCommand } from './commands/daemon.js';
import { globalCommand } from './commands/global.js';
import { commandHelp, helpCommand, overview, shortUsage } from './commands/help.js';
import { listCertsCommand } from './commands/list-certs.js';
import { listConnsCommand } from './commands/list-conns.js';
import { listSasCommand } from './commands/list-sas.js';
import { monitorCommand } from './commands/monitor.js';
import { rekeyCommand } from './commands/rekey.js';
import { reloadCommand } from './commands/reload.js';
import { saCommand } from './commands/sa.js';
import { statusCommand } from './commands/status.js';
import { downCommand, upCommand } from './commands/up-down.js';

export { configCheck } from './commands/config.js';
export { DEFAULT_CONFIG, runDaemon } from './commands/daemon.js';

const stdio: Io = {
  out: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t),
};

/** The package version (src/util/version.ts). */
export const version = packageVersion;

const versionCommand: CommandSpec = {
  name: 'version',
  synopsis: '',
  summary: 'print the version',
  description: 'Print the version of tunsec (also: tunsec --version).',
  options: HELP_OPTION,
  run(args, io) {
    if (parseArgs(this, args).positionals.length > 0) throw usage(this, 'version takes no arguments');
    io.out(`tunsec ${version()}\n`);
    return EXIT.ok;
  },
};

/** Every command, in the order `tunsec help` lists them. */
export const COMMANDS: readonly CommandSpec[] = [
  daemonCommand,
  configCommand,
  versionCommand,
  helpCommand(() => COMMANDS),
  completionCommand(() => COMMANDS),
  statusCommand,
  listSasCommand,
  listConnsCommand,
  listCertsCommand,
  upCommand,
  downCommand,
  rekeyCommand,
  monitorCommand,
  checkCommand,
  reloadCommand,
  globalCommand,
  saCommand,
];

/** `-h`/`--help` among the options (before `--`). */
function asksHelp(args: readonly string[]): boolean {
  for (const a of args) {
    if (a === '--') return false;
    if (a === '-h' || a === '--help') return true;
  }
  return false;
}

/** `--json` among the options (before `--`): usage errors are JSON too. */
function asksJson(args: readonly string[]): boolean {
  const end = args.indexOf('--');
  return (end < 0 ? args : args.slice(0, end)).includes('--json');
}

export async function main(argv: readonly string[], io: Io = stdio): Promise<number> {
  const [name, ...rest] = argv;
  const spec = COMMANDS.find((c) => c.name === name);
  try {
    if (name === '--version') return await versionCommand.run([], io);
    if (name === '--help' || name === '-h') return await COMMANDS.find((c) => c.name === 'help')!.run([], io);
    if (name === undefined) throw new UsageError('no command given');
    if (!spec) throw new UsageError(`unknown command '${name}'`);
    if (asksHelp(rest)) {
      io.out(commandHelp(spec));
      return EXIT.ok;
    }
    return await spec.run(rest, io);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    const command = err.command ?? (err.message.startsWith('no command') || err.message.startsWith('unknown command') ? undefined : spec);
    if (asksJson(rest)) return reportError(io, true, 'usage', err.message);
    io.err(`tunsec: ${err.message}\n${command ? shortUsage(command) : `\n${overview(COMMANDS)}`}`);
    return EXIT.usage;
  }
}

/** Run as the program (also through the npm bin symlink), not when imported by tests. */
function isMain(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`tunsec: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
