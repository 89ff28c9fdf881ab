/**
 * Rekeying the IKE SA, initiator (RFC 7296 §1.3.2, §2.18; strongSwan's
 * ike_rekey.c): a CREATE_CHILD_SA with an IKE proposal, new SPIs and a KE
 * (IkeRekeyRequest, ./create-child-sa.ts); on success the IKE SA that the
 * manager registers for the new keys takes the CHILD_SAs over and this one is
 * deleted. Queued ahead of CHILD rekeys, which wait for it (§2.25) and move
 * with the CHILD_SAs. Simplification: an IKE rekey collision is answered
 * TEMPORARY_FAILURE by both sides and each retries after a random delay,
 * instead of §2.8.2's nonce comparison. The responder role is in
 * respondCreateChildSa (./create-child-sa.ts).
 */
import type { IkeSaContext } from '../sa/context.js';
import { IkeRekeyRequest, type RequestResult } from './create-child-sa.js';
import type { ExchangeHost, TaskMessage } from './task.js';

/** A CREATE_CHILD_SA request of ours: built, then its response processed. */
export interface CreateChildSaRequest<T> {
  build(msg: TaskMessage): void;
  process(msg: TaskMessage): RequestResult<T>;
  abandon?(): void;
}

export interface IkeRekeyHost extends ExchangeHost {
  /** A rekeyed successor carries the CHILD_SAs already. */
  readonly replaced: boolean;
  /** The manager registers successors (IkeSa.spawn is set); without it IKE rekeys are not done. */
  readonly canSpawn: boolean;
  later(ms: number, fn: () => void): void;
  /** One CREATE_CHILD_SA exchange of ours (INVALID_KE_PAYLOAD retried inside). */
  createChildSaExchange<T>(req: CreateChildSaRequest<T>, buildFailed: (err: Error) => void, answered: (r: Exclude<RequestResult<T>, { status: 'retry' }>) => void): void;
  /** Register the IKE SA with the new keys and hand it the CHILD_SAs; returns its name. */
  adoptSuccessor(ctx: IkeSaContext): string;
  /** Delete this IKE SA (INFORMATIONAL, §1.4.1). */
  delete(reason: string, cause: 'rekeyed'): void;
  /** The CHILD rekeys that waited for this IKE rekey go now (it did not happen). */
  resumeChildRekeys(): void;
  /** The IKE SA's rekeyIke (a retry goes through it again). */
  rekeyIke(why: string): void;
}

export class IkeRekey {
  /** Our IKE rekey is queued or under way. */
  rekeying = false;

  constructor(
    private readonly host: IkeRekeyHost,
    private readonly retryDelay: () => number,
  ) {}

  /** Initiate the rekey of this IKE SA (§1.3.2); the CHILD_SAs move to the new one. */
  initiate(why: string): void {
    const { ctx } = this.host;
    if (ctx.state !== 'established' || this.rekeying || this.host.replaced || !this.host.canSpawn || !ctx.keys) return;
    this.rekeying = true;
    ctx.log.log('info', `${ctx.name}: rekeying IKE_SA (${why})`);
    const req = new IkeRekeyRequest(ctx);
    const send = (): void => {
      if (ctx.state !== 'established' || this.host.replaced) {
        this.rekeying = false;
        return this.host.sendNextRequest();
      }
      const buildFailed = (err: Error): void => {
        this.rekeying = false;
        ctx.log.log('warn', `${ctx.name}: cannot rekey the IKE_SA: ${err.message}`);
      };
      this.host.createChildSaExchange(req, buildFailed, (r) => {
        this.rekeying = false;
        if (r.status !== 'ok') this.host.resumeChildRekeys();
        if (r.status === 'ok') {
          const next = this.host.adoptSuccessor(r.value);
          this.host.delete(`rekeyed, replaced by ${next}`, 'rekeyed');
          return;
        }
        if (r.status === 'temporary') {
          const ms = this.retryDelay();
          ctx.log.log('info', `${ctx.name}: IKE_SA rekey: peer answered TEMPORARY_FAILURE, retrying in ${ms} ms`);
          this.host.later(ms, () => this.host.rekeyIke('retry after TEMPORARY_FAILURE'));
          return;
        }
        ctx.log.log('warn', `${ctx.name}: IKE_SA rekey failed: ${r.status === 'failed' ? r.reason : r.status}`);
      });
    };
    // Ahead of queued CHILD rekeys: they move to the new IKE SA with their timers.
    this.host.enqueue(send, true);
  }
}
