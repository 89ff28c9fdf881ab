/**
 * One traffic selector range (RFC 7296 §3.13.1, RFC 4301 §4.4.1.1): an IP
 * protocol, an address range of one family and a port range, and the set
 * operations negotiation needs — intersection (§2.9 narrowing) and
 * containment.
 *
 * Semantics, as RFC 4301 defines the selector values:
 * - protocol 0 is ANY and matches every protocol; any other number only itself;
 * - ports 0-65535 are ANY, which also matches OPAQUE (start 65535, end 0:
 *   "the port is not available", e.g. non-initial fragments); OPAQUE matches
 *   only OPAQUE and ANY; any other range needs start ≤ end;
 * - for ICMP and ICMPv6 the 16-bit "port" is Type·256 + Code (§3.13.1) and is
 *   compared like a port.
 *
 * Internally every range is a box in three dimensions (protocol, port,
 * address) of one family, so intersection and containment are plain interval
 * arithmetic: ANY protocol is [0, 255]; ANY ports are [0, 65536] where 65536
 * stands for OPAQUE, and OPAQUE alone is [65536, 65536].
 */
import { bigIntToBytes, bytesToBigInt, formatIp } from '../../util/ip.js';

/** A traffic selector range; addresses are 4 (IPv4) or 16 (IPv6) octets, both of one family. */
export interface TsRange {
  /** IP protocol number, 0 = any. */
  readonly protocol: number;
  readonly startAddress: Buffer;
  readonly endAddress: Buffer;
  /** 0-65535 is any port; start 65535 with end 0 is OPAQUE. */
  readonly startPort: number;
  readonly endPort: number;
}

export type Family = 4 | 6;

export const ANY_PROTOCOL = 0;
export const IPPROTO_ICMP = 1;
export const IPPROTO_ICMPV6 = 58;

/** Internal stand-in for the OPAQUE port value, one past the last real port. */
const OPAQUE = 0x10000;

/** A range as intervals; `fam` separates IPv4 from IPv6, which never overlap. */
export interface Box {
  readonly fam: Family;
  readonly p0: number;
  readonly p1: number;
  readonly q0: number;
  readonly q1: number;
  readonly a0: bigint;
  readonly a1: bigint;
}

export function familyOf(r: TsRange): Family {
  return r.startAddress.length === 4 ? 4 : 6;
}

export function isAnyPort(r: Pick<TsRange, 'startPort' | 'endPort'>): boolean {
  return r.startPort === 0 && r.endPort === 0xffff;
}

export function isOpaquePort(r: Pick<TsRange, 'startPort' | 'endPort'>): boolean {
  return r.startPort === 0xffff && r.endPort === 0;
}

export function bigIntToAddress(n: bigint, family: Family): Buffer {
  return bigIntToBytes(n, family === 4 ? 4 : 16);
}

/**
 * Why `r` is not a usable range, or undefined if it is: addresses of one
 * family (4 or 16 octets) with start ≤ end, protocol 0-255, ports 0-65535
 * with start ≤ end unless OPAQUE.
 */
export function rangeProblem(r: TsRange): string | undefined {
  const len = r.startAddress.length;
  if ((len !== 4 && len !== 16) || r.endAddress.length !== len) return 'addresses are not both IPv4 or both IPv6';
  if (Buffer.compare(r.startAddress, r.endAddress) > 0) return 'the address range ends before it starts';
  if (!Number.isInteger(r.protocol) || r.protocol < 0 || r.protocol > 255) return `protocol ${r.protocol} is not 0-255`;
  for (const p of [r.startPort, r.endPort]) {
    if (!Number.isInteger(p) || p < 0 || p > 0xffff) return `port ${p} is not 0-65535`;
  }
  if (r.startPort > r.endPort && !isOpaquePort(r)) return `the port range ${r.startPort}-${r.endPort} ends before it starts`;
  return undefined;
}

export function toBox(r: TsRange): Box {
  const any = r.protocol === ANY_PROTOCOL;
  let q0 = r.startPort;
  let q1 = r.endPort;
  if (isAnyPort(r)) q1 = OPAQUE;
  else if (isOpaquePort(r)) q0 = q1 = OPAQUE;
  return {
    fam: familyOf(r),
    p0: any ? 0 : r.protocol,
    p1: any ? 255 : r.protocol,
    q0,
    q1,
    a0: bytesToBigInt(r.startAddress),
    a1: bytesToBigInt(r.endAddress),
  };
}

/** Back from a box produced by intersecting boxes of real ranges. */
export function fromBox(b: Box): TsRange {
  let startPort = b.q0;
  let endPort = b.q1;
  if (b.q0 === OPAQUE) {
    startPort = 0xffff;
    endPort = 0;
  } else if (b.q1 === OPAQUE) {
    endPort = 0xffff;
  }
  return {
    protocol: b.p0 === 0 && b.p1 === 255 ? ANY_PROTOCOL : b.p0,
    startAddress: bigIntToAddress(b.a0, b.fam),
    endAddress: bigIntToAddress(b.a1, b.fam),
    startPort,
    endPort,
  };
}

export function intersectBoxes(x: Box, y: Box): Box | undefined {
  if (x.fam !== y.fam) return undefined;
  const p0 = Math.max(x.p0, y.p0);
  const p1 = Math.min(x.p1, y.p1);
  const q0 = Math.max(x.q0, y.q0);
  const q1 = Math.min(x.q1, y.q1);
  const a0 = x.a0 > y.a0 ? x.a0 : y.a0;
  const a1 = x.a1 < y.a1 ? x.a1 : y.a1;
  if (p0 > p1 || q0 > q1 || a0 > a1) return undefined;
  return { fam: x.fam, p0, p1, q0, q1, a0, a1 };
}

export function boxContains(outer: Box, inner: Box): boolean {
  return (
    outer.fam === inner.fam &&
    outer.p0 <= inner.p0 &&
    inner.p1 <= outer.p1 &&
    outer.q0 <= inner.q0 &&
    inner.q1 <= outer.q1 &&
    outer.a0 <= inner.a0 &&
    inner.a1 <= outer.a1
  );
}

export function boxKey(b: Box): string {
  return `${b.fam}|${b.p0}-${b.p1}|${b.q0}-${b.q1}|${b.a0.toString(16)}-${b.a1.toString(16)}`;
}

/**
 * The traffic both ranges select (RFC 7296 §2.9), or undefined if none:
 * the overlap of the address ranges, of the port ranges (OPAQUE ∩ ANY is
 * OPAQUE), and the more specific protocol when one of them is ANY.
 */
export function intersectRanges(a: TsRange, b: TsRange): TsRange | undefined {
  const box = intersectBoxes(toBox(a), toBox(b));
  return box === undefined ? undefined : fromBox(box);
}

/** Whether every packet `inner` selects is also selected by `outer`. */
export function rangeContains(outer: TsRange, inner: TsRange): boolean {
  return boxContains(toBox(outer), toBox(inner));
}

export function sameRange(a: TsRange, b: TsRange): boolean {
  return boxKey(toBox(a)) === boxKey(toBox(b));
}

/** A single host address, e.g. 10.0.0.1 → 10.0.0.1-10.0.0.1 (any protocol and port unless given). */
export function hostRange(address: Buffer, options: { protocol?: number; startPort?: number; endPort?: number } = {}): TsRange {
  return {
    protocol: options.protocol ?? ANY_PROTOCOL,
    startAddress: Buffer.from(address),
    endAddress: Buffer.from(address),
    startPort: options.startPort ?? 0,
    endPort: options.endPort ?? 0xffff,
  };
}

/** The prefix length if the range is exactly one CIDR prefix. */
function prefixLength(r: TsRange): number | undefined {
  const bits = r.startAddress.length * 8;
  const a0 = bytesToBigInt(r.startAddress);
  const size = bytesToBigInt(r.endAddress) - a0 + 1n;
  if (size <= 0n || (size & (size - 1n)) !== 0n || a0 % size !== 0n) return undefined;
  return bits - (size.toString(2).length - 1);
}

const PROTOCOL_NAMES: Readonly<Record<number, string>> = {
  1: 'icmp',
  6: 'tcp',
  17: 'udp',
  47: 'gre',
  50: 'esp',
  51: 'ah',
  58: 'ipv6-icmp',
  132: 'sctp',
};

/**
 * swanctl-like text for logs and messages: `10.0.0.0/24`,
 * `10.0.0.1-10.0.0.9[tcp/80]`, `fd00::/64[udp/1024-2047]`, `0.0.0.0/0[any/opaque]`.
 * ICMP "ports" are printed as the raw Type·256+Code values.
 */
export function formatRange(r: TsRange): string {
  const bits = prefixLength(r);
  const net = bits === undefined ? `${formatIp(r.startAddress)}-${formatIp(r.endAddress)}` : `${formatIp(r.startAddress)}/${bits}`;
  if (r.protocol === ANY_PROTOCOL && isAnyPort(r)) return net;
  const proto = PROTOCOL_NAMES[r.protocol] ?? (r.protocol === ANY_PROTOCOL ? 'any' : String(r.protocol));
  if (isAnyPort(r)) return `${net}[${proto}]`;
  const ports = isOpaquePort(r) ? 'opaque' : r.startPort === r.endPort ? `${r.startPort}` : `${r.startPort}-${r.endPort}`;
  return `${net}[${proto}/${ports}]`;
}

export function formatRanges(set: readonly TsRange[]): string {
  return set.length === 0 ? '(none)' : set.map(formatRange).join(', ');
}
