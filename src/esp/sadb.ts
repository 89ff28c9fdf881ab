/**
 * The SAD and SPD of the userspace datapath (RFC 4301 §4.4): what IKE
 * installed through the IpsecBackend interface, held the way the packet path
 * looks it up — inbound SAs by SPI, the outbound SA of a CHILD_SA by reqid,
 * policies in priority order (./spd.ts) — plus each SA's running state:
 * the keyed AEAD, the outbound sequence counter, the inbound replay window,
 * counters and lifetimes (soft/hard by time, bytes and packets, raising
 * `expire` events for the rekey logic; a hard expiry removes the SA, as the
 * kernel does).
 *
 * Nothing here reads or writes packets; ./engine.ts does, using the
 * lookups below.
 */
import { randomInt } from 'node:crypto';
import { aeadFor } from '../crypto/aead.js';
import { addressOctets } from './addresses.js';
import type { AcquireEvent, Direction, ExpireEvent, IpsecBackend, IpsecBackendEvents, PolicySpec, SaCounters, SaSpec } from './api.js';
import type { EspSa } from './packet.js';
import { MAX_SEQ_32, MAX_SEQ_ESN, ReplayWindow } from './replay.js';
import { compileSelector, SecurityPolicyDatabase, type CompiledSelector, type SpdEntry } from './spd.js';
import { spiHex } from '../util/format.js';

const zeroCounters = (): SaCounters => ({ bytes: 0, packets: 0, replayDrops: 0, icvFailures: 0, badPadding: 0, policyDrops: 0, lastUsed: 0 });

/** One installed SA with its running state. */
export class SadEntry {
  readonly counters: SaCounters = zeroCounters();
  readonly installedAt: number;
  readonly esp: EspSa;
  /** Outer address family and octets. */
  readonly family: 4 | 6;
  readonly localAddress: Buffer;
  readonly remoteAddress: Buffer;
  readonly localSelectors: readonly CompiledSelector[];
  readonly remoteSelectors: readonly CompiledSelector[];
  /** Outbound: the last sequence number sent (the next is seq + 1). */
  seq = 0;
  /** Outbound: the last sequence number this SA may use (2^32 − 1 without ESN, RFC 4303 §3.3.3). */
  readonly maxSeq: number;
  /** Inbound: the anti-replay window (size 0 = checking off, still tracks ESN high bits). */
  readonly replay: ReplayWindow | undefined;
  softExpired = false;
  /**
   * Set by deleteSa with a grace period: the SA is deleted as far as IKE and
   * lifetimes go (no expiry is raised for it any more), and removed when the
   * grace ends; an inbound one still takes packets in flight until then.
   */
  deleting = false;
  /** Set once removed: a reference kept by a packet in flight must not use it. */
  removed = false;

  constructor(
    readonly spec: Readonly<SaSpec>,
    now: number,
  ) {
    const alg = aeadFor(spec.aead.transformId, spec.aead.keyBits);
    if (!alg) throw new Error(`SAD: AEAD transform ${spec.aead.transformId}/${spec.aead.keyBits} is not implemented`);
    if (spec.aead.keyMaterial.length !== alg.keyMaterialLength) {
      throw new Error(`SAD: SA ${spiHex(spec.spi)} needs ${alg.keyMaterialLength} octets of key material, got ${spec.aead.keyMaterial.length}`);
    }
    const local = addressOctets(spec.localAddress);
    const remote = addressOctets(spec.remoteAddress);
    if (!local || !remote || local.length !== remote.length)
      throw new Error(`SAD: SA ${spiHex(spec.spi)} has unusable addresses ${spec.localAddress} / ${spec.remoteAddress}`);
    this.installedAt = now;
    this.family = local.length === 4 ? 4 : 6;
    this.localAddress = local;
    this.remoteAddress = remote;
    this.localSelectors = spec.localSelectors.map(compileSelector);
    this.remoteSelectors = spec.remoteSelectors.map(compileSelector);
    this.esp = { ctx: alg.createContext(spec.aead.keyMaterial), spi: spec.spi >>> 0, esn: spec.esn };
    this.maxSeq = spec.esn ? MAX_SEQ_ESN : MAX_SEQ_32;
    this.replay = spec.direction === 'in' ? new ReplayWindow(spec.replayWindow, spec.esn) : undefined;
  }

  get name(): string {
    return `${spiHex(this.spec.spi)}_${this.spec.direction === 'in' ? 'i' : 'o'}`;
  }
}

export interface PolicyChange {
  entry: SpdEntry;
  added: boolean;
}

type Listeners = { [K in keyof IpsecBackendEvents]: IpsecBackendEvents[K][] };

export class SecurityAssociationDatabase implements IpsecBackend {
  private readonly inbound = new Map<number, SadEntry>();
  private readonly outbound = new Map<number, SadEntry>();
  /** reqid → the outbound SA currently used for it. */
  private readonly activeOutbound = new Map<number, SadEntry>();
  private readonly reservedSpis = new Set<number>();
  /** SAs deleted with a grace period → the timer that removes them. */
  private readonly graceTimers = new Map<SadEntry, NodeJS.Timeout>();
  readonly spd = new SecurityPolicyDatabase();
  private readonly listeners: Listeners = { acquire: [], expire: [] };
  private readonly policyListeners: ((c: PolicyChange) => void)[] = [];
  private readonly outboundListeners: ((reqid: number) => void)[] = [];
  private readonly saListeners: ((sa: Readonly<SaSpec>) => void)[] = [];
  private readonly releaseListeners: ((spi: number) => void)[] = [];
  /** Clock in ms (tests replace it). */
  now: () => number = Date.now;

  allocateSpi(): number {
    for (;;) {
      // RFC 4303 §2.1: SPIs 1..255 are reserved by IANA, 0 is never used.
      const spi = randomInt(256, 0xffffffff) >>> 0;
      if (!this.inbound.has(spi) && !this.reservedSpis.has(spi)) {
        this.reservedSpis.add(spi);
        return spi;
      }
    }
  }

  addSa(sa: SaSpec): void {
    const table = sa.direction === 'in' ? this.inbound : this.outbound;
    if (table.has(sa.spi >>> 0)) throw new Error(`SAD: ${sa.direction}bound SA with SPI ${spiHex(sa.spi)} already installed`);
    // The AEAD context keeps its own copy of the key: IKE wipes its KEYMAT after installing.
    // Buffer.alloc, not Buffer.from: a long-lived slice of Buffer's shared pool would keep an 8 KiB slab alive.
    const spec: SaSpec = { ...sa, aead: { ...sa.aead, keyMaterial: Buffer.alloc(sa.aead.keyMaterial.length) } };
    (spec.aead.keyMaterial as Buffer).set(sa.aead.keyMaterial);
    const entry = new SadEntry(spec, this.now());
    table.set(sa.spi >>> 0, entry);
    if (sa.direction === 'in') this.reservedSpis.delete(sa.spi >>> 0);
    for (const l of this.saListeners) l(spec);
  }

  deleteSa(spi: number, direction: Direction, graceMs = 0): boolean {
    spi >>>= 0;
    const table = direction === 'in' ? this.inbound : this.outbound;
    const entry = table.get(spi);
    if (!entry) {
      // a reservation given up (its exchange failed): nothing will be installed under it
      if (direction === 'in' && this.reservedSpis.delete(spi)) for (const l of this.releaseListeners) l(spi);
      return false;
    }
    if (graceMs > 0) {
      if (entry.deleting) return true; // the first grace period stands
      entry.deleting = true;
      const timer = setTimeout(() => this.remove(entry), graceMs);
      timer.unref?.();
      this.graceTimers.set(entry, timer);
      return true;
    }
    this.remove(entry);
    return true;
  }

  private remove(entry: SadEntry): void {
    if (entry.removed) return;
    const { spec } = entry;
    clearTimeout(this.graceTimers.get(entry));
    this.graceTimers.delete(entry);
    (spec.direction === 'in' ? this.inbound : this.outbound).delete(spec.spi >>> 0);
    if (this.activeOutbound.get(spec.reqid) === entry) this.activeOutbound.delete(spec.reqid);
    entry.removed = true;
    entry.esp.ctx.destroy();
    (spec.aead.keyMaterial as Buffer).fill(0);
  }

  querySa(spi: number, direction: Direction): SaCounters | undefined {
    const entry = (direction === 'in' ? this.inbound : this.outbound).get(spi >>> 0);
    return entry ? { ...entry.counters } : undefined;
  }

  setOutboundSa(reqid: number, spi: number): void {
    const entry = this.outbound.get(spi >>> 0);
    if (!entry || entry.spec.reqid !== reqid) throw new Error(`SAD: no outbound SA ${spiHex(spi)} for reqid ${reqid}`);
    this.activeOutbound.set(reqid, entry);
    for (const l of this.outboundListeners) l(reqid);
  }

  activeOutboundSpi(reqid: number): number | undefined {
    const spi = this.activeOutbound.get(reqid)?.spec.spi;
    return spi === undefined ? undefined : spi >>> 0;
  }

  addPolicy(policy: PolicySpec): void {
    const old = this.spd.get(policy.reqid, policy.direction);
    const entry = this.spd.add(policy);
    // the new policy is announced before the old one's removal: routes are never briefly missing
    for (const l of this.policyListeners) l({ entry, added: true });
    if (old) for (const l of this.policyListeners) l({ entry: old, added: false });
  }

  deletePolicy(reqid: number, direction: Direction): boolean {
    const entry = this.spd.remove(reqid, direction);
    if (!entry) return false;
    for (const l of this.policyListeners) l({ entry, added: false });
    return true;
  }

  on<K extends keyof IpsecBackendEvents>(event: K, handler: IpsecBackendEvents[K]): void {
    (this.listeners[event] as IpsecBackendEvents[K][]).push(handler);
  }

  /** Policies added/removed (the route manager follows these). */
  onPolicyChange(listener: (c: PolicyChange) => void): void {
    this.policyListeners.push(listener);
  }

  /** An SA was installed (the key log follows these). */
  onSaAdded(listener: (sa: Readonly<SaSpec>) => void): void {
    this.saListeners.push(listener);
  }

  /** A reserved inbound SPI was released without an SA being installed under it. */
  onSpiReleased(listener: (spi: number) => void): void {
    this.releaseListeners.push(listener);
  }

  /** A CHILD_SA got (a new) outbound SA: held packets can go. */
  onOutboundReady(listener: (reqid: number) => void): void {
    this.outboundListeners.push(listener);
  }

  emitAcquire(e: AcquireEvent): void {
    for (const l of this.listeners.acquire) l(e);
  }

  private emitExpire(e: ExpireEvent): void {
    for (const l of this.listeners.expire) l(e);
  }

  // ---------------------------------------------------------------------
  // Lookups for the datapath and for status output.

  inboundSa(spi: number): SadEntry | undefined {
    return this.inbound.get(spi >>> 0);
  }
  /** Whether `spi` was allocated (for an exchange under way) and has no inbound SA yet. */
  spiReserved(spi: number): boolean {
    return this.reservedSpis.has(spi >>> 0);
  }
  outboundSaFor(reqid: number): SadEntry | undefined {
    return this.activeOutbound.get(reqid);
  }
  listSas(): SadEntry[] {
    return [...this.inbound.values(), ...this.outbound.values()];
  }
  listPolicies(): PolicySpec[] {
    return this.spd.list().map((e) => e.spec);
  }

  // ---------------------------------------------------------------------
  // Lifetimes (RFC 4301 §4.4.2.1): byte/packet limits are checked as the
  // datapath accounts traffic, time limits by `checkLifetimes` (a timer).

  /**
   * Count one packet of `bytes` (the IP packet that was protected or
   * delivered) against the SA. Returns false when the SA had already reached
   * its hard limit (it is removed now): the packet must be dropped.
   */
  account(entry: SadEntry, bytes: number, nowSeconds: number): boolean {
    const c = entry.counters;
    const l = entry.spec.lifetimes;
    // As XFRM: the hard limit is reached once that many packets/bytes went through — the next one is refused.
    if ((l.hardBytes > 0 && c.bytes >= l.hardBytes) || (l.hardPackets > 0 && c.packets >= l.hardPackets)) {
      this.expire(entry, true, l.hardPackets > 0 && c.packets >= l.hardPackets ? 'packets' : 'bytes');
      return false;
    }
    c.bytes += bytes;
    c.packets++;
    c.lastUsed = nowSeconds;
    if (!entry.softExpired && ((l.softBytes > 0 && c.bytes >= l.softBytes) || (l.softPackets > 0 && c.packets >= l.softPackets))) {
      this.expire(entry, false, l.softPackets > 0 && c.packets >= l.softPackets ? 'packets' : 'bytes');
    }
    return true;
  }

  /** The outbound sequence counter ran out (no ESN: it must not cycle): a hard expiry. */
  sequenceExhausted(entry: SadEntry): void {
    this.expire(entry, true, 'packets');
  }

  /** Raise soft/hard expiries that are due by time; call about once a second. */
  checkLifetimes(): void {
    const now = this.now();
    for (const table of [this.inbound, this.outbound]) {
      for (const entry of [...table.values()]) {
        const l = entry.spec.lifetimes;
        const age = (now - entry.installedAt) / 1000;
        if (l.hardSeconds > 0 && age >= l.hardSeconds) this.expire(entry, true, 'time');
        else if (!entry.softExpired && l.softSeconds > 0 && age >= l.softSeconds) this.expire(entry, false, 'time');
      }
    }
  }

  private expire(entry: SadEntry, hard: boolean, reason: ExpireEvent['reason']): void {
    if (entry.removed) return;
    if (entry.deleting) {
      // already deleted (by a rekey, in its grace period): the hard limit still holds, nobody is told
      if (hard) this.remove(entry);
      return;
    }
    if (hard) this.remove(entry);
    else entry.softExpired = true;
    this.emitExpire({ reqid: entry.spec.reqid, spi: entry.spec.spi, direction: entry.spec.direction, hard, reason });
  }
}
