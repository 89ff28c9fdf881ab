/** Certificate/CRL signature checks for each algorithm family (src/pki/signed.ts). */
import { constants, generateKeyPairSync, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ECDSA_WITH_SHA384, RSASSA_PSS_SHA256, SHA256_WITH_RSA_ENCRYPTION } from '../../src/crypto/rfc7427.js';
import { verifySignedData } from '../../src/pki/signed.js';

const data = Buffer.from('tbsCertificate stand-in');

describe('verifySignedData', () => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
  const ed = generateKeyPairSync('ed25519');

  it('verifies sha256WithRSAEncryption, RSASSA-PSS, ecdsa-with-SHA384 and Ed25519 signatures', () => {
    const pkcs1 = sign('sha256', data, rsa.privateKey);
    const pss = sign('sha256', data, { key: rsa.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 });
    const ecdsa = sign('sha384', data, ec.privateKey);
    const eddsa = sign(null, data, ed.privateKey);
    expect(verifySignedData(data, SHA256_WITH_RSA_ENCRYPTION.algorithmIdentifier, pkcs1, rsa.publicKey)).toEqual({ ok: true });
    expect(verifySignedData(data, RSASSA_PSS_SHA256.algorithmIdentifier, pss, rsa.publicKey)).toEqual({ ok: true });
    expect(verifySignedData(data, ECDSA_WITH_SHA384.algorithmIdentifier, ecdsa, ec.publicKey)).toEqual({ ok: true });
    expect(verifySignedData(data, Buffer.from('300506032b6570', 'hex'), eddsa, ed.publicKey)).toEqual({ ok: true });
  });

  it('a changed message, a key of the wrong type or a garbage signature does not verify', () => {
    const pkcs1 = sign('sha256', data, rsa.privateKey);
    expect(verifySignedData(Buffer.from('other'), SHA256_WITH_RSA_ENCRYPTION.algorithmIdentifier, pkcs1, rsa.publicKey)).toEqual({ ok: false });
    expect(verifySignedData(data, SHA256_WITH_RSA_ENCRYPTION.algorithmIdentifier, pkcs1, ec.publicKey)).toEqual({ ok: false });
    expect(verifySignedData(data, ECDSA_WITH_SHA384.algorithmIdentifier, Buffer.from([0x30, 0x01]), ec.publicKey)).toEqual({ ok: false });
  });

  it('an algorithm it does not know is reported as unsupported, with its OID', () => {
    // md5WithRSAEncryption 1.2.840.113549.1.1.4
    const md5 = Buffer.from('300d06092a864886f70d0101040500', 'hex');
    const result = verifySignedData(data, md5, Buffer.alloc(256), rsa.publicKey);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.unsupported).toMatch(/^1\.2\.840\.113549\.1\.1\.4 \(/);
  });
});
