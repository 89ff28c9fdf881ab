/**
 * parseCertificate shares one parsed certificate per (source, DER) while it is
 * in use: every IKE SA with the same peer holds the same object
 * (docs/notes/memory.md).
 */
import { describe, expect, it } from 'vitest';
import { createCa, issueCertificate } from '../../src/pki/issue.js';
import { parseCertificate } from '../../src/pki/certificate.js';

describe('parseCertificate sharing', () => {
  const ca = createCa({ subject: 'C=CH, O=tunsec test, CN=Sharing CA', key: 'p256' });
  const der = issueCertificate(ca, { subject: 'C=CH, O=tunsec test, CN=peer', key: 'p256' }).certificate.der;

  it('the same DER from the same source yields the same object, with the DER in an allocation of its own', () => {
    const a = parseCertificate(Buffer.from(der), 'peer CERT payload');
    const b = parseCertificate(new Uint8Array(der), 'peer CERT payload');
    expect(b).toBe(a);
    expect(a.der.equals(der)).toBe(true);
    expect(a.der.byteOffset).toBe(0);
    expect(a.der.buffer.byteLength).toBe(der.length);
  });

  it('another source or other octets yield another certificate', () => {
    const a = parseCertificate(der, 'peer CERT payload');
    expect(parseCertificate(der, 'file.pem')).not.toBe(a);
    expect(parseCertificate(der, 'file.pem').fingerprint).toBe(a.fingerprint);
    const other = issueCertificate(ca, { subject: 'C=CH, O=tunsec test, CN=other', key: 'p256' }).certificate.der;
    expect(parseCertificate(other, 'peer CERT payload').subject.text).toContain('other');
  });

  it('a DER that does not parse still throws, and is not remembered', () => {
    const broken = Buffer.from(der);
    broken[4] = 0xff;
    expect(() => parseCertificate(broken, 'peer CERT payload')).toThrow(/not a valid X.509 certificate/);
    expect(() => parseCertificate(broken, 'peer CERT payload')).toThrow(/not a valid X.509 certificate/);
  });
});
