/**
 * ESP packets (RFC 4303) with an AEAD (AES-GCM-16, RFC 4106): seal and open
 * the ESP packet itself, and the two modes around it (RFC 4303 §3.1) —
 * transport (ESP between the IP header and the upper layer) and tunnel (the
 * whole inner packet is the payload). No anti-replay (src/esp/replay.ts), no
 * I/O: sequence numbers come in as arguments and packets as Buffers.
 *
 * Packet layout (RFC 4303 §2, RFC 4106 §3):
 *
 *     SPI 4 | Sequence Number 4 | IV 8 | ciphertext( payload | padding 1,2,3… | Pad Length | Next Header ) | ICV 16
 *
 * AAD (RFC 4106 §5): SPI ‖ Sequence Number, or SPI ‖ seq-high ‖ seq-low with
 * Extended Sequence Numbers (only the low half travels, RFC 4303 §2.2.1).
 *
 * Sequence numbers are 64-bit values given as a `number` (exact below 2^53,
 * the datapath's representation, see replay.ts) or a `bigint` (any value).
 *
 * The IV: RFC 4106 §3.1 only asks that an IV never repeats under one key.
 * IV uniqueness is the caller's job; the SA's (64-bit) sequence number is a
 * fine source — it is unique per packet of an SA (the SA is rekeyed before it
 * cycles) — so `iv` may be given as that number and is then written as its
 * 8 octets big-endian. (strongSwan's IVs in the test capture are the
 * sequence number XORed with a per-SA constant: equally unique; a caller that
 * wants that passes `seq ^ constant`.)
 *
 * Padding: the minimum that makes payload ‖ Pad Length ‖ Next Header a
 * multiple of 4 octets (RFC 4303 §2.4; GCM needs no block alignment); no TFC
 * padding on send. Received padding is checked to be 1, 2, 3, … (the SHOULD
 * of RFC 4303 §2.4) and counted as `badPadding` when it is not.
 *
 * Nothing here throws on packet contents: results are typed. Argument errors
 * of the caller (a too short output buffer, a sequence number out of range)
 * throw RangeError.
 *
 * Allocation on the hot path: `sealEspInto` writes header, payload and
 * trailer into the caller's buffer (no payload copy at all when the payload
 * already sits at `offset + 16` of `out`: reserve the headroom and seal in
 * place) and the AEAD encrypts there (AeadContext.sealInPlace; with the
 * native context nothing is allocated at all). `openEsp` decrypts IN PLACE:
 * after a successful open the packet's ciphertext area holds the plaintext
 * and the returned payload is a view of it (a failed open leaves the packet
 * unchanged); `decapTransport` moves the payload back over the ESP header.
 * Failure results are shared constants: dropping costs no allocation.
 */
import type { AeadContext } from '../crypto/types.js';
import type { SaCounters } from './api.js';
import {
  IPPROTO_ESP,
  IPPROTO_IPIP,
  IPPROTO_IPV6,
  IPPROTO_NONE,
  IPV6_HEADER,
  ipv4Frame,
  ipv6EspInsertion,
  ipv6TotalLength,
  walkIpv6,
  writeIpv4HeaderChecksum,
} from './ip.js';

/** SPI + Sequence Number. */
export const ESP_HEADER_LENGTH = 8;
/** Next Header 59: a dummy packet (RFC 4303 §2.6), to be dropped by the receiver. */
export const ESP_NEXT_HEADER_DUMMY = IPPROTO_NONE;

/** The SA as the packet code needs it: the keyed AEAD, the SPI, whether ESN is on. */
export interface EspSa {
  readonly ctx: AeadContext;
  readonly spi: number;
  readonly esn: boolean;
}

export type EspSeq = number | bigint;

export type EspFailure = 'truncated' | 'icv' | 'padding' | 'dummy';
export type EspOpenResult = { ok: true; nextHeader: number; payload: Buffer } | { ok: false; reason: EspFailure };
/** Decapsulation of a whole packet: also 'malformed' when the packet around/inside ESP is not what the mode expects. */
export type DecapResult = { ok: true; packet: Buffer } | { ok: false; reason: EspFailure | 'malformed' };

/** What `openEsp` counts when given counters (SaCounters has both fields). */
export type EspCounters = Pick<SaCounters, 'icvFailures' | 'badPadding'>;

const FAIL: { readonly [R in EspFailure | 'malformed']: { ok: false; reason: R } } = {
  truncated: Object.freeze({ ok: false, reason: 'truncated' }),
  icv: Object.freeze({ ok: false, reason: 'icv' }),
  padding: Object.freeze({ ok: false, reason: 'padding' }),
  dummy: Object.freeze({ ok: false, reason: 'dummy' }),
  malformed: Object.freeze({ ok: false, reason: 'malformed' }),
} as const;

const TWO_32 = 0x1_0000_0000;
/** Scratch AAD buffers; used synchronously only (AeadContext copies the AAD into the cipher). */
const aad8 = Buffer.alloc(8);
const aad12 = Buffer.alloc(12);

/** Padding octets for a payload of this length (RFC 4303 §2.4: 4-octet alignment). */
export function espPaddingLength(payloadLength: number): number {
  return (4 - ((payloadLength + 2) & 3)) & 3;
}

/** Length of the ESP packet `sealEsp` makes of a payload of this length. */
export function espSealedLength(sa: EspSa, payloadLength: number): number {
  const alg = sa.ctx.algorithm;
  return ESP_HEADER_LENGTH + alg.ivLength + payloadLength + espPaddingLength(payloadLength) + 2 + alg.icvLength;
}

function splitSeq(seq: EspSeq, esn: boolean): [high: number, low: number] {
  let high: number;
  let low: number;
  if (typeof seq === 'bigint') {
    if (seq < 0n || seq > 0xffff_ffff_ffff_ffffn) throw new RangeError(`ESP sequence number ${seq} out of range`);
    high = Number(seq >> 32n);
    low = Number(seq & 0xffff_ffffn);
  } else {
    if (!Number.isSafeInteger(seq) || seq < 0) throw new RangeError(`ESP sequence number ${seq} out of range`);
    high = Math.floor(seq / TWO_32);
    low = seq >>> 0;
  }
  if (!esn && high !== 0) throw new RangeError(`ESP sequence number ${seq} needs ESN`);
  return [high, low];
}

function aadFor(spiOctets: Uint8Array, spiOff: number, high: number, low: number, esn: boolean): Buffer {
  const aad = esn ? aad12 : aad8;
  aad[0] = spiOctets[spiOff]!;
  aad[1] = spiOctets[spiOff + 1]!;
  aad[2] = spiOctets[spiOff + 2]!;
  aad[3] = spiOctets[spiOff + 3]!;
  if (esn) {
    aad.writeUInt32BE(high, 4);
    aad.writeUInt32BE(low, 8);
  } else {
    aad.writeUInt32BE(low, 4);
  }
  return aad;
}

/**
 * Build the ESP packet at `out[offset]` and return its length
 * (`espSealedLength`). `iv` is the explicit IV: 8 octets, or a 64-bit counter
 * (e.g. the sequence number) written big-endian. `payload` may already lie at
 * `out[offset + 16]` (no copy then); any other overlap with the output is not
 * allowed.
 */
export function sealEspInto(
  sa: EspSa,
  seq: EspSeq,
  iv: Uint8Array | number | bigint,
  payload: Uint8Array,
  nextHeader: number,
  out: Buffer,
  offset = 0,
): number {
  const alg = sa.ctx.algorithm;
  const ivLength = alg.ivLength;
  const padLength = espPaddingLength(payload.length);
  const ptStart = offset + ESP_HEADER_LENGTH + ivLength;
  const ptLength = payload.length + padLength + 2;
  const total = ESP_HEADER_LENGTH + ivLength + ptLength + alg.icvLength;
  if (offset < 0 || offset + total > out.length) throw new RangeError(`ESP: output buffer needs ${total} octets at offset ${offset}`);
  const [high, low] = splitSeq(seq, sa.esn);

  out.writeUInt32BE(sa.spi >>> 0, offset);
  out.writeUInt32BE(low, offset + 4);
  const ivOff = offset + ESP_HEADER_LENGTH;
  if (typeof iv === 'number' || typeof iv === 'bigint') {
    if (ivLength !== 8) throw new RangeError('ESP: a counter IV needs an 8-octet IV');
    const [ivHigh, ivLow] = splitSeq(iv, true);
    out.writeUInt32BE(ivHigh, ivOff);
    out.writeUInt32BE(ivLow, ivOff + 4);
  } else {
    if (iv.length !== ivLength) throw new RangeError(`ESP: IV must be ${ivLength} octets`);
    out.set(iv, ivOff);
  }

  const inPlace = payload.buffer === out.buffer && payload.byteOffset === out.byteOffset + ptStart;
  if (!inPlace) out.set(payload, ptStart);
  let p = ptStart + payload.length;
  for (let i = 1; i <= padLength; i++) out[p++] = i;
  out[p++] = padLength;
  out[p++] = nextHeader;

  const aad = aadFor(out, offset, high, low, sa.esn);
  sa.ctx.sealInPlace(out, ivOff, aad, ptStart, ptLength);
  return total;
}

/** `sealEspInto` into a fresh Buffer of exactly the packet's length. */
export function sealEsp(sa: EspSa, seq: EspSeq, iv: Uint8Array | number | bigint, payload: Uint8Array, nextHeader: number): Buffer {
  const out = Buffer.allocUnsafe(espSealedLength(sa, payload.length));
  sealEspInto(sa, seq, iv, payload, nextHeader, out, 0);
  return out;
}

/** The SPI of an ESP packet (to find its SA), or undefined if it is shorter than the ESP header. */
export function espSpi(packet: Uint8Array): number | undefined {
  return packet.length < ESP_HEADER_LENGTH ? undefined : ((packet[0]! << 24) | (packet[1]! << 16) | (packet[2]! << 8) | packet[3]!) >>> 0;
}

/** The Sequence Number field (with ESN: the low 32 bits), or undefined if it is shorter than the ESP header. */
export function espSeqLow(packet: Uint8Array): number | undefined {
  return packet.length < ESP_HEADER_LENGTH ? undefined : ((packet[4]! << 24) | (packet[5]! << 16) | (packet[6]! << 8) | packet[7]!) >>> 0;
}

/**
 * Open an ESP packet (exactly the ESP packet: from the SPI to the end of the
 * ICV). `seqHigh` is the high half of the 64-bit sequence number the
 * anti-replay code inferred (replay.ts `seqHigh(candidate)`); ignored without
 * ESN. The SPI is the packet's (it is authenticated: a packet routed to the
 * wrong SA fails the ICV). With `counters`, ICV failures and bad padding are
 * counted there.
 *
 * Order: 'truncated' (no room for header, IV, ICV and the two trailer
 * octets) → 'icv' → 'padding' (Pad Length beyond the plaintext, or padding
 * octets other than 1, 2, 3, …) → 'dummy' (Next Header 59, RFC 4303 §2.6).
 */
export function openEsp(sa: EspSa, packet: Buffer, seqHigh = 0, counters?: EspCounters): EspOpenResult {
  const alg = sa.ctx.algorithm;
  const ctStart = ESP_HEADER_LENGTH + alg.ivLength;
  if (packet.length < ctStart + 2 + alg.icvLength) return FAIL.truncated;
  const low = ((packet[4]! << 24) | (packet[5]! << 16) | (packet[6]! << 8) | packet[7]!) >>> 0;
  const aad = aadFor(packet, 0, seqHigh >>> 0, low, sa.esn);
  if (!sa.ctx.openInPlace(packet, ESP_HEADER_LENGTH, aad, ctStart, packet.length - ctStart - alg.icvLength)) {
    if (counters) counters.icvFailures++;
    return FAIL.icv;
  }
  const pt = packet.subarray(ctStart, packet.length - alg.icvLength);
  const nextHeader = pt[pt.length - 1]!;
  const padLength = pt[pt.length - 2]!;
  const payloadLength = pt.length - 2 - padLength;
  if (payloadLength < 0) {
    if (counters) counters.badPadding++;
    return FAIL.padding;
  }
  for (let i = 0; i < padLength; i++) {
    if (pt[payloadLength + i] !== i + 1) {
      if (counters) counters.badPadding++;
      return FAIL.padding;
    }
  }
  if (nextHeader === ESP_NEXT_HEADER_DUMMY) return FAIL.dummy;
  return { ok: true, nextHeader, payload: pt.subarray(0, payloadLength) };
}

// ---------------------------------------------------------------------------
// Transport mode (RFC 4303 §3.1.1)

/**
 * Where ESP goes in a packet for transport mode: `headerLength` octets of IP
 * header stay in front (IPv4 with its options; IPv6 with hop-by-hop,
 * routing, fragment headers and any destination options before them — see
 * ip.ts ipv6EspInsertion), the rest up to `totalLength` is the payload;
 * `nextHeaderField` is the octet that becomes 50. Undefined if not a
 * well-formed IPv4/IPv6 packet.
 */
export function transportSplit(packet: Uint8Array, length = packet.length): { headerLength: number; totalLength: number; nextHeaderField: number } | undefined {
  if (length < 1) return undefined;
  const v = packet[0]! >> 4;
  if (v === 4) {
    const f = ipv4Frame(packet, length);
    return f === undefined ? undefined : { headerLength: f.headerLength, totalLength: f.totalLength, nextHeaderField: 9 };
  }
  if (v === 6) {
    const total = ipv6TotalLength(packet, length);
    if (total === undefined) return undefined;
    const ins = ipv6EspInsertion(packet, total);
    return ins === undefined ? undefined : { headerLength: ins.offset, totalLength: total, nextHeaderField: ins.nextHeaderField };
  }
  return undefined;
}

/** Rewrite the length field(s) of an IPv4/IPv6 header for a new total length (IPv4: and the checksum). */
function setTotalLength(buf: Buffer, offset: number, total: number): void {
  if (buf[offset]! >> 4 === 4) {
    buf.writeUInt16BE(total, offset + 2);
    writeIpv4HeaderChecksum(buf, offset);
  } else {
    buf.writeUInt16BE(total - IPV6_HEADER, offset + 4);
  }
}

/**
 * The part of `encapTransportInto` in front of ESP, for a caller that seals the ESP packet
 * elsewhere (the batched native datapath): the IP header (and extension headers) of `packet`
 * copied to `out[0)`, its protocol / Next Header field set to 50 and its lengths (IPv4: and
 * checksum) set for an ESP packet of `espLength` octets. Returns the total length.
 */
export function transportHeaderInto(packet: Uint8Array, split: { headerLength: number; nextHeaderField: number }, espLength: number, out: Buffer): number {
  // a plain loop: a subarray for .set would allocate per packet, and headers are short
  for (let i = 0; i < split.headerLength; i++) out[i] = packet[i]!;
  out[split.nextHeaderField] = IPPROTO_ESP;
  const total = split.headerLength + espLength;
  setTotalLength(out, 0, total);
  return total;
}

/** Length `encapTransportInto` writes for this packet, or -1 if it is not a well-formed IPv4/IPv6 packet. */
export function transportSealedLength(sa: EspSa, packet: Uint8Array): number {
  const s = transportSplit(packet);
  return s === undefined ? -1 : s.headerLength + espSealedLength(sa, s.totalLength - s.headerLength);
}

/**
 * Transport mode, outbound: `packet` (IPv4 or IPv6, as from the TUN device)
 * becomes IP header ‖ ESP(upper-layer payload) at `out[offset]`; the header's
 * protocol / Next Header field becomes 50 and its lengths (IPv4: and
 * checksum) are rewritten. Returns the length written, or -1 (nothing
 * written) if the packet is malformed, the result would exceed 65535
 * octets, or the ESP Next Header would be 59 (No Next Header: the receiver
 * would drop it as a dummy packet, RFC 4303 §2.6). `packet` and `out` must not overlap. Whole datagrams only (RFC 4303
 * §3.3.4): fragmentation, if needed, comes after; this is not checked.
 */
export function encapTransportInto(sa: EspSa, seq: EspSeq, iv: Uint8Array | number | bigint, packet: Buffer, out: Buffer, offset = 0): number {
  const s = transportSplit(packet);
  if (s === undefined || packet[s.nextHeaderField] === ESP_NEXT_HEADER_DUMMY) return -1;
  const payloadLength = s.totalLength - s.headerLength;
  const total = s.headerLength + espSealedLength(sa, payloadLength);
  const limit = packet[0]! >> 4 === 4 ? 0xffff : 0xffff + IPV6_HEADER;
  if (total > limit) return -1;
  if (offset < 0 || offset + total > out.length) throw new RangeError(`ESP transport: output buffer needs ${total} octets at offset ${offset}`);
  const nextHeader = packet[s.nextHeaderField]!;
  packet.copy(out, offset, 0, s.headerLength);
  out[offset + s.nextHeaderField] = IPPROTO_ESP;
  sealEspInto(sa, seq, iv, packet.subarray(s.headerLength, s.totalLength), nextHeader, out, offset + s.headerLength);
  setTotalLength(out, offset, total);
  return total;
}

/** `encapTransportInto` into a fresh Buffer; undefined for a malformed packet. */
export function encapTransport(sa: EspSa, seq: EspSeq, iv: Uint8Array | number | bigint, packet: Buffer): Buffer | undefined {
  const length = transportSealedLength(sa, packet);
  if (length < 0) return undefined;
  const out = Buffer.allocUnsafe(length);
  const n = encapTransportInto(sa, seq, iv, packet, out);
  return n < 0 ? undefined : out;
}

/**
 * Locate the ESP packet inside a received transport/tunnel-mode IP packet
 * (the IPv4 header a raw socket delivers, or IPv6 with extension headers):
 * offset of the ESP header, its end, and the Next Header field naming it.
 */
export function espInIp(packet: Uint8Array): { offset: number; end: number; nextHeaderField: number } | undefined {
  if (packet.length < 1) return undefined;
  const v = packet[0]! >> 4;
  if (v === 4) {
    const f = ipv4Frame(packet);
    if (f === undefined || packet[9] !== IPPROTO_ESP) return undefined;
    return { offset: f.headerLength, end: f.totalLength, nextHeaderField: 9 };
  }
  if (v === 6) {
    const total = ipv6TotalLength(packet);
    if (total === undefined) return undefined;
    const chain = walkIpv6(packet, total);
    if (chain === undefined || chain.protocol !== IPPROTO_ESP) return undefined;
    return { offset: chain.offset, end: total, nextHeaderField: chain.nextHeaderField };
  }
  return undefined;
}

/**
 * Transport mode, inbound: the IP packet carrying ESP is turned back into the
 * original packet IN PLACE (after a successful open only): the payload moves
 * to where the ESP header was, the protocol / Next Header field gets the ESP
 * trailer's Next Header, lengths (IPv4: checksum) are rewritten. The result
 * is a subarray of `packet`. After NAT-T (RFC 3948 §3.1.2) the caller should
 * also run ip.ts fixTransportChecksum on it.
 */
export function decapTransport(sa: EspSa, packet: Buffer, seqHigh = 0, counters?: EspCounters): DecapResult {
  const loc = espInIp(packet);
  if (loc === undefined) return FAIL.malformed;
  const r = openEsp(sa, packet.subarray(loc.offset, loc.end), seqHigh, counters);
  if (!r.ok) return r;
  const total = loc.offset + r.payload.length;
  r.payload.copy(packet, loc.offset);
  packet[loc.nextHeaderField] = r.nextHeader;
  setTotalLength(packet, 0, total);
  return { ok: true, packet: packet.subarray(0, total) };
}

// ---------------------------------------------------------------------------
// Tunnel mode (RFC 4303 §3.1.2)

/** Next Header for an inner packet: 4 (IPv4) or 41 (IPv6); -1 for anything else. */
export function tunnelNextHeader(inner: Uint8Array): number {
  if (inner.length < 1) return -1;
  const v = inner[0]! >> 4;
  return v === 4 ? IPPROTO_IPIP : v === 6 ? IPPROTO_IPV6 : -1;
}

/**
 * Tunnel mode, outbound: the whole inner packet is the payload (Next Header
 * 4 or 41). Writes only the ESP packet — for ESP-in-UDP and raw ESP sockets
 * that is what gets sent; for a hand-built outer header use ip.ts
 * buildOuterHeader in front (reserve its length before `offset`). Returns
 * the length, or -1 if `inner` is neither IPv4 nor IPv6.
 */
export function encapTunnelInto(sa: EspSa, seq: EspSeq, iv: Uint8Array | number | bigint, inner: Uint8Array, out: Buffer, offset = 0): number {
  const nh = tunnelNextHeader(inner);
  return nh < 0 ? -1 : sealEspInto(sa, seq, iv, inner, nh, out, offset);
}

/** `encapTunnelInto` into a fresh Buffer; undefined if `inner` is neither IPv4 nor IPv6. */
export function encapTunnel(sa: EspSa, seq: EspSeq, iv: Uint8Array | number | bigint, inner: Uint8Array): Buffer | undefined {
  const nh = tunnelNextHeader(inner);
  return nh < 0 ? undefined : sealEsp(sa, seq, iv, inner, nh);
}

/**
 * Tunnel mode, inbound: open the ESP packet (exactly the ESP packet — for a
 * packet with its outer IP header use `espInIp` first) and return the inner
 * packet, a subarray of the decrypted plaintext. 'malformed' when Next
 * Header is not 4/41, the inner packet is not of that IP version, or its
 * length field exceeds the payload. Octets after the inner packet's length
 * (TFC padding, RFC 4303 §2.7) are cut off.
 */
export function decapTunnel(sa: EspSa, esp: Buffer, seqHigh = 0, counters?: EspCounters): DecapResult {
  const r = openEsp(sa, esp, seqHigh, counters);
  if (!r.ok) return r;
  const inner = r.payload;
  let total: number | undefined;
  if (r.nextHeader === IPPROTO_IPIP && inner.length >= 1 && inner[0]! >> 4 === 4) total = ipv4Frame(inner)?.totalLength;
  else if (r.nextHeader === IPPROTO_IPV6 && inner.length >= 1 && inner[0]! >> 4 === 6) total = ipv6TotalLength(inner);
  if (total === undefined) return FAIL.malformed;
  return { ok: true, packet: inner.subarray(0, total) };
}
