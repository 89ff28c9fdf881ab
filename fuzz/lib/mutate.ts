/**
 * The byte mutator of tunsec's self-written fuzzing engine (jazzer.js could
 * not run here, see docs/notes/fuzzing.md): libFuzzer-style stacked
 * mutations — bit flips, interesting values (as 8/16/32-bit big-endian
 * integers, the wire formats' byte order, and little-endian), arithmetic on
 * length fields, range delete/insert/duplicate/copy, crossover with another
 * corpus entry, dictionary tokens, truncation — driven by a seeded PRNG so a
 * run can be repeated with `--seed`.
 */

/** xorshift128+ on two 32-bit halves: fast, seedable, good enough for mutation choices. */
export class Random {
  private a: number;
  private b: number;
  constructor(seed: number) {
    this.a = seed >>> 0 || 0x9e3779b9;
    this.b = Math.imul(seed ^ 0x85ebca6b, 0xc2b2ae35) >>> 0 || 0x27d4eb2f;
    for (let i = 0; i < 8; i++) this.u32();
  }
  u32(): number {
    let s1 = this.a;
    const s0 = this.b;
    this.a = s0;
    s1 ^= s1 << 11;
    s1 ^= s1 >>> 8;
    this.b = (s1 ^ s0 ^ (s0 >>> 19)) >>> 0;
    return (this.b + s0) >>> 0;
  }
  /** 0 ≤ n < bound. */
  below(bound: number): number {
    return bound <= 1 ? 0 : this.u32() % bound;
  }
  /** [0, 1). */
  float = (): number => this.u32() / 0x1_0000_0000;
  chance(p: number): boolean {
    return this.float() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)]!;
  }
}

const INTERESTING_8 = [0x00, 0x01, 0x02, 0x03, 0x04, 0x07, 0x08, 0x0f, 0x10, 0x20, 0x3f, 0x40, 0x7f, 0x80, 0x81, 0xfe, 0xff];
const INTERESTING_16 = [0, 1, 2, 3, 4, 7, 8, 15, 16, 20, 28, 32, 40, 64, 127, 128, 255, 256, 512, 1024, 1500, 4096, 0x7fff, 0x8000, 0xfffe, 0xffff];
const INTERESTING_32 = [0, 1, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 0x100, 0x10000, 0x1000000];

export interface MutatorOptions {
  maxLength: number;
  dictionary: readonly Uint8Array[];
  /** Another corpus entry for crossover. */
  other: () => Buffer | undefined;
}

/** A mutated copy of `input` (1 to 8 stacked mutations). */
export function mutate(input: Buffer, rnd: Random, opts: MutatorOptions): Buffer {
  let b: Buffer = Buffer.from(input);
  const rounds = 1 + (rnd.chance(0.5) ? 0 : rnd.below(rnd.chance(0.7) ? 3 : 8));
  for (let i = 0; i < rounds; i++) b = mutateOnce(b, rnd, opts);
  if (b.length > opts.maxLength) b = b.subarray(0, opts.maxLength);
  return b;
}

function mutateOnce(b: Buffer, rnd: Random, opts: MutatorOptions): Buffer {
  const n = b.length;
  const pos = (extra = 0): number => rnd.below(Math.max(1, n - extra));
  switch (rnd.below(n === 0 ? 2 : 15)) {
    case 0: {
      // insert random octets
      const len = 1 + rnd.below(rnd.chance(0.8) ? 4 : 64);
      const ins = Buffer.alloc(len);
      for (let i = 0; i < len; i++) ins[i] = rnd.below(256);
      const at = rnd.below(n + 1);
      return Buffer.concat([b.subarray(0, at), ins, b.subarray(at)]);
    }
    case 1: {
      // dictionary token, inserted or overwritten
      if (opts.dictionary.length === 0) return mutateOnce(b, rnd, opts);
      const tok = rnd.pick(opts.dictionary);
      const at = rnd.below(n + 1);
      if (rnd.chance(0.5) || at + tok.length > n) return Buffer.concat([b.subarray(0, at), tok, b.subarray(at)]);
      b.set(tok, at);
      return b;
    }
    case 2:
      b[pos()]! ^= 1 << rnd.below(8);
      return b;
    case 3:
      b[pos()] = rnd.below(256);
      return b;
    case 4:
      b[pos()] = rnd.pick(INTERESTING_8);
      return b;
    case 5: {
      if (n < 2) return b;
      const v = rnd.chance(0.8) ? rnd.pick(INTERESTING_16) : n + rnd.below(9) - 4;
      const at = pos(1);
      if (rnd.chance(0.85)) b.writeUInt16BE(v & 0xffff, at);
      else b.writeUInt16LE(v & 0xffff, at);
      return b;
    }
    case 6: {
      if (n < 4) return b;
      const at = pos(3);
      const v = rnd.chance(0.5) ? rnd.pick(INTERESTING_32) : rnd.chance(0.5) ? n : n + rnd.below(9) - 4;
      if (rnd.chance(0.85)) b.writeUInt32BE(v >>> 0, at);
      else b.writeUInt32LE(v >>> 0, at);
      return b;
    }
    case 7: {
      // arithmetic on a 16-bit big-endian field (length fields)
      if (n < 2) return b;
      const at = pos(1);
      const delta = rnd.below(33) - 16;
      b.writeUInt16BE((b.readUInt16BE(at) + delta) & 0xffff, at);
      return b;
    }
    case 8: {
      // arithmetic on one octet
      const at = pos();
      b[at] = (b[at]! + rnd.below(33) - 16) & 0xff;
      return b;
    }
    case 9: {
      // delete a range
      const at = pos();
      const len = 1 + rnd.below(Math.min(n - at, rnd.chance(0.8) ? 4 : 128));
      return Buffer.concat([b.subarray(0, at), b.subarray(at + len)]);
    }
    case 10: {
      // duplicate a range
      const at = pos();
      const len = 1 + rnd.below(Math.min(n - at, 64));
      const to = rnd.below(n + 1);
      return Buffer.concat([b.subarray(0, to), b.subarray(at, at + len), b.subarray(to)]);
    }
    case 11: {
      // copy a range over another place
      const from = pos();
      const len = 1 + rnd.below(Math.min(n - from, 32));
      const to = rnd.below(Math.max(1, n - len + 1));
      b.copy(b, to, from, from + len);
      return b;
    }
    case 12: {
      // crossover: a prefix of this one and a suffix of another (or an inserted slice)
      const o = opts.other();
      if (!o || o.length === 0) return mutateOnce(b, rnd, opts);
      const cut = rnd.below(n + 1);
      const oc = rnd.below(o.length);
      if (rnd.chance(0.5)) return Buffer.concat([b.subarray(0, cut), o.subarray(oc)]);
      const len = 1 + rnd.below(Math.min(o.length - oc, 128));
      return Buffer.concat([b.subarray(0, cut), o.subarray(oc, oc + len), b.subarray(cut)]);
    }
    case 13:
      // truncate
      return b.subarray(0, rnd.below(n));
    default: {
      // flip a run of bytes
      const at = pos();
      const len = 1 + rnd.below(Math.min(n - at, 8));
      for (let i = at; i < at + len; i++) b[i] = rnd.below(256);
      return b;
    }
  }
}
