/**
 * ESP for pending SPIs (src/esp/pending-spi.ts, PacketEngine.inbound), without
 * I/O: a peer may send on a new SA before the exchange that creates it has
 * completed on our side (RFC 7296 §2.8: a CREATE_CHILD_SA responder installs
 * its SAs before answering). Packets for an SPI the SAD reserved are held —
 * copies, bounded per SPI and in total, aged — and opened through the normal
 * inbound path once `addSa` installs the SA; a released reservation drops
 * them; an SPI that is neither installed nor reserved is unknown as before.
 *
 * "moon" sends on an SA whose SPI "sun" allocated; sun's inbound SA is
 * installed later, as IKE does after processing the response. The test
 * plays the I/O loop's part (src/esp/io.ts releasePendingSpi): when
 * `onPendingSpiReady` fires it takes the held packets and runs them through
 * `inbound`.
 */
import { describe, expect, it } from 'vitest';
import type { PacketEngineOptions, InboundResult } from '../../src/esp/engine.js';
import { DEFAULT_PENDING_SPI_LIMITS } from '../../src/esp/pending-spi.js';
import {
  COMBOS,
  comboName,
  deliverReceived,
  expectRebuilt,
  icmp,
  moonToSun,
  peers,
  receive,
  REQID,
  send,
  type Pair,
  type Peer,
  type PeerOptions,
  type Received,
} from './support.js';

interface Pending {
  pair: Pair;
  /** The SPI sun allocated (reserved, no SA yet); moon already sends on it. */
  spi: number;
  /** SPIs for which onPendingSpiReady fired, in order. */
  ready: number[];
  /** Install sun's inbound SA for `spi` (what IKE does once the exchange completes). */
  install(): void;
}

function pending(o: Omit<PeerOptions, 'withSas'>, engine: PacketEngineOptions = {}): Pending {
  const ready: number[] = [];
  const pair = peers({ ...o, withSas: false, engine: { ...engine, onPendingSpiReady: (spi) => ready.push(spi) } });
  const spi = pair.sun.sad.allocateSpi();
  const specs = pair.saSpecs(pair.moon, spi);
  pair.moon.sad.addSa(specs.out);
  pair.moon.sad.setOutboundSa(REQID, spi);
  return { pair, spi, ready, install: () => pair.sun.sad.addSa(specs.in) };
}

/** A ping moon → sun numbered `n`, as sun's socket receives it. */
function ping(p: Pending, n: number): { plain: Buffer; received: Received } {
  const plain = moonToSun(p.pair, icmp(8, 0, Buffer.from(`ping ${n}`)));
  const { wire } = send(p.pair.moon, plain);
  return { plain, received: receive(p.pair, p.pair.moon, wire) };
}

/**
 * The packets `results` delivered are `plains` (undefined: dropped), in order; transport mode without a
 * received IP header (raw IPv6, ESP-in-UDP) gets a rebuilt header.
 */
function expectDelivered(p: Pending, results: InboundResult[], plains: Array<Buffer | undefined>): void {
  expect(results.map((r) => r.packet !== undefined)).toEqual(plains.map((x) => x !== undefined));
  const o = p.pair.opts;
  const rebuilt = o.mode === 'transport' && (o.udp === true || o.family === 6);
  results.forEach((r, i) => {
    if (r.packet === undefined) return;
    if (rebuilt) expectRebuilt(r.packet, plains[i]!);
    else expect(r.packet).toEqual(plains[i]);
  });
}

/** What the I/O loop does on onPendingSpiReady: the held packets through `inbound`, in order. */
function openHeld(to: Peer, spi: number): InboundResult[] {
  return to.dp.takePendingSpi(spi).map((h) => deliverReceived(to, { buf: h.buf, espOff: h.espOff, espEnd: h.buf.length, src: h.src }));
}

describe('ESP for an SPI allocated for an exchange under way', () => {
  for (const c of COMBOS) {
    it(`${comboName(c)}: is held (not an unknown SPI) and delivered intact once addSa installs its SA`, () => {
      const p = pending(c);
      const { plain, received } = ping(p, 1);
      expect(deliverReceived(p.pair.sun, received).packet).toBeUndefined();
      expect(p.pair.sun.dp.counters).toMatchObject({ inHeldPendingSpi: 1, inUnknownSpi: 0, inPackets: 0 });
      expect(p.ready).toEqual([]);
      p.install();
      expect(p.ready).toEqual([p.spi]);
      expectDelivered(p, openHeld(p.pair.sun, p.spi), [plain]);
      expect(p.pair.sun.dp.counters).toMatchObject({ inPackets: 1, inHeldPendingSpiDropped: 0, inIcv: 0 });
      expect(p.pair.sun.sad.querySa(p.spi, 'in')).toMatchObject({ packets: 1 });
    });
  }

  it('the held copy does not depend on the receive buffer, which the I/O loop reuses', () => {
    const p = pending({ family: 4, mode: 'transport', udp: true });
    const { plain, received } = ping(p, 1);
    const reused = { ...received, src: { ...received.src, address: Uint8Array.from(received.src.address) } };
    deliverReceived(p.pair.sun, reused);
    reused.buf.fill(0);
    reused.src.address.fill(0);
    p.install();
    expectDelivered(p, openHeld(p.pair.sun, p.spi), [plain]);
  });

  it('held packets are opened in arrival order, and packets arriving after the install but before they are taken queue behind them', () => {
    const p = pending({ family: 4, mode: 'transport' });
    const pings = Array.from({ length: 6 }, (_, i) => ping(p, i));
    for (const x of pings.slice(0, 3)) deliverReceived(p.pair.sun, x.received);
    p.install();
    for (const x of pings.slice(3)) expect(deliverReceived(p.pair.sun, x.received).packet).toBeUndefined();
    expect(p.ready).toEqual([p.spi]);
    expectDelivered(
      p,
      openHeld(p.pair.sun, p.spi),
      pings.map((x) => x.plain),
    );
    // taken: the next packet takes the normal path at once
    const next = ping(p, 6);
    expectDelivered(p, [deliverReceived(p.pair.sun, next.received)], [next.plain]);
    expect(p.pair.sun.dp.counters).toMatchObject({ inHeldPendingSpi: 6, inPackets: 7, inReplay: 0 });
  });

  it('a replayed held packet is dropped by the replay window when the SA arrives (the normal inbound path)', () => {
    const p = pending({ family: 6, mode: 'tunnel' });
    const x = ping(p, 1);
    deliverReceived(p.pair.sun, x.received);
    deliverReceived(p.pair.sun, x.received);
    p.install();
    expectDelivered(p, openHeld(p.pair.sun, p.spi), [x.plain, undefined]);
    expect(p.pair.sun.dp.counters).toMatchObject({ inPackets: 1, inReplay: 1 });
  });

  it('onPendingSpiReady fires only for an installed inbound SA with held packets', () => {
    const p = pending({ family: 4, mode: 'transport' });
    p.install();
    const other = p.pair.sun.sad.allocateSpi();
    p.pair.sun.sad.addSa(p.pair.saSpecs(p.pair.sun, other).out);
    expect(p.ready).toEqual([]);
  });

  it('per SPI at most perSpi packets are held; the rest are dropped and counted inHeldPendingSpiDropped', () => {
    const p = pending({ family: 4, mode: 'transport', replayWindow: 64 }, { pendingSpi: { perSpi: 3 } });
    const pings = Array.from({ length: 5 }, (_, i) => ping(p, i));
    for (const x of pings) deliverReceived(p.pair.sun, x.received);
    expect(p.pair.sun.dp.counters).toMatchObject({ inHeldPendingSpi: 3, inHeldPendingSpiDropped: 2 });
    p.install();
    expectDelivered(
      p,
      openHeld(p.pair.sun, p.spi),
      pings.slice(0, 3).map((x) => x.plain),
    );
  });

  it('once the SA is installed a full queue drops nothing: later packets are opened at once', () => {
    const p = pending({ family: 4, mode: 'transport' }, { pendingSpi: { perSpi: 2 } });
    const pings = Array.from({ length: 4 }, (_, i) => ping(p, i));
    deliverReceived(p.pair.sun, pings[0]!.received);
    p.install();
    expect(deliverReceived(p.pair.sun, pings[1]!.received).packet).toBeUndefined();
    expectDelivered(p, [deliverReceived(p.pair.sun, pings[2]!.received), deliverReceived(p.pair.sun, pings[3]!.received)], [pings[2]!.plain, pings[3]!.plain]);
    expectDelivered(p, openHeld(p.pair.sun, p.spi), [pings[0]!.plain, pings[1]!.plain]);
    expect(p.pair.sun.dp.counters).toMatchObject({ inHeldPendingSpi: 2, inHeldPendingSpiDropped: 0, inPackets: 4 });
  });

  it('over all SPIs at most `total` packets and `totalBytes` octets are held', () => {
    const byCount = pending({ family: 4, mode: 'transport' }, { pendingSpi: { total: 4 } });
    const second = byCount.pair.sun.sad.allocateSpi();
    const specs = byCount.pair.saSpecs(byCount.pair.moon, second);
    for (let i = 0; i < 3; i++) deliverReceived(byCount.pair.sun, ping(byCount, i).received);
    byCount.pair.moon.sad.addSa(specs.out);
    byCount.pair.moon.sad.setOutboundSa(REQID, second);
    for (let i = 0; i < 3; i++) deliverReceived(byCount.pair.sun, ping(byCount, i).received);
    expect(byCount.pair.sun.dp.counters).toMatchObject({ inHeldPendingSpi: 4, inHeldPendingSpiDropped: 2 });

    const one = ping(pending({ family: 4, mode: 'transport' }), 0).received.espEnd;
    const byBytes = pending({ family: 4, mode: 'transport' }, { pendingSpi: { totalBytes: 2 * one + 1 } });
    for (let i = 0; i < 4; i++) deliverReceived(byBytes.pair.sun, ping(byBytes, i).received);
    expect(byBytes.pair.sun.dp.counters).toMatchObject({ inHeldPendingSpi: 2, inHeldPendingSpiDropped: 2 });
  });

  it('a reservation released by deleteSa (the exchange failed) drops its held packets; the SPI is unknown afterwards', () => {
    const p = pending({ family: 4, mode: 'transport' });
    for (let i = 0; i < 3; i++) deliverReceived(p.pair.sun, ping(p, i).received);
    expect(p.pair.sun.sad.deleteSa(p.spi, 'in')).toBe(false);
    expect(p.pair.sun.dp.counters).toMatchObject({ inHeldPendingSpi: 3, inHeldPendingSpiDropped: 3 });
    expect(p.pair.sun.dp.takePendingSpi(p.spi)).toEqual([]);
    deliverReceived(p.pair.sun, ping(p, 3).received);
    expect(p.pair.sun.dp.counters).toMatchObject({ inHeldPendingSpi: 3, inUnknownSpi: 1 });
  });

  it('packets held longer than maxAgeMs are dropped by expirePendingSpis; younger ones stay and are opened', () => {
    const p = pending({ family: 4, mode: 'transport' });
    const clock = p.pair.sun.clock;
    const old = ping(p, 0);
    const young = ping(p, 1);
    deliverReceived(p.pair.sun, old.received);
    clock.ms += DEFAULT_PENDING_SPI_LIMITS.maxAgeMs - 1000;
    deliverReceived(p.pair.sun, young.received);
    p.pair.sun.dp.expirePendingSpis();
    expect(p.pair.sun.dp.counters.inHeldPendingSpiDropped).toBe(0);
    clock.ms += 1000;
    p.pair.sun.dp.expirePendingSpis();
    expect(p.pair.sun.dp.counters.inHeldPendingSpiDropped).toBe(1);
    p.install();
    expectDelivered(p, openHeld(p.pair.sun, p.spi), [young.plain]);
  });

  it('a forged packet for a reserved SPI is only held; at install it fails the ICV and the genuine packet with its sequence number still passes', () => {
    const p = pending({ family: 4, mode: 'transport' });
    const genuine = ping(p, 1);
    const forged: Received = { ...genuine.received, buf: Buffer.from(genuine.received.buf) };
    forged.buf[forged.espEnd - 1]! ^= 0x01; // a bit of the ICV
    deliverReceived(p.pair.sun, forged);
    deliverReceived(p.pair.sun, genuine.received);
    expect(p.pair.sun.dp.counters).toMatchObject({ inHeldPendingSpi: 2, inPackets: 0, inIcv: 0 });
    p.install();
    expectDelivered(p, openHeld(p.pair.sun, p.spi), [undefined, genuine.plain]);
    expect(p.pair.sun.dp.counters).toMatchObject({ inIcv: 1, inPackets: 1, inReplay: 0 });
    expect(p.pair.sun.sad.querySa(p.spi, 'in')).toMatchObject({ icvFailures: 1, packets: 1 });
  });

  it('an SPI neither installed nor reserved is still dropped as unknown, and nothing is held for it', () => {
    const p = pending({ family: 4, mode: 'transport' });
    const x = ping(p, 1);
    x.received.buf.writeUInt32BE((p.spi ^ 0x5a5a5a5a) >>> 0, x.received.espOff);
    deliverReceived(p.pair.sun, x.received);
    expect(p.pair.sun.dp.counters).toMatchObject({ inUnknownSpi: 1, inHeldPendingSpi: 0 });
  });
});
