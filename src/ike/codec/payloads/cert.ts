/**
 * Certificate and Certificate Request payloads, CERT and CERTREQ
 * (RFC 7296 §3.6, §3.7).
 *
 * CERT
 *   off len field
 *   0   1   Cert Encoding
 *   1   …   Certificate Data
 *
 * For the two Hash and URL encodings (12, 13) the data is a 20-octet SHA-1
 * hash followed by the URL (§3.6); shorter data is INVALID_SYNTAX.
 *
 * CERTREQ
 *   0   1   Cert Encoding
 *   1   …   Certification Authority: concatenated 20-octet SHA-1 hashes of
 *           the SubjectPublicKeyInfo of each trusted CA (may be empty)
 *
 * A CERTREQ whose authority list is not a whole number of hashes is
 * INVALID_SYNTAX.
 */
import type { GenericHeaderFields } from '../context.js';
import { PayloadType } from '../payload-type.js';
import { type Reader, type Writer, checkUint } from '../reader.js';
import { IkeEncodeError } from '../errors.js';

/** IANA "IKEv2 Certificate Encodings". */
export enum CertEncoding {
  PKCS7_WRAPPED_X509 = 1,
  PGP = 2,
  DNS_SIGNED_KEY = 3,
  X509_SIGNATURE = 4,
  KERBEROS_TOKEN = 6,
  CRL = 7,
  ARL = 8,
  SPKI = 9,
  X509_ATTRIBUTE = 10,
  RAW_RSA_KEY = 11,
  HASH_AND_URL_X509 = 12,
  HASH_AND_URL_X509_BUNDLE = 13,
  /** RFC 4806 */
  OCSP_CONTENT = 14,
  /** RFC 7670 */
  RAW_PUBLIC_KEY = 15,
}

export const SHA1_LENGTH = 20;

export interface CertPayload extends GenericHeaderFields {
  type: PayloadType.CERT;
  encoding: number;
  data: Buffer;
}

export interface CertReqPayload extends GenericHeaderFields {
  type: PayloadType.CERTREQ;
  encoding: number;
  /** SHA-1 hashes of trusted CAs' SubjectPublicKeyInfo, 20 octets each. */
  caKeyHashes: Buffer[];
}

function isHashAndUrl(encoding: number): boolean {
  return encoding === CertEncoding.HASH_AND_URL_X509 || encoding === CertEncoding.HASH_AND_URL_X509_BUNDLE;
}

export function decodeCertBody(r: Reader): CertPayload {
  const encoding = r.u8('Cert Encoding');
  if (isHashAndUrl(encoding) && r.remaining < SHA1_LENGTH) {
    r.fail(`Hash and URL data is ${r.remaining} octets, shorter than the ${SHA1_LENGTH}-octet hash`);
  }
  return { type: PayloadType.CERT, encoding, data: r.rest() };
}

export function encodeCertBody(p: CertPayload, w: Writer): void {
  if (isHashAndUrl(p.encoding) && p.data.length < SHA1_LENGTH) {
    throw new IkeEncodeError(`CERT: Hash and URL data needs the ${SHA1_LENGTH}-octet hash`);
  }
  w.u8(checkUint(p.encoding, 8, 'CERT: Cert Encoding')).bytes(p.data);
}

/** Hash and URL certificate data (encodings 12 and 13) split into its parts. */
export function parseHashAndUrl(p: CertPayload): { hash: Buffer; url: string } | undefined {
  if (!isHashAndUrl(p.encoding) || p.data.length < SHA1_LENGTH) return undefined;
  return { hash: p.data.subarray(0, SHA1_LENGTH), url: p.data.subarray(SHA1_LENGTH).toString('latin1') };
}

/** CERT payload data for Hash and URL: SHA-1 of the certificate (or bundle) ‖ URL. */
export function hashAndUrlData(hash: Uint8Array, url: string): Buffer {
  if (hash.length !== SHA1_LENGTH) throw new IkeEncodeError(`CERT: Hash and URL hash is ${hash.length} octets, expected ${SHA1_LENGTH}`);
  return Buffer.concat([hash, Buffer.from(url, 'latin1')]);
}

export function decodeCertReqBody(r: Reader): CertReqPayload {
  const encoding = r.u8('Cert Encoding');
  if (r.remaining % SHA1_LENGTH !== 0) {
    r.fail(`Certification Authority is ${r.remaining} octets, not a whole number of ${SHA1_LENGTH}-octet SHA-1 hashes`);
  }
  const caKeyHashes: Buffer[] = [];
  while (!r.atEnd()) caKeyHashes.push(r.bytes(SHA1_LENGTH, 'CA hash'));
  return { type: PayloadType.CERTREQ, encoding, caKeyHashes };
}

export function encodeCertReqBody(p: CertReqPayload, w: Writer): void {
  w.u8(checkUint(p.encoding, 8, 'CERTREQ: Cert Encoding'));
  for (const h of p.caKeyHashes) {
    if (h.length !== SHA1_LENGTH) throw new IkeEncodeError(`CERTREQ: CA hash is ${h.length} octets, expected ${SHA1_LENGTH}`);
    w.bytes(h);
  }
}
