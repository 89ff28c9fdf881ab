/**
 * Peers that hold an IKE SA we lost (RFC 7296 §2.21.4): after a restart or a
 * crash, a peer's next request for its old IKE SA (a liveness check, a
 * CREATE_CHILD_SA) reaches us for an SPI we do not know. It is answered
 * INVALID_IKE_SPI, which a peer may ignore (unprotected, §1.5); what brings
 * it back at once is a new IKE SA from us: we hold no other IKE SA with it,
 * so the IKE_AUTH carries INITIAL_CONTACT (§2.4) and the peer drops the stale
 * one instead of waiting for its DPD to give up.
 *
 * This module decides which connections to initiate: those to that address
 * that should be up (`start` or `trap` children, a concrete remote address),
 * have no IKE SA and no initiation under way, at most once per
 * `LOST_PEER_INITIATE_INTERVAL_MS` each — the request is unauthenticated,
 * so a forged one can do no more than that.
 */
import { canonicalIp } from '../util/ip.js';
import type { ResolvedConnection } from './credentials.js';

/** At most one initiation per connection per interval on behalf of unknown-SA requests. */
export const LOST_PEER_INITIATE_INTERVAL_MS = 10_000;

export class LostPeers {
  /** When each connection was last initiated for a lost peer. */
  private readonly last = new Map<string, number>();

  /**
   * The connections to initiate now for a request from `address`; `busy(name)`
   * says whether the connection has an IKE SA or an initiation under way.
   */
  toInitiate(address: string, connections: readonly ResolvedConnection[], busy: (name: string) => boolean, now = Date.now()): ResolvedConnection[] {
    const from = canonicalIp(address) ?? address;
    const picked = connections.filter(
      (c) =>
        c.startChildren.length + c.trapChildren.length > 0 &&
        c.entry.remoteAddrs.some((a) => (canonicalIp(a) ?? a) === from) &&
        !busy(c.name) &&
        now - (this.last.get(c.name) ?? -Infinity) >= LOST_PEER_INITIATE_INTERVAL_MS,
    );
    for (const c of picked) this.last.set(c.name, now);
    return picked;
  }
}
