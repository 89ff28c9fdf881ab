/**
 * Key Exchange payload, KE (RFC 7296 §3.4).
 *
 *   off len field
 *   0   2   Diffie-Hellman Group Num (Transform Type 4 ID)
 *   2   2   RESERVED
 *   4   …   Key Exchange Data
 *
 * The codec does not check the data length against the group: that is the
 * key exchange implementation's job (src/crypto/ke), which knows the group.
 */
import type { GenericHeaderFields } from '../context.js';
import { PayloadType } from '../payload-type.js';
import { type Reader, type Writer, checkUint } from '../reader.js';

export interface KePayload extends GenericHeaderFields {
  type: PayloadType.KE;
  dhGroup: number;
  keyExchangeData: Buffer;
  /** RESERVED (2 octets) as received, only when non-zero. */
  reserved?: number;
}

export function decodeKeBody(r: Reader): KePayload {
  const dhGroup = r.u16('Diffie-Hellman Group Num');
  const reserved = r.u16('RESERVED');
  const p: KePayload = { type: PayloadType.KE, dhGroup, keyExchangeData: r.rest() };
  if (reserved !== 0) p.reserved = reserved;
  return p;
}

export function encodeKeBody(p: KePayload, w: Writer): void {
  w.u16(checkUint(p.dhGroup, 16, 'KE: Diffie-Hellman Group Num'))
    .u16(checkUint(p.reserved ?? 0, 16, 'KE: RESERVED'))
    .bytes(p.keyExchangeData);
}
