/**
 * The "Shared Key Message Integrity Code" AUTH of RFC 7296 §2.15:
 *
 *   AUTH = prf( prf(Shared Secret, "Key Pad for IKEv2"), <InitiatorSignedOctets>)
 *
 * (and the same with <ResponderSignedOctets> for the responder). tunsec has no
 * pre-shared keys; it computes this for NULL Authentication (RFC 7619 §2.1),
 * whose "shared secret" is the sender's SK_pi (initiator) or SK_pr (responder):
 * nothing outside the IKE SA, so the AUTH proves only that the sender holds
 * this IKE SA's keys and saw these IKE_SA_INIT messages — no identity.
 */
import { timingSafeEqual } from 'node:crypto';
import type { Prf } from '../../crypto/types.js';

/** RFC 7296 §2.15: the 17 ASCII octets of "Key Pad for IKEv2", no terminator. */
const KEY_PAD = Buffer.from('Key Pad for IKEv2', 'ascii');

export function sharedKeyMic(prf: Prf, secret: Uint8Array, signedOctets: Uint8Array): Buffer {
  return prf.compute(prf.compute(secret, KEY_PAD), signedOctets);
}

/** Does a received AUTH equal the one we compute? In constant time for equal lengths. */
export function sharedKeyMicMatches(expected: Buffer, received: Uint8Array): boolean {
  return expected.length === received.length && timingSafeEqual(expected, received);
}
