/**
 * A small, synchronous certificate authority for tests and the demo: make
 * throwaway PKI in memory with node:crypto keys. pkijs lays out the
 * TBSCertificate / TBSCertList and the extension values; node:crypto signs.
 *
 *   const root = createCa({ subject: 'C=CH, O=Test, CN=Root' });
 *   const sun  = issueCertificate(root, { subject: 'CN=sun', subjectAltNames: { dns: ['sun.test'] } });
 *   const crl  = issueCrl(root, { revoked: [{ serialNumber: sun.certificate.serialNumber, reason: 'keyCompromise' }] });
 *
 * Everything a validator should reject can be made on purpose: validity
 * windows in the past or future, an intermediate without cA, keyUsage
 * without keyCertSign, extra (critical) extensions, CRLs signed by the
 * wrong key. Not for production CAs: no persistence, no policy.
 */
import { createPublicKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { eddsaAlgorithm, signatureAlgorithm, type DigestName } from '../crypto/rfc7427.js';
import { KEY_USAGE_BITS, OID, parseCertificate, subjectPublicKeySha1, type Certificate, type Extension, type KeyUsage } from './certificate.js';
import { parseCrl, REVOCATION_REASONS, type Crl } from './crl.js';
import { Tag, sequence, tlv } from './der.js';
import { PkiError } from './errors.js';
import { parseIp } from '../util/ip.js';
import { nameFromString } from './name.js';
import { encodePem } from './pem.js';

export type KeyAlgorithm =
  'rsa2048' | 'rsa3072' | 'rsa4096' | 'p256' | 'p384' | 'p521' | 'brainpoolP256r1' | 'brainpoolP384r1' | 'brainpoolP512r1' | 'ed25519' | 'ed448';

const CURVES: Readonly<Record<string, string>> = {
  p256: 'prime256v1',
  p384: 'secp384r1',
  p521: 'secp521r1',
  brainpoolP256r1: 'brainpoolP256r1',
  brainpoolP384r1: 'brainpoolP384r1',
  brainpoolP512r1: 'brainpoolP512r1',
};

/** A fresh key pair. */
export function generateKeyPair(algorithm: KeyAlgorithm = 'p256'): { privateKey: KeyObject; publicKey: KeyObject } {
  const rsa = /^rsa(\d+)$/.exec(algorithm);
  if (rsa) return generateKeyPairSync('rsa', { modulusLength: Number(rsa[1]) });
  if (algorithm === 'ed25519') return generateKeyPairSync('ed25519');
  if (algorithm === 'ed448') return generateKeyPairSync('ed448');
  return generateKeyPairSync('ec', { namedCurve: CURVES[algorithm]! });
}

/** Extended key usage names (RFC 5280 §4.2.1.12, RFC 4945 §5.1.3.12). */
const KEY_PURPOSES: Readonly<Record<string, string>> = {
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  ipsecIKE: '1.3.6.1.5.5.7.3.17',
  ikeIntermediate: '1.3.6.1.5.5.8.2.2',
};

export interface SubjectAltNames {
  readonly dns?: readonly string[];
  readonly ip?: readonly string[];
  readonly email?: readonly string[];
}

export interface CertificateProfile {
  /** Subject DN text, e.g. "C=CH, O=Test, CN=sun". */
  readonly subject: string;
  /** The subject's key: a key pair to generate, or a key (a public key alone makes a certificate that cannot issue). Default p256. */
  readonly key?: KeyAlgorithm | KeyObject;
  /** Default: 8 random octets. */
  readonly serialNumber?: bigint | number | Buffer;
  /** Default: one hour before now. */
  readonly notBefore?: Date;
  /** Default: one year after notBefore. */
  readonly notAfter?: Date;
  readonly subjectAltNames?: SubjectAltNames;
  /** null leaves the extension out. Default: absent for end entities, { cA: true } (critical) for CAs. */
  readonly basicConstraints?: { readonly cA: boolean; readonly pathLenConstraint?: number; readonly critical?: boolean } | null;
  /** null leaves the extension out. Default: absent for end entities, keyCertSign + cRLSign for CAs. Always critical. */
  readonly keyUsage?: readonly KeyUsage[] | null;
  /** Names (serverAuth, clientAuth, ipsecIKE, ikeIntermediate) or dotted OIDs. */
  readonly extKeyUsage?: readonly string[];
  /** Default true: SHA-1 of the subjectPublicKey (RFC 5280 §4.2.1.2 method 1). */
  readonly subjectKeyIdentifier?: boolean;
  /** Default true when the issuer has a subjectKeyIdentifier. */
  readonly authorityKeyIdentifier?: boolean;
  /** Further extensions, as is (e.g. an unknown critical one). */
  readonly extraExtensions?: readonly Extension[];
  /** Signature hash; default by the issuer key: sha256, P-384 sha384, P-521 sha512. Ignored for Ed25519 / Ed448 issuers (PureEdDSA). */
  readonly hash?: 'sha256' | 'sha384' | 'sha512';
}

export interface Issued {
  readonly certificate: Certificate;
  /** Present unless the profile gave only a public key. */
  readonly privateKey?: KeyObject;
  readonly certificatePem: string;
  /** PKCS#8 PEM of privateKey. */
  readonly privateKeyPem?: string;
}

/** A self-signed CA certificate (cA, keyCertSign + cRLSign by default). */
export function createCa(profile: CertificateProfile): Issued {
  return make(null, withCaDefaults(profile));
}

/** An intermediate CA certificate issued by `issuer`. */
export function issueIntermediate(issuer: Issued, profile: CertificateProfile): Issued {
  return make(issuer, withCaDefaults(profile));
}

/** An end-entity certificate issued by `issuer` (no basicConstraints or keyUsage unless asked for). */
export function issueCertificate(issuer: Issued, profile: CertificateProfile): Issued {
  return make(issuer, profile);
}

function withCaDefaults(profile: CertificateProfile): CertificateProfile {
  return {
    ...profile,
    basicConstraints: profile.basicConstraints === undefined ? { cA: true, critical: true } : profile.basicConstraints,
    keyUsage: profile.keyUsage === undefined ? ['keyCertSign', 'cRLSign'] : profile.keyUsage,
  };
}

// ---------------------------------------------------------------------------

function make(issuer: Issued | null, profile: CertificateProfile): Issued {
  const { privateKey, publicKey } = subjectKey(profile.key);
  const signingKey = issuer ? issuer.privateKey : privateKey;
  if (!signingKey) throw new PkiError(`cannot issue '${profile.subject}': the issuer has no private key`);
  const subject = nameFromString(profile.subject);
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const notBefore = profile.notBefore ?? new Date(Math.floor(Date.now() / 1000) * 1000 - 3600_000);
  const notAfter = profile.notAfter ?? new Date(notBefore.getTime() + 365 * 86400_000);
  const algorithm = signingAlgorithm(signingKey, profile.hash);

  const tbs = new pkijs.Certificate();
  tbs.version = 2;
  tbs.serialNumber = new asn1js.Integer({ valueHex: serialContent(profile.serialNumber) });
  tbs.signature = pkijs.AlgorithmIdentifier.fromBER(algorithm.identifier);
  tbs.issuer = pkijs.RelativeDistinguishedNames.fromBER(issuer ? issuer.certificate.subject.der : subject.der);
  tbs.subject = pkijs.RelativeDistinguishedNames.fromBER(subject.der);
  tbs.notBefore = time(notBefore);
  tbs.notAfter = time(notAfter);
  tbs.subjectPublicKeyInfo = pkijs.PublicKeyInfo.fromBER(spki);

  const extensions: pkijs.Extension[] = [];
  const add = (oid: string, critical: boolean, value: Uint8Array | ArrayBuffer): void => {
    const extnValue = value instanceof ArrayBuffer ? value : toArrayBuffer(value);
    extensions.push(new pkijs.Extension({ extnID: oid, critical, extnValue }));
  };
  const bc = profile.basicConstraints;
  if (bc) {
    const value = new pkijs.BasicConstraints(bc.pathLenConstraint === undefined ? { cA: bc.cA } : { cA: bc.cA, pathLenConstraint: bc.pathLenConstraint });
    add(OID.basicConstraints, bc.critical ?? true, value.toSchema().toBER());
  }
  if (profile.keyUsage) add(OID.keyUsage, true, keyUsageBitString(profile.keyUsage));
  if (profile.extKeyUsage?.length) {
    const keyPurposes = profile.extKeyUsage.map((p) => KEY_PURPOSES[p] ?? p);
    add(OID.extKeyUsage, false, new pkijs.ExtKeyUsage({ keyPurposes }).toSchema().toBER());
  }
  const altNames = generalNames(profile.subjectAltNames);
  if (altNames.length) add(OID.subjectAltName, false, new pkijs.AltName({ altNames }).toSchema().toBER());
  if (profile.subjectKeyIdentifier ?? true) {
    add(OID.subjectKeyIdentifier, false, tlv(Tag.OCTET_STRING, subjectPublicKeySha1({ spki })));
  }
  const issuerKeyId = issuer?.certificate.subjectKeyIdentifier;
  if (issuerKeyId && (profile.authorityKeyIdentifier ?? true)) {
    add(OID.authorityKeyIdentifier, false, authorityKeyIdentifier(issuerKeyId));
  }
  for (const ext of profile.extraExtensions ?? []) add(ext.oid, ext.critical, ext.value);
  if (extensions.length) tbs.extensions = extensions;

  const tbsDer = Buffer.from(tbs.encodeTBS().toBER());
  const der = signed(tbsDer, algorithm, signingKey);
  const certificate = parseCertificate(der, `issued '${profile.subject}'`);
  return {
    certificate,
    ...(privateKey ? { privateKey, privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() } : {}),
    certificatePem: encodePem('CERTIFICATE', der),
  };
}

function subjectKey(key: CertificateProfile['key']): { privateKey?: KeyObject; publicKey: KeyObject } {
  if (key === undefined || typeof key === 'string') return generateKeyPair(key);
  if (key.type === 'private') return { privateKey: key, publicKey: createPublicKey(key) };
  if (key.type === 'public') return { publicKey: key };
  throw new PkiError('a certificate needs an asymmetric key');
}

interface SigningAlgorithm {
  /** null: PureEdDSA (RFC 8410 §6), no pre-hash. */
  readonly digest: DigestName | null;
  readonly identifier: Buffer;
}

function signingAlgorithm(key: KeyObject, hash: CertificateProfile['hash']): SigningAlgorithm {
  const type = key.asymmetricKeyType;
  if (type === 'rsa') {
    const digest = hash ?? 'sha256';
    return { digest, identifier: signatureAlgorithm('rsa-pkcs1-v1_5', digest).algorithmIdentifier };
  }
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve ?? '';
    const digest = hash ?? (/384/.test(curve) ? 'sha384' : /521|512/.test(curve) ? 'sha512' : 'sha256');
    return { digest, identifier: signatureAlgorithm('ecdsa', digest).algorithmIdentifier };
  }
  if (type === 'ed25519' || type === 'ed448') return { digest: null, identifier: eddsaAlgorithm(type).algorithmIdentifier };
  throw new PkiError(`cannot sign with a ${type ?? 'symmetric'} key`);
}

/** SEQUENCE { tbs, signatureAlgorithm, BIT STRING signature }. */
function signed(tbs: Buffer, algorithm: SigningAlgorithm, key: KeyObject): Buffer {
  const signature = sign(algorithm.digest, tbs, key);
  return sequence(tbs, algorithm.identifier, tlv(Tag.BIT_STRING, Buffer.concat([Buffer.from([0]), signature])));
}

function toArrayBuffer(value: Uint8Array): ArrayBuffer {
  return value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength) as ArrayBuffer;
}

/** INTEGER content for a positive serial number. */
function serialContent(serial: CertificateProfile['serialNumber']): ArrayBuffer {
  let bytes: Buffer;
  if (serial === undefined) {
    bytes = randomBytes(8);
    bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  } else if (Buffer.isBuffer(serial)) {
    bytes = serial;
  } else {
    const n = BigInt(serial);
    if (n <= 0n) throw new PkiError('serial numbers must be positive (RFC 5280 §4.1.2.2)');
    let hex = n.toString(16);
    if (hex.length % 2) hex = `0${hex}`;
    bytes = Buffer.from(hex, 'hex');
    if (bytes[0]! & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  }
  return toArrayBuffer(bytes);
}

/** UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5). */
function time(d: Date): pkijs.Time {
  if (d.getUTCMilliseconds() !== 0) d = new Date(Math.floor(d.getTime() / 1000) * 1000);
  return new pkijs.Time({ type: d.getUTCFullYear() < 2050 ? 0 : 1, value: d });
}

function keyUsageBitString(usages: readonly KeyUsage[]): Buffer {
  const bits = usages.map((u) => KEY_USAGE_BITS.indexOf(u));
  if (bits.length === 0) return Buffer.from([Tag.BIT_STRING, 1, 0]);
  const highest = Math.max(...bits);
  const bytes = Buffer.alloc((highest >> 3) + 1);
  for (const b of bits) bytes[b >> 3]! |= 0x80 >> (b & 7);
  const unusedBits = 7 - (highest & 7);
  return tlv(Tag.BIT_STRING, Buffer.concat([Buffer.from([unusedBits]), bytes]));
}

function generalNames(sans: SubjectAltNames | undefined): pkijs.GeneralName[] {
  if (!sans) return [];
  const out: pkijs.GeneralName[] = [];
  for (const dns of sans.dns ?? []) out.push(new pkijs.GeneralName({ type: 2, value: dns }));
  for (const ip of sans.ip ?? []) {
    const bytes = parseIp(ip);
    if (!bytes) throw new PkiError(`SAN IP "${ip}" is not an IP address`);
    out.push(new pkijs.GeneralName({ type: 7, value: new asn1js.OctetString({ valueHex: toArrayBuffer(bytes) }) }));
  }
  for (const email of sans.email ?? []) out.push(new pkijs.GeneralName({ type: 1, value: email }));
  return out;
}

function authorityKeyIdentifier(keyId: Buffer): ArrayBuffer {
  const aki = new pkijs.AuthorityKeyIdentifier({ keyIdentifier: new asn1js.OctetString({ valueHex: toArrayBuffer(keyId) }) });
  return aki.toSchema().toBER();
}

// ---------------------------------------------------------------------------
// CRLs

export interface RevocationEntry {
  readonly serialNumber: bigint | number | Buffer;
  /** Default: the CRL's thisUpdate. */
  readonly revocationDate?: Date;
  /** A CRLReason name (keyCompromise, superseded, …); no reasonCode extension when absent. */
  readonly reason?: string;
}

export interface CrlProfile {
  /** Default: one hour before now. */
  readonly thisUpdate?: Date;
  /** Default: seven days after thisUpdate; null leaves it out. */
  readonly nextUpdate?: Date | null;
  readonly revoked?: readonly RevocationEntry[];
  /** Default 1. */
  readonly crlNumber?: bigint | number;
  /** Sign with this key instead of the issuer's (a CRL whose signature does not verify). */
  readonly signingKey?: KeyObject;
  /** Further crlExtensions, as is. */
  readonly extraExtensions?: readonly Extension[];
}

export interface IssuedCrl {
  readonly crl: Crl;
  readonly der: Buffer;
  readonly pem: string;
}

/** A v2 CRL from `issuer`, with cRLNumber and authorityKeyIdentifier. */
export function issueCrl(issuer: Issued, profile: CrlProfile = {}): IssuedCrl {
  const signingKey = profile.signingKey ?? issuer.privateKey;
  if (!signingKey) throw new PkiError(`cannot issue a CRL for '${issuer.certificate.subject.text}': no private key`);
  const algorithm = signingAlgorithm(signingKey, undefined);
  const thisUpdate = profile.thisUpdate ?? new Date(Math.floor(Date.now() / 1000) * 1000 - 3600_000);
  const nextUpdate = profile.nextUpdate === undefined ? new Date(thisUpdate.getTime() + 7 * 86400_000) : profile.nextUpdate;

  const crl = new pkijs.CertificateRevocationList();
  crl.version = 1;
  crl.signature = pkijs.AlgorithmIdentifier.fromBER(algorithm.identifier);
  crl.issuer = pkijs.RelativeDistinguishedNames.fromBER(issuer.certificate.subject.der);
  crl.thisUpdate = time(thisUpdate);
  if (nextUpdate) crl.nextUpdate = time(nextUpdate);
  const entries = (profile.revoked ?? []).map((r) => {
    const reasonCode = r.reason === undefined ? undefined : reasonCodeOf(r.reason);
    return new pkijs.RevokedCertificate({
      userCertificate: new asn1js.Integer({ valueHex: serialContent(r.serialNumber) }),
      revocationDate: time(r.revocationDate ?? thisUpdate),
      ...(reasonCode === undefined
        ? {}
        : {
            crlEntryExtensions: new pkijs.Extensions({
              extensions: [
                new pkijs.Extension({
                  extnID: OID.reasonCode,
                  critical: false,
                  extnValue: new asn1js.Enumerated({ value: reasonCode }).toBER(),
                }),
              ],
            }),
          }),
    });
  });
  if (entries.length) crl.revokedCertificates = entries;
  const extensions = [
    new pkijs.Extension({ extnID: OID.cRLNumber, critical: false, extnValue: new asn1js.Integer({ valueHex: serialContent(profile.crlNumber ?? 1) }).toBER() }),
  ];
  const keyId = issuer.certificate.subjectKeyIdentifier;
  if (keyId) extensions.push(new pkijs.Extension({ extnID: OID.authorityKeyIdentifier, critical: false, extnValue: authorityKeyIdentifier(keyId) }));
  for (const ext of profile.extraExtensions ?? []) {
    extensions.push(new pkijs.Extension({ extnID: ext.oid, critical: ext.critical, extnValue: toArrayBuffer(ext.value) }));
  }
  crl.crlExtensions = new pkijs.Extensions({ extensions });

  const tbsDer = Buffer.from((crl.toSchema(true) as asn1js.Sequence).valueBlock.value[0]!.toBER());
  const der = signed(tbsDer, algorithm, signingKey);
  // Named "#<cRLNumber>", so messages read "CRL #1 from 'CN=…'".
  return { crl: parseCrl(der, `#${profile.crlNumber ?? 1}`), der, pem: encodePem('X509 CRL', der) };
}

function reasonCodeOf(name: string): number {
  for (const [code, n] of Object.entries(REVOCATION_REASONS)) if (n === name) return Number(code);
  throw new PkiError(`unknown CRL reason "${name}"`);
}
