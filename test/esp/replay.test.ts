/**
 * The ESP anti-replay window (src/esp/replay.ts): RFC 4303 §3.4.3 and
 * Appendix A semantics, ESN high-bits reconstruction (Appendix A2), the
 * RFC 6479 ring across word boundaries, and a fast-check property test
 * against a naive Set-of-bigints model of the RFC semantics.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MAX_SEQ_32, REPLAY_DUPLICATE, REPLAY_TOO_OLD, REPLAY_WINDOW_MAX, ReplayWindow, seqHigh, seqLow } from '../../src/esp/replay.js';
import { MAX_REPLAY_WINDOW } from '../../src/config/index.js';

const TWO_32 = 2 ** 32;
const SIZES = [32, 64, 128, 1024, 4096] as const;

/** check + accept, as the datapath does for a packet whose ICV verifies; returns the verdict of check. */
function deliver(w: ReplayWindow, low: number): number {
  const seq = w.check(low);
  if (seq > 0) expect(w.accept(seq)).toBe(true);
  return seq;
}

// ---------------------------------------------------------------------------
// The model: RFC 4303 §3.4.3 / Appendix A written as directly as possible.

type Verdict = bigint | 'tooOld' | 'duplicate';
const B32 = 2n ** 32n;
const MAX_ESN = BigInt(Number.MAX_SAFE_INTEGER);

class Model {
  readonly seen = new Set<bigint>();
  top = 0n;
  readonly counters = { replayed: 0, tooOld: 0, accepted: 0 };
  constructor(
    readonly size: number,
    readonly esn: boolean,
  ) {}

  /** Appendix A2 stated as an interval: the value ≡ low (mod 2^32) in [B, B + 2^32). */
  private reconstruct(low: number): bigint {
    if (!this.esn) return BigInt(low);
    const span = BigInt(this.size === 0 ? 2 ** 31 : this.size);
    const bottom = this.top - span + 1n;
    return bottom + ((((BigInt(low) - bottom) % B32) + B32) % B32);
  }

  private verdict(seq: bigint): Verdict {
    if (seq < 1n || seq > (this.esn ? MAX_ESN : B32 - 1n)) return 'tooOld';
    if (this.size === 0 || seq > this.top) return seq;
    if (seq <= this.top - BigInt(this.size)) return 'tooOld';
    return this.seen.has(seq) ? 'duplicate' : seq;
  }

  private count(v: Verdict): void {
    if (v === 'tooOld') this.counters.tooOld++;
    else if (v === 'duplicate') this.counters.replayed++;
  }

  check(low: number): Verdict {
    const v = this.verdict(this.reconstruct(low));
    this.count(v);
    return v;
  }

  accept(seq: bigint): boolean {
    const v = this.verdict(seq);
    this.count(v);
    if (typeof v !== 'bigint') return false;
    this.counters.accepted++;
    this.seen.add(seq);
    if (seq > this.top) this.top = seq;
    return true;
  }
}

const asNumber = (v: Verdict): number => (v === 'tooOld' ? REPLAY_TOO_OLD : v === 'duplicate' ? REPLAY_DUPLICATE : Number(v));

// ---------------------------------------------------------------------------

describe('replay window construction', () => {
  it('replay: the ring is ceil(size/32)+1 words rounded up to a power of two, none for size 0', () => {
    expect(new ReplayWindow(0, false).words).toBe(0);
    expect(new ReplayWindow(1, false).words).toBe(2);
    expect(new ReplayWindow(32, false).words).toBe(2);
    expect(new ReplayWindow(33, false).words).toBe(4);
    expect(new ReplayWindow(64, false).words).toBe(4);
    expect(new ReplayWindow(128, false).words).toBe(8);
    expect(new ReplayWindow(1024, false).words).toBe(64);
    expect(new ReplayWindow(4096, false).words).toBe(256);
    expect(new ReplayWindow(65536, true).words).toBe(4096);
  });

  it('replay: sizes outside 0..REPLAY_WINDOW_MAX, or not integers, are refused', () => {
    expect(() => new ReplayWindow(-1, false)).toThrow(RangeError);
    expect(() => new ReplayWindow(1.5, false)).toThrow(RangeError);
    expect(() => new ReplayWindow(REPLAY_WINDOW_MAX + 1, false)).toThrow(RangeError);
    expect(() => new ReplayWindow(REPLAY_WINDOW_MAX, false)).not.toThrow();
  });

  it('replay: the largest window matches what the configuration allows', () => {
    expect(REPLAY_WINDOW_MAX).toBe(MAX_REPLAY_WINDOW);
  });
});

describe('replay window without ESN (RFC 4303 §3.4.3)', () => {
  it('replay: sequence number 0 is rejected, the first packet is 1', () => {
    const w = new ReplayWindow(64, false);
    expect(w.check(0)).toBe(REPLAY_TOO_OLD);
    expect(deliver(w, 1)).toBe(1);
    expect(w.check(0)).toBe(REPLAY_TOO_OLD);
    expect(w.counters).toEqual({ replayed: 0, tooOld: 2, accepted: 1 });
    expect(() => w.accept(0)).toThrow(RangeError);
  });

  it('replay: a packet inside the window that was not seen yet is accepted, out of order', () => {
    const w = new ReplayWindow(64, false);
    expect(deliver(w, 10)).toBe(10);
    expect(deliver(w, 3)).toBe(3);
    expect(deliver(w, 9)).toBe(9);
    expect(deliver(w, 11)).toBe(11);
    expect(w.top).toBe(11);
    expect(w.counters).toEqual({ replayed: 0, tooOld: 0, accepted: 4 });
  });

  it('replay: a duplicate inside the window is dropped', () => {
    const w = new ReplayWindow(64, false);
    deliver(w, 10);
    deliver(w, 7);
    expect(w.check(10)).toBe(REPLAY_DUPLICATE);
    expect(w.check(7)).toBe(REPLAY_DUPLICATE);
    expect(w.counters.replayed).toBe(2);
  });

  it('replay: a packet at or below top - size is too old, top - size + 1 is still inside', () => {
    const w = new ReplayWindow(64, false);
    deliver(w, 1000);
    expect(w.check(1000 - 64)).toBe(REPLAY_TOO_OLD);
    expect(w.check(1)).toBe(REPLAY_TOO_OLD);
    expect(w.check(1000 - 63)).toBe(1000 - 63);
    expect(w.counters).toEqual({ replayed: 0, tooOld: 2, accepted: 1 });
  });

  it('replay: sliding by less than the window keeps the bits still inside it', () => {
    const w = new ReplayWindow(64, false);
    for (const s of [100, 98, 90, 60]) deliver(w, s);
    deliver(w, 120); // slide by 20
    expect(w.check(100)).toBe(REPLAY_DUPLICATE);
    expect(w.check(98)).toBe(REPLAY_DUPLICATE);
    expect(w.check(90)).toBe(REPLAY_DUPLICATE);
    expect(w.check(60)).toBe(REPLAY_DUPLICATE); // 120 - 60 < 64: still inside
    expect(w.check(57)).toBe(57);
    expect(w.check(56)).toBe(REPLAY_TOO_OLD); // 120 - 56 = 64
  });

  it('replay: sliding by more than the window forgets everything before it', () => {
    const w = new ReplayWindow(64, false);
    for (let s = 1; s <= 64; s++) deliver(w, s);
    deliver(w, 64 + 64 + 5);
    for (let s = 1; s <= 69; s++) expect(w.check(s)).toBe(REPLAY_TOO_OLD);
    for (let s = 70; s < 133; s++) expect(w.check(s)).toBe(s);
    expect(w.check(133)).toBe(REPLAY_DUPLICATE);
  });

  it('replay: a jump far ahead clears the whole ring', () => {
    const w = new ReplayWindow(128, false);
    for (let s = 1; s <= 200; s++) deliver(w, s);
    deliver(w, 3_000_000_000);
    for (let d = 1; d < 128; d++) expect(w.check(3_000_000_000 - d)).toBe(3_000_000_000 - d);
    expect(w.check(3_000_000_000 - 128)).toBe(REPLAY_TOO_OLD);
    expect(w.check(200)).toBe(REPLAY_TOO_OLD);
  });

  for (const size of SIZES) {
    it(`replay: every bit position of a ${size}-packet window, across word boundaries, is tracked`, () => {
      // Tops just before, on and after a word boundary, so the window's lower edge falls at each offset.
      for (const top of [32 * 1000 - 1, 32 * 1000, 32 * 1000 + 1, 32 * 1000 + 17]) {
        const w = new ReplayWindow(size, false);
        deliver(w, top);
        // Every position inside the window is new once, then a duplicate.
        for (let d = 1; d < size; d++) {
          expect(w.check(top - d)).toBe(top - d);
          expect(w.accept(top - d)).toBe(true);
        }
        for (let d = 0; d < size; d++) expect(w.check(top - d)).toBe(REPLAY_DUPLICATE);
        for (let d = size; d < size + 40; d++) expect(w.check(top - d)).toBe(REPLAY_TOO_OLD);
        // Slide by one word plus one: the positions entering the window must be clear,
        // the ones still inside must still be set.
        const next = top + 33;
        deliver(w, next);
        for (let s = next - size + 1; s <= next; s++) {
          expect(w.check(s)).toBe(s > top ? (s === next ? REPLAY_DUPLICATE : s) : REPLAY_DUPLICATE);
        }
        expect(w.check(next - size)).toBe(REPLAY_TOO_OLD);
      }
    });
  }

  it('replay: a forged packet (pre-check passed, accept never called) does not move the window', () => {
    const w = new ReplayWindow(64, false);
    deliver(w, 50);
    const forgedAhead = w.check(50 + 10_000);
    expect(forgedAhead).toBe(10_050);
    const forgedInside = w.check(45);
    expect(forgedInside).toBe(45);
    // No accept: the ICV failed.
    expect(w.top).toBe(50);
    expect(w.check(49)).toBe(49); // still inside the window
    expect(w.check(45)).toBe(45); // not marked
    expect(w.check(10_050)).toBe(10_050); // the genuine packet can still arrive
    expect(w.counters).toEqual({ replayed: 0, tooOld: 0, accepted: 1 });
  });

  it('replay: two copies that both pass the pre-check are accepted only once', () => {
    const w = new ReplayWindow(64, false);
    deliver(w, 20);
    const a = w.check(15);
    const b = w.check(15);
    expect([a, b]).toEqual([15, 15]);
    expect(w.accept(a)).toBe(true);
    expect(w.accept(b)).toBe(false);
    expect(w.counters).toEqual({ replayed: 1, tooOld: 0, accepted: 2 });
  });

  it('replay: a copy that passed the pre-check but fell out of the window meanwhile is counted too old', () => {
    const w = new ReplayWindow(32, false);
    deliver(w, 40);
    const late = w.check(20);
    expect(late).toBe(20);
    deliver(w, 100);
    expect(w.accept(late)).toBe(false);
    expect(w.counters.tooOld).toBe(1);
  });

  it('replay: without ESN the SA is exhausted once 2^32 - 1 was accepted, and nothing wraps to 0', () => {
    const w = new ReplayWindow(64, false);
    deliver(w, MAX_SEQ_32 - 1);
    expect(w.exhausted).toBe(false);
    deliver(w, MAX_SEQ_32);
    expect(w.exhausted).toBe(true);
    expect(w.check(0)).toBe(REPLAY_TOO_OLD);
    expect(w.check(1)).toBe(REPLAY_TOO_OLD);
    expect(w.check(MAX_SEQ_32)).toBe(REPLAY_DUPLICATE);
    expect(() => w.accept(TWO_32)).toThrow(RangeError);
  });

  it('replay: window size 0 checks nothing but still refuses sequence number 0', () => {
    const w = new ReplayWindow(0, false);
    expect(deliver(w, 5)).toBe(5);
    expect(deliver(w, 5)).toBe(5);
    expect(deliver(w, 1)).toBe(1);
    expect(w.check(0)).toBe(REPLAY_TOO_OLD);
    expect(w.top).toBe(5);
    expect(w.counters).toEqual({ replayed: 0, tooOld: 1, accepted: 3 });
  });

  it('replay: only the low 32 bits of the pre-check argument are used', () => {
    const w = new ReplayWindow(64, false);
    expect(w.check(-1)).toBe(MAX_SEQ_32);
    expect(w.check(TWO_32 + 7)).toBe(7);
  });
});

describe('replay window with ESN (RFC 4303 §2.2.1, Appendix A2)', () => {
  /** A window whose top is `top`, reached through the pre-check as a peer's packets would. */
  function esnAt(size: number, top: number): ReplayWindow {
    const w = new ReplayWindow(size, true);
    // Climb in steps below 2^31 so that every step is guessed as "ahead".
    let t = 0;
    while (t < top) {
      const next = Math.min(top, t + 0x7000_0000);
      expect(deliver(w, seqLow(next))).toBe(next);
      t = next;
    }
    expect(w.top).toBe(top);
    return w;
  }

  it('replay: seqHigh and seqLow split a 64-bit number into its 32-bit halves', () => {
    expect([seqHigh(5), seqLow(5)]).toEqual([0, 5]);
    expect([seqHigh(TWO_32), seqLow(TWO_32)]).toEqual([1, 0]);
    expect([seqHigh(7 * TWO_32 + MAX_SEQ_32), seqLow(7 * TWO_32 + MAX_SEQ_32)]).toEqual([7, MAX_SEQ_32]);
    expect([seqHigh(Number.MAX_SAFE_INTEGER), seqLow(Number.MAX_SAFE_INTEGER)]).toEqual([0x1fffff, MAX_SEQ_32]);
  });

  it('replay: in case A (window within one sub-space) a low number at or above Bl keeps Th', () => {
    const w = esnAt(64, TWO_32 + 1000);
    expect(w.check(1000 - 63)).toBe(TWO_32 + 937);
    expect(w.check(999)).toBe(TWO_32 + 999);
    expect(w.check(1001)).toBe(TWO_32 + 1001);
    expect(w.check(MAX_SEQ_32)).toBe(TWO_32 + MAX_SEQ_32);
  });

  it('replay: in case A a low number below Bl is taken to be in the next sub-space (Th + 1)', () => {
    const w = esnAt(64, TWO_32 + 1000);
    expect(w.check(936)).toBe(2 * TWO_32 + 936);
    expect(w.check(0)).toBe(2 * TWO_32);
    // A packet older than the window cannot be told apart: its guess is far ahead and its ICV will fail.
    expect(w.counters.tooOld).toBe(0);
  });

  it('replay: crossing 2^32 upwards, the packets after the wrap get Th + 1 and are accepted', () => {
    const w = esnAt(64, TWO_32 - 10);
    expect(deliver(w, MAX_SEQ_32 - 3)).toBe(TWO_32 - 4);
    expect(deliver(w, 0)).toBe(TWO_32); // low 0 is valid with ESN once the high half is 1
    expect(deliver(w, 2)).toBe(TWO_32 + 2);
    expect(seqHigh(w.top)).toBe(1);
    // Late packets from before the wrap are now case B, previous sub-space.
    expect(w.check(MAX_SEQ_32 - 5)).toBe(TWO_32 - 6);
    expect(w.check(MAX_SEQ_32 - 3)).toBe(REPLAY_DUPLICATE);
    expect(deliver(w, MAX_SEQ_32)).toBe(TWO_32 - 1);
    expect(w.check(1)).toBe(TWO_32 + 1);
  });

  it('replay: in case B (window spans 2^32) a low number at or above Bl belongs to the previous sub-space (Th - 1)', () => {
    const w = esnAt(64, 3 * TWO_32 + 10);
    // Bl = 10 - 64 + 1 mod 2^32 = 2^32 - 53
    expect(w.check(TWO_32 - 53)).toBe(3 * TWO_32 - 53);
    expect(w.check(MAX_SEQ_32)).toBe(3 * TWO_32 - 1);
    expect(deliver(w, TWO_32 - 20)).toBe(3 * TWO_32 - 20);
    expect(w.check(TWO_32 - 20)).toBe(REPLAY_DUPLICATE);
  });

  it('replay: in case B a low number below Bl keeps Th, whether behind top or ahead of it', () => {
    const w = esnAt(64, 3 * TWO_32 + 10);
    expect(w.check(5)).toBe(3 * TWO_32 + 5);
    expect(w.check(11)).toBe(3 * TWO_32 + 11);
    expect(w.check(TWO_32 - 54)).toBe(4 * TWO_32 - 54); // just below Bl: far ahead, not previous
  });

  it('replay: at the start, low numbers that would need a negative high half are rejected', () => {
    const w = new ReplayWindow(64, true);
    expect(w.check(0)).toBe(REPLAY_TOO_OLD);
    expect(w.check(MAX_SEQ_32)).toBe(REPLAY_TOO_OLD); // case B: Th - 1 = -1
    // Bl = 0 - 64 + 1 mod 2^32 = 2^32 - 63
    expect(w.check(TWO_32 - 63)).toBe(REPLAY_TOO_OLD);
    expect(w.check(TWO_32 - 64)).toBe(TWO_32 - 64); // below Bl: Th = 0, far ahead
    expect(w.check(1)).toBe(1);
  });

  it('replay: a duplicate and a too-old packet are still recognised across the 2^32 boundary', () => {
    const w = esnAt(32, TWO_32 - 2);
    deliver(w, MAX_SEQ_32 - 10);
    deliver(w, 3); // top = 2^32 + 3
    expect(w.check(MAX_SEQ_32 - 10)).toBe(REPLAY_DUPLICATE);
    expect(w.check(MAX_SEQ_32 - 1)).toBe(REPLAY_DUPLICATE);
    expect(w.check(MAX_SEQ_32 - 27)).toBe(TWO_32 - 28); // 2^32 + 3 - 31 = bottom
    expect(w.counters.replayed).toBe(2);
  });

  it('replay: with window size 0 ESN still reconstructs the high half, nearest to the top', () => {
    const w = esnAt(0, TWO_32 - 10);
    expect(deliver(w, 5)).toBe(TWO_32 + 5);
    expect(deliver(w, 5)).toBe(TWO_32 + 5); // no replay checking
    expect(deliver(w, MAX_SEQ_32 - 1000)).toBe(TWO_32 - 1001); // late, previous sub-space
    expect(w.check(0x8000_0005)).toBe(TWO_32 + 0x8000_0005);
    expect(w.check(0x8000_0006)).toBe(0x8000_0006); // more than 2^31 ahead of top is guessed behind
    expect(w.top).toBe(TWO_32 + 5);
    expect(w.counters.replayed + w.counters.tooOld).toBe(0);
  });

  it('replay: a forged packet with a guessed high half does not move an ESN window', () => {
    const w = esnAt(64, TWO_32 - 10);
    expect(w.check(100)).toBe(TWO_32 + 100);
    expect(w.top).toBe(TWO_32 - 10);
    expect(w.check(MAX_SEQ_32 - 40)).toBe(TWO_32 - 41);
  });
});

// ---------------------------------------------------------------------------

/** One packet: where its sequence number lies relative to the current top, and what happens to it. */
const packet = (size: number) =>
  fc.record({
    at: fc.oneof(
      { weight: 6, arbitrary: fc.integer({ min: -size - 40, max: 40 }).map((d) => ({ rel: d })) },
      { weight: 2, arbitrary: fc.integer({ min: -3 * size - 100, max: 3 * size + 100 }).map((d) => ({ rel: d })) },
      { weight: 1, arbitrary: fc.integer({ min: -(2 ** 32), max: 2 ** 32 }).map((d) => ({ rel: d })) },
      { weight: 1, arbitrary: fc.nat(MAX_SEQ_32).map((low) => ({ low })) },
    ),
    // deliver: ICV ok; forged: ICV fails after the pre-check; race: two copies pass the pre-check before either is accepted.
    fate: fc.constantFrom('deliver', 'deliver', 'deliver', 'forged', 'race'),
  });

const start = (esn: boolean) =>
  esn
    ? fc.oneof(
        fc.constant(0),
        fc.integer({ min: 1, max: 200 }).map((k) => TWO_32 - k),
        fc.integer({ min: 1, max: 5 }).chain((hi) => fc.integer({ min: -300, max: 300 }).map((d) => hi * TWO_32 + d)),
        fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER - TWO_32 }),
      )
    : fc.oneof(
        fc.constant(0),
        fc.integer({ min: 1, max: 300 }).map((k) => TWO_32 - k),
        fc.nat(MAX_SEQ_32),
      );

function runAgainstModel(size: number, esn: boolean, startAt: number, packets: { at: { rel: number } | { low: number }; fate: string }[]): void {
  const w = new ReplayWindow(size, esn);
  const m = new Model(size, esn);
  if (startAt > 0) {
    expect(w.accept(startAt)).toBe(true);
    expect(m.accept(BigInt(startAt))).toBe(true);
  }
  for (const p of packets) {
    const low = 'low' in p.at ? p.at.low : (w.top + p.at.rel) >>> 0;
    const copies = p.fate === 'race' ? 2 : 1;
    const seqs: number[] = [];
    for (let i = 0; i < copies; i++) {
      const got = w.check(low);
      const want = m.check(low);
      expect(got).toBe(asNumber(want));
      if (got > 0) seqs.push(got);
    }
    if (p.fate === 'forged') continue;
    for (const s of seqs) expect(w.accept(s)).toBe(m.accept(BigInt(s)));
    expect(w.top).toBe(Number(m.top));
  }
  // Sweep every position around the final window, bit by bit.
  const span = size === 0 ? 64 : size;
  const got: number[] = [];
  const want: number[] = [];
  for (let d = -40; d < span + 40; d++) {
    const low = (w.top - d) >>> 0;
    got.push(w.check(low));
    want.push(asNumber(m.check(low)));
  }
  expect(got).toEqual(want);
  expect(w.counters).toEqual(m.counters);
  expect(w.exhausted).toBe(m.top === (esn ? MAX_ESN : B32 - 1n));
}

describe('replay window against a Set-based model of RFC 4303 (property)', () => {
  for (const esn of [false, true]) {
    for (const size of [...SIZES, 0, 1, 31, 33]) {
      it(`replay: a ${size}-packet window${esn ? ' with ESN' : ''} gives the model's verdict for every packet`, () => {
        fc.assert(
          fc.property(start(esn), fc.array(packet(size), { maxLength: 300 }), (startAt, packets) => runAgainstModel(size, esn, startAt, packets)),
          { numRuns: size >= 1024 ? 60 : 150 },
        );
      });
    }
    it(`replay: a window of any size${esn ? ' with ESN' : ''} gives the model's verdict for every packet`, () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 0, max: 5000 }).chain((size) => fc.tuple(fc.constant(size), start(esn), fc.array(packet(size), { maxLength: 200 }))),
          ([size, startAt, packets]) => runAgainstModel(size, esn, startAt, packets),
        ),
        { numRuns: 100 },
      );
    });
  }
});
