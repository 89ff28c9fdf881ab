import { afterEach, describe, expect, it } from 'vitest';
import { waitUntil as waitFor } from '../support/wait.js';
import { freePorts, peerConfig, proposals, startPeer, testPki, child, type TestPeer, stopPeers } from '../support/peers.js';
import { ProtocolId } from '../../../src/ike/transforms.js';
import type { IkeSa } from '../../../src/ike/sa/ike-sa.js';
import type { ChildSaRecord } from '../../../src/ike/sa/context.js';
import type { IkePeerConfig } from '../../../src/ike/sa/peer-config.js';

const ESP = ProtocolId.ESP;

describe('CREATE_CHILD_SA: CHILD_SA and IKE_SA rekeying between two tunsec peers (RFC 7296 §1.3, §2.8, §2.18)', () => {
  const peers: TestPeer[] = [];
  afterEach(() => stopPeers(peers));

  async function pair(
    opts: {
      moon?: Partial<IkePeerConfig>;
      sun?: Partial<IkePeerConfig>;
      drop?: { moon?: (b: Buffer) => boolean; sun?: (b: Buffer) => boolean };
      delayMs?: number;
    } = {},
  ) {
    const pki = testPki();
    const ports = await freePorts();
    const moonCert = pki.host('moon.tunsec.test', { ip: ['127.0.0.1'] });
    const sunCert = pki.host('sun.tunsec.test', { ip: ['127.0.0.2'] });
    const moon = await startPeer(
      '127.0.0.1',
      ports,
      [
        {
          config: peerConfig(pki, moonCert, 'moon.tunsec.test', 'sun.tunsec.test', opts.moon),
          localAddrs: ['127.0.0.1'],
          remoteAddrs: ['127.0.0.2'],
          remotePort: ports.ike,
        },
      ],
      { ...(opts.drop?.moon ? { dropOutgoing: opts.drop.moon } : {}), ...(opts.delayMs ? { delayMs: opts.delayMs } : {}) },
    );
    const sun = await startPeer(
      '127.0.0.2',
      ports,
      [
        {
          config: peerConfig(pki, sunCert, 'sun.tunsec.test', 'moon.tunsec.test', opts.sun),
          localAddrs: ['127.0.0.2'],
          remoteAddrs: ['127.0.0.1'],
          remotePort: ports.ike,
        },
      ],
      { ...(opts.drop?.sun ? { dropOutgoing: opts.drop.sun } : {}), ...(opts.delayMs ? { delayMs: opts.delayMs } : {}) },
    );
    peers.push(moon, sun);
    const moonSa = await moon.manager.initiate('host-host');
    await waitFor(() => sun.manager.sas.some((s) => s.state === 'established'), 2000, 'sun established');
    return { moon, sun, moonSa, sunSa: () => sun.manager.sas.find((s) => s.state === 'established')! };
  }

  /** The SA each side sends with exists as an inbound SA on the other side, with the same key. */
  function pathsIntact(moon: TestPeer, sun: TestPeer, reqids: [number, number]): boolean {
    const ok = (from: TestPeer, to: TestPeer, reqid: number): boolean => {
      const out = from.sad.outboundSaFor(reqid);
      if (!out) return false;
      const inbound = to.sad.inboundSa(out.spec.spi);
      return inbound !== undefined && Buffer.from(inbound.spec.aead.keyMaterial).equals(Buffer.from(out.spec.aead.keyMaterial));
    };
    return ok(moon, sun, reqids[0]) && ok(sun, moon, reqids[1]);
  }

  /** Watch the make-before-break property while `run` goes on; returns how many samples found a broken direction. */
  async function watchPaths(moon: TestPeer, sun: TestPeer, reqids: [number, number], run: () => Promise<void>): Promise<number> {
    let broken = 0;
    const timer = setInterval(() => {
      if (!pathsIntact(moon, sun, reqids)) broken++;
    }, 1);
    try {
      await run();
    } finally {
      clearInterval(timer);
    }
    return broken;
  }

  function rekeyed(sa: IkeSa): Promise<{ old: ChildSaRecord; fresh: ChildSaRecord }> {
    return new Promise((resolve) => sa.on('childRekeyed', (_s, old, fresh) => resolve({ old, fresh })));
  }

  it('a CHILD_SA rekey we initiate uses PFS, installs new SPIs on both sides with matching keys and deletes the old pair', async () => {
    const { moon, sun, moonSa, sunSa } = await pair();
    const before = moonSa.ctx.children[0]!;
    const reqids: [number, number] = [before.reqid, sunSa().ctx.children[0]!.reqid];
    const broken = await watchPaths(moon, sun, reqids, async () => {
      const done = Promise.all([rekeyed(moonSa), rekeyed(sunSa())]);
      moonSa.rekeyChild(before, 'test');
      await done;
      await waitFor(() => moon.sad.listSas().length === 2 && sun.sad.listSas().length === 2, 5000, 'old SAs deleted');
    });
    expect(broken).toBe(0);
    const after = moonSa.ctx.children[0]!;
    expect(after.inboundSpi).not.toBe(before.inboundSpi);
    expect(after.outboundSpi).not.toBe(before.outboundSpi);
    expect(after.reqid).toBe(before.reqid);
    const sunChild = sunSa().ctx.children[0]!;
    expect(sunChild.inboundSpi).toBe(after.outboundSpi);
    expect(sunChild.outboundSpi).toBe(after.inboundSpi);
    expect(moon.sad.outboundSaFor(after.reqid)!.spec.spi).toBe(after.outboundSpi);
    expect(sun.sad.outboundSaFor(sunChild.reqid)!.spec.spi).toBe(sunChild.outboundSpi);
    expect(pathsIntact(moon, sun, reqids)).toBe(true);
    expect(moon.log.text()).toMatch(/CHILD_SA host-host\{\d+\} rekeyed with SPIs .*aes128gcm16-ecp384bp-noesn \(PFS\)/);
    expect(sun.log.text()).toContain('deleted by the peer after its rekey');
    expect(moonSa.state).toBe('established');
  });

  it('an IKE SA that ends while its CHILD_SA rekey request is unanswered releases the SPI it reserved for the new SA', async () => {
    let silent = false;
    const { moon, moonSa } = await pair({ drop: { sun: () => silent } });
    const reserved: number[] = [];
    const allocate = moon.sad.allocateSpi.bind(moon.sad);
    moon.sad.allocateSpi = () => {
      const spi = allocate();
      reserved.push(spi);
      return spi;
    };
    silent = true;
    moonSa.rekeyChild(moonSa.ctx.children[0]!, 'test');
    await waitFor(() => reserved.length === 1, 2000, 'the rekey request built');
    expect(moon.sad.spiReserved(reserved[0]!)).toBe(true);
    moonSa.destroy('test: the IKE SA ends with the rekey unanswered');
    expect(moon.sad.spiReserved(reserved[0]!)).toBe(false);
  });

  it('a CHILD_SA rekey initiated by the original responder works the same way', async () => {
    const { moon, sun, moonSa, sunSa } = await pair();
    const reqids: [number, number] = [moonSa.ctx.children[0]!.reqid, sunSa().ctx.children[0]!.reqid];
    const before = sunSa().ctx.children[0]!;
    const broken = await watchPaths(moon, sun, reqids, async () => {
      const done = Promise.all([rekeyed(moonSa), rekeyed(sunSa())]);
      sunSa().rekeyChild(before, 'test');
      await done;
      await waitFor(() => moon.sad.listSas().length === 2 && sun.sad.listSas().length === 2, 5000, 'old SAs deleted');
    });
    expect(broken).toBe(0);
    expect(sunSa().ctx.children[0]!.inboundSpi).not.toBe(before.inboundSpi);
    expect(pathsIntact(moon, sun, reqids)).toBe(true);
  });

  it('the SAD reaching the soft packet limit of a CHILD_SA starts its rekey, and the new SAs start counting from zero', async () => {
    const lifetimes = { softSeconds: 0, hardSeconds: 0, softBytes: 0, hardBytes: 0, softPackets: 50, hardPackets: 60 };
    const { moon, sun, moonSa, sunSa } = await pair({ moon: { children: [child({ lifetimes })] }, sun: { children: [child({ lifetimes })] } });
    const before = moonSa.ctx.children[0]!;
    const done = rekeyed(sunSa());
    const out = moon.sad.outboundSaFor(before.reqid)!;
    for (let i = 0; i < 60 && moonSa.ctx.children[0] === before; i++) moon.sad.account(out, 84, Math.floor(Date.now() / 1000));
    await done;
    await waitFor(() => moon.sad.listSas().length === 2 && sun.sad.listSas().length === 2, 5000, 'old SAs deleted');
    const fresh = moon.sad.outboundSaFor(before.reqid)!;
    expect(fresh.spec.spi).not.toBe(before.outboundSpi);
    expect(fresh.counters.packets).toBe(0);
    expect(moon.log.text()).toMatch(/rekeying CHILD_SA host-host\{\d+\} .*\(soft packets limit of SA/);
  });

  it('the rekey timer (rekey_time minus a random part of rand_time) rekeys a CHILD_SA again and again', async () => {
    const lifetimes = { softSeconds: 1, hardSeconds: 3, softBytes: 0, hardBytes: 0, softPackets: 0, hardPackets: 0 };
    const { moon, sun, moonSa, sunSa } = await pair({
      moon: { children: [child({ lifetimes })] },
      sun: { children: [child({ lifetimes: { ...lifetimes, softSeconds: 100, hardSeconds: 110 } })] },
    });
    const reqids: [number, number] = [moonSa.ctx.children[0]!.reqid, sunSa().ctx.children[0]!.reqid];
    let rekeys = 0;
    moonSa.on('childRekeyed', () => rekeys++);
    const broken = await watchPaths(moon, sun, reqids, () => waitFor(() => rekeys >= 3, 6000, 'three rekeys'));
    expect(broken).toBe(0);
    expect(moonSa.state).toBe('established');
    // old outbound SAs go at once, old inbound ones after a short grace: the SAD does not grow
    expect(moon.sad.listSas().filter((e) => e.spec.direction === 'out')).toHaveLength(1);
    expect(moon.sad.listSas().length).toBeLessThanOrEqual(8);
    expect(sun.sad.listSas().length).toBeLessThanOrEqual(8);
  }, 15_000);

  it('a responder wanting another PFS group answers INVALID_KE_PAYLOAD and the rekey is retried with that group', async () => {
    const { moon, sun, moonSa, sunSa } = await pair({
      moon: { children: [child({ espProposals: proposals('aes128gcm16-ecp384bp-x25519!', ESP) })] },
      sun: { children: [child({ espProposals: proposals('aes128gcm16-x25519!', ESP) })] },
    });
    const done = Promise.all([rekeyed(moonSa), rekeyed(sunSa())]);
    moonSa.rekeyChild(moonSa.ctx.children[0]!, 'test');
    const [{ fresh }] = await done;
    expect(sun.log.text()).toContain('answering INVALID_KE_PAYLOAD');
    expect(moon.log.text()).toContain('peer asks for another key exchange group, retrying');
    expect(fresh.proposal.transforms.some((t) => t.type === 4 && t.id === 31)).toBe(true);
    expect(pathsIntact(moon, sun, [fresh.reqid, sunSa().ctx.children[0]!.reqid])).toBe(true);
  });

  it('rekeying a CHILD_SA the peer no longer has is answered CHILD_SA_NOT_FOUND and changes nothing', async () => {
    const { moon, sun, moonSa, sunSa } = await pair();
    sunSa().ctx.children.splice(0); // sun forgot it (as after a crossing Delete)
    const before = moonSa.ctx.children[0]!;
    moonSa.rekeyChild(before, 'test');
    await waitFor(() => moon.log.text().includes('CHILD_SA_NOT_FOUND'), 3000, 'CHILD_SA_NOT_FOUND');
    expect(sun.log.text()).toMatch(/refused \(CHILD_SA_NOT_FOUND\)/);
    expect(moonSa.ctx.children[0]).toBe(before);
    expect(moonSa.state).toBe('established');
  });

  it('simultaneous CHILD_SA rekeys from both sides, 40 ms of delay each way so the exchanges cross: both complete, the pair made with the lowest nonce is deleted by its initiator (§2.8.1), one new SA pair remains and no direction ever breaks', async () => {
    const { moon, sun, moonSa, sunSa } = await pair({ delayMs: 40 });
    const reqids: [number, number] = [moonSa.ctx.children[0]!.reqid, sunSa().ctx.children[0]!.reqid];
    const before = [moonSa.ctx.children[0]!, sunSa().ctx.children[0]!] as const;
    const broken = await watchPaths(moon, sun, reqids, async () => {
      moonSa.rekeyChild(before[0], 'collision test');
      sunSa().rekeyChild(before[1], 'collision test');
      await waitFor(
        () =>
          moonSa.ctx.children[0] !== before[0] && sunSa().ctx.children[0] !== before[1] && moon.sad.listSas().length === 2 && sun.sad.listSas().length === 2,
        10_000,
        'one rekey to win',
      );
    });
    expect(broken).toBe(0);
    expect(sunSa().ctx.children[0]!.inboundSpi).toBe(moonSa.ctx.children[0]!.outboundSpi);
    expect(pathsIntact(moon, sun, reqids)).toBe(true);
    // §2.8.1: both exchanges completed; the side whose exchange had the lowest nonce deleted its pair
    const logs = moon.log.text() + sun.log.text();
    expect(logs).not.toContain('TEMPORARY_FAILURE');
    expect(logs.match(/rekey collision: the peer rekeys it too/g)).toHaveLength(2);
    expect(logs.match(/the lowest nonce is in the peer's exchange; keeping ours/g)).toHaveLength(1);
    expect(logs.match(/in a collision and our exchange has the lowest nonce \(§2\.8\.1\); deleting our redundant SAs/g)).toHaveLength(1);
    expect(logs.match(/redundant SAs [0-9a-f]{8}_i [0-9a-f]{8}_o of the rekey collision deleted by the peer/g)).toHaveLength(1);
  }, 15_000);

  it('an IKE_SA rekey moves the CHILD_SAs to the new IKE SA with new SPIs on both sides and deletes the old one', async () => {
    const { moon, sun, moonSa, sunSa } = await pair();
    const oldSun = sunSa();
    const reqids: [number, number] = [moonSa.ctx.children[0]!.reqid, oldSun.ctx.children[0]!.reqid];
    let next: IkeSa | undefined;
    moonSa.on('ikeRekeyed', (_o, n) => (next = n));
    const broken = await watchPaths(moon, sun, reqids, async () => {
      moonSa.rekeyIke('test');
      await waitFor(() => moonSa.state === 'destroyed' && oldSun.state === 'destroyed', 3000, 'old IKE SA deleted');
    });
    expect(broken).toBe(0);
    expect(next).toBeDefined();
    const newSun = sunSa();
    expect(newSun).not.toBe(oldSun);
    expect(next!.ctx.spiI.equals(newSun.ctx.spiI)).toBe(true);
    expect(next!.ctx.spiR.equals(newSun.ctx.spiR)).toBe(true);
    expect(next!.ctx.spiI.equals(moonSa.ctx.spiI)).toBe(false);
    expect(next!.ctx.children).toHaveLength(1);
    expect(newSun.ctx.children).toHaveLength(1);
    expect(moon.manager.sas).toEqual([next]);
    expect(sun.manager.sas).toEqual([newSun]);
    // The new IKE SA's keys agree: a CHILD rekey inside it works (KEYMAT from the new SK_d).
    const done = Promise.all([rekeyed(next!), rekeyed(newSun)]);
    next!.rekeyChild(next!.ctx.children[0]!, 'after IKE rekey');
    await done;
    await waitFor(() => moon.sad.listSas().length === 2 && sun.sad.listSas().length === 2, 5000, 'old SAs deleted');
    expect(pathsIntact(moon, sun, reqids)).toBe(true);
    // and the responder of the IKE rekey can rekey the new IKE SA in turn
    const oldNewSun = newSun;
    newSun.rekeyIke('test, other side');
    await waitFor(() => oldNewSun.state === 'destroyed' && next!.state === 'destroyed', 3000, 'second IKE rekey');
    expect(sun.manager.sas).toHaveLength(1);
    expect(moon.manager.sas).toHaveLength(1);
    expect(moon.manager.sas[0]!.ctx.children).toHaveLength(1);
    expect(pathsIntact(moon, sun, reqids)).toBe(true);
  });

  it('a CHILD_SA rekey due while the IKE_SA is being rekeyed waits (§2.25) and is done on the new IKE_SA', async () => {
    const { moon, sun, moonSa, sunSa } = await pair();
    const reqids: [number, number] = [moonSa.ctx.children[0]!.reqid, sunSa().ctx.children[0]!.reqid];
    const before = moonSa.ctx.children[0]!;
    let next: IkeSa | undefined;
    moonSa.on('ikeRekeyed', (_o, n) => (next = n));
    moonSa.rekeyIke('test');
    moonSa.rekeyChild(before, 'due during the IKE rekey');
    await waitFor(() => next !== undefined && next.ctx.children[0] !== undefined && next.ctx.children[0] !== before, 5000, 'CHILD rekey on the new IKE SA');
    await waitFor(() => moonSa.state === 'destroyed' && moon.sad.listSas().length === 2 && sun.sad.listSas().length === 2, 5000, 'old SAs deleted');
    expect(moon.log.text()).toContain('due during the IKE rekey, moved to the new IKE_SA');
    expect(pathsIntact(moon, sun, reqids)).toBe(true);
  });

  it('with every fifth IKE datagram dropped on both sides, CHILD and IKE rekeys still complete through retransmission', async () => {
    let dropping = false;
    const every5th = (): ((b: Buffer) => boolean) => {
      let n = 0;
      return () => dropping && ++n % 5 === 0;
    };
    const { moon, sun, moonSa, sunSa } = await pair({ drop: { moon: every5th(), sun: every5th() } });
    const reqids: [number, number] = [moonSa.ctx.children[0]!.reqid, sunSa().ctx.children[0]!.reqid];
    dropping = true;
    let current: IkeSa = moonSa;
    const broken = await watchPaths(moon, sun, reqids, async () => {
      for (let i = 0; i < 4; i++) {
        const before = current.ctx.children[0]!;
        current.rekeyChild(before, `lossy ${i}`);
        await waitFor(() => current.ctx.children[0] !== before, 8000, `CHILD rekey ${i}`);
      }
      const old = current;
      let next: IkeSa | undefined;
      old.on('ikeRekeyed', (_o, n) => (next = n));
      old.rekeyIke('lossy');
      await waitFor(() => next !== undefined && old.state === 'destroyed', 8000, 'IKE rekey');
      current = next!;
      const before = current.ctx.children[0]!;
      current.rekeyChild(before, 'lossy, new IKE SA');
      await waitFor(() => current.ctx.children[0] !== before, 8000, 'CHILD rekey in the new IKE SA');
    });
    expect(broken).toBe(0);
    expect(moon.log.text() + sun.log.text()).toMatch(/retransmit \d of CREATE_CHILD_SA|retransmit \d of INFORMATIONAL/);
    expect(moon.manager.sas.filter((s) => s.state === 'established')).toHaveLength(1);
    expect(sun.manager.sas.filter((s) => s.state === 'established')).toHaveLength(1);
    await waitFor(() => moon.sad.listSas().length === 2 && sun.sad.listSas().length === 2, 6000, 'old SAs deleted');
    expect(pathsIntact(moon, sun, reqids)).toBe(true);
  }, 60_000);

  it('simultaneous IKE_SA rekeys from both sides, 40 ms of delay each way so the exchanges cross, end with exactly one new IKE SA carrying the CHILD_SA', async () => {
    const { moon, sun, moonSa, sunSa } = await pair({ delayMs: 40 });
    const oldSun = sunSa();
    const reqids: [number, number] = [moonSa.ctx.children[0]!.reqid, oldSun.ctx.children[0]!.reqid];
    const broken = await watchPaths(moon, sun, reqids, async () => {
      moonSa.rekeyIke('collision test');
      oldSun.rekeyIke('collision test');
      // the old IKE SA goes, and the redundant new one of the losing exchange (§2.8.1)
      await waitFor(
        () => moonSa.state === 'destroyed' && oldSun.state === 'destroyed' && moon.manager.sas.length === 1 && sun.manager.sas.length === 1,
        10_000,
        'one IKE rekey to win',
      );
    });
    expect(broken).toBe(0);
    // §2.8.1: both exchanges are answered, the lowest nonce decides which new IKE SA goes
    expect(moon.log.text() + sun.log.text()).toMatch(/IKE_SA rekey collision (won|lost) \(§2\.8\.1\)/);
    const [m] = moon.manager.sas;
    const [n] = sun.manager.sas;
    expect(moon.manager.sas).toHaveLength(1);
    expect(sun.manager.sas).toHaveLength(1);
    expect(m!.ctx.spiI.equals(n!.ctx.spiI) && m!.ctx.spiR.equals(n!.ctx.spiR)).toBe(true);
    expect(m!.ctx.children).toHaveLength(1);
    expect(n!.ctx.children).toHaveLength(1);
  }, 20_000);

  it('identical rekey timers without jitter on both sides and 40 ms of delay each way: CHILD and IKE rekeys keep working, whichever side starts, and no direction ever breaks', async () => {
    const timers: Partial<IkePeerConfig> = {
      children: [
        child({
          reqid: 5,
          lifetimes: { softSeconds: 1, hardSeconds: 6, softBytes: 0, hardBytes: 0, softPackets: 0, hardPackets: 0 },
          rand: { seconds: 0, bytes: 0, packets: 0 },
        }),
      ],
      ikeLifetimes: { rekeyTime: 3, randTime: 0, overTime: 10 },
    };
    const { moon, sun, moonSa } = await pair({ moon: timers, sun: timers, delayMs: 40 });
    const crossings = (): number => ((moon.log.text() + sun.log.text()).match(/refused \(TEMPORARY_FAILURE\)/g) ?? []).length;
    const rekeys = { child: 0, ike: 0 };
    const count = (sa: IkeSa): void => {
      sa.on('childRekeyed', () => rekeys.child++);
      sa.on('ikeRekeyed', (_o, next) => {
        rekeys.ike++;
        count(next);
      });
    };
    count(moonSa);
    const broken = await watchPaths(moon, sun, [5, 5], () => new Promise((r) => setTimeout(r, 7000)));
    console.info(`crossing rekeys: ${rekeys.child} CHILD, ${rekeys.ike} IKE rekeys seen by moon, ${crossings()} collisions answered TEMPORARY_FAILURE`);
    expect(broken).toBe(0);
    expect(rekeys.child).toBeGreaterThanOrEqual(3);
    expect(rekeys.ike).toBeGreaterThanOrEqual(1);
    const live = (p: TestPeer) => p.manager.sas.filter((s) => s.state === 'established');
    expect(live(moon)).toHaveLength(1);
    expect(live(sun)).toHaveLength(1);
    expect(live(moon)[0]!.ctx.children).toHaveLength(1);
    expect(live(sun)[0]!.ctx.children).toHaveLength(1);
    expect(pathsIntact(moon, sun, [5, 5])).toBe(true);
  }, 30_000);

  it('the IKE rekey timer (rekey_time with rand_time) rekeys the IKE SA', async () => {
    const { moon, sun, moonSa } = await pair({ moon: { ikeLifetimes: { rekeyTime: 1, randTime: 0, overTime: 5 } } });
    await waitFor(() => moonSa.state === 'destroyed', 4000, 'IKE rekey by timer');
    expect(moon.log.text()).toContain('rekeying IKE_SA (rekey_time)');
    expect(moon.manager.sas).toHaveLength(1);
    expect(moon.manager.sas[0]!.state).toBe('established');
    expect(sun.manager.sas).toHaveLength(1);
    expect(moon.manager.sas[0]!.ctx.children).toHaveLength(1);
  }, 10_000);
});
