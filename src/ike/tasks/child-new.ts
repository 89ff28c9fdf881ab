/**
 * Additional CHILD_SAs on an established IKE SA, initiator (RFC 7296 §1.3.1;
 * strongSwan's child_create.c outside IKE_AUTH): further `start` children
 * after the one of IKE_AUTH, a child whose traffic hit its trap, close_action
 * `start`, reauthentication. While the exchange is queued or sent the child is
 * `installing` (../sa/child-state.ts); once installed it is an ordinary pair
 * with its rekey timer (./child-rekey.ts). The responder side is
 * respondCreateChildSa (./create-child-sa.ts).
 */
import type { ChildSaRecord } from '../sa/context.js';
import type { ChildPeerConfig } from '../sa/peer-config.js';
import type { ChildRekeys } from './child-rekey.js';
import { NewChildRequest } from './create-child-sa.js';
import type { CreateChildSaRequest } from './create-child-sa-exchange.js';
import type { RequestResult } from './create-child-sa.js';
import type { ExchangeHost } from './task.js';

export interface NewChildHost extends ExchangeHost {
  /** The IKE SA is being rekeyed (§2.25: no new CHILD_SA meanwhile). */
  readonly ikeRekeying: boolean;
  /** A rekeyed successor carries the CHILD_SAs now. */
  readonly replaced: boolean;
  readonly childRekeys: ChildRekeys;
  later(ms: number, fn: () => void): void;
  /** One CREATE_CHILD_SA exchange of ours (INVALID_KE_PAYLOAD retried inside). */
  createChildSaExchange<T>(
    req: CreateChildSaRequest<T>,
    buildFailed: (err: Error) => void,
    answered: (r: Exclude<RequestResult<T>, { status: 'retry' }>) => void,
  ): void;
  /** The IKE SA's createChild (a retry goes through it again, and to a successor if there is one by then). */
  createChild(config: ChildPeerConfig, why: string): void;
  childEstablished(child: ChildSaRecord): void;
  childFailed(name: string, reason: string): void;
}

/**
 * Create a CHILD_SA of `config` (CREATE_CHILD_SA, §1.3.1); a no-op while one
 * for the child is being created or the child is there. TEMPORARY_FAILURE is
 * retried after `retryDelay()`.
 */
export function createChild(host: NewChildHost, config: ChildPeerConfig, why: string, retryDelay: () => number): void {
  const { ctx } = host;
  const states = host.childRekeys.states;
  if (ctx.state !== 'established' || states.installing(config.name)) return;
  if (ctx.children.some((c) => c.name === config.name)) return;
  states.startInstalling(config.name, why);
  ctx.log.log('info', `${ctx.name}: creating CHILD_SA ${config.name} (${why})`);
  const req = new NewChildRequest(ctx, config);
  const abandon = (): void => {
    states.endInstalling(config.name);
    req.abandon();
  };
  const send = (): void => {
    if (ctx.state !== 'established' || host.replaced || host.ikeRekeying) {
      // §2.25: not during an IKE rekey; the caller's trigger (traffic, a timer) asks again
      abandon();
      return host.sendNextRequest();
    }
    const buildFailed = (err: Error): void => {
      abandon();
      ctx.log.log('warn', `${ctx.name}: cannot create CHILD_SA ${config.name}: ${err.message}`);
    };
    host.createChildSaExchange(req, buildFailed, (r) => {
      if (r.status === 'ok') {
        states.endInstalling(config.name);
        ctx.children.push(r.value);
        host.childRekeys.scheduleChildRekey(r.value);
        host.childEstablished(r.value);
        return;
      }
      abandon();
      if (r.status === 'temporary') {
        const ms = retryDelay();
        ctx.log.log('info', `${ctx.name}: CHILD_SA ${config.name}: peer answered TEMPORARY_FAILURE, retrying in ${ms} ms`);
        host.later(ms, () => host.createChild(config, 'retry after TEMPORARY_FAILURE'));
        return;
      }
      const reason = r.status === 'failed' ? r.reason : r.status;
      ctx.log.log('warn', `${ctx.name}: CHILD_SA ${config.name} failed: ${reason}; the IKE_SA stays up`);
      host.childFailed(config.name, reason);
    });
  };
  host.enqueue(send);
}
