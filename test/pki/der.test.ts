/** The DER reader under the certificate parser (src/pki/der.ts). */
import { describe, expect, it } from 'vitest';
import { DerError, Tag, oid, readElement, readOid, readTime, readWhole, tlv } from '../../src/pki/der.js';
import { endEntity, root } from './helpers.js';

const time = (tag: number, text: string): Date => readTime(readWhole(tlv(tag, Buffer.from(text, 'latin1')), tag, 'time'), 'time');

describe('DER', () => {
  it('UTCTime years 50-99 are 19xx and 00-49 are 20xx (RFC 5280 §4.1.2.5.1)', () => {
    expect(time(Tag.UTC_TIME, '491231235959Z').toISOString()).toBe('2049-12-31T23:59:59.000Z');
    expect(time(Tag.UTC_TIME, '500101000000Z').toISOString()).toBe('1950-01-01T00:00:00.000Z');
    expect(time(Tag.GENERALIZED_TIME, '99991231235959Z').toISOString()).toBe('9999-12-31T23:59:59.000Z');
    expect(time(Tag.GENERALIZED_TIME, '00500101000000Z').getUTCFullYear()).toBe(50);
  });

  it('times that are not RFC 5280 profile or not calendar dates are refused', () => {
    expect(() => time(Tag.UTC_TIME, '2401010000Z')).toThrow('time: UTCTime "2401010000Z" is not YYMMDDHHMMSSZ');
    expect(() => time(Tag.UTC_TIME, '240101000000+0100')).toThrow(DerError);
    expect(() => time(Tag.GENERALIZED_TIME, '20230229000000Z')).toThrow('time: "20230229000000Z" is not a valid date');
    expect(() => time(Tag.GENERALIZED_TIME, '20240431000000Z')).toThrow('is not a valid date');
    expect(time(Tag.GENERALIZED_TIME, '20240229000000Z').toISOString()).toBe('2024-02-29T00:00:00.000Z');
  });

  it('certificates valid beyond 2049 carry GeneralizedTime and read back exactly', () => {
    const sun = endEntity(root(), 'CN=sun', { notAfter: new Date('2051-06-30T12:34:56Z') });
    expect(sun.certificate.notAfter.toISOString()).toBe('2051-06-30T12:34:56.000Z');
  });

  it('indefinite, non-minimal and overrunning lengths are refused', () => {
    expect(() => readElement(Buffer.from('3080', 'hex'), 0, 'x')).toThrow('x: indefinite length is not DER');
    expect(() => readElement(Buffer.from('30810100', 'hex'), 0, 'x')).toThrow('x: length is not minimally encoded');
    expect(() => readElement(Buffer.from('300500', 'hex'), 0, 'x')).toThrow('x: 5 content octets announced, 1 present');
    expect(() => readElement(Buffer.from('1f0100', 'hex'), 0, 'x')).toThrow('x: high tag number form is not used in X.509');
    expect(() => readWhole(Buffer.from('30000000', 'hex'), Tag.SEQUENCE, 'x')).toThrow('x: 2 trailing octets');
  });

  it('OIDs read and write as dotted text', () => {
    for (const dotted of ['2.5.29.19', '1.2.840.113549.1.1.11', '2.999.1', '0.9.2342.19200300.100.1.25']) {
      expect(readOid(readWhole(oid(dotted), Tag.OID, 'oid'), 'oid')).toBe(dotted);
    }
    expect(() => readOid(readWhole(Buffer.from('060255ff', 'hex').subarray(0, 4), Tag.OID, 'oid'), 'oid')).toThrow('oid: truncated OBJECT IDENTIFIER');
  });
});
