/**
 * The Security Policy Database (RFC 4301 §4.4.1): ordered policies whose
 * selectors decide, per packet, protect / bypass / discard — and the
 * selector matching the inbound policy check (RFC 4301 §5.2) shares.
 *
 * Selectors are compiled once (addresses as octets of one family, ports as
 * numbers) and matched against a `FlowKey` read straight from the packet
 * octets, so a lookup allocates nothing. Selector semantics:
 *  - protocol 0 = any;
 *  - a port range of 0..65535 = ANY: it also matches packets whose ports are
 *    OPAQUE (non-initial fragments, protocols without ports, RFC 4301
 *    §4.4.1.3); a narrower range needs a known port inside it;
 *  - start port > end port is OPAQUE (RFC 7296 §3.13.1): only packets whose
 *    ports are OPAQUE match it;
 *  - ICMP / ICMPv6 "ports" are type << 8 | code (RFC 7296 §3.13.1), carried
 *    on both sides of the flow (see ip.ts packetSelector).
 * Outbound, the packet's source matches the policy's local selectors and its
 * destination the remote ones; inbound (decrypted packets) the other way
 * round.
 */
import { addressOctets } from './addresses.js';
import type { Direction, PolicySpec, TrafficSelector } from './api.js';
import {
  IPPROTO_AH,
  IPPROTO_DSTOPTS,
  IPPROTO_FRAGMENT,
  IPPROTO_HOPOPTS,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_ROUTING,
  IPPROTO_TCP,
  IPPROTO_UDP,
} from './ip.js';

const IPPROTO_SCTP = 132;
const IPPROTO_UDPLITE = 136;

export interface CompiledSelector {
  readonly family: 4 | 6;
  readonly protocol: number;
  readonly start: Buffer;
  readonly end: Buffer;
  readonly startPort: number;
  readonly endPort: number;
  /** 0..65535: matches OPAQUE ports too. */
  readonly anyPort: boolean;
  /** start > end (IKEv2's OPAQUE, RFC 7296 §3.13.1): matches only packets whose ports are OPAQUE. */
  readonly opaquePort: boolean;
}

export function compileSelector(ts: TrafficSelector): CompiledSelector {
  const start = addressOctets(ts.startAddress);
  const end = addressOctets(ts.endAddress);
  if (!start || !end || start.length !== end.length) throw new Error(`SPD: bad selector addresses ${ts.startAddress}-${ts.endAddress}`);
  return {
    family: start.length === 4 ? 4 : 6,
    protocol: ts.protocol,
    start,
    end,
    startPort: ts.startPort,
    endPort: ts.endPort,
    anyPort: ts.startPort === 0 && ts.endPort === 0xffff,
    opaquePort: ts.startPort > ts.endPort,
  };
}

/** -1 / 0 / 1 comparing buf[off, off + ref.length) with ref. */
function compareAt(buf: Uint8Array, off: number, ref: Uint8Array): number {
  for (let i = 0; i < ref.length; i++) {
    const d = buf[off + i]! - ref[i]!;
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

/** Whether the address at buf[off] (of the selector's family) and `port` (-1 = OPAQUE) fall in the selector. */
export function selectorMatches(sel: CompiledSelector, family: 4 | 6, protocol: number, buf: Uint8Array, off: number, port: number): boolean {
  if (sel.family !== family) return false;
  if (sel.protocol !== 0 && sel.protocol !== protocol) return false;
  if (sel.opaquePort) {
    if (port >= 0) return false;
  } else if (!sel.anyPort && (port < sel.startPort || port > sel.endPort)) {
    return false;
  }
  return compareAt(buf, off, sel.start) >= 0 && compareAt(buf, off, sel.end) <= 0;
}

/**
 * The selector fields of one packet, read in place (RFC 4301 §4.4.1.1): a
 * mutable object the datapath reuses for every packet. Ports are -1 when
 * OPAQUE.
 */
export class FlowKey {
  family: 4 | 6 = 4;
  buf: Uint8Array = new Uint8Array(0);
  srcOff = 0;
  dstOff = 0;
  protocol = 0;
  srcPort = -1;
  dstPort = -1;

  /** Fill from an IPv4/IPv6 packet; false (key unusable) if it is not a well-formed one. */
  read(buf: Uint8Array, length = buf.length): boolean {
    if (length < 1) return false;
    const version = buf[0]! >> 4;
    let l4: number;
    let total: number;
    let laterFragment: boolean;
    if (version === 4) {
      if (length < 20) return false;
      const ihl = (buf[0]! & 0x0f) * 4;
      total = (buf[2]! << 8) | buf[3]!;
      if (ihl < 20 || total < ihl || total > length) return false;
      this.family = 4;
      this.srcOff = 12;
      this.dstOff = 16;
      this.protocol = buf[9]!;
      laterFragment = (((buf[6]! << 8) | buf[7]!) & 0x1fff) !== 0;
      l4 = ihl;
    } else if (version === 6) {
      if (length < 40) return false;
      total = 40 + ((buf[4]! << 8) | buf[5]!);
      if (total > length) return false;
      this.family = 6;
      this.srcOff = 8;
      this.dstOff = 24;
      let nh = buf[6]!;
      let off = 40;
      laterFragment = false;
      while (nh === IPPROTO_HOPOPTS || nh === IPPROTO_ROUTING || nh === IPPROTO_FRAGMENT || nh === IPPROTO_DSTOPTS || nh === IPPROTO_AH) {
        if (off + 8 > total) return false;
        const len = nh === IPPROTO_FRAGMENT ? 8 : nh === IPPROTO_AH ? (buf[off + 1]! + 2) * 4 : (buf[off + 1]! + 1) * 8;
        if (off + len > total) return false;
        if (nh === IPPROTO_FRAGMENT && (((buf[off + 2]! << 8) | buf[off + 3]!) & 0xfff8) !== 0) laterFragment = true;
        nh = buf[off]!;
        off += len;
      }
      this.protocol = nh;
      l4 = off;
    } else {
      return false;
    }
    this.buf = buf;
    this.srcPort = -1;
    this.dstPort = -1;
    if (!laterFragment) {
      const p = this.protocol;
      if (p === IPPROTO_TCP || p === IPPROTO_UDP || p === IPPROTO_SCTP || p === IPPROTO_UDPLITE) {
        if (l4 + 4 <= total) {
          this.srcPort = (buf[l4]! << 8) | buf[l4 + 1]!;
          this.dstPort = (buf[l4 + 2]! << 8) | buf[l4 + 3]!;
        }
      } else if (p === IPPROTO_ICMP || p === IPPROTO_ICMPV6) {
        if (l4 + 2 <= total) this.srcPort = this.dstPort = (buf[l4]! << 8) | buf[l4 + 1]!;
      }
    }
    return true;
  }

  /**
   * Whether this flow lies inside the selectors, with `local` matched
   * against the source for `out` and against the destination for `in`.
   */
  matches(local: readonly CompiledSelector[], remote: readonly CompiledSelector[], direction: Direction): boolean {
    const out = direction === 'out';
    const localOff = out ? this.srcOff : this.dstOff;
    const localPort = out ? this.srcPort : this.dstPort;
    const remoteOff = out ? this.dstOff : this.srcOff;
    const remotePort = out ? this.dstPort : this.srcPort;
    let ok = false;
    for (const s of local) {
      if (selectorMatches(s, this.family, this.protocol, this.buf, localOff, localPort)) {
        ok = true;
        break;
      }
    }
    if (!ok) return false;
    for (const s of remote) if (selectorMatches(s, this.family, this.protocol, this.buf, remoteOff, remotePort)) return true;
    return false;
  }
}

/** `FlowCache.get` when the flow is not cached. */
export const FLOW_CACHE_MISS: unique symbol = Symbol('flow cache miss');

/** Slots of a FlowCache (a power of two). */
const FLOW_CACHE_SLOTS = 1024;
/** Key octets per slot: source and destination address (16 each), ports (2 each). */
const FLOW_KEY = 36;

/**
 * What the SPD said about recent flows (RFC 4301 §4.4.1: the decision depends on the selector
 * fields only — family, addresses, protocol, ports), direct-mapped by a hash of them, so a bulk
 * flow costs a hash and a compare per packet instead of a walk of the ordered policies. Nothing
 * is ever stale: the owner empties it (`clear`) on every SPD or SAD change. A slot holds
 * the key octets in place: no allocation per packet, negative answers (no policy) cached too.
 */
export class FlowCache<T> {
  private readonly keys = new Uint8Array(FLOW_CACHE_SLOTS * FLOW_KEY);
  /** Per slot: generation it was written in (0 = never), and family << 8 | protocol. */
  private readonly meta = new Uint32Array(FLOW_CACHE_SLOTS * 2);
  private readonly values = new Array<T | undefined>(FLOW_CACHE_SLOTS).fill(undefined);
  private generation = 1;
  hits = 0;
  misses = 0;

  clear(): void {
    this.generation++;
    if (this.generation > 0xfffffff0) {
      this.meta.fill(0);
      this.generation = 1;
    }
    this.values.fill(undefined);
  }

  private slot(flow: FlowKey): number {
    const len = flow.family === 4 ? 4 : 16;
    const b = flow.buf;
    // FNV-1a over the selector fields
    let h = (0x811c9dc5 ^ flow.protocol ^ (flow.family << 8)) >>> 0;
    for (let i = 0; i < len; i++) h = Math.imul(h ^ b[flow.srcOff + i]!, 0x01000193);
    for (let i = 0; i < len; i++) h = Math.imul(h ^ b[flow.dstOff + i]!, 0x01000193);
    h = Math.imul(h ^ (flow.srcPort & 0xffff), 0x01000193);
    h = Math.imul(h ^ (flow.dstPort & 0xffff) ^ ((flow.srcPort >>> 31) << 17), 0x01000193);
    return (h ^ (h >>> 16)) & (FLOW_CACHE_SLOTS - 1);
  }

  private keyMatches(flow: FlowKey, slot: number): boolean {
    const m = slot * 2;
    if (this.meta[m] !== this.generation || this.meta[m + 1] !== ((flow.family << 8) | flow.protocol)) return false;
    const k = this.keys;
    const o = slot * FLOW_KEY;
    const len = flow.family === 4 ? 4 : 16;
    const b = flow.buf;
    for (let i = 0; i < len; i++) if (k[o + i] !== b[flow.srcOff + i] || k[o + 16 + i] !== b[flow.dstOff + i]) return false;
    // ports: -1 (OPAQUE) is told apart from 65535 by portsOpaque
    return (
      k[o + 32] === ((flow.srcPort >> 8) & 0xff) &&
      k[o + 33] === (flow.srcPort & 0xff) &&
      k[o + 34] === ((flow.dstPort >> 8) & 0xff) &&
      k[o + 35] === (flow.dstPort & 0xff) &&
      this.portsOpaque[slot] === (flow.srcPort < 0 ? 1 : 0) + (flow.dstPort < 0 ? 2 : 0)
    );
  }

  private readonly portsOpaque = new Uint8Array(FLOW_CACHE_SLOTS);

  /** The cached answer for `flow` (possibly undefined: no policy), or FLOW_CACHE_MISS. */
  get(flow: FlowKey): T | undefined | typeof FLOW_CACHE_MISS {
    const slot = this.slot(flow);
    if (!this.keyMatches(flow, slot)) {
      this.misses++;
      return FLOW_CACHE_MISS;
    }
    this.hits++;
    return this.values[slot];
  }

  set(flow: FlowKey, value: T | undefined): void {
    const slot = this.slot(flow);
    const k = this.keys;
    const o = slot * FLOW_KEY;
    const len = flow.family === 4 ? 4 : 16;
    const b = flow.buf;
    for (let i = 0; i < len; i++) {
      k[o + i] = b[flow.srcOff + i]!;
      k[o + 16 + i] = b[flow.dstOff + i]!;
    }
    k[o + 32] = (flow.srcPort >> 8) & 0xff;
    k[o + 33] = flow.srcPort & 0xff;
    k[o + 34] = (flow.dstPort >> 8) & 0xff;
    k[o + 35] = flow.dstPort & 0xff;
    this.portsOpaque[slot] = (flow.srcPort < 0 ? 1 : 0) + (flow.dstPort < 0 ? 2 : 0);
    this.meta[slot * 2] = this.generation;
    this.meta[slot * 2 + 1] = (flow.family << 8) | flow.protocol;
    this.values[slot] = value;
  }
}

/** A policy with its selectors compiled; `state` is for the datapath (hold queue, acquire timing). */
export interface SpdEntry {
  readonly spec: Readonly<PolicySpec>;
  readonly local: readonly CompiledSelector[];
  readonly remote: readonly CompiledSelector[];
  /** Insertion sequence: ties in priority keep insertion order. */
  readonly order: number;
}

export function compilePolicy(spec: PolicySpec, order: number): SpdEntry {
  return { spec, local: spec.local.map(compileSelector), remote: spec.remote.map(compileSelector), order };
}

/** Ordered policies of one direction each; one policy per (reqid, direction). */
export class SecurityPolicyDatabase {
  private readonly lists: Record<Direction, SpdEntry[]> = { in: [], out: [] };
  private order = 0;

  /** Install or replace the policy of (reqid, direction). Throws on unusable selectors. */
  add(spec: PolicySpec): SpdEntry {
    const entry = compilePolicy(spec, this.order++);
    this.remove(spec.reqid, spec.direction);
    const list = this.lists[spec.direction];
    list.push(entry);
    list.sort((a, b) => a.spec.priority - b.spec.priority || a.order - b.order);
    return entry;
  }

  remove(reqid: number, direction: Direction): SpdEntry | undefined {
    const list = this.lists[direction];
    const i = list.findIndex((p) => p.spec.reqid === reqid);
    if (i < 0) return undefined;
    return list.splice(i, 1)[0];
  }

  get(reqid: number, direction: Direction): SpdEntry | undefined {
    return this.lists[direction].find((p) => p.spec.reqid === reqid);
  }

  /** The first policy (by priority) whose selectors contain the flow. */
  lookup(flow: FlowKey, direction: Direction): SpdEntry | undefined {
    for (const p of this.lists[direction]) if (flow.matches(p.local, p.remote, direction)) return p;
    return undefined;
  }

  list(direction?: Direction): readonly SpdEntry[] {
    return direction ? this.lists[direction] : [...this.lists.out, ...this.lists.in];
  }
}
