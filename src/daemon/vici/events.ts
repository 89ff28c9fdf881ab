/**
 * VICI's event sources: the IKE SA manager's life-cycle events as
 * `ike-updown`, `child-updown`, `ike-rekey` and `child-rekey` (swanctl
 * --monitor-sa), and the daemon's log lines as `log` (swanctl --log).
 *
 * charon reports a CHILD_SA down for each one an IKE_SA still carried when it
 * went, so the CHILD_SAs of each IKE_SA are followed here (the manager's
 * `destroyed` comes after they are removed). An IKE rekey is an `ike-rekey`,
 * not a down and an up, as in charon.
 */
import type { ViciInput, ViciInputValue } from '../../control/vici/message.js';
import type { IkeSaManager } from '../../ike/manager.js';
import type { IkeSa } from '../../ike/sa/ike-sa.js';
import type { ChildSaRecord } from '../../ike/sa/context.js';
import type { DaemonLogger, LogRecord } from '../logger.js';
import { childSaKeys, childSasSection, ikeSaKeys, listSaEvent, type ViciIds } from './messages.js';

/** The events a VICI client may register for. */
export const VICI_EVENTS = ['list-sa', 'list-conn', 'list-cert', 'ike-updown', 'child-updown', 'ike-rekey', 'child-rekey', 'log', 'control-log'] as const;

export interface ViciBroadcaster {
  listening(event: string): boolean;
  broadcast(event: string, message: ViciInput): void;
}

/** charon's group names for tunsec's subsystems (`[IKE]` in swanctl --log). */
export const LOG_GROUPS: Readonly<Record<LogRecord['subsys'], string>> = {
  daemon: 'DMN',
  cfg: 'CFG',
  net: 'NET',
  mgr: 'MGR',
  ike: 'IKE',
  esp: 'ESP',
  knl: 'KNL',
};
/** charon's levels of tunsec's: errors and warnings 0 (basic), informational 1 (audit), debug 2 (control). */
export const LOG_LEVELS: Readonly<Record<LogRecord['level'], number>> = { error: 0, warn: 0, info: 1, debug: 2 };

type ChildWaiter = (sa: IkeSa, name: string, outcome: { ok: true } | { ok: false; reason: string }) => void;

export class ViciEventSource {
  /** The CHILD_SAs of each IKE_SA (for their down events when the IKE_SA goes). */
  private readonly children = new Map<IkeSa, ChildSaRecord[]>();
  private readonly rekeyedSuccessors = new WeakSet<IkeSa>();
  private readonly waiters = new Set<ChildWaiter>();

  constructor(
    private readonly out: ViciBroadcaster,
    private readonly ids: ViciIds,
  ) {}

  /** Follow the manager's SAs; the SAs already up are taken as they are (no events for them). */
  attach(manager: IkeSaManager): void {
    for (const sa of manager.sas) if (sa.state !== 'destroyed') this.children.set(sa, [...sa.ctx.children]);
    manager.on('established', (sa) => {
      if (!this.children.has(sa)) this.children.set(sa, []);
      // An IKE rekey's successor is announced as `ikeRekeyed` right after this, in the same turn.
      queueMicrotask(() => {
        if (!this.rekeyedSuccessors.has(sa)) this.ikeUpdown(sa, true);
      });
    });
    manager.on('ikeRekeyed', (old, successor) => {
      this.rekeyedSuccessors.add(successor);
      this.children.set(successor, [...(this.children.get(successor) ?? []), ...(this.children.get(old) ?? [])]);
      this.children.set(old, []);
      this.broadcast('ike-rekey', () => listSaEvent(old, { old: ikeSaKeys(old, undefined, this.ids), new: ikeSaKeys(successor, undefined, this.ids) }));
    });
    manager.on('destroyed', (sa, _reason, cause) => {
      const left = this.children.get(sa) ?? [];
      this.children.delete(sa);
      if (cause === 'rekeyed') return;
      for (const child of left) this.childUpdown(sa, child, false);
      if (sa.ctx.establishedAt !== undefined) this.ikeUpdown(sa, false);
    });
    manager.on('childEstablished', (sa, child) => {
      this.track(sa).push(child);
      this.childUpdown(sa, child, true);
      this.settle(sa, child.name, { ok: true });
    });
    manager.on('childFailed', (sa, name, reason) => this.settle(sa, name, { ok: false, reason }));
    manager.on('childRekeyed', (sa, old, fresh) => {
      const list = this.track(sa);
      const i = list.indexOf(old);
      if (i >= 0) list.splice(i, 1, fresh);
      else list.push(fresh);
      this.broadcast('child-rekey', () =>
        listSaEvent(sa, {
          ...ikeSaKeys(sa, undefined, this.ids),
          'child-sas': new Map([
            [
              `${fresh.name}-${this.ids.childId(fresh)}`,
              { old: childSaKeys(old, undefined, this.ids, 'REKEYED'), new: childSaKeys(fresh, undefined, this.ids) },
            ],
          ]),
        }),
      );
    });
    manager.on('childClosed', (sa, child) => this.childGone(sa, child));
    manager.on('childDeleted', (sa, child) => this.childGone(sa, child));
  }

  /** A CHILD_SA went while its IKE SA stays (the peer's Delete, or ours: swanctl --terminate --child, tunsec down --child). */
  private childGone(sa: IkeSa, child: ChildSaRecord): void {
    const list = this.track(sa);
    const i = list.indexOf(child);
    if (i >= 0) list.splice(i, 1);
    this.childUpdown(sa, child, false);
  }

  /** The daemon's log lines of levels 0 and 1 as `log` events (charon sends those levels only). */
  attachLog(log: DaemonLogger): () => void {
    return log.subscribe((r) => {
      if (!r.written) return;
      const level = LOG_LEVELS[r.level];
      if (level > 1) return;
      this.broadcast('log', () => logEvent(r));
    });
  }

  /** Resolves when a CHILD_SA `name` of `sa` is established or fails, or after `timeoutMs` (then 'timeout'). */
  waitForChild(sa: IkeSa, name: string, timeoutMs: number): Promise<{ ok: true } | { ok: false; reason: string }> {
    return new Promise((resolve) => {
      const waiter: ChildWaiter = (s, n, outcome) => {
        if (s !== sa || n !== name) return;
        finish(outcome);
      };
      const timer = setTimeout(() => finish({ ok: false, reason: `timeout after ${Math.round(timeoutMs / 1000)} s` }), timeoutMs);
      const finish = (outcome: { ok: true } | { ok: false; reason: string }): void => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
        resolve(outcome);
      };
      this.waiters.add(waiter);
    });
  }

  private settle(sa: IkeSa, name: string, outcome: { ok: true } | { ok: false; reason: string }): void {
    for (const w of [...this.waiters]) w(sa, name, outcome);
  }

  private track(sa: IkeSa): ChildSaRecord[] {
    let list = this.children.get(sa);
    if (!list) this.children.set(sa, (list = []));
    return list;
  }

  private ikeUpdown(sa: IkeSa, up: boolean): void {
    this.broadcast('ike-updown', () => {
      const m = listSaEvent(sa, ikeSaKeys(sa, undefined, this.ids)) as Map<string, ViciInputValue>;
      return up ? new Map<string, ViciInputValue>([['up', 'yes'], ...m]) : m;
    });
  }

  private childUpdown(sa: IkeSa, child: ChildSaRecord, up: boolean): void {
    this.broadcast('child-updown', () => {
      const m = listSaEvent(sa, {
        ...ikeSaKeys(sa, undefined, this.ids),
        'child-sas': childSasSection([{ child, state: up ? 'INSTALLED' : 'DELETING' }], this.ids),
      }) as Map<string, ViciInputValue>;
      return up ? new Map<string, ViciInputValue>([['up', 'yes'], ...m]) : m;
    });
  }

  private broadcast(event: string, build: () => ViciInput): void {
    if (!this.out.listening(event)) return;
    this.out.broadcast(event, build());
  }
}

/** A `log` / `control-log` event of one line; the IKE_SA's connection name when the line is about one. */
export function logEvent(r: LogRecord): Record<string, ViciInputValue> {
  const conn = /^([A-Za-z0-9][A-Za-z0-9_.-]*)\[/.exec(r.msg)?.[1];
  return { group: LOG_GROUPS[r.subsys], level: LOG_LEVELS[r.level], thread: 0, 'ikesa-name': r.subsys === 'ike' ? conn : undefined, msg: printable(r.msg) };
}

/**
 * libvici hands swanctl a value only when it is printable ASCII (chunk_printable):
 * a log line with `→` would print as nothing. Arrows become `->`, other
 * non-ASCII characters `?`.
 */
function printable(msg: string): string {
  return msg.replaceAll('→', '->').replace(/[^\x20-\x7e\n\t]/g, '?');
}
