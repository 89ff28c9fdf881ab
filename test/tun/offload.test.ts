/**
 * The TUN offload code of the addon (native/tunsec_offload.cc) on crafted packets: TSO/USO
 * super-packets split into segments as the kernel's GSO would, partial checksums completed, and
 * opened TCP segments coalesced into GRO super-packets only when that is lossless. Every checksum
 * is verified with the independent RFC 1071 code of ./offload-packets.ts.
 */
import { describe, expect, it } from 'vitest';
import { loadNative, nativeAvailable } from '../../src/native/addon.js';
import {
  ECN_CE,
  ECN_ECT0,
  GSO_ECN,
  GSO_NONE,
  GSO_TCPV4,
  GSO_TCPV6,
  GSO_UDP_L4,
  TCP_ACK,
  TCP_CWR,
  TCP_ECE,
  TCP_FIN,
  TCP_PSH,
  VIRTIO_NET_HDR_F_DATA_VALID,
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  ipv4HeaderValid,
  isV6,
  l4ChecksumValid,
  l4Offset,
  onesSum,
  parseVnet,
  payloadBytes,
  pseudoSum,
  tcpPacket,
  tcpTimestamps,
  udpPacket,
  vnet,
  type IpSpec,
} from './offload-packets.js';

if (!nativeAvailable()) throw new Error('offload tests: the native addon is not built (npm ci builds it)');
const addon = loadNative();
if (!addon.gsoSplit || !addon.groCoalesce) throw new Error('offload tests: the native addon predates the TUN offloads (rebuild it: npm ci)');
const gsoSplit = addon.gsoSplit;
const groCoalesce = addon.groCoalesce;

function split(hdr: Buffer, pkt: Buffer, slots = 64, slotSize = 2048): Buffer[] | -1 {
  const input = Buffer.concat([hdr, pkt]);
  const bufs = Array.from({ length: slots }, () => Buffer.alloc(slotSize));
  const lens = new Int32Array(slots);
  const n = gsoSplit(input, input.length, bufs, lens);
  if (n < 0) return -1;
  return bufs.slice(0, n).map((b, i) => b.subarray(0, lens[i]));
}

function segmentsOf(r: Buffer[] | -1): Buffer[] {
  if (r === -1) throw new Error('refused');
  return r;
}

const tcpOff = (p: Buffer): number => l4Offset(p);
const tcpHdrLen = (p: Buffer): number => (p[tcpOff(p) + 12]! >> 4) * 4;
const tcpPayload = (p: Buffer): Buffer => p.subarray(tcpOff(p) + tcpHdrLen(p));
const seqOf = (p: Buffer): number => p.readUInt32BE(tcpOff(p) + 4);
const flagsOf = (p: Buffer): number => p[tcpOff(p) + 13]!;

/** Checks what every TCP segment must satisfy and returns their payloads joined. */
function checkTcpSegments(segs: Buffer[], superPkt: Buffer, gso: number): Buffer {
  const off = tcpOff(superPkt);
  const hl = off + tcpHdrLen(superPkt);
  const seq0 = seqOf(superPkt);
  segs.forEach((s, i) => {
    expect(s.length).toBeLessThanOrEqual(hl + gso);
    if (i < segs.length - 1) expect(s.length).toBe(hl + gso);
    expect(l4ChecksumValid(s, 6)).toBe(true);
    expect(seqOf(s)).toBe((seq0 + i * gso) >>> 0);
    // the IP header except length/ID/checksum, and the TCP header except seq/flags/checksum, are the super-packet's
    if (isV6(s)) {
      expect(s.readUInt16BE(4)).toBe(s.length - 40);
      expect(s.subarray(0, 4)).toEqual(superPkt.subarray(0, 4));
      expect(s.subarray(6, 40)).toEqual(superPkt.subarray(6, 40));
    } else {
      expect(s.readUInt16BE(2)).toBe(s.length);
      expect(s.readUInt16BE(4)).toBe((superPkt.readUInt16BE(4) + i) & 0xffff);
      expect(ipv4HeaderValid(s)).toBe(true);
      expect(s.subarray(6, 10)).toEqual(superPkt.subarray(6, 10));
      expect(s.subarray(12, off)).toEqual(superPkt.subarray(12, off));
    }
    expect(s.subarray(off + 8, off + 13)).toEqual(superPkt.subarray(off + 8, off + 13));
    expect(s.subarray(off + 14, off + 16)).toEqual(superPkt.subarray(off + 14, off + 16));
    expect(s.subarray(off + 18, hl)).toEqual(superPkt.subarray(off + 18, hl));
  });
  return Buffer.concat(segs.map(tcpPayload));
}

describe('GSO split: TSO super-packets become MTU-sized segments before sealing', () => {
  it('an IPv4 TCP super-packet splits into gso_size segments: IDs counted up, lengths, header and TCP checksums right, FIN/PSH only on the last', () => {
    const payload = payloadBytes(3500);
    const sup = tcpPacket({ id: 0xfffe }, { seq: 0xfffffc00, flags: TCP_ACK | TCP_PSH | TCP_FIN, payload });
    const segs = segmentsOf(
      split(vnet({ flags: VIRTIO_NET_HDR_F_NEEDS_CSUM, gsoType: GSO_TCPV4, hdrLen: 40, gsoSize: 1000, csumStart: 20, csumOffset: 16 }), sup),
    );
    expect(segs.map((s) => s.length)).toEqual([1040, 1040, 1040, 540]);
    expect(checkTcpSegments(segs, sup, 1000)).toEqual(payload);
    expect(segs.map(flagsOf)).toEqual([TCP_ACK, TCP_ACK, TCP_ACK, TCP_ACK | TCP_PSH | TCP_FIN]);
    expect(segs.map((s) => s.readUInt16BE(4))).toEqual([0xfffe, 0xffff, 0, 1]); // the 16-bit ID wraps
  });

  it('TCP options (timestamps) are copied into every segment', () => {
    const payload = payloadBytes(2896, 2);
    const sup = tcpPacket({}, { seq: 1, options: tcpTimestamps(111, 222), payload });
    const segs = segmentsOf(
      split(vnet({ flags: VIRTIO_NET_HDR_F_NEEDS_CSUM, gsoType: GSO_TCPV4, hdrLen: 52, gsoSize: 1448, csumStart: 20, csumOffset: 16 }), sup),
    );
    expect(segs).toHaveLength(2);
    expect(checkTcpSegments(segs, sup, 1448)).toEqual(payload);
    for (const s of segs) expect(s.subarray(40, 52)).toEqual(Buffer.from(tcpTimestamps(111, 222)));
  });

  it('an IPv6 TCP super-packet splits with payload lengths and checksums right; CWR stays on the first segment only (GSO_ECN)', () => {
    const payload = payloadBytes(4000, 3);
    const sup = tcpPacket({ v6: true, tos: ECN_ECT0 }, { seq: 77, flags: TCP_ACK | TCP_CWR | TCP_ECE | TCP_PSH, options: tcpTimestamps(5, 6), payload });
    const segs = segmentsOf(
      split(vnet({ flags: VIRTIO_NET_HDR_F_NEEDS_CSUM, gsoType: GSO_TCPV6 | GSO_ECN, hdrLen: 72, gsoSize: 1388, csumStart: 40, csumOffset: 16 }), sup),
    );
    expect(segs).toHaveLength(3);
    expect(checkTcpSegments(segs, sup, 1388)).toEqual(payload);
    expect(segs.map(flagsOf)).toEqual([TCP_ACK | TCP_CWR | TCP_ECE, TCP_ACK | TCP_ECE, TCP_ACK | TCP_ECE | TCP_PSH]);
    for (const s of segs) expect((s[1]! >> 4) | ((s[0]! & 0x0f) << 4)).toBe(ECN_ECT0); // traffic class (ECN) kept
  });

  it('a CE mark on the super-packet is carried by every segment', () => {
    const sup = tcpPacket({ tos: 0xb8 | ECN_CE }, { seq: 9, payload: payloadBytes(2500) });
    const segs = segmentsOf(split(vnet({ gsoType: GSO_TCPV4, gsoSize: 1200 }), sup));
    expect(segs.map((s) => s[1])).toEqual([0xbb, 0xbb, 0xbb]);
    for (const s of segs) expect(ipv4HeaderValid(s)).toBe(true);
  });

  it('IPv4 options (router alert) are copied into every segment and covered by its header checksum', () => {
    const ra = Uint8Array.from([148, 4, 0, 0]);
    const payload = payloadBytes(2100, 4);
    const sup = tcpPacket({ ipOptions: ra }, { seq: 1000, payload });
    const segs = segmentsOf(split(vnet({ flags: VIRTIO_NET_HDR_F_NEEDS_CSUM, gsoType: GSO_TCPV4, gsoSize: 1000, csumStart: 24, csumOffset: 16 }), sup));
    expect(segs).toHaveLength(3);
    expect(checkTcpSegments(segs, sup, 1000)).toEqual(payload);
    for (const s of segs) expect(s.subarray(20, 24)).toEqual(Buffer.from(ra));
  });

  it('refuses what it cannot segment right: IPv4 loose source route, an IPv6 extension header, a fragment, a type/version mismatch', () => {
    const lsrr = Uint8Array.from([1, 131, 7, 4, 10, 0, 0, 9]);
    expect(split(vnet({ gsoType: GSO_TCPV4, gsoSize: 1000 }), tcpPacket({ ipOptions: lsrr }, { seq: 1, payload: payloadBytes(2000) }))).toBe(-1);
    expect(split(vnet({ gsoType: GSO_TCPV6, gsoSize: 1000 }), tcpPacket({ v6: true, hopByHop: true }, { seq: 1, payload: payloadBytes(2000) }))).toBe(-1);
    const frag = tcpPacket({}, { seq: 1, payload: payloadBytes(2000) });
    frag[6] = 0x20; // MF
    expect(split(vnet({ gsoType: GSO_TCPV4, gsoSize: 1000 }), frag)).toBe(-1);
    expect(split(vnet({ gsoType: GSO_TCPV6, gsoSize: 1000 }), tcpPacket({}, { seq: 1, payload: payloadBytes(2000) }))).toBe(-1);
    expect(split(vnet({ gsoType: 3 /* UFO */, gsoSize: 1000 }), udpPacket({}, payloadBytes(2000)))).toBe(-1);
    // a segment larger than its slot
    expect(split(vnet({ gsoType: GSO_TCPV4, gsoSize: 1800 }), tcpPacket({}, { seq: 1, payload: payloadBytes(3000) }), 4, 1500)).toBe(-1);
  });

  it('completes a partial (NEEDS_CSUM) checksum of a lone TCP or UDP packet at csum_start + csum_offset', () => {
    const t4 = tcpPacket({}, { seq: 5, payload: payloadBytes(333) }, true);
    expect(l4ChecksumValid(t4, 6)).toBe(false);
    const [o4] = segmentsOf(split(vnet({ flags: VIRTIO_NET_HDR_F_NEEDS_CSUM, gsoType: GSO_NONE, csumStart: 20, csumOffset: 16 }), t4));
    expect(l4ChecksumValid(o4!, 6)).toBe(true);
    expect(o4!.subarray(0, 36)).toEqual(t4.subarray(0, 36));
    const u6 = udpPacket({ v6: true }, payloadBytes(501), true);
    const [o6] = segmentsOf(split(vnet({ flags: VIRTIO_NET_HDR_F_NEEDS_CSUM, gsoType: GSO_NONE, csumStart: 40, csumOffset: 6 }), u6));
    expect(l4ChecksumValid(o6!, 17)).toBe(true);
    expect(o6!.readUInt16BE(46)).not.toBe(0);
    // without NEEDS_CSUM the packet is passed on untouched
    const plain = tcpPacket({ v6: true }, { seq: 5, payload: payloadBytes(99) });
    expect(segmentsOf(split(vnet({}), plain))).toEqual([plain]);
  });

  it('a UDP (USO) super-packet splits into datagrams with their own lengths and checksums', () => {
    const payload = payloadBytes(3000, 5);
    for (const ip of [{ id: 7 }, { v6: true }] as IpSpec[]) {
      const sup = udpPacket(ip, payload, true);
      const off = l4Offset(sup);
      const segs = segmentsOf(
        split(vnet({ flags: VIRTIO_NET_HDR_F_NEEDS_CSUM, gsoType: GSO_UDP_L4, hdrLen: off + 8, gsoSize: 1200, csumStart: off, csumOffset: 6 }), sup),
      );
      expect(segs.map((s) => s.length)).toEqual([off + 1208, off + 1208, off + 608]);
      for (const s of segs) {
        expect(s.readUInt16BE(off + 4)).toBe(s.length - off);
        expect(l4ChecksumValid(s, 17)).toBe(true);
        if (!isV6(s)) expect(ipv4HeaderValid(s)).toBe(true);
      }
      expect(Buffer.concat(segs.map((s) => s.subarray(off + 8)))).toEqual(payload);
    }
  });
});

// ---------------------------------------------------------------------------------------------

function coalesce(pkts: Buffer[]): Array<{ hdr: ReturnType<typeof parseVnet>; pkt: Buffer }> {
  const bufs = pkts.map((p) => Buffer.from(p)); // the coalescer rewrites head headers in place
  const lens = Int32Array.from(pkts.map((p) => p.length));
  return groCoalesce(bufs, lens, bufs.length).map((b) => ({ hdr: parseVnet(b), pkt: b.subarray(10) }));
}

/** What the kernel does with a NEEDS_CSUM packet: complete the checksum over [csum_start, end). */
function completedChecksumValid(pkt: Buffer, csumStart: number, csumOffset: number): boolean {
  const c = Buffer.from(pkt);
  const sum = onesSum(c, csumStart, c.length);
  c.writeUInt16BE(0xffff - sum, csumStart + csumOffset);
  return (
    l4ChecksumValid(c, 6) && c.readUInt16BE(csumStart + 16) !== 0 && pkt.readUInt16BE(csumStart + csumOffset) === pseudoSum(pkt, 6, pkt.length - csumStart)
  );
}

/** `n` consecutive segments of one flow, `mss` payload octets each (the last `last` octets). */
function flow(
  ip: IpSpec,
  n: number,
  mss: number,
  opts: { seq?: number; last?: number; options?: Uint8Array; flags?: (i: number) => number; tos?: (i: number) => number; sport?: number } = {},
): Buffer[] {
  const out: Buffer[] = [];
  let seq = opts.seq ?? 1000;
  for (let i = 0; i < n; i++) {
    const len = i === n - 1 && opts.last !== undefined ? opts.last : mss;
    const tos = opts.tos?.(i) ?? ip.tos;
    out.push(
      tcpPacket(
        { ...ip, id: ((ip.id ?? 100) + i) & 0xffff, ...(tos === undefined ? {} : { tos }) },
        {
          seq,
          payload: payloadBytes(len, i + 1),
          flags: opts.flags?.(i) ?? TCP_ACK,
          ...(opts.options ? { options: opts.options } : {}),
          ...(opts.sport ? { sport: opts.sport } : {}),
        },
      ),
    );
    seq = (seq + len) >>> 0;
  }
  return out;
}

describe('GRO: opened TCP segments of one flow leave as one TUN write', () => {
  it('contiguous IPv4 segments become one TCPV4 super-packet: NEEDS_CSUM with the pseudo-header seed, PSH of the last, payloads in order', () => {
    const segs = flow({}, 4, 1360, { last: 500, flags: (i) => (i === 3 ? TCP_ACK | TCP_PSH : TCP_ACK) });
    const out = coalesce(segs);
    expect(out).toHaveLength(1);
    const { hdr, pkt } = out[0]!;
    expect(hdr).toEqual({ flags: VIRTIO_NET_HDR_F_NEEDS_CSUM, gsoType: GSO_TCPV4, hdrLen: 40, gsoSize: 1360, csumStart: 20, csumOffset: 16 });
    expect(pkt.length).toBe(40 + 3 * 1360 + 500);
    expect(pkt.readUInt16BE(2)).toBe(pkt.length);
    expect(ipv4HeaderValid(pkt)).toBe(true);
    expect(flagsOf(pkt)).toBe(TCP_ACK | TCP_PSH);
    expect(seqOf(pkt)).toBe(1000);
    expect(tcpPayload(pkt)).toEqual(Buffer.concat(segs.map(tcpPayload)));
    expect(completedChecksumValid(pkt, 20, 16)).toBe(true);
  });

  it('IPv6 segments with equal TCP timestamps become one TCPV6 super-packet', () => {
    const segs = flow({ v6: true }, 3, 1328, { options: tcpTimestamps(1, 2) });
    const out = coalesce(segs);
    expect(out).toHaveLength(1);
    const { hdr, pkt } = out[0]!;
    expect(hdr).toMatchObject({ flags: VIRTIO_NET_HDR_F_NEEDS_CSUM, gsoType: GSO_TCPV6, hdrLen: 72, gsoSize: 1328, csumStart: 40, csumOffset: 16 });
    expect(pkt.readUInt16BE(4)).toBe(pkt.length - 40);
    expect(tcpPayload(pkt)).toEqual(Buffer.concat(segs.map(tcpPayload)));
    expect(completedChecksumValid(pkt, 40, 16)).toBe(true);
  });

  it('differing timestamps, a gap in the sequence, or a short segment end a super-packet', () => {
    const ts = flow({}, 3, 1000);
    const withTs = [0, 1, 2].map((i) =>
      tcpPacket({ id: 100 + i }, { seq: 1000 + 1000 * i, payload: payloadBytes(1000), options: tcpTimestamps(i === 2 ? 9 : 1, 2) }),
    );
    expect(coalesce(withTs).map((o) => o.pkt.length)).toEqual([40 + 12 + 2000, 40 + 12 + 1000]);
    const gap = [ts[0]!, ts[2]!];
    expect(coalesce(gap).map((o) => o.hdr.gsoType)).toEqual([GSO_NONE, GSO_NONE]);
    const short = flow({}, 3, 1000, { last: 1000 });
    short[1] = tcpPacket({ id: 101 }, { seq: 2000, payload: payloadBytes(400) });
    short[2] = tcpPacket({ id: 102 }, { seq: 2400, payload: payloadBytes(1000) });
    expect(coalesce(short).map((o) => o.pkt.length)).toEqual([40 + 1400, 40 + 1000]);
  });

  it('a segment marked CE is never merged with unmarked ones, and the flow keeps its order', () => {
    const segs = flow({ tos: ECN_ECT0 }, 4, 1000, { tos: (i) => (i === 1 ? ECN_CE : ECN_ECT0) });
    const out = coalesce(segs);
    expect(out.map((o) => seqOf(o.pkt))).toEqual([1000, 2000, 3000]);
    expect(out.map((o) => o.pkt[1])).toEqual([ECN_ECT0, ECN_CE, ECN_ECT0]);
    expect(out.map((o) => tcpPayload(o.pkt).length)).toEqual([1000, 1000, 2000]);
    // all CE: merged, and the super-packet (whose segments the kernel copies the TOS into) carries CE
    const allCe = coalesce(flow({ tos: ECN_CE }, 3, 1000));
    expect(allCe).toHaveLength(1);
    expect(allCe[0]!.pkt[1]).toBe(ECN_CE);
  });

  it('CWR, FIN and SYN segments, IPv4 options and IPv6 extension headers are written alone with a zero header', () => {
    const cwr = flow({}, 3, 1000, { flags: (i) => (i === 1 ? TCP_ACK | TCP_CWR : TCP_ACK) });
    expect(coalesce(cwr).map((o) => [seqOf(o.pkt), o.hdr.gsoType, o.hdr.flags])).toEqual([
      [1000, GSO_NONE, VIRTIO_NET_HDR_F_DATA_VALID],
      [2000, GSO_NONE, 0],
      [3000, GSO_NONE, VIRTIO_NET_HDR_F_DATA_VALID],
    ]);
    const fin = flow({}, 2, 1000, { flags: (i) => (i === 1 ? TCP_ACK | TCP_FIN : TCP_ACK) });
    expect(coalesce(fin).map((o) => o.hdr.flags)).toEqual([VIRTIO_NET_HDR_F_DATA_VALID, 0]);
    const opts = [0, 1].map((i) =>
      tcpPacket({ id: 100 + i, ipOptions: Uint8Array.from([148, 4, 0, 0]) }, { seq: 1000 + 1000 * i, payload: payloadBytes(1000) }),
    );
    const o = coalesce(opts);
    expect(o.map((x) => x.hdr)).toEqual([vnetZero, vnetZero]);
    expect(o.map((x) => x.pkt)).toEqual(opts);
    const ext = [0, 1].map((i) => tcpPacket({ v6: true, hopByHop: true }, { seq: 1000 + 1000 * i, payload: payloadBytes(1000) }));
    const e = coalesce(ext);
    expect(e.map((x) => x.hdr)).toEqual([vnetZero, vnetZero]);
    expect(e.map((x) => x.pkt)).toEqual(ext);
  });

  it('a segment with a bad TCP checksum is written alone, unmarked, so the kernel drops it', () => {
    const segs = flow({}, 3, 1000);
    const bad = segs[1]!;
    bad[100] = bad[100]! ^ 0xff;
    const out = coalesce(segs);
    expect(out.map((o) => [seqOf(o.pkt), o.hdr.flags])).toEqual([
      [1000, VIRTIO_NET_HDR_F_DATA_VALID],
      [2000, 0],
      [3000, VIRTIO_NET_HDR_F_DATA_VALID],
    ]);
  });

  it('two interleaved flows each become their own super-packet; UDP and non-consecutive IPv4 IDs are left alone', () => {
    const a = flow({}, 3, 1000, { sport: 1111 });
    const b = flow({}, 3, 1000, { sport: 2222, seq: 50_000 });
    const out = coalesce([a[0]!, b[0]!, a[1]!, b[1]!, a[2]!, b[2]!]);
    expect(out.map((o) => [o.pkt.readUInt16BE(20), tcpPayload(o.pkt).length])).toEqual([
      [1111, 3000],
      [2222, 3000],
    ]);
    const udp = [udpPacket({}, payloadBytes(1000)), udpPacket({}, payloadBytes(1000))];
    expect(coalesce(udp).map((o) => o.hdr)).toEqual([vnetZero, vnetZero]);
    const ids = flow({}, 2, 1000);
    const jumped = [ids[0]!, tcpPacket({ id: 200 }, { seq: 2000, payload: payloadBytes(1000, 2) })];
    expect(coalesce(jumped)).toHaveLength(2);
  });

  it('a super-packet stops below 64 KiB', () => {
    const segs = flow({}, 60, 1400);
    const out = coalesce(segs);
    expect(out.map((o) => o.pkt.length)).toEqual([40 + 46 * 1400, 40 + 14 * 1400]);
    for (const o of out) expect(completedChecksumValid(o.pkt, 20, 16)).toBe(true);
  });
});

const vnetZero = { flags: 0, gsoType: 0, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 };

describe('hostile input', () => {
  it('random and mutated packets and virtio headers never crash the split or the coalescing; every output stays within 64 KiB', () => {
    let seed = 0x12345678;
    const rnd = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    const bases = [
      tcpPacket({}, { seq: 1, payload: payloadBytes(3000) }),
      tcpPacket({ v6: true }, { seq: 1, payload: payloadBytes(3000), options: tcpTimestamps(1, 2) }),
      udpPacket({}, payloadBytes(2500)),
      tcpPacket({ ipOptions: Uint8Array.from([148, 4, 0, 0]) }, { seq: 1, payload: payloadBytes(2000) }),
    ];
    const slots = Array.from({ length: 64 }, () => Buffer.alloc(2048));
    const lens = new Int32Array(64);
    for (let i = 0; i < 3000; i++) {
      const base = bases[rnd(bases.length)]!;
      const p = Buffer.from(base.subarray(0, 1 + rnd(base.length)));
      for (let k = rnd(4); k > 0; k--) p[rnd(p.length)] = rnd(256);
      const hdr = vnet({
        flags: rnd(4),
        gsoType: [0, 1, 3, 4, 5, 0x81, rnd(256)][rnd(7)]!,
        gsoSize: [0, 1, 8, 500, 1400, 60000, rnd(65536)][rnd(7)]!,
        csumStart: rnd(3) === 0 ? rnd(65536) : 20,
        csumOffset: rnd(3) === 0 ? rnd(65536) : 16,
      });
      const input = Buffer.concat([hdr, p]);
      let n = -2;
      try {
        n = gsoSplit(input, input.length, slots, lens);
      } catch (e) {
        // only the documented "not enough buffers" refusal may throw
        expect((e as Error).message).toMatch(/not enough buffers/);
        continue;
      }
      expect(n).toBeGreaterThanOrEqual(-1);
      for (let k = 0; k < n; k++) expect(lens[k]).toBeLessThanOrEqual(2048);
    }
    for (let i = 0; i < 300; i++) {
      const count = 1 + rnd(64);
      const pkts = flow(rnd(2) ? {} : { v6: true }, count, 1 + rnd(1400));
      for (let k = rnd(6); k > 0; k--) {
        const p = pkts[rnd(count)]!;
        p[rnd(p.length)] = rnd(256);
      }
      const out = coalesce(pkts.map((p) => p.subarray(0, rnd(8) === 0 ? rnd(p.length + 1) : p.length)));
      for (const o of out) expect(o.pkt.length).toBeLessThanOrEqual(65535);
      expect(out.length).toBeLessThanOrEqual(count);
    }
  });
});
