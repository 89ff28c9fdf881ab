/**
 * The signature on a certificate or CRL (RFC 5280 §4.1.1.2-3, §5.1.1.2-3):
 * `signatureValue` over the DER of tbsCertificate / tbsCertList with the
 * algorithm named by `signatureAlgorithm`, checked with the issuer's key.
 *
 * The AlgorithmIdentifier is read by src/crypto's RFC 7427 parser (RSA
 * PKCS#1 v1.5, RSASSA-PSS, ECDSA with SHA-1/SHA-2), plus Ed25519 and Ed448
 * (RFC 8410); the arithmetic is OpenSSL's via node:crypto.
 */
import { constants, verify, type KeyObject } from 'node:crypto';
import { parseAlgorithmIdentifier } from '../crypto/rfc7427.js';
import { CryptoError } from '../crypto/types.js';
import { DerError, Tag, readChildren, readOid, readWhole } from './der.js';

export type SignatureCheck = { readonly ok: true } | { readonly ok: false; readonly unsupported?: string };

/** The dotted OID of an AlgorithmIdentifier, or its hex when unreadable. */
export function algorithmOid(algorithmIdentifier: Buffer): string {
  try {
    const seq = readWhole(algorithmIdentifier, Tag.SEQUENCE, 'AlgorithmIdentifier');
    const [first] = readChildren(seq.content, 'AlgorithmIdentifier');
    if (first?.tag === Tag.OID) return readOid(first, 'AlgorithmIdentifier');
  } catch (err) {
    if (!(err instanceof DerError)) throw err;
  }
  return `#${algorithmIdentifier.toString('hex')}`;
}

/**
 * Does `signature` verify over `signedData` with `issuerKey`? `{ ok: false }`
 * for a wrong signature or a key that does not fit the algorithm;
 * `{ ok: false, unsupported }` when the algorithm is unknown or malformed.
 * Never throws.
 */
export function verifySignedData(signedData: Uint8Array, algorithmIdentifier: Buffer, signature: Uint8Array, issuerKey: KeyObject): SignatureCheck {
  const oid = algorithmOid(algorithmIdentifier);
  let algorithm;
  try {
    algorithm = parseAlgorithmIdentifier(algorithmIdentifier);
  } catch (err) {
    if (err instanceof CryptoError) return { ok: false, unsupported: `${oid} (${err.message})` };
    return { ok: false, unsupported: oid };
  }
  const keyType = issuerKey.asymmetricKeyType;
  switch (algorithm.scheme) {
    case 'rsa-pkcs1-v1_5':
      if (keyType !== 'rsa') return { ok: false };
      return attempt(() => verify(algorithm.digest, signedData, { key: issuerKey, padding: constants.RSA_PKCS1_PADDING }, signature));
    case 'rsassa-pss':
      if (keyType !== 'rsa' && keyType !== 'rsa-pss') return { ok: false };
      return attempt(() =>
        verify(algorithm.digest, signedData, { key: issuerKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: algorithm.saltLength ?? 0 }, signature),
      );
    case 'ecdsa':
      if (keyType !== 'ec') return { ok: false };
      return attempt(() => verify(algorithm.digest, signedData, { key: issuerKey, dsaEncoding: 'der' }, signature));
    case 'eddsa':
      // RFC 8410 §6: PureEdDSA over the DER of the TBS structure.
      if (keyType !== algorithm.eddsaKeyType) return { ok: false };
      return attempt(() => verify(null, signedData, issuerKey, signature));
  }
}

function attempt(run: () => boolean): SignatureCheck {
  try {
    return run() ? { ok: true } : { ok: false };
  } catch {
    // OpenSSL refuses malformed signatures (bad DER, wrong length) by throwing: not valid either way.
    return { ok: false };
  }
}
