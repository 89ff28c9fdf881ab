/**
 * The value syntaxes of the configuration: times, byte and packet counts
 * (swanctl.conf's), identities (strongSwan's type inference) and traffic
 * selectors (`10.0.0.0/24[tcp/80]`), and the lifetime derivations.
 */
import { describe, expect, it } from 'vitest';
import { parseIdentity } from '../../src/config/identity.js';
import { checkChildLifetimes, checkIkeLifetimes, resolveChildLifetimes, resolveIkeLifetimes } from '../../src/config/lifetimes.js';
import { parseTrafficSelector } from '../../src/ike/ts/syntax.js';
import { formatDuration, parseByteCount, parseDuration, parsePacketCount } from '../../src/config/units.js';

describe('times', () => {
  it.each([
    [3600, 3600],
    ['3600', 3600],
    ['60s', 60],
    ['30m', 1800],
    ['4h', 14400],
    ['1d', 86400],
    ['4H', 14400],
    [' 90 s ', 90],
    [0, 0],
  ])('%j is %i seconds', (input, seconds) => {
    expect(parseDuration(input)).toEqual({ ok: true, value: seconds });
  });

  it.each([['4x'], ['-1'], [-1], ['1.5h'], [1.5], [''], ['h'], ['1h30m'], [true], [null]])('%j is not a time', (input) => {
    expect(parseDuration(input).ok).toBe(false);
  });

  it('the message says what is accepted', () => {
    expect(parseDuration('soon')).toEqual({
      ok: false,
      message: "invalid time 'soon': use seconds, or a number with s, m, h or d (e.g. 90s, 30m, 4h, 1d)",
    });
  });

  it.each([
    [14400, '4h'],
    [5400, '90m'],
    [61, '61s'],
    [86400, '1d'],
    [0, '0s'],
  ])('%i seconds print as %s', (seconds, text) => {
    expect(formatDuration(seconds)).toBe(text);
  });
});

describe('byte and packet counts', () => {
  it.each([
    ['100', 100],
    [100, 100],
    ['1k', 1024],
    ['500m', 500 * 1024 ** 2],
    ['2G', 2 * 1024 ** 3],
  ])('bytes %j are %i', (input, n) => {
    expect(parseByteCount(input)).toEqual({ ok: true, value: n });
  });

  it('bytes take no other suffix', () => {
    expect(parseByteCount('1t').ok).toBe(false);
    expect(parseByteCount('1kb').ok).toBe(false);
  });

  it('packets are plain numbers, as in strongSwan', () => {
    expect(parsePacketCount('1000000')).toEqual({ ok: true, value: 1000000 });
    expect(parsePacketCount('1k')).toEqual({ ok: false, message: "invalid packet count '1k': use a plain number" });
  });

  it('counts beyond 2^53 are refused rather than rounded', () => {
    expect(parseByteCount('99999999999g').ok).toBe(false);
  });
});

describe('identities', () => {
  it.each([
    ['moon.ikev2.test', 'ID_FQDN', 'moon.ikev2.test'],
    ['@moon', 'ID_FQDN', 'moon'],
    ['@10.1.1.1', 'ID_FQDN', '10.1.1.1'],
    ['alice@example.org', 'ID_RFC822_ADDR', 'alice@example.org'],
    ['@@alice@example.org', 'ID_RFC822_ADDR', 'alice@example.org'],
    ['C=CH, O=strongSwan, CN=moon', 'ID_DER_ASN1_DN', 'C=CH, O=strongSwan, CN=moon'],
    ['/C=CH/O=strongSwan/CN=moon', 'ID_DER_ASN1_DN', '/C=CH/O=strongSwan/CN=moon'],
    ['10.77.0.1', 'ID_IPV4_ADDR', '10.77.0.1'],
    ['FD77::0001', 'ID_IPV6_ADDR', 'fd77::1'],
    ['%any', 'ID_ANY', ''],
    ['@#0a0B', 'ID_KEY_ID', '0a0b'],
    ['keyid:abc', 'ID_KEY_ID', '616263'],
    ['keyid:#01:02', 'ID_KEY_ID', '0102'],
    ['fqdn:alice@example.org', 'ID_FQDN', 'alice@example.org'],
    ['email:moon', 'ID_RFC822_ADDR', 'moon'],
    ['ipv4:10.0.0.1', 'ID_IPV4_ADDR', '10.0.0.1'],
  ])('%s is %s %s', (text, type, value) => {
    expect(parseIdentity(text)).toEqual({ ok: true, value: { type, value, text } });
  });

  it.each([['ipv4:fd00::1'], ['asn1dn:moon'], ['@#abc'], ['keyid:'], ['fd77::zz']])('%s is refused', (text) => {
    expect(parseIdentity(text).ok).toBe(false);
  });
});

describe('traffic selectors', () => {
  it.each([
    ['10.0.0.0/24', { family: 4, startAddress: '10.0.0.0', endAddress: '10.0.0.255', protocol: 0, startPort: 0, endPort: 65535 }],
    ['10.77.0.1', { family: 4, startAddress: '10.77.0.1', endAddress: '10.77.0.1' }],
    ['fd77::2/128', { family: 6, startAddress: 'fd77::2', endAddress: 'fd77::2' }],
    ['fd00::/64', { family: 6, startAddress: 'fd00::', endAddress: 'fd00::ffff:ffff:ffff:ffff' }],
    ['0.0.0.0/0', { startAddress: '0.0.0.0', endAddress: '255.255.255.255' }],
    ['10.0.0.5-10.0.0.9', { startAddress: '10.0.0.5', endAddress: '10.0.0.9' }],
    ['10.0.0.0/24[tcp/80]', { protocol: 6, startPort: 80, endPort: 80 }],
    ['10.0.0.0/24[udp]', { protocol: 17, startPort: 0, endPort: 65535 }],
    ['10.0.0.0/24[/443]', { protocol: 0, startPort: 443, endPort: 443 }],
    ['10.0.0.0/24[tcp/1024-2048]', { protocol: 6, startPort: 1024, endPort: 2048 }],
    ['10.0.0.0/24[tcp/https]', { protocol: 6, startPort: 443, endPort: 443 }],
    ['10.0.0.0/24[47]', { protocol: 47 }],
    ['10.0.0.0/24[udp/opaque]', { protocol: 17, startPort: 65535, endPort: 0 }],
    ['0.0.0.0/0[icmp/8]', { protocol: 1, startPort: 8, endPort: 8 }],
    ['dynamic', { dynamic: true, protocol: 0 }],
    ['dynamic[tcp/22]', { dynamic: true, protocol: 6, startPort: 22, endPort: 22 }],
  ])('%s', (text, expected) => {
    const r = parseTrafficSelector(text);
    expect(r.ok && r.value).toMatchObject({ dynamic: false, ...expected, text });
  });

  it.each([
    ['10.0.0.1/24', "invalid traffic selector '10.0.0.1/24': host bits are set (did you mean 10.0.0.0/24?)"],
    ['10.0.0.0/33', "invalid traffic selector '10.0.0.0/33': invalid prefix length '/33' (0-32 for IPv4)"],
    ['10.0.0.9-10.0.0.5', "invalid traffic selector '10.0.0.9-10.0.0.5': the range '10.0.0.9-10.0.0.5' ends before it starts"],
    ['10.0.0.1-fd00::1', "invalid traffic selector '10.0.0.1-fd00::1': the range '10.0.0.1-fd00::1' mixes IPv4 and IPv6"],
    ['net.example/24', "invalid traffic selector 'net.example/24': 'net.example' is not an IP address"],
    ['10.0.0.0/24[tcpp]', "invalid protocol 'tcpp' in traffic selector '10.0.0.0/24[tcpp]': use a number 0-255 or a name such as tcp, udp, icmp"],
    ['10.0.0.0/24[tcp/99999]', "invalid port '99999' in traffic selector '10.0.0.0/24[tcp/99999]': ports are 0-65535, ranges low-high"],
    ['10.0.0.0/24[tcp/web]', "invalid port 'web' in traffic selector '10.0.0.0/24[tcp/web]': use a number, a range such as 1024-2048, any or opaque"],
  ])('%s is refused', (text, message) => {
    expect(parseTrafficSelector(text)).toEqual({ ok: false, message });
  });
});

describe('lifetimes', () => {
  it('IKE: strongSwan defaults', () => {
    expect(resolveIkeLifetimes({})).toEqual({ rekey_time: 14400, reauth_time: 0, over_time: 1440, rand_time: 1440, life_time: 15840 });
  });

  it('IKE: with rekey and reauth, over_time follows the longer, rand_time is capped at half the shorter', () => {
    expect(resolveIkeLifetimes({ rekey_time: 3600, reauth_time: 86400 })).toEqual({
      rekey_time: 3600,
      reauth_time: 86400,
      over_time: 8640,
      rand_time: 1800,
      life_time: 3600 + 8640,
    });
  });

  it('IKE: rekey_time 0 and no reauth means no lifetime at all', () => {
    const l = resolveIkeLifetimes({ rekey_time: 0 });
    expect(l).toEqual({ rekey_time: 0, reauth_time: 0, over_time: 0, rand_time: 0, life_time: 0 });
    expect(checkIkeLifetimes(l, { rekey_time: 0 })).toEqual([]);
  });

  it('CHILD: rekey_time alone gives life_time + 10% and rand_time the difference', () => {
    expect(resolveChildLifetimes({ rekey_time: 1200 })).toMatchObject({ rekey_time: 1200, life_time: 1320, rand_time: 120 });
  });

  it('CHILD: bytes and packets derive the same way, and stay off by default', () => {
    expect(resolveChildLifetimes({ life_bytes: 1100 })).toMatchObject({ rekey_bytes: 1000, life_bytes: 1100, rand_bytes: 100 });
    expect(resolveChildLifetimes({ rekey_packets: 1000 })).toMatchObject({ rekey_packets: 1000, life_packets: 1100, rand_packets: 100 });
    expect(resolveChildLifetimes({})).toMatchObject({ rekey_bytes: 0, life_bytes: 0, rekey_packets: 0, life_packets: 0 });
  });

  it('CHILD: the derived defaults pass their own checks', () => {
    for (const rekey of [600, 3600, 86400]) {
      const input = { rekey_time: rekey, rekey_bytes: 1 << 30, rekey_packets: 1 << 20 };
      expect(checkChildLifetimes(resolveChildLifetimes(input), input).filter((p) => p.severity === 'error')).toEqual([]);
    }
  });

  it('CHILD: packets the wrong way round are an error', () => {
    const input = { rekey_packets: 2000, life_packets: 1000 };
    expect(checkChildLifetimes(resolveChildLifetimes(input), input)).toEqual([
      {
        key: 'rekey_packets',
        severity: 'error',
        message: 'rekey_packets (2000) must be less than life_packets (1000): the CHILD_SA would expire before it is rekeyed',
      },
    ]);
  });
});
