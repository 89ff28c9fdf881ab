/**
 * The ESP packet path (src/esp/engine.ts) without I/O, between two peers
 * "moon" and "sun" with mirrored SAs (test/esp/support.ts):
 *
 *  - outbound verdicts: PROTECT (the octets of raw IPv4/IPv6 transport and
 *    tunnel packets and of ESP-in-UDP, sequence numbers and IVs), BYPASS,
 *    DISCARD, no policy (fail closed), `private` without an SA (hold queue of
 *    copies, overflow, one acquire per interval with the packet's
 *    selectors, release after setOutboundSa), `private-or-clear`, the
 *    global off switch;
 *  - inbound round trips for every family × mode × encapsulation that
 *    restore the original packet (transport without a received header: a
 *    rebuilt header with the right addresses and checksums);
 *  - inbound drops, each counted: unknown SPI, truncated, ICV failure,
 *    replay, too old, forged future sequence numbers that must not move the
 *    window, selector violations (RFC 4301 §5.2), dummy packets, bad padding;
 *  - lifetimes on the packet path: soft/hard by packets and bytes, by time,
 *    sequence-number exhaustion without ESN and ESN across 2^32;
 *  - no exception for random input (fast-check).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { SaLifetimes } from '../../src/esp/api.js';
import { PacketEngine, OUT_CLEAR, OUT_DROP, OUT_HELD, OUT_SEND, type InboundSource } from '../../src/esp/engine.js';
import { IPV4_MIN_HEADER, IPV6_HEADER } from '../../src/esp/ip.js';
import { sealEspInto } from '../../src/esp/packet.js';
import { SecurityAssociationDatabase, type SadEntry } from '../../src/esp/sadb.js';
import { parseIp } from '../../src/util/ip.js';
import {
  ADDR,
  ANY4,
  ANY6,
  deliverReceived,
  expectRebuilt,
  icmp,
  inResult,
  ipPacket,
  ipv4,
  ipv4HeaderOk,
  ipv6,
  l4ChecksumOk,
  moonToSun,
  outResult,
  peers,
  policySpec,
  receive,
  REQID,
  send,
  SPI_MOON_TO_SUN,
  sunToMoon,
  tcp,
  transfer,
  ts,
  udp,
  type Family,
  type Pair,
  type PeerOptions,
  type Received,
  COMBOS,
  comboName,
} from './support.js';

/** Where the ESP header starts in what `outbound` produced. */
function espOffset(pair: Pair, wire: Buffer): number {
  if (pair.opts.udp) return 0;
  return pair.opts.family === 4 ? (wire[0]! & 15) * 4 : 40;
}

const moonOutSa = (pair: Pair): SadEntry => pair.moon.sad.outboundSaFor(REQID)!;
const sunInSa = (pair: Pair): SadEntry => pair.sun.sad.inboundSa(SPI_MOON_TO_SUN)!;

/** A moon → sun packet through moon's outbound; returns what sun's socket would deliver. */
function sealed(pair: Pair, pkt: Buffer): Received {
  const { res, wire } = send(pair.moon, pkt);
  expect(res.verdict).toBe(OUT_SEND);
  return receive(pair, pair.moon, wire);
}

const copy = (r: Received): Received => ({ ...r, buf: Buffer.from(r.buf) });

/** An ESP packet with an arbitrary (encrypted) plaintext trailer: for bad padding and the like (32-bit seq). */
function sealCustom(sa: SadEntry, seq: number, plaintext: Buffer): Buffer {
  const b = Buffer.alloc(16 + plaintext.length + 16);
  b.writeUInt32BE(sa.esp.spi, 0);
  b.writeUInt32BE(seq, 4);
  b.writeUInt32BE(seq, 12);
  plaintext.copy(b, 16);
  sa.esp.ctx.sealInPlace(b, 8, Buffer.from(b.subarray(0, 8)), 16, plaintext.length);
  return b;
}

/** Take the next outbound sequence number of moon's SA for a hand-made packet. */
function nextSeq(sa: SadEntry): number {
  sa.seq += 1;
  return sa.seq;
}

const l4s = (family: Family) => [
  tcp(40000, 443, Buffer.from('GET / HTTP/1.1\r\n')),
  udp(5353, 53, Buffer.alloc(101, 7)),
  icmp(family === 4 ? 8 : 128, 0, Buffer.alloc(56, 0x61), family === 6),
];

// ---------------------------------------------------------------------------

describe('outbound: protect with an SA', () => {
  it('transport over raw IPv4 keeps the original header (options too) with protocol 50, new length and checksum; ESP at IHL × 4', () => {
    const pair = peers({ family: 4, mode: 'transport' });
    const options = Buffer.from([0x94, 0x04, 0x00, 0x00]); // router alert
    const pkt = ipv4({ src: ADDR[4].moon, dst: ADDR[4].sun, options, tos: 0x2e, ttl: 17 }, udp(1, 2, Buffer.alloc(33)));
    const { res, wire } = send(pair.moon, pkt);
    expect(res.verdict).toBe(OUT_SEND);
    expect(res.sa).toBe(moonOutSa(pair));
    const ihl = 24;
    const payload = pkt.length - ihl; // 41 octets: padding 1
    expect(res.length).toBe(ihl + 8 + 8 + payload + 1 + 2 + 16);
    expect(wire[0]).toBe(0x46);
    expect(wire[9]).toBe(50);
    expect(wire.readUInt16BE(2)).toBe(res.length);
    expect(ipv4HeaderOk(wire)).toBe(true);
    // everything else in the header is the original's
    const strip = (b: Buffer) => Buffer.concat([b.subarray(0, 2), b.subarray(4, 9), b.subarray(12, ihl)]);
    expect(strip(wire)).toEqual(strip(pkt));
    expect(wire.readUInt32BE(ihl)).toBe(SPI_MOON_TO_SUN);
    expect(wire.readUInt32BE(ihl + 4)).toBe(1);
    expect(pair.moon.dp.counters).toMatchObject({ outPackets: 1, outBytes: pkt.length });
  });

  it('transport over raw IPv6 keeps the fixed header with Next Header 50 and the new payload length', () => {
    const pair = peers({ family: 6, mode: 'transport' });
    const pkt = ipv6({ src: ADDR[6].moon, dst: ADDR[6].sun, trafficClass: 0xb8, flowLabel: 0x12345, hopLimit: 9 }, tcp(1, 2));
    const { res, wire } = send(pair.moon, pkt);
    expect(res.verdict).toBe(OUT_SEND);
    expect(wire[6]).toBe(50);
    expect(wire.readUInt16BE(4)).toBe(res.length - 40);
    expect(wire.subarray(0, 4)).toEqual(pkt.subarray(0, 4));
    expect(wire.subarray(7, 40)).toEqual(pkt.subarray(7, 40));
    expect(wire.readUInt32BE(40)).toBe(SPI_MOON_TO_SUN);
  });

  it('tunnel over raw IPv4: a new outer header between the SA addresses (protocol 50, DSCP/ECN and DF copied, checksum)', () => {
    const pair = peers({ family: 4, mode: 'tunnel' });
    const pkt = ipv4({ src: ADDR[4].moonHost, dst: ADDR[4].sunHost, tos: 0xb9, flags: 0x4000 }, icmp(8, 0));
    const { res, wire } = send(pair.moon, pkt);
    expect(res.verdict).toBe(OUT_SEND);
    expect(wire[0]).toBe(0x45);
    expect(wire[1]).toBe(0xb9);
    expect(wire.readUInt16BE(2)).toBe(res.length);
    expect(wire.readUInt16BE(6)).toBe(0x4000);
    expect(wire[8]).toBe(64);
    expect(wire[9]).toBe(50);
    expect(wire.subarray(12, 16)).toEqual(parseIp(ADDR[4].moon));
    expect(wire.subarray(16, 20)).toEqual(parseIp(ADDR[4].sun));
    expect(ipv4HeaderOk(wire)).toBe(true);
    expect(res.length).toBe(20 + 8 + 8 + pkt.length + 2 + 2 + 16);
    expect(wire.readUInt32BE(20)).toBe(SPI_MOON_TO_SUN);
    // DF clear inside: clear outside
    const { wire: w2 } = send(pair.moon, ipv4({ src: ADDR[4].moonHost, dst: ADDR[4].sunHost, flags: 0 }, icmp(8, 0)));
    expect(w2.readUInt16BE(6)).toBe(0);
  });

  it('tunnel over raw IPv6: a new 40-octet outer header between the SA addresses', () => {
    const pair = peers({ family: 6, mode: 'tunnel' });
    const pkt = ipv6({ src: ADDR[6].moonHost, dst: ADDR[6].sunHost }, udp(1, 2));
    const { res, wire } = send(pair.moon, pkt);
    expect(res.verdict).toBe(OUT_SEND);
    expect(wire[0]! >> 4).toBe(6);
    expect(wire.readUInt16BE(4)).toBe(res.length - 40);
    expect(wire[6]).toBe(50);
    expect(wire.subarray(8, 24)).toEqual(parseIp(ADDR[6].moon));
    expect(wire.subarray(24, 40)).toEqual(parseIp(ADDR[6].sun));
    expect(wire.readUInt32BE(40)).toBe(SPI_MOON_TO_SUN);
  });

  for (const mode of ['transport', 'tunnel'] as const) {
    for (const family of [4, 6] as const) {
      it(`${mode} over UDP encapsulation (IPv${family}): the result is the bare ESP packet`, () => {
        const pair = peers({ family, mode, udp: true });
        const pkt = moonToSun(pair, udp(1000, 2000, Buffer.alloc(20)));
        const { res, wire } = send(pair.moon, pkt);
        expect(res.verdict).toBe(OUT_SEND);
        expect(wire.readUInt32BE(0)).toBe(SPI_MOON_TO_SUN);
        // transport: ESP(upper layer) only; tunnel: ESP(whole packet)
        const payload = mode === 'tunnel' ? pkt.length : pkt.length - (family === 4 ? 20 : 40);
        const pad = (4 - ((payload + 2) % 4)) % 4;
        expect(res.length).toBe(8 + 8 + payload + pad + 2 + 16);
      });
    }
  }

  for (const c of COMBOS) {
    it(`${comboName(c)}: sequence numbers 1, 2, 3… and the IV is the sequence number`, () => {
      const pair = peers(c);
      for (let i = 1; i <= 5; i++) {
        const { wire } = send(pair.moon, moonToSun(pair, udp(1, 2)));
        const esp = espOffset(pair, wire);
        expect(wire.readUInt32BE(esp)).toBe(SPI_MOON_TO_SUN);
        expect(wire.readUInt32BE(esp + 4)).toBe(i);
        expect(wire.readBigUInt64BE(esp + 8)).toBe(BigInt(i));
      }
      expect(moonOutSa(pair).seq).toBe(5);
      expect(moonOutSa(pair).counters.packets).toBe(5);
    });
  }

  it('the SA records the time of last use from the coarse clock (tick)', () => {
    const pair = peers({ family: 4, mode: 'transport' });
    pair.moon.clock.ms = 1_800_000_123_456;
    pair.moon.dp.tick();
    send(pair.moon, moonToSun(pair, udp(1, 2)));
    expect(moonOutSa(pair).counters.lastUsed).toBe(1_800_000_123);
  });

  it('a transport-mode packet whose protocol is 59 (would be a dummy at the peer) is dropped as malformed', () => {
    const pair = peers({ family: 4, mode: 'transport' });
    const { res } = send(pair.moon, moonToSun(pair, { protocol: 59, octets: Buffer.alloc(8) }));
    expect(res.verdict).toBe(OUT_DROP);
    expect(pair.moon.dp.counters.outMalformed).toBe(1);
    expect(pair.moon.dp.counters.outPackets).toBe(0);
  });

  it('a maximal inner packet in raw IPv4 tunnel mode is dropped, not thrown (the outer packet would exceed 65535 octets)', () => {
    const pair = peers({ family: 4, mode: 'tunnel' });
    const pkt = ipv4({ src: ADDR[4].moonHost, dst: ADDR[4].sunHost }, udp(1, 2, Buffer.alloc(65535 - 28)));
    expect(pkt.length).toBe(65535);
    const out = Buffer.alloc(pkt.length + 128);
    const res = outResult();
    expect(() => pair.moon.dp.outbound(pkt, pkt.length, out, res)).not.toThrow();
    expect(res.verdict).toBe(OUT_DROP);
  });
});

describe('outbound: policies without SA use, and the global off switch', () => {
  it('no policy selects the packet: OUT_DROP, counted outNoPolicy (fail closed)', () => {
    const pair = peers({ family: 4, mode: 'tunnel' });
    const { res } = send(pair.moon, ipPacket('10.9.0.1', ADDR[4].sunHost, udp(1, 2)));
    expect(res).toMatchObject({ verdict: OUT_DROP, length: 0, sa: undefined });
    expect(pair.moon.dp.counters.outNoPolicy).toBe(1);
    const { res: r6 } = send(pair.moon, ipPacket(ADDR[6].moonHost, ADDR[6].sunHost, udp(1, 2)));
    expect(r6.verdict).toBe(OUT_DROP);
    expect(pair.moon.dp.counters.outNoPolicy).toBe(2);
  });

  it('not an IP packet: OUT_DROP, counted outMalformed', () => {
    const pair = peers({ family: 4, mode: 'tunnel' });
    const res = outResult();
    pair.moon.dp.outbound(Buffer.from([0x45, 0, 0]), 3, Buffer.alloc(200), res);
    pair.moon.dp.outbound(Buffer.alloc(60), 60, Buffer.alloc(200), res);
    expect(res.verdict).toBe(OUT_DROP);
    expect(pair.moon.dp.counters.outMalformed).toBe(2);
  });

  it('bypass: OUT_CLEAR (outBypass) even with an SA; discard: OUT_DROP (outDiscard); by priority over protect', () => {
    const pair = peers({ family: 4, mode: 'tunnel' });
    pair.moon.sad.addPolicy(
      policySpec({ reqid: 50, priority: 10, action: 'bypass', local: [ts(ADDR[4].moonHost)], remote: [ts(ADDR[4].sunHost, ADDR[4].sunHost, 17, 53, 53)] }),
    );
    pair.moon.sad.addPolicy(
      policySpec({ reqid: 51, priority: 10, action: 'discard', local: [ts(ADDR[4].moonHost)], remote: [ts(ADDR[4].sunHost, ADDR[4].sunHost, 6)] }),
    );
    expect(send(pair.moon, moonToSun(pair, udp(1, 53))).res.verdict).toBe(OUT_CLEAR);
    expect(send(pair.moon, moonToSun(pair, tcp(1, 22))).res.verdict).toBe(OUT_DROP);
    expect(send(pair.moon, moonToSun(pair, udp(1, 54))).res.verdict).toBe(OUT_SEND);
    expect(pair.moon.dp.counters).toMatchObject({ outBypass: 1, outDiscard: 1, outPackets: 1 });
    expect(moonOutSa(pair).seq).toBe(1);
  });

  it('global off "clear": protected traffic goes in the clear (outGlobalClear) without using the SA; "drop": dropped', () => {
    const pair = peers({ family: 6, mode: 'tunnel' });
    pair.moon.sad.addPolicy(
      policySpec({ reqid: 50, priority: 10, action: 'bypass', local: [ANY6], remote: [ts(ADDR[6].sunHost, ADDR[6].sunHost, 17, 53, 53)] }),
    );
    pair.moon.dp.globalOff = 'clear';
    expect(send(pair.moon, moonToSun(pair, udp(1, 2))).res.verdict).toBe(OUT_CLEAR);
    expect(send(pair.moon, moonToSun(pair, udp(1, 53))).res.verdict).toBe(OUT_CLEAR);
    pair.moon.dp.globalOff = 'drop';
    expect(send(pair.moon, moonToSun(pair, udp(1, 2))).res.verdict).toBe(OUT_DROP);
    // bypass policies are not "protected traffic"
    expect(send(pair.moon, moonToSun(pair, udp(1, 53))).res.verdict).toBe(OUT_CLEAR);
    expect(pair.moon.dp.counters).toMatchObject({ outGlobalClear: 1, outGlobalDrop: 1, outBypass: 2, outPackets: 0 });
    expect(moonOutSa(pair).seq).toBe(0);
    pair.moon.dp.globalOff = undefined;
    const { wire } = send(pair.moon, moonToSun(pair, udp(1, 2)));
    expect(wire.readUInt32BE(44)).toBe(1);
    // the global switch does not trigger acquires either
    const noSa = peers({ family: 4, mode: 'tunnel', withSas: false });
    noSa.moon.dp.globalOff = 'drop';
    send(noSa.moon, moonToSun(noSa, udp(1, 2)));
    expect(noSa.moon.acquires).toHaveLength(0);
  });
});

describe('outbound: `private` policy without an SA (hold queue, acquire)', () => {
  const opts = (o: Partial<PeerOptions> = {}): PeerOptions => ({
    family: 4,
    mode: 'tunnel',
    withSas: false,
    engine: { holdPackets: 3, acquireIntervalMs: 5000 },
    ...o,
  });

  it('holds copies of the first N packets (OUT_HELD), drops the rest (outHoldOverflow)', () => {
    const pair = peers(opts());
    const pkts = [1, 2, 3, 4, 5].map((i) => moonToSun(pair, udp(1000 + i, 2000)));
    const verdicts = pkts.map((p) => send(pair.moon, p).res.verdict);
    expect(verdicts).toEqual([OUT_HELD, OUT_HELD, OUT_HELD, OUT_DROP, OUT_DROP]);
    expect(pair.moon.dp.counters).toMatchObject({ outHeld: 3, outHoldOverflow: 2, outPackets: 0 });
    const originals = pkts.map((p) => Buffer.from(p));
    // the TUN read buffer is reused: the queue must hold copies
    for (const p of pkts) p.fill(0xff);
    const held = pair.moon.dp.takeHeld(REQID);
    expect(held).toEqual(originals.slice(0, 3));
    expect(pair.moon.dp.takeHeld(REQID)).toEqual([]);
    expect(pair.moon.dp.takeHeld(12345)).toEqual([]);
  });

  it('holds only `length` octets of a packet read into a bigger buffer', () => {
    const pair = peers(opts());
    const pkt = moonToSun(pair, udp(1, 2));
    const big = Buffer.concat([pkt, Buffer.alloc(500, 0xab)]);
    const res = outResult();
    pair.moon.dp.outbound(big, pkt.length, Buffer.alloc(1000), res);
    expect(res.verdict).toBe(OUT_HELD);
    expect(pair.moon.dp.takeHeld(REQID)).toEqual([pkt]);
  });

  it('holdPackets 0: nothing is held (outNoSa), an acquire is still raised', () => {
    const pair = peers(opts({ engine: { holdPackets: 0 } }));
    expect(send(pair.moon, moonToSun(pair, udp(1, 2))).res.verdict).toBe(OUT_DROP);
    expect(pair.moon.dp.counters).toMatchObject({ outNoSa: 1, outHeld: 0, acquires: 1 });
    expect(pair.moon.acquires).toHaveLength(1);
  });

  it('raises exactly one acquire per interval, carrying the selectors of the packet that triggered it', () => {
    const pair = peers(opts());
    send(pair.moon, moonToSun(pair, tcp(40000, 443)));
    send(pair.moon, moonToSun(pair, udp(1, 2)));
    pair.moon.clock.ms += 4_999;
    send(pair.moon, moonToSun(pair, udp(1, 2)));
    expect(pair.moon.acquires).toEqual([
      {
        reqid: REQID,
        packetSelector: {
          local: { protocol: 6, startAddress: ADDR[4].moonHost, endAddress: ADDR[4].moonHost, startPort: 40000, endPort: 40000 },
          remote: { protocol: 6, startAddress: ADDR[4].sunHost, endAddress: ADDR[4].sunHost, startPort: 443, endPort: 443 },
        },
      },
    ]);
    pair.moon.clock.ms += 1;
    send(pair.moon, moonToSun(pair, icmp(8, 0)));
    expect(pair.moon.acquires).toHaveLength(2);
    expect(pair.moon.acquires[1]!.packetSelector.remote).toEqual({
      protocol: 1,
      startAddress: ADDR[4].sunHost,
      endAddress: ADDR[4].sunHost,
      startPort: 0x0800,
      endPort: 0x0800,
    });
    expect(pair.moon.dp.counters.acquires).toBe(2);
  });

  it('an acquire for an OPAQUE-port packet (IPv6 non-initial fragment) asks for the whole port range', () => {
    const pair = peers(opts({ family: 6 }));
    const frag = ipv6(
      { src: ADDR[6].moonHost, dst: ADDR[6].sunHost, exts: [{ type: 44, octets: Buffer.from([0, 0, 0, 0x10, 0, 0, 0, 9]) }], raw: true },
      udp(1, 2),
    );
    expect(send(pair.moon, frag).res.verdict).toBe(OUT_HELD);
    expect(pair.moon.acquires[0]!.packetSelector).toEqual({
      local: { protocol: 17, startAddress: ADDR[6].moonHost, endAddress: ADDR[6].moonHost, startPort: 0, endPort: 0xffff },
      remote: { protocol: 17, startAddress: ADDR[6].sunHost, endAddress: ADDR[6].sunHost, startPort: 0, endPort: 0xffff },
    });
  });

  it('after setOutboundSa onHeldReady fires; the held packets then go out protected and arrive in order', () => {
    const ready: Array<number | string> = [];
    const pair = peers(opts({ engine: { holdPackets: 3, onHeldReady: (r) => ready.push(r) } }));
    const pkts = [1, 2, 3].map((i) => moonToSun(pair, udp(i, 9, Buffer.alloc(i * 10, i))));
    for (const p of pkts) expect(send(pair.moon, p).res.verdict).toBe(OUT_HELD);
    expect(ready).toEqual([]);
    pair.installSas();
    expect(ready).toEqual([REQID]);
    const got = pair.moon.dp.takeHeld(REQID).map((p) => transfer(pair, pair.moon, p).packet);
    expect(got).toEqual(pkts);
    expect(moonOutSa(pair).seq).toBe(3);
  });

  it('onHeldReady does not fire when nothing is held', () => {
    const ready: Array<number | string> = [];
    const pair = peers(opts({ engine: { onHeldReady: (r) => ready.push(r) } }));
    pair.installSas();
    expect(ready).toEqual([]);
  });

  it('held packets survive the policy being replaced, not its removal', () => {
    const pair = peers(opts());
    const pkt = moonToSun(pair, udp(1, 2));
    send(pair.moon, pkt);
    const spec = pair.moon.sad.spd.get(REQID, 'out')!.spec;
    pair.moon.sad.addPolicy({ ...spec, priority: 5 });
    expect(pair.moon.dp.takeHeld(REQID)).toEqual([pkt]);
    send(pair.moon, pkt);
    pair.moon.sad.deletePolicy(REQID, 'out');
    expect(pair.moon.dp.takeHeld(REQID)).toEqual([]);
  });

  it('`private-or-clear` without an SA: OUT_CLEAR, counted outFallbackClear, with (rate-limited) acquires', () => {
    const pair = peers(opts({ failureMode: 'private-or-clear' }));
    for (let i = 0; i < 4; i++) expect(send(pair.moon, moonToSun(pair, udp(1, 2))).res.verdict).toBe(OUT_CLEAR);
    expect(pair.moon.dp.counters).toMatchObject({ outFallbackClear: 4, outHeld: 0, acquires: 1 });
    expect(pair.moon.acquires).toHaveLength(1);
    expect(pair.moon.dp.takeHeld(REQID)).toEqual([]);
    pair.moon.clock.ms += 5_000;
    send(pair.moon, moonToSun(pair, udp(1, 2)));
    expect(pair.moon.acquires).toHaveLength(2);
    // with the SA it is protected like any other
    pair.installSas();
    expect(send(pair.moon, moonToSun(pair, udp(1, 2))).res.verdict).toBe(OUT_SEND);
  });

  it('acquires are rate-limited per policy, not globally', () => {
    const pair = peers(opts());
    pair.moon.sad.addPolicy(policySpec({ reqid: 99, priority: 1, local: [ANY4], remote: [ts('10.3.0.1')] }));
    send(pair.moon, moonToSun(pair, udp(1, 2)));
    send(pair.moon, ipPacket(ADDR[4].moonHost, '10.3.0.1', udp(1, 2)));
    expect(pair.moon.acquires.map((a) => a.reqid)).toEqual([REQID, 99]);
  });
});

// ---------------------------------------------------------------------------

describe('inbound: round trips moon → sun and sun → moon', () => {
  for (const c of COMBOS) {
    it(`${comboName(c)}: every packet arrives as it was sent`, () => {
      const pair = peers(c);
      let n = 0;
      for (const l4 of l4s(c.family)) {
        for (const [from, mk] of [
          [pair.moon, moonToSun],
          [pair.sun, sunToMoon],
        ] as const) {
          const pkt = mk(pair, l4);
          const r = transfer(pair, from, pkt);
          expect(r.packet, `${l4.protocol}`).toBeDefined();
          const rebuilt = c.mode === 'transport' && (c.udp || c.family === 6);
          if (rebuilt) expectRebuilt(r.packet!, pkt);
          else expect(r.packet).toEqual(pkt);
          const to = from === pair.moon ? pair.sun : pair.moon;
          expect(r.sa).toBe(to.sad.inboundSa(from.outSpi));
          if (from === pair.moon) n++;
        }
      }
      expect(pair.sun.dp.counters).toMatchObject({ inPackets: n, inReplay: 0, inIcv: 0, inPolicy: 0, inMalformed: 0 });
      expect(sunInSa(pair).counters.packets).toBe(n);
      expect(sunInSa(pair).replay!.top).toBe(n);
    });
  }

  it('transport over raw IPv4: the received header with options is restored exactly', () => {
    const pair = peers({ family: 4, mode: 'transport' });
    const pkt = ipv4({ src: ADDR[4].moon, dst: ADDR[4].sun, options: Buffer.from([1, 1, 1, 0, 0x94, 4, 0, 0]), tos: 3, ttl: 1 }, tcp(5, 6, Buffer.alloc(7, 1)));
    expect(transfer(pair, pair.moon, pkt).packet).toEqual(pkt);
  });

  it('transport over UDP encapsulation behind NAT: the rebuilt header carries the observed source and the TCP/UDP checksums are redone for it', () => {
    const nat = '203.0.113.9';
    const pair = peers({ family: 4, mode: 'transport', udp: true, sunInRemote: [ts(nat)] });
    for (const l4 of [tcp(1234, 80, Buffer.from('x')), udp(4000, 53, Buffer.alloc(9))]) {
      const pkt = moonToSun(pair, l4);
      const r = deliverReceived(pair.sun, receive(pair, pair.moon, send(pair.moon, pkt).wire, parseIp(nat)));
      const got = r.packet!;
      expect(got).toBeDefined();
      expect(got.subarray(12, 16)).toEqual(parseIp(nat));
      expect(got.subarray(16, 20)).toEqual(parseIp(ADDR[4].sun));
      expect(l4ChecksumOk(got)).toBe(true);
      expect(l4ChecksumOk(ipv4({ src: nat, dst: ADDR[4].sun, raw: true }, { protocol: l4.protocol, octets: pkt.subarray(20) }))).toBe(false);
    }
  });

  it('tunnel over raw IPv4 carries inner IPv6 packets too (Next Header 41)', () => {
    const pair = peers({ family: 4, mode: 'tunnel', moonSelectors: [ANY6], sunSelectors: [ANY6] });
    const pkt = ipPacket('fd01::1', 'fd02::2', udp(1, 2));
    const { res, wire } = send(pair.moon, pkt);
    expect(res.verdict).toBe(OUT_SEND);
    expect(wire[0]).toBe(0x45);
    expect(wire.readUInt16BE(6)).toBe(0x4000); // IPv6 inside: DF outside
    expect(deliverReceived(pair.sun, receive(pair, pair.moon, wire)).packet).toEqual(pkt);
  });
});

describe('inbound: drops, each counted', () => {
  it('unknown SPI (and an SPI of the other family) is counted inUnknownSpi', () => {
    const pair = peers({ family: 4, mode: 'tunnel', udp: true });
    const r = sealed(pair, moonToSun(pair, udp(1, 2)));
    const bad = copy(r);
    bad.buf.writeUInt32BE(0xdeadbeef, 0);
    expect(deliverReceived(pair.sun, bad).packet).toBeUndefined();
    const v6src: InboundSource = { family: 6, address: parseIp('2001:db8::1')!, udp: true };
    expect(deliverReceived(pair.sun, { ...copy(r), src: v6src }).packet).toBeUndefined();
    expect(pair.sun.dp.counters.inUnknownSpi).toBe(2);
    // neither touched the SA
    expect(deliverReceived(pair.sun, r).packet).toBeDefined();
  });

  it('shorter than the ESP header: inMalformed', () => {
    const pair = peers({ family: 4, mode: 'tunnel', udp: true });
    const res = inResult();
    pair.sun.dp.inbound(Buffer.from([0xc1, 0, 0, 1, 0, 0, 0]), 0, 7, { family: 4, address: pair.moon.octets, udp: true }, Buffer.alloc(100), res);
    expect(res.packet).toBeUndefined();
    expect(pair.sun.dp.counters.inMalformed).toBe(1);
  });

  for (const c of COMBOS) {
    describe(comboName(c), () => {
      it('truncated (no room for IV, trailer and ICV): inMalformed, and the sequence number is not used up', () => {
        const pair = peers(c);
        const r = sealed(pair, moonToSun(pair, udp(1, 2)));
        const cut = copy(r);
        cut.espEnd = cut.espOff + 8 + 8 + 16 + 1;
        expect(deliverReceived(pair.sun, cut).packet).toBeUndefined();
        expect(pair.sun.dp.counters.inMalformed).toBe(1);
        expect(deliverReceived(pair.sun, r).packet).toBeDefined();
      });

      it('ICV failure (one ciphertext bit flipped): inIcv and the SA’s icvFailures; the genuine packet still passes', () => {
        const pair = peers(c);
        const r = sealed(pair, moonToSun(pair, udp(1, 2)));
        const bad = copy(r);
        bad.buf[bad.espOff + 20]! ^= 0x01;
        expect(deliverReceived(pair.sun, bad).packet).toBeUndefined();
        expect(pair.sun.dp.counters.inIcv).toBe(1);
        expect(sunInSa(pair).counters.icvFailures).toBe(1);
        expect(deliverReceived(pair.sun, r).packet).toBeDefined();
        expect(pair.sun.dp.counters.inPackets).toBe(1);
      });

      it('replay of an accepted packet: inReplay and the SA’s replayDrops', () => {
        const pair = peers(c);
        const r = sealed(pair, moonToSun(pair, udp(1, 2)));
        expect(deliverReceived(pair.sun, copy(r)).packet).toBeDefined();
        expect(deliverReceived(pair.sun, copy(r)).packet).toBeUndefined();
        expect(pair.sun.dp.counters).toMatchObject({ inReplay: 1, inPackets: 1 });
        expect(sunInSa(pair).counters.replayDrops).toBe(1);
      });

      it('a forged packet with a future sequence number fails the ICV and does NOT advance the window', () => {
        const pair = peers({ ...c, replayWindow: 32 });
        const first = sealed(pair, moonToSun(pair, udp(1, 2)));
        const forged = sealed(pair, moonToSun(pair, udp(1, 2)));
        forged.buf.writeUInt32BE(1000, forged.espOff + 4);
        expect(deliverReceived(pair.sun, forged).packet).toBeUndefined();
        expect(pair.sun.dp.counters.inIcv).toBe(1);
        expect(sunInSa(pair).replay!.top).toBe(0);
        // had the window moved to 1000, sequence number 1 would now be too old
        expect(deliverReceived(pair.sun, first).packet).toBeDefined();
        expect(pair.sun.dp.counters.inReplay).toBe(0);
      });
    });
  }

  it('too old: beyond the window is dropped (inReplay), anything inside it not yet seen passes', () => {
    const pair = peers({ family: 6, mode: 'tunnel', replayWindow: 32 });
    const rs = Array.from({ length: 40 }, (_, i) => sealed(pair, moonToSun(pair, udp(i, 2))));
    expect(deliverReceived(pair.sun, rs[39]!).packet).toBeDefined();
    expect(deliverReceived(pair.sun, rs[7]!).packet).toBeUndefined(); // seq 8: 40 - 8 = 32
    expect(pair.sun.dp.counters.inReplay).toBe(1);
    expect(sunInSa(pair).counters.replayDrops).toBe(1);
    expect(deliverReceived(pair.sun, rs[8]!).packet).toBeDefined(); // seq 9: in the window
    expect(deliverReceived(pair.sun, rs[30]!).packet).toBeDefined();
    expect(pair.sun.dp.counters.inPackets).toBe(3);
  });

  it('replay window 0: replays are not checked', () => {
    const pair = peers({ family: 4, mode: 'tunnel', udp: true, replayWindow: 0 });
    const r = sealed(pair, moonToSun(pair, udp(1, 2)));
    expect(deliverReceived(pair.sun, copy(r)).packet).toBeDefined();
    expect(deliverReceived(pair.sun, copy(r)).packet).toBeDefined();
    expect(pair.sun.dp.counters.inReplay).toBe(0);
  });

  it('a decrypted packet outside the SA’s selectors is dropped (RFC 4301 §5.2) but uses up its sequence number', () => {
    const a = ADDR[4];
    // moon's policy and SA cover its whole /16, sun's in SA only 10.1.0.0/24 and TCP
    const pair = peers({ family: 4, mode: 'tunnel', sunInRemote: [ts('10.1.0.0', '10.1.0.255')], sunInLocal: [ts(a.sunNet[0], a.sunNet[1], 6)] });
    const outside = sealed(pair, ipPacket('10.1.1.5', a.sunHost, tcp(1, 2)));
    expect(deliverReceived(pair.sun, copy(outside)).packet).toBeUndefined();
    const wrongProto = sealed(pair, ipPacket('10.1.0.5', a.sunHost, udp(1, 2)));
    expect(deliverReceived(pair.sun, wrongProto).packet).toBeUndefined();
    expect(pair.sun.dp.counters).toMatchObject({ inPolicy: 2, inPackets: 0 });
    expect(sunInSa(pair).counters.policyDrops).toBe(2);
    expect(deliverReceived(pair.sun, copy(outside)).packet).toBeUndefined();
    expect(pair.sun.dp.counters.inReplay).toBe(1);
    expect(deliverReceived(pair.sun, sealed(pair, ipPacket('10.1.0.5', a.sunHost, tcp(1, 2)))).packet).toBeDefined();
  });

  it('transport mode: a packet to another address than the SA’s is outside its selectors', () => {
    const pair = peers({ family: 4, mode: 'transport' });
    // moon's policy is widened to let the packet out; sun's SA selectors are the two hosts
    pair.moon.sad.addPolicy({ ...pair.moon.sad.spd.get(REQID, 'out')!.spec, remote: [ANY4] });
    expect(deliverReceived(pair.sun, sealed(pair, ipPacket(ADDR[4].moon, '192.0.2.99', udp(1, 2)))).packet).toBeUndefined();
    expect(pair.sun.dp.counters.inPolicy).toBe(1);
  });

  it('a dummy packet (Next Header 59) is dropped (inDummy) but consumes its sequence number', () => {
    const pair = peers({ family: 4, mode: 'tunnel', udp: true });
    const sa = moonOutSa(pair);
    const out = Buffer.alloc(200);
    const n = sealEspInto(sa.esp, nextSeq(sa), sa.seq, Buffer.alloc(20, 0), 59, out, 0);
    const dummy: Received = { buf: Buffer.from(out.subarray(0, n)), espOff: 0, espEnd: n, src: { family: 4, address: pair.moon.octets, udp: true } };
    expect(deliverReceived(pair.sun, copy(dummy)).packet).toBeUndefined();
    expect(pair.sun.dp.counters).toMatchObject({ inDummy: 1, inPackets: 0 });
    expect(sunInSa(pair).replay!.top).toBe(1);
    expect(deliverReceived(pair.sun, copy(dummy)).packet).toBeUndefined();
    expect(pair.sun.dp.counters.inReplay).toBe(1);
    // the next real packet is sequence number 2
    expect(deliverReceived(pair.sun, sealed(pair, moonToSun(pair, udp(1, 2)))).packet).toBeDefined();
  });

  it('bad padding: inPadding and the SA’s badPadding; the sequence number is used up', () => {
    const pair = peers({ family: 4, mode: 'tunnel', udp: true });
    const sa = moonOutSa(pair);
    const inner = moonToSun(pair, udp(1, 2, Buffer.alloc(2)));
    const esp = sealCustom(sa, nextSeq(sa), Buffer.concat([inner, Buffer.from([1, 7, 2, 4])]));
    const r: Received = { buf: esp, espOff: 0, espEnd: esp.length, src: { family: 4, address: pair.moon.octets, udp: true } };
    expect(deliverReceived(pair.sun, copy(r)).packet).toBeUndefined();
    expect(pair.sun.dp.counters.inPadding).toBe(1);
    expect(sunInSa(pair).counters.badPadding).toBe(1);
    expect(deliverReceived(pair.sun, copy(r)).packet).toBeUndefined();
    expect(pair.sun.dp.counters.inReplay).toBe(1);
  });

  it('tunnel mode: an authenticated payload that is no IP packet is inMalformed and uses up its sequence number', () => {
    const pair = peers({ family: 6, mode: 'tunnel', udp: true });
    const sa = moonOutSa(pair);
    const esp = sealCustom(sa, nextSeq(sa), Buffer.from([0x55, 0, 0, 0, 1, 2, 2, 4]));
    const r: Received = { buf: esp, espOff: 0, espEnd: esp.length, src: { family: 6, address: pair.moon.octets, udp: true } };
    expect(deliverReceived(pair.sun, copy(r)).packet).toBeUndefined();
    expect(pair.sun.dp.counters.inMalformed).toBe(1);
    expect(sunInSa(pair).replay!.top).toBe(1);
  });

  it('raw IPv4 transport: a broken IP header around ESP is inMalformed before any ICV check and leaves the window alone', () => {
    const pair = peers({ family: 4, mode: 'transport' });
    const r = sealed(pair, moonToSun(pair, udp(1, 2)));
    const bad = copy(r);
    bad.buf[9] = 17; // not ESP any more
    expect(deliverReceived(pair.sun, bad).packet).toBeUndefined();
    expect(pair.sun.dp.counters.inMalformed).toBe(1);
    expect(sunInSa(pair).replay!.top).toBe(0);
    expect(deliverReceived(pair.sun, r).packet).toBeDefined();
  });

  it('transport without a received header: a scratch buffer too small for the rebuilt packet is inMalformed, not thrown', () => {
    const pair = peers({ family: 6, mode: 'transport' });
    const r = sealed(pair, moonToSun(pair, udp(1, 2, Buffer.alloc(100))));
    const res = inResult();
    pair.sun.dp.inbound(r.buf, r.espOff, r.espEnd, r.src, Buffer.alloc(60), res);
    expect(res.packet).toBeUndefined();
    expect(pair.sun.dp.counters.inMalformed).toBe(1);
  });
});

// ---------------------------------------------------------------------------

describe('SA byte counters: the octets ESP protects, as XFRM counts them (`ip -s xfrm state`)', () => {
  for (const c of COMBOS) {
    it(`${comboName(c)}: both ends count ${c.mode === 'tunnel' ? 'the whole inner packet' : 'what follows the IP header'}`, () => {
      const pair = peers(c);
      const pkt = moonToSun(pair, udp(1, 2, Buffer.alloc(33)));
      const ipHeader = c.family === 4 ? IPV4_MIN_HEADER : IPV6_HEADER;
      const expected = c.mode === 'tunnel' ? pkt.length : pkt.length - ipHeader;
      expect(transfer(pair, pair.moon, pkt).packet).toBeDefined();
      expect({ out: moonOutSa(pair).counters.bytes, in: sunInSa(pair).counters.bytes }).toEqual({ out: expected, in: expected });
    });
  }

  it('transport over raw IPv4 with options: the options are part of the header, not counted', () => {
    const pair = peers({ family: 4, mode: 'transport' });
    const options = Buffer.from([0x94, 0x04, 0x00, 0x00]); // router alert
    const datagram = udp(1, 2, Buffer.alloc(33));
    const pkt = ipv4({ src: ADDR[4].moon, dst: ADDR[4].sun, options }, datagram);
    expect(transfer(pair, pair.moon, pkt).packet).toBeDefined();
    const udpLength = pkt.length - IPV4_MIN_HEADER - options.length;
    expect({ out: moonOutSa(pair).counters.bytes, in: sunInSa(pair).counters.bytes }).toEqual({ out: udpLength, in: udpLength });
  });
});

describe('lifetimes on the packet path', () => {
  const lt = (l: Partial<SaLifetimes>) => l;

  it('outbound packets: soft once, hard removes the SA after exactly hardPackets packets (as XFRM); later ones are held, an acquire is raised', () => {
    const pair = peers({ family: 4, mode: 'tunnel', lifetimes: lt({ softPackets: 2, hardPackets: 3 }) });
    const verdicts = [1, 2, 3, 4, 5].map(() => send(pair.moon, moonToSun(pair, udp(1, 2))).res.verdict);
    expect(verdicts).toEqual([OUT_SEND, OUT_SEND, OUT_SEND, OUT_HELD, OUT_HELD]);
    expect(pair.moon.expires).toEqual([
      { reqid: REQID, spi: SPI_MOON_TO_SUN, direction: 'out', hard: false, reason: 'packets' },
      { reqid: REQID, spi: SPI_MOON_TO_SUN, direction: 'out', hard: true, reason: 'packets' },
    ]);
    expect(pair.moon.dp.counters).toMatchObject({ outPackets: 3, expiredDrops: 1, outHeld: 2, acquires: 1 });
    expect(pair.moon.sad.outboundSaFor(REQID)).toBeUndefined();
    expect(pair.moon.sad.querySa(SPI_MOON_TO_SUN, 'out')).toBeUndefined();
  });

  it('outbound bytes: soft and hard by the octets ESP protects (transport: after the IP header, as XFRM counts)', () => {
    const udpDatagram = 8 + 52;
    const pair = peers({ family: 6, mode: 'transport', udp: true, lifetimes: lt({ softBytes: 2 * udpDatagram, hardBytes: 3.5 * udpDatagram }) });
    const pkt = moonToSun(pair, udp(1, 2, Buffer.alloc(52)));
    expect(pkt.length).toBe(IPV6_HEADER + udpDatagram);
    // 1, 2 (soft), 3, 4 datagrams sent: the hard limit of 3.5 refuses the fifth
    const verdicts = [1, 2, 3, 4, 5].map(() => send(pair.moon, pkt).res.verdict);
    expect(verdicts).toEqual([OUT_SEND, OUT_SEND, OUT_SEND, OUT_SEND, OUT_HELD]);
    expect(pair.moon.expires.map((e) => [e.hard, e.reason])).toEqual([
      [false, 'bytes'],
      [true, 'bytes'],
    ]);
  });

  it('inbound: after hardPackets packets the next one is dropped (expiredDrops), then the SPI is unknown', () => {
    const pair = peers({ family: 4, mode: 'transport', sunInLifetimes: lt({ softPackets: 1, hardPackets: 3 }) });
    const results = [1, 2, 3, 4, 5].map(() => transfer(pair, pair.moon, moonToSun(pair, udp(1, 2))).packet !== undefined);
    expect(results).toEqual([true, true, true, false, false]);
    expect(pair.sun.expires).toEqual([
      { reqid: REQID, spi: SPI_MOON_TO_SUN, direction: 'in', hard: false, reason: 'packets' },
      { reqid: REQID, spi: SPI_MOON_TO_SUN, direction: 'in', hard: true, reason: 'packets' },
    ]);
    expect(pair.sun.dp.counters).toMatchObject({ inPackets: 3, expiredDrops: 1, inUnknownSpi: 1 });
    expect(pair.moon.expires).toEqual([]);
  });

  it('time: after checkLifetimes removes the SAs, outbound holds and acquires, inbound sees an unknown SPI', () => {
    const pair = peers({ family: 4, mode: 'tunnel', udp: true, lifetimes: lt({ softSeconds: 60, hardSeconds: 90 }) });
    const early = sealed(pair, moonToSun(pair, udp(1, 2)));
    for (const p of [pair.moon, pair.sun]) {
      p.clock.ms += 60_000;
      p.sad.checkLifetimes();
    }
    expect(pair.moon.expires.map((e) => [e.direction, e.hard, e.reason])).toEqual([
      ['in', false, 'time'],
      ['out', false, 'time'],
    ]);
    // soft: still usable
    expect(deliverReceived(pair.sun, copy(early)).packet).toBeDefined();
    for (const p of [pair.moon, pair.sun]) {
      p.clock.ms += 30_000;
      p.sad.checkLifetimes();
    }
    expect(pair.sun.expires.filter((e) => e.hard)).toHaveLength(2);
    expect(send(pair.moon, moonToSun(pair, udp(1, 2))).res.verdict).toBe(OUT_HELD);
    expect(pair.moon.acquires).toHaveLength(1);
    const late = sealed(peers({ family: 4, mode: 'tunnel', udp: true }), moonToSun(pair, udp(1, 2)));
    expect(deliverReceived(pair.sun, late).packet).toBeUndefined();
    expect(pair.sun.dp.counters.inUnknownSpi).toBe(1);
  });

  it('sequence exhaustion without ESN: 2^32 − 1 is sent and accepted, the next packet raises a hard expiry instead of cycling', () => {
    const pair = peers({ family: 4, mode: 'transport' });
    moonOutSa(pair).seq = 0xffffffff - 1;
    const { res, wire } = send(pair.moon, moonToSun(pair, udp(1, 2)));
    expect(res.verdict).toBe(OUT_SEND);
    expect(wire.readUInt32BE(20 + 4)).toBe(0xffffffff);
    expect(deliverReceived(pair.sun, receive(pair, pair.moon, wire)).packet).toBeDefined();
    expect(pair.moon.expires).toEqual([]);
    const next = send(pair.moon, moonToSun(pair, udp(1, 2)));
    expect(next.res.verdict).toBe(OUT_HELD);
    expect(pair.moon.expires).toEqual([{ reqid: REQID, spi: SPI_MOON_TO_SUN, direction: 'out', hard: true, reason: 'packets' }]);
    expect(pair.moon.sad.outboundSaFor(REQID)).toBeUndefined();
    expect(pair.moon.acquires).toHaveLength(1);
  });

  for (const c of [
    { family: 4, mode: 'transport', udp: false },
    { family: 6, mode: 'tunnel', udp: false },
    { family: 6, mode: 'transport', udp: true },
  ] as const) {
    it(`ESN (${comboName(c)}): the sequence continues past 2^32 and the receiver reconstructs the high bits`, () => {
      const pair = peers({ ...c, esn: true, replayWindow: 64 });
      const sa = moonOutSa(pair);
      // bring the receiver's window up to 2^32 − 256 first
      sa.seq = 0xffffff00 - 1;
      expect(transfer(pair, pair.moon, moonToSun(pair, udp(1, 2))).packet).toBeDefined();
      sa.seq = 0xfffffffd;
      const got: bigint[] = [];
      const kept: Received[] = [];
      for (let i = 0; i < 4; i++) {
        const pkt = moonToSun(pair, udp(i, 2, Buffer.alloc(i)));
        const { res, wire } = send(pair.moon, pkt);
        expect(res.verdict).toBe(OUT_SEND);
        const esp = espOffset(pair, wire);
        got.push((BigInt(wire.readBigUInt64BE(esp + 8)) << 32n) | BigInt(wire.readUInt32BE(esp + 4)));
        const r = receive(pair, pair.moon, wire);
        kept.push(copy(r));
        const out = deliverReceived(pair.sun, r).packet!;
        expect(out).toBeDefined();
        if (c.mode === 'tunnel' || c.family === 4) expect(out).toEqual(pkt);
        else expectRebuilt(out, pkt);
      }
      // (IV << 32 | wire low): the IV is the full 64-bit sequence number, only its low half on the wire
      const two32 = 2n ** 32n;
      expect(got.map((g) => [g >> 32n, g & 0xffffffffn])).toEqual([
        [0xfffffffen, 0xfffffffen],
        [0xffffffffn, 0xffffffffn],
        [two32, 0n],
        [two32 + 1n, 1n],
      ]);
      expect(sa.seq).toBe(2 ** 32 + 1);
      expect(sunInSa(pair).replay!.top).toBe(2 ** 32 + 1);
      expect(pair.moon.expires).toEqual([]);
      // replays on both sides of the wrap are still caught
      expect(deliverReceived(pair.sun, kept[1]!).packet).toBeUndefined();
      expect(deliverReceived(pair.sun, kept[3]!).packet).toBeUndefined();
      expect(pair.sun.dp.counters.inReplay).toBe(2);
      expect(pair.sun.dp.counters.inIcv).toBe(0);
    });
  }
  it('an expire listener deleting the SA synchronously does not make outbound throw', () => {
    const pair = peers({ family: 4, mode: 'tunnel', lifetimes: lt({ softPackets: 1 }) });
    pair.moon.sad.on('expire', (e) => pair.moon.sad.deleteSa(e.spi, e.direction));
    const pkt = moonToSun(pair, udp(1, 2));
    const res = outResult();
    expect(() => pair.moon.dp.outbound(pkt, pkt.length, Buffer.alloc(pkt.length + 128), res)).not.toThrow();
  });
});

describe('drop logging', () => {
  it('logs each reason at most once per interval, then says how many were suppressed', () => {
    const lines: string[] = [];
    const pair = peers({ family: 4, mode: 'tunnel', engine: { logIntervalMs: 10_000, log: { log: (level, m) => lines.push(`${level}: ${m}`) } } });
    for (let i = 0; i < 5; i++) send(pair.moon, ipPacket('10.9.0.1', ADDR[4].sunHost, udp(1, 2)));
    expect(lines).toEqual(['debug: dropped an outbound packet no policy selects (proto 17 10.9.0.1 → 10.2.0.7 1 → 2)']);
    pair.moon.clock.ms += 10_000;
    send(pair.moon, ipPacket('10.9.0.1', ADDR[4].sunHost, icmp(8, 0)));
    expect(lines[1]).toBe('debug: dropped an outbound packet no policy selects (proto 1 10.9.0.1 → 10.2.0.7) (and 4 more since the last report)');
    const bad = sealed(pair, moonToSun(pair, udp(1, 2)));
    bad.buf[bad.espOff + 20]! ^= 1;
    deliverReceived(pair.sun, bad);
    // another reason (sun's datapath shares the logger): its own line
    expect(lines.slice(2)).toEqual([`warn: SA c1000001_i: dropped a packet whose ICV does not verify`]);
    expect(pair.sun.dp.counters.inIcv).toBe(1);
  });
});

// ---------------------------------------------------------------------------

describe('random input never throws (fast-check)', () => {
  /** One datapath per mode/encapsulation with IPv4 and IPv6 protect policies for any traffic, plus its peer's. */
  function fuzzPair(mode: 'transport' | 'tunnel', u: boolean): { v4: Pair; v6: Pair } {
    return {
      v4: peers({ family: 4, mode, udp: u, moonSelectors: [ANY4], sunSelectors: [ANY4] }),
      v6: peers({ family: 6, mode, udp: u, moonSelectors: [ANY6], sunSelectors: [ANY6] }),
    };
  }
  const setups = COMBOS.filter((c) => c.family === 4).map((c) => ({ name: comboName(c), ...fuzzPair(c.mode, c.udp) }));

  /** Bytes that look like IPv4/IPv6 often enough to get past the first checks. */
  const ipish = fc
    .record({
      version: fc.constantFrom(4, 6, 4, 6, 5, 0),
      body: fc.uint8Array({ minLength: 0, maxLength: 300 }),
      fixLength: fc.boolean(),
      proto: fc.constantFrom(1, 6, 17, 58, 59, 0, 44, 43, 60, 4, 41, 50),
    })
    .map(({ version, body, fixLength, proto }) => {
      const b = Buffer.from(body);
      if (b.length > 0) b[0] = (version << 4) | (version === 4 ? 5 + (b[0]! % 3) : b[0]! & 15);
      if (fixLength && version === 4 && b.length >= 20) {
        b.writeUInt16BE(b.length, 2);
        b[9] = proto;
        b.writeUInt16BE(b.readUInt16BE(6) & 0x3fff & (b[6]! & 1 ? 0xffff : 0x4000), 6);
      }
      if (fixLength && version === 6 && b.length >= 40) {
        b.writeUInt16BE(b.length - 40, 4);
        b[6] = proto;
      }
      return b;
    });

  it('outbound: random packets give a verdict, and OUT_SEND output fits the buffer', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: setups.length - 1 }),
        fc.boolean(),
        fc.oneof(
          ipish,
          fc.uint8Array({ maxLength: 120 }).map((a) => Buffer.from(a)),
        ),
        (si, six, pkt) => {
          const s = setups[si]!;
          const pair = six ? s.v6 : s.v4;
          const out = Buffer.alloc(pkt.length + 100);
          const res = outResult();
          pair.moon.dp.outbound(pkt, pkt.length, out, res);
          expect([OUT_DROP, OUT_SEND, OUT_CLEAR, OUT_HELD]).toContain(res.verdict);
          if (res.verdict === OUT_SEND) {
            expect(res.length).toBeLessThanOrEqual(out.length);
            // and the peer takes what was sent without throwing
            deliverReceived(pair.sun, receive(pair, pair.moon, Buffer.from(out.subarray(0, res.length))));
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  it('inbound: random octets under a known SPI, at random offsets, never yield a packet', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: setups.length - 1 }),
        fc.boolean(),
        fc.uint8Array({ minLength: 0, maxLength: 200 }),
        fc.boolean(),
        fc.nat(),
        fc.nat(),
        (si, six, body, knownSpi, a, b) => {
          const s = setups[si]!;
          const pair = six ? s.v6 : s.v4;
          const buf = Buffer.from(body);
          const espOff = buf.length === 0 ? 0 : a % (buf.length + 1);
          const espEnd = espOff + (buf.length === 0 ? 0 : b % (buf.length - espOff + 1));
          if (knownSpi && espEnd - espOff >= 4) buf.writeUInt32BE(SPI_MOON_TO_SUN, espOff);
          const src: InboundSource = { family: six ? 6 : 4, address: pair.moon.octets, udp: pair.opts.udp ?? false };
          const res = inResult();
          pair.sun.dp.inbound(buf, espOff, espEnd, src, Buffer.alloc(buf.length + 40), res);
          expect(res.packet).toBeUndefined();
        },
      ),
      { numRuns: 400 },
    );
  });

  it('inbound: genuine packets with random octets changed or cut never throw', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: setups.length - 1 }),
        fc.boolean(),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { maxLength: 4 }),
        fc.nat(),
        (si, six, flips, cut) => {
          const s = setups[si]!;
          const pair = six ? s.v6 : s.v4;
          const fam = six ? 6 : 4;
          const { res, wire } = send(pair.moon, ipPacket(ADDR[fam].moon, ADDR[fam].sun, udp(1, 2, Buffer.alloc(cut % 64))));
          expect(res.verdict).toBe(OUT_SEND);
          const r = receive(pair, pair.moon, wire);
          for (const [at, x] of flips) r.buf[at % r.buf.length]! ^= x;
          r.espEnd = Math.max(r.espOff, r.espEnd - (cut % 3 === 0 ? cut % 40 : 0));
          const scratch = Buffer.alloc(r.buf.length + 40);
          expect(() => pair.sun.dp.inbound(r.buf, r.espOff, r.espEnd, r.src, scratch, inResult())).not.toThrow();
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('empty SAD', () => {
  it('outbound drops (no policy), inbound drops (unknown SPI)', () => {
    const dp = new PacketEngine(new SecurityAssociationDatabase());
    const res = outResult();
    dp.outbound(ipPacket('10.0.0.1', '10.0.0.2', udp(1, 2)), 33, Buffer.alloc(200), res);
    expect(res.verdict).toBe(OUT_DROP);
    const ir = inResult();
    dp.inbound(Buffer.alloc(60, 1), 0, 60, { family: 4, address: new Uint8Array(4), udp: true }, Buffer.alloc(100), ir);
    expect(ir.packet).toBeUndefined();
    expect(dp.counters).toMatchObject({ outNoPolicy: 1, inUnknownSpi: 1 });
  });
});
