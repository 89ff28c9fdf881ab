/**
 * The ESP anti-replay window of an inbound SA (RFC 4303 §3.4.3, Appendix A),
 * with Extended Sequence Numbers (RFC 4303 §2.2.1, Appendix A2), kept as an
 * RFC 6479 ring of 32-bit words so that sliding clears whole words and never
 * shifts bits.
 *
 * Use on the datapath, per packet:
 *
 *     const seq = window.check(seqLowFromWire);   // cheap, before the ICV
 *     if (seq < 0) drop;                          // REPLAY_TOO_OLD / REPLAY_DUPLICATE
 *     // AAD / ICV input uses seqHigh(seq) when the SA has ESN (RFC 4303 §2.2.1)
 *     if (!icvVerified) drop;                     // the window has NOT moved
 *     if (!window.accept(seq)) drop;              // re-check: a copy may have won meanwhile
 *
 * 64-bit sequence numbers are plain `number`s: exact below 2^53, they need
 * no allocation on the hot path (bigint would allocate per packet). An ESN SA
 * therefore stops at 2^53 − 1 (`exhausted`), centuries of traffic at any
 * realistic packet rate; `seqHigh` / `seqLow` split one into the 32-bit
 * halves the AAD carries.
 *
 * Counting: a packet rejected by `check` is counted there; one that passes
 * `check` but loses in `accept` is counted by `accept`. A packet the datapath
 * drops for a bad ICV is counted by neither (that is the SA's icvFailures).
 */

/** `check` verdict: below the window, or not a valid sequence number at all (0). */
export const REPLAY_TOO_OLD = -1;
/** `check` verdict: inside the window and already accepted. */
export const REPLAY_DUPLICATE = -2;

/**
 * The result of `ReplayWindow.check`: a positive integer is the candidate
 * 64-bit sequence number to authenticate; a negative value is one of
 * REPLAY_TOO_OLD / REPLAY_DUPLICATE.
 */
export type ReplayCheck = number;

/** The largest window accepted, in packets; equals the config's MAX_REPLAY_WINDOW. */
export const REPLAY_WINDOW_MAX = 65536;

/** The last sequence number of a non-ESN SA: it must be rekeyed before the counter cycles (RFC 4303 §3.3.3). */
export const MAX_SEQ_32 = 0xffffffff;
/** The last sequence number an ESN SA can use here (see the representation note above). */
export const MAX_SEQ_ESN = Number.MAX_SAFE_INTEGER;

const TWO_32 = 0x1_0000_0000;

/**
 * With window size 0 and ESN the high half must still be guessed (the ICV
 * covers it): the guess is then the value nearest to the highest authenticated
 * number, i.e. Appendix A2 with a virtual window of half a sub-space.
 */
const ESN_GUESS_SPAN_WITHOUT_WINDOW = 0x8000_0000;

/** The high 32 bits of a 64-bit sequence number (the ESN `Seq#Hi` of the AAD / ICV input). */
export function seqHigh(seq: number): number {
  return (seq - (seq >>> 0)) / TWO_32;
}

/** The low 32 bits of a 64-bit sequence number (the 32 bits on the wire). */
export function seqLow(seq: number): number {
  return seq >>> 0;
}

export interface ReplayCounters {
  /** Rejected as a duplicate inside the window. */
  replayed: number;
  /** Rejected as older than the window (or sequence number 0). */
  tooOld: number;
  /** Accepted (authenticated and new). */
  accepted: number;
}

export class ReplayWindow {
  /** Window size in packets; 0 = no replay checking. */
  readonly size: number;
  readonly esn: boolean;
  readonly counters: ReplayCounters = { replayed: 0, tooOld: 0, accepted: 0 };
  /**
   * The ring of RFC 6479: word i holds bits for the sequence numbers whose
   * block number (seq >> 5) is ≡ i modulo its length. Length is
   * ceil(size / 32) + 1 words (the spare word lets the newest block be
   * cleared without losing the oldest), rounded up to a power of two so the
   * index is a mask of the low 32 bits of the sequence number.
   */
  private readonly ring: Uint32Array;
  private readonly mask: number;
  /** Appendix A2's W for the high-bits guess (size, or a half sub-space when size is 0). */
  private readonly guessSpan: number;
  private readonly maxSeq: number;
  /** Highest accepted sequence number (Appendix A: T); 0 before the first. */
  private topSeq = 0;

  constructor(size: number, esn: boolean) {
    if (!Number.isInteger(size) || size < 0 || size > REPLAY_WINDOW_MAX) {
      throw new RangeError(`replay window: size must be an integer in 0..${REPLAY_WINDOW_MAX}, got ${size}`);
    }
    this.size = size;
    this.esn = esn;
    let words = 0;
    if (size > 0) {
      words = 1;
      const needed = Math.ceil(size / 32) + 1;
      while (words < needed) words *= 2;
    }
    this.ring = new Uint32Array(words);
    this.mask = words - 1;
    this.guessSpan = size > 0 ? size : ESN_GUESS_SPAN_WITHOUT_WINDOW;
    this.maxSeq = esn ? MAX_SEQ_ESN : MAX_SEQ_32;
  }

  /** Highest sequence number accepted so far (0 if none). */
  get top(): number {
    return this.topSeq;
  }

  /**
   * True once the last usable sequence number was accepted: without ESN the
   * 32-bit counter must not cycle, so the SA has to be replaced.
   */
  get exhausted(): boolean {
    return this.topSeq >= this.maxSeq;
  }

  /** Words in the ring (for tests and diagnostics). */
  get words(): number {
    return this.ring.length;
  }

  /**
   * The pre-check, before ICV verification: the 64-bit candidate for the low
   * 32 bits `low` from the wire (only the low 32 bits of the argument are
   * used), or REPLAY_TOO_OLD / REPLAY_DUPLICATE. Moves nothing but counters.
   */
  check(low: number): ReplayCheck {
    low >>>= 0;
    let seq = low;
    if (this.esn) {
      seq = this.guessHigh(low, this.topSeq) * TWO_32 + low;
      if (seq > this.maxSeq) {
        this.counters.tooOld++;
        return REPLAY_TOO_OLD;
      }
    }
    // Sequence number 0 is never sent (the first packet is 1, RFC 4303 §3.3.3);
    // a guess before the start of the sequence space is just as impossible.
    if (seq < 1) {
      this.counters.tooOld++;
      return REPLAY_TOO_OLD;
    }
    const verdict = this.probe(seq);
    if (verdict === REPLAY_TOO_OLD) this.counters.tooOld++;
    else if (verdict === REPLAY_DUPLICATE) this.counters.replayed++;
    return verdict;
  }

  /**
   * RFC 4303 Appendix A2.2 (ESN): the Seq#Hi to assume for the low half `low` had the window's
   * top `top` (T; W = window, B = bottom): the one that puts the result in [B, B + 2^32). Pure:
   * the batched datapath uses it to see whether packets opened earlier in the same batch could
   * change the guess for this one. Non-decreasing in `top` for a fixed `low`.
   */
  guessHigh(low: number, top: number): number {
    low >>>= 0;
    const tl = top >>> 0;
    const th = (top - tl) / TWO_32;
    const w = this.guessSpan;
    // Case A: the window lies within one sub-space; below Bl means the next sub-space.
    if (tl >= w - 1) return low >= tl - w + 1 ? th : th + 1;
    // Case B: the window spans two sub-spaces; at or above Bl means the previous one.
    return low >= tl - w + 1 + TWO_32 ? th - 1 : th;
  }

  /**
   * Marks `seq` (a candidate from `check`) as received and slides the window.
   * Call only after the packet's ICV verified (RFC 4303 §3.4.3). Re-checks,
   * since another copy may have been accepted since `check`: returns false
   * (and counts it) if the packet is now a duplicate or too old.
   */
  accept(seq: number): boolean {
    if (!(Number.isInteger(seq) && seq >= 1 && seq <= this.maxSeq)) {
      throw new RangeError(`replay window: ${seq} is not a sequence number of this SA`);
    }
    const verdict = this.probe(seq);
    if (verdict === REPLAY_TOO_OLD) {
      this.counters.tooOld++;
      return false;
    }
    if (verdict === REPLAY_DUPLICATE) {
      this.counters.replayed++;
      return false;
    }
    this.counters.accepted++;
    const top = this.topSeq;
    if (seq > top) {
      if (this.size > 0) this.slide(top, seq);
      this.topSeq = seq;
    }
    if (this.size > 0) this.ring[(seq >>> 5) & this.mask]! |= 1 << (seq & 31);
    return true;
  }

  /** `seq` itself if new, else the reject verdict; no side effects. */
  private probe(seq: number): ReplayCheck {
    const top = this.topSeq;
    if (this.size === 0 || seq > top) return seq;
    if (top - seq >= this.size) return REPLAY_TOO_OLD;
    // `>>> 5` and `& 31` see seq modulo 2^32, which is all a ring of at most 2^27 words needs.
    const word = this.ring[(seq >>> 5) & this.mask]!;
    return (word >>> (seq & 31)) & 1 ? REPLAY_DUPLICATE : seq;
  }

  /** Clears the words of the blocks after top's, up to and including seq's (RFC 6479 §2.3). */
  private slide(top: number, seq: number): void {
    const blocks = Math.floor(seq / 32) - Math.floor(top / 32);
    if (blocks >= this.ring.length) {
      this.ring.fill(0);
      return;
    }
    let index = top >>> 5;
    for (let i = 0; i < blocks; i++) {
      index = (index + 1) & this.mask;
      this.ring[index] = 0;
    }
  }
}
