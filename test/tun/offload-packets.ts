/**
 * Crafting IPv4/IPv6 TCP/UDP packets and virtio_net_hdrs for the offload tests, with a checksum
 * written here from RFC 1071 (one 16-bit word at a time), independent of the addon's.
 */

/** RFC 1071 one's-complement sum of buf[start, end) as big-endian words, folded (not complemented). */
export function onesSum(buf: Uint8Array, start = 0, end = buf.length, initial = 0): number {
  let s = initial;
  for (let i = start; i < end; i += 2) s += (buf[i]! << 8) | (i + 1 < end ? buf[i + 1]! : 0);
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

export const isV6 = (ip: Uint8Array): boolean => ip[0]! >> 4 === 6;

/** Pseudo-header sum (RFC 9293 §3.1, RFC 8200 §8.1) of `ip` for an upper-layer length. */
export function pseudoSum(ip: Uint8Array, proto: number, l4len: number): number {
  const addrs = isV6(ip) ? ip.subarray(8, 40) : ip.subarray(12, 20);
  return onesSum(addrs, 0, addrs.length, proto + l4len);
}

/** Whether the IPv4 header checksum of `ip` verifies. */
export const ipv4HeaderValid = (ip: Uint8Array): boolean => onesSum(ip, 0, (ip[0]! & 0x0f) * 4) === 0xffff;

/** Offset of the L4 header (IPv4 header length, or 40: no IPv6 extension headers). */
export const l4Offset = (ip: Uint8Array): number => (isV6(ip) ? 40 : (ip[0]! & 0x0f) * 4);

/** Whether the TCP/UDP checksum of `ip` (L4 at l4Offset) verifies. */
export function l4ChecksumValid(ip: Uint8Array, proto: number): boolean {
  const off = l4Offset(ip);
  return onesSum(ip, off, ip.length, pseudoSum(ip, proto, ip.length - off)) === 0xffff;
}

export interface TcpSpec {
  seq: number;
  ack?: number;
  flags?: number;
  window?: number;
  sport?: number;
  dport?: number;
  options?: Uint8Array;
  payload: Uint8Array;
}

export interface IpSpec {
  v6?: boolean;
  /** IPv4 TOS / IPv6 traffic class (ECN in the low two bits). */
  tos?: number;
  id?: number;
  ttl?: number;
  /** IPv4 options (padded to 4 octets by the caller). */
  ipOptions?: Uint8Array;
  /** IPv6: a Hop-by-Hop options header (8 octets, PadN) in front of the L4 header. */
  hopByHop?: boolean;
  src?: Uint8Array;
  dst?: Uint8Array;
}

export const TCP_FIN = 0x01;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_ECE = 0x40;
export const TCP_CWR = 0x80;
export const ECN_CE = 0x03;
export const ECN_ECT0 = 0x02;

const V4_SRC = Uint8Array.from([10, 0, 0, 1]);
const V4_DST = Uint8Array.from([10, 0, 0, 2]);
const V6_SRC = Uint8Array.from([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
const V6_DST = Uint8Array.from([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);

/** An IP packet around `l4` (protocol `proto`), IPv4 header checksum filled. */
export function ipPacket(ip: IpSpec, proto: number, l4: Uint8Array): Buffer {
  if (ip.v6) {
    const ext = ip.hopByHop ? 8 : 0;
    const p = Buffer.alloc(40 + ext + l4.length);
    const tc = ip.tos ?? 0;
    p[0] = 0x60 | (tc >> 4);
    p[1] = ((tc & 0x0f) << 4) | 0x0a; // flow label 0xa1234
    p.writeUInt16BE(0x1234, 2);
    p.writeUInt16BE(ext + l4.length, 4);
    p[6] = ip.hopByHop ? 0 : proto;
    p[7] = ip.ttl ?? 64;
    p.set(ip.src ?? V6_SRC, 8);
    p.set(ip.dst ?? V6_DST, 24);
    if (ip.hopByHop) {
      p[40] = proto;
      p[41] = 0; // 8 octets
      p[42] = 1; // PadN
      p[43] = 4;
    }
    p.set(l4, 40 + ext);
    return p;
  }
  const opts = ip.ipOptions ?? new Uint8Array(0);
  const ihl = 20 + opts.length;
  const p = Buffer.alloc(ihl + l4.length);
  p[0] = 0x40 | (ihl / 4);
  p[1] = ip.tos ?? 0;
  p.writeUInt16BE(p.length, 2);
  p.writeUInt16BE(ip.id ?? 0x1000, 4);
  p[6] = 0x40; // DF
  p[8] = ip.ttl ?? 64;
  p[9] = proto;
  p.set(ip.src ?? V4_SRC, 12);
  p.set(ip.dst ?? V4_DST, 16);
  p.set(opts, 20);
  p.set(l4, ihl);
  p.writeUInt16BE(0xffff - onesSum(p, 0, ihl), 10);
  return p;
}

function tcpHeader(t: TcpSpec): Buffer {
  const opts = t.options ?? new Uint8Array(0);
  const h = Buffer.alloc(20 + opts.length + t.payload.length);
  h.writeUInt16BE(t.sport ?? 40000, 0);
  h.writeUInt16BE(t.dport ?? 5201, 2);
  h.writeUInt32BE(t.seq >>> 0, 4);
  h.writeUInt32BE((t.ack ?? 0x10203040) >>> 0, 8);
  h[12] = ((20 + opts.length) / 4) << 4;
  h[13] = t.flags ?? TCP_ACK;
  h.writeUInt16BE(t.window ?? 502, 14);
  h.set(opts, 20);
  h.set(t.payload, 20 + opts.length);
  return h;
}

/** A TCP packet with a correct checksum (or, with `partial`, the pseudo-header seed of TUN_F_CSUM). */
export function tcpPacket(ip: IpSpec, t: TcpSpec, partial = false): Buffer {
  const p = ipPacket(ip, 6, tcpHeader(t));
  const off = ip.v6 ? 40 + (ip.hopByHop ? 8 : 0) : (p[0]! & 0x0f) * 4;
  const pseudo = onesSum(ip.v6 ? p.subarray(8, 40) : p.subarray(12, 20), 0, ip.v6 ? 32 : 8, 6 + p.length - off);
  p.writeUInt16BE(partial ? pseudo : 0xffff - onesSum(p, off, p.length, pseudo), off + 16);
  return p;
}

/** A UDP packet with a correct checksum (or the pseudo-header seed with `partial`). */
export function udpPacket(ip: IpSpec, payload: Uint8Array, partial = false): Buffer {
  const u = Buffer.alloc(8 + payload.length);
  u.writeUInt16BE(4500, 0);
  u.writeUInt16BE(4501, 2);
  u.writeUInt16BE(u.length, 4);
  u.set(payload, 8);
  const p = ipPacket(ip, 17, u);
  const off = l4Offset(p);
  const pseudo = pseudoSum(p, 17, p.length - off);
  const c = 0xffff - onesSum(p, off, p.length, pseudo);
  p.writeUInt16BE(partial ? pseudo : c === 0 ? 0xffff : c, off + 6);
  return p;
}

export const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
export const VIRTIO_NET_HDR_F_DATA_VALID = 2;
export const GSO_NONE = 0;
export const GSO_TCPV4 = 1;
export const GSO_TCPV6 = 4;
export const GSO_UDP_L4 = 5;
export const GSO_ECN = 0x80;

export interface VnetHdr {
  flags: number;
  gsoType: number;
  hdrLen: number;
  gsoSize: number;
  csumStart: number;
  csumOffset: number;
}

/** virtio_net_hdr in host (little-endian) order, as a TUN without TUNSETVNETBE uses it. */
export function vnet(h: Partial<VnetHdr>): Buffer {
  const b = Buffer.alloc(10);
  b[0] = h.flags ?? 0;
  b[1] = h.gsoType ?? 0;
  b.writeUInt16LE(h.hdrLen ?? 0, 2);
  b.writeUInt16LE(h.gsoSize ?? 0, 4);
  b.writeUInt16LE(h.csumStart ?? 0, 6);
  b.writeUInt16LE(h.csumOffset ?? 0, 8);
  return b;
}

export function parseVnet(b: Uint8Array): VnetHdr {
  const v = Buffer.from(b.buffer, b.byteOffset, 10);
  return { flags: v[0]!, gsoType: v[1]!, hdrLen: v.readUInt16LE(2), gsoSize: v.readUInt16LE(4), csumStart: v.readUInt16LE(6), csumOffset: v.readUInt16LE(8) };
}

/** Deterministic payload bytes (so segments can be told apart). */
export function payloadBytes(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + seed * 13 + (i >> 8)) & 0xff;
  return b;
}

/** TCP timestamps option (NOP NOP TS), 12 octets. */
export function tcpTimestamps(tsval: number, tsecr: number): Uint8Array {
  const o = Buffer.alloc(12);
  o[0] = 1;
  o[1] = 1;
  o[2] = 8;
  o[3] = 10;
  o.writeUInt32BE(tsval, 4);
  o.writeUInt32BE(tsecr, 8);
  return o;
}
