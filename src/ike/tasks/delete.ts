/**
 * INFORMATIONAL requests of the peer (RFC 7296 §1.4; strongSwan's
 * ike_delete.c, child_delete.c and the empty request of ike_dpd.c, responder
 * side): a Delete of the IKE SA ends it (after an IKE rekey the old SA's Delete
 * is part of the rekey); AUTHENTICATION_FAILED (§2.21.2) ends it; a Delete of
 * CHILD_SAs is answered with the Delete of our half of each pair (§1.4.1);
 * an empty request is a liveness check, answered empty.
 *
 * Our own Delete of the IKE SA waits for the request window (§2.3) in the
 * exchange engine (../sa/ike-sa.ts, delete()); our Deletes of CHILD_SA pairs
 * after a rekey are ./child-rekey.ts's.
 */
import { NotifyType, PayloadType } from '../codec/index.js';
import { deletePayload } from '../codec/build.js';
import { ProtocolId } from '../transforms.js';
import type { IkeSaContext, IkeSaEndCause } from '../sa/context.js';
import type { TaskMessage } from './task.js';

export interface InformationalResponder {
  readonly ctx: IkeSaContext;
  /**
   * The peer deletes this IKE SA: the name of the IKE SA that replaced it by a
   * rekey, if any (an IKE rekey collision still open is concluded first,
   * ./ike-rekey.ts); `redundant`: it was the losing IKE SA of a collision (§2.8.1).
   */
  peerDeletesIkeSa(): { successorName: string | undefined; redundant: boolean };
  /** Remove the CHILD_SAs the peer deleted (by its inbound SPIs); returns our inbound SPIs of those pairs. */
  peerDeletedChildren(peerSpis: readonly Buffer[]): Buffer[];
}

/** Answer one INFORMATIONAL request into `response`; returns why the IKE SA ends, if it does. */
export function respondInformational(
  sa: InformationalResponder,
  msg: TaskMessage,
  response: TaskMessage,
): { reason: string; cause: IkeSaEndCause } | undefined {
  for (const p of msg.payloads) {
    if (p.type === PayloadType.DELETE && p.protocolId === ProtocolId.IKE) {
      // after an IKE rekey the old SA's Delete is part of the rekey, not the peer closing
      const { successorName, redundant } = sa.peerDeletesIkeSa();
      if (redundant) return { reason: 'redundant IKE_SA of a rekey collision deleted by the peer (§2.8.1)', cause: 'rekeyed' };
      return successorName !== undefined
        ? { reason: `rekeyed, replaced by ${successorName}`, cause: 'rekeyed' }
        : { reason: 'peer deleted the IKE_SA', cause: 'peer-deleted' };
    }
  }
  for (const p of msg.payloads) {
    if (p.type === PayloadType.NOTIFY && p.notifyType === NotifyType.AUTHENTICATION_FAILED)
      return { reason: 'peer reported AUTHENTICATION_FAILED', cause: 'failed' };
  }
  if (msg.payloads.length === 0) sa.ctx.log.log('debug', `${sa.ctx.name}: liveness check (empty INFORMATIONAL) from the peer answered`);
  const ourInbound: Buffer[] = [];
  for (const p of msg.payloads) {
    if (p.type === PayloadType.DELETE && p.protocolId === ProtocolId.ESP) ourInbound.push(...sa.peerDeletedChildren(p.spis));
  }
  // §1.4.1: answer a CHILD_SA Delete with the Delete of our own half of each pair.
  if (ourInbound.length > 0) response.payloads.push(deletePayload(ProtocolId.ESP, ourInbound));
  return undefined;
}
