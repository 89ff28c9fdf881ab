/**
 * Packets for pending SPIs: ESP that arrives for an inbound SPI we allocated
 * for an exchange still under way (the SAD's reserved SPIs), before its SA
 * is installed.
 *
 * RFC 7296 §2.8 lets the responder of a CREATE_CHILD_SA install its SAs and
 * start sending on the new one with, or just before, its response; the
 * initiator can only derive the keys (§2.17: the responder's nonce and KE)
 * once that response is processed. Libreswan (XFRM) does exactly that, so
 * those first packets used to meet an unknown SPI. (strongSwan, and tunsec
 * as responder, switch to the new SA only on the initiator's Delete of the
 * old one; the same race exists for IKE_AUTH's CHILD_SA.)
 * Here they wait, bounded, until the SA is installed (then they take the
 * normal inbound path: replay window, ICV, policy check) or the reservation
 * is released (the exchange failed) or they are too old.
 *
 * Nothing in a held packet has been authenticated: a forger who knows a
 * reserved SPI can only fill the bounded queues (its packets then fail the
 * ICV once the SA is there). The queues are per SPI and in total, in packets
 * and octets, and every packet is stamped so that `expire` can drop what
 * waited longer than `maxAgeMs`.
 */

export interface PendingSpiLimits {
  /** Packets held per SPI. */
  perSpi: number;
  /** Packets and octets held over all SPIs. */
  total: number;
  totalBytes: number;
  /** Held packets older than this are dropped by `expire`. */
  maxAgeMs: number;
}

export const DEFAULT_PENDING_SPI_LIMITS: PendingSpiLimits = { perSpi: 32, total: 256, totalBytes: 1 << 20, maxAgeMs: 3000 };

interface Held<T> {
  item: T;
  bytes: number;
  at: number;
}

interface Queue<T> {
  held: Held<T>[];
  /** The SA is installed and the packets wait to be taken (arrivals keep queueing behind them, in order). */
  installed: boolean;
}

export class PendingSpiQueues<T> {
  private readonly bySpi = new Map<number, Queue<T>>();
  private count = 0;
  private bytes = 0;

  constructor(private readonly limits: PendingSpiLimits) {}

  /** Whether any SPI has a queue (the packet path's cheap test). */
  get active(): boolean {
    return this.bySpi.size > 0;
  }

  /** Whether `spi`'s SA is installed and its held packets wait to be taken. */
  installed(spi: number): boolean {
    return this.bySpi.get(spi)?.installed === true;
  }

  /**
   * Queue the item `copy` makes (a packet of `bytes` octets) for `spi`; false,
   * without calling `copy`, when a bound is reached (the caller drops the
   * packet or, for an installed SA, opens it now).
   */
  hold(spi: number, bytes: number, now: number, copy: () => T): boolean {
    let q = this.bySpi.get(spi);
    if (q !== undefined && q.held.length >= this.limits.perSpi) return false;
    if (this.count >= this.limits.total || this.bytes + bytes > this.limits.totalBytes) return false;
    if (q === undefined) {
      q = { held: [], installed: false };
      this.bySpi.set(spi, q);
    }
    q.held.push({ item: copy(), bytes, at: now });
    this.count++;
    this.bytes += bytes;
    return true;
  }

  /** `spi`'s SA was installed: whether packets wait for `take`. */
  markInstalled(spi: number): boolean {
    const q = this.bySpi.get(spi);
    if (q === undefined) return false;
    q.installed = true;
    return q.held.length > 0;
  }

  /** The packets held for `spi` in arrival order; the SPI has no queue afterwards. */
  take(spi: number): T[] {
    const q = this.bySpi.get(spi);
    if (q === undefined) return [];
    this.bySpi.delete(spi);
    this.forget(q.held);
    return q.held.map((h) => h.item);
  }

  /** Drop everything held for `spi` (its reservation was released); returns how many. */
  drop(spi: number): number {
    const q = this.bySpi.get(spi);
    if (q === undefined) return 0;
    this.bySpi.delete(spi);
    this.forget(q.held);
    return q.held.length;
  }

  /** Drop the packets held longer than `maxAgeMs`; returns how many. */
  expire(now: number): number {
    let dropped = 0;
    for (const [spi, q] of this.bySpi) {
      let n = 0;
      while (n < q.held.length && now - q.held[n]!.at >= this.limits.maxAgeMs) n++;
      if (n === 0) continue;
      this.forget(q.held.splice(0, n));
      dropped += n;
      if (q.held.length === 0) this.bySpi.delete(spi);
    }
    return dropped;
  }

  private forget(held: readonly Held<T>[]): void {
    for (const h of held) {
      this.count--;
      this.bytes -= h.bytes;
    }
  }
}
