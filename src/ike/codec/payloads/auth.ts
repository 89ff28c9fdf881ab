/**
 * Authentication payload, AUTH (RFC 7296 §3.8).
 *
 *   off len field
 *   0   1   Auth Method
 *   1   3   RESERVED
 *   4   …   Authentication Data
 *
 * For method 14 (Digital Signature, RFC 7427) the data starts with a length
 * octet and the DER AlgorithmIdentifier of the signature; src/crypto/rfc7427.ts
 * reads that, the codec keeps the data opaque.
 */
import type { GenericHeaderFields } from '../context.js';
import { PayloadType } from '../payload-type.js';
import { type Reader, type Writer, checkUint } from '../reader.js';

/** IANA "IKEv2 Authentication Method". */
export enum AuthMethod {
  RSA_DIGITAL_SIGNATURE = 1,
  SHARED_KEY_MIC = 2,
  DSS_DIGITAL_SIGNATURE = 3,
  /** RFC 4754 */
  ECDSA_SHA256_P256 = 9,
  ECDSA_SHA384_P384 = 10,
  ECDSA_SHA512_P521 = 11,
  /** RFC 6467 */
  GENERIC_SECURE_PASSWORD = 12,
  /** RFC 7619 */
  NULL_AUTHENTICATION = 13,
  /** RFC 7427 */
  DIGITAL_SIGNATURE = 14,
}

export interface AuthPayload extends GenericHeaderFields {
  type: PayloadType.AUTH;
  method: number;
  data: Buffer;
  /** RESERVED (3 octets) as received, only when non-zero. */
  reserved?: number;
}

export function decodeAuthBody(r: Reader): AuthPayload {
  const method = r.u8('Auth Method');
  const reserved = (r.u8('RESERVED') << 16) | r.u16('RESERVED');
  const p: AuthPayload = { type: PayloadType.AUTH, method, data: r.rest() };
  if (reserved !== 0) p.reserved = reserved;
  return p;
}

export function encodeAuthBody(p: AuthPayload, w: Writer): void {
  w.u8(checkUint(p.method, 8, 'AUTH: Auth Method'))
    .u24(checkUint(p.reserved ?? 0, 24, 'AUTH: RESERVED'))
    .bytes(p.data);
}
