/**
 * Rekey collisions driven message by message (RFC 7296 §2.8.1, §2.25): two
 * peers on a hand-worked wire (../support/wire.ts), fixed nonces, each
 * datagram delivered in the order the case names — no sockets, no delays.
 * The delayed-wire variants over UDP stay in ./rekey.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { describe as name, fixedNonce, wiredPair, type Wire } from '../support/wire.js';
import type { ChildSaRecord } from '../../../src/ike/sa/context.js';

const wires: Wire[] = [];
afterEach(() => {
  for (const w of wires.splice(0)) w.close();
});

async function pair(): Promise<Wire> {
  const w = await wiredPair();
  wires.push(w);
  return w;
}

/** The SA each side sends with is the other side's inbound SA of the same CHILD_SA, and no other outbound SA is left for it. */
function expectOnePair(w: Wire, moonChild: ChildSaRecord, sunChild: ChildSaRecord): void {
  expect(moonChild.outboundSpi).toBe(sunChild.inboundSpi);
  expect(sunChild.outboundSpi).toBe(moonChild.inboundSpi);
  expect(w.moon.sad.outboundSaFor(moonChild.reqid)?.spec.spi).toBe(moonChild.outboundSpi);
  expect(w.sun.sad.outboundSaFor(sunChild.reqid)?.spec.spi).toBe(sunChild.outboundSpi);
  expect(w.moon.sad.listSas().filter((e) => e.spec.direction === 'out').map((e) => e.spec.spi)).toEqual([moonChild.outboundSpi]);
  expect(w.sun.sad.listSas().filter((e) => e.spec.direction === 'out').map((e) => e.spec.spi)).toEqual([sunChild.outboundSpi]);
}

type Nonce = 'moonNi' | 'moonNr' | 'sunNi' | 'sunNr';

describe('CHILD_SA rekey collision (§2.8.1), every nonce order, both response orders', () => {
  // moon's exchange carries moonNi (its request) and sunNr (sun's answer); sun's exchange sunNi and moonNr.
  const cases: Array<{ lowest: Nonce; survivor: 'moon' | 'sun' }> = [
    { lowest: 'moonNi', survivor: 'sun' },
    { lowest: 'sunNr', survivor: 'sun' },
    { lowest: 'sunNi', survivor: 'moon' },
    { lowest: 'moonNr', survivor: 'moon' },
  ];
  for (const { lowest, survivor } of cases) {
    for (const first of ['moon', 'sun'] as const) {
      it(`lowest nonce ${lowest}: the pair of ${survivor}'s exchange survives, the other is deleted by its initiator (${first}'s response arrives first)`, async () => {
        const w = await pair();
        const octet = (n: Nonce): number => (n === lowest ? 0x01 : { moonNi: 0x50, moonNr: 0x60, sunNi: 0x70, sunNr: 0x80 }[n]);
        // each side draws its request's nonce first, then its response's
        w.moon.useNonces([fixedNonce(octet('moonNi')), fixedNonce(octet('moonNr'))]);
        w.sun.useNonces([fixedNonce(octet('sunNi')), fixedNonce(octet('sunNr'))]);
        const moonSa = w.moon.sa();
        const sunSa = w.sun.sa();
        const [oldMoon] = moonSa.ctx.children;
        const [oldSun] = sunSa.ctx.children;
        const rekeyed: string[] = [];
        moonSa.on('childRekeyed', () => rekeyed.push('moon'));
        sunSa.on('childRekeyed', () => rekeyed.push('sun'));

        moonSa.rekeyChild(oldMoon!, 'test');
        sunSa.rekeyChild(oldSun!, 'test');
        expect(w.moon.outbox.map(name)).toEqual(['CREATE_CHILD_SA request 2']);
        expect(w.sun.outbox.map(name)).toEqual(['CREATE_CHILD_SA request 0']);

        // the requests cross; each side answers the other's as usual (§2.25)
        w.deliver(w.moon);
        const moonExchangeAtSun = sunSa.ctx.children[0]!;
        w.deliver(w.sun, 0);
        const sunExchangeAtMoon = moonSa.ctx.children[0]!;
        expect(w.moon.outbox.map(name)).toEqual(['CREATE_CHILD_SA response 0']);
        expect(w.sun.outbox.map(name)).toEqual(['CREATE_CHILD_SA response 2']);

        if (first === 'moon') {
          w.deliver(w.sun);
          w.deliver(w.moon);
        } else {
          w.deliver(w.moon);
          w.deliver(w.sun);
        }
        // one Delete each: the survivor's initiator deletes the old pair, the other initiator its redundant pair
        expect(w.moon.outbox.map(name)).toEqual(['INFORMATIONAL request 3']);
        expect(w.sun.outbox.map(name)).toEqual(['INFORMATIONAL request 1']);
        w.flush();

        const moonChild = moonSa.ctx.children;
        const sunChild = sunSa.ctx.children;
        expect(moonChild).toHaveLength(1);
        expect(sunChild).toHaveLength(1);
        expectOnePair(w, moonChild[0]!, sunChild[0]!);
        if (survivor === 'moon') expect(sunChild[0]!.inboundSpi).toBe(moonExchangeAtSun.inboundSpi);
        else expect(moonChild[0]!.inboundSpi).toBe(sunExchangeAtMoon.inboundSpi);
        // the survivor's initiator saw the peer delete the losing pair (no grace timer needed)
        const winner = survivor === 'moon' ? w.moon : w.sun;
        expect(winner.log.text()).toMatch(/redundant SAs .* of the rekey collision deleted by the peer/);
        // each answered the other's rekey; the survivor's initiator reports its own pair replacing the peer's
        expect(rekeyed.sort()).toEqual(['moon', 'sun', survivor].sort());
        expect(moonSa.state).toBe('established');
        expect(sunSa.state).toBe('established');
      });
    }
  }
});

describe('IKE_SA rekey collision (§2.8.1), every nonce order, both response orders', () => {
  // moon's exchange carries moonNi and sunNr, sun's sunNi and moonNr; the new IKE_SA of the exchange
  // holding the lowest is redundant, deleted by its initiator; the other one carries the CHILD_SA on
  const cases: Array<{ lowest: Nonce; survivor: 'moon' | 'sun' }> = [
    { lowest: 'moonNi', survivor: 'sun' },
    { lowest: 'sunNr', survivor: 'sun' },
    { lowest: 'sunNi', survivor: 'moon' },
    { lowest: 'moonNr', survivor: 'moon' },
  ];
  for (const { lowest, survivor } of cases) {
    for (const first of ['moon', 'sun'] as const) {
      it(`lowest nonce ${lowest}: the IKE_SA of ${survivor}'s exchange survives with the CHILD_SA, both sides agree (${first}'s exchange answered first)`, async () => {
        const w = await pair();
        const octet = (n: Nonce): number => (n === lowest ? 0x01 : { moonNi: 0x50, moonNr: 0x60, sunNi: 0x70, sunNr: 0x80 }[n]);
        w.moon.useNonces([fixedNonce(octet('moonNi')), fixedNonce(octet('moonNr'))]);
        w.sun.useNonces([fixedNonce(octet('sunNi')), fixedNonce(octet('sunNr'))]);
        const moonOld = w.moon.sa();
        const sunOld = w.sun.sa();
        const [moonChild] = moonOld.ctx.children;
        const [sunChild] = sunOld.ctx.children;

        moonOld.rekeyIke('test');
        sunOld.rekeyIke('test');
        expect(w.moon.outbox.map(name)).toEqual(['CREATE_CHILD_SA request 2']);
        expect(w.sun.outbox.map(name)).toEqual(['CREATE_CHILD_SA request 0']);

        // the requests cross; each side answers the other's and keeps its new IKE_SA aside
        w.deliver(w.moon);
        w.deliver(w.sun, 0);
        expect(w.moon.outbox.map(name)).toEqual(['CREATE_CHILD_SA response 0']);
        expect(w.sun.outbox.map(name)).toEqual(['CREATE_CHILD_SA response 2']);
        expect(moonOld.successor).toBeUndefined();
        expect(sunOld.successor).toBeUndefined();
        expect(moonOld.ctx.children).toEqual([moonChild]);
        expect(sunOld.ctx.children).toEqual([sunChild]);

        if (first === 'moon') {
          w.deliver(w.sun);
          w.deliver(w.moon);
        } else {
          w.deliver(w.moon);
          w.deliver(w.sun);
        }
        // one Delete each: the survivor's initiator deletes the old IKE_SA (its next message ID),
        // the other initiator its redundant new IKE_SA (message ID 0 there)
        const winner = survivor === 'moon' ? w.moon : w.sun;
        const loser = survivor === 'moon' ? w.sun : w.moon;
        expect(winner.outbox.map(name)).toEqual([survivor === 'moon' ? 'INFORMATIONAL request 3' : 'INFORMATIONAL request 1']);
        expect(loser.outbox.map(name)).toEqual(['INFORMATIONAL request 0']);
        expect(winner.log.text()).toMatch(/IKE_SA rekey collision won \(§2\.8\.1\)/);
        expect(loser.log.text()).toMatch(/IKE_SA rekey collision lost \(§2\.8\.1\)/);
        w.flush();

        expect(moonOld.state).toBe('destroyed');
        expect(sunOld.state).toBe('destroyed');
        const moonNew = w.moon.sa();
        const sunNew = w.sun.sa();
        // the redundant IKE_SA is gone on both sides: one IKE_SA each, the same one
        expect(w.moon.manager.sas).toEqual([moonNew]);
        expect(w.sun.manager.sas).toEqual([sunNew]);
        expect(moonNew.ctx.spiI.equals(sunNew.ctx.spiI) && moonNew.ctx.spiR.equals(sunNew.ctx.spiR)).toBe(true);
        // the rekey's initiator is the new IKE_SA's original initiator (§2.18)
        expect(moonNew.ctx.originalInitiator).toBe(survivor === 'moon');
        expect(moonOld.successor).toBe(moonNew);
        expect(sunOld.successor).toBe(sunNew);
        expect(moonNew.ctx.children).toEqual([moonChild]);
        expect(sunNew.ctx.children).toEqual([sunChild]);
        expectOnePair(w, moonChild!, sunChild!);
        expect(w.moon.log.text() + w.sun.log.text()).toMatch(/redundant IKE_SA of a rekey collision deleted by the peer/);

        // both derived the survivor's keys alike: a CHILD_SA rekey on it goes through (KEYMAT from its SK_d)
        moonNew.rekeyChild(moonChild!, 'after the collision');
        w.flush();
        expect(moonNew.ctx.children[0]).not.toBe(moonChild);
        expectOnePair(w, moonNew.ctx.children[0]!, sunNew.ctx.children[0]!);
      });
    }
  }

  it('the peer finished its rekey before ours reached it (moon saw no collision): its TEMPORARY_FAILURE hands our CHILD_SA to its new IKE_SA', async () => {
    const w = await pair();
    const moonOld = w.moon.sa();
    const sunOld = w.sun.sa();
    const [sunChild] = sunOld.ctx.children;
    moonOld.rekeyIke('test');
    sunOld.rekeyIke('test');
    w.deliver(w.moon); // sun answers moon's rekey with its own in flight: a collision at sun
    w.deliver(w.sun, 1); // moon's rekey is done: its new IKE_SA takes over, the old one is deleted
    expect(w.moon.outbox.map(name)).toEqual(['INFORMATIONAL request 3']);
    w.deliver(w.sun, 0); // sun's rekey reaches moon's replaced IKE_SA
    expect(w.moon.outbox.map(name)).toEqual(['INFORMATIONAL request 3', 'CREATE_CHILD_SA response 0']);
    w.deliver(w.moon, 1);
    expect(sunOld.successor).toBeDefined();
    expect(w.sun.log.text()).toMatch(/IKE_SA rekey collision: our exchange ended \(temporary\)/);
    w.flush();
    expect(w.moon.manager.sas).toHaveLength(1);
    expect(w.sun.manager.sas).toHaveLength(1);
    const moonNew = w.moon.sa();
    const sunNew = w.sun.sa();
    expect(moonNew).toBe(moonOld.successor);
    expect(sunNew).toBe(sunOld.successor);
    expect(moonNew.ctx.spiI.equals(sunNew.ctx.spiI)).toBe(true);
    expect(sunNew.ctx.children).toEqual([sunChild]);
    expectOnePair(w, moonNew.ctx.children[0]!, sunChild!);
  });

  it('the peer deletes the old IKE_SA before our rekey is answered: its new IKE_SA takes our CHILD_SA over', async () => {
    const w = await pair();
    const moonOld = w.moon.sa();
    const sunOld = w.sun.sa();
    const [sunChild] = sunOld.ctx.children;
    moonOld.rekeyIke('test');
    sunOld.rekeyIke('test');
    w.deliver(w.moon);
    w.deliver(w.sun, 1);
    w.deliver(w.sun, 0);
    // moon's Delete of the old IKE_SA overtakes its answer to sun's rekey
    expect(w.moon.outbox.map(name)).toEqual(['INFORMATIONAL request 3', 'CREATE_CHILD_SA response 0']);
    w.deliver(w.moon, 0);
    expect(sunOld.state).toBe('destroyed');
    expect(w.sun.log.text()).toMatch(/the peer deleted the IKE_SA before our exchange completed/);
    w.flush();
    const moonNew = w.moon.sa();
    const sunNew = w.sun.sa();
    expect(w.moon.manager.sas).toEqual([moonNew]);
    expect(w.sun.manager.sas).toEqual([sunNew]);
    expect(sunNew.ctx.spiR.equals(moonNew.ctx.spiR)).toBe(true);
    expect(sunNew.ctx.children).toEqual([sunChild]);
    expectOnePair(w, moonNew.ctx.children[0]!, sunChild!);
  });
});

describe('crossings (§2.25)', () => {
  it('a CHILD_SA rekey crossing the IKE_SA rekey: each refuses the other (TEMPORARY_FAILURE), nothing is left half made', async () => {
    const w = await pair();
    const moonSa = w.moon.sa();
    const sunSa = w.sun.sa();
    const [child] = moonSa.ctx.children;
    moonSa.rekeyChild(child!, 'test');
    sunSa.rekeyIke('test');
    w.deliver(w.moon);
    w.deliver(w.sun, 0);
    w.flush();
    expect(w.moon.log.text()).toMatch(/rekey: peer answered TEMPORARY_FAILURE/);
    expect(w.sun.log.text()).toMatch(/IKE_SA rekey: peer answered TEMPORARY_FAILURE/);
    expect(moonSa.ctx.children).toEqual([child]);
    expectOnePair(w, moonSa.ctx.children[0]!, sunSa.ctx.children[0]!);
    // the CHILD rekey, tried again, goes through on its own
    moonSa.rekeyChild(child!, 'retry');
    w.flush();
    expect(moonSa.ctx.children[0]).not.toBe(child);
    expectOnePair(w, moonSa.ctx.children[0]!, sunSa.ctx.children[0]!);
  });

  it('the IKE_SA Delete crossing a CHILD_SA rekey: the rekey is refused, both IKE_SAs end and no SA or reserved SPI is left', async () => {
    const w = await pair();
    const moonSa = w.moon.sa();
    const sunSa = w.sun.sa();
    moonSa.rekeyChild(moonSa.ctx.children[0]!, 'test');
    sunSa.delete('test');
    expect(w.moon.outbox.map(name)).toEqual(['CREATE_CHILD_SA request 2']);
    expect(w.sun.outbox.map(name)).toEqual(['INFORMATIONAL request 0']);
    w.deliver(w.moon);
    expect(w.sun.outbox.map(name)).toEqual(['INFORMATIONAL request 0', 'CREATE_CHILD_SA response 2']);
    w.deliver(w.sun, 0);
    w.flush();
    expect(moonSa.state).toBe('destroyed');
    expect(sunSa.state).toBe('destroyed');
    expect(w.moon.sad.listSas()).toEqual([]);
    expect(w.sun.sad.listSas()).toEqual([]);
  });
});
