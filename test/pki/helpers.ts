/** Shared throwaway PKI for the src/pki tests: fixed dates, so every reason string is exact. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCa, issueCertificate, issueIntermediate, type CertificateProfile, type Issued } from '../../src/pki/issue.js';
import { TrustStore } from '../../src/pki/store.js';
import { demoFile } from '../support/fixture.js';

/** The moment validations run at. */
export const NOW = new Date('2030-06-01T12:00:00Z');
export const NOT_BEFORE = new Date('2030-01-01T00:00:00Z');
export const NOT_AFTER = new Date('2031-01-01T00:00:00Z');

const validity = { notBefore: NOT_BEFORE, notAfter: NOT_AFTER } as const;

export function root(subject = 'C=CH, O=tunsec test, CN=Root', profile: Partial<CertificateProfile> = {}): Issued {
  return createCa({ subject, key: 'p256', ...validity, ...profile });
}

export function intermediate(issuer: Issued, subject = 'CN=Intermediate', profile: Partial<CertificateProfile> = {}): Issued {
  return issueIntermediate(issuer, { subject, key: 'p256', ...validity, ...profile });
}

export function endEntity(issuer: Issued, subject = 'CN=sun', profile: Partial<CertificateProfile> = {}): Issued {
  return issueCertificate(issuer, {
    subject,
    key: 'p256',
    ...validity,
    subjectAltNames: { dns: ['sun.tunsec.test'], ip: ['10.0.0.2'] },
    ...profile,
  });
}

export function storeWith(...anchors: Issued[]): TrustStore {
  const store = new TrustStore();
  for (const a of anchors) store.addTrustAnchor(a.certificate);
  return store;
}

/** A fresh temporary directory, removed by the returned cleanup. */
export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'tunsec-pki-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The strongSwan fixture's PKI files. */
export const FIXTURE = {
  caCert: demoFile('pki/ca/caCert.pem'),
  caKey: demoFile('pki/ca/caKey.pem'),
  moonCert: demoFile('pki/moon/cert.pem'),
  moonKey: demoFile('pki/moon/key.pem'),
  moonKeyPkcs8: demoFile('pki/moon/key.pkcs8.pem'),
  sunCert: demoFile('pki/sun/cert.pem'),
  sunKey: demoFile('pki/sun/key.pem'),
  sunKeyPkcs8: demoFile('pki/sun/key.pkcs8.pem'),
  pcap: demoFile('exchange.pcap'),
} as const;
