/**
 * `tunsec daemon [-c FILE] [--port-nat-t PORT]`: the IKE daemon in the
 * foreground until SIGTERM/SIGINT; SIGHUP reloads the configuration.
 */
import { DaemonLogger } from '../../daemon/logger.js';
import { systemdNotifierFromEnv } from '../../daemon/systemd.js';
import { Daemon, DaemonStartError, NATT_PORT } from '../../daemon/daemon.js';
import { HELP_OPTION, parseArgs, stringOption, usage, type CommandSpec, type Io } from './common.js';

export const DEFAULT_CONFIG = '/etc/tunsec/tunsec.yaml';

export const daemonCommand: CommandSpec = {
  name: 'daemon',
  synopsis: '[-c FILE] [--port-nat-t PORT]',
  summary: 'run the IKE daemon in the foreground',
  description: `Run the IKE daemon in the foreground with the configuration FILE (default
${DEFAULT_CONFIG}). It logs JSON lines on stdout unless that is a terminal;
SIGTERM and SIGINT stop it, deleting all SAs; SIGHUP reloads the configuration.
Exit 1 when it could not start (every problem is logged).`,
  options: {
    config: { type: 'string', short: 'c', value: 'FILE', help: `the configuration (default ${DEFAULT_CONFIG})`, complete: 'file' },
    'port-nat-t': { type: 'string', value: 'PORT', help: 'the NAT-T port to bind and float to (default 4500)' },
    ...HELP_OPTION,
  },
  run(args, io) {
    return runDaemon(args, io);
  },
};

/** `tunsec daemon -c FILE`: runs until SIGTERM/SIGINT; resolves with the exit code. */
export async function runDaemon(args: readonly string[], io: Io): Promise<number> {
  const spec = daemonCommand;
  const parsed = parseArgs(spec, args);
  if (parsed.positionals.length > 0) throw usage(spec, `daemon takes no arguments besides options, got '${parsed.positionals[0]}'`);
  const configPath = stringOption(parsed, 'config') ?? DEFAULT_CONFIG;
  const nattText = stringOption(parsed, 'port-nat-t');
  const nattPort = nattText === undefined ? NATT_PORT : Number(nattText);
  if (!Number.isInteger(nattPort) || nattPort < 1 || nattPort > 65535) throw usage(spec, `--port-nat-t: '${nattText}' is not a port (1-65535)`);

  const log = new DaemonLogger();
  // Under systemd (Type=notify): READY=1, RELOADING=1, STOPPING=1 and watchdog pings (src/daemon/systemd.ts)
  const serviceManager = systemdNotifierFromEnv((m) => log.log('daemon', 'warn', m));
  const daemon = new Daemon({ nattPort, control: true, logger: log, ...(serviceManager ? { serviceManager } : {}) });
  // Whatever escapes a handler is logged; the daemon keeps serving its SAs.
  process.on('uncaughtException', (err) => log.log('daemon', 'error', `uncaught exception: ${err.stack ?? String(err)}`));
  process.on('unhandledRejection', (reason) =>
    log.log('daemon', 'error', `unhandled rejection: ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}`),
  );

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
    serviceManager?.close();
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
