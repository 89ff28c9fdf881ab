/**
 * The daemon's start-up steps that need nothing of the Daemon (./daemon.ts
 * runs them in order with those that set up its parts): read the
 * configuration and the credentials, choose the IKE port, write the pid
 * file, install the manual SAs. Each logs what it found and throws a
 * DaemonStartError listing every problem when the daemon cannot start.
 */
import { describeProblem, loadConfig, type DaemonConfig, type TunsecConfig } from '../config/index.js';
import { describeConnection, resolveCredentials, type ResolvedConnection } from './credentials.js';
import { ikePortOf } from './ike-sockets.js';
import type { DaemonLogger } from './logger.js';
import type { ManualSas } from './manual.js';
import { PidFileError, acquirePidFile } from './pidfile.js';
import { plural } from '../util/format.js';

/** Why the daemon did not start; `problems` are the lines to show, each on its own. */
export class DaemonStartError extends Error {
  override readonly name = 'DaemonStartError';
  constructor(
    message: string,
    readonly problems: readonly string[] = [],
  ) {
    super(problems.length === 0 ? message : `${message}\n${problems.map((p) => `  ${p}`).join('\n')}`);
  }
}

/** Load and check the configuration file; from here on the log has its levels. */
export function loadConfiguration(configPath: string, log: DaemonLogger): TunsecConfig {
  const loaded = loadConfig({ path: configPath });
  if (!loaded.ok) {
    const problems = loaded.error.problems;
    for (const p of problems) log.log('cfg', p.severity === 'error' ? 'error' : 'warn', describeProblem(configPath, p));
    const errors = problems.filter((p) => p.severity === 'error');
    throw new DaemonStartError(
      `${configPath}: ${plural(errors.length, 'configuration problem')}`,
      errors.map((p) => describeProblem(configPath, p)),
    );
  }
  log.setLevels(loaded.config.daemon.log);
  for (const w of loaded.warnings) log.log('cfg', 'warn', describeProblem(configPath, w));
  return loaded.config;
}

/** Certificates, keys and trust of every connection (./credentials.ts). */
export function loadCredentials(configPath: string, config: TunsecConfig, log: DaemonLogger): ResolvedConnection[] {
  const creds = resolveCredentials(config);
  for (const w of creds.warnings) log.log('cfg', 'warn', w);
  if (creds.errors.length > 0) {
    for (const e of creds.errors) log.log('cfg', 'error', e);
    throw new DaemonStartError(`${configPath}: ${plural(creds.errors.length, 'credential problem')}`, creds.errors);
  }
  for (const c of creds.connections) {
    const children = c.entry.config.children.length;
    log.log('cfg', 'info', `${describeConnection(c)}, ${children} child${children === 1 ? '' : 'ren'}`);
  }
  if (creds.connections.length === 0) log.log('cfg', 'warn', 'no connections are configured: the daemon will answer no IKE requests');
  return creds.connections;
}

/** The one IKE port of all connections (./ike-sockets.ts). */
export function chooseIkePort(config: TunsecConfig, nattPort: number): number {
  const r = ikePortOf(config, nattPort);
  if ('error' in r) throw new DaemonStartError(r.error, r.problems);
  return r.port;
}

/** Write the pid file, refusing to start when it names a running daemon; its path. */
export function writePidFile(daemon: DaemonConfig, log: DaemonLogger): string {
  try {
    const r = acquirePidFile(daemon.pid_file);
    if (r.replacedStale !== undefined) log.log('daemon', 'info', `replaced stale pid file ${daemon.pid_file} (process ${r.replacedStale} is gone)`);
    return daemon.pid_file;
  } catch (err) {
    if (err instanceof PidFileError) throw new DaemonStartError(err.message);
    throw err;
  }
}

/** Start the control socket or the metrics endpoint; failing, the daemon does not start. */
export async function startOrFail(server: { start(): Promise<void> }): Promise<void> {
  try {
    await server.start();
  } catch (err) {
    throw new DaemonStartError((err as Error).message);
  }
}

/** The manual SAs of the file: all of them, or none and the start fails. */
export function installManualSas(manual: ManualSas, config: TunsecConfig): void {
  const problems: string[] = [];
  for (const m of Object.values(config.manual.sas)) {
    try {
      manual.add(m, 'config');
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  if (problems.length > 0) {
    manual.deleteAll('daemon not started');
    throw new DaemonStartError('cannot install the manual SAs', problems);
  }
}
