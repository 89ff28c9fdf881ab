/**
 * Request retransmission, RFC 7296 §2.1/§2.4, on strongSwan's schedule
 * (docs.strongswan.org "Retransmission": 4 · 1.8^(n-1) s, 5 tries, give up
 * after 165 s). Time is a fake clock; no test waits.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  DEFAULT_RETRANSMIT,
  type PeerUnreachable,
  Retransmitter,
  type RetransmitterOptions,
  retransmitInterval,
  retransmitSchedule,
  retransmitSettings,
} from '../../../src/ike/exchange/retransmit.js';
import { systemTimers } from '../../../src/ike/exchange/timers.js';
import { FakeTimers } from './fake-timers.js';

function harness(options: Partial<RetransmitterOptions> = {}) {
  const timers = new FakeTimers();
  const sent: { attempt: number; at: number }[] = [];
  const gaveUp: { result: PeerUnreachable; at: number }[] = [];
  const r = new Retransmitter({
    send: (attempt) => sent.push({ attempt, at: timers.now }),
    giveUp: (result) => gaveUp.push({ result, at: timers.now }),
    timers,
    ...options,
  });
  return { r, timers, sent, gaveUp };
}

describe('the schedule', () => {
  it('with the defaults the intervals are 4, 7.2, 12.96, 23.33, 41.99 s, then 75.58 s before giving up', () => {
    expect(retransmitSchedule()).toEqual([4000, 7200, 12960, 23328, 41990, 75583]);
  });

  it('a request is sent at 0 s, retransmitted at 4, 11.2, 24.16, 47.49 and 89.48 s, and the peer is unreachable at 165.06 s', () => {
    const { r, timers, sent, gaveUp } = harness();
    r.start();
    timers.runAll();
    expect(sent).toEqual([
      { attempt: 0, at: 0 },
      { attempt: 1, at: 4000 },
      { attempt: 2, at: 11200 },
      { attempt: 3, at: 24160 },
      { attempt: 4, at: 47488 },
      { attempt: 5, at: 89478 },
    ]);
    expect(gaveUp).toEqual([{ result: { outcome: 'peer-unreachable', retransmits: 5, elapsedMs: 165061 }, at: 165061 }]);
    expect(r.state).toBe('gave-up');
  });

  it('nothing happens between the scheduled times', () => {
    const { r, timers, sent } = harness();
    r.start();
    timers.advance(3999);
    expect(sent).toHaveLength(1);
    timers.advance(1);
    expect(sent).toHaveLength(2);
  });

  it('timeout, base and tries are configurable: 1 s, base 2, 3 tries retransmit at 1, 3, 7 s and give up at 15 s', () => {
    const { r, timers, sent, gaveUp } = harness({ settings: { timeout: 1, base: 2, tries: 3 } });
    r.start();
    timers.runAll();
    expect(sent.map((s) => s.at)).toEqual([0, 1000, 3000, 7000]);
    expect(gaveUp.map((g) => g.at)).toEqual([15000]);
  });

  it('limit caps every interval (charon.retransmit_limit)', () => {
    expect(retransmitSchedule(retransmitSettings({ timeout: 4, base: 2, tries: 6, limit: 20 }))).toEqual([4000, 8000, 16000, 20000, 20000, 20000, 20000]);
  });

  it('tries = 0 sends once and gives up one timeout later', () => {
    const { r, timers, sent, gaveUp } = harness({ settings: { tries: 0 } });
    r.start();
    timers.runAll();
    expect(sent.map((s) => s.at)).toEqual([0]);
    expect(gaveUp[0]).toEqual({ result: { outcome: 'peer-unreachable', retransmits: 0, elapsedMs: 4000 }, at: 4000 });
  });

  it('jitter shortens each interval by at most its share, as strongSwan does', () => {
    const s = retransmitSettings({ jitter: 20 });
    expect(retransmitInterval(s, 0, () => 0)).toBe(4000);
    expect(retransmitInterval(s, 0, () => 0.5)).toBe(3600);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 5 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (n, x) => {
        const full = retransmitInterval(DEFAULT_RETRANSMIT, n);
        const jittered = retransmitInterval(s, n, () => x);
        expect(jittered).toBeLessThanOrEqual(full);
        expect(jittered).toBeGreaterThanOrEqual(Math.floor(full * 0.8));
      }),
    );
  });

  it('settings that make no schedule are refused', () => {
    expect(() => retransmitSettings({ timeout: 0 })).toThrow(RangeError);
    expect(() => retransmitSettings({ base: 0.5 })).toThrow(RangeError);
    expect(() => retransmitSettings({ tries: 1.5 })).toThrow(RangeError);
    expect(() => retransmitSettings({ jitter: 120 })).toThrow(RangeError);
    expect(() => retransmitSettings({ limit: -1 })).toThrow(RangeError);
  });
});

describe('cancellation', () => {
  it('a response after the second retransmission stops the schedule: no more sends, no give-up, no timer left', () => {
    const { r, timers, sent, gaveUp } = harness();
    r.start();
    timers.advance(11200);
    expect(sent).toHaveLength(3);
    r.cancel();
    expect(timers.pendingCount).toBe(0);
    timers.advance(1_000_000);
    expect(sent).toHaveLength(3);
    expect(gaveUp).toEqual([]);
    expect(r.state).toBe('done');
    expect(r.retransmits).toBe(2);
  });

  it('cancelling from inside the send callback (a synchronous response) arms no timer', () => {
    const timers = new FakeTimers();
    const r: Retransmitter = new Retransmitter({ send: () => r.cancel(), giveUp: () => expect.unreachable(), timers });
    r.start();
    expect(timers.pendingCount).toBe(0);
    expect(r.state).toBe('done');
  });

  it('cancel after giving up is harmless and start cannot be called twice', () => {
    const { r, timers } = harness({ settings: { tries: 0 } });
    r.start();
    expect(() => r.start()).toThrow();
    timers.runAll();
    r.cancel();
    expect(r.state).toBe('gave-up');
  });
});

describe('with Node timers', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('systemTimers drives the same schedule under vi.useFakeTimers()', () => {
    vi.useFakeTimers();
    const sent: number[] = [];
    let unreachable = false;
    const start = Date.now();
    const r = new Retransmitter({
      send: () => sent.push(Date.now() - start),
      giveUp: () => {
        unreachable = true;
      },
      timers: systemTimers,
    });
    r.start();
    vi.advanceTimersByTime(165_060);
    expect(sent).toEqual([0, 4000, 11200, 24160, 47488, 89478]);
    expect(unreachable).toBe(false);
    vi.advanceTimersByTime(1);
    expect(unreachable).toBe(true);
  });
});
