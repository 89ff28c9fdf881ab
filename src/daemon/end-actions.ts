/**
 * What the daemon does when SAs end and come up: each child's `dpd_action`
 * (the peer is dead) or `close_action` (the peer deleted it) — initiate
 * again, install a trap policy, or nothing —, the children created by
 * CREATE_CHILD_SA once an IKE SA is up (further `start` children, those a
 * restart asked for), and the fallback when a CHILD_SA's SA reaches its hard
 * lifetime un-rekeyed.
 *
 * It sees the daemon through a narrow host: the IKE SA manager, the loaded
 * connections, the datapath's trap installation and the initiation loops
 * (./initiation.ts).
 */
import type { ExpireEvent } from '../esp/api.js';
import type { IkeSa, IkeSaEndCause } from '../ike/sa/ike-sa.js';
import type { ResolvedConnection } from './credentials.js';
import type { DaemonView, Initiation } from './initiation.js';

export interface EndActionsHost extends DaemonView {
  /** The daemon runs (not starting, not stopping). */
  running(): boolean;
  /** Install the trap policy of `child` (UserspaceDatapath.installTrap; nothing with `datapath: none`). */
  installTrap(c: ResolvedConnection, child: string, remoteAddress: string): void;
  readonly initiation: Pick<Initiation, 'isRetrying' | 'keepInitiating'>;
}

export class EndActions {
  /** Children to create once the connection's next IKE SA is up (dpd_action restart, close_action start). */
  private readonly restartChildren = new Map<string, Set<string>>();

  constructor(private readonly host: EndActionsHost) {}

  /**
   * After IKE_AUTH (which carries the first configured child): the other
   * `start` children of the connection, and those a `restart`/`start` action
   * asked for, get their CHILD_SAs through CREATE_CHILD_SA.
   */
  createMissingChildren(sa: IkeSa): void {
    if (!sa.ctx.originalInitiator || !this.host.running()) return;
    const c = this.host.connections().find((x) => x.name === sa.ctx.config.name && x.entry.config === sa.ctx.config);
    if (!c) return;
    const wanted = new Set([...c.startChildren, ...(this.restartChildren.get(c.name) ?? [])]);
    this.restartChildren.delete(c.name);
    for (const config of sa.ctx.config.children) {
      if (wanted.has(config.name) && !sa.ctx.children.some((x) => x.name === config.name)) sa.createChild(config, 'configured to start');
    }
  }

  /**
   * An IKE SA ended. When the peer is dead (DPD or any unanswered exchange,
   * §2.4) each child's `dpd_action`, when the peer deleted it its
   * `close_action`: `restart`/`start` negotiates again at once (keyingtries),
   * `trap` installs the child's trap policy so its traffic negotiates on
   * demand, `clear`/`none` leaves it. Whatever the action, a `private` child
   * keeps its trap (configured or learned): its traffic is dropped, never sent
   * in the clear.
   */
  ikeSaEnded(sa: IkeSa, cause: IkeSaEndCause): void {
    if (cause !== 'dead-peer' && cause !== 'peer-deleted') return;
    const label = cause === 'dead-peer' ? 'dpd_action' : 'close_action';
    this.host.log.log(
      'daemon',
      cause === 'dead-peer' ? 'warn' : 'info',
      `${sa.ctx.name}: ${cause === 'dead-peer' ? `peer ${sa.ctx.remote.address} is dead` : `peer ${sa.ctx.remote.address} closed the IKE_SA`}; applying ${label} of ${sa.childNamesAtEnd.join(', ') || 'no CHILD_SA'}`,
      {
        conn: sa.ctx.config.name,
        cause,
      },
    );
    for (const child of sa.childNamesAtEnd) this.applyEndAction(sa, child, cause);
  }

  /** The peer deleted one CHILD_SA; the IKE SA stays: close_action of that child. */
  childClosed(sa: IkeSa, child: string): void {
    this.applyEndAction(sa, child, 'peer-deleted');
  }

  /**
   * A CHILD_SA's SA reached its hard lifetime. Normally the soft limit (or the
   * rekey timer) rekeyed it long before (CREATE_CHILD_SA, src/ike/sa/ike-sa.ts)
   * and the expiring SA is an old one no CHILD_SA uses any more: nothing to do.
   * When it is still the current SA of a CHILD_SA the rekey failed; as the
   * fallback the IKE SA carrying it is deleted (the peer is told): the trap
   * policy then holds the traffic and negotiates a fresh IKE SA and CHILD_SA —
   * break-before-make, but never cleartext and never a dead CHILD_SA under a
   * live IKE SA.
   */
  hardExpired(e: ExpireEvent): void {
    if (!e.hard) return;
    const spi = e.spi >>> 0;
    const owner = this.host.manager()?.sas.find((sa) => sa.ctx.children.some((c) => c.reqid === e.reqid && (c.inboundSpi === spi || c.outboundSpi === spi)));
    if (!owner || owner.state === 'destroyed') return;
    this.host.log.log(
      'daemon',
      'warn',
      `${owner.ctx.name}: CHILD_SA {${e.reqid}} reached its hard ${e.reason} lifetime; deleting the IKE_SA to renegotiate (it was not rekeyed in time)`,
    );
    owner.delete(`CHILD_SA {${e.reqid}} expired (${e.reason})`);
  }

  private applyEndAction(sa: IkeSa, child: string, cause: 'dead-peer' | 'peer-deleted'): void {
    if (!this.host.mayNegotiate()) return;
    const c = this.host.connections().find((x) => x.name === sa.ctx.config.name);
    if (!c) return;
    const setting = cause === 'dead-peer' ? 'dpd_action' : 'close_action';
    const action = cause === 'dead-peer' ? c.dpdActions[child] : c.closeActions[child];
    if (action === 'trap') {
      this.host.installTrap(c, child, sa.ctx.remote.address);
      return;
    }
    if (action !== 'restart' && action !== 'start') return;
    // A group's instance is negotiated again on demand: its group's trap policies stay in place.
    if (c.group) return;
    const config = sa.ctx.config.children.find((x) => x.name === child);
    // The IKE SA is still there (a CHILD_SA closed): a new CHILD_SA on it.
    if (sa.state === 'established' && config) return sa.createChild(config, `close_action ${action}`);
    const others = this.host.manager()?.sas.some((s) => s !== sa && s.ctx.config.name === c.name && s.state !== 'destroyed');
    if (others) return;
    if (!c.entry.remoteAddrs.some((a) => a !== '%any')) {
      this.host.log.log('daemon', 'warn', `connection ${c.name}: ${setting} ${action} impossible: remote_addrs names no peer to initiate to`);
      return;
    }
    const set = this.restartChildren.get(c.name) ?? new Set<string>();
    set.add(child);
    this.restartChildren.set(c.name, set);
    if (this.host.initiation.isRetrying(c.name)) return;
    this.host.log.log('daemon', 'info', `connection ${c.name}: ${setting} ${action}: initiating again`, { conn: c.name, child });
    void this.host.initiation.keepInitiating(c);
  }
}
