/**
 * The wire forms of the Encrypted payload, SK (RFC 7296 §3.14), and the
 * Encrypted Fragment payload, SKF (RFC 7383 §2.5). Decrypting them is
 * ../sk.ts; this module only frames the octets.
 *
 * SK (the generic header's Next Payload is the type of the first inner payload)
 *   off len field
 *   0   …   Initialization Vector ‖ Encrypted Payloads, Padding, Pad Length ‖ ICV
 *
 * SKF (Next Payload: first inner payload type in fragment 1, 0 in the others)
 *   0   2   Fragment Number   1..Total Fragments
 *   2   2   Total Fragments   ≥ 1
 *   4   …   Initialization Vector ‖ encrypted chunk, Padding, Pad Length ‖ ICV
 *
 * The IV and ICV lengths depend on the negotiated cipher, so the codec keeps
 * the content whole until it is decrypted with a key. Both payloads must be
 * the last in their message (checked by the message decoder).
 */
import type { GenericHeaderFields } from '../context.js';
import { PayloadType } from '../payload-type.js';
import { type Reader, type Writer, checkUint } from '../reader.js';
import { IkeEncodeError } from '../errors.js';

export interface EncryptedPayload extends GenericHeaderFields {
  type: PayloadType.SK;
  /** Next Payload of the SK header: type of the first payload inside (0 if none). */
  firstPayload: number;
  /** IV ‖ ciphertext ‖ ICV. */
  content: Buffer;
}

export interface EncryptedFragmentPayload extends GenericHeaderFields {
  type: PayloadType.SKF;
  /** Next Payload of the SKF header: first inner payload type in fragment 1, 0 in the others (RFC 7383 §2.5). */
  firstPayload: number;
  fragmentNumber: number;
  totalFragments: number;
  /** IV ‖ ciphertext ‖ ICV. */
  content: Buffer;
}

export function decodeSkBody(r: Reader, firstPayload: number): EncryptedPayload {
  return { type: PayloadType.SK, firstPayload, content: r.rest() };
}

export function encodeSkBody(p: EncryptedPayload, w: Writer): void {
  w.bytes(p.content);
}

export function decodeSkfBody(r: Reader, firstPayload: number): EncryptedFragmentPayload {
  const fragmentNumber = r.u16('Fragment Number');
  const totalFragments = r.u16('Total Fragments');
  if (totalFragments === 0) r.fail('Total Fragments is 0', r.pos - 2);
  if (fragmentNumber === 0 || fragmentNumber > totalFragments) {
    r.fail(`Fragment Number ${fragmentNumber} outside 1..${totalFragments}`, r.pos - 4);
  }
  return { type: PayloadType.SKF, firstPayload, fragmentNumber, totalFragments, content: r.rest() };
}

export function encodeSkfBody(p: EncryptedFragmentPayload, w: Writer): void {
  checkUint(p.totalFragments, 16, 'SKF: Total Fragments');
  if (p.totalFragments === 0 || p.fragmentNumber < 1 || p.fragmentNumber > p.totalFragments) {
    throw new IkeEncodeError(`SKF: Fragment Number ${p.fragmentNumber} of ${p.totalFragments}`);
  }
  w.u16(p.fragmentNumber).u16(p.totalFragments).bytes(p.content);
}
