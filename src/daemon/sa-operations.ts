/**
 * What an operator does to established SAs, beyond `up`/`down` of a whole
 * connection (./initiation.ts, ./daemon.ts): create the CHILD_SA of one child
 * on the established IKE SA (CREATE_CHILD_SA, RFC 7296 §1.3.1), delete one
 * CHILD_SA (§1.4.1), rekey the IKE SA (§1.3.2) or a CHILD_SA (§1.3.3) — as
 * `swanctl --initiate --child`, `--terminate --child`, `--rekey`. Each waits
 * until the exchange is done, and resolves with what changed or rejects with
 * the reason; after `timeoutMs` it rejects with OperationTimeout (the
 * exchange goes on).
 *
 * It listens to the SA manager once (attach) and hands the events to the
 * operations waiting for them; it prints nothing and knows nothing of the
 * control socket (./control/commands.ts and the VICI server call it).
 */
import type { IkeSaManager } from '../ike/manager.js';
import type { ChildSaRecord } from '../ike/sa/context.js';
import type { IkeSa } from '../ike/sa/ike-sa.js';
import type { DaemonLogger } from './logger.js';

/** The operation waited longer than asked; the exchange goes on. */
export class OperationTimeout extends Error {
  override readonly name = 'OperationTimeout';
}

/** An event of the manager, as the waiters see it. */
type SaEvent =
  | { kind: 'childEstablished'; sa: IkeSa; child: ChildSaRecord }
  | { kind: 'childFailed'; sa: IkeSa; name: string; reason: string }
  | { kind: 'childRekeyed'; sa: IkeSa; old: ChildSaRecord; fresh: ChildSaRecord }
  | { kind: 'ikeRekeyed'; sa: IkeSa; successor: IkeSa }
  | { kind: 'destroyed'; sa: IkeSa; reason: string };

/** A waiter answers an event with a result (done), an Error (failed) or undefined (not its event). */
type Waiter = (e: SaEvent) => unknown;

export interface ChildRekeyed {
  sa: IkeSa;
  old: ChildSaRecord;
  fresh: ChildSaRecord;
}

export interface IkeRekeyed {
  old: IkeSa;
  fresh: IkeSa;
}

export interface SaOperationsHost {
  readonly log: DaemonLogger;
  manager(): IkeSaManager | undefined;
  /** `tunsec up NAME`: the connection's established IKE SA, initiating it if need be. */
  up(name: string, timeoutMs: number): Promise<{ sa: IkeSa; already: boolean }>;
}

export class SaOperations {
  private readonly waiters = new Set<Waiter>();

  constructor(private readonly host: SaOperationsHost) {}

  /** Hear the manager's events (once per manager). */
  attach(manager: IkeSaManager): void {
    manager.on('childEstablished', (sa, child) => this.dispatch({ kind: 'childEstablished', sa, child }));
    manager.on('childFailed', (sa, name, reason) => this.dispatch({ kind: 'childFailed', sa, name, reason }));
    manager.on('childRekeyed', (sa, old, fresh) => this.dispatch({ kind: 'childRekeyed', sa, old, fresh }));
    manager.on('ikeRekeyed', (sa, successor) => this.dispatch({ kind: 'ikeRekeyed', sa, successor }));
    manager.on('destroyed', (sa, reason) => this.dispatch({ kind: 'destroyed', sa, reason }));
  }

  /** The established IKE SAs of connection `name` that carry its CHILD_SAs now (not those replaced by a rekey). */
  established(name: string): IkeSa[] {
    return (this.host.manager()?.sas ?? []).filter((sa) => sa.ctx.config.name === name && sa.state === 'established' && !sa.successor);
  }

  /**
   * `up --child`: the CHILD_SA of `child` on the connection's established IKE
   * SA, created by CREATE_CHILD_SA if it has none (the IKE SA is initiated
   * first if there is none: its IKE_AUTH may carry the child already).
   */
  async upChild(conn: string, child: string, timeoutMs: number): Promise<{ sa: IkeSa; child: ChildSaRecord; already: boolean }> {
    const deadline = Date.now() + timeoutMs;
    const up = await this.host.up(conn, timeoutMs);
    const sa = current(up.sa);
    const there = sa.ctx.children.find((c) => c.name === child);
    if (there) return { sa, child: there, already: up.already };
    const config = sa.ctx.config.children.find((c) => c.name === child);
    if (!config) throw new Error(`connection ${conn} has no child named '${child}'`);
    const created = this.wait<{ sa: IkeSa; child: ChildSaRecord }>(Math.max(1, deadline - Date.now()), `CHILD_SA ${child} not established`, (e) => {
      if (e.kind === 'childEstablished' && e.child.name === child && e.sa.ctx.config.name === conn) return { sa: e.sa, child: e.child };
      if (e.kind === 'childFailed' && e.name === child && e.sa.ctx.config.name === conn) return new Error(`CHILD_SA ${child} failed: ${e.reason}`);
      if (e.kind === 'destroyed' && e.sa === sa && !sa.successor) return new Error(`the IKE_SA went away: ${e.reason}`);
      return undefined;
    });
    this.host.log.log('daemon', 'info', `connection ${conn}: creating CHILD_SA ${child} (tunsec up --child)`, { conn, child });
    sa.createChild(config, 'requested by the operator (tunsec up --child)');
    return { ...(await created), already: false };
  }

  /**
   * `down --child`: delete the CHILD_SA of `child` on every established IKE
   * SA of the connection (INFORMATIONAL Delete; the IKE SA stays). Resolves
   * with the number deleted.
   */
  async downChild(conn: string, child: string, timeoutMs: number): Promise<number> {
    const pairs = this.established(conn).flatMap((sa) => sa.ctx.children.filter((c) => c.name === child).map((record) => ({ sa, record })));
    this.host.log.log('daemon', 'info', `connection ${conn}: deleting ${pairs.length} CHILD_SA(s) ${child} (tunsec down --child)`, { conn, child });
    const results = await Promise.all(
      pairs.map(
        ({ sa, record }) =>
          new Promise<boolean>((resolve, reject) => {
            const stop = this.wait<never>(timeoutMs, `CHILD_SA ${child}: the peer did not answer the Delete`, (e) =>
              e.kind === 'destroyed' && e.sa === sa && !sa.successor ? new Error(`the IKE_SA went away: ${e.reason}`) : undefined,
            );
            stop.catch(reject);
            void sa.deleteChild(record, 'deleted by the operator (tunsec down --child)').then((outcome) => {
              this.cancel(stop);
              resolve(outcome.ok);
            });
          }),
      ),
    );
    return results.filter(Boolean).length;
  }

  /** `rekey NAME`: rekey every established IKE SA of the connection; resolves with each old and new IKE SA. */
  async rekeyIke(conn: string, timeoutMs: number): Promise<IkeRekeyed[]> {
    const sas = this.established(conn);
    this.host.log.log('daemon', 'info', `connection ${conn}: rekeying ${sas.length} IKE SA(s) (tunsec rekey)`, { conn });
    return Promise.all(
      sas.map((sa) => {
        const done = this.wait<IkeRekeyed>(timeoutMs, `IKE_SA ${sa.ctx.name} not rekeyed`, (e) => {
          if (e.kind === 'ikeRekeyed' && e.sa === sa) return { old: sa, fresh: e.successor };
          if (e.kind === 'destroyed' && e.sa === sa) return new Error(`the IKE_SA went away before its rekey completed: ${e.reason}`);
          return undefined;
        });
        sa.rekeyIke('requested by the operator (tunsec rekey)');
        return done;
      }),
    );
  }

  /** `rekey NAME --child CHILD`: rekey that CHILD_SA on every established IKE SA of the connection. */
  async rekeyChild(conn: string, child: string, timeoutMs: number): Promise<ChildRekeyed[]> {
    const pairs = this.established(conn).flatMap((sa) => sa.ctx.children.filter((c) => c.name === child).map((c) => [sa, c] as const));
    this.host.log.log('daemon', 'info', `connection ${conn}: rekeying ${pairs.length} CHILD_SA(s) ${child} (tunsec rekey --child)`, { conn, child });
    return Promise.all(
      pairs.map(([sa, old]) => {
        const done = this.wait<ChildRekeyed>(timeoutMs, `CHILD_SA ${child}{${old.reqid}} not rekeyed`, (e) => {
          if (e.kind === 'childRekeyed' && e.old === old) return { sa: e.sa, old, fresh: e.fresh };
          if (e.kind === 'destroyed' && e.sa === sa && !sa.successor) return new Error(`the IKE_SA went away before the rekey completed: ${e.reason}`);
          return undefined;
        });
        sa.rekeyChild(old, 'requested by the operator (tunsec rekey --child)');
        return done;
      }),
    );
  }

  private dispatch(e: SaEvent): void {
    for (const w of [...this.waiters]) w(e);
  }

  private readonly cancels = new WeakMap<Promise<unknown>, () => void>();

  /** Until `match` answers an event (or `ms` passes: OperationTimeout with `what`). */
  private wait<T>(ms: number, what: string, match: (e: SaEvent) => T | Error | undefined): Promise<T> {
    let cancel!: () => void;
    const p = new Promise<T>((resolve, reject) => {
      const end = (): void => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
      };
      const waiter: Waiter = (e) => {
        const r = match(e);
        if (r === undefined) return;
        end();
        if (r instanceof Error) reject(r);
        else resolve(r);
      };
      const timer = setTimeout(() => {
        end();
        reject(new OperationTimeout(`${what} after ${ms / 1000} s; the exchange goes on`));
      }, ms);
      this.waiters.add(waiter);
      cancel = end;
    });
    this.cancels.set(p, cancel);
    return p;
  }

  private cancel(p: Promise<unknown>): void {
    this.cancels.get(p)?.();
  }
}

/** An IKE SA, or the one that replaced it by a rekey (its CHILD_SAs moved there). */
function current(sa: IkeSa): IkeSa {
  let s = sa;
  while (s.successor) s = s.successor;
  return s;
}
