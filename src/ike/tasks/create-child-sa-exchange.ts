/**
 * Running CREATE_CHILD_SA exchanges (RFC 7296 §1.3) for one IKE SA: ours — a
 * request built, sent, its response processed, INVALID_KE_PAYLOAD sent again
 * at once — and the peer's: the refusals while our own exchanges are under way
 * (§2.25; a rekey of the same SA is a collision instead, §2.8.1), the answer
 * (./create-child-sa.ts) and what follows it: a new CHILD_SA, a rekeyed one
 * (./child-rekey.ts), a new IKE SA (./ike-rekey.ts).
 */
import { ExchangeType, NotifyType, PayloadType } from '../codec/index.js';
import { notify } from '../codec/build.js';
import { ProtocolId } from '../transforms.js';
import type { ChildSaRecord, IkeSaContext } from '../sa/context.js';
import type { ChildRekeys } from './child-rekey.js';
import { CreateChildRefusal, respondCreateChildSa, type CreateChildOutcome, type RequestResult } from './create-child-sa.js';
import type { ExchangeHost, TaskMessage } from './task.js';

/** A CREATE_CHILD_SA request of ours: built, then its response processed. */
export interface CreateChildSaRequest<T> {
  build(msg: TaskMessage): void;
  process(msg: TaskMessage): RequestResult<T>;
  abandon?(): void;
}

export interface CreateChildSaHost extends ExchangeHost {
  /** CHILD_SA requests of ours sent and not answered (their reserved SPIs are released if the IKE SA ends first). */
  readonly unanswered: Set<{ abandon(): void }>;
  /** Put an exchange first in the queue, to be sent once the current one is done. */
  retryFirst(job: () => void): void;
}

/**
 * One CREATE_CHILD_SA exchange of ours: build the request (a failure there is
 * `buildFailed`'s, and the next queued exchange goes), send it, and hand the
 * outcome on — an exception while processing the response is a failure, an
 * INVALID_KE_PAYLOAD asking for another group we offer is sent again at once.
 */
export function runCreateChildSa<T>(
  host: CreateChildSaHost,
  req: CreateChildSaRequest<T>,
  buildFailed: (err: Error) => void,
  answered: (r: Exclude<RequestResult<T>, { status: 'retry' }>) => void,
): void {
  const send = (): void => {
    const msg: TaskMessage = { exchangeType: ExchangeType.CREATE_CHILD_SA, messageId: host.nextMessageId, payloads: [] };
    try {
      req.build(msg);
    } catch (err) {
      buildFailed(err as Error);
      return host.sendNextRequest();
    }
    const abandonable = req.abandon ? { abandon: () => req.abandon?.() } : undefined;
    if (abandonable) host.unanswered.add(abandonable);
    host.request(msg, (response) => {
      if (abandonable) host.unanswered.delete(abandonable);
      let r: RequestResult<T>;
      try {
        r = req.process(response);
      } catch (err) {
        r = { status: 'failed', reason: (err as Error).message };
      }
      if (r.status === 'retry') return host.retryFirst(send);
      answered(r);
    });
  };
  send();
}

/** What answering the peer's CREATE_CHILD_SA needs of the IKE SA. */
export interface CreateChildSaResponder {
  readonly ctx: IkeSaContext;
  /** A rekeyed successor carries the CHILD_SAs now. */
  readonly replaced: boolean;
  /** The manager registers successors; without it IKE rekeys are refused. */
  readonly canSpawn: boolean;
  /** A new IKE SA is being set up to replace this one (make-before-break): a rekey of this one now would leave two. */
  readonly reauthenticating: boolean;
  readonly ikeRekey: { readonly rekeying: boolean; readonly refusesPeerRekey: boolean; peerRekeyed(ctx: IkeSaContext, nonces: Buffer[]): void };
  readonly childRekeys: ChildRekeys;
  childEstablished(child: ChildSaRecord): void;
}

/** Answer the peer's CREATE_CHILD_SA request into `response`; the outcome is for createChildSaAnswered once the response is sent. */
export function respondCreateChildSaExchange(sa: CreateChildSaResponder, msg: TaskMessage, response: TaskMessage): CreateChildOutcome | undefined {
  const { ctx } = sa;
  const refuse = (notifyType: number, why: string, data?: Buffer): undefined => {
    ctx.log.log('warn', `${ctx.name}: CREATE_CHILD_SA ${msg.messageId} refused (${NotifyType[notifyType] ?? notifyType}): ${why}`);
    response.payloads = [notify(notifyType, data ? { data } : {})];
    return undefined;
  };
  if (ctx.state !== 'established' || sa.replaced) return refuse(NotifyType.TEMPORARY_FAILURE, 'the IKE_SA is being rekeyed or deleted');
  const ike = msg.payloads.some((p) => p.type === PayloadType.SA && p.proposals.some((q) => q.protocolId === ProtocolId.IKE));
  // our IKE rekey in flight is no refusal: a collision, settled by the nonces (§2.8.1, ./ike-rekey.ts)
  if (ike && (sa.ikeRekey.refusesPeerRekey || sa.childRekeys.busy)) return refuse(NotifyType.TEMPORARY_FAILURE, 'an exchange of ours is under way (§2.25)');
  // as strongSwan's ike_rekey.c: the IKE SA replacing this one would not know of the rekeyed one
  if (ike && sa.reauthenticating) return refuse(NotifyType.TEMPORARY_FAILURE, 'we are reauthenticating the IKE_SA');
  if (ike && !sa.canSpawn) return refuse(NotifyType.NO_ADDITIONAL_SAS, 'IKE_SA rekeying is not available here');
  if (!ike && sa.ikeRekey.rekeying) return refuse(NotifyType.TEMPORARY_FAILURE, 'we are rekeying the IKE_SA (§2.25)');
  try {
    return respondCreateChildSa(ctx, msg, response, (outbound) => {
      // Our own rekey of it may be under way: answered as usual all the same (§2.25), the
      // collision is settled by the nonces when our exchange completes (§2.8.1).
      return ctx.children.find((c) => c.outboundSpi === outbound);
    });
  } catch (err) {
    if (err instanceof CreateChildRefusal) return refuse(err.notifyType, err.message, err.data);
    throw err;
  }
}

/** Our response to the peer's CREATE_CHILD_SA is sent: the new CHILD_SA, the rekeyed one or the new IKE SA takes its place. */
export function createChildSaAnswered(sa: CreateChildSaResponder, outcome: CreateChildOutcome): void {
  switch (outcome.kind) {
    case 'child-rekey':
      sa.childRekeys.peerRekeyed(outcome.old, outcome.record, outcome.nonces);
      return;
    case 'child-new':
      sa.ctx.children.push(outcome.record);
      sa.childRekeys.scheduleChildRekey(outcome.record);
      sa.childEstablished(outcome.record);
      return;
    case 'ike-rekey':
      sa.ikeRekey.peerRekeyed(outcome.ctx, outcome.nonces);
      return;
  }
}
