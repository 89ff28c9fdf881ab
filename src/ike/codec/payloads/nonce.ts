/**
 * Nonce payload, Ni / Nr (RFC 7296 §3.9).
 *
 *   off len field
 *   0   …   Nonce Data (16..256 octets)
 *
 * Where the length rules live: §3.9's "between 16 and 256 octets, inclusive"
 * is a property of the payload alone, so the codec enforces it both ways
 * (a shorter or longer nonce is INVALID_SYNTAX on receipt and an
 * IkeEncodeError on send). §2.10's other rule, "at least half the key size
 * of the negotiated PRF", depends on the negotiated suite and is checked by
 * the exchange that knows it.
 */
import type { GenericHeaderFields } from '../context.js';
import { PayloadType } from '../payload-type.js';
import { type Reader, type Writer, checkLength } from '../reader.js';

export const NONCE_MIN_LENGTH = 16;
export const NONCE_MAX_LENGTH = 256;

export interface NoncePayload extends GenericHeaderFields {
  type: PayloadType.NONCE;
  nonce: Buffer;
}

export function decodeNonceBody(r: Reader): NoncePayload {
  const length = r.remaining;
  if (length < NONCE_MIN_LENGTH || length > NONCE_MAX_LENGTH) {
    r.fail(`Nonce Data is ${length} octets, RFC 7296 §3.9 requires ${NONCE_MIN_LENGTH}..${NONCE_MAX_LENGTH}`);
  }
  return { type: PayloadType.NONCE, nonce: r.rest() };
}

export function encodeNonceBody(p: NoncePayload, w: Writer): void {
  w.bytes(checkLength(p.nonce, NONCE_MIN_LENGTH, NONCE_MAX_LENGTH, 'Nonce'));
}
