/**
 * `local_ts` / `remote_ts` strings → selector ranges: swanctl syntax (parsed
 * by src/ike/ts/syntax.ts), `%any`, `dynamic`, ICMP types.
 */
import { describe, expect, it } from 'vitest';
import { parseTsConfig, parseTsConfigList, resolveTsConfig } from '../../../src/ike/ts/config.js';
import { formatIp } from '../../../src/util/ip.js';
import { cfg, show, ts } from './helpers.js';

const bad = (text: string): string => {
  const r = parseTsConfigList(text);
  if (r.ok) throw new Error(`'${text}' parsed`);
  return r.message;
};

describe('config strings', () => {
  it('a CIDR subnet becomes its first-to-last address range with any protocol and port', () => {
    const [r] = ts('10.1.0.0/16');
    expect(formatIp(r!.startAddress)).toBe('10.1.0.0');
    expect(formatIp(r!.endAddress)).toBe('10.1.255.255');
    expect(r).toMatchObject({ protocol: 0, startPort: 0, endPort: 0xffff });
    expect(show(ts('fd00:1::/64'))).toEqual(['fd00:1::/64']);
  });

  it('a single address is a /32 or /128, and an a-b range stays a range', () => {
    expect(show(ts('10.0.0.1'))).toEqual(['10.0.0.1/32']);
    expect(show(ts('fd00::1'))).toEqual(['fd00::1/128']);
    expect(show(ts('10.0.0.10-10.0.0.20'))).toEqual(['10.0.0.10-10.0.0.20']);
  });

  it('[proto/port] and [proto/port-port] restrict protocol and ports', () => {
    expect(ts('10.0.0.1/32[tcp/80]')[0]).toMatchObject({ protocol: 6, startPort: 80, endPort: 80 });
    expect(ts('10.0.0.0/24[udp/1024-2048]')[0]).toMatchObject({ protocol: 17, startPort: 1024, endPort: 2048 });
    expect(ts('10.0.0.0/24[sctp]')[0]).toMatchObject({ protocol: 132, startPort: 0, endPort: 0xffff });
    expect(ts('10.0.0.0/24[47]')[0]).toMatchObject({ protocol: 47 });
    expect(ts('10.0.0.0/24[udp/opaque]')[0]).toMatchObject({ startPort: 0xffff, endPort: 0 });
  });

  it('an ICMP type below 256 means every code of that type (type in the high octet, RFC 7296 §3.13.1)', () => {
    expect(ts('0.0.0.0/0[icmp/8]')[0]).toMatchObject({ protocol: 1, startPort: 0x0800, endPort: 0x08ff });
    expect(ts('::/0[ipv6-icmp/133-137]')[0]).toMatchObject({ protocol: 58, startPort: 133 << 8, endPort: (137 << 8) | 0xff });
    // 256 and above is already type·256+code: 3/4 "fragmentation needed".
    expect(ts('0.0.0.0/0[icmp/772]')[0]).toMatchObject({ startPort: 772, endPort: 772 });
  });

  it('%any is both whole address families; %any4 and %any6 one each', () => {
    expect(show(ts('%any'))).toEqual(['0.0.0.0/0', '::/0']);
    expect(show(ts('%any[udp/500]'))).toEqual(['0.0.0.0/0[udp/500]', '::/0[udp/500]']);
    expect(show(ts('%any4'))).toEqual(['0.0.0.0/0']);
    expect(show(ts('%any6'))).toEqual(['::/0']);
  });

  it('a comma-separated list keeps its order, and an array works the same', () => {
    expect(show(ts('10.0.1.0/24, fd00::/64,10.0.2.0/24[tcp]'))).toEqual(['10.0.1.0/24', 'fd00::/64', '10.0.2.0/24[tcp]']);
    const r = parseTsConfigList(['10.0.1.0/24', 'dynamic']);
    expect(r.ok && r.value.map((c) => c.dynamic)).toEqual([false, true]);
  });

  it('the text of each entry is kept for messages, %any included', () => {
    const r = parseTsConfig('%any[tcp]');
    expect(r.ok && r.value.map((c) => c.text)).toEqual(['%any[tcp]', '%any[tcp]']);
  });
});

describe('dynamic', () => {
  it('dynamic is the IKE endpoint address of that side', () => {
    expect(show(resolveTsConfig(cfg('dynamic'), '198.51.100.7'))).toEqual(['198.51.100.7/32']);
    expect(show(resolveTsConfig(cfg('dynamic'), '2001:db8::7'))).toEqual(['2001:db8::7/128']);
  });

  it('dynamic keeps its protocol and ports', () => {
    expect(show(resolveTsConfig(cfg('dynamic[tcp/443]'), '198.51.100.7'))).toEqual(['198.51.100.7/32[tcp/443]']);
  });

  it('with several addresses (virtual IPs of both families) dynamic stands for each of them', () => {
    expect(show(resolveTsConfig(cfg('dynamic, 10.9.0.0/16'), ['10.3.0.1', 'fd03::1']))).toEqual(['10.3.0.1/32', 'fd03::1/128', '10.9.0.0/16']);
  });

  it('a malformed dynamic address is a programming error, not a peer error', () => {
    expect(() => resolveTsConfig(cfg('dynamic'), 'not-an-ip')).toThrow(TypeError);
  });
});

describe('config errors', () => {
  it('a prefix longer than the address is refused', () => {
    expect(bad('10.0.0.0/33')).toMatch(/prefix length/);
    expect(bad('fd00::/129')).toMatch(/prefix length/);
  });

  it('host bits set are refused with the network that was probably meant', () => {
    expect(bad('10.0.0.1/24')).toMatch(/10\.0\.0\.0\/24/);
  });

  it('unknown protocol names, out-of-range and backwards ports are refused', () => {
    expect(bad('10.0.0.0/24[foo/80]')).toMatch(/protocol 'foo'/);
    expect(bad('10.0.0.0/24[tcp/70000]')).toMatch(/port/);
    expect(bad('10.0.0.0/24[tcp/90-80]')).toMatch(/port/);
    expect(bad('10.0.0.0/24[300]')).toMatch(/protocol/);
  });

  it('words that are not addresses, mixed-family ranges and empty list items are refused', () => {
    expect(bad('banana')).toMatch(/banana/);
    expect(bad('10.0.0.1-fd00::1')).toMatch(/mixes IPv4 and IPv6/);
    expect(bad('10.0.0.0/24,,10.0.1.0/24')).toMatch(/empty/);
    expect(bad('%any[tcp/x]')).toMatch(/in '%any\[tcp\/x\]'/);
  });
});
