/**
 * Rekeying the IKE SA (RFC 7296 §1.3.2, §2.18; strongSwan's ike_rekey.c), in
 * both roles' endings: our CREATE_CHILD_SA with an IKE proposal, new SPIs and
 * a KE (IkeRekeyRequest, ./create-child-sa.ts); the IKE SA that the manager
 * registers for the new keys takes the CHILD_SAs over (adopt) and the old one
 * is deleted by the rekey's initiator. Queued ahead of CHILD rekeys, which wait
 * for it (§2.25) and move with the CHILD_SAs. The responder's keys are made by
 * respondCreateChildSa (./create-child-sa.ts); what it does with them is
 * peerRekeyed here.
 *
 * Collisions (§2.8.1, applied to the IKE SA as §2.8.2 describes): when the
 * peer's IKE rekey request arrives while ours is sent and unanswered, both are
 * answered; the new IKE SA of the peer's exchange is registered but not used
 * until ours is answered. Then the lowest of the four nonces decides: the new
 * IKE SA made by the exchange that holds it is redundant and deleted by that
 * exchange's initiator; the other inherits the CHILD_SAs, and its initiator
 * deletes the old IKE SA. When our exchange fails (TEMPORARY_FAILURE: the
 * peer finished its own rekey before ours arrived), or the peer deletes the
 * old IKE SA before our response arrives, the peer's new IKE SA takes over.
 */
import type { ChildSaRecord, IkeSaContext } from '../sa/context.js';
import type { ChildRekeys } from './child-rekey.js';
import { IkeRekeyRequest, lowestNonceIn, type RequestResult } from './create-child-sa.js';
import type { ExchangeHost } from './task.js';
import type { CreateChildSaRequest } from './create-child-sa-exchange.js';

/** A collision's redundant IKE SA made by the peer's exchange: we delete it ourselves if the peer has not after this long. */
export const REDUNDANT_IKE_SA_GRACE_MS = 30_000;

/** What an IKE SA made by a rekey offers the one it replaces. */
export interface RekeyedIkeSa {
  readonly ctx: IkeSaContext;
  readonly childRekeys: ChildRekeys;
  /** Established now, carrying the CHILD_SAs of `rekeyOf` (its timers and DPD start). */
  establish(rekeyOf: IkeSaContext): void;
  rekeyChild(child: ChildSaRecord, why: string): void;
  /** §2.8.1: made by the losing exchange of a collision that we initiated: we delete it. */
  deleteRedundant(reason: string): void;
  /** §2.8.1: made by the losing exchange of a collision that the peer initiated: the peer deletes it, we do after `ms`. */
  awaitRedundantDelete(ms: number): void;
}

export interface IkeRekeyHost<S extends RekeyedIkeSa> extends ExchangeHost {
  /** The manager registers successors (IkeSa.spawn is set); without it IKE rekeys are not done. */
  readonly canSpawn: boolean;
  /** A new IKE SA is being set up to replace this one (make-before-break): no rekey of this one meanwhile. */
  readonly reauthenticating: boolean;
  /** Register the IKE SA with the new keys (§2.18), not established yet. */
  spawn(ctx: IkeSaContext): S;
  /** This IKE SA's CHILD_SA pairs and their states (they move to the successor). */
  readonly childRekeys: ChildRekeys;
  later(ms: number, fn: () => void): void;
  /** One CREATE_CHILD_SA exchange of ours (INVALID_KE_PAYLOAD retried inside). */
  createChildSaExchange<T>(
    req: CreateChildSaRequest<T>,
    buildFailed: (err: Error) => void,
    answered: (r: Exclude<RequestResult<T>, { status: 'retry' }>) => void,
  ): void;
  /** Delete this IKE SA (INFORMATIONAL, §1.4.1). */
  delete(reason: string, cause: 'rekeyed'): void;
  /** The IKE SA's rekeyIke (a retry goes through it again). */
  rekeyIke(why: string): void;
  /** Report the rekey: `next` carries the CHILD_SAs now. */
  ikeRekeyed(next: S): void;
}

export class IkeRekey<S extends RekeyedIkeSa> {
  /** Our IKE rekey is queued or under way. */
  rekeying = false;
  /** Our IKE rekey request is sent and not answered (a rekey of the peer's now is a collision, §2.8.1). */
  private inFlight = false;
  /** §2.8.1: the peer's IKE rekey answered while ours is in flight, with its exchange's nonces; settled when ours is answered. */
  private collision?: { sa: S; nonces: Buffer[] };
  /** The IKE SA that carries the CHILD_SAs after a rekey. */
  successor?: S;

  constructor(
    private readonly host: IkeRekeyHost<S>,
    private readonly retryDelay: () => number,
  ) {}

  private get ctx(): IkeSaContext {
    return this.host.ctx;
  }

  /** Whether the peer's IKE rekey request must be refused (TEMPORARY_FAILURE, §2.25): ours is queued but not sent, or a collision is already open. */
  get refusesPeerRekey(): boolean {
    return (this.rekeying && !this.inFlight) || this.collision !== undefined;
  }

  /** Initiate the rekey of this IKE SA (§1.3.2); the CHILD_SAs move to the new one. */
  initiate(why: string): void {
    const { ctx } = this;
    if (ctx.state !== 'established' || this.rekeying || this.successor || !this.host.canSpawn || this.host.reauthenticating || !ctx.keys) return;
    this.rekeying = true;
    ctx.log.log('info', `${ctx.name}: rekeying IKE_SA (${why})`);
    const inner = new IkeRekeyRequest(ctx);
    const req: CreateChildSaRequest<IkeSaContext> = {
      build: (msg) => {
        inner.build(msg);
        this.inFlight = true;
      },
      process: (msg) => inner.process(msg),
    };
    const send = (): void => {
      if (ctx.state !== 'established' || this.successor) {
        this.rekeying = false;
        return this.host.sendNextRequest();
      }
      const buildFailed = (err: Error): void => {
        this.rekeying = false;
        ctx.log.log('warn', `${ctx.name}: cannot rekey the IKE_SA: ${err.message}`);
      };
      this.host.createChildSaExchange(req, buildFailed, (r) => this.answered(r));
    };
    // Ahead of queued CHILD rekeys: they move to the new IKE SA with their timers.
    this.host.enqueue(send, true);
  }

  private answered(r: Exclude<RequestResult<IkeSaContext>, { status: 'retry' }>): void {
    const { ctx } = this;
    this.rekeying = false;
    this.inFlight = false;
    const collision = this.collision;
    this.collision = undefined;
    if (r.status === 'ok') {
      const ours = this.host.spawn(r.value);
      if (collision && lowestNonceIn(r.nonces, collision.nonces)) {
        ctx.log.log(
          'info',
          `${ctx.name}: IKE_SA rekey collision lost (§2.8.1): the lowest nonce is in our exchange; deleting our redundant ${ours.ctx.name}, ${collision.sa.ctx.name} of the peer takes over`,
        );
        ours.deleteRedundant('redundant IKE_SA of a rekey collision (§2.8.1)');
        // the winner (the peer) deletes the old IKE SA
        this.adopt(collision.sa);
        return;
      }
      if (collision) {
        ctx.log.log(
          'info',
          `${ctx.name}: IKE_SA rekey collision won (§2.8.1): the lowest nonce is in the peer's exchange; the peer deletes its redundant ${collision.sa.ctx.name}`,
        );
        collision.sa.awaitRedundantDelete(REDUNDANT_IKE_SA_GRACE_MS);
      }
      const next = this.adopt(ours);
      this.host.delete(`rekeyed, replaced by ${next.ctx.name}`, 'rekeyed');
      return;
    }
    if (collision) {
      // The peer's rekey went through and ours did not: its new IKE SA takes over, the peer deletes this one.
      ctx.log.log(
        'info',
        `${ctx.name}: IKE_SA rekey collision: our exchange ended (${r.status === 'failed' ? r.reason : r.status}), ${collision.sa.ctx.name} of the peer takes over`,
      );
      this.adopt(collision.sa);
      return;
    }
    this.host.childRekeys.resumeAfterIkeRekey();
    if (r.status === 'temporary') {
      const ms = this.retryDelay();
      ctx.log.log('info', `${ctx.name}: IKE_SA rekey: peer answered TEMPORARY_FAILURE, retrying in ${ms} ms`);
      this.host.later(ms, () => this.host.rekeyIke('retry after TEMPORARY_FAILURE'));
      return;
    }
    ctx.log.log('warn', `${ctx.name}: IKE_SA rekey failed: ${r.status === 'failed' ? r.reason : r.status}`);
  }

  /**
   * We answered the peer's rekey of this IKE SA (responder, §1.3.2): the IKE
   * SA with the new keys takes the CHILD_SAs over at once — unless our own
   * rekey is in flight: a collision, settled when ours is answered.
   */
  peerRekeyed(ctx: IkeSaContext, nonces: Buffer[]): void {
    const next = this.host.spawn(ctx);
    if (this.inFlight) {
      this.collision = { sa: next, nonces };
      this.ctx.log.log(
        'info',
        `${this.ctx.name}: IKE_SA rekey collision: the peer rekeys the IKE_SA too (${next.ctx.name}); settled by the nonces when our exchange completes (§2.8.1)`,
      );
      return;
    }
    this.adopt(next);
  }

  /** The peer deletes this IKE SA: a collision still open ends with the peer's new IKE SA (it deleted the old one as the winner does). */
  peerDeletes(): void {
    const collision = this.collision;
    if (!collision) return;
    this.collision = undefined;
    this.ctx.log.log(
      'info',
      `${this.ctx.name}: IKE_SA rekey collision: the peer deleted the IKE_SA before our exchange completed; ${collision.sa.ctx.name} takes over`,
    );
    this.adopt(collision.sa);
  }

  /** Hand the CHILD_SAs (and superseded pairs awaiting their Delete) to the IKE SA that replaces this one. */
  private adopt(next: S): S {
    const { ctx } = this;
    this.successor = next;
    next.ctx.children.push(...ctx.children.splice(0));
    // one table moves; rekey timers restart there, rekeys that were due are asked again
    const wanted = this.host.childRekeys.handOver(next.childRekeys);
    ctx.log.log('info', `${ctx.name}: IKE_SA rekeyed: ${next.ctx.name} carries its ${next.ctx.children.length} CHILD_SA(s) now`);
    next.establish(ctx);
    this.host.ikeRekeyed(next);
    for (const [c, why] of wanted) if (next.ctx.children.includes(c)) next.rekeyChild(c, `${why}, moved to the new IKE_SA`);
    return next;
  }
}
