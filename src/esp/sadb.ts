/**
 * The SAD and SPD as data (RFC 4301 §4.4): what IKE installed, keyed the way
 * the datapath looks it up — inbound SAs by SPI, outbound SAs by reqid,
 * policies by (reqid, direction) in priority order. The packet path (ESP
 * encap/decap, TUN) builds on this store; IKE reaches it only through the
 * IpsecBackend interface.
 */
import { randomInt } from 'node:crypto';
import type {
  Direction,
  IpsecBackend,
  IpsecBackendEvents,
  PolicySpec,
  SaCounters,
  SaSpec,
} from './api.js';

export interface SadEntry {
  spec: Readonly<SaSpec>;
  counters: SaCounters;
  installedAt: number;
}

const zeroCounters = (): SaCounters => ({ bytes: 0, packets: 0, replayDrops: 0, icvFailures: 0, badPadding: 0, policyDrops: 0, lastUsed: 0 });

export class SecurityAssociationDatabase implements IpsecBackend {
  private readonly inbound = new Map<number, SadEntry>();
  private readonly outbound = new Map<number, SadEntry>();
  /** reqid → SPI of the outbound SA currently used for it. */
  private readonly activeOutbound = new Map<number, number>();
  private readonly reservedSpis = new Set<number>();
  private readonly policies: PolicySpec[] = [];
  private handlers: Partial<IpsecBackendEvents> = {};

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
    if (table.has(sa.spi)) throw new Error(`SAD: ${sa.direction}bound SA with SPI ${sa.spi.toString(16)} already installed`);
    // The backend keeps its own copy of the key material: IKE wipes its KEYMAT after installing.
    const spec: SaSpec = { ...sa, aead: { ...sa.aead, keyMaterial: Buffer.from(sa.aead.keyMaterial) } };
    table.set(sa.spi, { spec, counters: zeroCounters(), installedAt: Date.now() });
    if (sa.direction === 'in') this.reservedSpis.delete(sa.spi);
  }

  deleteSa(spi: number, direction: Direction): boolean {
    const table = direction === 'in' ? this.inbound : this.outbound;
    const entry = table.get(spi);
    if (!entry) {
      if (direction === 'in') this.reservedSpis.delete(spi);
      return false;
    }
    (entry.spec.aead.keyMaterial as Buffer).fill(0);
    table.delete(spi);
    if (direction === 'out' && this.activeOutbound.get(entry.spec.reqid) === spi) this.activeOutbound.delete(entry.spec.reqid);
    return true;
  }

  querySa(spi: number, direction: Direction): SaCounters | undefined {
    const entry = (direction === 'in' ? this.inbound : this.outbound).get(spi);
    return entry ? { ...entry.counters } : undefined;
  }

  setOutboundSa(reqid: number, spi: number): void {
    const entry = this.outbound.get(spi);
    if (!entry || entry.spec.reqid !== reqid) throw new Error(`SAD: no outbound SA ${spi.toString(16)} for reqid ${reqid}`);
    this.activeOutbound.set(reqid, spi);
  }

  addPolicy(policy: PolicySpec): void {
    this.deletePolicy(policy.reqid, policy.direction);
    this.policies.push(policy);
    this.policies.sort((a, b) => a.priority - b.priority);
  }

  deletePolicy(reqid: number, direction: Direction): boolean {
    const i = this.policies.findIndex((p) => p.reqid === reqid && p.direction === direction);
    if (i < 0) return false;
    this.policies.splice(i, 1);
    return true;
  }

  on<K extends keyof IpsecBackendEvents>(event: K, handler: IpsecBackendEvents[K]): void {
    this.handlers[event] = handler;
  }

  // Lookups for the datapath and for status output.
  inboundSa(spi: number): SadEntry | undefined {
    return this.inbound.get(spi);
  }
  outboundSaFor(reqid: number): SadEntry | undefined {
    const spi = this.activeOutbound.get(reqid);
    return spi === undefined ? undefined : this.outbound.get(spi);
  }
  listSas(): SadEntry[] {
    return [...this.inbound.values(), ...this.outbound.values()];
  }
  listPolicies(): readonly PolicySpec[] {
    return this.policies;
  }
}
