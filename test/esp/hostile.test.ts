/**
 * Issue 9, hostile ESP: unknown SPIs, truncated packets, bad padding, replays
 * and tampered or forged packets are dropped before they change any state —
 * the SA's byte/packet counters, its last-use time and its anti-replay window
 * move only for a packet whose ICV verified — each is counted (datapath and
 * SA counters), and a flood of them gives one log line per reason and
 * interval. And SA keys: deleting or expiring an SA wipes its key material.
 */
import { describe, expect, it } from 'vitest';
import { OUT_SEND } from '../../src/esp/engine.js';
import { SecurityAssociationDatabase, type SadEntry } from '../../src/esp/sadb.js';
import {
  KEY_A,
  REQID,
  SPI_MOON_TO_SUN,
  deliverReceived,
  moonToSun,
  peers,
  receive,
  saSpec,
  send,
  udp,
  type Pair,
  type PeerOptions,
  type Received,
  COMBOS,
  comboName,
} from './support.js';

const sunInSa = (pair: Pair): SadEntry => pair.sun.sad.inboundSa(SPI_MOON_TO_SUN)!;
const moonOutSa = (pair: Pair): SadEntry => pair.moon.sad.outboundSaFor(REQID)!;
const copy = (r: Received): Received => ({ ...r, buf: Buffer.from(r.buf) });

function sealed(pair: Pair, n = 0): Received {
  const { res, wire } = send(pair.moon, moonToSun(pair, udp(1000 + n, 2)));
  expect(res.verdict).toBe(OUT_SEND);
  return receive(pair, pair.moon, wire);
}

/** Everything a received packet may change on the SA. */
function saState(sa: SadEntry) {
  return {
    bytes: sa.counters.bytes,
    packets: sa.counters.packets,
    lastUsed: sa.counters.lastUsed,
    top: sa.replay!.top,
    accepted: sa.replay!.counters.accepted,
  };
}

/** An ESP packet of moon's out SA with a chosen (encrypted) plaintext, e.g. bad padding (32-bit sequence numbers). */
function sealCustom(sa: SadEntry, plaintext: Buffer): Buffer {
  sa.seq += 1;
  const b = Buffer.alloc(16 + plaintext.length + 16);
  b.writeUInt32BE(sa.esp.spi, 0);
  b.writeUInt32BE(sa.seq, 4);
  b.writeUInt32BE(sa.seq, 12);
  plaintext.copy(b, 16);
  sa.esp.ctx.sealInPlace(b, 8, Buffer.from(b.subarray(0, 8)), 16, plaintext.length);
  return b;
}

function logged(opts: Omit<PeerOptions, 'engine'>): { pair: Pair; lines: string[] } {
  const lines: string[] = [];
  const pair = peers({ ...opts, engine: { logIntervalMs: 10_000, log: { log: (level, m) => lines.push(`${level}: ${m}`) } } });
  return { pair, lines };
}

describe('hostile ESP is dropped before it changes any state, and counted', () => {
  for (const c of COMBOS) {
    describe(comboName(c), () => {
      it('an unknown SPI: inUnknownSpi, the SA untouched', () => {
        const pair = peers(c);
        const r = sealed(pair);
        const before = saState(sunInSa(pair));
        const bad = copy(r);
        bad.buf.writeUInt32BE(0x0badf00d, bad.espOff);
        expect(deliverReceived(pair.sun, bad).packet).toBeUndefined();
        expect(pair.sun.dp.counters).toMatchObject({ inUnknownSpi: 1, inPackets: 0 });
        expect(saState(sunInSa(pair))).toEqual(before);
      });

      it('a truncated packet: inMalformed, the window and counters untouched, the genuine packet still accepted', () => {
        const pair = peers(c);
        const r = sealed(pair);
        const before = saState(sunInSa(pair));
        for (const keep of [9, 8 + 8 + 8, 8 + 8 + 16 + 1, r.espEnd - r.espOff - 1]) {
          const cut = copy(r);
          cut.espEnd = cut.espOff + keep;
          expect(deliverReceived(pair.sun, cut).packet).toBeUndefined();
        }
        expect(pair.sun.dp.counters.inMalformed + pair.sun.dp.counters.inIcv).toBe(4);
        expect(pair.sun.dp.counters.inPackets).toBe(0);
        expect(saState(sunInSa(pair))).toEqual(before);
        expect(deliverReceived(pair.sun, r).packet).toBeDefined();
      });

      it('a tampered packet (ciphertext, IV, ICV, sequence number): inIcv and icvFailures, nothing else moves', () => {
        const pair = peers(c);
        const r = sealed(pair);
        const before = saState(sunInSa(pair));
        const len = r.espEnd - r.espOff;
        for (const at of [4 /* sequence number */, 8 /* IV */, 20 /* ciphertext */, len - 1 /* ICV */]) {
          const bad = copy(r);
          bad.buf[bad.espOff + at]! ^= 0x80;
          expect(deliverReceived(pair.sun, bad).packet).toBeUndefined();
        }
        expect(pair.sun.dp.counters).toMatchObject({ inIcv: 4, inPackets: 0, inReplay: 0 });
        expect(sunInSa(pair).counters.icvFailures).toBe(4);
        expect(saState(sunInSa(pair))).toEqual(before);
        expect(deliverReceived(pair.sun, r).packet).toBeDefined();
        expect(saState(sunInSa(pair))).toMatchObject({ packets: 1, top: 1, accepted: 1 });
      });

      it('the replay window does not move on a forged packet with a far-future sequence number', () => {
        const pair = peers({ ...c, replayWindow: 32 });
        const genuine = [0, 1, 2].map((n) => sealed(pair, n));
        expect(deliverReceived(pair.sun, copy(genuine[0]!)).packet).toBeDefined();
        const before = saState(sunInSa(pair));
        for (const seq of [1000, 0x7fffffff, 0xffffffff]) {
          const forged = copy(genuine[2]!);
          forged.buf.writeUInt32BE(seq, forged.espOff + 4);
          expect(deliverReceived(pair.sun, forged).packet).toBeUndefined();
        }
        expect(pair.sun.dp.counters.inIcv).toBe(3);
        expect(saState(sunInSa(pair))).toEqual(before);
        // had the window jumped, 2 and 3 would now be too old
        expect(deliverReceived(pair.sun, copy(genuine[1]!)).packet).toBeDefined();
        expect(deliverReceived(pair.sun, copy(genuine[2]!)).packet).toBeDefined();
        expect(pair.sun.dp.counters.inReplay).toBe(0);
      });

      it('a replayed packet: inReplay and replayDrops, counters and window unchanged by the replay', () => {
        const pair = peers(c);
        const r = sealed(pair);
        expect(deliverReceived(pair.sun, copy(r)).packet).toBeDefined();
        const before = saState(sunInSa(pair));
        for (let i = 0; i < 5; i++) expect(deliverReceived(pair.sun, copy(r)).packet).toBeUndefined();
        expect(pair.sun.dp.counters).toMatchObject({ inReplay: 5, inPackets: 1 });
        expect(sunInSa(pair).counters.replayDrops).toBe(5);
        expect(saState(sunInSa(pair))).toEqual(before);
      });
    });
  }

  it('bad padding: inPadding and badPadding; the authenticated sequence number is used up, nothing is delivered or accounted', () => {
    const pair = peers({ family: 4, mode: 'tunnel', udp: true });
    const inner = moonToSun(pair, udp(1, 2, Buffer.alloc(2)));
    const esp = sealCustom(moonOutSa(pair), Buffer.concat([inner, Buffer.from([1, 7, 2, 4])]));
    const r: Received = { buf: esp, espOff: 0, espEnd: esp.length, src: { family: 4, address: pair.moon.octets, udp: true } };
    const before = saState(sunInSa(pair));
    expect(deliverReceived(pair.sun, copy(r)).packet).toBeUndefined();
    expect(pair.sun.dp.counters).toMatchObject({ inPadding: 1, inPackets: 0 });
    expect(sunInSa(pair).counters.badPadding).toBe(1);
    // the ICV verified (the peer really sent it): only the window moves (RFC 4303 §3.4.3), no bytes/packets are accounted
    expect(saState(sunInSa(pair))).toEqual({ ...before, top: 1, accepted: 1 });
    expect(deliverReceived(pair.sun, copy(r)).packet).toBeUndefined();
    expect(pair.sun.dp.counters.inReplay).toBe(1);
  });

  it('a packet too short for an ESP header: inMalformed', () => {
    const pair = peers({ family: 4, mode: 'tunnel', udp: true });
    const res = { packet: undefined, sa: undefined };
    pair.sun.dp.inbound(Buffer.from([0xc1, 0, 0]), 0, 3, { family: 4, address: pair.moon.octets, udp: true }, Buffer.alloc(64), res);
    expect(res.packet).toBeUndefined();
    expect(pair.sun.dp.counters.inMalformed).toBe(1);
  });
});

describe('drop logging is rate-limited per reason', () => {
  it('a flood of each hostile kind gives one line per reason and interval, then a count of the suppressed ones', () => {
    const { pair, lines } = logged({ family: 4, mode: 'tunnel', udp: true });
    const r = sealed(pair);
    expect(deliverReceived(pair.sun, copy(r)).packet).toBeDefined();
    const fresh = sealed(pair, 1); // sequence number 2, never delivered: passes the replay check
    const inner = moonToSun(pair, udp(1, 2, Buffer.alloc(2)));
    const N = 1000;
    for (let i = 0; i < N; i++) {
      const unknown = copy(r);
      unknown.buf.writeUInt32BE(0x0badf00d + i, 0);
      deliverReceived(pair.sun, unknown); // unknown SPI
      const tampered = copy(fresh);
      tampered.buf[20]! ^= 1;
      deliverReceived(pair.sun, tampered); // ICV
      deliverReceived(pair.sun, copy(r)); // replay
      const cut = copy(fresh);
      cut.espEnd = 20;
      deliverReceived(pair.sun, cut); // truncated
      pair.sun.dp.inbound(Buffer.from([1, 2, 3]), 0, 3, r.src, Buffer.alloc(64), { packet: undefined, sa: undefined }); // too short
    }
    // last: authenticated bad-padding packets move the window (sequence 2 would become too old above)
    for (let i = 0; i < N; i++) {
      const padded = sealCustom(moonOutSa(pair), Buffer.concat([inner, Buffer.from([1, 7, 2, 4])]));
      deliverReceived(pair.sun, { buf: padded, espOff: 0, espEnd: padded.length, src: r.src });
    }
    expect(pair.sun.dp.counters).toMatchObject({ inUnknownSpi: N, inIcv: N, inReplay: N, inPadding: N, inMalformed: 2 * N, inPackets: 1 });
    expect(lines).toHaveLength(6);
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^info: dropped ESP with unknown SPI 0badf00d from /),
        'warn: SA c1000001_i: dropped a packet whose ICV does not verify',
        'debug: SA c1000001_i: dropped a replayed or too old packet (seq 1)',
        'debug: SA c1000001_i: dropped a truncated packet',
        'warn: SA c1000001_i: dropped an authenticated packet with bad padding',
        expect.stringMatching(/^debug: dropped a 3-octet packet too short for ESP/),
      ]),
    );
    pair.sun.clock.ms += 10_000;
    const again = copy(r);
    again.buf.writeUInt32BE(0x0badbeef, 0);
    deliverReceived(pair.sun, again);
    expect(lines).toHaveLength(7);
    expect(lines[6]).toMatch(new RegExp(`unknown SPI 0badbeef .*\\(and ${N - 1} more since the last report\\)$`));
  });
});

describe('SA key material is wiped when the SA goes', () => {
  const spec = (spi: number, direction: 'in' | 'out') =>
    saSpec({ spi, direction, localAddress: '192.0.2.1', remoteAddress: '192.0.2.2', aead: { transformId: 20, keyBits: 128, keyMaterial: Buffer.from(KEY_A) } });

  it('deleteSa zeroes the SAD copy of the key and destroys the AEAD key schedule; the caller’s buffer was never shared', () => {
    const sad = new SecurityAssociationDatabase();
    const material = Buffer.from(KEY_A);
    sad.addSa({ ...spec(0x1001, 'in'), aead: { transformId: 20, keyBits: 128, keyMaterial: material } });
    const entry = sad.inboundSa(0x1001)!;
    const held = entry.spec.aead.keyMaterial as Buffer;
    expect(held).not.toBe(material);
    expect(held.equals(KEY_A)).toBe(true);
    expect(sad.deleteSa(0x1001, 'in')).toBe(true);
    expect(held.every((b) => b === 0)).toBe(true);
    expect(material.equals(KEY_A)).toBe(true);
    expect(entry.removed).toBe(true);
    expect(() => entry.esp.ctx.seal(Buffer.alloc(8), Buffer.alloc(8), Buffer.alloc(16))).toThrow(/after destroy/);
  });

  it('a hard lifetime expiry wipes the key the same way', () => {
    const sad = new SecurityAssociationDatabase();
    let now = 1_000_000;
    sad.now = () => now;
    sad.addSa({ ...spec(0x1002, 'out'), lifetimes: { softSeconds: 0, hardSeconds: 10, softBytes: 0, hardBytes: 0, softPackets: 0, hardPackets: 0 } });
    const held = sad.listSas()[0]!.spec.aead.keyMaterial as Buffer;
    now += 10_000;
    sad.checkLifetimes();
    expect(sad.listSas()).toHaveLength(0);
    expect(held.every((b) => b === 0)).toBe(true);
  });

  it('a datapath holding the removed SA no longer decrypts with it', () => {
    const pair = peers({ family: 4, mode: 'tunnel', udp: true });
    const r = sealed(pair);
    const sa = sunInSa(pair);
    pair.sun.sad.deleteSa(SPI_MOON_TO_SUN, 'in');
    expect((sa.spec.aead.keyMaterial as Buffer).every((b) => b === 0)).toBe(true);
    expect(deliverReceived(pair.sun, r).packet).toBeUndefined();
    expect(pair.sun.dp.counters.inUnknownSpi).toBe(1);
  });
});
