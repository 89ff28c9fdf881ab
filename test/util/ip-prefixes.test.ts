import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bigIntToBytes, bytesToBigInt, compareIp, formatIp, parseIp, prefixRange, rangeToPrefixes } from '../../src/util/ip.js';

/** [first, last] address of a prefix "a/n" as numbers. */
function bounds(prefix: string): [bigint, bigint] {
  const [address, length] = prefix.split('/') as [string, string];
  const bytes = parseIp(address)!;
  const { start, end } = prefixRange(bytes, Number(length));
  expect(start.equals(bytes), `${prefix} has host bits set`).toBe(true);
  return [bytesToBigInt(start), bytesToBigInt(end)];
}

/** The prefixes are in order, disjoint and adjacent, and cover exactly first..last. */
function expectExactCover(prefixes: string[], first: bigint, last: bigint): void {
  let next = first;
  for (const p of prefixes) {
    const [s, e] = bounds(p);
    expect(s).toBe(next);
    next = e + 1n;
  }
  expect(next).toBe(last + 1n);
}

/** The fewest aligned blocks that tile first..last exactly, by dynamic programming (small ranges only). */
function fewestBlocks(first: number, last: number): number {
  const best = new Map<number, number>([[last + 1, 0]]);
  for (let at = last; at >= first; at--) {
    let fewest = Infinity;
    for (let size = 1; at % size === 0 && at + size - 1 <= last; size *= 2) fewest = Math.min(fewest, 1 + best.get(at + size)!);
    best.set(at, fewest);
  }
  return best.get(first)!;
}

describe('rangeToPrefixes', () => {
  it('turns a range that is one prefix into that prefix', () => {
    expect(rangeToPrefixes('10.0.0.0', '10.0.0.255')).toEqual(['10.0.0.0/24']);
    expect(rangeToPrefixes('10.0.0.7', '10.0.0.7')).toEqual(['10.0.0.7/32']);
    expect(rangeToPrefixes('0.0.0.0', '255.255.255.255')).toEqual(['0.0.0.0/0']);
    expect(rangeToPrefixes('::', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff')).toEqual(['::/0']);
    expect(rangeToPrefixes('fd00::', 'fd00::ffff:ffff:ffff:ffff')).toEqual(['fd00::/64']);
  });

  it('splits an unaligned range into the largest aligned blocks, in address order', () => {
    expect(rangeToPrefixes('10.0.0.1', '10.0.0.6')).toEqual(['10.0.0.1/32', '10.0.0.2/31', '10.0.0.4/31', '10.0.0.6/32']);
    expect(rangeToPrefixes('192.168.0.255', '192.168.2.0')).toEqual(['192.168.0.255/32', '192.168.1.0/24', '192.168.2.0/32']);
    expect(rangeToPrefixes('fd00::1', 'fd00::4')).toEqual(['fd00::1/128', 'fd00::2/127', 'fd00::4/128']);
  });

  it('refuses mixed families, non-addresses and ranges that end before they start', () => {
    expect(() => rangeToPrefixes('10.0.0.1', 'fd00::1')).toThrow(RangeError);
    expect(() => rangeToPrefixes('10.0.0.1', '10.0.0')).toThrow(RangeError);
    expect(() => rangeToPrefixes('10.0.0.2', '10.0.0.1')).toThrow(/ends before it starts/);
  });

  it('covers every range inside a /26 exactly with the fewest prefixes possible (exhaustive)', () => {
    const base = bytesToBigInt(parseIp('10.9.8.0')!);
    for (let first = 0; first < 64; first++) {
      for (let last = first; last < 64; last++) {
        const prefixes = rangeToPrefixes(formatIp(bigIntToBytes(base + BigInt(first), 4)), formatIp(bigIntToBytes(base + BigInt(last), 4)));
        expectExactCover(prefixes, base + BigInt(first), base + BigInt(last));
        expect(prefixes.length, `${first}-${last}`).toBe(fewestBlocks(first, last));
      }
    }
  });

  it('covers any IPv4 or IPv6 range exactly, with at most 2 × (bits − 1) prefixes', () => {
    const range = (octets: number) =>
      fc.tuple(fc.uint8Array({ minLength: octets, maxLength: octets }), fc.uint8Array({ minLength: octets, maxLength: octets })).map(([a, b]) => {
        const [x, y] = [bytesToBigInt(a), bytesToBigInt(b)];
        return x <= y ? ([x, y, octets] as const) : ([y, x, octets] as const);
      });
    fc.assert(
      fc.property(fc.oneof(range(4), range(16)), ([first, last, octets]) => {
        const prefixes = rangeToPrefixes(formatIp(bigIntToBytes(first, octets)), formatIp(bigIntToBytes(last, octets)));
        expectExactCover(prefixes, first, last);
        expect(prefixes.length).toBeLessThanOrEqual(Math.max(1, 2 * (octets * 8 - 1)));
      }),
      { numRuns: 300 },
    );
  });
});

describe('compareIp', () => {
  it('orders addresses numerically, IPv4 before IPv6, unparsable text last (status lists group instances in this order)', () => {
    const sorted = ['fd77::10', '10.150.0.10', 'peer-x', '10.150.0.4', 'fd77::2', '10.150.0.3'].sort(compareIp);
    expect(sorted).toEqual(['10.150.0.3', '10.150.0.4', '10.150.0.10', 'fd77::2', 'fd77::10', 'peer-x']);
  });
});
