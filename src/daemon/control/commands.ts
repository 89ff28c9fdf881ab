/**
 * The commands that act: `up`, `down` (of a connection, or with `child` of
 * one CHILD_SA), `rekey`, `reload`, `global-down`/`global-up`,
 * `sa-add`/`sa-del`, `monitor` (the event stream), and the handler of every
 * command the control socket serves (the read-only ones answer from
 * ./views.ts). Arguments are checked here; a refusal or failure is a
 * ControlError with its protocol code. Handlers print nothing: the control
 * socket and the VICI server both call them.
 */
import { parseManualSa } from '../../config/manual.js';
import type {
  ControlCommand,
  ControlEvent,
  ControlResults,
  DownResult,
  GlobalResult,
  ManualSaDelResult,
  ManualSaInfo,
  ManualSaListResult,
  MonitorResult,
  RekeyResult,
  ReloadResult,
  UpResult,
} from '../../control/protocol.js';
import { summarizeReload } from '../../control/reload-summary.js';
import type { IkeSa } from '../../ike/sa/ike-sa.js';
import { spiHex } from '../../util/format.js';
import type { DaemonLogger } from '../logger.js';
import type { ManualSas } from '../manual.js';
import type { SaOperations } from '../sa-operations.js';
import { ControlError, ControlStream } from './server.js';
import { check, globalStatus, listCerts, listConns, listSas, statusOf, type DaemonView } from './views.js';

/** What the commands need of the daemon beyond the views (a Daemon is one). */
export interface DaemonControl extends DaemonView {
  readonly manual: Pick<ManualSas, 'list' | 'add' | 'delete' | 'settled'> | undefined;
  up(name: string, timeoutMs: number): Promise<{ sa: IkeSa; already: boolean }>;
  down(name: string, timeoutMs: number): Promise<number>;
  reload(): Promise<ReloadResult>;
  globalDown(timeoutMs: number): Promise<{ deleted: number; already: boolean }>;
  globalUp(timeoutMs: number): Promise<{ connections: NonNullable<GlobalResult['connections']>; already: boolean }>;
  readonly operations: Pick<SaOperations, 'upChild' | 'downChild' | 'rekeyIke' | 'rekeyChild' | 'established'>;
  readonly log: Pick<DaemonLogger, 'subscribe'>;
}

/** What a handler answers for command C: its result, or for `monitor` its result followed by events. */
type HandlerResult<C extends ControlCommand> = C extends 'monitor' ? ControlStream<MonitorResult> : ControlResults[C] | Promise<ControlResults[C]>;

/** A handler for each command of the protocol, answering with that command's result. */
export type ControlHandlers = { [C in ControlCommand]: (args: Record<string, unknown>) => HandlerResult<C> };

/** Seconds from the command's `timeout` argument (default `dflt`), as milliseconds. */
function timeoutArg(args: Record<string, unknown>, dflt: number): number {
  const t = args.timeout;
  if (t === undefined) return dflt * 1000;
  if (typeof t !== 'number' || !Number.isFinite(t) || t <= 0 || t > 3600)
    throw new ControlError('bad_request', "'timeout' must be a number of seconds, above 0 and at most 3600");
  return t * 1000;
}

function nameArg(args: Record<string, unknown>, required: boolean): string | undefined {
  const n = args.name;
  if (n === undefined && !required) return undefined;
  if (typeof n !== 'string' || n === '') throw new ControlError('bad_request', "'name' must be a connection name");
  return n;
}

/** `child`: a child's name, when given. */
function childArg(args: Record<string, unknown>): string | undefined {
  const c = args.child;
  if (c === undefined) return undefined;
  if (typeof c !== 'string' || c === '') throw new ControlError('bad_request', "'child' must be a child name");
  return c;
}

/** The handlers of every command, over `daemon`. */
export function controlCommands(daemon: DaemonControl): ControlHandlers {
  const known = (name: string, child?: string): void => {
    const c = daemon.connectionList.find((x) => x.name === name);
    if (!c) throw new ControlError('not_found', `no connection named '${name}'`);
    if (child !== undefined && !c.entry.config.children.some((ch) => ch.name === child))
      throw new ControlError('not_found', `connection ${name} has no child named '${child}'`);
  };
  const running = (): void => {
    if (daemon.phase !== 'running') throw new ControlError('unavailable', `the daemon is ${daemon.phase}`);
  };
  const failed = (err: unknown): ControlError =>
    err instanceof ControlError
      ? err
      : new ControlError(['UpTimeout', 'OperationTimeout'].includes((err as Error).name) ? 'timeout' : 'failed', (err as Error).message);
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
      const child = childArg(args);
      const timeout = timeoutArg(args, 60);
      running();
      known(name, child);
      if (child !== undefined) {
        try {
          const r = await daemon.operations.upChild(name, child, timeout);
          const c = r.child;
          return {
            name,
            state: 'established',
            already: r.already,
            spi_i: r.sa.ctx.spiI.toString('hex'),
            spi_r: r.sa.ctx.spiR.toString('hex'),
            children: r.sa.ctx.children.length,
            child: { name: c.name, reqid: c.reqid, spi_in: spiHex(c.inboundSpi), spi_out: spiHex(c.outboundSpi) },
          };
        } catch (err) {
          const e = failed(err);
          throw new ControlError(e.code, `${name}/${child}: ${e.code === 'timeout' ? '' : 'establishing failed: '}${e.message}`);
        }
      }
      try {
        const { sa, already } = await daemon.up(name, timeout);
        // as `swanctl --initiate`: an IKE_SA without the CHILD_SA asked for is a failure (the IKE_SA stays up)
        const failedChildren = daemon.connectionStates.failedChildren(sa);
        if (failedChildren.length > 0) {
          throw new ControlError(
            'failed',
            `${name}: IKE_SA established, but ${failedChildren.map((f) => `CHILD_SA ${f.name} failed: ${f.reason}`).join('; ')}`,
          );
        }
        return {
          name,
          state: 'established',
          already,
          spi_i: sa.ctx.spiI.toString('hex'),
          spi_r: sa.ctx.spiR.toString('hex'),
          children: sa.ctx.children.length,
        };
      } catch (err) {
        const e = failed(err);
        throw new ControlError(e.code, `${name}: ${e.code === 'timeout' ? '' : 'establishing failed: '}${e.message}`);
      }
    },
    down: async (args): Promise<DownResult> => {
      const name = nameArg(args, true)!;
      const child = childArg(args);
      const timeout = timeoutArg(args, 10);
      running();
      known(name, child);
      try {
        if (child !== undefined) return { name, child, deleted: await daemon.operations.downChild(name, child, timeout) };
        return { name, deleted: await daemon.down(name, timeout) };
      } catch (err) {
        throw failed(err);
      }
    },
    rekey: async (args): Promise<RekeyResult> => {
      const name = nameArg(args, true)!;
      const child = childArg(args);
      const timeout = timeoutArg(args, 30);
      running();
      known(name, child);
      const sas = daemon.operations.established(name);
      if (sas.length === 0) throw new ControlError('not_found', `${name}: no established IKE_SA to rekey`);
      if (child !== undefined && !sas.some((sa) => sa.ctx.children.some((c) => c.name === child)))
        throw new ControlError('not_found', `${name}: no CHILD_SA ${child} to rekey`);
      try {
        if (child === undefined) {
          const r = await daemon.operations.rekeyIke(name, timeout);
          const hex = (b: Buffer): string => b.toString('hex');
          return {
            name,
            child: null,
            ike_sas: r.map(({ old, fresh }) => ({
              old_spi_i: hex(old.ctx.spiI),
              old_spi_r: hex(old.ctx.spiR),
              spi_i: hex(fresh.ctx.spiI),
              spi_r: hex(fresh.ctx.spiR),
            })),
            child_sas: [],
          };
        }
        const r = await daemon.operations.rekeyChild(name, child, timeout);
        return {
          name,
          child,
          ike_sas: [],
          child_sas: r.map(({ old, fresh }) => ({
            name: fresh.name,
            reqid: fresh.reqid,
            old_spi_in: spiHex(old.inboundSpi),
            old_spi_out: spiHex(old.outboundSpi),
            spi_in: spiHex(fresh.inboundSpi),
            spi_out: spiHex(fresh.outboundSpi),
          })),
        };
      } catch (err) {
        const e = failed(err);
        throw new ControlError(
          e.code,
          `${name}${child === undefined ? '' : `/${child}`}: rekeying ${e.code === 'timeout' ? 'timed out' : 'failed'}: ${e.message}`,
        );
      }
    },
    'list-certs': () => listCerts(daemon),
    monitor: (args) => {
      const events = args.events;
      if (events !== undefined && (!Array.isArray(events) || !events.every((e) => typeof e === 'string')))
        throw new ControlError('bad_request', "'events' must be an array of event names");
      const only = events === undefined ? undefined : new Set(events as string[]);
      return new ControlStream<MonitorResult>({ events: only ? [...only] : 'all' }, (send) =>
        daemon.log.subscribe((e) => {
          if (e.event === undefined || (only && !only.has(e.event))) return;
          const line: ControlEvent = { event: e.event, time: e.time, subsys: e.subsys, msg: e.msg, ...e.fields };
          send(line);
        }),
      );
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
    'sa-add': (args): Promise<ManualSaInfo> => {
      const name = saName(args);
      const settings = args.settings;
      if (typeof settings !== 'object' || settings === null || Array.isArray(settings))
        throw new ControlError('bad_request', "'settings' must be an object of manual SA keys");
      const m = manual();
      const parsed = parseManualSa(name, settings);
      if (!parsed.ok) throw new ControlError('failed', `invalid manual SA '${name}':\n${parsed.problems.map((p) => `  ${p}`).join('\n')}`);
      let info: ManualSaInfo;
      try {
        info = m.add(parsed.sa, 'runtime');
      } catch (err) {
        throw new ControlError('failed', (err as Error).message);
      }
      // answered once the policy's routes are in: traffic sent after the command is protected
      return m.settled().then(() => info);
    },
    'sa-del': (args): Promise<ManualSaDelResult> => {
      const name = saName(args);
      const m = manual();
      if (!m.delete(name, 'tunsec sa del')) throw new ControlError('not_found', `no manual SA named '${name}'`);
      return m.settled().then(() => ({ name, deleted: true }));
    },
  };
}
