/**
 * RFC 5280 §6 path validation and CRL checking (src/pki/validate.ts) with
 * throwaway PKI from src/pki/issue.ts. Every certificate is valid
 * 2030-01-01 .. 2031-01-01 unless a test says otherwise; validation runs at
 * 2030-06-01T12:00:00Z.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createCa, generateKeyPair, issueCertificate, issueCrl, type Issued } from '../../src/pki/issue.js';
import { loadCertificateChain, readCrls } from '../../src/pki/load.js';
import { TrustStore } from '../../src/pki/store.js';
import { intermediatesToSend, validateCertificate, type ValidationOptions, type ValidationResult } from '../../src/pki/validate.js';
import { NOW, endEntity, intermediate, root, storeWith, tempDir } from './helpers.js';

const ROOT = 'C=CH, O=tunsec test, CN=Root';

function validate(cert: Issued, store: TrustStore, options: ValidationOptions = {}): ValidationResult {
  return validateCertificate(cert.certificate, store, { now: NOW, ...options });
}

function reasonOf(result: ValidationResult): string {
  return result.ok ? 'ok' : result.reason;
}

describe('path building', () => {
  it('a certificate issued by a trust anchor validates, with the chain peer → anchor', () => {
    const ca = root();
    const sun = endEntity(ca);
    const result = validate(sun, storeWith(ca));
    expect(result.ok).toBe(true);
    if (result.ok) expect(result.chain.map((c) => c.subject.text)).toEqual(['CN=sun', ROOT]);
  });

  it('an intermediate received in a CERT payload completes the path to the anchor', () => {
    const ca = root();
    const int = intermediate(ca);
    const sun = endEntity(int);
    const result = validate(sun, storeWith(ca), { intermediates: [int.certificate] });
    expect(result.ok).toBe(true);
    if (result.ok) expect(result.chain.map((c) => c.subject.text)).toEqual(['CN=sun', 'CN=Intermediate', ROOT]);
  });

  it('without the intermediate the peer certificate has no trusted CA for its issuer', () => {
    const ca = root();
    const sun = endEntity(intermediate(ca));
    expect(reasonOf(validate(sun, storeWith(ca)))).toBe("no trusted CA for issuer 'CN=Intermediate'");
  });

  it("a certificate from an untrusted CA is rejected with 'no trusted CA for issuer 'C=CH, O=Evil, CN=Evil CA''", () => {
    const evil = root('C=CH, O=Evil, CN=Evil CA');
    const sun = endEntity(evil);
    expect(reasonOf(validate(sun, storeWith(root())))).toBe("no trusted CA for issuer 'C=CH, O=Evil, CN=Evil CA'");
  });

  it('an intermediate sent by the peer does not help when its own issuer is untrusted', () => {
    const evil = root('C=CH, O=Evil, CN=Evil CA');
    const int = intermediate(evil);
    const sun = endEntity(int);
    expect(reasonOf(validate(sun, storeWith(root()), { intermediates: [int.certificate] }))).toBe("no trusted CA for issuer 'C=CH, O=Evil, CN=Evil CA'");
  });

  it('an impostor CA with the trusted name but another key fails the signature check', () => {
    const ca = root(ROOT, { subjectKeyIdentifier: false });
    const impostor = root(ROOT, { subjectKeyIdentifier: false });
    const sun = endEntity(impostor);
    expect(reasonOf(validate(sun, storeWith(ca)))).toBe(`signature of 'CN=sun' does not verify with issuer '${ROOT}'`);
  });

  it('with key identifiers, a same-named CA with another key is not even a candidate issuer', () => {
    const sun = endEntity(root());
    expect(reasonOf(validate(sun, storeWith(root())))).toBe(`no trusted CA for issuer '${ROOT}'`);
  });

  it('path building backtracks past an intermediate with the right name but the wrong key', () => {
    const ca = root();
    const good = intermediate(ca, 'CN=Intermediate', { subjectKeyIdentifier: false });
    const decoy = intermediate(ca, 'CN=Intermediate', { subjectKeyIdentifier: false });
    const sun = endEntity(good);
    const result = validate(sun, storeWith(ca), { intermediates: [decoy.certificate, good.certificate] });
    expect(result.ok).toBe(true);
    if (result.ok) expect(result.chain[1]).toBe(good.certificate);
  });

  it('a self-signed certificate that is not a trust anchor is rejected as such', () => {
    const selfie = createCa({ subject: 'CN=selfie', notBefore: new Date('2030-01-01T00:00:00Z'), notAfter: new Date('2031-01-01T00:00:00Z') });
    expect(reasonOf(validate(selfie, storeWith(root())))).toBe("self-signed certificate 'CN=selfie' is not trusted");
  });

  it('a peer certificate that is itself a trust anchor validates on its own', () => {
    const ca = root();
    const result = validate(ca, storeWith(ca));
    expect(result.ok).toBe(true);
    if (result.ok) expect(result.chain).toHaveLength(1);
  });

  it('a path longer than maxPathLength intermediates is refused', () => {
    const ca = root();
    const i1 = intermediate(ca, 'CN=I1');
    const i2 = intermediate(i1, 'CN=I2');
    const sun = endEntity(i2);
    const options = { intermediates: [i1.certificate, i2.certificate] };
    expect(validate(sun, storeWith(ca), options).ok).toBe(true);
    expect(reasonOf(validate(sun, storeWith(ca), { ...options, maxPathLength: 1 }))).toBe("path from 'CN=sun' needs more than 1 intermediate CA certificates");
  });

  it('a fullchain file (end entity first, then its intermediate) validates', () => {
    const ca = root();
    const int = intermediate(ca);
    const sun = endEntity(int);
    const { dir, cleanup } = tempDir();
    try {
      const file = join(dir, 'fullchain.pem');
      writeFileSync(file, sun.certificatePem + int.certificatePem);
      const chain = loadCertificateChain(file);
      expect(chain.certificate.subject.text).toBe('CN=sun');
      expect(chain.intermediates.map((c) => c.subject.text)).toEqual(['CN=Intermediate']);
      const store = storeWith(ca);
      chain.intermediates.forEach((c) => store.addIntermediate(c));
      const result = validateCertificate(chain.certificate, store, { now: NOW });
      expect(result.ok).toBe(true);
      if (result.ok) expect(result.chain.map((c) => c.source)).toEqual([`${file}[0]`, `${file}[1]`, ca.certificate.source]);
    } finally {
      cleanup();
    }
  });
});

describe('validity periods', () => {
  it("an expired peer certificate is rejected with 'peer cert 'CN=sun' expired on 2030-03-01T00:00:00Z'", () => {
    const ca = root();
    const sun = endEntity(ca, 'CN=sun', { notAfter: new Date('2030-03-01T00:00:00Z') });
    expect(reasonOf(validate(sun, storeWith(ca)))).toBe("peer cert 'CN=sun' expired on 2030-03-01T00:00:00Z");
  });

  it("a not yet valid peer certificate is rejected with 'peer cert 'CN=sun' not valid until 2030-07-01T00:00:00Z'", () => {
    const ca = root();
    const sun = endEntity(ca, 'CN=sun', { notBefore: new Date('2030-07-01T00:00:00Z') });
    expect(reasonOf(validate(sun, storeWith(ca)))).toBe("peer cert 'CN=sun' not valid until 2030-07-01T00:00:00Z");
  });

  it('the clock is injectable: the same certificate is valid a month later', () => {
    const ca = root();
    const sun = endEntity(ca, 'CN=sun', { notBefore: new Date('2030-07-01T00:00:00Z') });
    expect(validate(sun, storeWith(ca), { now: new Date('2030-08-01T00:00:00Z') }).ok).toBe(true);
  });

  it('an expired intermediate is named as the intermediate CA cert', () => {
    const ca = root();
    const int = intermediate(ca, 'CN=Intermediate', { notAfter: new Date('2030-05-01T00:00:00Z') });
    const sun = endEntity(int);
    expect(reasonOf(validate(sun, storeWith(ca), { intermediates: [int.certificate] }))).toBe(
      "intermediate CA cert 'CN=Intermediate' expired on 2030-05-01T00:00:00Z",
    );
  });

  it('an expired trust anchor is named as the trusted CA cert', () => {
    const ca = root(ROOT, { notAfter: new Date('2030-04-01T00:00:00Z') });
    const sun = endEntity(ca);
    expect(reasonOf(validate(sun, storeWith(ca)))).toBe(`trusted CA cert '${ROOT}' expired on 2030-04-01T00:00:00Z`);
  });
});

describe('CA constraints and extensions', () => {
  it("an intermediate without cA is rejected with ''CN=Intermediate' is not a CA (basicConstraints)'", () => {
    const ca = root();
    const int = intermediate(ca, 'CN=Intermediate', { basicConstraints: { cA: false } });
    const sun = endEntity(int);
    expect(reasonOf(validate(sun, storeWith(ca), { intermediates: [int.certificate] }))).toBe("'CN=Intermediate' is not a CA (basicConstraints)");
  });

  it('an intermediate without any basicConstraints is not a CA either', () => {
    const ca = root();
    const int = intermediate(ca, 'CN=Intermediate', { basicConstraints: null });
    const sun = endEntity(int);
    expect(reasonOf(validate(sun, storeWith(ca), { intermediates: [int.certificate] }))).toBe("'CN=Intermediate' is not a CA (basicConstraints)");
  });

  it('an intermediate whose keyUsage lacks keyCertSign may not sign certificates', () => {
    const ca = root();
    const int = intermediate(ca, 'CN=Intermediate', { keyUsage: ['digitalSignature', 'cRLSign'] });
    const sun = endEntity(int);
    expect(reasonOf(validate(sun, storeWith(ca), { intermediates: [int.certificate] }))).toBe(
      "'CN=Intermediate' may not sign certificates (keyUsage lacks keyCertSign)",
    );
  });

  it('a root with pathLenConstraint 0 does not allow an intermediate below it', () => {
    const ca = root(ROOT, { basicConstraints: { cA: true, pathLenConstraint: 0 } });
    const int = intermediate(ca);
    const sun = endEntity(int);
    expect(reasonOf(validate(sun, storeWith(ca), { intermediates: [int.certificate] }))).toBe(
      `'${ROOT}' allows 0 intermediate CA certificate(s) below it (pathLenConstraint), the path has 1`,
    );
    expect(validate(endEntity(ca), storeWith(ca)).ok).toBe(true);
  });

  it('a peer certificate with an unknown critical extension is rejected, a non-critical one is ignored', () => {
    const ca = root();
    const extension = { oid: '1.3.6.1.4.1.55555.1', value: Buffer.from([0x05, 0x00]) };
    const critical = endEntity(ca, 'CN=sun', { extraExtensions: [{ ...extension, critical: true }] });
    const plain = endEntity(ca, 'CN=sun', { extraExtensions: [{ ...extension, critical: false }] });
    expect(reasonOf(validate(critical, storeWith(ca)))).toBe("peer cert 'CN=sun' has an unsupported critical extension 1.3.6.1.4.1.55555.1");
    expect(validate(plain, storeWith(ca)).ok).toBe(true);
  });

  it('a critical nameConstraints extension on an intermediate is refused, as it is not enforced', () => {
    const ca = root();
    // NameConstraints ::= SEQUENCE { permittedSubtrees [0] { GeneralSubtree { dNSName "test" } } }
    const value = Buffer.from('300ca00a3008820674756e736563', 'hex');
    const int = intermediate(ca, 'CN=Intermediate', { extraExtensions: [{ oid: '2.5.29.30', critical: true, value }] });
    const sun = endEntity(int);
    expect(reasonOf(validate(sun, storeWith(ca), { intermediates: [int.certificate] }))).toBe(
      "intermediate CA cert 'CN=Intermediate' has an unsupported critical extension 2.5.29.30",
    );
  });

  it('a peer certificate whose keyUsage lacks digitalSignature may not sign IKE AUTH', () => {
    const ca = root();
    const sun = endEntity(ca, 'CN=sun', { keyUsage: ['keyEncipherment'] });
    expect(reasonOf(validate(sun, storeWith(ca)))).toBe("peer cert 'CN=sun' may not sign (keyUsage lacks digitalSignature)");
    expect(validate(endEntity(ca, 'CN=sun', { keyUsage: ['digitalSignature'] }), storeWith(ca)).ok).toBe(true);
  });

  it('an ECDSA P-384 end-entity certificate validates under a P-384 root (ecdsa-with-SHA384) and an RSA root', () => {
    const ecRoot = root(ROOT, { key: 'p384' });
    const ecSun = endEntity(ecRoot, 'CN=sun', { key: 'p384' });
    expect(ecSun.certificate.publicKey.asymmetricKeyDetails?.namedCurve).toBe('secp384r1');
    expect(ecSun.certificate.signatureAlgorithm.toString('hex')).toBe('300a06082a8648ce3d040303');
    expect(validate(ecSun, storeWith(ecRoot)).ok).toBe(true);

    const rsaRoot = root(ROOT, { key: 'rsa2048' });
    const sun = endEntity(rsaRoot, 'CN=sun', { key: 'p384' });
    expect(validate(sun, storeWith(rsaRoot)).ok).toBe(true);
  });
});

describe('revocation (CRLs)', () => {
  const REVOKED_AT = new Date('2030-05-15T00:00:00Z');
  const current = { thisUpdate: new Date('2030-05-01T00:00:00Z'), nextUpdate: new Date('2030-07-01T00:00:00Z') };

  function pki(): { ca: Issued; int: Issued; sun: Issued; store: TrustStore; options: ValidationOptions } {
    const ca = root();
    const int = intermediate(ca);
    const sun = endEntity(int, 'CN=sun', { serialNumber: 0x0a });
    const store = storeWith(ca);
    store.addIntermediate(int.certificate);
    store.addCrl(issueCrl(ca, current).crl);
    return { ca, int, sun, store, options: {} };
  }

  it("a certificate revoked by its CA's CRL is rejected with 'certificate 'CN=sun' serial 0x0a revoked at … (keyCompromise)'", () => {
    const { int, sun, store } = pki();
    store.addCrl(issueCrl(int, { ...current, revoked: [{ serialNumber: 0x0a, revocationDate: REVOKED_AT, reason: 'keyCompromise' }] }).crl);
    const expected = "certificate 'CN=sun' serial 0x0a revoked at 2030-05-15T00:00:00Z (keyCompromise)";
    expect(reasonOf(validate(sun, store))).toBe(expected);
    expect(reasonOf(validate(sun, store, { strictCrl: true }))).toBe(expected);
  });

  it('a revocation without a reasonCode is reported without a reason', () => {
    const { int, sun, store } = pki();
    store.addCrl(issueCrl(int, { ...current, revoked: [{ serialNumber: 0x0a, revocationDate: REVOKED_AT }] }).crl);
    expect(reasonOf(validate(sun, store))).toBe("certificate 'CN=sun' serial 0x0a revoked at 2030-05-15T00:00:00Z");
  });

  it('a revoked intermediate takes its end entities with it', () => {
    const { ca, int, sun, store } = pki();
    const revoked = issueCrl(ca, {
      ...current,
      crlNumber: 2,
      revoked: [{ serialNumber: int.certificate.serialNumber, revocationDate: REVOKED_AT, reason: 'cACompromise' }],
    });
    store.addCrl(revoked.crl);
    store.addCrl(issueCrl(int, current).crl);
    expect(reasonOf(validate(sun, store))).toMatch(/^certificate 'CN=Intermediate' serial 0x[0-9a-f]+ revoked at 2030-05-15T00:00:00Z \(cACompromise\)$/);
  });

  it('a certificate listed in no current CRL passes strictcrl, with a note per checked certificate', () => {
    const { int, sun, store } = pki();
    store.addCrl(issueCrl(int, { ...current, revoked: [{ serialNumber: 0x0b, revocationDate: REVOKED_AT }] }).crl);
    const result = validate(sun, store, { strictCrl: true });
    expect(result).toMatchObject({
      ok: true,
      notes: [
        "certificate 'CN=sun' is not revoked (CRL #1 from 'CN=Intermediate', thisUpdate 2030-05-01T00:00:00Z)",
        `certificate 'CN=Intermediate' is not revoked (CRL #1 from '${ROOT}', thisUpdate 2030-05-01T00:00:00Z)`,
      ],
    });
  });

  it('without a CRL, strictcrl rejects and the default accepts with a note', () => {
    const { sun, store } = pki();
    expect(reasonOf(validate(sun, store, { strictCrl: true }))).toBe("no valid CRL for 'CN=sun' (no CRL from 'CN=Intermediate')");
    expect(validate(sun, store)).toMatchObject({
      ok: true,
      notes: ["revocation status of 'CN=sun' unknown (no CRL from 'CN=Intermediate')", expect.any(String)],
    });
  });

  it('an expired CRL is not a valid CRL: strictcrl rejects, the default accepts with a note', () => {
    const { int, sun, store } = pki();
    store.addCrl(issueCrl(int, { thisUpdate: new Date('2030-04-01T00:00:00Z'), nextUpdate: new Date('2030-05-31T00:00:00Z') }).crl);
    expect(reasonOf(validate(sun, store, { strictCrl: true }))).toBe(
      "no valid CRL for 'CN=sun' (CRL #1 from 'CN=Intermediate' expired on 2030-05-31T00:00:00Z)",
    );
    const result = validate(sun, store);
    expect(result.ok && result.notes[0]).toBe("revocation status of 'CN=sun' unknown (CRL #1 from 'CN=Intermediate' expired on 2030-05-31T00:00:00Z)");
  });

  it('a CRL issued in the future is not a valid CRL yet', () => {
    const { int, sun, store } = pki();
    store.addCrl(issueCrl(int, { thisUpdate: new Date('2030-06-02T00:00:00Z') }).crl);
    expect(reasonOf(validate(sun, store, { strictCrl: true }))).toBe(
      "no valid CRL for 'CN=sun' (CRL #1 from 'CN=Intermediate' not valid until 2030-06-02T00:00:00Z)",
    );
  });

  it('a serial revoked in an expired but genuine CRL stays revoked', () => {
    const { int, sun, store } = pki();
    store.addCrl(
      issueCrl(int, {
        thisUpdate: new Date('2030-04-01T00:00:00Z'),
        nextUpdate: new Date('2030-05-31T00:00:00Z'),
        revoked: [{ serialNumber: 0x0a, revocationDate: new Date('2030-04-01T00:00:00Z'), reason: 'superseded' }],
      }).crl,
    );
    expect(reasonOf(validate(sun, store))).toBe("certificate 'CN=sun' serial 0x0a revoked at 2030-04-01T00:00:00Z (superseded)");
  });

  it('a CRL with a bad signature is ignored: its revocations do not count, strictcrl finds no valid CRL', () => {
    const { int, sun, store } = pki();
    const forged = issueCrl(int, {
      ...current,
      signingKey: generateKeyPair('p256').privateKey,
      revoked: [{ serialNumber: 0x0a, revocationDate: REVOKED_AT, reason: 'keyCompromise' }],
    });
    store.addCrl(forged.crl);
    const result = validate(sun, store);
    expect(result.ok && result.notes[0]).toBe("revocation status of 'CN=sun' unknown (CRL #1 from 'CN=Intermediate' ignored: its signature does not verify)");
    expect(reasonOf(validate(sun, store, { strictCrl: true }))).toBe(
      "no valid CRL for 'CN=sun' (CRL #1 from 'CN=Intermediate' ignored: its signature does not verify)",
    );
    store.addCrl(issueCrl(int, { ...current, crlNumber: 2 }).crl);
    const withGenuine = validate(sun, store);
    expect(withGenuine.ok && withGenuine.notes.slice(0, 2)).toEqual([
      "certificate 'CN=sun' is not revoked (CRL #2 from 'CN=Intermediate', thisUpdate 2030-05-01T00:00:00Z)",
      "CRL #1 from 'CN=Intermediate' ignored: its signature does not verify",
    ]);
  });

  it('a CRL from an issuer whose keyUsage lacks cRLSign is ignored', () => {
    const ca = root();
    const int = intermediate(ca, 'CN=Intermediate', { keyUsage: ['keyCertSign'] });
    const sun = endEntity(int, 'CN=sun', { serialNumber: 0x0a });
    const store = storeWith(ca);
    store.addIntermediate(int.certificate);
    store.addCrl(issueCrl(int, { ...current, revoked: [{ serialNumber: 0x0a, revocationDate: REVOKED_AT }] }).crl);
    expect(reasonOf(validate(sun, store, { strictCrl: true }))).toBe(
      "no valid CRL for 'CN=sun' (CRL #1 from 'CN=Intermediate' ignored: its issuer may not sign CRLs (keyUsage lacks cRLSign))",
    );
  });

  it('a delta CRL is not used', () => {
    const { int, sun, store } = pki();
    // deltaCRLIndicator (2.5.29.27), critical, BaseCRLNumber 1
    store.addCrl(issueCrl(int, { ...current, extraExtensions: [{ oid: '2.5.29.27', critical: true, value: Buffer.from('020101', 'hex') }] }).crl);
    expect(reasonOf(validate(sun, store, { strictCrl: true }))).toBe(
      "no valid CRL for 'CN=sun' (CRL #1 from 'CN=Intermediate' ignored: it has an unsupported extension deltaCRLIndicator)",
    );
  });

  it('the newest current CRL is the one named in the note; a revocation in any genuine CRL counts', () => {
    const { int, sun, store } = pki();
    store.addCrl(issueCrl(int, { ...current, crlNumber: 1 }).crl);
    store.addCrl(issueCrl(int, { ...current, thisUpdate: new Date('2030-05-20T00:00:00Z'), crlNumber: 2 }).crl);
    const result = validate(sun, store, { strictCrl: true });
    expect(result.ok && result.notes[0]).toBe("certificate 'CN=sun' is not revoked (CRL #2 from 'CN=Intermediate', thisUpdate 2030-05-20T00:00:00Z)");
  });

  it('CRLs loaded from a PEM file are named by the file in messages', () => {
    const { int, sun, store } = pki();
    const pem = issueCrl(int, { thisUpdate: new Date('2030-04-01T00:00:00Z'), nextUpdate: new Date('2030-05-31T00:00:00Z') }).pem;
    for (const crl of readCrls(Buffer.from(pem), 'intermediate.crl')) store.addCrl(crl);
    expect(reasonOf(validate(sun, store, { strictCrl: true }))).toBe(
      "no valid CRL for 'CN=sun' (CRL intermediate.crl from 'CN=Intermediate' expired on 2030-05-31T00:00:00Z)",
    );
  });

  it('strictcrl also needs a CRL for each intermediate', () => {
    const ca = root();
    const int = intermediate(ca);
    const sun = endEntity(int);
    const store = storeWith(ca);
    store.addCrl(issueCrl(int, current).crl);
    expect(reasonOf(validate(sun, store, { strictCrl: true, intermediates: [int.certificate] }))).toBe(
      `no valid CRL for 'CN=Intermediate' (no CRL from '${ROOT}')`,
    );
  });
});

describe('issued certificates', () => {
  it('an end-entity certificate issued with a public key only cannot issue further', () => {
    const ca = root();
    const onlyPublic = issueCertificate(ca, { subject: 'CN=pub', key: generateKeyPair('p256').publicKey });
    expect(onlyPublic.privateKey).toBeUndefined();
    expect(() => issueCertificate(onlyPublic, { subject: 'CN=child' })).toThrow("cannot issue 'CN=child': the issuer has no private key");
  });

  it('trust stores keep certificates once, and a trust anchor added later wins over an intermediate', () => {
    const ca = root();
    const store = new TrustStore();
    store.addIntermediate(ca.certificate);
    store.addTrustAnchor(ca.certificate);
    store.addTrustAnchor(ca.certificate);
    expect(store.trustAnchors).toHaveLength(1);
    expect(store.intermediateCertificates).toHaveLength(0);
  });
});

describe('Ed25519 and Ed448 certificates (RFC 8410)', () => {
  it('a path root (Ed25519) → intermediate (Ed448) → end entity (Ed25519) validates, and OpenSSL agrees with every signature', async () => {
    const { X509Certificate } = await import('node:crypto');
    const ca = root(ROOT, { key: 'ed25519' });
    const int = intermediate(ca, 'CN=Intermediate', { key: 'ed448' });
    const sun = endEntity(int, 'CN=sun', { key: 'ed25519' });
    // RFC 8410 §3: signatureAlgorithm is SEQUENCE { id-Ed25519 / id-Ed448 } with no parameters.
    expect(sun.certificate.signatureAlgorithm.toString('hex')).toBe('300506032b6571');
    expect(int.certificate.signatureAlgorithm.toString('hex')).toBe('300506032b6570');
    expect(sun.certificate.publicKey.asymmetricKeyType).toBe('ed25519');
    const result = validate(sun, storeWith(ca), { intermediates: [int.certificate] });
    expect(reasonOf(result)).toBe('ok');
    if (result.ok) expect(result.chain.map((c) => c.subject.text)).toEqual(['CN=sun', 'CN=Intermediate', ROOT]);
    expect(new X509Certificate(sun.certificatePem).verify(int.certificate.publicKey)).toBe(true);
    expect(new X509Certificate(int.certificatePem).verify(ca.certificate.publicKey)).toBe(true);
  });

  it('an Ed25519 certificate whose issuer key is another Ed25519 key does not validate', () => {
    const ca = root(ROOT, { key: 'ed25519' });
    const impostor = root(ROOT, { key: 'ed25519' });
    const sun = endEntity(impostor, 'CN=sun', { key: 'ed25519', authorityKeyIdentifier: false });
    expect(reasonOf(validate(sun, storeWith(ca)))).toMatch(/signature/);
  });
});

describe('intermediatesToSend: the CA certificates that go with our own', () => {
  it('an intermediate the store holds (as anchor, e.g. from authorities.cacerts) is sent; the self-signed root never', () => {
    const ca = root();
    const int1 = intermediate(ca, 'CN=Intermediate 1');
    const int2 = intermediate(int1, 'CN=Intermediate 2');
    const sun = endEntity(int2);
    expect(intermediatesToSend(sun.certificate, storeWith(ca, int1, int2)).map((c) => c.subject.text)).toEqual(['CN=Intermediate 2', 'CN=Intermediate 1']);
    // The configured chain comes first and is not repeated.
    expect(intermediatesToSend(sun.certificate, storeWith(ca, int1), [int2.certificate]).map((c) => c.subject.text)).toEqual([
      'CN=Intermediate 2',
      'CN=Intermediate 1',
    ]);
    expect(intermediatesToSend(endEntity(ca).certificate, storeWith(ca, int1))).toEqual([]);
  });

  it('a CA with the right name but another key is not sent', () => {
    const ca = root();
    const int = intermediate(ca, 'CN=Intermediate');
    const impostor = intermediate(ca, 'CN=Intermediate');
    const sun = endEntity(int, 'CN=sun', { authorityKeyIdentifier: false });
    expect(intermediatesToSend(sun.certificate, storeWith(ca, impostor))).toEqual([]);
  });
});
