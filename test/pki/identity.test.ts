/** IKE identities (src/pki/identity.ts) and Distinguished Names (src/pki/name.ts). */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ID_TYPE,
  certMatchesIdentity,
  identityFromIdPayload,
  identityToIdPayload,
  identityToString,
  parseIdentity,
  type Identity,
} from '../../src/pki/identity.js';
import { spkiSha1, subjectPublicKeySha1 } from '../../src/pki/certificate.js';
import { decodeName, dnToString, nameFromString, namesMatch } from '../../src/pki/name.js';
import { parseIp } from '../../src/pki/ip.js';
import { formatIp } from '../../src/util/ip.js';
import { endEntity, root } from './helpers.js';

describe('identities from configuration text (strongSwan rules)', () => {
  const cases: [string, Identity | { type: 'dn'; value: string }][] = [
    ['moon.ikev2.test', { type: 'fqdn', value: 'moon.ikev2.test' }],
    ['@moon', { type: 'fqdn', value: 'moon' }],
    ['@10.0.0.1', { type: 'fqdn', value: '10.0.0.1' }],
    ['10.0.0.1', { type: 'ipv4', value: '10.0.0.1' }],
    ['fd00::1', { type: 'ipv6', value: 'fd00::1' }],
    ['FD00:0:0:0:0:0:0:1', { type: 'ipv6', value: 'fd00::1' }],
    ['::ffff:10.0.0.1', { type: 'ipv6', value: '::ffff:a00:1' }],
    ['user@example.com', { type: 'rfc822', value: 'user@example.com' }],
    ['@@user@example.com', { type: 'rfc822', value: 'user@example.com' }],
    ['@#0A1b', { type: 'keyid', value: '0a1b' }],
    ['@#0a:1b:2c', { type: 'keyid', value: '0a1b2c' }],
    ['keyid:abc', { type: 'keyid', value: '616263' }],
    ['keyid:#ff00', { type: 'keyid', value: 'ff00' }],
    ['fqdn:10.0.0.1', { type: 'fqdn', value: '10.0.0.1' }],
    ['email:not-an-address', { type: 'rfc822', value: 'not-an-address' }],
    ['ipv4:192.0.2.7', { type: 'ipv4', value: '192.0.2.7' }],
    ['C=CH, O=IKEv2 Interop Test, CN=moon', { type: 'dn', value: 'C=CH, O=IKEv2 Interop Test, CN=moon' }],
    ['/C=CH/O=X/CN=moon', { type: 'dn', value: 'C=CH, O=X, CN=moon' }],
    ['cn=moon,o=x', { type: 'dn', value: 'CN=moon, O=x' }],
    ['asn1dn:CN=moon', { type: 'dn', value: 'CN=moon' }],
  ];
  for (const [text, expected] of cases) {
    it(`"${text}" is ${expected.type} ${expected.value}`, () => {
      expect(parseIdentity(text)).toMatchObject(expected);
    });
  }

  it('texts that look like something they are not are errors, not silent guesses', () => {
    expect(() => parseIdentity('fd00::zz')).toThrow('identity "fd00::zz" is not an IPv6 address');
    expect(() => parseIdentity('@#xyz')).toThrow('identity "@#xyz" is not a hex key ID');
    expect(() => parseIdentity('CN=moon, bogus')).toThrow('identity "CN=moon, bogus" is not a valid DN: DN "CN=moon, bogus": "bogus" is not type=value');
    expect(() => parseIdentity('XX=moon')).toThrow('unknown attribute type "XX"');
    expect(() => parseIdentity('%any')).toThrow('identity "%any" is a wildcard, not an identity of its own');
    expect(() => parseIdentity('ipv4:fd00::1')).toThrow('identity "fd00::1" is not an IPv4 address');
  });

  it('identityToString reads back to the same identity', () => {
    const texts = [
      'moon.ikev2.test',
      'fqdn:10.0.0.1',
      'fqdn:a=b',
      '10.0.0.1',
      'fd00::1',
      'user@example.com',
      'email:plain',
      '@#0a1b',
      'C=CH, O=A\\, B, CN=moon',
    ];
    for (const text of texts) {
      const id = parseIdentity(text);
      expect(parseIdentity(identityToString(id)), text).toEqual(id);
    }
  });
});

describe('ID payload data (RFC 7296 §3.5)', () => {
  it('each identity type has its ID Type number and data encoding', () => {
    expect(identityToIdPayload(parseIdentity('10.77.0.1'))).toEqual({ idType: 1, data: Buffer.from([10, 77, 0, 1]) });
    expect(identityToIdPayload(parseIdentity('moon.ikev2.test'))).toEqual({ idType: 2, data: Buffer.from('moon.ikev2.test') });
    expect(identityToIdPayload(parseIdentity('a@b.c'))).toEqual({ idType: 3, data: Buffer.from('a@b.c') });
    expect(identityToIdPayload(parseIdentity('fd77::1'))).toEqual({ idType: 5, data: Buffer.from('fd770000000000000000000000000001', 'hex') });
    expect(identityToIdPayload(parseIdentity('CN=moon'))).toEqual({ idType: 9, data: Buffer.from('300f310d300b060355040313046d6f6f6e', 'hex') });
    expect(identityToIdPayload(parseIdentity('@#c0ffee'))).toEqual({ idType: 11, data: Buffer.from('c0ffee', 'hex') });
  });

  it('payload data decodes back to the identity', () => {
    for (const text of ['10.77.0.1', 'moon.ikev2.test', 'a@b.c', 'fd77::1', 'C=CH, O=X, CN=moon', '@#c0ffee']) {
      const id = parseIdentity(text);
      expect(identityFromIdPayload(identityToIdPayload(id)), text).toEqual(id);
    }
  });

  it('malformed or unsupported payload data is a PkiError', () => {
    expect(() => identityFromIdPayload({ idType: ID_TYPE.ID_IPV4_ADDR, data: Buffer.alloc(5) })).toThrow('ID_IPV4_ADDR has 5 octets, expected 4');
    expect(() => identityFromIdPayload({ idType: ID_TYPE.ID_IPV6_ADDR, data: Buffer.alloc(4) })).toThrow('ID_IPV6_ADDR has 4 octets, expected 16');
    expect(() => identityFromIdPayload({ idType: ID_TYPE.ID_FQDN, data: Buffer.from([0x66, 0xff]) })).toThrow('ID_FQDN is not printable UTF-8 text');
    expect(() => identityFromIdPayload({ idType: ID_TYPE.ID_DER_ASN1_DN, data: Buffer.from('3005', 'hex') })).toThrow(/^ID_DER_ASN1_DN is not a DER Name/);
    expect(() => identityFromIdPayload({ idType: 10, data: Buffer.alloc(2) })).toThrow('ID type 10 is not supported');
  });
});

describe('certificates vouching for identities', () => {
  const ca = root();
  const host = endEntity(ca, 'C=CH, O=tunsec test, CN=host', {
    subjectAltNames: { dns: ['Host.Example.ORG', '*.wild.example.org'], ip: ['192.0.2.1', '2001:db8::1'], email: ['Admin@Example.org'] },
  });
  const cert = host.certificate;
  const sans = '[DNS:Host.Example.ORG, DNS:*.wild.example.org, IP:192.0.2.1, IP:2001:db8::1, email:Admin@Example.org]';

  it('FQDNs match dNSName SANs case-insensitively, with or without a trailing dot', () => {
    expect(certMatchesIdentity(cert, parseIdentity('host.example.org'))).toEqual({ ok: true });
    expect(certMatchesIdentity(cert, parseIdentity('HOST.EXAMPLE.ORG.'))).toEqual({ ok: true });
  });

  it('wildcard SANs are literal names, not patterns', () => {
    expect(certMatchesIdentity(cert, parseIdentity('a.wild.example.org'))).toEqual({
      ok: false,
      reason: `ID a.wild.example.org not in certificate SANs ${sans}`,
    });
    expect(certMatchesIdentity(cert, parseIdentity('*.wild.example.org'))).toEqual({ ok: true });
  });

  it('IP identities match iPAddress SANs octet for octet, whatever the text form', () => {
    expect(certMatchesIdentity(cert, parseIdentity('2001:DB8:0::1'))).toEqual({ ok: true });
    expect(certMatchesIdentity(cert, parseIdentity('192.0.2.1'))).toEqual({ ok: true });
    expect(certMatchesIdentity(cert, parseIdentity('192.0.2.2'))).toEqual({ ok: false, reason: `ID 192.0.2.2 not in certificate SANs ${sans}` });
  });

  it('an IP written as an FQDN does not match an iPAddress SAN', () => {
    expect(certMatchesIdentity(cert, parseIdentity('@192.0.2.1')).ok).toBe(false);
  });

  it('RFC822 identities match rfc822Name SANs, the domain case-insensitively and the local part exactly', () => {
    expect(certMatchesIdentity(cert, parseIdentity('Admin@EXAMPLE.org'))).toEqual({ ok: true });
    expect(certMatchesIdentity(cert, parseIdentity('admin@example.org'))).toEqual({
      ok: false,
      reason: `ID admin@example.org not in certificate SANs ${sans}`,
    });
  });

  it('DN identities match the subject in another spelling and string type', () => {
    expect(certMatchesIdentity(cert, parseIdentity('C=ch,  O=TUNSEC   test, CN=Host'))).toEqual({ ok: true });
    expect(certMatchesIdentity(cert, parseIdentity('C=CH, CN=host, O=tunsec test'))).toEqual({
      ok: false,
      reason: "ID 'C=CH, CN=host, O=tunsec test' does not match certificate subject 'C=CH, O=tunsec test, CN=host'",
    });
  });

  it('a key ID matches the subjectKeyIdentifier or a SHA-1 key hash', () => {
    for (const hash of [cert.subjectKeyIdentifier!, spkiSha1(cert), subjectPublicKeySha1(cert)]) {
      expect(certMatchesIdentity(cert, parseIdentity(`@#${hash.toString('hex')}`))).toEqual({ ok: true });
    }
    expect(certMatchesIdentity(cert, parseIdentity('@#00'))).toEqual({
      ok: false,
      reason: "ID @#00 is neither the subjectKeyIdentifier nor the key hash of 'C=CH, O=tunsec test, CN=host'",
    });
  });
});

describe('Distinguished Names', () => {
  it('print in DER order with strongSwan attribute names, escaping what needs it', () => {
    const name = nameFromString('C=CH, O=Smith\\, Jones + Sons, OU=R&D, CN=moon + UID=m1, E=moon@example.org, serialNumber=42, 2.5.4.99=x');
    expect(name.text).toBe('C=CH, O=Smith\\, Jones \\+ Sons, OU=R&D, CN=moon + UID=m1, E=moon@example.org, serialNumber=42, 2.5.4.99=x');
    expect(nameFromString(name.text).der).toEqual(name.der);
    expect(dnToString(name.der)).toBe(name.text);
  });

  it('use PrintableString when the value fits, UTF8String otherwise, IA5String for E and DC', () => {
    const name = nameFromString('CN=Zürich, O=plain, DC=org, E=a@b');
    expect(name.rdns.map((rdn) => rdn[0]!.tag)).toEqual([0x0c, 0x13, 0x16, 0x16]);
    expect(name.text).toBe('CN=Zürich, O=plain, DC=org, E=a@b');
  });

  it('compare equal across case, white space and string types, but not across order or attribute types', () => {
    const printable = nameFromString('C=CH, CN=moon');
    const utf8 = decodeName(Buffer.from('301e310b300906035504060c024348310f300d06035504030c064d4f4f4e2020', 'hex'));
    expect(utf8.text).toBe('C=CH, CN=MOON \\ ');
    expect(namesMatch(printable, utf8)).toBe(true);
    expect(namesMatch(printable, nameFromString('CN=moon, C=CH'))).toBe(false);
    expect(namesMatch(printable, nameFromString('C=CH, O=moon'))).toBe(false);
    expect(namesMatch(nameFromString('CN=a + UID=b'), nameFromString('UID=b + CN=a'))).toBe(true);
  });

  it('non-string values print as #hex of their DER and read back', () => {
    const name = nameFromString('CN=#020101');
    expect(name.text).toBe('CN=#020101');
    expect(name.rdns[0]![0]!.tag).toBe(0x02);
    expect(nameFromString('CN=\\#020101').text).toBe('CN=\\#020101');
  });

  it('dnToString answers null for octets that are not a Name', () => {
    expect(dnToString(Buffer.from('3003310100', 'hex'))).toBeNull();
    expect(dnToString(Buffer.alloc(0))).toBeNull();
  });

  it('random printable values survive text → DER → text → DER', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom('CN', 'O', 'OU', 'L', 'ST'), fc.string({ minLength: 1, maxLength: 12 })), { minLength: 1, maxLength: 4 }),
        (rdns) => {
          const values = rdns.map(([t, v]) => [t, v.trim() || 'x'] as const);
          const text = values.map(([t, v]) => `${t}=${v.replace(/[\\,+#]/g, (c) => `\\${c}`)}`).join(', ');
          const name = nameFromString(text);
          expect(nameFromString(name.text).der).toEqual(name.der);
          expect(name.rdns.map((r) => r[0]!.text)).toEqual(values.map(([, v]) => v));
        },
      ),
    );
  });
});

describe('IP address text', () => {
  it('formats IPv6 per RFC 5952 and rejects malformed text', () => {
    expect(formatIp(parseIp('2001:0db8:0000:0000:0001:0000:0000:0001')!)).toBe('2001:db8::1:0:0:1');
    expect(formatIp(parseIp('::')!)).toBe('::');
    expect(formatIp(parseIp('1:0:2:0:3:0:4:0')!)).toBe('1:0:2:0:3:0:4:0');
    for (const bad of ['1::2::3', '1:2:3:4:5:6:7:8:9', '10.0.0.256', '010.0.0.1', '1.2.3', '12345::', ':::']) {
      expect(parseIp(bad), bad).toBeNull();
    }
  });
});
