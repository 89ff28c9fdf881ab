/**
 * Fixed-width big-endian integers as the key exchange RFCs encode them:
 * RFC 5903 §7 / RFC 6954 (ECP coordinates, field-size octets) and
 * RFC 7296 §3.4 (MODP public values, prime-size octets, zero-prepended).
 */
import { CryptoError } from '../types.js';

/** Unsigned big-endian octets → bigint (empty input → 0n). */
export function octetsToBigInt(octets: Uint8Array): bigint {
  let hex = '';
  for (const byte of octets) hex += byte.toString(16).padStart(2, '0');
  return hex === '' ? 0n : BigInt(`0x${hex}`);
}

/** bigint → exactly `length` big-endian octets; CryptoError if it does not fit. */
export function bigIntToOctets(value: bigint, length: number): Buffer {
  if (value < 0n) throw new CryptoError('negative integer cannot be encoded as octets');
  const hex = value.toString(16);
  if (hex.length > length * 2) throw new CryptoError(`integer does not fit in ${length} octets`);
  return Buffer.from(hex.padStart(length * 2, '0'), 'hex');
}

/** Prepend zero octets up to `length` (RFC 7296 §3.4); CryptoError if already longer. */
export function leftPad(octets: Uint8Array, length: number): Buffer {
  if (octets.length > length) throw new CryptoError(`value of ${octets.length} octets exceeds ${length}`);
  const out = Buffer.alloc(length);
  out.set(octets, length - octets.length);
  return out;
}

/** True when every octet is zero (also for the empty array). */
export function isAllZero(octets: Uint8Array): boolean {
  let acc = 0;
  for (const byte of octets) acc |= byte;
  return acc === 0;
}
