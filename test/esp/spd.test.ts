/**
 * The SPD (src/esp/spd.ts): selector compilation and matching for IPv4 and
 * IPv6 (RFC 4301 §4.4.1), the FlowKey read from packet octets (ports,
 * ICMP type/code, OPAQUE ports of non-initial fragments, extension headers,
 * malformed packets), direction handling, and the ordered policy lists
 * (priority, insertion-order ties, replace by (reqid, direction)); plus a
 * fast-check comparison of FlowKey.matches with a direct model of the
 * selector semantics.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { TrafficSelector } from '../../src/esp/api.js';
import { compileSelector, FlowKey, SecurityPolicyDatabase, selectorMatches } from '../../src/esp/spd.js';
import { parseIp } from '../../src/util/ip.js';
import { ANY4, ANY6, icmp, ipv4, ipv6, policySpec, tcp, ts, udp, type L4 } from './support.js';

function flowOf(pkt: Buffer, length?: number): FlowKey {
  const f = new FlowKey();
  expect(f.read(pkt, length)).toBe(true);
  return f;
}

/** Whether the packet from src to dst (outbound direction: local = src) is inside local/remote. */
function outMatch(local: TrafficSelector[], remote: TrafficSelector[], pkt: Buffer): boolean {
  return flowOf(pkt).matches(local.map(compileSelector), remote.map(compileSelector), 'out');
}

const v4 = (src: string, dst: string, l4: L4, extra: Partial<Parameters<typeof ipv4>[0]> = {}) => ipv4({ src, dst, ...extra }, l4);
const v6 = (src: string, dst: string, l4: L4, extra: Partial<Parameters<typeof ipv6>[0]> = {}) => ipv6({ src, dst, ...extra }, l4);

// ---------------------------------------------------------------------------

describe('compileSelector', () => {
  it('compiles IPv4 and IPv6 ranges to octets of their family; only 0..65535 is ANY port', () => {
    const a = compileSelector(ts('10.0.0.0', '10.0.0.255', 6, 80, 80));
    expect(a.family).toBe(4);
    expect([...a.start]).toEqual([10, 0, 0, 0]);
    expect([...a.end]).toEqual([10, 0, 0, 255]);
    expect(a.anyPort).toBe(false);
    const b = compileSelector(ts('fd00::', 'fd00::ff'));
    expect(b.family).toBe(6);
    expect(b.start.length).toBe(16);
    expect(b.anyPort).toBe(true);
    expect(compileSelector(ts('10.0.0.1', '10.0.0.1', 0, 1, 0xffff)).anyPort).toBe(false);
    expect(compileSelector(ts('10.0.0.1', '10.0.0.1', 0, 0, 0xfffe)).anyPort).toBe(false);
  });

  it('throws on unparsable addresses and on a range mixing IPv4 and IPv6', () => {
    expect(() => compileSelector(ts('10.0.0.256'))).toThrow(/bad selector/);
    expect(() => compileSelector(ts('10.0.0.1', 'fd00::1'))).toThrow(/bad selector/);
    expect(() => compileSelector(ts('host.example'))).toThrow(/bad selector/);
  });
});

describe('selectorMatches', () => {
  const sel = compileSelector(ts('10.0.0.10', '10.0.0.20', 17, 1000, 2000));
  const at = (addr: string) => parseIp(addr)!;

  it('address ranges are inclusive at both ends', () => {
    expect(selectorMatches(sel, 4, 17, at('10.0.0.10'), 0, 1500)).toBe(true);
    expect(selectorMatches(sel, 4, 17, at('10.0.0.20'), 0, 1500)).toBe(true);
    expect(selectorMatches(sel, 4, 17, at('10.0.0.9'), 0, 1500)).toBe(false);
    expect(selectorMatches(sel, 4, 17, at('10.0.0.21'), 0, 1500)).toBe(false);
  });

  it('an OPAQUE port selector (start 65535 > end 0, RFC 7296 §3.13.1) matches only packets whose ports are OPAQUE', () => {
    const opaque = compileSelector(ts('10.0.0.10', '10.0.0.20', 17, 65535, 0));
    expect(selectorMatches(opaque, 4, 17, at('10.0.0.10'), 0, -1)).toBe(true);
    expect(selectorMatches(opaque, 4, 17, at('10.0.0.10'), 0, 0)).toBe(false);
    expect(selectorMatches(opaque, 4, 17, at('10.0.0.10'), 0, 65535)).toBe(false);
  });

  it('compares the address at the given offset, octet by octet (IPv6, carry across octets)', () => {
    const s6 = compileSelector(ts('2001:db8::ff', '2001:db8::1:0'));
    const buf = Buffer.concat([Buffer.alloc(3, 0xaa), at('2001:db8::100')]);
    expect(selectorMatches(s6, 6, 6, buf, 3, 80)).toBe(true);
    expect(selectorMatches(s6, 6, 6, at('2001:db8::fe'), 0, 80)).toBe(false);
    expect(selectorMatches(s6, 6, 6, at('2001:db8::1:1'), 0, 80)).toBe(false);
    expect(selectorMatches(s6, 6, 6, at('2001:db8::1:0'), 0, 80)).toBe(true);
  });

  it('port ranges are inclusive; a narrower range never matches an OPAQUE port (-1)', () => {
    expect(selectorMatches(sel, 4, 17, at('10.0.0.15'), 0, 1000)).toBe(true);
    expect(selectorMatches(sel, 4, 17, at('10.0.0.15'), 0, 2000)).toBe(true);
    expect(selectorMatches(sel, 4, 17, at('10.0.0.15'), 0, 999)).toBe(false);
    expect(selectorMatches(sel, 4, 17, at('10.0.0.15'), 0, 2001)).toBe(false);
    expect(selectorMatches(sel, 4, 17, at('10.0.0.15'), 0, -1)).toBe(false);
    const any = compileSelector(ts('10.0.0.0', '10.0.0.255', 17));
    expect(selectorMatches(any, 4, 17, at('10.0.0.15'), 0, -1)).toBe(true);
  });

  it('protocol 0 is any protocol; a specific protocol must be equal; the family must be equal', () => {
    expect(selectorMatches(sel, 4, 6, at('10.0.0.15'), 0, 1500)).toBe(false);
    const anyProto = compileSelector(ts('10.0.0.0', '10.0.0.255'));
    for (const p of [0, 1, 6, 17, 47, 255]) expect(selectorMatches(anyProto, 4, p, at('10.0.0.15'), 0, -1)).toBe(true);
    expect(selectorMatches(anyProto, 6, 6, at('::a00:f'), 0, 80)).toBe(false);
  });
});

// ---------------------------------------------------------------------------

describe('FlowKey.read', () => {
  it('IPv4 TCP / UDP: family, address offsets, protocol and both ports', () => {
    const f = flowOf(v4('192.0.2.1', '198.51.100.2', tcp(40000, 443)));
    expect(f).toMatchObject({ family: 4, srcOff: 12, dstOff: 16, protocol: 6, srcPort: 40000, dstPort: 443 });
    const g = flowOf(v4('192.0.2.1', '198.51.100.2', udp(53, 5353)));
    expect(g).toMatchObject({ protocol: 17, srcPort: 53, dstPort: 5353 });
  });

  it('IPv4 with options: the ports are read after IHL × 4', () => {
    const f = flowOf(v4('192.0.2.1', '198.51.100.2', udp(1111, 2222), { options: Buffer.from([1, 1, 1, 0, 7, 3, 4, 0]) }));
    expect(f).toMatchObject({ srcPort: 1111, dstPort: 2222 });
  });

  it('ICMP and ICMPv6: type << 8 | code is the "port" on both sides (RFC 7296 §3.13.1)', () => {
    const f = flowOf(v4('192.0.2.1', '198.51.100.2', icmp(8, 0)));
    expect(f).toMatchObject({ protocol: 1, srcPort: 0x0800, dstPort: 0x0800 });
    const g = flowOf(v6('2001:db8::1', '2001:db8::2', icmp(1, 4, undefined, true)));
    expect(g).toMatchObject({ family: 6, srcOff: 8, dstOff: 24, protocol: 58, srcPort: 0x0104, dstPort: 0x0104 });
  });

  it('a protocol without ports (GRE, ESP…) has OPAQUE ports (-1)', () => {
    for (const p of [47, 50, 89]) {
      const f = flowOf(v4('192.0.2.1', '198.51.100.2', { protocol: p, octets: Buffer.alloc(12, 9) }));
      expect(f).toMatchObject({ protocol: p, srcPort: -1, dstPort: -1 });
    }
  });

  it('a TCP/UDP header cut short by the packet length leaves the ports OPAQUE', () => {
    const f = flowOf(v4('192.0.2.1', '198.51.100.2', { protocol: 17, octets: Buffer.from([0x12, 0x34, 0x56]) }, { raw: true }));
    expect(f).toMatchObject({ protocol: 17, srcPort: -1, dstPort: -1 });
  });

  it('IPv4 non-initial fragment: OPAQUE ports even for TCP; the first fragment (MF, offset 0) has its ports', () => {
    const later = flowOf(v4('192.0.2.1', '198.51.100.2', tcp(1, 2), { flags: 0x2000 | 185, raw: true }));
    expect(later).toMatchObject({ protocol: 6, srcPort: -1, dstPort: -1 });
    const first = flowOf(v4('192.0.2.1', '198.51.100.2', tcp(1, 2), { flags: 0x2000, raw: true }));
    expect(first).toMatchObject({ srcPort: 1, dstPort: 2 });
  });

  it('IPv6: steps over hop-by-hop, destination options, routing and AH headers to the upper layer', () => {
    const hbh = { type: 0, octets: Buffer.alloc(8) };
    const dst = { type: 60, octets: Buffer.from([0, 1, 1, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]) };
    const rt = { type: 43, octets: Buffer.alloc(8) };
    const ah = { type: 51, octets: Buffer.from([0, 4, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]) };
    const f = flowOf(v6('2001:db8::1', '2001:db8::2', udp(7, 9), { exts: [hbh, dst, rt, ah] }));
    expect(f).toMatchObject({ family: 6, protocol: 17, srcPort: 7, dstPort: 9 });
  });

  it('IPv6 fragment header: offset 0 keeps the ports, a non-zero offset makes them OPAQUE', () => {
    const frag = (offset: number) => ({ type: 44, octets: Buffer.from([0, 0, offset >> 8, offset & 0xff, 0, 0, 0, 1]) });
    expect(flowOf(v6('2001:db8::1', '2001:db8::2', tcp(5, 6), { exts: [frag(0x0001)], raw: true }))).toMatchObject({ srcPort: 5, dstPort: 6 });
    expect(flowOf(v6('2001:db8::1', '2001:db8::2', tcp(5, 6), { exts: [frag(0x00a8)], raw: true }))).toMatchObject({ protocol: 6, srcPort: -1, dstPort: -1 });
  });

  it('reads only the first `length` octets: a packet in a bigger buffer is fine, one cut short is not', () => {
    const p = v4('192.0.2.1', '198.51.100.2', udp(1, 2));
    const big = Buffer.concat([p, Buffer.alloc(100, 0xff)]);
    expect(flowOf(big, p.length)).toMatchObject({ srcPort: 1, dstPort: 2 });
    expect(new FlowKey().read(big, p.length - 1)).toBe(false);
  });

  it('malformed packets give false', () => {
    const good4 = v4('192.0.2.1', '198.51.100.2', udp(1, 2));
    const good6 = v6('2001:db8::1', '2001:db8::2', udp(1, 2));
    const mutate = (p: Buffer, f: (b: Buffer) => void) => {
      const c = Buffer.from(p);
      f(c);
      return c;
    };
    const bad: [string, Buffer][] = [
      ['empty', Buffer.alloc(0)],
      ['version 5', mutate(good4, (b) => (b[0] = 0x55))],
      ['version 0', Buffer.alloc(40)],
      ['IPv4 shorter than 20', good4.subarray(0, 19)],
      ['IPv4 IHL < 5', mutate(good4, (b) => (b[0] = 0x44))],
      ['IPv4 total length < IHL', mutate(good4, (b) => b.writeUInt16BE(19, 2))],
      ['IPv4 total length beyond the buffer', mutate(good4, (b) => b.writeUInt16BE(b.length + 1, 2))],
      ['IPv4 IHL beyond the total length', mutate(good4, (b) => (b[0] = 0x4f))],
      ['IPv6 shorter than 40', good6.subarray(0, 39)],
      ['IPv6 payload length beyond the buffer', mutate(good6, (b) => b.writeUInt16BE(b.length - 39, 4))],
      ['IPv6 extension header beyond the packet', v6('2001:db8::1', '2001:db8::2', { protocol: 0, octets: Buffer.from([17, 0, 0, 0]) }, { raw: true })],
      [
        'IPv6 extension header length beyond the packet',
        v6('2001:db8::1', '2001:db8::2', udp(1, 2), { exts: [{ type: 0, octets: Buffer.from([0, 9, 0, 0, 0, 0, 0, 0]) }] }),
      ],
    ];
    for (const [what, p] of bad) expect(new FlowKey().read(p), what).toBe(false);
  });
});

describe('FlowKey.matches', () => {
  const local = [ts('10.1.0.0', '10.1.255.255')];
  const remote = [ts('10.2.0.0', '10.2.255.255', 6, 80, 80)];

  it('outbound matches local against the source and remote against the destination; inbound the other way round', () => {
    const out = flowOf(v4('10.1.0.5', '10.2.0.7', tcp(33333, 80)));
    const l = local.map(compileSelector);
    const r = remote.map(compileSelector);
    expect(out.matches(l, r, 'out')).toBe(true);
    expect(out.matches(l, r, 'in')).toBe(false);
    const back = flowOf(v4('10.2.0.7', '10.1.0.5', tcp(80, 33333)));
    expect(back.matches(l, r, 'in')).toBe(true);
    expect(back.matches(l, r, 'out')).toBe(false);
  });

  it('any one of several selectors per side suffices; both sides must match', () => {
    const l = [ts('10.9.0.1'), ts('10.1.0.5')];
    expect(outMatch(l, remote, v4('10.1.0.5', '10.2.0.7', tcp(1, 80)))).toBe(true);
    expect(outMatch(l, remote, v4('10.1.0.6', '10.2.0.7', tcp(1, 80)))).toBe(false);
    expect(outMatch(l, remote, v4('10.1.0.5', '10.2.0.7', tcp(1, 81)))).toBe(false);
    expect(outMatch([], remote, v4('10.1.0.5', '10.2.0.7', tcp(1, 80)))).toBe(false);
  });

  it('IPv4 selectors never match IPv6 packets and vice versa', () => {
    expect(outMatch([ANY4], [ANY4], v6('2001:db8::1', '2001:db8::2', udp(1, 2)))).toBe(false);
    expect(outMatch([ANY6], [ANY6], v4('192.0.2.1', '192.0.2.2', udp(1, 2)))).toBe(false);
    expect(outMatch([ANY6], [ANY6], v6('2001:db8::1', '2001:db8::2', udp(1, 2)))).toBe(true);
  });

  it('a non-initial fragment matches only selectors with ANY port (RFC 4301 §4.4.1.3 OPAQUE)', () => {
    const frag = v4('10.1.0.5', '10.2.0.7', tcp(33333, 80), { flags: 100, raw: true });
    expect(outMatch(local, remote, frag)).toBe(false);
    expect(outMatch(local, [ts('10.2.0.0', '10.2.255.255', 6)], frag)).toBe(true);
    const frag6 = v6('fd01::5', 'fd02::7', udp(1, 53), { exts: [{ type: 44, octets: Buffer.from([0, 0, 0, 8, 0, 0, 0, 1]) }], raw: true });
    expect(outMatch([ts('fd01::', 'fd01::ffff')], [ts('fd02::', 'fd02::ffff', 17, 53, 53)], frag6)).toBe(false);
    expect(outMatch([ts('fd01::', 'fd01::ffff')], [ts('fd02::', 'fd02::ffff', 17)], frag6)).toBe(true);
  });

  it('ICMP type/code ranges select messages: echo request (8/0) but not echo reply (0/0)', () => {
    const echoOnly = [ts('10.2.0.0', '10.2.255.255', 1, 0x0800, 0x08ff)];
    expect(outMatch(local, echoOnly, v4('10.1.0.5', '10.2.0.7', icmp(8, 0)))).toBe(true);
    expect(outMatch(local, echoOnly, v4('10.1.0.5', '10.2.0.7', icmp(0, 0)))).toBe(false);
    // the type/code is on both sides, so a local-side range works just as well
    expect(outMatch([ts('10.1.0.5', '10.1.0.5', 1, 0x0800, 0x0800)], [ANY4], v4('10.1.0.5', '10.2.0.7', icmp(8, 0)))).toBe(true);
    const v6echo = [ts('fd02::', 'fd02::ffff', 58, 0x8000, 0x8000)];
    expect(outMatch([ANY6], v6echo, v6('fd01::5', 'fd02::7', icmp(128, 0, undefined, true)))).toBe(true);
    expect(outMatch([ANY6], v6echo, v6('fd01::5', 'fd02::7', icmp(129, 0, undefined, true)))).toBe(false);
  });

  it('agrees with a direct model of the selector semantics (fast-check)', () => {
    const n = (a: Uint8Array) => a.reduce((x, b) => x * 256 + b, 0);
    const addr4 = fc.uint8Array({ minLength: 4, maxLength: 4 }).map((a) => [...a].join('.'));
    const port = fc.integer({ min: 0, max: 0xffff });
    const selArb = fc.record({
      a: addr4,
      b: addr4,
      protocol: fc.constantFrom(0, 1, 6, 17),
      p: port,
      q: port,
      any: fc.boolean(),
    });
    const pktArb = fc.record({ src: addr4, dst: addr4, protocol: fc.constantFrom(1, 6, 17, 47), sp: port, dp: port, frag: fc.boolean() });
    fc.assert(
      fc.property(selArb, selArb, pktArb, (ls, rs, pk) => {
        const mk = (s: typeof ls): TrafficSelector => {
          const [lo, hi] = n(parseIp(s.a)!) <= n(parseIp(s.b)!) ? [s.a, s.b] : [s.b, s.a];
          return s.any ? ts(lo, hi, s.protocol) : ts(lo, hi, s.protocol, Math.min(s.p, s.q), Math.max(s.p, s.q));
        };
        const L = mk(ls);
        const R = mk(rs);
        const l4: L4 =
          pk.protocol === 1
            ? icmp(pk.sp >> 8, pk.sp & 0xff)
            : pk.protocol === 47
              ? { protocol: 47, octets: Buffer.alloc(8) }
              : pk.protocol === 6
                ? tcp(pk.sp, pk.dp)
                : udp(pk.sp, pk.dp);
        const pkt = v4(pk.src, pk.dst, l4, { flags: pk.frag ? 3 : 0, raw: true });
        const opaque = pk.frag || pk.protocol === 47;
        const srcPort = opaque ? -1 : pk.sp;
        const dstPort = opaque ? -1 : pk.protocol === 1 ? pk.sp : pk.dp;
        const model = (s: TrafficSelector, address: string, p: number) =>
          (s.protocol === 0 || s.protocol === pk.protocol) &&
          n(parseIp(s.startAddress)!) <= n(parseIp(address)!) &&
          n(parseIp(address)!) <= n(parseIp(s.endAddress)!) &&
          ((s.startPort === 0 && s.endPort === 0xffff) || (p >= 0 && s.startPort <= p && p <= s.endPort));
        expect(outMatch([L], [R], pkt)).toBe(model(L, pk.src, srcPort) && model(R, pk.dst, dstPort));
      }),
      { numRuns: 500 },
    );
  });
});

// ---------------------------------------------------------------------------

describe('SecurityPolicyDatabase', () => {
  const pkt = v4('10.1.0.5', '10.2.0.7', tcp(40000, 80));
  const flow = () => flowOf(pkt);
  const wide = { local: [ts('10.1.0.0', '10.1.255.255')], remote: [ts('10.2.0.0', '10.2.255.255')] };

  it('lookup returns the matching policy with the lowest priority value', () => {
    const spd = new SecurityPolicyDatabase();
    spd.add(policySpec({ reqid: 1, priority: 300, ...wide }));
    spd.add(policySpec({ reqid: 2, priority: 100, ...wide, action: 'bypass' }));
    spd.add(policySpec({ reqid: 3, priority: 200, ...wide, action: 'discard' }));
    spd.add(policySpec({ reqid: 4, priority: 50, local: [ts('10.1.0.0', '10.1.255.255')], remote: [ts('10.3.0.0', '10.3.255.255')] }));
    expect(spd.lookup(flow(), 'out')?.spec.reqid).toBe(2);
    expect(spd.list('out').map((e) => e.spec.reqid)).toEqual([4, 2, 3, 1]);
  });

  it('equal priorities keep insertion order', () => {
    const spd = new SecurityPolicyDatabase();
    for (const reqid of [5, 3, 9, 1]) spd.add(policySpec({ reqid, priority: 10, ...wide }));
    expect(spd.lookup(flow(), 'out')?.spec.reqid).toBe(5);
    expect(spd.list('out').map((e) => e.spec.reqid)).toEqual([5, 3, 9, 1]);
  });

  it('add replaces the policy of the same (reqid, direction) and leaves the other direction alone', () => {
    const spd = new SecurityPolicyDatabase();
    spd.add(policySpec({ reqid: 1, priority: 10, ...wide }));
    spd.add(policySpec({ reqid: 1, direction: 'in', priority: 10, ...wide }));
    spd.add(policySpec({ reqid: 2, priority: 10, ...wide, action: 'bypass' }));
    expect(spd.lookup(flow(), 'out')?.spec.reqid).toBe(1);
    // reqid 1 now selects something else: the packet falls to reqid 2
    spd.add(policySpec({ reqid: 1, priority: 10, local: [ts('10.1.0.0', '10.1.255.255')], remote: [ts('10.4.0.0', '10.4.255.255')] }));
    expect(spd.list('out').map((e) => e.spec.reqid)).toEqual([2, 1]);
    expect(spd.lookup(flow(), 'out')?.spec.reqid).toBe(2);
    expect(spd.get(1, 'out')?.remote[0]?.start).toEqual(parseIp('10.4.0.0'));
    expect(spd.get(1, 'in')?.remote[0]?.start).toEqual(parseIp('10.2.0.0'));
    expect(spd.list()).toHaveLength(3);
  });

  it('a policy with unusable selectors is refused and the installed one of its reqid stays', () => {
    const spd = new SecurityPolicyDatabase();
    spd.add(policySpec({ reqid: 1, ...wide }));
    expect(() => spd.add(policySpec({ reqid: 1, local: [ts('10.1.0.0', 'fd00::1')], remote: wide.remote }))).toThrow();
    expect(spd.lookup(flow(), 'out')?.spec.reqid).toBe(1);
  });

  it('remove and get work per direction; lookup of a direction sees only its own policies', () => {
    const spd = new SecurityPolicyDatabase();
    spd.add(policySpec({ reqid: 1, direction: 'in', ...wide }));
    expect(spd.lookup(flow(), 'out')).toBeUndefined();
    // inbound: local is matched against the destination, so this packet (to 10.2.x) is not inside
    expect(spd.lookup(flow(), 'in')).toBeUndefined();
    expect(spd.lookup(flowOf(v4('10.2.0.7', '10.1.0.5', tcp(80, 40000))), 'in')?.spec.reqid).toBe(1);
    expect(spd.remove(1, 'out')).toBeUndefined();
    expect(spd.remove(1, 'in')?.spec.reqid).toBe(1);
    expect(spd.get(1, 'in')).toBeUndefined();
    expect(spd.list()).toHaveLength(0);
  });
});
