/**
 * The tasks of the initial exchanges (RFC 7296 §1.2), IKE_SA_INIT then
 * IKE_AUTH, in both roles: key exchange and nonces, NAT detection,
 * certificate requests, authentication and the first CHILD_SA. The original
 * initiator creates the first configured child; the responder the one the
 * initiator's request asks for.
 */
import type { IkeSaContext } from '../sa/context.js';
import type { Task } from './task.js';
import { IkeInitTask } from './ike-init.js';
import { IkeNatdTask } from './ike-natd.js';
import { IkeCertPreTask } from './ike-cert-pre.js';
import { IkeAuthTask } from './ike-auth.js';
import { ChildCreateTask } from './child-create.js';

export function initialExchangeTasks(ctx: IkeSaContext): Task[] {
  return [
    new IkeInitTask(ctx),
    new IkeNatdTask(ctx),
    new IkeCertPreTask(ctx),
    new IkeAuthTask(ctx),
    ...(ctx.originalInitiator ? ctx.config.children.slice(0, 1) : [undefined]).map((c) => new ChildCreateTask(ctx, c)),
  ];
}
