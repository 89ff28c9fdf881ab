/**
 * ESP that arrives on a new SA before the exchange creating it has completed
 * here (issue 17): a kernel peer (Libreswan, strongSwan with XFRM) installs
 * its SAs as the responder of CREATE_CHILD_SA / IKE_AUTH and sends on the new
 * outbound SA with, or just before, its response (RFC 7296 §2.8 allows it).
 * Two tunsec IKE peers in-process (test/ike/support/peers.ts), each SAD with
 * an PacketEngine; "sun" answers and, the moment its response leaves, does
 * what such a peer does — switches to its new outbound SA and sends a ping on
 * it, handed to moon's datapath before moon has the response. That ping must
 * be delivered once moon has installed the SA, not dropped as an unknown SPI.
 * The test plays the I/O loop's part for moon (src/esp/io.ts
 * releasePendingSpi: the held packets through `inbound` after the IKE step).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { PacketEngine, OUT_SEND, type InboundResult } from '../../../src/esp/engine.js';
import { ExchangeType } from '../../../src/ike/codec/index.js';
import type { IkeSa } from '../../../src/ike/sa/ike-sa.js';
import type { ChildSaRecord } from '../../../src/ike/sa/context.js';
import { parseIp } from '../../../src/util/ip.js';
import { freePorts, peerConfig, startPeer, testPki, type TestPeer, stopPeers } from '../support/peers.js';
import { waitUntil } from '../support/wait.js';

/** The long run's exchanges (TUNSEC_EARLY_ESP_REKEYS=100 for issue 17's figure: 100 CHILD_SA and 20 IKE_SA rekeys). */
const CHILD_REKEYS = Number(process.env.TUNSEC_EARLY_ESP_REKEYS ?? 10);
const IKE_REKEYS = Math.max(1, Math.floor(CHILD_REKEYS / 5));

const MOON = '127.0.0.1';
const SUN = '127.0.0.2';

/** An ICMP echo request sun → moon carrying `text` (IPv4, no options; checksums are not checked on this path). */
function pingFromSun(text: string): Buffer {
  const data = Buffer.from(text);
  const p = Buffer.alloc(28 + data.length);
  p[0] = 0x45;
  p.writeUInt16BE(p.length, 2);
  p[8] = 64;
  p[9] = 1;
  parseIp(SUN)!.copy(p, 12);
  parseIp(MOON)!.copy(p, 16);
  p[20] = 8;
  data.copy(p, 28);
  return p;
}

/** The exchange type of an IKE message we sent if it is a response (port 500 or 4500 with the non-ESP marker). */
function responseExchange(datagram: Buffer): number | undefined {
  const off = datagram.length >= 4 && datagram.readUInt32BE(0) === 0 ? 4 : 0;
  if (datagram.length < off + 28 || (datagram[off + 19]! & 0x20) === 0) return undefined;
  return datagram[off + 18];
}

interface Lab {
  moon: TestPeer;
  sun: TestPeer;
  moonDp: PacketEngine;
  /** Seals sun's early pings (sun's IKE needs no datapath otherwise). */
  sunDp: PacketEngine;
  /** What moon's datapath delivered (copies), held packets included once opened. */
  delivered: Buffer[];
  /** The responses of this exchange type make sun send a ping on its newest outbound SA first. */
  earlyOn: Set<number>;
  /** Per early ping: sun's inbound SPIs when its response left. */
  early: Array<{ text: string; outboundSpi: number; sunInbound: number[] }>;
}

describe('ESP the peer sends on a new SA before its response reaches us (RFC 7296 §2.8)', () => {
  const peers: TestPeer[] = [];
  afterEach(() => stopPeers(peers));

  async function lab(earlyOn: number[]): Promise<Lab> {
    const pki = testPki();
    const ports = await freePorts();
    const moonCert = pki.host('moon.tunsec.test', { ip: [MOON] });
    const sunCert = pki.host('sun.tunsec.test', { ip: [SUN] });
    let self: Lab | undefined;
    const moon = await startPeer(MOON, ports, [
      { config: peerConfig(pki, moonCert, 'moon.tunsec.test', 'sun.tunsec.test'), localAddrs: [MOON], remoteAddrs: [SUN], remotePort: ports.ike },
    ]);
    const sun = await startPeer(
      SUN,
      ports,
      [{ config: peerConfig(pki, sunCert, 'sun.tunsec.test', 'moon.tunsec.test'), localAddrs: [SUN], remoteAddrs: [MOON], remotePort: ports.ike }],
      { dropOutgoing: (d) => (self ? sendEarly(self, d) : false) },
    );
    peers.push(moon, sun);
    const delivered: Buffer[] = [];
    const scratch = Buffer.alloc(2048);
    const moonDp: PacketEngine = new PacketEngine(moon.sad, {
      onPendingSpiReady: (spi) =>
        setImmediate(() => {
          for (const h of moonDp.takePendingSpi(spi)) receive(moonDp, h.buf, h.espOff, delivered, scratch);
        }),
    });
    self = { moon, sun, moonDp, sunDp: new PacketEngine(sun.sad), delivered, earlyOn: new Set(earlyOn), early: [] };
    return self;
  }

  function receive(dp: PacketEngine, buf: Buffer, espOff: number, delivered: Buffer[], scratch: Buffer): void {
    const res: InboundResult = { packet: undefined, sa: undefined };
    dp.inbound(buf, espOff, buf.length, { family: 4, address: parseIp(SUN)!, udp: false }, scratch, res);
    if (res.packet) delivered.push(Buffer.from(res.packet));
  }

  /** sun's send hook: before a response of a chosen exchange leaves, a kernel peer's first packet on its new SA. */
  function sendEarly(l: Lab, datagram: Buffer): boolean {
    const exchange = responseExchange(datagram);
    if (exchange === undefined || !l.earlyOn.has(exchange)) return false;
    const outs = l.sun.sad.listSas().filter((e) => e.spec.direction === 'out');
    const newest = outs.reduce((a, b) => (b.installedAt >= a.installedAt ? b : a));
    // the kernel sends on the newest SA at once; tunsec's own responder would wait for the Delete
    l.sun.sad.setOutboundSa(newest.spec.reqid, newest.spec.spi);
    const text = `early ESP ${l.early.length} on ${newest.spec.spi.toString(16)}`;
    const plain = pingFromSun(text);
    const wire = Buffer.alloc(plain.length + 128);
    const res = { verdict: 0, length: 0, sa: undefined };
    l.sunDp.outbound(plain, plain.length, wire, res);
    expect(res.verdict).toBe(OUT_SEND);
    l.early.push({
      text,
      outboundSpi: newest.spec.spi >>> 0,
      sunInbound: l.sun.sad
        .listSas()
        .filter((e) => e.spec.direction === 'in')
        .map((e) => e.spec.spi >>> 0),
    });
    receive(l.moonDp, wire.subarray(0, res.length), 20, l.delivered, Buffer.alloc(2048));
    return false;
  }

  const carries = (l: Lab, text: string): boolean => l.delivered.some((p) => p.includes(text));

  function childRekeyed(sa: IkeSa): Promise<ChildSaRecord> {
    return new Promise((resolve) => sa.on('childRekeyed', (_s, _old, fresh) => resolve(fresh)));
  }

  it('a CHILD_SA rekey we initiate: the ping sun sent before its CREATE_CHILD_SA response is delivered, and sun had its new inbound SA before answering', async () => {
    const l = await lab([ExchangeType.CREATE_CHILD_SA]);
    const moonSa = await l.moon.manager.initiate('host-host');
    const old = moonSa.ctx.children[0]!;
    const fresh = childRekeyed(moonSa);
    moonSa.rekeyChild(old, 'test');
    const child = await fresh;
    await waitUntil(() => l.delivered.length === 1, 2000, 'the early ping opened');
    expect(l.early).toHaveLength(1);
    expect(l.early[0]!.outboundSpi).toBe(child.inboundSpi >>> 0);
    expect(carries(l, l.early[0]!.text)).toBe(true);
    expect(l.moonDp.counters).toMatchObject({ inHeldPendingSpi: 1, inHeldPendingSpiDropped: 0, inUnknownSpi: 0, inPackets: 1, inIcv: 0 });
    // RFC 7296 §2.8: the responder's inbound SA for the new SPI was in its SAD when its response left
    expect(l.early[0]!.sunInbound).toContain(child.outboundSpi >>> 0);
  });

  it('IKE_AUTH: the ping sun sent on the first CHILD_SA before its IKE_AUTH response is delivered', async () => {
    const l = await lab([ExchangeType.IKE_AUTH]);
    const moonSa = await l.moon.manager.initiate('host-host');
    await waitUntil(() => l.delivered.length === 1, 2000, 'the early ping opened');
    expect(l.early[0]!.outboundSpi).toBe(moonSa.ctx.children[0]!.inboundSpi >>> 0);
    expect(carries(l, l.early[0]!.text)).toBe(true);
    expect(l.moonDp.counters).toMatchObject({ inHeldPendingSpi: 1, inUnknownSpi: 0, inPackets: 1 });
  });

  it('an IKE_SA rekey moves the CHILD_SAs without new ESP SPIs; a CHILD_SA rekey on the new IKE_SA holds early ESP the same way', async () => {
    const l = await lab([ExchangeType.CREATE_CHILD_SA]);
    const moonSa = await l.moon.manager.initiate('host-host');
    const child = moonSa.ctx.children[0]!;
    const spisBefore = l.moon.sad
      .listSas()
      .map((e) => e.spec.spi)
      .sort();
    let next: IkeSa | undefined;
    moonSa.on('ikeRekeyed', (_o, n) => (next = n));
    // the IKE_SA rekey's response is a CREATE_CHILD_SA response too: no new ESP SA, so sun's ping goes on the current one
    moonSa.rekeyIke('test');
    await waitUntil(() => next?.state === 'established', 4000, 'IKE_SA rekeyed');
    expect(next!.ctx.children).toContain(child);
    expect(
      l.moon.sad
        .listSas()
        .map((e) => e.spec.spi)
        .sort(),
    ).toEqual(spisBefore);
    expect(l.moonDp.counters).toMatchObject({ inHeldPendingSpi: 0, inUnknownSpi: 0, inPackets: 1 });
    const fresh = childRekeyed(next!);
    next!.rekeyChild(child, 'test after the IKE_SA rekey');
    const rekeyed = await fresh;
    await waitUntil(() => l.delivered.length === 2, 2000, 'the early ping of the CHILD_SA rekey opened');
    expect(l.early[1]!.outboundSpi).toBe(rekeyed.inboundSpi >>> 0);
    expect(carries(l, l.early[1]!.text)).toBe(true);
    expect(l.moonDp.counters).toMatchObject({ inHeldPendingSpi: 1, inHeldPendingSpiDropped: 0, inUnknownSpi: 0, inPackets: 2 });
  });

  it(`${CHILD_REKEYS} CHILD_SA rekeys and ${IKE_REKEYS} IKE_SA rekeys we initiate against a peer that sends before it answers: every ping delivered`, async () => {
    const l = await lab([ExchangeType.CREATE_CHILD_SA]);
    let sa = await l.moon.manager.initiate('host-host');
    let sent = 0;
    /** A ping on sun's current outbound SA, between exchanges. */
    const steady = (): void => {
      const plain = pingFromSun(`steady ${sent++}`);
      const wire = Buffer.alloc(plain.length + 128);
      const res = { verdict: 0, length: 0, sa: undefined };
      l.sunDp.outbound(plain, plain.length, wire, res);
      expect(res.verdict).toBe(OUT_SEND);
      receive(l.moonDp, wire.subarray(0, res.length), 20, l.delivered, Buffer.alloc(2048));
    };
    const outbound = (p: TestPeer): number => p.sad.listSas().filter((e) => e.spec.direction === 'out').length;
    /** One exchange, then the old pair's Delete (sun switches for good) and the IKE step after which held packets are opened. */
    const exchange = async (run: () => Promise<void>): Promise<void> => {
      steady();
      await run();
      await waitUntil(() => outbound(l.sun) === 1 && outbound(l.moon) === 1, 4000, 'old outbound SAs deleted');
      await new Promise((r) => setImmediate(r));
    };
    let childRekeys = 0;
    let ikeRekeys = 0;
    const every = Math.floor(CHILD_REKEYS / IKE_REKEYS);
    for (let i = 1; i <= CHILD_REKEYS; i++) {
      await exchange(async () => {
        const fresh = childRekeyed(sa);
        sa.rekeyChild(sa.ctx.children[0]!, 'test');
        await fresh;
        childRekeys++;
      });
      if (i % every !== 0 || ikeRekeys === IKE_REKEYS) continue;
      await exchange(async () => {
        let next: IkeSa | undefined;
        sa.on('ikeRekeyed', (_o, n) => (next = n));
        sa.rekeyIke('test');
        await waitUntil(() => next?.state === 'established', 4000, `IKE_SA rekey ${ikeRekeys}`);
        sa = next!;
        ikeRekeys++;
      });
    }
    steady();
    const expected = sent + l.early.length;
    console.log(
      `early ESP, in-process: ${childRekeys} CHILD_SA rekeys and ${ikeRekeys} IKE_SA rekeys initiated by moon; sun sent ${l.early.length} pings on its newest SA before answering a CREATE_CHILD_SA and ${sent} between exchanges: ${l.delivered.length} delivered, ${expected - l.delivered.length} lost; moon's datapath ${JSON.stringify(l.moonDp.counters)}`,
    );
    expect(l.early).toHaveLength(CHILD_REKEYS + IKE_REKEYS);
    expect(l.delivered).toHaveLength(expected);
    expect(l.moonDp.counters).toMatchObject({ inHeldPendingSpi: CHILD_REKEYS, inHeldPendingSpiDropped: 0, inUnknownSpi: 0, inReplay: 0, inIcv: 0 });
  }, 120_000);
});
