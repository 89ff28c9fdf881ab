/**
 * Rekey collisions driven message by message (RFC 7296 §2.8.1, §2.25): two
 * peers on a hand-worked wire (../support/wire.ts), fixed nonces, each
 * datagram delivered in the order the case names — no sockets, no delays.
 * The delayed-wire variants over UDP stay in ./rekey.test.ts.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { describe as name, fixedNonce, wiredPair, type Wire } from '../support/wire.js';
import { child } from '../support/peers.js';
import type { ChildSaRecord } from '../../../src/ike/sa/context.js';
import { OLD_INBOUND_GRACE_MS, type IkeSa } from '../../../src/ike/sa/ike-sa.js';

const wires: Wire[] = [];
afterEach(() => {
  for (const w of wires.splice(0)) w.close();
});

async function pair(opts: Parameters<typeof wiredPair>[0] = {}): Promise<Wire> {
  const w = await wiredPair(opts);
  wires.push(w);
  return w;
}

/** The SA each side sends with is the other side's inbound SA of the same CHILD_SA, and no other outbound SA is left for it. */
function expectOnePair(w: Wire, moonChild: ChildSaRecord, sunChild: ChildSaRecord): void {
  expect(moonChild.outboundSpi).toBe(sunChild.inboundSpi);
  expect(sunChild.outboundSpi).toBe(moonChild.inboundSpi);
  expect(w.moon.sad.outboundSaFor(moonChild.reqid)?.spec.spi).toBe(moonChild.outboundSpi);
  expect(w.sun.sad.outboundSaFor(sunChild.reqid)?.spec.spi).toBe(sunChild.outboundSpi);
  expect(
    w.moon.sad
      .listSas()
      .filter((e) => e.spec.direction === 'out')
      .map((e) => e.spec.spi),
  ).toEqual([moonChild.outboundSpi]);
  expect(
    w.sun.sad
      .listSas()
      .filter((e) => e.spec.direction === 'out')
      .map((e) => e.spec.spi),
  ).toEqual([sunChild.outboundSpi]);
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

describe('Delete crossing a rekey (§1.4.1, §2.25)', () => {
  for (const first of ['rekey', 'Delete'] as const) {
    it(`a CHILD_SA rekey crossing the peer's Delete of that CHILD_SA (${first} delivered first): the CHILD_SA and the pair of the rekey are gone on both sides, no SA or reserved SPI left beyond inbound SAs in their grace period`, async () => {
      const w = await pair();
      const moonSa = w.moon.sa();
      const sunSa = w.sun.sa();
      const [moonChild] = moonSa.ctx.children;
      const closed: string[] = [];
      moonSa.on('childClosed', (_s, c) => closed.push(c.name));
      moonSa.rekeyChild(moonChild!, 'test');
      const deleted = sunSa.deleteChild(sunSa.ctx.children[0]!, 'test');
      void deleted;
      expect(w.moon.outbox.map(name)).toEqual(['CREATE_CHILD_SA request 2']);
      expect(w.sun.outbox.map(name)).toEqual(['INFORMATIONAL request 0']);
      if (first === 'rekey') {
        w.deliver(w.moon);
        expect(w.sun.outbox.map(name)).toEqual(['INFORMATIONAL request 0', 'CREATE_CHILD_SA response 2']);
        w.deliver(w.sun, 0);
      } else {
        w.deliver(w.sun);
        expect(w.moon.outbox.map(name)).toEqual(['CREATE_CHILD_SA request 2', 'INFORMATIONAL response 0']);
        w.deliver(w.moon);
      }
      w.flush();
      // sun answers the rekey (its Delete is not yet answered, the CHILD_SA is still its own); moon's pair goes
      // with sun's Delete, and the pair of moon's rekey, finding its CHILD_SA gone, is deleted as redundant
      expect(w.moon.log.text()).toMatch(/deleted by the peer/);
      expect(w.moon.log.text()).toMatch(/was rekeyed by the peer meanwhile; deleting our redundant SAs/);
      expect(await deleted).toEqual({ ok: false, reason: 'the CHILD_SA was deleted by the peer meanwhile' });
      expect(closed).toEqual([moonChild!.name]);
      expect(moonSa.ctx.children).toEqual([]);
      expect(sunSa.ctx.children).toEqual([]);
      // (an inbound SA taking packets in flight for OLD_INBOUND_GRACE_MS is deleting already)
      expect(w.moon.sad.listSas().filter((e) => !e.deleting)).toEqual([]);
      expect(w.sun.sad.listSas().filter((e) => !e.deleting)).toEqual([]);
      expect(w.moon.sad.listPolicies()).toEqual([]);
      expect(w.sun.sad.listPolicies()).toEqual([]);
      expect(moonSa.state).toBe('established');
      expect(sunSa.state).toBe('established');
    });
  }

  for (const first of ['rekey', 'Delete'] as const) {
    it(`an IKE_SA rekey crossing the peer's Delete of the IKE_SA (${first} delivered first): the rekey is refused, both IKE_SAs end and nothing is left`, async () => {
      const w = await pair();
      const moonSa = w.moon.sa();
      const sunSa = w.sun.sa();
      moonSa.rekeyIke('test');
      sunSa.delete('test');
      expect(w.moon.outbox.map(name)).toEqual(['CREATE_CHILD_SA request 2']);
      expect(w.sun.outbox.map(name)).toEqual(['INFORMATIONAL request 0']);
      if (first === 'rekey') {
        w.deliver(w.moon);
        expect(w.sun.outbox.map(name)).toEqual(['INFORMATIONAL request 0', 'CREATE_CHILD_SA response 2']);
        expect(w.sun.log.text()).toMatch(/CREATE_CHILD_SA 2 refused \(TEMPORARY_FAILURE\)/);
        w.deliver(w.sun, 0);
      } else {
        w.deliver(w.sun);
        expect(moonSa.state).toBe('destroyed');
      }
      w.flush();
      expect(moonSa.state).toBe('destroyed');
      expect(sunSa.state).toBe('destroyed');
      expect(moonSa.successor).toBeUndefined();
      expect(w.moon.manager.sas).toEqual([]);
      expect(w.sun.manager.sas).toEqual([]);
      expect(w.moon.sad.listSas()).toEqual([]);
      expect(w.sun.sad.listSas()).toEqual([]);
    });
  }
});

describe('rekeys during reauthentication (make-before-break)', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  /** As the daemon configures them: a reqid per child, so the reauthenticated CHILD_SA shares the old one's policies. */
  const reqid = 7;
  const sameReqid = { moon: { children: [child({ reqid })] }, sun: { children: [child({ reqid })] } };

  /** Every datagram delivered; then the manager's deletion of the old IKE_SA (OLD_INBOUND_GRACE_MS after the new one is up) and its Delete. */
  function finishReauth(w: Wire): void {
    w.flush();
    vi.advanceTimersByTime(OLD_INBOUND_GRACE_MS);
    w.flush();
    vi.advanceTimersByTime(OLD_INBOUND_GRACE_MS);
  }

  /** One IKE_SA each side (the reauthenticated one), one CHILD_SA on it, its policies in place, nothing else left sending. */
  function expectReauthenticated(w: Wire, moonOld: IkeSa, sunOld: IkeSa): void {
    expect(moonOld.state).toBe('destroyed');
    expect(sunOld.state).toBe('destroyed');
    const moonNew = w.moon.sa();
    const sunNew = w.sun.sa();
    expect(w.moon.manager.sas).toEqual([moonNew]);
    expect(w.sun.manager.sas).toEqual([sunNew]);
    expect(moonNew.ctx.spiI.equals(sunNew.ctx.spiI)).toBe(true);
    expect(moonNew.ctx.children.map((c) => c.reqid)).toEqual([reqid]);
    expect(sunNew.ctx.children.map((c) => c.reqid)).toEqual([reqid]);
    expectOnePair(w, moonNew.ctx.children[0]!, sunNew.ctx.children[0]!);
    for (const p of [w.moon, w.sun])
      expect(
        p.sad
          .listPolicies()
          .map((x) => x.direction)
          .sort(),
      ).toEqual(['in', 'out']);
  }

  it("the peer's CHILD_SA rekey on the old IKE_SA, answered before the new IKE_SA is up: the reauthenticated IKE_SA carries the CHILD_SA alone", async () => {
    const w = await pair(sameReqid);
    vi.useFakeTimers();
    const moonOld = w.moon.sa();
    const sunOld = w.sun.sa();
    moonOld.reauthenticate('test');
    sunOld.rekeyChild(sunOld.ctx.children[0]!, 'test');
    expect(w.moon.outbox.map(name)).toEqual(['IKE_SA_INIT request 0']);
    expect(w.sun.outbox.map(name)).toEqual(['CREATE_CHILD_SA request 0']);
    w.deliver(w.sun); // the rekey reaches the old IKE_SA first
    w.deliver(w.moon, 1); // its answer
    expect(w.sun.outbox.map(name)).toEqual(['INFORMATIONAL request 1']);
    w.deliver(w.sun); // the old pair's Delete
    w.deliver(w.moon, 1);
    finishReauth(w);
    expectReauthenticated(w, moonOld, sunOld);
  });

  it("the peer's CHILD_SA rekey on the old IKE_SA, completed after the new IKE_SA is up: the reauthenticated IKE_SA carries the CHILD_SA alone", async () => {
    const w = await pair(sameReqid);
    vi.useFakeTimers();
    const moonOld = w.moon.sa();
    const sunOld = w.sun.sa();
    moonOld.reauthenticate('test');
    sunOld.rekeyChild(sunOld.ctx.children[0]!, 'test');
    w.deliver(w.moon); // IKE_SA_INIT
    w.deliver(w.sun, 0); // the CHILD rekey reaches moon's old IKE_SA and is answered
    expect(w.moon.outbox.map(name)).toEqual(['CREATE_CHILD_SA response 0']);
    w.deliver(w.sun); // IKE_SA_INIT response
    expect(w.moon.outbox.map(name)).toEqual(['CREATE_CHILD_SA response 0', 'IKE_AUTH request 1']);
    w.deliver(w.moon, 1); // IKE_AUTH: sun's new IKE_SA and its CHILD_SA are up
    w.deliver(w.sun); // IKE_AUTH response: moon's too
    expect(w.moon.sa()).not.toBe(moonOld);
    w.deliver(w.moon); // only now the rekey's answer
    finishReauth(w);
    expectReauthenticated(w, moonOld, sunOld);
  });

  it("the peer's IKE_SA rekey of the old IKE_SA during reauthentication: refused (TEMPORARY_FAILURE), the reauthenticated IKE_SA carries the CHILD_SA alone", async () => {
    const w = await pair(sameReqid);
    vi.useFakeTimers();
    const moonOld = w.moon.sa();
    const sunOld = w.sun.sa();
    moonOld.reauthenticate('test');
    sunOld.rekeyIke('test');
    w.deliver(w.moon); // IKE_SA_INIT
    w.deliver(w.sun, 0); // the IKE rekey reaches moon's old IKE_SA
    expect(w.moon.outbox.map(name)).toEqual(['CREATE_CHILD_SA response 0']);
    finishReauth(w);
    expect(w.moon.log.text()).toMatch(/CREATE_CHILD_SA 0 refused \(TEMPORARY_FAILURE\): we are reauthenticating/);
    expectReauthenticated(w, moonOld, sunOld);
  });
});
