/**
 * Hostile input: certificates arrive in CERT payloads from anyone who can
 * reach UDP 500. Parsers must answer with a PkiError, never crash or throw
 * anything else.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseCertificate } from '../../src/pki/certificate.js';
import { parseCrl } from '../../src/pki/crl.js';
import { PkiError } from '../../src/pki/errors.js';
import { identityFromIdPayload, parseIdentity } from '../../src/pki/identity.js';
import { issueCrl } from '../../src/pki/issue.js';
import { loadCertificates, readCertificates, readCrls, readPrivateKey } from '../../src/pki/load.js';
import { TrustStore } from '../../src/pki/store.js';
import { validateCertificate } from '../../src/pki/validate.js';
import { FIXTURE, endEntity, root } from './helpers.js';

/** Run `parse`; it may succeed, or fail with a PkiError — anything else fails the property. */
function onlyPkiErrors(parse: () => unknown): void {
  try {
    parse();
  } catch (err) {
    if (!(err instanceof PkiError)) throw err;
  }
}

const [moon] = loadCertificates(FIXTURE.moonCert);
const [ca] = loadCertificates(FIXTURE.caCert);

describe('malformed certificates', () => {
  it('random bytes given to the certificate parser only ever produce a PkiError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        expect(() => parseCertificate(bytes, 'CERT payload')).toThrow(PkiError);
      }),
      { numRuns: 2000 },
    );
  });

  it('random bytes behind a SEQUENCE header only ever produce a PkiError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (body) => {
        const bytes = Buffer.concat([Buffer.from([0x30, 0x82, body.length >> 8, body.length & 0xff]), body]);
        onlyPkiErrors(() => parseCertificate(bytes, 'CERT payload'));
      }),
      { numRuns: 2000 },
    );
  });

  it('a real certificate with random octets changed parses or fails with a PkiError, and never validates if changed', () => {
    const store = new TrustStore();
    store.addTrustAnchor(ca!);
    const now = new Date('2027-01-01T00:00:00Z');
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.tuple(fc.nat({ max: moon!.der.length - 1 }), fc.integer({ min: 1, max: 255 })), {
          minLength: 1,
          maxLength: 4,
          selector: ([offset]) => offset,
        }),
        (edits) => {
          const bytes = Buffer.from(moon!.der);
          for (const [offset, xor] of edits) bytes[offset]! ^= xor;
          let cert;
          try {
            cert = parseCertificate(bytes, 'mutated');
          } catch (err) {
            expect(err).toBeInstanceOf(PkiError);
            return;
          }
          // Any change to the signed bytes or the signature must break validation.
          expect(validateCertificate(cert, store, { now }).ok).toBe(false);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('a truncated certificate at every length is a PkiError', () => {
    for (let n = 0; n < moon!.der.length; n += 7) {
      expect(() => parseCertificate(moon!.der.subarray(0, n), 'cut')).toThrow(PkiError);
    }
  });

  it('random text and PEM-looking text given to the loaders only ever produce a PkiError', () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 300 }),
        fc.constantFrom('CERTIFICATE', 'X509 CRL', 'PRIVATE KEY', 'RSA PRIVATE KEY', 'EC PRIVATE KEY'),
        fc.base64String({ maxLength: 200 }),
        (text, label, b64) => {
          for (const input of [text, `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`]) {
            const data = Buffer.from(input);
            onlyPkiErrors(() => readCertificates(data, 'x.pem'));
            onlyPkiErrors(() => readCrls(data, 'x.pem'));
            onlyPkiErrors(() => readPrivateKey(data, 'x.pem'));
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('malformed CRLs and identities', () => {
  it('random bytes and mutated CRLs given to the CRL parser only ever produce a PkiError', () => {
    const issuer = root();
    const crl = issueCrl(issuer, { revoked: [{ serialNumber: 1, reason: 'keyCompromise' }] }).der;
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat({ max: crl.length - 1 }), fc.integer({ min: 1, max: 255 }), (bytes, offset, xor) => {
        expect(() => parseCrl(bytes, 'crl')).toThrow(PkiError);
        const mutated = Buffer.from(crl);
        mutated[offset]! ^= xor;
        onlyPkiErrors(() => parseCrl(mutated, 'crl'));
      }),
      { numRuns: 1000 },
    );
  });

  it('random ID payload data only ever produces an identity or a PkiError', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 80 }), (idType, data) => {
        onlyPkiErrors(() => identityFromIdPayload({ idType, data: Buffer.from(data) }));
      }),
      { numRuns: 2000 },
    );
  });

  it('random configuration text only ever produces an identity or a PkiError', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (text) => {
        onlyPkiErrors(() => parseIdentity(text));
      }),
      { numRuns: 2000 },
    );
  });

  it('an unknown GeneralName form is kept, a subjectAltName that is not a SEQUENCE is a PkiError naming it', () => {
    const der = Buffer.from(endEntity(root()).certificate.der);
    // dNSName [2] IA5String (0x82) → a constructed [2] (0xa2): an unknown form, kept as "other".
    der[der.indexOf(Buffer.from('sun.tunsec.test')) - 2] = 0xa2;
    expect(parseCertificate(der, 'CERT payload').subjectAltNames[0]).toMatchObject({ type: 'other', tag: 0xa2 });
    // Extension { extnID 2.5.29.17, extnValue OCTET STRING { SEQUENCE … } }: make it a SET.
    const sanOid = Buffer.from('0603551d11', 'hex');
    der[der.indexOf(sanOid) + sanOid.length + 2] = 0x31;
    expect(() => parseCertificate(der, 'CERT payload')).toThrow('CERT payload: not a valid X.509 certificate (subjectAltName: expected tag 0x30, found 0x31)');
  });
});
