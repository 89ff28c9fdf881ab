/**
 * Signatures for certificate-based IKEv2 authentication: the AUTH payload's
 * Authentication Data for the signature methods (RFC 7296 §3.8 and the IANA
 * "IKEv2 Authentication Method" registry):
 *
 * - 1  RSA Digital Signature (RFC 7296 §3.8): RSASSA-PKCS1-v1_5 with SHA-1,
 *      the bare signature.
 * - 9, 10, 11  ECDSA with SHA-256 on P-256, SHA-384 on P-384, SHA-512 on
 *      P-521 (RFC 4754): the signature is r ‖ s, each the curve's
 *      field size, big-endian; not DER.
 * - 14 Digital Signature (RFC 7427 §3): ASN.1 Length ‖ AlgorithmIdentifier ‖
 *      signature, with RSASSA-PKCS1-v1_5, RSASSA-PSS (MGF1 with the same
 *      hash, trailer 1) or ECDSA; an ECDSA signature value there is the DER
 *      ECDSA-Sig-Value of RFC 3279 §2.2.3; and PureEdDSA, Ed25519 and Ed448
 *      (RFC 8420, RFC 8032), whose hash is "Identity" and whose signature
 *      value is RFC 8032's R ‖ S as is (64 / 114 octets).
 *
 * The octets signed are RFC 7296 §2.15's InitiatorSignedOctets /
 * ResponderSignedOctets, built by the caller; the hashing and the RSA / ECDSA
 * arithmetic are OpenSSL's (node:crypto). Keys are node KeyObjects, e.g. from
 * `new X509Certificate(pem).publicKey` or `createPrivateKey(pem)`.
 *
 * Errors: `verifyAuth` answers false for a signature that does not verify and
 * throws CryptoError for what cannot be a signature at all: a malformed
 * encoding (AuthData layout, AlgorithmIdentifier, r ‖ s width, ECDSA-Sig-Value
 * DER), an unsupported or disallowed algorithm, or a key that does not fit the
 * method or algorithm (e.g. an ECDSA AlgorithmIdentifier with an RSA key).
 */
import { constants, sign, verify, type KeyObject } from 'node:crypto';
import { CryptoError } from './types.js';
import {
  digestForHashId,
  eddsaAlgorithm,
  encodeDigitalSignatureAuthData,
  parseDigitalSignatureAuthData,
  readDerSequence,
  readDerUnsignedInteger,
  readWholeDer,
  signatureAlgorithm,
  SignatureHashAlgorithm,
  type DigestName,
  type EddsaKeyType,
  type SignatureAlgorithm,
} from './rfc7427.js';
import { errorMessage } from '../util/format.js';

/** IANA "IKEv2 Authentication Method" values for signatures. */
export enum SignatureAuthMethod {
  /** RFC 7296 §3.8 */
  RSA_DIGITAL_SIGNATURE = 1,
  /** RFC 4754: ECDSA with SHA-256 on the P-256 curve */
  ECDSA_SHA256_P256 = 9,
  /** RFC 4754: ECDSA with SHA-384 on the P-384 curve */
  ECDSA_SHA384_P384 = 10,
  /** RFC 4754: ECDSA with SHA-512 on the P-521 curve */
  ECDSA_SHA512_P521 = 11,
  /** RFC 7427 */
  DIGITAL_SIGNATURE = 14,
}

/** RFC 4754: curve (OpenSSL name), hash and r/s width of methods 9-11. */
const RFC4754_METHODS: Readonly<Record<number, { curve: string; digest: DigestName; width: number }>> = {
  [SignatureAuthMethod.ECDSA_SHA256_P256]: { curve: 'prime256v1', digest: 'sha256', width: 32 },
  [SignatureAuthMethod.ECDSA_SHA384_P384]: { curve: 'secp384r1', digest: 'sha384', width: 48 },
  [SignatureAuthMethod.ECDSA_SHA512_P521]: { curve: 'secp521r1', digest: 'sha512', width: 66 },
};

/**
 * Hashes acceptable in a received method-14 signature unless the caller says
 * otherwise: SHA-2, and Identity (RFC 8420), which only EdDSA uses. SHA-1 is
 * collision-broken and RFC 8247 (IKEv2 algorithm requirements) steers Digital
 * Signature away from it; a caller that must talk to a SHA-1-only peer passes
 * it explicitly.
 */
export const DEFAULT_ACCEPTED_SIGNATURE_HASHES: readonly SignatureHashAlgorithm[] = [
  SignatureHashAlgorithm.SHA2_256,
  SignatureHashAlgorithm.SHA2_384,
  SignatureHashAlgorithm.SHA2_512,
  SignatureHashAlgorithm.IDENTITY,
];

/** The EdDSA key type of a key (RFC 8420), or undefined for RSA / ECDSA keys. */
export function eddsaKeyType(key: KeyObject): EddsaKeyType | undefined {
  const type = key.asymmetricKeyType;
  return type === 'ed25519' || type === 'ed448' ? type : undefined;
}

/**
 * Thrown by chooseSignatureAlgorithm when the peer's SIGNATURE_HASH_ALGORITHMS
 * rules out every algorithm our key can sign with: the peer refuses our
 * signature scheme (our credentials are fine).
 */
export class SignatureSchemeRefused extends CryptoError {
  constructor(
    readonly keyDescription: string,
    readonly needed: SignatureHashAlgorithm,
    readonly peerHashes: readonly number[],
  ) {
    super(
      `the peer refuses our signature scheme: our ${keyDescription} key needs hash algorithm ${needed}` +
        ` (${needed === SignatureHashAlgorithm.IDENTITY ? 'Identity, RFC 8420' : 'RFC 7427'}) in SIGNATURE_HASH_ALGORITHMS, the peer announced` +
        ` [${peerHashes.join(', ')}]`,
    );
  }
}

export interface SignAuthRequest {
  readonly method: SignatureAuthMethod;
  readonly privateKey: KeyObject;
  /** The signed octets of RFC 7296 §2.15. */
  readonly octets: Uint8Array;
  /** Method 14: the algorithm to use. Default: from the key type and `hash` (RSA → PKCS#1 v1.5, EC → ECDSA). */
  readonly algorithm?: SignatureAlgorithm;
  /** Method 14 without `algorithm`: the hash; default SHA2-256 (Identity for Ed25519 / Ed448 keys). */
  readonly hash?: SignatureHashAlgorithm;
}

export interface SignedAuth {
  readonly method: SignatureAuthMethod;
  /** The AUTH payload's Authentication Data. */
  readonly authData: Buffer;
  /** Method 14: the algorithm used. */
  readonly algorithm?: SignatureAlgorithm;
}

export interface VerifyAuthRequest {
  readonly method: number;
  /** The peer's public key (a private key works too: its public half is used). */
  readonly publicKey: KeyObject;
  readonly octets: Uint8Array;
  readonly authData: Uint8Array;
  /** Method 14: hashes the peer may use; default DEFAULT_ACCEPTED_SIGNATURE_HASHES. */
  readonly acceptedHashes?: readonly SignatureHashAlgorithm[];
}

/** Sign the AUTH octets; CryptoError for a key that does not fit the method or algorithm. */
export function signAuth(request: SignAuthRequest): SignedAuth {
  const { method, privateKey, octets } = request;
  if (privateKey.type !== 'private') throw new CryptoError(`AUTH method ${method}: signing needs a private key`);
  switch (method) {
    case SignatureAuthMethod.RSA_DIGITAL_SIGNATURE:
      requireRsa(privateKey, 'AUTH method 1 (RSA Digital Signature)', false);
      return { method, authData: rawSign('sha1', octets, { key: privateKey, padding: constants.RSA_PKCS1_PADDING }) };
    case SignatureAuthMethod.ECDSA_SHA256_P256:
    case SignatureAuthMethod.ECDSA_SHA384_P384:
    case SignatureAuthMethod.ECDSA_SHA512_P521: {
      const m = RFC4754_METHODS[method]!;
      requireEcCurve(privateKey, m.curve, `AUTH method ${method}`);
      const rs = rawSign(m.digest, octets, { key: privateKey, dsaEncoding: 'ieee-p1363' });
      if (rs.length !== 2 * m.width) throw new CryptoError(`AUTH method ${method}: OpenSSL produced ${rs.length} octets, not r ‖ s`);
      return { method, authData: rs };
    }
    case SignatureAuthMethod.DIGITAL_SIGNATURE: {
      const algorithm = request.algorithm ?? defaultAlgorithm(privateKey, request.hash);
      requireKeyFits(privateKey, algorithm);
      const signature = rawSign(algorithm.digest, octets, signOptions(privateKey, algorithm));
      return { method, authData: encodeDigitalSignatureAuthData(algorithm, signature), algorithm };
    }
    default:
      throw new CryptoError(`AUTH method ${String(method)} is not a signature method tunsec implements`);
  }
}

/**
 * Verify the peer's AUTH: true when the signature verifies, false when it
 * does not, CryptoError when the Authentication Data is malformed, names an
 * unsupported or unaccepted algorithm, or does not fit the key.
 */
export function verifyAuth(request: VerifyAuthRequest): boolean {
  const { method, publicKey, octets, authData } = request;
  if (publicKey.type === 'secret') throw new CryptoError(`AUTH method ${method}: verifying needs a public key`);
  switch (method) {
    case SignatureAuthMethod.RSA_DIGITAL_SIGNATURE:
      requireRsa(publicKey, 'AUTH method 1 (RSA Digital Signature)', false);
      return rsaVerify('sha1', octets, publicKey, constants.RSA_PKCS1_PADDING, undefined, authData);
    case SignatureAuthMethod.ECDSA_SHA256_P256:
    case SignatureAuthMethod.ECDSA_SHA384_P384:
    case SignatureAuthMethod.ECDSA_SHA512_P521: {
      const m = RFC4754_METHODS[method]!;
      requireEcCurve(publicKey, m.curve, `AUTH method ${method}`);
      if (authData.length !== 2 * m.width) {
        throw new CryptoError(`AUTH method ${method}: signature must be r ‖ s of ${2 * m.width} octets, got ${authData.length}`);
      }
      return rawVerify(m.digest, octets, { key: publicKey, dsaEncoding: 'ieee-p1363' }, authData);
    }
    case SignatureAuthMethod.DIGITAL_SIGNATURE: {
      const { algorithm, signature } = parseDigitalSignatureAuthData(authData);
      const accepted = request.acceptedHashes ?? DEFAULT_ACCEPTED_SIGNATURE_HASHES;
      if (!accepted.includes(algorithm.hashAlgorithm)) {
        throw new CryptoError(`AUTH method 14: ${algorithm.name} uses a hash that is not accepted`);
      }
      requireKeyFits(publicKey, algorithm);
      if (algorithm.scheme === 'ecdsa') {
        checkEcdsaSigValue(signature);
        return rawVerify(algorithm.digest, octets, { key: publicKey, dsaEncoding: 'der' }, signature);
      }
      if (algorithm.scheme === 'eddsa') {
        // RFC 8032 §5.1.6 / §5.2.6: R ‖ S of 2·b/8 octets; anything else cannot verify.
        if (signature.length !== (algorithm.eddsaKeyType === 'ed25519' ? 64 : 114)) return false;
        return rawVerify(null, octets, { key: publicKey }, signature);
      }
      const padding = algorithm.scheme === 'rsassa-pss' ? constants.RSA_PKCS1_PSS_PADDING : constants.RSA_PKCS1_PADDING;
      return rsaVerify(algorithm.digest, octets, publicKey, padding, algorithm.saltLength, signature);
    }
    default:
      throw new CryptoError(`AUTH method ${method} is not a signature method tunsec implements`);
  }
}

/**
 * The method-14 algorithm to sign with (RFC 7427 §4: one of the hashes the
 * peer announced in SIGNATURE_HASH_ALGORITHMS). Preference: for EC keys the
 * hash matching the curve size first, then SHA2-256, -384, -512; for RSA keys
 * SHA2-256, -384, -512. SHA-1 is never chosen. Ed25519 / Ed448 keys sign
 * with their RFC 8420 algorithm and need the peer to have announced Identity
 * (5); SignatureSchemeRefused otherwise.
 * `rsaPss` selects RSASSA-PSS over PKCS#1 v1.5 for RSA keys (forced for
 * RSA-PSS-only keys).
 */
export function chooseSignatureAlgorithm(options: {
  readonly key: KeyObject;
  readonly peerHashes: readonly number[];
  readonly rsaPss?: boolean;
}): SignatureAlgorithm {
  const { key, peerHashes } = options;
  const kind = keyKind(key);
  const ed = eddsaKeyType(key);
  if (ed) {
    if (!peerHashes.includes(SignatureHashAlgorithm.IDENTITY)) {
      throw new SignatureSchemeRefused(eddsaAlgorithm(ed).name, SignatureHashAlgorithm.IDENTITY, peerHashes);
    }
    return eddsaAlgorithm(ed);
  }
  const order: SignatureHashAlgorithm[] = [SignatureHashAlgorithm.SHA2_256, SignatureHashAlgorithm.SHA2_384, SignatureHashAlgorithm.SHA2_512];
  if (kind.type === 'ec') {
    const matching = CURVE_HASH[kind.curve ?? ''];
    if (matching !== undefined) order.sort((a, b) => (a === matching ? -1 : b === matching ? 1 : 0));
  }
  const hash = order.find((h) => peerHashes.includes(h));
  if (hash === undefined) {
    throw new CryptoError(`no signature hash in common: peer announced [${peerHashes.join(', ')}]`);
  }
  const digest = digestForHashId(hash)!;
  switch (kind.type) {
    case 'ec':
      return signatureAlgorithm('ecdsa', digest);
    case 'rsa':
      return signatureAlgorithm(options.rsaPss ? 'rsassa-pss' : 'rsa-pkcs1-v1_5', digest);
    case 'rsa-pss':
      return signatureAlgorithm('rsassa-pss', digest);
    default:
      throw new CryptoError(`no RFC 7427 signature algorithm for a ${kind.type} key`);
  }
}

/** Hash matching an EC curve's size (OpenSSL curve names; brainpool included). */
const CURVE_HASH: Readonly<Record<string, SignatureHashAlgorithm>> = {
  prime256v1: SignatureHashAlgorithm.SHA2_256,
  brainpoolP256r1: SignatureHashAlgorithm.SHA2_256,
  secp384r1: SignatureHashAlgorithm.SHA2_384,
  brainpoolP384r1: SignatureHashAlgorithm.SHA2_384,
  secp521r1: SignatureHashAlgorithm.SHA2_512,
  brainpoolP512r1: SignatureHashAlgorithm.SHA2_512,
};

// ---------------------------------------------------------------------------

interface KeyKind {
  readonly type: string;
  readonly curve?: string;
}

function keyKind(key: KeyObject): KeyKind {
  const type = key.asymmetricKeyType;
  if (type === undefined) throw new CryptoError('not an asymmetric key');
  const curve = key.asymmetricKeyDetails?.namedCurve;
  return curve === undefined ? { type } : { type, curve };
}

function requireRsa(key: KeyObject, what: string, pssAllowed: boolean): void {
  const { type } = keyKind(key);
  if (type === 'rsa' || (pssAllowed && type === 'rsa-pss')) return;
  throw new CryptoError(`${what} needs an RSA key, got ${type}`);
}

function requireEcCurve(key: KeyObject, curve: string, what: string): void {
  const kind = keyKind(key);
  if (kind.type !== 'ec' || kind.curve !== curve) {
    throw new CryptoError(`${what} needs an EC key on ${curve}, got ${kind.type}${kind.curve ? ` on ${kind.curve}` : ''}`);
  }
}

function requireKeyFits(key: KeyObject, algorithm: SignatureAlgorithm): void {
  const what = `${algorithm.name} (AUTH method 14)`;
  switch (algorithm.scheme) {
    case 'rsa-pkcs1-v1_5':
      return requireRsa(key, what, false);
    case 'rsassa-pss':
      return requireRsa(key, what, true);
    case 'ecdsa': {
      const { type } = keyKind(key);
      if (type !== 'ec') throw new CryptoError(`${what} needs an EC key, got ${type}`);
      return;
    }
    case 'eddsa': {
      const { type } = keyKind(key);
      if (type !== algorithm.eddsaKeyType) throw new CryptoError(`${what} needs an ${algorithm.name} key, got ${type}`);
      return;
    }
  }
}

/** `hash` default: SHA2-256, Identity for EdDSA keys. */
function defaultAlgorithm(key: KeyObject, requested: SignatureHashAlgorithm | undefined): SignatureAlgorithm {
  const ed = eddsaKeyType(key);
  const hash = requested ?? (ed ? SignatureHashAlgorithm.IDENTITY : SignatureHashAlgorithm.SHA2_256);
  if (ed) {
    if (hash !== SignatureHashAlgorithm.IDENTITY) {
      throw new CryptoError(`${eddsaAlgorithm(ed).name} signs with hash algorithm 5 (Identity, RFC 8420), not ${hash}`);
    }
    return eddsaAlgorithm(ed);
  }
  const digest = digestForHashId(hash);
  if (!digest) throw new CryptoError(`hash algorithm ${hash} has no signature algorithm`);
  const { type } = keyKind(key);
  if (type === 'rsa') return signatureAlgorithm('rsa-pkcs1-v1_5', digest);
  if (type === 'rsa-pss') return signatureAlgorithm('rsassa-pss', digest);
  if (type === 'ec') return signatureAlgorithm('ecdsa', digest);
  throw new CryptoError(`no RFC 7427 signature algorithm for a ${type} key`);
}

/** A KeyObject with node's signing options (fits both sign() and verify()). */
interface SignKeyOptions {
  readonly key: KeyObject;
  readonly padding?: number;
  readonly saltLength?: number;
  readonly dsaEncoding?: 'der' | 'ieee-p1363';
}

function signOptions(key: KeyObject, algorithm: SignatureAlgorithm): SignKeyOptions {
  switch (algorithm.scheme) {
    case 'rsa-pkcs1-v1_5':
      return { key, padding: constants.RSA_PKCS1_PADDING };
    case 'rsassa-pss':
      return { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: algorithm.saltLength ?? 0 };
    case 'ecdsa':
      return { key, dsaEncoding: 'der' };
    case 'eddsa':
      return { key };
  }
}

function rawSign(digest: DigestName | null, data: Uint8Array, options: SignKeyOptions): Buffer {
  try {
    return sign(digest, data, options);
  } catch (err) {
    throw new CryptoError(`signing failed (${errorMessage(err)})`);
  }
}

function rawVerify(digest: DigestName | null, data: Uint8Array, options: SignKeyOptions, signature: Uint8Array): boolean {
  try {
    return verify(digest, data, options, signature);
  } catch (err) {
    throw new CryptoError(`signature verification failed to run (${errorMessage(err)})`);
  }
}

/**
 * RSA verification. A signature whose length is not the modulus length is
 * "invalid signature" per RFC 8017 §8.1.2 step 1 / §8.2.2 step 1: false.
 */
function rsaVerify(
  digest: DigestName | null,
  data: Uint8Array,
  key: KeyObject,
  padding: number,
  saltLength: number | undefined,
  signature: Uint8Array,
): boolean {
  const modulusBits = key.asymmetricKeyDetails?.modulusLength;
  if (modulusBits === undefined) throw new CryptoError('RSA key without a modulus length');
  if (signature.length !== Math.ceil(modulusBits / 8)) return false;
  const options: SignKeyOptions = saltLength === undefined ? { key, padding } : { key, padding, saltLength };
  return rawVerify(digest, data, options, signature);
}

/**
 * ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER } (RFC 3279 §2.2.3),
 * strict DER; CryptoError otherwise. Range checks on r and s are OpenSSL's
 * (out of range → the signature does not verify).
 */
export function checkEcdsaSigValue(signature: Uint8Array): void {
  const what = 'ECDSA-Sig-Value';
  const fields = readDerSequence(readWholeDer(signature, 0x30, what), what);
  if (fields.length !== 2 || fields.some((f) => f.tag !== 0x02)) {
    throw new CryptoError(`${what}: expected SEQUENCE { INTEGER r, INTEGER s }`);
  }
  for (const f of fields) readDerUnsignedInteger(f.content, what);
}
