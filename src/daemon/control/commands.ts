/**
 * The commands that act: `up`, `down`, `reload`, `global-down`/`global-up`,
 * `sa-add`/`sa-del`, and the handler of every command the control socket
 * serves (the read-only ones answer from ./views.ts). Arguments are checked
 * here; a refusal or failure is a ControlError with its protocol code.
 */
import { parseManualSa } from '../../config/manual.js';
import type { ControlCommand, ControlResults, DownResult, GlobalResult, ManualSaDelResult, ManualSaInfo, ManualSaListResult, ReloadResult, UpResult } from '../../control/protocol.js';
import { summarizeReload } from '../../control/reload-summary.js';
import type { IkeSa } from '../../ike/sa/ike-sa.js';
import type { ManualSas } from '../manual.js';
import { ControlError } from './server.js';
import { check, globalStatus, listConns, listSas, statusOf, type DaemonView } from './views.js';

/** What the commands need of the daemon beyond the views (a Daemon is one). */
export interface DaemonControl extends DaemonView {
  readonly manual: Pick<ManualSas, 'list' | 'add' | 'delete'> | undefined;
  up(name: string, timeoutMs: number): Promise<{ sa: IkeSa; already: boolean }>;
  down(name: string, timeoutMs: number): Promise<number>;
  reload(): Promise<ReloadResult>;
  globalDown(timeoutMs: number): Promise<{ deleted: number; already: boolean }>;
  globalUp(timeoutMs: number): Promise<{ connections: NonNullable<GlobalResult['connections']>; already: boolean }>;
}

/** A handler for each command of the protocol, answering with that command's result. */
export type ControlHandlers = { [C in ControlCommand]: (args: Record<string, unknown>) => ControlResults[C] | Promise<ControlResults[C]> };

/** Seconds from the command's `timeout` argument (default `dflt`), as milliseconds. */
function timeoutArg(args: Record<string, unknown>, dflt: number): number {
  const t = args.timeout;
  if (t === undefined) return dflt * 1000;
  if (typeof t !== 'number' || !Number.isFinite(t) || t <= 0 || t > 3600) throw new ControlError('bad_request', "'timeout' must be a number of seconds, above 0 and at most 3600");
  return t * 1000;
}

function nameArg(args: Record<string, unknown>, required: boolean): string | undefined {
  const n = args.name;
  if (n === undefined && !required) return undefined;
  if (typeof n !== 'string' || n === '') throw new ControlError('bad_request', "'name' must be a connection name");
  return n;
}

/** The handlers of every command, over `daemon`. */
export function controlCommands(daemon: DaemonControl): ControlHandlers {
  const known = (name: string): void => {
    if (!daemon.connectionList.some((c) => c.name === name)) throw new ControlError('not_found', `no connection named '${name}'`);
  };
  const running = (): void => {
    if (daemon.phase !== 'running') throw new ControlError('unavailable', `the daemon is ${daemon.phase}`);
  };
  const failed = (err: unknown): ControlError =>
    err instanceof ControlError ? err : new ControlError((err as Error).name === 'UpTimeout' ? 'timeout' : 'failed', (err as Error).message);
  return {
    status: () => statusOf(daemon),
    'list-sas': (args) => {
      const name = nameArg(args, false);
      if (name !== undefined) known(name);
      return listSas(daemon, name);
    },
    'list-conns': () => listConns(daemon),
    check: (args) => {
      const name = nameArg(args, false);
      if (name !== undefined) known(name);
      return check(daemon, name);
    },
    up: async (args): Promise<UpResult> => {
      const name = nameArg(args, true)!;
      const timeout = timeoutArg(args, 60);
      running();
      known(name);
      try {
        const { sa, already } = await daemon.up(name, timeout);
        // as `swanctl --initiate`: an IKE_SA without the CHILD_SA asked for is a failure (the IKE_SA stays up)
        const failedChildren = daemon.connectionStates.failedChildren(sa);
        if (failedChildren.length > 0) {
          throw new ControlError('failed', `${name}: IKE_SA established, but ${failedChildren.map((f) => `CHILD_SA ${f.name} failed: ${f.reason}`).join('; ')}`);
        }
        return { name, state: 'established', already, spi_i: sa.ctx.spiI.toString('hex'), spi_r: sa.ctx.spiR.toString('hex'), children: sa.ctx.children.length };
      } catch (err) {
        const e = failed(err);
        throw new ControlError(e.code, `${name}: ${e.code === 'timeout' ? '' : 'establishing failed: '}${e.message}`);
      }
    },
    down: async (args): Promise<DownResult> => {
      const name = nameArg(args, true)!;
      const timeout = timeoutArg(args, 10);
      running();
      known(name);
      try {
        return { name, deleted: await daemon.down(name, timeout) };
      } catch (err) {
        throw failed(err);
      }
    },
    reload: async (): Promise<ReloadResult> => {
      running();
      const r = await daemon.reload();
      if (!r.ok) throw new ControlError('failed', [summarizeReload(r), ...r.errors.map((e) => `  ${e}`)].join('\n'));
      return r;
    },
    ...manualSaCommands(daemon, running),
    'global-status': (): GlobalResult => globalStatus(daemon),
    'global-down': async (args): Promise<GlobalResult> => {
      const timeout = timeoutArg(args, 10);
      running();
      try {
        const r = await daemon.globalDown(timeout);
        return { ...globalStatus(daemon), already: r.already, deleted: r.deleted };
      } catch (err) {
        throw failed(err);
      }
    },
    'global-up': async (args): Promise<GlobalResult> => {
      const timeout = timeoutArg(args, 60);
      running();
      try {
        const r = await daemon.globalUp(timeout);
        return { ...globalStatus(daemon), already: r.already, connections: r.connections };
      } catch (err) {
        throw failed(err);
      }
    },
  };
}

/** `sa-list`, `sa-add` ({name, settings: {key: value}}, checked as `manual.sas.NAME` in the file), `sa-del` ({name}). */
function manualSaCommands(daemon: DaemonControl, running: () => void): Pick<ControlHandlers, 'sa-list' | 'sa-add' | 'sa-del'> {
  const manual = () => {
    running();
    const m = daemon.manual;
    if (!m) throw new ControlError('unavailable', 'manual SAs need the userspace datapath (daemon.datapath: userspace)');
    return m;
  };
  const saName = (args: Record<string, unknown>): string => {
    if (typeof args.name !== 'string' || args.name === '') throw new ControlError('bad_request', "'name' must be a manual SA name");
    return args.name;
  };
  return {
    'sa-list': (): ManualSaListResult => manual().list(),
    'sa-add': (args): ManualSaInfo => {
      const name = saName(args);
      const settings = args.settings;
      if (typeof settings !== 'object' || settings === null || Array.isArray(settings)) throw new ControlError('bad_request', "'settings' must be an object of manual SA keys");
      const m = manual();
      const parsed = parseManualSa(name, settings);
      if (!parsed.ok) throw new ControlError('failed', `invalid manual SA '${name}':\n${parsed.problems.map((p) => `  ${p}`).join('\n')}`);
      try {
        return m.add(parsed.sa, 'runtime');
      } catch (err) {
        throw new ControlError('failed', (err as Error).message);
      }
    },
    'sa-del': (args): ManualSaDelResult => {
      const name = saName(args);
      if (!manual().delete(name, 'tunsec sa del')) throw new ControlError('not_found', `no manual SA named '${name}'`);
      return { name, deleted: true };
    },
  };
}
