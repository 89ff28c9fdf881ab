/**
 * The responder's TSi/TSr decision (RFC 7296 §2.9): remote_ts against TSi,
 * local_ts against TSr, `dynamic` resolved to the IKE addresses,
 * TS_UNACCEPTABLE when a side does not overlap.
 */
import { describe, expect, it } from 'vitest';
import { addressRange, prefixSelector } from '../../../src/ike/codec/build.js';
import type { TrafficSelector as PayloadSelector } from '../../../src/ike/codec/payloads/ts.js';
import { type ResponderTs, type ResponderTsInput, type TsUnacceptable, selectResponderTs } from '../../../src/ike/ts/responder.js';
import { cfg, show } from './helpers.js';

const INITIATOR = '192.0.2.10';
const RESPONDER = '198.51.100.1';

function respond(
  tsi: PayloadSelector[],
  tsr: PayloadSelector[],
  config: { local: string; remote: string },
  addrs: Partial<Pick<ResponderTsInput, 'localAddr' | 'remoteAddr'>> = {},
): ResponderTs | TsUnacceptable {
  return selectResponderTs({
    tsi,
    tsr,
    localConfig: cfg(config.local),
    remoteConfig: cfg(config.remote),
    localAddr: addrs.localAddr ?? RESPONDER,
    remoteAddr: addrs.remoteAddr ?? INITIATOR,
  });
}

function accepted(r: ResponderTs | TsUnacceptable): ResponderTs {
  if ('error' in r) throw new Error(`unexpected ${r.error}: ${r.reason}`);
  return r;
}

function refused(r: ResponderTs | TsUnacceptable): string {
  if (!('error' in r)) throw new Error(`accepted TSi ${show(r.tsi).join(', ')} TSr ${show(r.tsr).join(', ')}`);
  expect(r.error).toBe('TS_UNACCEPTABLE');
  return r.reason;
}

describe('responder', () => {
  it('a responder narrows 10.0.0.0/16 to the configured 10.0.1.0/24 and answers TS_UNACCEPTABLE when nothing overlaps', () => {
    const site = { local: '10.0.1.0/24', remote: '10.8.0.0/16' };
    const ok = accepted(respond([prefixSelector('10.8.0.0/16')], [prefixSelector('10.0.0.0/16')], site));
    expect(show(ok.tsi)).toEqual(['10.8.0.0/16']);
    expect(show(ok.tsr)).toEqual(['10.0.1.0/24']);
    expect(ok.narrowed).toBe(true);

    const reason = refused(respond([prefixSelector('10.8.0.0/16')], [prefixSelector('10.0.2.0/24')], site));
    expect(reason).toBe('TSr 10.0.2.0/24 does not overlap local_ts 10.0.1.0/24');
  });

  it('TSi is matched against remote_ts and TSr against local_ts, not the other way round', () => {
    const config = { local: '10.0.1.0/24', remote: '10.8.0.0/16' };
    const reason = refused(respond([prefixSelector('10.0.1.0/24')], [prefixSelector('10.8.0.0/16')], config));
    expect(reason).toMatch(/^TSi 10\.0\.1\.0\/24 does not overlap remote_ts 10\.8\.0\.0\/16$/);
  });

  it('a proposal inside the policy is answered unchanged and reported as not narrowed', () => {
    const ok = accepted(respond([prefixSelector('10.8.3.0/24')], [prefixSelector('10.0.1.0/25')], { local: '10.0.0.0/16', remote: '10.8.0.0/16' }));
    expect(show(ok.tsi)).toEqual(['10.8.3.0/24']);
    expect(show(ok.tsr)).toEqual(['10.0.1.0/25']);
    expect(ok.narrowed).toBe(false);
  });

  it('dynamic on both sides (host-to-host) narrows 0.0.0.0/0 proposals to the two IKE addresses', () => {
    const ok = accepted(respond([prefixSelector('0.0.0.0/0')], [prefixSelector('0.0.0.0/0')], { local: 'dynamic', remote: 'dynamic' }));
    expect(show(ok.tsi)).toEqual([`${INITIATOR}/32`]);
    expect(show(ok.tsr)).toEqual([`${RESPONDER}/32`]);
  });

  it('remote dynamic refuses a TSi that does not contain the initiator’s address', () => {
    const reason = refused(respond([prefixSelector('203.0.113.0/24')], [prefixSelector(`${RESPONDER}/32`)], { local: 'dynamic', remote: 'dynamic' }));
    expect(reason).toContain(`remote_ts ${INITIATOR}/32`);
  });

  it('a v4+v6 proposal against a v4-only policy keeps only IPv4', () => {
    const ok = accepted(
      respond([prefixSelector('10.8.0.0/16'), prefixSelector('fd08::/48')], [prefixSelector('0.0.0.0/0'), prefixSelector('::/0')], {
        local: '10.0.1.0/24',
        remote: '10.8.0.0/16',
      }),
    );
    expect(show(ok.tsi)).toEqual(['10.8.0.0/16']);
    expect(show(ok.tsr)).toEqual(['10.0.1.0/24']);
  });

  it('a dual-stack policy answers a dual-stack proposal with both families', () => {
    const ok = accepted(
      respond([prefixSelector('::/0'), prefixSelector('0.0.0.0/0')], [prefixSelector('0.0.0.0/0'), prefixSelector('::/0')], {
        local: '10.0.1.0/24, fd01::/64',
        remote: '10.8.0.0/16, fd08::/48',
      }),
    );
    expect(show(ok.tsi)).toEqual(['10.8.0.0/16', 'fd08::/48']);
    expect(show(ok.tsr)).toEqual(['10.0.1.0/24', 'fd01::/64']);
  });

  it('a port-restricted policy narrows an any-protocol proposal to tcp/443', () => {
    const ok = accepted(respond([prefixSelector('10.8.0.0/16')], [prefixSelector('10.0.1.10/32')], { local: '10.0.1.10[tcp/443]', remote: '10.8.0.0/16' }));
    expect(show(ok.tsr)).toEqual(['10.0.1.10/32[tcp/443]']);
  });
});

describe('the triggering packet first (§2.9)', () => {
  const packetTsi = addressRange('10.8.1.7', '10.8.1.7', { ipProtocolId: 6, startPort: 40000, endPort: 40000 });
  const packetTsr = addressRange('10.0.1.20', '10.0.1.20', { ipProtocolId: 6, startPort: 443, endPort: 443 });

  it('when the policy allows the packet, the answer includes it (here inside the narrowed subnets)', () => {
    const ok = accepted(
      respond([packetTsi, prefixSelector('10.8.0.0/16')], [packetTsr, prefixSelector('10.0.0.0/16')], { local: '10.0.1.0/24', remote: '10.8.1.0/24' }),
    );
    expect(show(ok.tsi)).toEqual(['10.8.1.0/24']);
    expect(show(ok.tsr)).toEqual(['10.0.1.0/24']);
    expect(ok.packetCovered).toBe(true);
  });

  it('a policy holding several subnets keeps all of them, not just the one the packet is in', () => {
    const ok = accepted(
      respond([packetTsi, prefixSelector('10.8.0.0/16')], [packetTsr, prefixSelector('10.0.0.0/16')], {
        local: '10.0.3.0/24, 10.0.1.0/24',
        remote: '10.8.0.0/16',
      }),
    );
    expect(show(ok.tsr)).toEqual(['10.0.3.0/24', '10.0.1.0/24']);
    expect(ok.packetCovered).toBe(true);
  });

  it('when the packet lies outside the policy the rest is still narrowed, and packetCovered says so', () => {
    const ok = accepted(
      respond([packetTsi, prefixSelector('10.8.0.0/16')], [packetTsr, prefixSelector('10.0.0.0/16')], { local: '10.0.2.0/24', remote: '10.8.0.0/16' }),
    );
    expect(show(ok.tsr)).toEqual(['10.0.2.0/24']);
    expect(ok.packetCovered).toBe(false);
  });

  it('a packet-only proposal of a host the policy covers is answered with just that packet selector', () => {
    const ok = accepted(respond([packetTsi], [packetTsr], { local: '10.0.1.0/24', remote: '10.8.0.0/16' }));
    expect(show(ok.tsi)).toEqual(['10.8.1.7/32[tcp/40000]']);
    expect(show(ok.tsr)).toEqual(['10.0.1.20/32[tcp/443]']);
    expect(ok.narrowed).toBe(false);
  });
});

describe('selectors the responder cannot use', () => {
  const seclabel: PayloadSelector = { tsType: 'unknown', selectorType: 10, ipProtocolId: 0, data: Buffer.from('00000005', 'hex') };

  it('unknown TS types are ignored and not returned (§2.9), and reported', () => {
    const ok = accepted(respond([seclabel, prefixSelector('10.8.0.0/16')], [prefixSelector('10.0.1.0/24')], { local: '10.0.1.0/24', remote: '10.8.0.0/16' }));
    expect(show(ok.tsi)).toEqual(['10.8.0.0/16']);
    expect(ok.ignored).toEqual(['TSi selector 1: TS type 10 is not an address range']);
  });

  it('a TSi of only unknown types is TS_UNACCEPTABLE', () => {
    const reason = refused(respond([seclabel], [prefixSelector('10.0.1.0/24')], { local: '10.0.1.0/24', remote: '10.8.0.0/16' }));
    expect(reason).toBe('TSi holds no usable address range (selector 1: TS type 10 is not an address range)');
  });

  it('a backwards address range selects nothing and is ignored', () => {
    const backwards = addressRange('10.8.0.9', '10.8.0.1');
    const reason = refused(respond([backwards], [prefixSelector('10.0.1.0/24')], { local: '10.0.1.0/24', remote: '10.8.0.0/16' }));
    expect(reason).toMatch(/ends before it starts/);
  });
});
