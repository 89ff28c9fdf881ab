/**
 * Ranges ⇄ codec TS payload selectors (RFC 7296 §3.13.1) and ⇄ the
 * datapath's selectors (src/esp/api.ts), and the transport mode check.
 */
import { describe, expect, it } from 'vitest';
import { encodeMessage, decodeMessage, ExchangeType, PayloadType } from '../../../src/ike/codec/index.js';
import { tsPayload } from '../../../src/ike/codec/build.js';
import { TsType, type TsPayload } from '../../../src/ike/codec/payloads/ts.js';
import { fromEspSelector, toEspSelectors } from '../../../src/ike/ts/esp.js';
import { rangesFromPayload, rangesToPayload } from '../../../src/ike/ts/payload.js';
import { sameRanges } from '../../../src/ike/ts/set.js';
import { transportModeAllowed } from '../../../src/ike/ts/transport.js';
import { show, ts } from './helpers.js';

describe('TS payload selectors', () => {
  it('ranges survive encoding into a TSi payload and decoding back, v4 and v6 mixed', () => {
    const set = ts('10.0.1.0/24[tcp/443], fd00::/64, 10.0.0.1-10.0.0.9[udp/opaque]');
    const selectors = rangesToPayload(set);
    expect(selectors.map((s) => s.tsType)).toEqual([TsType.TS_IPV4_ADDR_RANGE, TsType.TS_IPV6_ADDR_RANGE, TsType.TS_IPV4_ADDR_RANGE]);

    const header = {
      spiI: Buffer.alloc(8, 1),
      spiR: Buffer.alloc(8, 2),
      exchangeType: ExchangeType.CREATE_CHILD_SA,
      initiator: true,
      response: false,
      higherVersion: false,
      messageId: 3,
    };
    const wire = encodeMessage({ header, payloads: [tsPayload(PayloadType.TSi, selectors)] });
    const decoded = decodeMessage(wire).payloads.find((p): p is TsPayload => p.type === PayloadType.TSi);
    const back = rangesFromPayload(decoded!.selectors);
    expect(back.ignored).toEqual([]);
    expect(sameRanges(back.ranges, set)).toBe(true);
    expect(show(back.ranges)).toEqual(show(set));
  });
});

describe('datapath selectors', () => {
  it('toEspSelectors gives the text addresses the datapath installs, and fromEspSelector reads them back', () => {
    const esp = toEspSelectors(ts('10.0.1.0/24[tcp/443], fd00::/64'));
    expect(esp).toEqual([
      { protocol: 6, startAddress: '10.0.1.0', endAddress: '10.0.1.255', startPort: 443, endPort: 443 },
      { protocol: 0, startAddress: 'fd00::', endAddress: 'fd00::ffff:ffff:ffff:ffff', startPort: 0, endPort: 65535 },
    ]);
    expect(show(esp.map(fromEspSelector))).toEqual(['10.0.1.0/24[tcp/443]', 'fd00::/64']);
  });

  it('fromEspSelector refuses malformed or backwards selectors', () => {
    expect(() => fromEspSelector({ protocol: 0, startAddress: '10.0.0.300', endAddress: '10.0.0.1', startPort: 0, endPort: 65535 })).toThrow(TypeError);
    expect(() => fromEspSelector({ protocol: 0, startAddress: '10.0.0.9', endAddress: '10.0.0.1', startPort: 0, endPort: 65535 })).toThrow(/ends before/);
    expect(() => fromEspSelector({ protocol: 0, startAddress: '10.0.0.1', endAddress: 'fd00::1', startPort: 0, endPort: 65535 })).toThrow(/IPv4 or both IPv6/);
  });
});

describe('transport mode', () => {
  const local = '192.0.2.10';
  const remote = '198.51.100.1';

  it('selectors naming exactly the two IKE addresses allow transport mode, with or without port restrictions', () => {
    expect(transportModeAllowed({ local: ts(`${local}`), remote: ts(`${remote}[tcp/22]`) }, local, remote)).toEqual({ allowed: true });
    expect(transportModeAllowed({ local: ts('dynamic', local), remote: ts('dynamic', remote) }, local, remote).allowed).toBe(true);
  });

  it('a subnet on either side means tunnel mode', () => {
    const r = transportModeAllowed({ local: ts(`${local}`), remote: ts('198.51.100.0/24') }, local, remote);
    expect(r).toEqual({ allowed: false, reason: "remote selector 198.51.100.0/24 is not the peer's address 198.51.100.1" });
    expect(transportModeAllowed({ local: ts('192.0.2.0/24'), remote: ts(remote) }, local, remote).allowed).toBe(false);
  });

  it('a single host other than the IKE endpoint is refused', () => {
    const r = transportModeAllowed({ local: ts('192.0.2.11'), remote: ts(remote) }, local, remote);
    expect(r).toEqual({ allowed: false, reason: 'local selector 192.0.2.11/32 is not our address 192.0.2.10' });
  });

  it('with the peer behind NAT its private address is accepted, but still only one host', () => {
    expect(transportModeAllowed({ local: ts(local), remote: ts('10.1.2.3') }, local, remote, { remoteBehindNat: true }).allowed).toBe(true);
    expect(transportModeAllowed({ local: ts(local), remote: ts('10.1.2.3, 10.1.2.4') }, local, remote, { remoteBehindNat: true }).allowed).toBe(false);
  });

  it('no selectors at all do not allow transport mode', () => {
    expect(transportModeAllowed({ local: [], remote: ts(remote) }, local, remote).allowed).toBe(false);
  });
});
