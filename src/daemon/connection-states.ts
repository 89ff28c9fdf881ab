/**
 * What the daemon remembers about its connections beyond the IKE SAs
 * themselves, from the IKE SA manager's events: when each connection went
 * down, when an IKE SA was first seen, and which CHILD_SAs failed.
 */
import type { IkeSaManager } from '../ike/manager.js';
import type { IkeSa } from '../ike/sa/ike-sa.js';

/** When connections went down, when IKE SAs were first seen and which of their CHILD_SAs failed, for `status` and `up`. */
export class ConnectionStates {
  private readonly lastDown = new Map<string, number>();
  private readonly firstSeen = new WeakMap<IkeSa, number>();
  private readonly childFailures = new WeakMap<IkeSa, Map<string, { reason: string; at: number }>>();

  attach(manager: IkeSaManager): void {
    manager.on('destroyed', (sa) => this.lastDown.set(sa.ctx.config.name, Date.now()));
    manager.on('childFailed', (sa, name, reason) => {
      const failures = this.childFailures.get(sa) ?? new Map<string, { reason: string; at: number }>();
      failures.set(name, { reason, at: Date.now() });
      this.childFailures.set(sa, failures);
    });
    manager.on('childEstablished', (sa, child) => this.childFailures.get(sa)?.delete(child.name));
  }

  /** The CHILD_SAs that failed on `sa` and are not up on it (a failed rekey of one still up does not count). */
  failedChildren(sa: IkeSa): Array<{ name: string; reason: string; at: number }> {
    const up = new Set(sa.ctx.children.map((c) => c.name));
    return [...(this.childFailures.get(sa) ?? [])].filter(([name]) => !up.has(name)).map(([name, f]) => ({ name, ...f }));
  }

  downSince(name: string): number | undefined {
    return this.lastDown.get(name);
  }

  /** When an IKE SA was first seen here (a responder's half-open SA has no timestamp of its own). */
  seen(sa: IkeSa): number {
    let t = this.firstSeen.get(sa);
    if (t === undefined) {
      t = Date.now();
      this.firstSeen.set(sa, t);
    }
    return t;
  }
}
