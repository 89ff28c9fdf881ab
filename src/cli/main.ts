#!/usr/bin/env node
/**
 * The `tunsec` command.
 *
 *   tunsec daemon [-c FILE] [--port-nat-t PORT]   run the daemon in the foreground
 *   tunsec config check FILE [--creds]            check a configuration file
 *   tunsec status | list-sas | list-conns | up NAME | down NAME | check [NAME] | reload | global down|up|status
 *                                                 ask the running daemon over its control socket
 *   tunsec version                                print the version
 *   tunsec help                                   print this summary
 *
 * Exit codes: 0 success, 1 failure (invalid configuration, daemon could not
 * start, daemon unreachable, command failed), 2 usage error; `check` uses
 * the Nagios plugin codes 0-3. Arguments are parsed by hand: no dependencies.
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeProblem, loadConfig, type TunsecConfig } from '../config/index.js';
import { resolveCredentials } from '../daemon/credentials.js';
import { keyFilePermissionWarning } from '../pki/load.js';
import { Daemon, DaemonStartError, NATT_PORT } from '../daemon/daemon.js';
import { checkCommand } from './commands/check.js';
import { UsageError, parseArgs } from './commands/common.js';
import { globalCommand } from './commands/global.js';
import { listConnsCommand } from './commands/list-conns.js';
import { listSasCommand } from './commands/list-sas.js';
import { saCommand } from './commands/sa.js';
import { reloadCommand } from './commands/reload.js';
import { statusCommand } from './commands/status.js';
import { downCommand, upCommand } from './commands/up-down.js';
import { plural } from '../util/format.js';

export const DEFAULT_CONFIG = '/etc/tunsec/tunsec.yaml';

const USAGE = `usage: tunsec <command> [options]

commands:
  daemon [-c FILE] [--port-nat-t PORT]
                           run the IKE daemon in the foreground (default configuration
                           ${DEFAULT_CONFIG}); logs JSON lines on stdout unless it is a
                           terminal; SIGTERM/SIGINT stop it, deleting all SAs;
                           SIGHUP reloads the configuration
  config check FILE [--creds]
                           check a configuration file: every problem and warning, then a
                           one-line summary; --creds also loads certificates, keys and CAs
  version                  print the version
  help                     print this help

commands for the running daemon (over its control socket):
  status                   per connection: established / connecting / not connected, since
                           when, peer and identities; the daemon and the global switch
  list-sas [NAME]          IKE and CHILD SAs: SPIs, proposals, traffic selectors, bytes and
                           packets each way, replay and ICV counters; datapath counters
  list-conns               the loaded connections and their children
  up NAME                  initiate a connection, wait until established or failed
  down NAME                delete a connection's IKE SAs, wait until they are gone
  check [NAME]             Nagios/Icinga plugin: one line, exit 0 OK, 1 WARNING,
                           2 CRITICAL, 3 UNKNOWN
  reload                   re-read the configuration and credentials (as SIGHUP): unchanged
                           connections keep their SAs; lists kept/added/removed/replaced
  global down|up|status    the global off switch: delete every SA and keep policies off
                           (daemon.global: drop or clear) / initiate again / show
  sa list                  manual (static) SAs: SPIs, mode, selectors, counters
  sa add NAME key=value…   install a manual SA pair and its policies; the keys of a
                           manual.sas.NAME section (docs/configuration.md)
  sa del NAME              remove a manual SA pair and its policies
  options: --socket PATH (default /run/tunsec.sock) or -c FILE (its daemon.control_socket),
           --json (print the result object), --timeout SECONDS (up, down, global, check)

exit codes: 0 ok, 1 failed (invalid configuration, daemon not started or unreachable,
command failed), 2 usage error; check: 0-3 as above
`;


interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
}

const stdio: Io = {
  out: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t),
};

/** The package version, from the package.json above this file (src/cli or dist/src/cli). */
export function version(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      try {
        const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
        if (pkg.name === 'tunsec' && pkg.version) return pkg.version;
      } catch {
        /* not ours */
      }
    }
    dir = dirname(dir);
  }
  return 'unknown';
}

function summary(config: TunsecConfig): string {
  const conns = Object.values(config.connections).map((c) => {
    const children = Object.values(c.children);
    const start = children.filter((ch) => ch.start_action.includes('start')).length > 0 ? ', start' : '';
    return `${c.name} (${c.local_addrs.join(',')} → ${c.remote_addrs.join(',')}, ${plural(children.length, 'child', 'children')}${start})`;
  });
  return `${plural(conns.length, 'connection')}${conns.length ? `: ${conns.join(', ')}` : ''}`;
}

/** `tunsec config check FILE [--creds]`. */
export function configCheck(args: readonly string[], io: Io = stdio): number {
  const { positional, flags } = parseArgs(args, { values: {}, flags: { '--creds': 'creds' } });
  if (positional.length !== 1) throw new UsageError(positional.length === 0 ? 'config check needs a FILE' : `config check takes one FILE, got ${positional.length}`);
  const file = positional[0]!;
  const r = loadConfig({ path: file });
  const problems = r.ok ? r.warnings : r.error.problems;
  for (const p of problems) io.out(`${describeProblem(file, p)}\n`);
  const errors = problems.filter((p) => p.severity === 'error').length;
  let warnings = problems.filter((p) => p.severity === 'warning').length;
  if (!r.ok) {
    io.out(`${file}: invalid: ${plural(errors, 'error')}, ${plural(warnings, 'warning')}\n`);
    return 1;
  }
  if (flags.has('creds')) {
    const creds = resolveCredentials(r.config);
    for (const w of creds.warnings) io.out(`${file}: warning: ${w}\n`);
    for (const e of creds.errors) io.out(`${file}: ${e}\n`);
    warnings += creds.warnings.length;
    if (creds.errors.length > 0) {
      io.out(`${file}: invalid credentials: ${plural(creds.errors.length, 'error')}, ${plural(warnings, 'warning')}\n`);
      return 1;
    }
  } else {
    // Without --creds the keys are not loaded, but loose permissions on key files are still worth a warning.
    for (const [name, secret] of Object.entries(r.config.secrets)) {
      const w = keyFilePermissionWarning(secret.file);
      if (w) {
        io.out(`${file}: warning: secrets.${name}: ${w}\n`);
        warnings++;
      }
    }
  }
  io.out(`${file}: OK${warnings ? ` (${plural(warnings, 'warning')})` : ''}: ${summary(r.config)}\n`);
  return 0;
}

/** `tunsec daemon -c FILE`: runs until SIGTERM/SIGINT; resolves with the exit code. */
export async function runDaemon(args: readonly string[], io: Io = stdio): Promise<number> {
  const { values, positional } = parseArgs(args, {
    values: { '-c': 'config', '--config': 'config', '--port-nat-t': 'natt' },
    flags: {},
  });
  if (positional.length > 0) throw new UsageError(`daemon takes no arguments besides options, got '${positional[0]}'`);
  const configPath = values.get('config') ?? DEFAULT_CONFIG;
  const nattText = values.get('natt');
  const nattPort = nattText === undefined ? NATT_PORT : Number(nattText);
  if (!Number.isInteger(nattPort) || nattPort < 1 || nattPort > 65535) throw new UsageError(`--port-nat-t: '${nattText}' is not a port (1-65535)`);

  const daemon = new Daemon({ nattPort, control: true });
  const log = daemon.log;
  // Whatever escapes a handler is logged; the daemon keeps serving its SAs.
  process.on('uncaughtException', (err) => log.log('daemon', 'error', `uncaught exception: ${err.stack ?? String(err)}`));
  process.on('unhandledRejection', (reason) => log.log('daemon', 'error', `unhandled rejection: ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}`));

  let resolveExit!: (code: number) => void;
  const exit = new Promise<number>((r) => (resolveExit = r));
  let stopRequested: string | undefined;
  let started = false;
  const stop = (signal: string): void => {
    if (stopRequested !== undefined) {
      log.log('daemon', 'warn', `${signal} received while stopping: exiting now`);
      resolveExit(1);
      return;
    }
    stopRequested = signal;
    if (!started) return; // stopped right after start finishes
    daemon.stop(`${signal} received`).then(
      () => resolveExit(0),
      (err: Error) => {
        log.log('daemon', 'error', `stopping failed: ${err.stack ?? err.message}`);
        resolveExit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => {
    log.log('daemon', 'info', 'SIGHUP received: reloading the configuration');
    void daemon.reload();
  });

  try {
    await daemon.start(configPath);
  } catch (err) {
    const message = err instanceof DaemonStartError ? err.message : `unexpected error: ${(err as Error).stack ?? String(err)}`;
    if (!(err instanceof DaemonStartError)) log.log('daemon', 'error', `not started: ${message}`);
    // JSON goes to a log collector; say it plainly on stderr too. On a terminal the text log already did.
    if (log.json) io.err(`tunsec: daemon not started: ${message}\n`);
    return 1;
  }
  started = true;
  if (stopRequested !== undefined) {
    const signal = stopRequested;
    stopRequested = undefined;
    stop(signal);
  }
  return exit;
}

export async function main(argv: readonly string[], io: Io = stdio): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'daemon':
        return await runDaemon(rest, io);
      case 'config':
        if (rest[0] === 'check') return configCheck(rest.slice(1), io);
        throw new UsageError(rest[0] === undefined ? "'config' needs a subcommand: check" : `unknown config subcommand '${rest[0]}'`);
      case 'status':
        return await statusCommand(rest, io);
      case 'list-sas':
        return await listSasCommand(rest, io);
      case 'list-conns':
        return await listConnsCommand(rest, io);
      case 'up':
        return await upCommand(rest, io);
      case 'down':
        return await downCommand(rest, io);
      case 'check':
        return await checkCommand(rest, io);
      case 'reload':
        return await reloadCommand(rest, io);
      case 'global':
        return await globalCommand(rest, io);
      case 'sa':
        return await saCommand(rest, io);
      case 'version':
      case '--version':
        io.out(`tunsec ${version()}\n`);
        return 0;
      case 'help':
      case '--help':
      case '-h':
        io.out(USAGE);
        return 0;
      case undefined:
        throw new UsageError('no command given');
      default:
        throw new UsageError(`unknown command '${command}'`);
    }
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.err(`tunsec: ${err.message}\n\n${USAGE}`);
    return 2;
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
