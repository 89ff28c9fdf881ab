/**
 * IP header helpers for the ESP datapath: Internet checksums (RFC 1071),
 * IPv6 extension header walking (RFC 8200 §4), the selector of a packet for
 * SPD lookups (RFC 4301 §4.4.1.1), a minimal outer header for tunnel mode
 * (RFC 4301 §5.1.2) and the transport-mode TCP/UDP checksum repair after
 * NAT-T decapsulation (RFC 3948 §3.1.2).
 *
 * Everything reads and writes Buffers in place; nothing here throws on packet
 * contents (malformed input gives `undefined` / `false`).
 */

export const IPPROTO_HOPOPTS = 0;
export const IPPROTO_ICMP = 1;
export const IPPROTO_IPIP = 4;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_IPV6 = 41;
export const IPPROTO_ROUTING = 43;
export const IPPROTO_FRAGMENT = 44;
export const IPPROTO_ESP = 50;
export const IPPROTO_AH = 51;
export const IPPROTO_ICMPV6 = 58;
export const IPPROTO_NONE = 59;
export const IPPROTO_DSTOPTS = 60;

export const IPV4_MIN_HEADER = 20;
export const IPV6_HEADER = 40;

/** One's complement sum of [start, end) folded to 16 bits, added to `initial` (not complemented). */
export function onesComplementSum(buf: Uint8Array, start: number, end: number, initial = 0): number {
  let sum = initial;
  let i = start;
  const even = end - ((end - start) & 1);
  for (; i < even; i += 2) sum += (buf[i]! << 8) | buf[i + 1]!;
  if (i < end) sum += buf[i]! << 8;
  // at most ~2^16 words of 2^16 each: fits in a double exactly; fold
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

/** The Internet checksum (RFC 1071) of [start, end): the complement of the one's complement sum. */
export function internetChecksum(buf: Uint8Array, start: number, end: number, initial = 0): number {
  return ~onesComplementSum(buf, start, end, initial) & 0xffff;
}

/** Recompute the IPv4 header checksum of the header at `off` in place. */
export function writeIpv4HeaderChecksum(buf: Buffer, off = 0): void {
  const ihl = (buf[off]! & 0x0f) * 4;
  buf.writeUInt16BE(0, off + 10);
  buf.writeUInt16BE(internetChecksum(buf, off, off + ihl), off + 10);
}

/** True if the IPv4 header at `off` carries a correct checksum. */
export function ipv4HeaderChecksumValid(buf: Uint8Array, off = 0): boolean {
  const ihl = (buf[off]! & 0x0f) * 4;
  return onesComplementSum(buf, off, off + ihl) === 0xffff;
}

/**
 * Basic framing of an IPv4 packet: header length, total length; undefined
 * when the header does not fit, IHL < 5, or the total length is outside
 * [IHL, buf.length]. Octets after the total length (link padding) are ignored.
 */
export function ipv4Frame(buf: Uint8Array, length = buf.length): { headerLength: number; totalLength: number } | undefined {
  if (length < IPV4_MIN_HEADER || buf[0]! >> 4 !== 4) return undefined;
  const headerLength = (buf[0]! & 0x0f) * 4;
  const totalLength = (buf[2]! << 8) | buf[3]!;
  if (headerLength < IPV4_MIN_HEADER || totalLength < headerLength || totalLength > length) return undefined;
  return { headerLength, totalLength };
}

/** IPv6: total length from the Payload Length field (no jumbograms); undefined if it does not fit. */
export function ipv6TotalLength(buf: Uint8Array, length = buf.length): number | undefined {
  if (length < IPV6_HEADER || buf[0]! >> 4 !== 6) return undefined;
  const total = IPV6_HEADER + ((buf[4]! << 8) | buf[5]!);
  return total > length ? undefined : total;
}

/** Whether `nh` is an IPv6 extension header that ext-header walking steps over. */
function isSkippableExt(nh: number): boolean {
  return nh === IPPROTO_HOPOPTS || nh === IPPROTO_ROUTING || nh === IPPROTO_FRAGMENT || nh === IPPROTO_DSTOPTS || nh === IPPROTO_AH;
}

/** Length of the extension header `nh` at `off`, or -1 if it does not fit before `end`. */
function extLength(buf: Uint8Array, nh: number, off: number, end: number): number {
  if (off + 8 > end) return -1;
  let len: number;
  if (nh === IPPROTO_FRAGMENT) len = 8;
  else if (nh === IPPROTO_AH) len = (buf[off + 1]! + 2) * 4;
  else len = (buf[off + 1]! + 1) * 8;
  return off + len > end ? -1 : len;
}

/** Where an IPv6 header chain ends: the upper-layer protocol, its offset, and the offset of the Next Header field naming it. */
export interface Ipv6Chain {
  /** Protocol after the skipped extension headers. */
  protocol: number;
  /** Offset of that protocol's header. */
  offset: number;
  /** Offset of the Next Header octet that names `protocol` (6 = the fixed header). */
  nextHeaderField: number;
  /** Fragment header seen with a non-zero offset (no upper-layer header in this packet). */
  laterFragment: boolean;
}

/**
 * Walk the IPv6 extension headers (hop-by-hop, routing, fragment, destination
 * options, AH) up to the first other protocol — ESP, TCP, UDP, ICMPv6, No
 * Next Header, … — within [0, end). Undefined when a header does not fit.
 */
export function walkIpv6(buf: Uint8Array, end: number): Ipv6Chain | undefined {
  let nhField = 6;
  let nh = buf[6]!;
  let off = IPV6_HEADER;
  let laterFragment = false;
  // an extension header is at least 8 octets, so this terminates
  while (isSkippableExt(nh)) {
    const len = extLength(buf, nh, off, end);
    if (len < 0) return undefined;
    if (nh === IPPROTO_FRAGMENT && (((buf[off + 2]! << 8) | buf[off + 3]!) & 0xfff8) !== 0) laterFragment = true;
    nhField = off;
    nh = buf[off]!;
    off += len;
  }
  return { protocol: nh, offset: off, nextHeaderField: nhField, laterFragment };
}

/**
 * Where transport-mode ESP goes in an IPv6 packet (RFC 4303 §3.1.1): after
 * the hop-by-hop, routing and fragment headers. Destination options headers
 * may go either side; tunsec puts ESP after the last hop-by-hop / routing /
 * fragment header, so a destination options header in front of a routing
 * header (one for the intermediate destinations, RFC 8200 §4.1) stays in the
 * clear and one after them is protected with the upper-layer payload.
 * Returns the offset where ESP starts and the Next Header field to rewrite to
 * 50. An AH header (not used by tunsec) counts as payload.
 */
export function ipv6EspInsertion(buf: Uint8Array, end: number): { offset: number; nextHeaderField: number } | undefined {
  let nhField = 6;
  let nh = buf[6]!;
  let off = IPV6_HEADER;
  let insertAt = off;
  let insertField = nhField;
  while (nh === IPPROTO_HOPOPTS || nh === IPPROTO_ROUTING || nh === IPPROTO_FRAGMENT || nh === IPPROTO_DSTOPTS) {
    const len = extLength(buf, nh, off, end);
    if (len < 0) return undefined;
    const isDst = nh === IPPROTO_DSTOPTS;
    nhField = off;
    nh = buf[off]!;
    off += len;
    if (!isDst) {
      insertAt = off;
      insertField = nhField;
    }
  }
  return { offset: insertAt, nextHeaderField: insertField };
}

/**
 * The selector of a packet (RFC 4301 §4.4.1.1) as the SPD looks it up:
 * addresses are subarrays of the packet (no copies; format with
 * util/ip.ts formatIp when text is needed).
 *
 * Ports: TCP, UDP, SCTP, UDP-Lite carry source/destination ports. ICMP and
 * ICMPv6 have none; RFC 4301 §4.4.1.1 selects them by message type and code
 * as one 16-bit value (type in the high octet), which tunsec puts in both
 * `srcPort` and `dstPort` (`type << 8 | code`) so that a port range on either
 * side of a selector can match it — the SPD matcher must agree with this
 * choice. Ports are `null` — OPAQUE, RFC 4301 §4.4.1.3 —
 * for non-initial fragments, protocols without ports and headers cut short.
 */
export interface PacketSelector {
  family: 4 | 6;
  src: Buffer;
  dst: Buffer;
  /** Upper-layer protocol (IPv6: after the extension headers). */
  protocol: number;
  srcPort: number | null;
  dstPort: number | null;
}

const IPPROTO_SCTP = 132;
const IPPROTO_UDPLITE = 136;

function portsOf(buf: Buffer, protocol: number, off: number, end: number): [number, number] | null {
  if (protocol === IPPROTO_TCP || protocol === IPPROTO_UDP || protocol === IPPROTO_SCTP || protocol === IPPROTO_UDPLITE) {
    if (off + 4 > end) return null;
    return [buf.readUInt16BE(off), buf.readUInt16BE(off + 2)];
  }
  if (protocol === IPPROTO_ICMP || protocol === IPPROTO_ICMPV6) {
    if (off + 2 > end) return null;
    const tc = (buf[off]! << 8) | buf[off + 1]!;
    return [tc, tc];
  }
  return null;
}

/** Selector of an IPv4 or IPv6 packet; undefined when it is not one. */
export function packetSelector(buf: Buffer): PacketSelector | undefined {
  if (buf.length < 1) return undefined;
  const version = buf[0]! >> 4;
  if (version === 4) {
    const f = ipv4Frame(buf);
    if (f === undefined) return undefined;
    const protocol = buf[9]!;
    const fragOffset = buf.readUInt16BE(6) & 0x1fff;
    const ports = fragOffset === 0 ? portsOf(buf, protocol, f.headerLength, f.totalLength) : null;
    return { family: 4, src: buf.subarray(12, 16), dst: buf.subarray(16, 20), protocol, srcPort: ports?.[0] ?? null, dstPort: ports?.[1] ?? null };
  }
  if (version === 6) {
    const total = ipv6TotalLength(buf);
    if (total === undefined) return undefined;
    const chain = walkIpv6(buf, total);
    if (chain === undefined) return undefined;
    const ports = chain.laterFragment ? null : portsOf(buf, chain.protocol, chain.offset, total);
    return {
      family: 6,
      src: buf.subarray(8, 24),
      dst: buf.subarray(24, 40),
      protocol: chain.protocol,
      srcPort: ports?.[0] ?? null,
      dstPort: ports?.[1] ?? null,
    };
  }
  return undefined;
}

/** Options for the outer header of a tunnel-mode packet. */
export interface OuterHeaderOptions {
  /** Outer source and destination, 4 or 16 octets (both the same family). */
  src: Uint8Array;
  dst: Uint8Array;
  /** Octets following the header (the ESP packet). */
  payloadLength: number;
  /** Default 64. */
  ttl?: number;
  /**
   * DSCP and ECN (IPv4 TOS / IPv6 Traffic Class). Default: copied from
   * `inner` — RFC 4301 §5.1.2.1 copies the DSCP, RFC 6040 §4.1 (normal mode)
   * copies the ECN field — else 0.
   */
  tos?: number;
  /** The inner packet, for the copies above and the DF bit. */
  inner?: Uint8Array;
  /**
   * IPv4 DF (RFC 4301 §8.1 leaves it to configuration: copy, set or clear):
   * default 'copy' — from an IPv4 inner packet, set for an IPv6 inner one
   * (IPv6 is never fragmented en route), clear without an inner packet.
   */
  df?: 'copy' | 'set' | 'clear';
  /** IPv4 Identification; default a per-process counter. IPv6 flow label: default 0. */
  id?: number;
  flowLabel?: number;
  /** Protocol of the payload; default 50 (ESP). */
  protocol?: number;
}

let nextIpv4Id = 1;

function innerTos(inner: Uint8Array | undefined): number {
  if (inner === undefined || inner.length < 2) return 0;
  const v = inner[0]! >> 4;
  if (v === 4) return inner[1]!;
  if (v === 6) return ((inner[0]! & 0x0f) << 4) | (inner[1]! >> 4);
  return 0;
}

/** Octets of the outer header `buildOuterHeader` writes for an address of this length. */
export const outerHeaderLength = (addressLength: number): number => (addressLength === 4 ? IPV4_MIN_HEADER : IPV6_HEADER);

/**
 * Write a minimal outer IPv4 (20 octets, no options, checksum filled in) or
 * IPv6 (40 octets, no extension headers) header at `out[offset]`; returns its
 * length. Throws RangeError on bad arguments (caller errors, not packet data).
 */
export function buildOuterHeader(o: OuterHeaderOptions, out: Buffer, offset = 0): number {
  const tos = o.tos ?? innerTos(o.inner);
  const ttl = o.ttl ?? 64;
  const protocol = o.protocol ?? IPPROTO_ESP;
  if (o.src.length !== o.dst.length || (o.src.length !== 4 && o.src.length !== 16)) {
    throw new RangeError('outer header: src and dst must both be 4 or both 16 octets');
  }
  if (o.src.length === 4) {
    const total = IPV4_MIN_HEADER + o.payloadLength;
    if (total > 0xffff) throw new RangeError(`outer IPv4 packet of ${total} octets`);
    const innerVersion = o.inner !== undefined && o.inner.length > 0 ? o.inner[0]! >> 4 : 0;
    const mode = o.df ?? 'copy';
    const df = mode === 'set' || (mode === 'copy' && ((innerVersion === 4 && o.inner!.length >= 8 && (o.inner![6]! & 0x40) !== 0) || innerVersion === 6));
    let id = o.id;
    if (id === undefined) {
      id = nextIpv4Id;
      nextIpv4Id = (nextIpv4Id + 1) & 0xffff;
    }
    out[offset] = 0x45;
    out[offset + 1] = tos & 0xff;
    out.writeUInt16BE(total, offset + 2);
    out.writeUInt16BE(id & 0xffff, offset + 4);
    out.writeUInt16BE(df ? 0x4000 : 0, offset + 6);
    out[offset + 8] = ttl;
    out[offset + 9] = protocol;
    out.set(o.src, offset + 12);
    out.set(o.dst, offset + 16);
    writeIpv4HeaderChecksum(out, offset);
    return IPV4_MIN_HEADER;
  }
  if (o.payloadLength > 0xffff) throw new RangeError(`outer IPv6 payload of ${o.payloadLength} octets`);
  const flow = (o.flowLabel ?? 0) & 0xfffff;
  out.writeUInt32BE((0x60000000 | ((tos & 0xff) << 20) | flow) >>> 0, offset);
  out.writeUInt16BE(o.payloadLength, offset + 4);
  out[offset + 6] = protocol;
  out[offset + 7] = ttl;
  out.set(o.src, offset + 8);
  out.set(o.dst, offset + 24);
  return IPV6_HEADER;
}

/**
 * Recompute the TCP or UDP checksum of a whole (unfragmented) IPv4/IPv6
 * packet in place, from its current addresses. This is the RFC 3948 §3.1.2
 * repair for transport mode over NAT-T, done as Linux does it: rather than
 * the incremental update from the NAT-OA addresses, the checksum is computed
 * afresh, which is right whichever side(s) were translated. An IPv4 UDP
 * checksum of 0 (none, RFC 768) stays 0. Returns false (packet untouched)
 * for other protocols, fragments and malformed packets.
 */
export function fixTransportChecksum(packet: Buffer): boolean {
  if (packet.length < 1) return false;
  const version = packet[0]! >> 4;
  let protocol: number;
  let off: number;
  let end: number;
  let pseudo: number;
  if (version === 4) {
    const f = ipv4Frame(packet);
    if (f === undefined || (packet.readUInt16BE(6) & 0x3fff) !== 0) return false; // MF or offset: a fragment
    protocol = packet[9]!;
    off = f.headerLength;
    end = f.totalLength;
    pseudo = onesComplementSum(packet, 12, 20);
  } else if (version === 6) {
    const total = ipv6TotalLength(packet);
    if (total === undefined) return false;
    const chain = walkIpv6(packet, total);
    if (chain === undefined) return false;
    // a fragment header of any kind means this is not the whole datagram
    for (let o = IPV6_HEADER, nh = packet[6]!; o < chain.offset;) {
      if (nh === IPPROTO_FRAGMENT) return false;
      const len = extLength(packet, nh, o, total);
      nh = packet[o]!;
      o += len;
    }
    protocol = chain.protocol;
    off = chain.offset;
    end = total;
    pseudo = onesComplementSum(packet, 8, 40);
  } else {
    return false;
  }
  const l4Length = end - off;
  let field: number;
  if (protocol === IPPROTO_TCP) {
    if (l4Length < 20) return false;
    field = off + 16;
  } else if (protocol === IPPROTO_UDP) {
    if (l4Length < 8) return false;
    field = off + 6;
    if (version === 4 && packet.readUInt16BE(field) === 0) return true;
  } else {
    return false;
  }
  // pseudo-header: addresses + protocol + upper-layer length (RFC 793/768, RFC 8200 §8.1)
  pseudo += protocol + (l4Length & 0xffff) + Math.floor(l4Length / 0x10000);
  packet.writeUInt16BE(0, field);
  let sum = internetChecksum(packet, off, end, pseudo);
  if (protocol === IPPROTO_UDP && sum === 0) sum = 0xffff; // RFC 768: a computed 0 is sent as all ones
  packet.writeUInt16BE(sum, field);
  return true;
}

/**
 * TCP MSS clamping: if `packet` (IPv4/IPv6, whole datagram) is a TCP SYN
 * whose MSS option exceeds the MSS the IP-level `mtu` allows (mtu − IP
 * header − 20), lower it and patch the TCP checksum incrementally (RFC 1624).
 * This keeps TCP segments of flows crossing the datapath (forwarded ones,
 * which did not see the TUN MTU) from needing fragmentation after ESP.
 * Returns true if it changed the packet.
 */
export function clampTcpMss(packet: Buffer, length: number, mtu: number): boolean {
  if (length < 1) return false;
  const v = packet[0]! >> 4;
  let off: number;
  let end: number;
  let ipHeader: number;
  if (v === 4) {
    if (length < IPV4_MIN_HEADER || packet[9] !== IPPROTO_TCP || (packet.readUInt16BE(6) & 0x1fff) !== 0) return false;
    off = (packet[0]! & 0x0f) * 4;
    end = Math.min(length, packet.readUInt16BE(2));
    ipHeader = IPV4_MIN_HEADER;
  } else if (v === 6) {
    // only a TCP header right after the fixed header (SYNs carry no extension headers in practice)
    if (length < IPV6_HEADER || packet[6] !== IPPROTO_TCP) return false;
    off = IPV6_HEADER;
    end = Math.min(length, IPV6_HEADER + packet.readUInt16BE(4));
    ipHeader = IPV6_HEADER;
  } else {
    return false;
  }
  if (off + 20 > end || (packet[off + 13]! & 0x02) === 0) return false; // not a SYN
  const dataOffset = (packet[off + 12]! >> 4) * 4;
  if (dataOffset < 20 || off + dataOffset > end) return false;
  const limit = mtu - ipHeader - 20;
  if (limit <= 0) return false;
  for (let o = off + 20; o < off + dataOffset;) {
    const kind = packet[o]!;
    if (kind === 0) break; // end of options
    if (kind === 1) {
      o++;
      continue;
    }
    if (o + 1 >= off + dataOffset) break;
    const len = packet[o + 1]!;
    if (len < 2 || o + len > off + dataOffset) break;
    if (kind === 2 && len === 4) {
      const mss = packet.readUInt16BE(o + 2);
      if (mss <= limit) return false;
      packet.writeUInt16BE(limit, o + 2);
      // RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m'), when the MSS value is a 16-bit word of
      // the checksummed data (even offset in the segment); otherwise recompute the sum.
      if ((o - off) % 2 === 0) {
        let sum = (~packet.readUInt16BE(off + 16) & 0xffff) + (~mss & 0xffff) + limit;
        sum = (sum & 0xffff) + (sum >>> 16);
        sum = (sum & 0xffff) + (sum >>> 16);
        packet.writeUInt16BE(~sum & 0xffff, off + 16);
      } else {
        fixTransportChecksum(packet.subarray(0, end));
      }
      return true;
    }
    o += len;
  }
  return false;
}
