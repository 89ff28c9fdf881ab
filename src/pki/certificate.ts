/**
 * X.509 v3 certificates (RFC 5280 §4) read from DER into the fields that
 * IKEv2 certificate authentication uses. Parsing is strict DER and never
 * throws anything but a PkiError naming the source.
 *
 *   Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }
 *   TBSCertificate ::= SEQUENCE { version [0] EXPLICIT DEFAULT v1, serialNumber,
 *       signature, issuer, validity, subject, subjectPublicKeyInfo,
 *       issuerUniqueID [1] OPTIONAL, subjectUniqueID [2] OPTIONAL,
 *       extensions [3] EXPLICIT OPTIONAL }
 *
 * Extensions decoded: basicConstraints, keyUsage, extKeyUsage,
 * subjectAltName, subjectKeyIdentifier, authorityKeyIdentifier. Others are
 * kept raw; a critical one that path validation cannot honour is listed in
 * `unsupportedCriticalExtensions` (validate.ts rejects such certificates).
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import {
  DerCursor,
  DerError,
  Tag,
  contextConstructed,
  contextPrimitive,
  expectTag,
  readBitString,
  readBoolean,
  readChildren,
  readOid,
  readSmallUint,
  readTime,
  readSignedStructure,
  readWhole,
} from './der.js';
import { PkiError } from './errors.js';
import { formatIp } from '../util/ip.js';
import { decodeName, type Name } from './name.js';

/** RFC 5280 §4.2.1.3 bit names, bit 0 first. */
export const KEY_USAGE_BITS = [
  'digitalSignature',
  'nonRepudiation',
  'keyEncipherment',
  'dataEncipherment',
  'keyAgreement',
  'keyCertSign',
  'cRLSign',
  'encipherOnly',
  'decipherOnly',
] as const;
export type KeyUsage = (typeof KEY_USAGE_BITS)[number];

export type GeneralName =
  | { readonly type: 'dns'; readonly value: string }
  | { readonly type: 'email'; readonly value: string }
  | { readonly type: 'uri'; readonly value: string }
  | { readonly type: 'ip'; readonly value: Buffer }
  | { readonly type: 'dn'; readonly value: Name }
  | { readonly type: 'other'; readonly tag: number; readonly encoded: Buffer };

export interface BasicConstraints {
  readonly cA: boolean;
  readonly pathLenConstraint?: number;
}

export interface Extension {
  readonly oid: string;
  readonly critical: boolean;
  /** Contents of extnValue: the DER of the extension's own value. */
  readonly value: Buffer;
}

export interface Certificate {
  /** Where it came from, for messages: a file name, "CERT payload", … */
  readonly source: string;
  readonly der: Buffer;
  /** SHA-256 of the DER, hex. */
  readonly fingerprint: string;
  /** 1, 2 or 3. */
  readonly version: number;
  /** CertificateSerialNumber content octets (two's complement, as encoded). */
  readonly serialNumber: Buffer;
  readonly issuer: Name;
  readonly subject: Name;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** DER SubjectPublicKeyInfo. */
  readonly spki: Buffer;
  readonly publicKey: KeyObject;
  /** The DER of tbsCertificate, which the signature covers. */
  readonly tbs: Buffer;
  /** signatureAlgorithm outside tbsCertificate (DER AlgorithmIdentifier). */
  readonly signatureAlgorithm: Buffer;
  /** tbsCertificate.signature: must equal signatureAlgorithm (§4.1.1.2). */
  readonly tbsSignatureAlgorithm: Buffer;
  readonly signatureValue: Buffer;
  readonly extensions: readonly Extension[];
  readonly basicConstraints?: BasicConstraints;
  readonly keyUsage?: ReadonlySet<KeyUsage>;
  /** KeyPurposeId OIDs. */
  readonly extKeyUsage?: readonly string[];
  readonly subjectAltNames: readonly GeneralName[];
  readonly subjectKeyIdentifier?: Buffer;
  /** authorityKeyIdentifier.keyIdentifier. */
  readonly authorityKeyIdentifier?: Buffer;
  /** OIDs of critical extensions path validation does not process. */
  readonly unsupportedCriticalExtensions: readonly string[];
}

export const OID = {
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  issuerAltName: '2.5.29.18',
  basicConstraints: '2.5.29.19',
  cRLNumber: '2.5.29.20',
  reasonCode: '2.5.29.21',
  invalidityDate: '2.5.29.24',
  deltaCRLIndicator: '2.5.29.27',
  issuingDistributionPoint: '2.5.29.28',
  certificateIssuer: '2.5.29.29',
  cRLDistributionPoints: '2.5.29.31',
  certificatePolicies: '2.5.29.32',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  freshestCRL: '2.5.29.46',
  authorityInfoAccess: '1.3.6.1.5.5.7.1.1',
} as const;

/**
 * Extensions path validation handles or may ignore even when critical.
 * certificatePolicies: with any-policy as the initial set and no explicit
 * policy required, RFC 5280 §6.1 accepts whatever the policies are.
 */
const UNDERSTOOD = new Set<string>([
  OID.subjectKeyIdentifier,
  OID.keyUsage,
  OID.subjectAltName,
  OID.issuerAltName,
  OID.basicConstraints,
  OID.cRLDistributionPoints,
  OID.certificatePolicies,
  OID.authorityKeyIdentifier,
  OID.extKeyUsage,
  OID.freshestCRL,
  OID.authorityInfoAccess,
]);

const GENERAL_NAME_TAG = {
  otherName: contextConstructed(0),
  rfc822Name: contextPrimitive(1),
  dNSName: contextPrimitive(2),
  directoryName: contextConstructed(4),
  uniformResourceIdentifier: contextPrimitive(6),
  iPAddress: contextPrimitive(7),
} as const;

/** SHA-1 of the DER SubjectPublicKeyInfo: the CA "public key hash" of CERTREQ / Hash and URL (RFC 7296 §3.6-3.7). */
export function spkiSha1(cert: Pick<Certificate, 'spki'>): Buffer {
  return createHash('sha1').update(cert.spki).digest();
}

/**
 * SHA-1 of the subjectPublicKey BIT STRING (without tag, length and
 * unused-bits octet): RFC 5280 §4.2.1.2 method (1) for key identifiers.
 */
export function subjectPublicKeySha1(cert: Pick<Certificate, 'spki'>): Buffer {
  const seq = readWhole(cert.spki, Tag.SEQUENCE, 'subjectPublicKeyInfo');
  const [, bits] = readChildren(seq.content, 'subjectPublicKeyInfo');
  const { bytes } = readBitString(expectTag(bits, Tag.BIT_STRING, 'subjectPublicKey'), 'subjectPublicKey');
  return createHash('sha1').update(bytes).digest();
}

/** "0x1d092ebfcc7df13d": the serial as an unsigned hex number (the DER sign octet dropped). */
export function formatSerial(serial: Buffer): string {
  const s = serial.length > 1 && serial[0] === 0 ? serial.subarray(1) : serial;
  return `0x${s.toString('hex')}`;
}

/** "2027-01-01T00:00:00Z": RFC 3339 UTC without fractions. */
export function formatTime(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** "DNS:moon.ikev2.test", "IP:fd77::1", "email:a@b", "URI:…", "DN:C=CH, …". */
export function formatGeneralName(n: GeneralName): string {
  switch (n.type) {
    case 'dns':
      return `DNS:${n.value}`;
    case 'email':
      return `email:${n.value}`;
    case 'uri':
      return `URI:${n.value}`;
    case 'ip':
      return `IP:${formatIp(n.value)}`;
    case 'dn':
      return `DN:${n.value.text}`;
    case 'other':
      return `[${n.tag & 0x1f}]#${n.encoded.toString('hex')}`;
  }
}

/**
 * Certificates parsed before and still referenced somewhere, by source and
 * SHA-256 of the DER: every IKE SA with the same peer holds one shared object
 * instead of its own parse (a parsed certificate is ~10 KiB with its buffers).
 * Weak references: an entry goes when no IKE SA or store holds the certificate.
 */
const parsed = new Map<string, WeakRef<Certificate>>();
const forget = new FinalizationRegistry<string>((key) => {
  if (parsed.get(key)?.deref() === undefined) parsed.delete(key);
});

/**
 * Parse a DER certificate; PkiError "<source>: not a valid X.509 certificate (…)" otherwise.
 * The same DER from the same source yields the same (immutable) object while it is in use.
 */
export function parseCertificate(der: Uint8Array, source: string): Certificate {
  const key = `${source}\0${createHash('sha256').update(der).digest('base64')}`;
  const known = parsed.get(key)?.deref();
  if (known) return known;
  try {
    // its own allocation (not a slice of Buffer's shared 8 KiB pool, which the certificate would keep alive)
    const copy = Buffer.alloc(der.length);
    copy.set(der);
    const cert = decodeCertificate(copy, source);
    parsed.set(key, new WeakRef(cert));
    forget.register(cert, key);
    return cert;
  } catch (err) {
    if (err instanceof DerError) throw new PkiError(`${source}: not a valid X.509 certificate (${err.message})`);
    throw err;
  }
}

function decodeCertificate(der: Buffer, source: string): Certificate {
  const { tbs: tbsEl, signatureAlgorithm: sigAlg, signatureValue } = readSignedStructure(der, 'Certificate', 'tbsCertificate');

  const tbs = new DerCursor(tbsEl.content, 'tbsCertificate');
  const versionEl = tbs.optional(contextConstructed(0));
  let version = 1;
  if (versionEl) {
    const v = readSmallUint(readWhole(versionEl.content, Tag.INTEGER, 'version'), 'version');
    if (v > 2) throw new DerError(`unknown version ${v + 1}`);
    version = v + 1;
  }
  const serialEl = tbs.next(Tag.INTEGER, 'serialNumber');
  if (serialEl.content.length === 0) throw new DerError('serialNumber: empty INTEGER');
  const tbsSigAlg = tbs.next(Tag.SEQUENCE, 'signature');
  const issuer = decodeName(Buffer.from(tbs.next(Tag.SEQUENCE, 'issuer').encoded), 'issuer');
  const validity = new DerCursor(tbs.next(Tag.SEQUENCE, 'validity').content, 'validity');
  const notBefore = readTime(validity.nextAny('notBefore'), 'notBefore');
  const notAfter = readTime(validity.nextAny('notAfter'), 'notAfter');
  validity.done();
  const subject = decodeName(Buffer.from(tbs.next(Tag.SEQUENCE, 'subject').encoded), 'subject');
  const spkiEl = tbs.next(Tag.SEQUENCE, 'subjectPublicKeyInfo');
  tbs.optional(contextPrimitive(1));
  tbs.optional(contextPrimitive(2));
  const extsEl = tbs.optional(contextConstructed(3));
  tbs.done();
  if (extsEl && version !== 3) throw new DerError(`extensions in a version ${version} certificate`);

  const spki = Buffer.from(spkiEl.encoded);
  const publicKey = importSpki(spki);
  const extensions = extsEl ? decodeExtensions(extsEl.content) : [];

  const cert: Mutable<Certificate> = {
    source,
    der,
    fingerprint: createHash('sha256').update(der).digest('hex'),
    version,
    serialNumber: Buffer.from(serialEl.content),
    issuer,
    subject,
    notBefore,
    notAfter,
    spki,
    publicKey,
    tbs: Buffer.from(tbsEl.encoded),
    signatureAlgorithm: Buffer.from(sigAlg.encoded),
    tbsSignatureAlgorithm: Buffer.from(tbsSigAlg.encoded),
    signatureValue: Buffer.from(signatureValue),
    extensions,
    subjectAltNames: [],
    unsupportedCriticalExtensions: [],
  };
  const unsupported: string[] = [];
  for (const ext of extensions) {
    const what = extensionName(ext.oid);
    switch (ext.oid) {
      case OID.basicConstraints:
        cert.basicConstraints = decodeBasicConstraints(ext.value, what);
        break;
      case OID.keyUsage:
        cert.keyUsage = decodeKeyUsage(ext.value, what);
        break;
      case OID.extKeyUsage:
        cert.extKeyUsage = decodeOidSequence(ext.value, what);
        break;
      case OID.subjectAltName:
        cert.subjectAltNames = decodeGeneralNames(ext.value, what);
        break;
      case OID.subjectKeyIdentifier:
        cert.subjectKeyIdentifier = Buffer.from(readWhole(ext.value, Tag.OCTET_STRING, what).content);
        break;
      case OID.authorityKeyIdentifier: {
        const aki = new DerCursor(readWhole(ext.value, Tag.SEQUENCE, what).content, what);
        const keyId = aki.optional(contextPrimitive(0));
        aki.optional(contextConstructed(1));
        aki.optional(contextPrimitive(2));
        aki.done();
        if (keyId) cert.authorityKeyIdentifier = Buffer.from(keyId.content);
        break;
      }
      default:
        if (ext.critical && !UNDERSTOOD.has(ext.oid)) unsupported.push(ext.oid);
    }
  }
  cert.unsupportedCriticalExtensions = unsupported;
  return cert;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function importSpki(spki: Buffer): KeyObject {
  try {
    return createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch (err) {
    let alg = 'unknown';
    try {
      const seq = readWhole(spki, Tag.SEQUENCE, 'subjectPublicKeyInfo');
      const [algId] = readChildren(seq.content, 'subjectPublicKeyInfo');
      const [oidEl] = readChildren(expectTag(algId, Tag.SEQUENCE, 'algorithm').content, 'algorithm');
      alg = readOid(expectTag(oidEl, Tag.OID, 'algorithm'), 'algorithm');
    } catch {
      // keep "unknown"
    }
    throw new DerError(`subjectPublicKeyInfo: unsupported or invalid public key (algorithm ${alg}: ${(err as Error).message})`);
  }
}

/** Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension, given as its whole DER. */
export function decodeExtensions(content: Buffer): Extension[] {
  const seq = readWhole(content, Tag.SEQUENCE, 'extensions');
  const out: Extension[] = [];
  const seen = new Set<string>();
  for (const el of readChildren(seq.content, 'extensions')) {
    const ext = new DerCursor(expectTag(el, Tag.SEQUENCE, 'Extension').content, 'Extension');
    const oid = readOid(ext.next(Tag.OID, 'extnID'), 'extnID');
    const criticalEl = ext.optional(Tag.BOOLEAN);
    const critical = criticalEl ? readBoolean(criticalEl, `${extensionName(oid)} critical`) : false;
    const value = ext.next(Tag.OCTET_STRING, `${extensionName(oid)} extnValue`).content;
    ext.done();
    if (seen.has(oid)) throw new DerError(`${extensionName(oid)} extension appears twice`);
    seen.add(oid);
    out.push({ oid, critical, value: Buffer.from(value) });
  }
  if (out.length === 0) throw new DerError('extensions: empty SEQUENCE');
  return out;
}

const EXTENSION_NAMES = new Map<string, string>(Object.entries(OID).map(([name, oid]) => [oid, name]));

/** "basicConstraints", or the dotted OID for extensions without a name here. */
export function extensionName(oid: string): string {
  return EXTENSION_NAMES.get(oid) ?? oid;
}

function decodeBasicConstraints(value: Buffer, what: string): BasicConstraints {
  const c = new DerCursor(readWhole(value, Tag.SEQUENCE, what).content, what);
  const cAEl = c.optional(Tag.BOOLEAN);
  const pathEl = c.optional(Tag.INTEGER);
  c.done();
  const cA = cAEl ? readBoolean(cAEl, `${what} cA`) : false;
  return pathEl ? { cA, pathLenConstraint: readSmallUint(pathEl, `${what} pathLenConstraint`) } : { cA };
}

export function decodeKeyUsage(value: Buffer, what: string): Set<KeyUsage> {
  const { bytes } = readBitString(readWhole(value, Tag.BIT_STRING, what), what);
  const out = new Set<KeyUsage>();
  KEY_USAGE_BITS.forEach((name, bit) => {
    const byte = bytes[bit >> 3];
    if (byte !== undefined && byte & (0x80 >> (bit & 7))) out.add(name);
  });
  return out;
}

function decodeOidSequence(value: Buffer, what: string): string[] {
  const seq = readWhole(value, Tag.SEQUENCE, what);
  return readChildren(seq.content, what).map((el) => readOid(expectTag(el, Tag.OID, what), what));
}

export function decodeGeneralNames(value: Buffer, what: string): GeneralName[] {
  const seq = readWhole(value, Tag.SEQUENCE, what);
  return readChildren(seq.content, what).map((el): GeneralName => {
    switch (el.tag) {
      case GENERAL_NAME_TAG.dNSName:
        return { type: 'dns', value: ia5(el.content, `${what} dNSName`) };
      case GENERAL_NAME_TAG.rfc822Name:
        return { type: 'email', value: ia5(el.content, `${what} rfc822Name`) };
      case GENERAL_NAME_TAG.uniformResourceIdentifier:
        return { type: 'uri', value: ia5(el.content, `${what} uniformResourceIdentifier`) };
      case GENERAL_NAME_TAG.iPAddress:
        // 4 or 16 octets; 8 or 32 (address + mask) only occur in name constraints.
        return { type: 'ip', value: Buffer.from(el.content) };
      case GENERAL_NAME_TAG.directoryName:
        return { type: 'dn', value: decodeName(Buffer.from(el.content), `${what} directoryName`) };
      default:
        return { type: 'other', tag: el.tag, encoded: Buffer.from(el.encoded) };
    }
  });
}

function ia5(v: Buffer, what: string): string {
  for (const b of v) if (b > 0x7f) throw new DerError(`${what}: not an IA5String`);
  return v.toString('latin1');
}
