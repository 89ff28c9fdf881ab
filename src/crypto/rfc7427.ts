/**
 * RFC 7427, Signature Authentication in IKEv2: the pieces that are pure
 * encoding and need no key; with RFC 8420 (EdDSA in IKEv2).
 *
 * - The SIGNATURE_HASH_ALGORITHMS hash IDs (§4, IANA "IKEv2 Hash Algorithms")
 *   and the Notify data that lists them (§4: 16-bit IDs, no padding).
 * - The signature algorithms tunsec signs and verifies with in the "Digital
 *   Signature" method (14), each with the DER AlgorithmIdentifier sent in
 *   the AUTH payload: the blobs of RFC 7427 Appendix A (A.1.1-A.1.4
 *   sha*WithRSAEncryption, A.3.1-A.3.4 ecdsa-with-*), and for RSASSA-PSS the
 *   structure of A.4.3 (RFC 4055 §3.1 parameters) with SHA-256, -384, -512.
 *   A.4.3 as printed spells out the DEFAULT trailerField 1; DER omits
 *   DEFAULT values (X.690 §11.5), so tunsec sends the form without it, which
 *   is also what libreswan compares against, and accepts both.
 *   RFC 8420 §3: Ed25519 and Ed448 with the AlgorithmIdentifiers of RFC 8410
 *   §3 (id-Ed25519 1.3.101.112, id-Ed448 1.3.101.113, parameters absent)
 *   and the hash "Identity" (5): PureEdDSA signs the octets themselves.
 * - Authentication Data of method 14 (§3): ASN.1 Length (1 octet) ‖
 *   AlgorithmIdentifier ‖ Signature Value.
 * - Parsing a received AlgorithmIdentifier: exact match against the blobs
 *   first (§3 allows a receiver to compare blobs), otherwise a strict DER
 *   decode that also accepts the equivalent encodings other stacks send
 *   (hash parameters absent instead of NULL, an explicit trailerField 1, a
 *   different PSS salt length). Anything else is a CryptoError.
 */
import { CryptoError } from './types.js';

/** IANA "IKEv2 Hash Algorithms" (RFC 7427 §4, RFC 8420 for Identity). */
export enum SignatureHashAlgorithm {
  SHA1 = 1,
  SHA2_256 = 2,
  SHA2_384 = 3,
  SHA2_512 = 4,
  IDENTITY = 5,
}

/** node:crypto digest names for the hash IDs that have one. */
export type DigestName = 'sha1' | 'sha256' | 'sha384' | 'sha512';

/** EdDSA key types (node's asymmetricKeyType) of RFC 8420. */
export type EddsaKeyType = 'ed25519' | 'ed448';

const DIGESTS: Readonly<Record<DigestName, { id: SignatureHashAlgorithm; length: number }>> = {
  sha1: { id: SignatureHashAlgorithm.SHA1, length: 20 },
  sha256: { id: SignatureHashAlgorithm.SHA2_256, length: 32 },
  sha384: { id: SignatureHashAlgorithm.SHA2_384, length: 48 },
  sha512: { id: SignatureHashAlgorithm.SHA2_512, length: 64 },
};

/** The node digest for a hash ID, or undefined (Identity and unknown IDs). */
export function digestForHashId(id: number): DigestName | undefined {
  for (const [name, d] of Object.entries(DIGESTS) as [DigestName, (typeof DIGESTS)[DigestName]][]) {
    if (d.id === id) return name;
  }
  return undefined;
}

export function hashIdForDigest(digest: DigestName): SignatureHashAlgorithm {
  return DIGESTS[digest].id;
}

export function digestLength(digest: DigestName): number {
  return DIGESTS[digest].length;
}

/** SIGNATURE_HASH_ALGORITHMS Notification Data (RFC 7427 §4): 16-bit IDs back to back. */
export function encodeSignatureHashAlgorithms(ids: readonly number[]): Buffer {
  const out = Buffer.alloc(2 * ids.length);
  ids.forEach((id, i) => {
    if (!Number.isInteger(id) || id < 0 || id > 0xffff) throw new CryptoError(`hash algorithm ID ${id} is not a 16-bit value`);
    out.writeUInt16BE(id, 2 * i);
  });
  return out;
}

/** Parse SIGNATURE_HASH_ALGORITHMS Notification Data; unknown IDs are kept (the caller ignores them). */
export function decodeSignatureHashAlgorithms(data: Uint8Array): number[] {
  if (data.length % 2 !== 0) {
    throw new CryptoError(`SIGNATURE_HASH_ALGORITHMS data has odd length ${data.length}`);
  }
  const ids: number[] = [];
  for (let i = 0; i < data.length; i += 2) ids.push((data[i]! << 8) | data[i + 1]!);
  return ids;
}

/** A signature algorithm of the Digital Signature method, as named in RFC 7427 Appendix A. */
export interface SignatureAlgorithm {
  /** Appendix A name, e.g. "sha256WithRSAEncryption", "ecdsa-with-sha384", "RSASSA-PSS with SHA-256". */
  readonly name: string;
  readonly scheme: 'rsa-pkcs1-v1_5' | 'rsassa-pss' | 'ecdsa' | 'eddsa';
  /**
   * The digest applied before signing; null for EdDSA (RFC 8420: the
   * "Identity" hash, the signature algorithm reads the octets themselves).
   */
  readonly digest: DigestName | null;
  readonly hashAlgorithm: SignatureHashAlgorithm;
  /** EdDSA only: the key type the algorithm needs. */
  readonly eddsaKeyType?: EddsaKeyType;
  /**
   * RSASSA-PSS only (RFC 8017 §9.1): salt length in octets. MGF1 always uses
   * `digest` and the trailer field is 1 (0xbc).
   */
  readonly saltLength?: number;
  /** DER AlgorithmIdentifier as carried in the AUTH payload. */
  readonly algorithmIdentifier: Buffer;
}

// ---------------------------------------------------------------------------
// Object identifiers (content octets of the DER OBJECT IDENTIFIER)

const OID = {
  /** 1.2.840.113549.1.1.5, RFC 8017 Appendix A.2.4 */
  sha1WithRSAEncryption: '2a864886f70d010105',
  /** 1.2.840.113549.1.1.11 */
  sha256WithRSAEncryption: '2a864886f70d01010b',
  /** 1.2.840.113549.1.1.12 */
  sha384WithRSAEncryption: '2a864886f70d01010c',
  /** 1.2.840.113549.1.1.13 */
  sha512WithRSAEncryption: '2a864886f70d01010d',
  /** id-RSASSA-PSS 1.2.840.113549.1.1.10, RFC 8017 Appendix A.2.3 */
  rsassaPss: '2a864886f70d01010a',
  /** id-mgf1 1.2.840.113549.1.1.8 */
  mgf1: '2a864886f70d010108',
  /** ecdsa-with-SHA1 1.2.840.10045.4.1, RFC 3279 §2.2.3 */
  ecdsaWithSha1: '2a8648ce3d0401',
  /** ecdsa-with-SHA256/384/512 1.2.840.10045.4.3.2-4, RFC 5758 §3.2 */
  ecdsaWithSha256: '2a8648ce3d040302',
  ecdsaWithSha384: '2a8648ce3d040303',
  ecdsaWithSha512: '2a8648ce3d040304',
  /** id-sha1 1.3.14.3.2.26 */
  sha1: '2b0e03021a',
  /** id-sha256/384/512 2.16.840.1.101.3.4.2.1-3 */
  sha256: '608648016503040201',
  sha384: '608648016503040202',
  sha512: '608648016503040203',
  /** id-Ed25519 1.3.101.112, id-Ed448 1.3.101.113 (RFC 8410 §3) */
  ed25519: '2b6570',
  ed448: '2b6571',
} as const;

// ---------------------------------------------------------------------------
// Minimal DER (X.690 §10): single-octet tags, definite minimal lengths.

const TAG_INTEGER = 0x02;
const TAG_NULL = 0x05;
const TAG_OID = 0x06;
const TAG_SEQUENCE = 0x30;
const tagContext = (n: number): number => 0xa0 | n; // [n] EXPLICIT, constructed

/** One DER element: tag, content octets, and the offset just past it. */
export interface DerElement {
  readonly tag: number;
  readonly content: Buffer;
  readonly end: number;
}

/** Read one DER TLV at `offset`. Rejects high tag numbers, indefinite and non-minimal lengths, overruns. */
export function readDerElement(input: Uint8Array, offset: number, what: string): DerElement {
  const buf = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  if (offset + 2 > buf.length) throw new CryptoError(`${what}: truncated DER`);
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new CryptoError(`${what}: DER high tag numbers are not expected`);
  const first = buf[offset + 1]!;
  let length: number;
  let pos = offset + 2;
  if (first < 0x80) {
    length = first;
  } else {
    const count = first & 0x7f;
    if (count === 0) throw new CryptoError(`${what}: indefinite length is not DER`);
    if (count > 3) throw new CryptoError(`${what}: DER length too large`);
    if (pos + count > buf.length) throw new CryptoError(`${what}: truncated DER length`);
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + buf[pos + i]!;
    if (buf[pos] === 0 || length < 0x80) throw new CryptoError(`${what}: non-minimal DER length`);
    pos += count;
  }
  const end = pos + length;
  if (end > buf.length) throw new CryptoError(`${what}: DER element overruns its container`);
  return { tag, content: buf.subarray(pos, end), end };
}

/** Read exactly one DER element spanning all of `input` with the expected tag. */
export function readWholeDer(input: Uint8Array, tag: number, what: string): Buffer {
  const el = readDerElement(input, 0, what);
  if (el.tag !== tag) throw new CryptoError(`${what}: expected DER tag 0x${tag.toString(16)}, got 0x${el.tag.toString(16)}`);
  if (el.end !== input.length) throw new CryptoError(`${what}: trailing octets after DER element`);
  return el.content;
}

/** The elements of a constructed value's content, in order. */
export function readDerSequence(content: Uint8Array, what: string): DerElement[] {
  const out: DerElement[] = [];
  let offset = 0;
  while (offset < content.length) {
    const el = readDerElement(content, offset, what);
    out.push(el);
    offset = el.end;
  }
  return out;
}

/** DER TLV with a definite minimal length. */
export function derTlv(tag: number, content: Uint8Array): Buffer {
  const n = content.length;
  let header: number[];
  if (n < 0x80) header = [tag, n];
  else if (n < 0x100) header = [tag, 0x81, n];
  else if (n < 0x10000) header = [tag, 0x82, n >> 8, n & 0xff];
  else throw new CryptoError('DER element too long');
  return Buffer.concat([Buffer.from(header), content]);
}

/** DER INTEGER content of a non-negative integer (minimal two's complement). */
export function derUnsignedIntegerContent(magnitude: Uint8Array): Buffer {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const trimmed = Buffer.from(magnitude.subarray(start));
  if (trimmed.length === 0) return Buffer.from([0]);
  return trimmed[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed;
}

/**
 * The magnitude of a DER INTEGER that must be non-negative and minimally
 * encoded (X.690 §8.3.2). CryptoError otherwise.
 */
export function readDerUnsignedInteger(content: Uint8Array, what: string): Buffer {
  if (content.length === 0) throw new CryptoError(`${what}: empty INTEGER`);
  if (content[0]! & 0x80) throw new CryptoError(`${what}: negative INTEGER`);
  if (content.length > 1 && content[0] === 0 && !(content[1]! & 0x80)) {
    throw new CryptoError(`${what}: non-minimal INTEGER`);
  }
  return Buffer.from(content[0] === 0 && content.length > 1 ? content.subarray(1) : content);
}

const oidTlv = (hex: string): Buffer => derTlv(TAG_OID, Buffer.from(hex, 'hex'));
const NULL_TLV = Buffer.from([TAG_NULL, 0x00]);
const sequence = (...items: Uint8Array[]): Buffer => derTlv(TAG_SEQUENCE, Buffer.concat(items));

// ---------------------------------------------------------------------------
// The algorithms

const rsaPkcs1 = (name: string, digest: DigestName, blobHex: string): SignatureAlgorithm => ({
  name,
  scheme: 'rsa-pkcs1-v1_5',
  digest,
  hashAlgorithm: hashIdForDigest(digest),
  algorithmIdentifier: Buffer.from(blobHex, 'hex'),
});

const ecdsa = (name: string, digest: DigestName, blobHex: string): SignatureAlgorithm => ({
  name,
  scheme: 'ecdsa',
  digest,
  hashAlgorithm: hashIdForDigest(digest),
  algorithmIdentifier: Buffer.from(blobHex, 'hex'),
});

const HASH_OID: Readonly<Record<'sha256' | 'sha384' | 'sha512', string>> = {
  sha256: OID.sha256,
  sha384: OID.sha384,
  sha512: OID.sha512,
};

/**
 * RSASSA-PSS-params (RFC 4055 §3.1 / RFC 8017 Appendix A.2.3) with
 * hashAlgorithm = `digest` (parameters NULL), maskGenAlgorithm = MGF1 with
 * the same hash, saltLength given, trailerField left at its default 1: the
 * shape of RFC 7427 Appendix A.4.3.
 */
export function rsassaPssAlgorithmIdentifier(digest: 'sha256' | 'sha384' | 'sha512', saltLength: number): Buffer {
  const hashAlg = sequence(oidTlv(HASH_OID[digest]), NULL_TLV);
  const params = sequence(
    derTlv(tagContext(0), hashAlg),
    derTlv(tagContext(1), sequence(oidTlv(OID.mgf1), hashAlg)),
    derTlv(tagContext(2), derTlv(TAG_INTEGER, derUnsignedIntegerContent(uint32Octets(saltLength)))),
  );
  return sequence(oidTlv(OID.rsassaPss), params);
}

function uint32Octets(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

const rsaPss = (digest: 'sha256' | 'sha384' | 'sha512', saltLength: number): SignatureAlgorithm => ({
  name: `RSASSA-PSS with ${digest === 'sha256' ? 'SHA-256' : digest === 'sha384' ? 'SHA-384' : 'SHA-512'}`,
  scheme: 'rsassa-pss',
  digest,
  hashAlgorithm: hashIdForDigest(digest),
  saltLength,
  algorithmIdentifier: rsassaPssAlgorithmIdentifier(digest, saltLength),
});

/** RFC 7427 A.1.1 */
export const SHA1_WITH_RSA_ENCRYPTION = rsaPkcs1('sha1WithRSAEncryption', 'sha1', '300d06092a864886f70d0101050500');
/** RFC 7427 A.1.2 */
export const SHA256_WITH_RSA_ENCRYPTION = rsaPkcs1('sha256WithRSAEncryption', 'sha256', '300d06092a864886f70d01010b0500');
/** RFC 7427 A.1.3 */
export const SHA384_WITH_RSA_ENCRYPTION = rsaPkcs1('sha384WithRSAEncryption', 'sha384', '300d06092a864886f70d01010c0500');
/** RFC 7427 A.1.4 */
export const SHA512_WITH_RSA_ENCRYPTION = rsaPkcs1('sha512WithRSAEncryption', 'sha512', '300d06092a864886f70d01010d0500');
/** RFC 7427 A.3.1 */
export const ECDSA_WITH_SHA1 = ecdsa('ecdsa-with-sha1', 'sha1', '300906072a8648ce3d0401');
/** RFC 7427 A.3.2 */
export const ECDSA_WITH_SHA256 = ecdsa('ecdsa-with-sha256', 'sha256', '300a06082a8648ce3d040302');
/** RFC 7427 A.3.3 */
export const ECDSA_WITH_SHA384 = ecdsa('ecdsa-with-sha384', 'sha384', '300a06082a8648ce3d040303');
/** RFC 7427 A.3.4 */
export const ECDSA_WITH_SHA512 = ecdsa('ecdsa-with-sha512', 'sha512', '300a06082a8648ce3d040304');
/** RFC 7427 A.4.3 parameters (SHA-256, MGF1-SHA-256, salt 32), DER without the DEFAULT trailerField. */
export const RSASSA_PSS_SHA256 = rsaPss('sha256', 32);
/** The A.4.3 structure with SHA-384 / MGF1-SHA-384 / salt 48 (not listed in the RFC). */
export const RSASSA_PSS_SHA384 = rsaPss('sha384', 48);
/** The A.4.3 structure with SHA-512 / MGF1-SHA-512 / salt 64 (not listed in the RFC). */
export const RSASSA_PSS_SHA512 = rsaPss('sha512', 64);

const eddsa = (name: string, keyType: EddsaKeyType, blobHex: string): SignatureAlgorithm => ({
  name,
  scheme: 'eddsa',
  digest: null,
  hashAlgorithm: SignatureHashAlgorithm.IDENTITY,
  eddsaKeyType: keyType,
  algorithmIdentifier: Buffer.from(blobHex, 'hex'),
});

/** RFC 8420 §3 / RFC 8410 §3: SEQUENCE { id-Ed25519 } with no parameters. */
export const ED25519 = eddsa('Ed25519', 'ed25519', '300506032b6570');
/** RFC 8420 §3 / RFC 8410 §3: SEQUENCE { id-Ed448 } with no parameters. */
export const ED448 = eddsa('Ed448', 'ed448', '300506032b6571');

/** The RFC 8420 algorithm for an EdDSA key type. */
export function eddsaAlgorithm(keyType: EddsaKeyType): SignatureAlgorithm {
  return keyType === 'ed25519' ? ED25519 : ED448;
}

/** Every algorithm with a fixed AlgorithmIdentifier, for exact blob matching. */
export const SIGNATURE_ALGORITHMS: readonly SignatureAlgorithm[] = [
  SHA1_WITH_RSA_ENCRYPTION,
  SHA256_WITH_RSA_ENCRYPTION,
  SHA384_WITH_RSA_ENCRYPTION,
  SHA512_WITH_RSA_ENCRYPTION,
  ECDSA_WITH_SHA1,
  ECDSA_WITH_SHA256,
  ECDSA_WITH_SHA384,
  ECDSA_WITH_SHA512,
  RSASSA_PSS_SHA256,
  RSASSA_PSS_SHA384,
  RSASSA_PSS_SHA512,
  ED25519,
  ED448,
];

/** The fixed algorithm for a scheme and hash (PSS: salt = hash length); EdDSA: see eddsaAlgorithm. */
export function signatureAlgorithm(scheme: Exclude<SignatureAlgorithm['scheme'], 'eddsa'>, digest: DigestName): SignatureAlgorithm {
  const found = SIGNATURE_ALGORITHMS.find((a) => a.scheme === scheme && a.digest === digest);
  if (!found) throw new CryptoError(`no ${scheme} signature algorithm with ${digest}`);
  return found;
}

// ---------------------------------------------------------------------------
// Parsing a received AlgorithmIdentifier

const RSA_PKCS1_BY_OID: Readonly<Record<string, SignatureAlgorithm>> = {
  [OID.sha1WithRSAEncryption]: SHA1_WITH_RSA_ENCRYPTION,
  [OID.sha256WithRSAEncryption]: SHA256_WITH_RSA_ENCRYPTION,
  [OID.sha384WithRSAEncryption]: SHA384_WITH_RSA_ENCRYPTION,
  [OID.sha512WithRSAEncryption]: SHA512_WITH_RSA_ENCRYPTION,
};

const ECDSA_BY_OID: Readonly<Record<string, SignatureAlgorithm>> = {
  [OID.ecdsaWithSha1]: ECDSA_WITH_SHA1,
  [OID.ecdsaWithSha256]: ECDSA_WITH_SHA256,
  [OID.ecdsaWithSha384]: ECDSA_WITH_SHA384,
  [OID.ecdsaWithSha512]: ECDSA_WITH_SHA512,
};

const DIGEST_BY_HASH_OID: Readonly<Record<string, DigestName>> = {
  [OID.sha1]: 'sha1',
  [OID.sha256]: 'sha256',
  [OID.sha384]: 'sha384',
  [OID.sha512]: 'sha512',
};

/** The signature algorithm an AlgorithmIdentifier (DER) names; CryptoError when malformed or unsupported. */
export function parseAlgorithmIdentifier(der: Uint8Array): SignatureAlgorithm {
  const exact = SIGNATURE_ALGORITHMS.find((a) => a.algorithmIdentifier.equals(der));
  if (exact) return exact;

  const what = 'AlgorithmIdentifier';
  const items = readDerSequence(readWholeDer(der, TAG_SEQUENCE, what), what);
  const [oid, params, ...rest] = items;
  if (!oid || oid.tag !== TAG_OID || rest.length > 0) throw new CryptoError(`${what}: not SEQUENCE { OID, parameters OPTIONAL }`);
  const oidHex = oid.content.toString('hex');

  const pkcs1 = RSA_PKCS1_BY_OID[oidHex];
  if (pkcs1) {
    // RFC 4055 §5: NULL parameters; absent ones are seen in the wild and mean the same.
    if (params && !isDerNull(params)) throw new CryptoError(`${what}: ${pkcs1.name} parameters must be NULL`);
    return pkcs1;
  }
  const ec = ECDSA_BY_OID[oidHex];
  if (ec) {
    // RFC 5758 §3.2: parameters absent (a NULL is tolerated).
    if (params && !isDerNull(params)) throw new CryptoError(`${what}: ${ec.name} must have no parameters`);
    return ec;
  }
  const ed = oidHex === OID.ed25519 ? ED25519 : oidHex === OID.ed448 ? ED448 : undefined;
  if (ed) {
    // RFC 8410 §3: the parameters MUST be absent.
    if (params) throw new CryptoError(`${what}: ${ed.name} must have no parameters`);
    return ed;
  }
  if (oidHex === OID.rsassaPss) {
    if (!params || params.tag !== TAG_SEQUENCE) {
      throw new CryptoError(`${what}: RSASSA-PSS with absent or default parameters means SHA-1, which is not supported`);
    }
    return parsePssParams(params.content);
  }
  throw new CryptoError(`${what}: unsupported signature algorithm OID ${oidHex}`);
}

function isDerNull(el: DerElement): boolean {
  return el.tag === TAG_NULL && el.content.length === 0;
}

/** RSASSA-PSS-params, RFC 8017 Appendix A.2.3; only MGF1 with the signature hash and trailerField 1. */
function parsePssParams(content: Buffer): SignatureAlgorithm {
  const what = 'RSASSA-PSS-params';
  let digest: DigestName = 'sha1';
  let mgfDigest: DigestName = 'sha1';
  let saltLength = 20;
  let lastTag = -1;
  for (const field of readDerSequence(content, what)) {
    if (field.tag <= lastTag) throw new CryptoError(`${what}: fields out of order or repeated`);
    lastTag = field.tag;
    const inner = readWholeDer(field.content, field.tag === tagContext(2) || field.tag === tagContext(3) ? TAG_INTEGER : TAG_SEQUENCE, what);
    switch (field.tag) {
      case tagContext(0):
        digest = parseHashAlgorithm(inner, what);
        break;
      case tagContext(1): {
        const [mgfOid, mgfParams, ...extra] = readDerSequence(inner, what);
        if (!mgfOid || mgfOid.tag !== TAG_OID || mgfOid.content.toString('hex') !== OID.mgf1 || !mgfParams || extra.length) {
          throw new CryptoError(`${what}: only MGF1 is supported`);
        }
        if (mgfParams.tag !== TAG_SEQUENCE) throw new CryptoError(`${what}: MGF1 parameters must be a hash AlgorithmIdentifier`);
        mgfDigest = parseHashAlgorithm(mgfParams.content, what);
        break;
      }
      case tagContext(2): {
        const salt = readDerUnsignedInteger(inner, what);
        if (salt.length > 2) throw new CryptoError(`${what}: salt length out of range`);
        saltLength = salt.readUIntBE(0, salt.length);
        break;
      }
      case tagContext(3): {
        const trailer = readDerUnsignedInteger(inner, what);
        if (trailer.length !== 1 || trailer[0] !== 1) throw new CryptoError(`${what}: trailerField must be 1`);
        break;
      }
      default:
        throw new CryptoError(`${what}: unexpected field tag 0x${field.tag.toString(16)}`);
    }
  }
  if (digest === 'sha1') throw new CryptoError(`${what}: RSASSA-PSS with SHA-1 is not supported`);
  if (mgfDigest !== digest) throw new CryptoError(`${what}: MGF1 hash ${mgfDigest} differs from the signature hash ${digest}`);
  const fixed = SIGNATURE_ALGORITHMS.find((a) => a.scheme === 'rsassa-pss' && a.digest === digest && a.saltLength === saltLength);
  if (fixed) return fixed;
  return {
    name: `RSASSA-PSS with ${digest}, salt ${saltLength}`,
    scheme: 'rsassa-pss',
    digest,
    hashAlgorithm: hashIdForDigest(digest),
    saltLength,
    algorithmIdentifier: rsassaPssAlgorithmIdentifier(digest, saltLength),
  };
}

/** A hash AlgorithmIdentifier's content: OID with NULL or absent parameters (RFC 4055 §2.1). */
function parseHashAlgorithm(content: Buffer, what: string): DigestName {
  const [oid, params, ...extra] = readDerSequence(content, what);
  if (!oid || oid.tag !== TAG_OID || extra.length || (params && !isDerNull(params))) {
    throw new CryptoError(`${what}: malformed hash AlgorithmIdentifier`);
  }
  const digest = DIGEST_BY_HASH_OID[oid.content.toString('hex')];
  if (!digest) throw new CryptoError(`${what}: unsupported hash OID ${oid.content.toString('hex')}`);
  return digest;
}

// ---------------------------------------------------------------------------
// Authentication Data of the Digital Signature method (RFC 7427 §3)

export interface DigitalSignatureAuthData {
  readonly algorithm: SignatureAlgorithm;
  /** The AlgorithmIdentifier exactly as received. */
  readonly algorithmIdentifier: Buffer;
  readonly signature: Buffer;
}

/** ASN.1 Length ‖ AlgorithmIdentifier ‖ Signature Value. */
export function encodeDigitalSignatureAuthData(algorithm: SignatureAlgorithm, signature: Uint8Array): Buffer {
  const id = algorithm.algorithmIdentifier;
  if (id.length > 0xff) throw new CryptoError('AlgorithmIdentifier longer than 255 octets');
  return Buffer.concat([Buffer.from([id.length]), id, signature]);
}

/** Split method-14 Authentication Data; CryptoError when it is malformed or names an unsupported algorithm. */
export function parseDigitalSignatureAuthData(authData: Uint8Array): DigitalSignatureAuthData {
  if (authData.length < 1) throw new CryptoError('Digital Signature Authentication Data is empty');
  const length = authData[0]!;
  if (authData.length < 1 + length + 1) {
    throw new CryptoError(
      `Digital Signature Authentication Data of ${authData.length} octets cannot hold a ${length}-octet AlgorithmIdentifier and a signature`,
    );
  }
  const algorithmIdentifier = Buffer.from(authData.subarray(1, 1 + length));
  return {
    algorithm: parseAlgorithmIdentifier(algorithmIdentifier),
    algorithmIdentifier,
    signature: Buffer.from(authData.subarray(1 + length)),
  };
}
