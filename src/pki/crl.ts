/**
 * Certificate Revocation Lists (RFC 5280 §5), read from DER.
 *
 *   CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue BIT STRING }
 *   TBSCertList ::= SEQUENCE { version OPTIONAL, signature, issuer, thisUpdate,
 *       nextUpdate OPTIONAL,
 *       revokedCertificates SEQUENCE OF SEQUENCE {
 *           userCertificate, revocationDate, crlEntryExtensions OPTIONAL } OPTIONAL,
 *       crlExtensions [0] EXPLICIT Extensions OPTIONAL }
 *
 * Understood: cRLNumber, authorityKeyIdentifier, issuingDistributionPoint
 * (its scope is not applied: an entry revokes wherever it appears), entry
 * reasonCode and invalidityDate. A delta CRL or any other critical extension
 * the validator cannot honour (e.g. an indirect CRL's certificateIssuer) is
 * listed in `unsupportedCriticalExtensions`, and validate.ts does not use
 * that CRL.
 */
import { createHash } from 'node:crypto';
import {
  DerCursor,
  DerError,
  Tag,
  contextConstructed,
  contextPrimitive,
  expectTag,
  readChildren,
  readSmallUint,
  readTime,
  readSignedStructure,
  readWhole,
} from './der.js';
import { OID, decodeExtensions } from './certificate.js';
import { PkiError } from './errors.js';
import { decodeName, type Name } from './name.js';

/** CRLReason (RFC 5280 §5.3.1); 7 is unused. */
export const REVOCATION_REASONS: Readonly<Record<number, string>> = {
  0: 'unspecified',
  1: 'keyCompromise',
  2: 'cACompromise',
  3: 'affiliationChanged',
  4: 'superseded',
  5: 'cessationOfOperation',
  6: 'certificateHold',
  8: 'removeFromCRL',
  9: 'privilegeWithdrawn',
  10: 'aACompromise',
};

export interface RevokedCertificate {
  /** userCertificate content octets, as in Certificate.serialNumber. */
  readonly serialNumber: Buffer;
  readonly revocationDate: Date;
  /** CRLReason name, when the entry has a reasonCode. */
  readonly reason?: string;
  readonly invalidityDate?: Date;
}

export interface Crl {
  readonly source: string;
  readonly der: Buffer;
  readonly issuer: Name;
  readonly thisUpdate: Date;
  readonly nextUpdate?: Date;
  readonly tbs: Buffer;
  readonly signatureAlgorithm: Buffer;
  readonly tbsSignatureAlgorithm: Buffer;
  readonly signatureValue: Buffer;
  readonly crlNumber?: bigint;
  readonly authorityKeyIdentifier?: Buffer;
  /** Entries by serial number (hex of the content octets). */
  readonly revoked: ReadonlyMap<string, RevokedCertificate>;
  /** OIDs of critical extensions (and deltaCRLIndicator) that make this CRL unusable here. */
  readonly unsupportedCriticalExtensions: readonly string[];
  /** SHA-256 of the DER, hex. */
  readonly fingerprint: string;
}

/** Parse a DER CRL; PkiError "<source>: not a valid CRL (…)" otherwise. */
export function parseCrl(der: Uint8Array, source: string): Crl {
  try {
    return decodeCrl(Buffer.from(der), source);
  } catch (err) {
    if (err instanceof DerError) throw new PkiError(`${source}: not a valid CRL (${err.message})`);
    throw err;
  }
}

/** The CRL entry for a certificate serial, if listed. */
export function findRevoked(crl: Crl, serialNumber: Buffer): RevokedCertificate | undefined {
  return crl.revoked.get(serialNumber.toString('hex'));
}

function decodeCrl(der: Buffer, source: string): Crl {
  const { tbs: tbsEl, signatureAlgorithm: sigAlg, signatureValue } = readSignedStructure(der, 'CertificateList', 'tbsCertList');

  const tbs = new DerCursor(tbsEl.content, 'tbsCertList');
  const versionEl = tbs.optional(Tag.INTEGER);
  if (versionEl && readSmallUint(versionEl, 'version') !== 1) throw new DerError('version: only v2 CRLs carry a version');
  const tbsSigAlg = tbs.next(Tag.SEQUENCE, 'signature');
  const issuer = decodeName(Buffer.from(tbs.next(Tag.SEQUENCE, 'issuer').encoded), 'issuer');
  const thisUpdate = readTime(tbs.nextAny('thisUpdate'), 'thisUpdate');
  const nextEl = tbs.optional(Tag.UTC_TIME) ?? tbs.optional(Tag.GENERALIZED_TIME);
  const nextUpdate = nextEl ? readTime(nextEl, 'nextUpdate') : undefined;
  const revokedEl = tbs.optional(Tag.SEQUENCE);
  const extsEl = tbs.optional(contextConstructed(0));
  tbs.done();
  if (extsEl && !versionEl) throw new DerError('crlExtensions in a v1 CRL');

  const unsupported = new Set<string>();
  const revoked = new Map<string, RevokedCertificate>();
  for (const entryEl of revokedEl ? readChildren(revokedEl.content, 'revokedCertificates') : []) {
    const entry = new DerCursor(expectTag(entryEl, Tag.SEQUENCE, 'revokedCertificates entry').content, 'revokedCertificates entry');
    const serial = entry.next(Tag.INTEGER, 'userCertificate');
    if (serial.content.length === 0) throw new DerError('userCertificate: empty INTEGER');
    const revocationDate = readTime(entry.nextAny('revocationDate'), 'revocationDate');
    const entryExts = entry.optional(Tag.SEQUENCE);
    entry.done();
    let reason: string | undefined;
    let invalidityDate: Date | undefined;
    for (const ext of entryExts ? decodeExtensions(Buffer.from(entryExts.encoded)) : []) {
      if (ext.oid === OID.reasonCode) {
        const code = readSmallUint(readWhole(ext.value, Tag.ENUMERATED, 'reasonCode'), 'reasonCode');
        reason = REVOCATION_REASONS[code] ?? `reason ${code}`;
      } else if (ext.oid === OID.invalidityDate) {
        invalidityDate = readTime(readWhole(ext.value, Tag.GENERALIZED_TIME, 'invalidityDate'), 'invalidityDate');
      } else if (ext.critical) {
        unsupported.add(ext.oid);
      }
    }
    const item: RevokedCertificate = {
      serialNumber: Buffer.from(serial.content),
      revocationDate,
      ...(reason !== undefined ? { reason } : {}),
      ...(invalidityDate !== undefined ? { invalidityDate } : {}),
    };
    revoked.set(item.serialNumber.toString('hex'), item);
  }

  let crlNumber: bigint | undefined;
  let authorityKeyIdentifier: Buffer | undefined;
  for (const ext of extsEl ? decodeExtensions(extsEl.content) : []) {
    switch (ext.oid) {
      case OID.cRLNumber: {
        const n = readWhole(ext.value, Tag.INTEGER, 'cRLNumber').content;
        if (n.length === 0 || n[0]! & 0x80) throw new DerError('cRLNumber: not a non-negative INTEGER');
        crlNumber = BigInt(`0x${n.toString('hex')}`);
        break;
      }
      case OID.authorityKeyIdentifier: {
        const aki = new DerCursor(readWhole(ext.value, Tag.SEQUENCE, 'authorityKeyIdentifier').content, 'authorityKeyIdentifier');
        const keyId = aki.optional(contextPrimitive(0));
        aki.optional(contextConstructed(1));
        aki.optional(contextPrimitive(2));
        aki.done();
        if (keyId) authorityKeyIdentifier = Buffer.from(keyId.content);
        break;
      }
      case OID.issuingDistributionPoint:
        break;
      default:
        if (ext.critical || ext.oid === OID.deltaCRLIndicator) unsupported.add(ext.oid);
    }
  }

  return {
    source,
    der,
    issuer,
    thisUpdate,
    ...(nextUpdate ? { nextUpdate } : {}),
    tbs: Buffer.from(tbsEl.encoded),
    signatureAlgorithm: Buffer.from(sigAlg.encoded),
    tbsSignatureAlgorithm: Buffer.from(tbsSigAlg.encoded),
    signatureValue: Buffer.from(signatureValue),
    ...(crlNumber !== undefined ? { crlNumber } : {}),
    ...(authorityKeyIdentifier ? { authorityKeyIdentifier } : {}),
    revoked,
    unsupportedCriticalExtensions: [...unsupported],
    fingerprint: createHash('sha256').update(der).digest('hex'),
  };
}
