/**
 * The runtime SAD (src/esp/sadb.ts) without packets: SPI allocation,
 * installing / removing SAs (key material copied in, wiped on removal),
 * outbound SA selection by reqid, policies and their change notifications,
 * and lifetimes — soft/hard by packets and bytes through `account`, by time
 * through `checkLifetimes` with a fake clock, sequence-number exhaustion —
 * each raising its `expire` event exactly once. (The packet-path side of
 * lifetimes is in engine.test.ts.)
 */
import { describe, expect, it, vi } from 'vitest';
import type { ExpireEvent, SaLifetimes } from '../../src/esp/api.js';
import { SecurityAssociationDatabase } from '../../src/esp/sadb.js';
import { MAX_SEQ_32, MAX_SEQ_ESN } from '../../src/esp/replay.js';
import { ANY4, KEY_A, NO_LIFETIMES, policySpec, saSpec, ts } from './support.js';

function sadWithClock(start = 1_000_000): { sad: SecurityAssociationDatabase; clock: { ms: number }; expires: ExpireEvent[] } {
  const clock = { ms: start };
  const sad = new SecurityAssociationDatabase();
  sad.now = () => clock.ms;
  const expires: ExpireEvent[] = [];
  sad.on('expire', (e) => expires.push(e));
  return { sad, clock, expires };
}

const out = (spi: number, o: Partial<Parameters<typeof saSpec>[0]> = {}) =>
  saSpec({ spi, direction: 'out', localAddress: '192.0.2.1', remoteAddress: '192.0.2.2', ...o });
const inb = (spi: number, o: Partial<Parameters<typeof saSpec>[0]> = {}) =>
  saSpec({ spi, direction: 'in', localAddress: '192.0.2.1', remoteAddress: '192.0.2.2', ...o });
const life = (l: Partial<SaLifetimes>): SaLifetimes => ({ ...NO_LIFETIMES, ...l });

describe('SecurityAssociationDatabase: SAs', () => {
  it('allocateSpi never returns 0..255, never an installed or reserved inbound SPI; addSa releases the reservation', () => {
    const { sad } = sadWithClock();
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++) {
      const spi = sad.allocateSpi();
      expect(spi).toBeGreaterThanOrEqual(256);
      expect(spi).toBeLessThanOrEqual(0xffffffff);
      expect(seen.has(spi)).toBe(false);
      seen.add(spi);
    }
    const spi = [...seen][0]!;
    sad.addSa(inb(spi));
    expect(sad.inboundSa(spi)?.spec.spi).toBe(spi);
    // deleting an unknown SPI releases a reservation, returns false
    expect(sad.deleteSa([...seen][1]!, 'in')).toBe(false);
  });

  it('an SPI can be installed once per direction; the same SPI in and out are separate SAs', () => {
    const { sad } = sadWithClock();
    sad.addSa(inb(0x1234));
    sad.addSa(out(0x1234));
    expect(() => sad.addSa(inb(0x1234))).toThrow(/already installed/);
    expect(
      sad
        .listSas()
        .map((e) => e.name)
        .sort(),
    ).toEqual(['00001234_i', '00001234_o']);
  });

  it('refuses an unknown AEAD, key material of the wrong length, and addresses of two families', () => {
    const { sad } = sadWithClock();
    expect(() => sad.addSa(out(1000, { aead: { transformId: 12, keyBits: 128, keyMaterial: Buffer.alloc(20) } }))).toThrow(/not implemented/);
    expect(() => sad.addSa(out(1001, { aead: { transformId: 20, keyBits: 128, keyMaterial: Buffer.alloc(16) } }))).toThrow(/20 octets/);
    expect(() => sad.addSa(out(1002, { remoteAddress: '2001:db8::2' }))).toThrow(/unusable addresses/);
    expect(sad.listSas()).toHaveLength(0);
  });

  it('copies the key material in (the caller may wipe its KEYMAT) and wipes its own copy on delete', () => {
    const { sad } = sadWithClock();
    const key = Buffer.from(KEY_A);
    sad.addSa(out(0x2000, { aead: { transformId: 20, keyBits: 128, keyMaterial: key } }));
    key.fill(0);
    const entry = sad.listSas()[0]!;
    const own = entry.spec.aead.keyMaterial;
    expect(Buffer.from(own).equals(KEY_A)).toBe(true);
    expect(sad.deleteSa(0x2000, 'out')).toBe(true);
    expect(entry.removed).toBe(true);
    expect(own.every((b) => b === 0)).toBe(true);
    expect(sad.deleteSa(0x2000, 'out')).toBe(false);
  });

  it('SadEntry: outer family and addresses, 32-bit vs ESN sequence limits, a replay window only inbound', () => {
    const { sad } = sadWithClock();
    sad.addSa(out(0x10, { localAddress: '2001:db8::1', remoteAddress: '2001:db8::2', esn: true, localSelectors: [], remoteSelectors: [] }));
    sad.addSa(inb(0x11, { replayWindow: 128 }));
    const [i, o] = [sad.inboundSa(0x11)!, sad.listSas().find((e) => e.spec.direction === 'out')!];
    expect(o.family).toBe(6);
    expect(o.maxSeq).toBe(MAX_SEQ_ESN);
    expect(o.replay).toBeUndefined();
    expect(o.seq).toBe(0);
    expect(i.family).toBe(4);
    expect(i.maxSeq).toBe(MAX_SEQ_32);
    expect(i.replay?.size).toBe(128);
    expect(i.localSelectors[0]?.family).toBe(4);
  });

  it('SAs and policies between the same hosts share one octet Buffer per address (memory per SA), with the right octets', () => {
    const { sad } = sadWithClock();
    sad.addSa(out(0x20, { localSelectors: [ts('192.0.2.1')], remoteSelectors: [ts('192.0.2.2')] }));
    sad.addSa(inb(0x21, { localSelectors: [ts('192.0.2.1')], remoteSelectors: [ts('192.0.2.2')] }));
    sad.addPolicy(policySpec({ reqid: 7, local: [ts('192.0.2.1')], remote: [ts('192.0.2.2')] }));
    const [o, i] = [sad.listSas().find((e) => e.spec.spi === 0x20)!, sad.inboundSa(0x21)!];
    const policy = sad.spd.get(7, 'out')!;
    expect([...o.localAddress]).toEqual([192, 0, 2, 1]);
    expect([...o.remoteAddress]).toEqual([192, 0, 2, 2]);
    for (const shared of [i.localAddress, o.localSelectors[0]!.start, o.localSelectors[0]!.end, i.localSelectors[0]!.start, policy.local[0]!.start])
      expect(shared).toBe(o.localAddress);
    for (const shared of [i.remoteAddress, o.remoteSelectors[0]!.end, policy.remote[0]!.end]) expect(shared).toBe(o.remoteAddress);
  });

  it('setOutboundSa picks the active outbound SA of a reqid (make-before-break) and tells listeners', () => {
    const { sad } = sadWithClock();
    const ready: number[] = [];
    sad.onOutboundReady((r) => ready.push(r));
    sad.addSa(out(0x100, { reqid: 3 }));
    expect(sad.outboundSaFor(3)).toBeUndefined();
    sad.setOutboundSa(3, 0x100);
    expect(sad.outboundSaFor(3)?.spec.spi).toBe(0x100);
    sad.addSa(out(0x101, { reqid: 3 }));
    sad.setOutboundSa(3, 0x101);
    expect(sad.outboundSaFor(3)?.spec.spi).toBe(0x101);
    expect(ready).toEqual([3, 3]);
    // deleting the old SA does not touch the active one; deleting the active one leaves none
    sad.deleteSa(0x100, 'out');
    expect(sad.outboundSaFor(3)?.spec.spi).toBe(0x101);
    sad.deleteSa(0x101, 'out');
    expect(sad.outboundSaFor(3)).toBeUndefined();
  });

  it('setOutboundSa refuses an unknown SPI and an SA of another reqid', () => {
    const { sad } = sadWithClock();
    sad.addSa(out(0x100, { reqid: 3 }));
    expect(() => sad.setOutboundSa(4, 0x100)).toThrow(/no outbound SA/);
    expect(() => sad.setOutboundSa(3, 0x999)).toThrow(/no outbound SA/);
  });

  it('querySa returns a copy of the counters (undefined for unknown SPIs); onSaAdded sees each SA', () => {
    const { sad } = sadWithClock();
    const added: number[] = [];
    sad.onSaAdded((s) => added.push(s.spi));
    sad.addSa(inb(0x300));
    const entry = sad.inboundSa(0x300)!;
    sad.account(entry, 100, 42);
    const c = sad.querySa(0x300, 'in')!;
    expect(c).toMatchObject({ bytes: 100, packets: 1, lastUsed: 42 });
    c.packets = 99;
    expect(sad.querySa(0x300, 'in')!.packets).toBe(1);
    expect(sad.querySa(0x300, 'out')).toBeUndefined();
    expect(added).toEqual([0x300]);
  });
});

describe('SecurityAssociationDatabase: policies', () => {
  it('addPolicy announces a replacement before the removal of the old one; deletePolicy announces the removal', () => {
    const { sad } = sadWithClock();
    const log: string[] = [];
    sad.onPolicyChange(({ entry, added }) => log.push(`${added ? '+' : '-'}${entry.spec.reqid}:${entry.remote[0]?.start.join('.')}`));
    sad.addPolicy(policySpec({ reqid: 1, local: [ANY4], remote: [ts('10.0.0.0', '10.0.0.255')] }));
    sad.addPolicy(policySpec({ reqid: 1, local: [ANY4], remote: [ts('10.9.0.0', '10.9.0.255')] }));
    expect(sad.deletePolicy(1, 'out')).toBe(true);
    expect(sad.deletePolicy(1, 'out')).toBe(false);
    expect(log).toEqual(['+1:10.0.0.0', '+1:10.9.0.0', '-1:10.0.0.0', '-1:10.9.0.0']);
  });

  it('listPolicies lists out then in policies', () => {
    const { sad } = sadWithClock();
    sad.addPolicy(policySpec({ reqid: 1, direction: 'in', local: [ANY4], remote: [ANY4] }));
    sad.addPolicy(policySpec({ reqid: 1, local: [ANY4], remote: [ANY4] }));
    expect(sad.listPolicies().map((p) => p.direction)).toEqual(['out', 'in']);
  });
});

describe('SecurityAssociationDatabase: lifetimes', () => {
  it('packets: soft once at the soft limit; after hardPackets packets (as XFRM) the next is refused, the SA removed', () => {
    const { sad, expires } = sadWithClock();
    sad.addSa(out(0x500, { reqid: 9, lifetimes: life({ softPackets: 2, hardPackets: 4 }) }));
    sad.setOutboundSa(9, 0x500);
    const e = sad.outboundSaFor(9)!;
    expect(sad.account(e, 10, 1)).toBe(true);
    expect(expires).toEqual([]);
    expect(sad.account(e, 10, 1)).toBe(true);
    expect(expires).toEqual([{ reqid: 9, spi: 0x500, direction: 'out', hard: false, reason: 'packets' }]);
    expect(e.softExpired).toBe(true);
    expect(sad.account(e, 10, 1)).toBe(true);
    expect(sad.account(e, 10, 1)).toBe(true);
    expect(expires).toHaveLength(1);
    // four packets went through: the fifth is refused
    expect(sad.account(e, 10, 1)).toBe(false);
    expect(expires[1]).toEqual({ reqid: 9, spi: 0x500, direction: 'out', hard: true, reason: 'packets' });
    expect(e.removed).toBe(true);
    expect(sad.outboundSaFor(9)).toBeUndefined();
    expect(sad.listSas()).toHaveLength(0);
    // a packet still holding the entry does not raise another event
    sad.account(e, 10, 1);
    sad.sequenceExhausted(e);
    expect(expires).toHaveLength(2);
  });

  it('bytes: soft and hard by the running byte count, reason "bytes"', () => {
    const { sad, expires } = sadWithClock();
    sad.addSa(inb(0x600, { lifetimes: life({ softBytes: 1000, hardBytes: 1500 }) }));
    const e = sad.inboundSa(0x600)!;
    expect(sad.account(e, 999, 1)).toBe(true);
    expect(expires).toHaveLength(0);
    expect(sad.account(e, 1, 1)).toBe(true);
    expect(expires).toEqual([{ reqid: 1, spi: 0x600, direction: 'in', hard: false, reason: 'bytes' }]);
    expect(sad.account(e, 400, 1)).toBe(true);
    expect(sad.account(e, 100, 1)).toBe(true);
    expect(sad.account(e, 1, 1)).toBe(false);
    expect(expires[1]).toMatchObject({ hard: true, reason: 'bytes', direction: 'in' });
    expect(sad.inboundSa(0x600)).toBeUndefined();
  });

  it('a packet crossing both byte limits at once passes with the soft expiry (as XFRM); the next one raises the hard expiry', () => {
    const { sad, expires } = sadWithClock();
    sad.addSa(inb(0x601, { lifetimes: life({ softBytes: 100, hardBytes: 200 }) }));
    expect(sad.account(sad.inboundSa(0x601)!, 5000, 1)).toBe(true);
    expect(expires).toEqual([{ reqid: 1, spi: 0x601, direction: 'in', hard: false, reason: 'bytes' }]);
    expect(sad.account(sad.inboundSa(0x601)!, 1, 1)).toBe(false);
    expect(expires[1]).toEqual({ reqid: 1, spi: 0x601, direction: 'in', hard: true, reason: 'bytes' });
  });

  it('time: checkLifetimes raises soft at softSeconds and hard at hardSeconds (fake clock), once each', () => {
    const { sad, clock, expires } = sadWithClock();
    sad.addSa(out(0x700, { lifetimes: life({ softSeconds: 10, hardSeconds: 20 }) }));
    sad.addSa(inb(0x701, { lifetimes: life({ softSeconds: 15, hardSeconds: 20 }) }));
    sad.addSa(inb(0x702)); // no limits: lives forever
    clock.ms += 9_999;
    sad.checkLifetimes();
    expect(expires).toEqual([]);
    clock.ms += 1;
    sad.checkLifetimes();
    sad.checkLifetimes();
    expect(expires).toEqual([{ reqid: 1, spi: 0x700, direction: 'out', hard: false, reason: 'time' }]);
    clock.ms += 5_000;
    sad.checkLifetimes();
    expect(expires.slice(1)).toEqual([{ reqid: 1, spi: 0x701, direction: 'in', hard: false, reason: 'time' }]);
    clock.ms += 5_000;
    sad.checkLifetimes();
    sad.checkLifetimes();
    expect(expires.slice(2)).toEqual([
      { reqid: 1, spi: 0x701, direction: 'in', hard: true, reason: 'time' },
      { reqid: 1, spi: 0x700, direction: 'out', hard: true, reason: 'time' },
    ]);
    expect(sad.listSas().map((e) => e.spec.spi)).toEqual([0x702]);
    clock.ms += 1e9;
    sad.checkLifetimes();
    expect(expires).toHaveLength(4);
  });

  it('time: an SA found past its hard time without a soft expiry gets only the hard one', () => {
    const { sad, clock, expires } = sadWithClock();
    sad.addSa(out(0x800, { lifetimes: life({ softSeconds: 10, hardSeconds: 20 }) }));
    clock.ms += 60_000;
    sad.checkLifetimes();
    expect(expires).toEqual([{ reqid: 1, spi: 0x800, direction: 'out', hard: true, reason: 'time' }]);
  });

  it('time is measured from installation on the SAD clock', () => {
    const { sad, clock, expires } = sadWithClock();
    clock.ms += 100_000;
    sad.addSa(out(0x900, { lifetimes: life({ hardSeconds: 5 }) }));
    sad.checkLifetimes();
    expect(expires).toEqual([]);
    clock.ms += 5_000;
    sad.checkLifetimes();
    expect(expires).toHaveLength(1);
  });

  it('an SA removed by deleteSa never reports an expiry afterwards (time, bytes, packets in flight)', () => {
    const { sad, clock, expires } = sadWithClock();
    sad.addSa(inb(0xb00, { lifetimes: life({ softSeconds: 5, hardSeconds: 10, softBytes: 10, hardBytes: 20 }) }));
    const inFlight = sad.inboundSa(0xb00)!;
    expect(sad.deleteSa(0xb00, 'in')).toBe(true);
    clock.ms += 60_000;
    sad.checkLifetimes();
    sad.account(inFlight, 100, 1);
    sad.account(inFlight, 100, 1);
    expect(expires).toEqual([]);
  });

  it('an SA deleted with a grace period (a rekeyed-away inbound SA) takes packets until the grace ends but raises no expiry, even when its hard limit falls inside the grace', () => {
    vi.useFakeTimers();
    try {
      const { sad, clock, expires } = sadWithClock();
      sad.addSa(inb(0xc00, { lifetimes: life({ softSeconds: 5, hardSeconds: 10 }) }));
      clock.ms += 5_000;
      sad.checkLifetimes();
      expect(expires).toEqual([{ reqid: 1, spi: 0xc00, direction: 'in', hard: false, reason: 'time' }]); // the rekey's trigger
      clock.ms += 4_000;
      expect(sad.deleteSa(0xc00, 'in', 2_000)).toBe(true);
      const entry = sad.inboundSa(0xc00)!;
      expect(sad.account(entry, 100, 9)).toBe(true);
      clock.ms += 1_000; // the hard limit, inside the grace
      sad.checkLifetimes();
      expect(sad.inboundSa(0xc00)).toBeUndefined(); // the hard limit still holds
      expect(expires).toHaveLength(1);

      sad.addSa(inb(0xc01));
      sad.deleteSa(0xc01, 'in', 2_000);
      sad.deleteSa(0xc01, 'in', 2_000); // a second grace does not extend the first
      vi.advanceTimersByTime(1_999);
      expect(sad.inboundSa(0xc01)).toBeDefined();
      vi.advanceTimersByTime(1);
      expect(sad.inboundSa(0xc01)).toBeUndefined();

      sad.addSa(inb(0xc02));
      sad.deleteSa(0xc02, 'in', 2_000);
      expect(sad.deleteSa(0xc02, 'in')).toBe(true); // without grace: at once
      expect(sad.inboundSa(0xc02)).toBeUndefined();
      expect(vi.getTimerCount()).toBe(0);
      expect(expires).toHaveLength(1);
    } finally {
      vi.useRealTimers();
    }
  });

  it('sequenceExhausted is a hard expiry (reason "packets") and removes the SA', () => {
    const { sad, expires } = sadWithClock();
    sad.addSa(out(0xa00, { reqid: 2 }));
    sad.setOutboundSa(2, 0xa00);
    sad.sequenceExhausted(sad.outboundSaFor(2)!);
    expect(expires).toEqual([{ reqid: 2, spi: 0xa00, direction: 'out', hard: true, reason: 'packets' }]);
    expect(sad.outboundSaFor(2)).toBeUndefined();
  });
});
