/**
 * The octets an AUTH payload signs (RFC 7296 §2.15):
 *
 *   InitiatorSignedOctets = RealMessage1 | NonceRData | MACedIDForI
 *   ResponderSignedOctets = RealMessage2 | NonceIData | MACedIDForR
 *   MACedIDForI = prf(SK_pi, RestOfInitIDPayload)
 *   MACedIDForR = prf(SK_pr, RestOfRespIDPayload)
 *
 * RealMessage1/2 are the IKE_SA_INIT request/response exactly as sent or
 * received (the IKE SA keeps those octets), the nonce is the *peer's* nonce
 * data, and RestOf…IDPayload is the ID payload after its generic header
 * (ID Type, three reserved octets, identification data).
 */
import type { Prf } from '../../crypto/types.js';
import { encodeIdBody, type Identification } from '../codec/index.js';

export interface SignedOctetsInput {
  /** The sender's IKE_SA_INIT message, as it went over the wire (RealMessage1 for the initiator, 2 for the responder). */
  realMessage: Uint8Array;
  /** The other side's Nonce Data from IKE_SA_INIT. */
  peerNonce: Uint8Array;
  prf: Prf;
  /** SK_pi when the initiator's octets are built, SK_pr for the responder's. */
  skP: Uint8Array;
  /** The sender's identity as carried in its IDi/IDr payload (reserved octets included if non-zero). */
  id: Identification & { reserved?: number };
}

export function signedOctets(input: SignedOctetsInput): Buffer {
  const macedId = input.prf.compute(input.skP, encodeIdBody(input.id));
  return Buffer.concat([input.realMessage, input.peerNonce, macedId]);
}
