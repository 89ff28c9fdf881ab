import { describe, expect, it } from 'vitest';
import {
  IdType,
  IkeEncodeError,
  dnFromString,
  dnId,
  dnToString,
  fqdnId,
  idFromString,
  idToString,
  ipId,
  keyId,
  nullId,
  rfc822Id,
} from '../../../src/ike/codec/index.js';
import { formatIp, parseIp } from '../../../src/util/ip.js';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { demoFile } from '../../support/fixture.js';

describe('IP address text (RFC 5952 for IPv6)', () => {
  it.each([
    ['10.77.0.1', '0a4d0001'],
    ['::', '00000000000000000000000000000000'],
    ['::1', '00000000000000000000000000000001'],
    ['fd77::1', 'fd770000000000000000000000000001'],
    ['2001:db8:0:1:1:1:1:1', '20010db8000000010001000100010001'],
    ['2001:db8::1:0:0:1', '20010db8000000000001000000000001'],
    ['::ffff:192.0.2.1', '00000000000000000000ffffc0000201'],
    ['64:ff9b::10.0.0.1', '0064ff9b00000000000000000a000001'],
  ])('%s is %s and prints back the same', (text, hex) => {
    expect(parseIp(text)?.toString('hex')).toBe(hex);
    const back = formatIp(Buffer.from(hex, 'hex'));
    expect(parseIp(back)?.toString('hex')).toBe(hex);
  });

  it('prints the longest run of zero groups as "::" and a single zero group as 0', () => {
    expect(formatIp(parseIp('2001:0db8:0000:0000:0001:0000:0000:0001')!)).toBe('2001:db8::1:0:0:1');
    expect(formatIp(parseIp('2001:db8:0:1:1:1:1:1')!)).toBe('2001:db8:0:1:1:1:1:1');
  });

  it('rejects what is not an address', () => {
    for (const s of ['', '10.0.0', '1::2::3', 'moon', 'fe80::1%eth0', '10.0.0.256']) expect(parseIp(s)).toBeUndefined();
  });
});

describe('distinguished names for ID_DER_ASN1_DN', () => {
  const moonCert = new X509Certificate(readFileSync(demoFile('pki/moon/cert.pem')));

  it('prints the demo certificate’s subject as "C=…, O=…, CN=…" and builds the identical DER back from that text', () => {
    // X509Certificate.subject is one RDN per line, in DER order.
    const expected = moonCert.subject.split('\n').join(', ');
    expect(expected).toBe('C=CH, O=IKEv2 Interop Test, CN=moon');
    // The DER built from the text (string types included) occurs verbatim in the certificate.
    const der = dnFromString(expected)!;
    expect(dnToString(der)).toBe(expected);
    expect(moonCert.raw.includes(der)).toBe(true);
  });

  it('escapes commas inside values and reads them back', () => {
    const der = dnFromString('O=Acme\\, Inc., CN=moon')!;
    expect(dnToString(der)).toBe('O=Acme\\, Inc., CN=moon');
  });

  it('prints unknown attribute types as dotted OIDs and non-string values as #hex', () => {
    const der = dnFromString('1.2.3.4=#020105, CN=x')!;
    expect(dnToString(der)).toBe('1.2.3.4=#020105, CN=x');
  });

  it('returns null for octets that are not a Name, and for text that is not a DN, without throwing', () => {
    expect(dnToString(Buffer.from('3003310130', 'hex'))).toBeNull();
    expect(dnToString(Buffer.from('30ff', 'hex'))).toBeNull();
    expect(dnToString(Buffer.alloc(0))).toBeNull();
    expect(dnFromString('no equals sign')).toBeNull();
    expect(dnFromString('XX=unknown')).toBeNull();
  });
});

describe('identities (RFC 7296 §3.5) as text', () => {
  it('reads configuration text the way strongSwan does', () => {
    expect(idFromString('10.77.0.1')).toEqual({ idType: IdType.ID_IPV4_ADDR, data: Buffer.from([10, 77, 0, 1]) });
    expect(idFromString('fd77::1').idType).toBe(IdType.ID_IPV6_ADDR);
    expect(idFromString('moon.ikev2.test')).toEqual(fqdnId('moon.ikev2.test'));
    expect(idFromString('@moon.ikev2.test')).toEqual(fqdnId('moon.ikev2.test'));
    expect(idFromString('@10.0.0.1')).toEqual(fqdnId('10.0.0.1'));
    expect(idFromString('carol@ikev2.test')).toEqual(rfc822Id('carol@ikev2.test'));
    expect(idFromString('@#0102ab')).toEqual(keyId(Buffer.from('0102ab', 'hex')));
    expect(idFromString('%null')).toEqual(nullId());
    expect(idFromString('C=CH, O=Test, CN=moon')).toEqual(dnId('C=CH, O=Test, CN=moon'));
  });

  it('prints every ID type readably and reads the text back to the same identity', () => {
    for (const text of ['10.77.0.1', 'fd77::1', 'moon.ikev2.test', 'carol@ikev2.test', 'C=CH, O=Test, CN=moon', '@#0102ab', '%null']) {
      expect(idToString(idFromString(text))).toBe(text);
    }
    expect(idToString({ idType: IdType.ID_DER_ASN1_GN, data: Buffer.from('a0', 'hex') })).toBe('ID_DER_ASN1_GN:#a0');
    expect(idToString({ idType: 200, data: Buffer.from('ff', 'hex') })).toBe('ID_200:#ff');
    expect(idToString({ idType: IdType.ID_DER_ASN1_DN, data: Buffer.from('0102', 'hex') })).toBe('#0102');
  });

  it('refuses to build an address identity from text that is not an address', () => {
    expect(() => ipId('moon')).toThrow(IkeEncodeError);
    expect(() => idFromString('@#xyz')).toThrow(IkeEncodeError);
  });
});
