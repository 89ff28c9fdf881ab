/**
 * Our Delete of the IKE SA (RFC 7296 §1.4.1; strongSwan's ike_delete.c,
 * initiator side): an INFORMATIONAL request with a Delete payload for the IKE
 * SA; the SA is destroyed when it is answered (or when retransmits give up).
 * With a request of ours outstanding the Delete waits for its response
 * (§2.3, window 1): a Delete sent with the next message ID would be dropped
 * by a peer that never saw the current one. Also the redundant IKE SA of an
 * IKE rekey collision (§2.8.1), which the winner's initiator deletes.
 * The peer's Deletes are ./delete.ts's.
 */
import { ExchangeType } from '../codec/index.js';
import { deletePayload } from '../codec/build.js';
import { ProtocolId } from '../transforms.js';
import type { IkeSaEndCause } from '../sa/context.js';
import type { ExchangeHost } from './task.js';

export interface IkeDeleteHost extends Pick<ExchangeHost, 'ctx' | 'nextMessageId' | 'request'> {
  /** A request of ours is waiting for its response. */
  readonly requestOutstanding: boolean;
  destroy(reason: string, cause: IkeSaEndCause): void;
  /** Run `fn` after `ms` whatever the IKE SA's state then. */
  whateverState(ms: number, fn: () => void): void;
}

export class IkeDelete {
  /** A Delete requested while another request was outstanding (sent when it is answered). */
  private queued?: string;
  /** Why our Delete ends this SA (the cause reported once it is answered, or when retransmits give up). */
  cause: IkeSaEndCause = 'local';
  /** §2.8.1: made by the losing exchange of an IKE rekey collision. */
  redundant = false;

  constructor(private readonly sa: IkeDeleteHost) {}

  /** Start our Delete: sent now, or once the outstanding request is answered. */
  start(reason: string, cause: IkeSaEndCause): void {
    this.sa.ctx.state = 'deleting';
    this.cause = cause;
    if (this.sa.requestOutstanding) this.queued = reason;
    else this.send(reason);
  }

  /** Send the Delete that waited for the window; false when none waited. */
  sendQueued(): boolean {
    const reason = this.queued;
    if (reason === undefined) return false;
    this.queued = undefined;
    this.send(reason);
    return true;
  }

  private send(reason: string): void {
    const msg = { exchangeType: ExchangeType.INFORMATIONAL, messageId: this.sa.nextMessageId, payloads: [deletePayload(ProtocolId.IKE)] };
    this.sa.request(msg, () => this.sa.destroy(reason, this.cause));
  }

  /** §2.8.1: made by the losing exchange of an IKE rekey collision we initiated: we delete it (nothing ever ran on it). */
  deleteRedundant(reason: string): void {
    const ctx = this.sa.ctx;
    if (ctx.state === 'destroyed' || ctx.state === 'deleting') return;
    this.redundant = true;
    ctx.log.log('info', `${ctx.name}: deleting the IKE_SA: ${reason}`);
    this.start(reason, 'rekeyed');
  }

  /** §2.8.1: made by the losing exchange of an IKE rekey collision the peer initiated: the peer deletes it, we do after `ms`. */
  awaitRedundantDelete(ms: number): void {
    this.redundant = true;
    this.sa.whateverState(ms, () => this.deleteRedundant('redundant IKE_SA of a rekey collision, not deleted by the peer (§2.8.1)'));
  }
}
