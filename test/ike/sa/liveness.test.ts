/**
 * Liveness and uniqueness of IKE SAs between two in-process tunsec peers on
 * loopback: dead peer detection (RFC 7296 §2.4, swanctl's dpd_delay), the end
 * causes the daemon's dpd_action / close_action follow, INITIAL_CONTACT from a
 * restarted peer (§2.4), and additional CHILD_SAs initiated with
 * CREATE_CHILD_SA (§1.3.1). Test peers retransmit after 0.3 s, ×1.5, 3 times
 * (~2.2 s until a silent peer counts as dead).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { waitUntil as waitFor } from '../support/wait.js';
import { child, freePorts, peerConfig, startPeer, testPki, type TestPeer, type TestPki, stopPeers } from '../support/peers.js';
import type { IkeSa, IkeSaEndCause } from '../../../src/ike/sa/ike-sa.js';
import type { IkePeerConfig } from '../../../src/ike/sa/peer-config.js';
import type { Issued } from '../../../src/pki/issue.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function ended(sa: IkeSa): Promise<{ reason: string; cause: IkeSaEndCause }> {
  return new Promise((resolve) => sa.on('destroyed', (_s, reason, cause) => resolve({ reason, cause })));
}

describe('dead peer detection, INITIAL_CONTACT and additional CHILD_SAs (RFC 7296 §2.4, §1.3.1)', () => {
  const peers: TestPeer[] = [];
  afterEach(() => stopPeers(peers));

  interface Lab {
    pki: TestPki;
    ports: { ike: number; natt: number };
    moonCert: Issued;
    sunCert: Issued;
    moon: TestPeer;
    sun: TestPeer;
    /** While true, everything sun sends is lost (a dead or unreachable peer). */
    silence: { sun: boolean };
  }

  async function lab(opts: { moon?: Partial<IkePeerConfig>; sun?: Partial<IkePeerConfig> } = {}): Promise<Lab> {
    const pki = testPki();
    const ports = await freePorts();
    const moonCert = pki.host('moon.tunsec.test', { ip: ['127.0.0.1'] });
    const sunCert = pki.host('sun.tunsec.test', { ip: ['127.0.0.2'] });
    const silence = { sun: false };
    const moon = await startPeer('127.0.0.1', ports, [
      {
        config: peerConfig(pki, moonCert, 'moon.tunsec.test', 'sun.tunsec.test', opts.moon),
        localAddrs: ['127.0.0.1'],
        remoteAddrs: ['127.0.0.2'],
        remotePort: ports.ike,
      },
    ]);
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
      { dropOutgoing: () => silence.sun },
    );
    peers.push(moon, sun);
    return { pki, ports, moonCert, sunCert, moon, sun, silence };
  }

  const established = (p: TestPeer): IkeSa[] => p.manager.sas.filter((s) => s.state === 'established');

  it('DPD: after dpd_delay without traffic an empty INFORMATIONAL checks the peer, and an answered check keeps the IKE SA', async () => {
    const { moon, sun } = await lab({ moon: { dpdDelay: 1 } });
    const sa = await moon.manager.initiate('host-host');
    await sleep(2600);
    expect(sa.dpdChecks).toBeGreaterThanOrEqual(2);
    expect(moon.manager.counters.dpdChecks).toBe(sa.dpdChecks);
    expect(sa.state).toBe('established');
    expect(established(sun)).toHaveLength(1);
    expect(sun.log.lines.some((l) => /liveness check \(empty INFORMATIONAL\) from the peer answered/.test(l.message))).toBe(true);
  });

  it('DPD: ESP packets arriving from the peer within dpd_delay make the liveness check unnecessary', async () => {
    const { moon } = await lab({ moon: { dpdDelay: 1 } });
    const sa = await moon.manager.initiate('host-host');
    const inbound = moon.sad.inboundSa(sa.ctx.children[0]!.inboundSpi)!;
    // the datapath accounts every packet that opened; here: one every 200 ms
    const traffic = setInterval(() => moon.sad.account(inbound, 100, Math.floor(Date.now() / 1000)), 200);
    try {
      await sleep(2600);
    } finally {
      clearInterval(traffic);
    }
    expect(sa.dpdChecks).toBe(0);
    expect(sa.state).toBe('established');
  });

  it('DPD: a peer that stops answering is declared dead (cause dead-peer) and its CHILD_SAs leave the SAD', async () => {
    const { moon, silence } = await lab({ moon: { dpdDelay: 1 } });
    const sa = await moon.manager.initiate('host-host');
    const reqid = sa.ctx.children[0]!.reqid;
    const end = ended(sa);
    silence.sun = true;
    const started = Date.now();
    const { cause, reason } = await end;
    // 1 s idle, then 0.3 + 0.45 + 0.675 + 1.0125 s of retransmissions
    expect(Date.now() - started).toBeLessThan(6000);
    expect(cause).toBe('dead-peer');
    expect(moon.manager.counters.deadPeers).toBe(1);
    expect(reason).toMatch(/did not answer INFORMATIONAL request \d+ after 3 retransmits/);
    expect(sa.dpdChecks).toBeGreaterThanOrEqual(1);
    expect(sa.childNamesAtEnd).toEqual(['host-host']);
    expect(moon.sad.listSas()).toHaveLength(0);
    expect(moon.sad.spd.get(reqid, 'out')).toBeUndefined();
  });

  it('a Delete from the peer ends the IKE SA with cause peer-deleted; our own delete ends it with cause local', async () => {
    const { moon, sun } = await lab();
    const sa = await moon.manager.initiate('host-host');
    await waitFor(() => established(sun).length === 1, 2000, 'sun established');
    const moonEnd = ended(sa);
    const sunSa = established(sun)[0]!;
    const sunEnd = ended(sunSa);
    sunSa.delete('operator');
    expect((await moonEnd).cause).toBe('peer-deleted');
    expect((await sunEnd).cause).toBe('local');
  });

  it('an IKE rekey ends the old IKE SA with cause rekeyed on both sides, not peer-deleted', async () => {
    const { moon, sun } = await lab();
    const sa = await moon.manager.initiate('host-host');
    await waitFor(() => established(sun).length === 1, 2000, 'sun established');
    const sunOld = established(sun)[0]!;
    const causes = Promise.all([ended(sa), ended(sunOld)]);
    sa.rekeyIke('test');
    const [m, s] = await causes;
    expect(m.cause).toBe('rekeyed');
    expect(s.cause).toBe('rekeyed');
  });

  it('INITIAL_CONTACT: a restarted peer’s new IKE SA replaces the stale one, and removing the stale CHILD_SA keeps the new one’s policies', async () => {
    const pinned = { children: [child({ reqid: 7 })] };
    const l = await lab({ moon: pinned, sun: pinned });
    await l.moon.manager.initiate('host-host');
    await waitFor(() => established(l.sun).length === 1, 2000, 'sun established');
    const stale = established(l.sun)[0]!;
    const staleEnd = ended(stale);
    // moon "reboots": its state is gone without a Delete, a fresh instance initiates again
    for (const sa of l.moon.manager.sas) sa.destroy('simulated crash');
    l.moon.stop();
    peers.splice(peers.indexOf(l.moon), 1);
    const moon2 = await startPeer('127.0.0.1', l.ports, [
      {
        config: peerConfig(l.pki, l.moonCert, 'moon.tunsec.test', 'sun.tunsec.test', pinned),
        localAddrs: ['127.0.0.1'],
        remoteAddrs: ['127.0.0.2'],
        remotePort: l.ports.ike,
      },
    ]);
    peers.push(moon2);
    const fresh = await moon2.manager.initiate('host-host');
    const { cause } = await staleEnd;
    expect(cause).toBe('replaced');
    await waitFor(() => established(l.sun).length === 1 && established(l.sun)[0] !== stale, 2000, 'only the new IKE SA at sun');
    const sunChild = established(l.sun)[0]!.ctx.children[0]!;
    expect(sunChild.outboundSpi).toBe(fresh.ctx.children[0]!.inboundSpi);
    expect(l.sun.sad.activeOutboundSpi(7)).toBe(sunChild.outboundSpi);
    expect(l.sun.sad.spd.get(7, 'out')).toBeDefined();
    expect(l.sun.sad.spd.get(7, 'in')).toBeDefined();
    expect(l.sun.log.lines.some((x) => /sent INITIAL_CONTACT .* destroying it without a Delete/.test(x.message))).toBe(true);
  });

  it('a second IKE SA to a peer we already have one with carries no INITIAL_CONTACT, so the peer keeps both (unique: no)', async () => {
    const { moon, sun } = await lab();
    await moon.manager.initiate('host-host');
    await moon.manager.initiate('host-host');
    await waitFor(() => established(sun).length === 2, 2000, 'two IKE SAs at sun');
    expect(established(moon)).toHaveLength(2);
  });

  it('unique: replace — the responder deletes the older IKE SA of the same identities once the new one is up', async () => {
    const { moon, sun } = await lab({ sun: { unique: 'replace' } });
    const first = await moon.manager.initiate('host-host');
    const firstEnd = ended(first);
    await moon.manager.initiate('host-host');
    expect((await firstEnd).cause).toBe('peer-deleted');
    await waitFor(() => established(sun).length === 1 && established(moon).length === 1, 3000, 'one IKE SA each');
  });

  it('reauth_time: a new IKE SA with a full IKE_AUTH replaces the old one make-before-break, both CHILD_SAs come along, and traffic breaks at most for the transit of a response', async () => {
    const { tsList } = await import('../support/peers.js');
    // moon is the client of sun's TCP 6379: the redis child seen from each side
    const children = [child({ reqid: 7 }), child({ name: 'redis', reqid: 8, localTs: tsList(['dynamic[tcp]']), remoteTs: tsList(['dynamic[tcp/6379]']) })];
    const sunChildren = [child({ reqid: 7 }), child({ name: 'redis', reqid: 8, localTs: tsList(['dynamic[tcp/6379]']), remoteTs: tsList(['dynamic[tcp]']) })];
    const { moon, sun } = await lab({
      moon: { children, ikeLifetimes: { rekeyTime: 0, randTime: 0, overTime: 30, reauthTime: 3 } },
      sun: { children: sunChildren },
    });
    const first = await moon.manager.initiate('host-host');
    first.createChild(children[1]!, 'test');
    await waitFor(() => first.ctx.children.length === 2, 3000, 'two CHILD_SAs');
    // every millisecond: what each side sends with exists on the other side with the same key
    let broken = 0;
    let brokenRedis = 0;
    const intact = (from: TestPeer, to: TestPeer, reqid: number): boolean => {
      const out = from.sad.outboundSaFor(reqid);
      const inbound = out && to.sad.inboundSa(out.spec.spi);
      return inbound !== undefined && Buffer.from(inbound.spec.aead.keyMaterial).equals(Buffer.from(out!.spec.aead.keyMaterial));
    };
    const t0 = Date.now();
    const seen = new Set<string>();
    const sampler = setInterval(() => {
      for (const reqid of [7, 8]) {
        for (const [a, b, n] of [
          [moon, sun, 'moon→sun'],
          [sun, moon, 'sun→moon'],
        ] as const) {
          if (!intact(a, b, reqid)) {
            broken++;
            if (reqid === 8) brokenRedis++;
            const k = `${reqid} ${n}`;
            if (!seen.has(k)) {
              seen.add(k);
              console.info(`reauthentication: ${k} first broken ${Date.now() - t0} ms after the start`);
            }
          }
        }
      }
    }, 1);
    try {
      const end = await ended(first);
      expect(end.cause).toBe('replaced');
      expect(end.reason).toMatch(/^reauthenticated, replaced by/);
      // (the new IKE SA reauthenticates in turn 3 s after it was set up: look now)
      await waitFor(() => established(sun).length === 1 && established(moon).length === 1, 500, 'one IKE SA each');
    } finally {
      clearInterval(sampler);
    }
    // The responder sends on a new CHILD_SA as soon as it answers, the initiator has it once the answer
    // arrives (strongSwan alike): only that transit, responder → initiator, may see a gap of a few ms.
    console.info(`reauthentication: ${broken} broken 1-ms samples (${brokenRedis} of the CREATE_CHILD_SA child)`);
    expect(broken).toBeLessThanOrEqual(20);
    expect([...seen].every((k) => k.endsWith('sun→moon'))).toBe(true);
    const next = established(moon)[0]!;
    expect(next).not.toBe(first);
    expect(next.ctx.children.map((c) => c.name).sort()).toEqual(['host-host', 'redis']);
    expect(established(sun)[0]!.ctx.children).toHaveLength(2);
    expect(moon.log.text()).toContain('reauthenticating the IKE_SA (reauth_time)');
    expect(moon.sad.spd.get(7, 'out')).toBeDefined();
    expect(sun.sad.spd.get(8, 'in')).toBeDefined();
  });

  it('CREATE_CHILD_SA: tunsec initiates an additional CHILD_SA (PFS) on an established IKE SA, and both sides install the same keys', async () => {
    const second = child({ name: 'second', reqid: 9, localTs: [], remoteTs: [] });
    // a second child for a different flow: TCP port 6379 between the hosts
    const { tsList } = await import('../support/peers.js');
    const redis = { ...second, localTs: tsList(['dynamic[tcp]']), remoteTs: tsList(['dynamic[tcp/6379]']) };
    const server = { ...second, localTs: tsList(['dynamic[tcp/6379]']), remoteTs: tsList(['dynamic[tcp]']) };
    const { moon, sun } = await lab({ moon: { children: [child({ reqid: 8 }), redis] }, sun: { children: [child({ reqid: 8 }), server] } });
    const sa = await moon.manager.initiate('host-host');
    const created = new Promise<void>((resolve) => sa.on('childEstablished', (_s, c) => c.name === 'second' && resolve()));
    sa.createChild(redis, 'test');
    await created;
    await waitFor(() => established(sun)[0]?.ctx.children.length === 2, 2000, 'sun has two CHILD_SAs');
    const mine = sa.ctx.children.find((c) => c.name === 'second')!;
    expect(mine.reqid).toBe(9);
    const out = moon.sad.outboundSaFor(9)!;
    const theirs = sun.sad.inboundSa(out.spec.spi)!;
    expect(Buffer.from(theirs.spec.aead.keyMaterial).equals(Buffer.from(out.spec.aead.keyMaterial))).toBe(true);
    expect(mine.remoteTs.join(' ')).toMatch(/6379/);
    // sun took it as its own 'second' child (the narrowest that fits the request whole), not as host-host
    expect(established(sun)[0]!.ctx.children.find((c) => c.reqid === 9)?.name).toBe('second');
    expect(sun.sad.outboundSaFor(9)?.spec.spi).toBe(mine.inboundSpi);
    expect(moon.sad.spd.get(9, 'out')).toBeDefined();
    // asking again while it exists does nothing
    sa.createChild(redis, 'again');
    await sleep(300);
    expect(sa.ctx.children.filter((c) => c.name === 'second')).toHaveLength(1);
  });
});
