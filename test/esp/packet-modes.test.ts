/**
 * Transport and tunnel mode (RFC 4303 §3.1) in src/esp/packet.ts, and the IP
 * helpers of src/esp/ip.ts, by property (fast-check) over generated IPv4
 * packets (with options) and IPv6 packets (with hop-by-hop, destination
 * options, routing and fragment headers): round trips restore the packet
 * exactly, every tampered octet and every truncation is rejected without an
 * exception; plus packetSelector, buildOuterHeader and fixTransportChecksum
 * (also on the UDP datagrams of the strongSwan 5.9.8 capture,
 * test/fixtures/strongswan-5.9.8-ecp384bp-demo/exchange.pcap).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { AES_GCM_16_128, AES_GCM_16_256 } from '../../src/crypto/aead.js';
import {
  decapTransport,
  decapTunnel,
  encapTransport,
  encapTransportInto,
  encapTunnel,
  espInIp,
  openEsp,
  sealEsp,
  transportSealedLength,
  type EspSa,
} from '../../src/esp/packet.js';
import { buildOuterHeader, clampTcpMss, fixTransportChecksum, ipv4HeaderChecksumValid, packetSelector, writeIpv4HeaderChecksum } from '../../src/esp/ip.js';
import { demoFile } from '../support/fixture.js';
import { readPcapFrames } from '../support/pcap.js';

const sa: EspSa = { ctx: AES_GCM_16_128.createContext(Buffer.alloc(20, 0x42)), spi: 0xc0ffee01, esn: false };
const saEsn: EspSa = { ctx: AES_GCM_16_256.createContext(Buffer.alloc(36, 0x17)), spi: 0x00000101, esn: true };

// ---------------------------------------------------------------------------
// packet generators

function ipv4(opts: { options: Buffer; protocol: number; payload: Buffer; flags?: number; src?: number[]; dst?: number[] }): Buffer {
  const ihl = 20 + opts.options.length;
  const p = Buffer.alloc(ihl + opts.payload.length);
  p[0] = 0x40 | (ihl / 4);
  p[1] = 0x28;
  p.writeUInt16BE(p.length, 2);
  p.writeUInt16BE(0xbeef, 4);
  p.writeUInt16BE(opts.flags ?? 0x4000, 6);
  p[8] = 63;
  p[9] = opts.protocol;
  p.set(opts.src ?? [192, 0, 2, 1], 12);
  p.set(opts.dst ?? [198, 51, 100, 7], 16);
  opts.options.copy(p, 20);
  opts.payload.copy(p, ihl);
  writeIpv4HeaderChecksum(p);
  return p;
}

interface Ext {
  type: 0 | 43 | 44 | 60;
  body: Buffer;
}

/** An IPv6 packet with the given extension headers (each `body` fills the header after its first two octets). */
function ipv6(exts: Ext[], protocol: number, payload: Buffer): Buffer {
  const parts: Buffer[] = [];
  const types = [...exts.map((e) => e.type), protocol];
  exts.forEach((e, i) => {
    const h = Buffer.concat([Buffer.alloc(2), e.body]);
    h[0] = types[i + 1]!;
    h[1] = e.type === 44 ? 0 : h.length / 8 - 1;
    parts.push(h);
  });
  const fixed = Buffer.alloc(40);
  fixed.writeUInt32BE(0x6123_4567, 0);
  fixed[6] = types[0]!;
  fixed[7] = 64;
  Buffer.from('20010db8000000000000000000000001', 'hex').copy(fixed, 8);
  Buffer.from('20010db8000000000000000000000002', 'hex').copy(fixed, 24);
  const p = Buffer.concat([fixed, ...parts, payload]);
  p.writeUInt16BE(p.length - 40, 4);
  return p;
}

const bytes = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max }).map((a) => Buffer.from(a));
const payloadArb = bytes(0, 300);
const protocolArb = fc.oneof(fc.constantFrom(1, 6, 17, 58, 59, 132), fc.integer({ min: 0, max: 255 }));

const ipv4Arb = fc
  .record({
    options: fc.integer({ min: 0, max: 10 }).chain((w) => bytes(w * 4, w * 4)),
    protocol: protocolArb.filter((p) => p !== 59),
    payload: payloadArb,
    flags: fc.integer({ min: 0, max: 0xffff }),
  })
  .map((r) => ipv4(r));

/** A body for an extension header: 6 + 8k octets (fragment: exactly 6). */
const extArb: fc.Arbitrary<Ext> = fc.oneof(
  fc.record({ type: fc.constantFrom<0 | 43 | 60>(0, 43, 60), body: fc.integer({ min: 0, max: 4 }).chain((k) => bytes(6 + 8 * k, 6 + 8 * k)) }),
  fc.record({ type: fc.constant<44>(44), body: bytes(6, 6) }),
);

/** In RFC 8200 §4.1 order: hop-by-hop, destination options, routing, fragment, destination options — each optional. */
const orderedExtsArb = fc
  .record({
    hbh: fc.boolean(),
    dst1: fc.boolean(),
    rt: fc.boolean(),
    frag: fc.boolean(),
    dst2: fc.boolean(),
    bodies: fc.array(extArb, { minLength: 5, maxLength: 5 }),
  })
  .map((r) => {
    const pick = (type: Ext['type'], i: number): Ext => ({ type, body: type === 44 ? r.bodies[i]!.body.subarray(0, 6) : padBody(r.bodies[i]!.body) });
    const out: Ext[] = [];
    if (r.hbh) out.push(pick(0, 0));
    if (r.dst1) out.push(pick(60, 1));
    if (r.rt) out.push(pick(43, 2));
    if (r.frag) out.push(pick(44, 3));
    if (r.dst2) out.push(pick(60, 4));
    return out;
  });
const padBody = (b: Buffer): Buffer => (b.length % 8 === 6 ? b : Buffer.concat([b, Buffer.alloc(6)]).subarray(0, 6));

const ipv6Arb = fc
  .record({ exts: orderedExtsArb, protocol: protocolArb.filter((p) => ![0, 43, 44, 50, 51, 59, 60].includes(p)), payload: payloadArb })
  .map((r) => ipv6(r.exts, r.protocol, r.payload));

const anyIpArb = fc.oneof(ipv4Arb, ipv6Arb);
const seqArb = fc.integer({ min: 1, max: 0xffffffff });

/** Where ESP must go in an IPv6 packet: after the last hop-by-hop / routing / fragment header. */
function expectedEspOffset(p: Buffer): number {
  if (p[0]! >> 4 === 4) return (p[0]! & 15) * 4;
  let nh = p[6]!;
  let off = 40;
  let at = 40;
  while ([0, 43, 44, 60].includes(nh)) {
    const len = nh === 44 ? 8 : (p[off + 1]! + 1) * 8;
    const wasDst = nh === 60;
    nh = p[off]!;
    off += len;
    if (!wasDst) at = off;
  }
  return at;
}

// ---------------------------------------------------------------------------

describe('transport mode', () => {
  it('restores every IPv4 (with options) and IPv6 (with extension headers) packet exactly after encap and decap', () => {
    fc.assert(
      fc.property(anyIpArb, seqArb, fc.boolean(), (packet, seq, useEsn) => {
        const s = useEsn ? saEsn : sa;
        const wire = encapTransport(s, useEsn ? BigInt(seq) + (7n << 32n) : seq, seq, packet)!;
        expect(wire).toBeDefined();
        expect(wire.length).toBe(transportSealedLength(s, packet));
        const loc = espInIp(wire)!;
        expect(loc.offset).toBe(expectedEspOffset(packet));
        // the clear part of the header is unchanged but for the protocol field and the lengths
        expect(wire[loc.nextHeaderField]).toBe(50);
        if (packet[0]! >> 4 === 4) {
          expect(wire.readUInt16BE(2)).toBe(wire.length);
          expect(ipv4HeaderChecksumValid(wire)).toBe(true);
          expect(wire.subarray(20, loc.offset)).toEqual(packet.subarray(20, loc.offset));
        } else {
          expect(wire.readUInt16BE(4)).toBe(wire.length - 40);
        }
        const r = decapTransport(s, Buffer.from(wire), useEsn ? 7 : 0);
        expect(r.ok && r.packet.toString('hex')).toBe(packet.toString('hex'));
      }),
      { numRuns: 400 },
    );
  });

  it('puts ESP after hop-by-hop, routing and fragment headers, with a destination options header before routing outside and one after inside', () => {
    const p = ipv6(
      [
        { type: 0, body: Buffer.alloc(6, 1) },
        { type: 60, body: Buffer.alloc(14, 2) },
        { type: 43, body: Buffer.alloc(6, 3) },
        { type: 44, body: Buffer.alloc(6, 4) },
        { type: 60, body: Buffer.alloc(6, 5) },
      ],
      6,
      Buffer.from('tcp segment'),
    );
    const wire = encapTransport(sa, 1, 1, p)!;
    expect(espInIp(wire)).toEqual({ offset: 40 + 8 + 16 + 8 + 8, end: wire.length, nextHeaderField: 40 + 8 + 16 + 8 });
    expect(wire[40 + 8 + 16 + 8]).toBe(50);
    const inner = openEsp(sa, wire.subarray(80));
    expect(inner.ok && inner.nextHeader).toBe(60); // the trailing destination options header is protected
  });

  it('refuses a packet whose ESP Next Header would be 59, which the receiver would take for a dummy packet', () => {
    expect(encapTransport(sa, 1, 1, ipv4({ options: Buffer.alloc(0), protocol: 59, payload: Buffer.alloc(8) }))).toBeUndefined();
    expect(encapTransport(sa, 1, 1, ipv6([{ type: 0, body: Buffer.alloc(6) }], 59, Buffer.alloc(0)))).toBeUndefined();
    // behind a destination options header the Next Header is 60: fine
    expect(encapTransport(sa, 1, 1, ipv6([{ type: 60, body: Buffer.alloc(6) }], 59, Buffer.alloc(0)))).toBeDefined();
  });

  it('writes into a caller buffer at an offset and returns the length', () => {
    const p = ipv4({ options: Buffer.alloc(4, 1), protocol: 17, payload: Buffer.alloc(1372, 9) });
    const out = Buffer.alloc(2048);
    const n = encapTransportInto(sa, 3, 3, p, out, 10);
    expect(n).toBe(transportSealedLength(sa, p));
    expect(out.subarray(10, 10 + n)).toEqual(encapTransport(sa, 3, 3, p));
  });

  it('rejects packets that are not IPv4/IPv6, and ESP that is not where the header chain says', () => {
    expect(encapTransport(sa, 1, 1, Buffer.from([0x50, 0, 0, 0]))).toBeUndefined();
    expect(encapTransport(sa, 1, 1, Buffer.alloc(0))).toBeUndefined();
    const p = ipv4({ options: Buffer.alloc(0), protocol: 6, payload: Buffer.alloc(40) });
    expect(decapTransport(sa, p)).toEqual({ ok: false, reason: 'malformed' });
  });
});

describe('tunnel mode', () => {
  it('restores every inner IPv4/IPv6 packet exactly, with Next Header 4 or 41', () => {
    fc.assert(
      fc.property(anyIpArb, seqArb, (inner, seq) => {
        const esp = encapTunnel(sa, seq, seq, inner)!;
        const opened = openEsp(sa, Buffer.from(esp)); // decrypts in place: keep `esp` for decapTunnel
        expect(opened.ok && opened.nextHeader).toBe(inner[0]! >> 4 === 4 ? 4 : 41);
        const r = decapTunnel(sa, esp);
        expect(r.ok && r.packet.toString('hex')).toBe(inner.toString('hex'));
      }),
      { numRuns: 300 },
    );
  });

  it('cuts TFC padding after the inner packet and calls a wrong inner version malformed', () => {
    const inner = ipv4({ options: Buffer.alloc(0), protocol: 17, payload: Buffer.alloc(12, 1) });
    const r = decapTunnel(sa, sealEsp(sa, 1, 1, Buffer.concat([inner, Buffer.alloc(30)]), 4));
    expect(r.ok && r.packet).toEqual(inner);
    expect(decapTunnel(sa, sealEsp(sa, 2, 2, inner, 41))).toEqual({ ok: false, reason: 'malformed' });
    expect(decapTunnel(sa, sealEsp(sa, 3, 3, inner, 6))).toEqual({ ok: false, reason: 'malformed' });
    expect(encapTunnel(sa, 1, 1, Buffer.from([0x10]))).toBeUndefined();
  });

  it('builds an outer IPv4 header with TTL 64, DSCP/ECN and DF copied from the inner packet, and a valid checksum', () => {
    const inner = ipv4({ options: Buffer.alloc(0), protocol: 1, payload: Buffer.alloc(8), flags: 0x4000 });
    const out = Buffer.alloc(20);
    expect(buildOuterHeader({ src: Buffer.from([10, 0, 0, 1]), dst: Buffer.from([10, 0, 0, 2]), payloadLength: 100, inner, id: 7 }, out)).toBe(20);
    expect(out.toString('hex').slice(0, 20)).toBe('4528007800074000' + '4032');
    expect(ipv4HeaderChecksumValid(out)).toBe(true);
    expect(packetSelector(Buffer.concat([out, Buffer.alloc(100)]))).toMatchObject({ family: 4, protocol: 50, srcPort: null });
    buildOuterHeader({ src: Buffer.from([10, 0, 0, 1]), dst: Buffer.from([10, 0, 0, 2]), payloadLength: 100, inner, df: 'clear' }, out);
    expect(out.readUInt16BE(6)).toBe(0);
    const v6 = Buffer.alloc(40);
    const src = Buffer.from('20010db8000000000000000000000001', 'hex');
    const inner6 = ipv6([], 17, Buffer.alloc(8));
    expect(buildOuterHeader({ src, dst: src, payloadLength: 64, inner: inner6 }, v6)).toBe(40);
    expect(v6.subarray(0, 8).toString('hex')).toBe('6120000000403240'); // traffic class 0x12 copied, length 64, ESP, hop limit 64
    expect(() => buildOuterHeader({ src, dst: Buffer.alloc(4), payloadLength: 0 }, v6)).toThrow(RangeError);
  });
});

describe('never throws on packet contents', () => {
  it('any single tampered octet of a sealed packet fails the ICV', () => {
    fc.assert(
      fc.property(anyIpArb, fc.nat(), fc.integer({ min: 1, max: 255 }), fc.boolean(), (inner, where, xor, useEsn) => {
        const s = useEsn ? saEsn : sa;
        const esp = encapTunnel(s, 5, 5, inner)!;
        esp[where % esp.length]! ^= xor;
        expect(openEsp(s, esp)).toEqual({ ok: false, reason: 'icv' });
      }),
      { numRuns: 500 },
    );
  });

  it('every truncation of a sealed packet is truncated or an ICV failure; of a transport packet also malformed', () => {
    const inner = ipv6([{ type: 0, body: Buffer.alloc(6) }], 17, Buffer.alloc(50, 3));
    const esp = encapTunnel(sa, 9, 9, inner)!;
    for (let n = 0; n < esp.length; n++) {
      const r = openEsp(sa, esp.subarray(0, n));
      expect(r.ok).toBe(false);
      expect(n < 34 ? 'truncated' : 'icv').toBe(!r.ok && r.reason);
    }
    const wire = encapTransport(sa, 9, 9, inner)!;
    for (let n = 0; n < wire.length; n++) {
      const cut = Buffer.from(wire.subarray(0, n));
      const r = decapTransport(sa, cut);
      expect(['truncated', 'icv', 'malformed']).toContain(!r.ok && r.reason);
      // and with the length fields patched to match the cut, too
      if (n >= 40) cut.writeUInt16BE(n - 40, 4);
      const r2 = decapTransport(sa, cut);
      expect(['truncated', 'icv', 'malformed']).toContain(!r2.ok && r2.reason);
    }
  });

  it('random octets given to openEsp, decapTransport, decapTunnel, packetSelector and fixTransportChecksum give results, not exceptions', () => {
    fc.assert(
      fc.property(bytes(0, 200), fc.constantFrom(0x40, 0x45, 0x46, 0x60, 0x00), (b, first) => {
        if (b.length > 0) b[0] = first | (b[0]! & 0x0f);
        if (b.length >= 4 && first === 0x45) b.writeUInt16BE(b.length, 2);
        if (b.length >= 40 && first === 0x60) b.writeUInt16BE(b.length - 40, 4);
        expect(openEsp(sa, b).ok).toBe(false);
        expect(decapTransport(sa, Buffer.from(b)).ok).toBe(false);
        expect(decapTunnel(saEsn, b).ok).toBe(false);
        packetSelector(b);
        fixTransportChecksum(Buffer.from(b));
        transportSealedLength(sa, b);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('packetSelector', () => {
  const tcp = Buffer.from('c0de0050' + '00'.repeat(16), 'hex'); // ports 49374 → 80
  const udp = Buffer.from('1194003500080000', 'hex'); // 4500 → 53

  it('reads addresses, protocol and ports of IPv4 TCP and UDP, over IPv4 options', () => {
    expect(packetSelector(ipv4({ options: Buffer.alloc(8, 1), protocol: 6, payload: tcp }))).toEqual({
      family: 4,
      src: Buffer.from([192, 0, 2, 1]),
      dst: Buffer.from([198, 51, 100, 7]),
      protocol: 6,
      srcPort: 49374,
      dstPort: 80,
    });
    expect(packetSelector(ipv4({ options: Buffer.alloc(0), protocol: 17, payload: udp }))).toMatchObject({ protocol: 17, srcPort: 4500, dstPort: 53 });
  });

  it('puts ICMP type and code (type in the high octet, RFC 4301 §4.4.1.1) in both port fields, v4 and v6', () => {
    expect(packetSelector(ipv4({ options: Buffer.alloc(0), protocol: 1, payload: Buffer.from('0300abcd', 'hex') }))).toMatchObject({
      protocol: 1,
      srcPort: 0x0300,
      dstPort: 0x0300,
    });
    expect(packetSelector(ipv6([], 58, Buffer.from('8000abcd', 'hex')))).toMatchObject({ family: 6, protocol: 58, srcPort: 0x8000, dstPort: 0x8000 });
  });

  it('skips IPv6 hop-by-hop, destination options, routing and fragment headers to the upper layer', () => {
    const exts: Ext[] = [
      { type: 0, body: Buffer.alloc(6) },
      { type: 60, body: Buffer.alloc(14) },
      { type: 43, body: Buffer.alloc(22) },
      { type: 44, body: Buffer.alloc(6) }, // offset 0: first fragment
    ];
    expect(packetSelector(ipv6(exts, 6, tcp))).toEqual({
      family: 6,
      src: Buffer.from('20010db8000000000000000000000001', 'hex'),
      dst: Buffer.from('20010db8000000000000000000000002', 'hex'),
      protocol: 6,
      srcPort: 49374,
      dstPort: 80,
    });
    expect(packetSelector(ipv6(exts, 17, udp))).toMatchObject({ protocol: 17, srcPort: 4500, dstPort: 53 });
    expect(packetSelector(ipv6(exts.slice(0, 2), 58, Buffer.from('81000000', 'hex')))).toMatchObject({ protocol: 58, srcPort: 0x8100 });
  });

  it('gives OPAQUE (null) ports for non-initial fragments, portless protocols and cut-short headers', () => {
    const later = ipv6([{ type: 44, body: Buffer.from('00080000002a', 'hex') }], 6, tcp);
    expect(packetSelector(later)).toMatchObject({ protocol: 6, srcPort: null, dstPort: null });
    expect(packetSelector(ipv4({ options: Buffer.alloc(0), protocol: 17, payload: udp, flags: 0x0001 }))).toMatchObject({ protocol: 17, srcPort: null });
    expect(packetSelector(ipv4({ options: Buffer.alloc(0), protocol: 47, payload: udp }))).toMatchObject({ protocol: 47, srcPort: null });
    expect(packetSelector(ipv4({ options: Buffer.alloc(0), protocol: 6, payload: Buffer.alloc(2) }))).toMatchObject({ protocol: 6, srcPort: null });
    expect(packetSelector(Buffer.from([0x45, 0, 0]))).toBeUndefined();
  });
});

describe('fixTransportChecksum (RFC 3948 §3.1.2)', () => {
  /** Independent check: the one's complement sum over pseudo-header and segment is all ones. */
  function l4ChecksumOk(p: Buffer): boolean {
    const v6 = p[0]! >> 4 === 6;
    // (the IPv6 packets here have at most a hop-by-hop header)
    const hbh = v6 && p[6] === 0;
    const off = v6 ? (hbh ? 40 + (p[41]! + 1) * 8 : 40) : (p[0]! & 15) * 4;
    const seg = p.subarray(off);
    let sum = seg.length + (v6 ? (hbh ? p[40]! : p[6]!) : p[9]!);
    for (let i = v6 ? 8 : 12; i < (v6 ? 40 : 20); i += 2) sum += p.readUInt16BE(i);
    for (let i = 0; i < seg.length; i += 2) sum += (seg[i]! << 8) + (seg[i + 1] ?? 0);
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    return sum === 0xffff;
  }

  // RFC 1071 §3 example octets as a payload: 00 01 f2 03 f4 f5 f6 f7
  const data = Buffer.from('0001f203f4f5f6f7', 'hex');

  it('makes the TCP and UDP checksums of a packet whose addresses were translated valid again, v4 and v6', () => {
    for (const protocol of [6, 17]) {
      const l4 = Buffer.concat([protocol === 6 ? Buffer.from('c0de0050' + '00'.repeat(16), 'hex') : Buffer.from('1194003500101234', 'hex'), data]); // a stale checksum
      for (const p of [ipv4({ options: Buffer.alloc(4), protocol, payload: l4 }), ipv6([{ type: 0, body: Buffer.alloc(6) }], protocol, l4)]) {
        expect(fixTransportChecksum(p)).toBe(true);
        expect(l4ChecksumOk(p)).toBe(true);
        const before = Buffer.from(p);
        expect(fixTransportChecksum(p)).toBe(true); // idempotent on a valid packet
        expect(p).toEqual(before);
        // NAT rewrote the source address: the checksum no longer holds until fixed
        p[p[0]! >> 4 === 4 ? 13 : 9]! ^= 0x5a;
        if (p[0]! >> 4 === 4) writeIpv4HeaderChecksum(p);
        expect(l4ChecksumOk(p)).toBe(false);
        expect(fixTransportChecksum(p)).toBe(true);
        expect(l4ChecksumOk(p)).toBe(true);
      }
    }
  });

  it('makes valid checksums of the 34 UDP datagrams of the strongSwan capture, captured with checksum offload (pseudo-header sums only)', () => {
    const datagrams = readPcapFrames(demoFile('exchange.pcap'))
      .map((f) => Buffer.from(f.subarray(14)))
      .filter((ip) => ip[0]! >> 4 === 4 && ip[9] === 17);
    expect(datagrams).toHaveLength(34);
    for (const ip of datagrams) {
      expect(l4ChecksumOk(ip)).toBe(false);
      expect(fixTransportChecksum(ip)).toBe(true);
      expect(l4ChecksumOk(ip)).toBe(true);
    }
  });

  it('leaves an IPv4 UDP checksum of zero (none) alone and ignores other protocols and fragments', () => {
    const p = ipv4({ options: Buffer.alloc(0), protocol: 17, payload: Buffer.concat([Buffer.from('1194003500100000', 'hex'), data]) });
    expect(fixTransportChecksum(p)).toBe(true);
    expect(p.readUInt16BE(26)).toBe(0);
    expect(fixTransportChecksum(ipv4({ options: Buffer.alloc(0), protocol: 1, payload: data }))).toBe(false);
    expect(fixTransportChecksum(ipv4({ options: Buffer.alloc(0), protocol: 6, payload: Buffer.alloc(20), flags: 0x2000 }))).toBe(false);
    expect(fixTransportChecksum(ipv6([{ type: 44, body: Buffer.alloc(6) }], 17, Buffer.alloc(16)))).toBe(false);
  });

  it('after transport decap of a NAT-ed packet restores a valid checksum', () => {
    const l4 = Buffer.concat([Buffer.from('c0de0050' + '00'.repeat(16), 'hex'), data]);
    const p = ipv4({ options: Buffer.alloc(0), protocol: 6, payload: l4 });
    fixTransportChecksum(p);
    const wire = encapTransport(sa, 1, 1, p)!;
    wire.set([203, 0, 113, 9], 12); // the NAT changed the source
    writeIpv4HeaderChecksum(wire);
    const r = decapTransport(sa, wire);
    if (!r.ok) throw new Error(r.reason);
    expect(l4ChecksumOk(r.packet)).toBe(false);
    expect(fixTransportChecksum(r.packet)).toBe(true);
    expect(l4ChecksumOk(r.packet)).toBe(true);
    expect(ipv4HeaderChecksumValid(r.packet)).toBe(true);
  });
});

describe('TCP MSS clamping', () => {
  const syn = (version: 4 | 6, mss: number, flags = 0x02): Buffer => {
    const tcp = Buffer.alloc(24);
    tcp.writeUInt16BE(40000, 0);
    tcp.writeUInt16BE(443, 2);
    tcp.writeUInt32BE(12345, 4);
    tcp[12] = 6 << 4; // 24 octets: one option word
    tcp[13] = flags;
    tcp.writeUInt16BE(65535, 14);
    tcp[20] = 2;
    tcp[21] = 4;
    tcp.writeUInt16BE(mss, 22);
    const packet = version === 4 ? ipv4({ options: Buffer.alloc(0), protocol: 6, payload: tcp }) : ipv6([], 6, tcp);
    fixTransportChecksum(packet);
    return packet;
  };
  const checksumOk = (p: Buffer): boolean => {
    const copy = Buffer.from(p);
    fixTransportChecksum(copy);
    return copy.equals(p);
  };

  it.each([4, 6] as const)('a SYN over IPv%i with MSS 1460 is clamped to the TUN MTU less 40/60 octets and its checksum stays valid', (v) => {
    const p = syn(v, 1460);
    expect(clampTcpMss(p, p.length, 1400)).toBe(true);
    const tcp = v === 4 ? 20 : 40;
    expect(p.readUInt16BE(tcp + 22)).toBe(v === 4 ? 1360 : 1340);
    expect(checksumOk(p)).toBe(true);
  });

  it('a SYN whose MSS already fits, and a segment without SYN, are left alone', () => {
    const small = syn(4, 1200);
    expect(clampTcpMss(small, small.length, 1400)).toBe(false);
    const ack = syn(4, 1460, 0x10);
    const before = Buffer.from(ack);
    expect(clampTcpMss(ack, ack.length, 1400)).toBe(false);
    expect(ack.equals(before)).toBe(true);
  });
});
