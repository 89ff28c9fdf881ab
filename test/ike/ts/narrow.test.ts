/**
 * Narrowing of traffic selector sets, RFC 7296 §2.9, with RFC 4301 selector
 * semantics (protocol 0 = any, ANY ports include OPAQUE).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { narrow } from '../../../src/ike/ts/narrow.js';
import { type TsRange, bigIntToAddress, intersectRanges, rangeContains } from '../../../src/ike/ts/range.js';
import { covers, isSubset, removeRedundant, sameRanges, sameTraffic } from '../../../src/ike/ts/set.js';
import { show, ts } from './helpers.js';

describe('narrowing one proposal against one policy', () => {
  it('a proposed 10.0.0.0/16 is narrowed to the configured 10.0.1.0/24 (proposal is a superset)', () => {
    expect(show(narrow(ts('10.0.0.0/16'), ts('10.0.1.0/24')))).toEqual(['10.0.1.0/24']);
  });

  it('a proposed 10.0.1.0/24 inside the configured 10.0.0.0/16 is kept as proposed (proposal is a subset)', () => {
    expect(show(narrow(ts('10.0.1.0/24'), ts('10.0.0.0/16')))).toEqual(['10.0.1.0/24']);
  });

  it('partially overlapping ranges give only their overlap, 10.0.0.128-10.0.0.255', () => {
    expect(show(narrow(ts('10.0.0.0-10.0.0.255'), ts('10.0.0.128-10.0.1.77')))).toEqual(['10.0.0.128/25']);
    expect(show(narrow(ts('10.0.0.10-10.0.0.20'), ts('10.0.0.15-10.0.0.30')))).toEqual(['10.0.0.15-10.0.0.20']);
  });

  it('disjoint ranges narrow to nothing, which the responder answers with TS_UNACCEPTABLE', () => {
    expect(narrow(ts('10.0.0.0/24'), ts('10.0.1.0/24'))).toEqual([]);
  });

  it('IPv4 and IPv6 never overlap: a v6-only proposal against a v4-only policy is empty', () => {
    expect(narrow(ts('fd00::/16'), ts('0.0.0.0/0'))).toEqual([]);
  });

  it('mixed IPv4/IPv6 lists keep each family’s overlap, in the configured order', () => {
    expect(show(narrow(ts('0.0.0.0/0, ::/0'), ts('fd00:1::/32, 10.1.0.0/16')))).toEqual(['fd00:1::/32', '10.1.0.0/16']);
    expect(show(narrow(ts('10.0.0.0/8, fd00::/16'), ts('192.168.0.0/16, fd00:1::/32')))).toEqual(['fd00:1::/32']);
  });

  it('several configured subnets inside one proposed range are all kept, so one CHILD_SA carries them', () => {
    expect(show(narrow(ts('10.0.0.0/16'), ts('10.0.1.0/24, 10.0.3.0/24')))).toEqual(['10.0.1.0/24', '10.0.3.0/24']);
  });

  it('a range another result range contains is dropped (the triggering packet inside the policy)', () => {
    expect(show(narrow(ts('10.0.1.5[tcp/80], 10.0.0.0/16'), ts('10.0.1.0/24')))).toEqual(['10.0.1.0/24']);
  });
});

describe('protocols and ports', () => {
  it('port ranges overlap like addresses: tcp/1000-2000 and tcp/1500-3000 give tcp/1500-2000', () => {
    expect(show(narrow(ts('10.0.0.0/24[tcp/1000-2000]'), ts('10.0.0.0/24[tcp/1500-3000]')))).toEqual(['10.0.0.0/24[tcp/1500-2000]']);
  });

  it('disjoint port ranges select nothing', () => {
    expect(narrow(ts('10.0.0.0/24[tcp/1-100]'), ts('10.0.0.0/24[tcp/101-200]'))).toEqual([]);
  });

  it('protocol 0 (any) against tcp narrows to tcp, keeping the port restriction of either side', () => {
    expect(show(narrow(ts('10.0.0.0/24'), ts('10.0.0.0/24[tcp]')))).toEqual(['10.0.0.0/24[tcp]']);
    expect(show(narrow(ts('10.0.0.0/24[tcp]'), ts('10.0.0.0/24[any/443]')))).toEqual(['10.0.0.0/24[tcp/443]']);
  });

  it('tcp and udp do not overlap', () => {
    expect(narrow(ts('10.0.0.0/24[tcp]'), ts('10.0.0.0/24[udp]'))).toEqual([]);
  });

  it('ANY ports include OPAQUE, but a specific port range does not', () => {
    expect(show(narrow(ts('10.0.0.0/24[udp/opaque]'), ts('10.0.0.0/24[udp]')))).toEqual(['10.0.0.0/24[udp/opaque]']);
    expect(narrow(ts('10.0.0.0/24[udp/opaque]'), ts('10.0.0.0/24[udp/53]'))).toEqual([]);
    expect(show(narrow(ts('10.0.0.0/24[udp/opaque]'), ts('10.0.0.0/24[udp/opaque]')))).toEqual(['10.0.0.0/24[udp/opaque]']);
  });

  it('ICMP type/code "ports" narrow like ports: all echo requests ∩ type 8 code 0 is 8·256', () => {
    const r = narrow(ts('0.0.0.0/0[icmp/8]'), ts('10.0.0.0/8[icmp/2048]'));
    expect(r).toHaveLength(1);
    expect(r[0]).toMatchObject({ protocol: 1, startPort: 0x0800, endPort: 0x0800 });
  });
});

describe('set helpers', () => {
  it('a range split between two selectors is covered by them together, but not by either alone', () => {
    expect(covers(ts('10.0.0.0/25, 10.0.0.128/25'), ts('10.0.0.0/24')[0]!)).toBe(true);
    expect(covers(ts('10.0.0.0/25'), ts('10.0.0.0/24')[0]!)).toBe(false);
    expect(covers(ts('10.0.0.0/24[tcp], 10.0.0.0/24[udp]'), ts('10.0.0.0/24')[0]!)).toBe(false);
  });

  it('removeRedundant keeps the first of equal ranges and drops contained ones', () => {
    expect(show(removeRedundant(ts('10.0.0.5, 10.0.0.0/24, 10.0.0.0/24, fd00::1')))).toEqual(['10.0.0.0/24', 'fd00::1/128']);
  });

  it('sameTraffic looks through the split into ranges; sameRanges does not', () => {
    expect(sameTraffic(ts('10.0.0.0/25, 10.0.0.128/25'), ts('10.0.0.0/24'))).toBe(true);
    expect(sameRanges(ts('10.0.0.0/25, 10.0.0.128/25'), ts('10.0.0.0/24'))).toBe(false);
  });
});

// ---------------------------------------------------------------------------
// Properties. Addresses come from small spaces (10.0.0.0/26, fd00::/122) and
// ports from a few values near both ends, so that random ranges overlap.

const v4 = (n: number): Buffer => bigIntToAddress(0x0a000000n + BigInt(n), 4);
const v6 = (n: number): Buffer => bigIntToAddress((0xfd00n << 112n) | BigInt(n), 6);

const portRange = fc.oneof(
  fc.constant({ startPort: 0, endPort: 0xffff }),
  fc.constant({ startPort: 0xffff, endPort: 0 }),
  fc.tuple(fc.integer({ min: 0, max: 12 }), fc.integer({ min: 0, max: 12 })).map(([a, b]) => ({ startPort: Math.min(a, b), endPort: Math.max(a, b) })),
  fc.tuple(fc.integer({ min: 65530, max: 65535 }), fc.integer({ min: 65530, max: 65535 })).map(([a, b]) => ({
    startPort: Math.min(a, b),
    endPort: Math.max(a, b),
  })),
);

const range: fc.Arbitrary<TsRange> = fc
  .record({
    family: fc.constantFrom(4, 4, 6),
    a: fc.integer({ min: 0, max: 63 }),
    b: fc.integer({ min: 0, max: 63 }),
    protocol: fc.constantFrom(0, 0, 1, 6, 17),
    ports: portRange,
  })
  .map(({ family, a, b, protocol, ports }) => {
    const addr = family === 4 ? v4 : v6;
    return { protocol, startAddress: addr(Math.min(a, b)), endAddress: addr(Math.max(a, b)), ...ports };
  });

const set = fc.array(range, { maxLength: 4 });

/** One packet's selector: a single address, a specific protocol, one port or OPAQUE. */
const packet: fc.Arbitrary<TsRange> = fc
  .record({
    family: fc.constantFrom(4, 6),
    a: fc.integer({ min: 0, max: 63 }),
    protocol: fc.constantFrom(1, 6, 17, 50),
    port: fc.oneof(fc.integer({ min: 0, max: 12 }), fc.integer({ min: 65530, max: 65535 }), fc.constant(-1)),
  })
  .map(({ family, a, protocol, port }) => {
    const addr = (family === 4 ? v4 : v6)(a);
    const ports = port === -1 ? { startPort: 0xffff, endPort: 0 } : { startPort: port, endPort: port };
    return { protocol, startAddress: addr, endAddress: addr, ...ports };
  });

const selects = (s: readonly TsRange[], p: TsRange): boolean => s.some((r) => rangeContains(r, p));

describe('narrowing properties (fast-check)', () => {
  it('narrow(a, b) is within a and within b', () => {
    fc.assert(
      fc.property(set, set, (a, b) => {
        const n = narrow(a, b);
        expect(isSubset(n, a)).toBe(true);
        expect(isSubset(n, b)).toBe(true);
      }),
    );
  });

  it('narrow(a, b) selects exactly the packets both a and b select', () => {
    fc.assert(
      fc.property(set, set, fc.array(packet, { minLength: 1, maxLength: 20 }), (a, b, packets) => {
        const n = narrow(a, b);
        for (const p of packets) expect(selects(n, p)).toBe(selects(a, p) && selects(b, p));
      }),
    );
  });

  it('narrow is commutative as a set of ranges', () => {
    fc.assert(
      fc.property(set, set, (a, b) => {
        expect(sameRanges(narrow(a, b), narrow(b, a))).toBe(true);
      }),
    );
  });

  it('narrowing twice changes nothing', () => {
    fc.assert(
      fc.property(set, set, (a, b) => {
        const once = narrow(a, b);
        expect(sameRanges(narrow(once, b), once)).toBe(true);
        expect(sameRanges(narrow(once, a), once)).toBe(true);
        expect(sameRanges(narrow(once, once), once)).toBe(true);
      }),
    );
  });

  it('the result has no range inside another one', () => {
    fc.assert(
      fc.property(set, set, (a, b) => {
        const n = narrow(a, b);
        n.forEach((x, i) =>
          n.forEach((y, j) => {
            if (i !== j) expect(rangeContains(x, y)).toBe(false);
          }),
        );
      }),
    );
  });

  it('covers(s, r) holds only when every packet of r is selected by s', () => {
    fc.assert(
      fc.property(set, range, fc.array(packet, { minLength: 1, maxLength: 20 }), (s, r, packets) => {
        if (!covers(s, r)) return;
        for (const p of packets) if (rangeContains(r, p)) expect(selects(s, p)).toBe(true);
      }),
    );
  });

  it('intersectRanges is symmetric and contained in both', () => {
    fc.assert(
      fc.property(range, range, (x, y) => {
        const i = intersectRanges(x, y);
        const j = intersectRanges(y, x);
        expect(i === undefined).toBe(j === undefined);
        if (i === undefined || j === undefined) return;
        expect(sameRanges([i], [j])).toBe(true);
        expect(rangeContains(x, i) && rangeContains(y, i)).toBe(true);
      }),
    );
  });
});
