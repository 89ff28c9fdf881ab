/**
 * Tasks, in the shape of strongSwan's libcharon: an exchange is a composition
 * of tasks, each handling one concern (IKE_SA_INIT crypto, NAT detection,
 * certificate requests, authentication, CHILD_SA creation) and contributing
 * payloads to / consuming payloads from the messages of that exchange, in
 * both roles. A task runs for one or more exchanges: it answers `need_more`
 * until its part is complete.
 */
import type { Payload, PayloadOf } from '../codec/index.js';
import { NotifyType, PayloadType, notifyTypeName } from '../codec/index.js';
import { notify } from '../codec/build.js';
import { listProposals, type Proposal } from '../proposal/index.js';
import type { IkeSaContext } from '../sa/context.js';

/** `done`: the task is complete; `need_more`: it takes part in the next exchange too; `retry`: resend this exchange's request rebuilt (COOKIE, INVALID_KE_PAYLOAD). */
export type TaskStatus = 'done' | 'need_more' | 'retry';

/** A message being built or processed by tasks. */
export interface TaskMessage {
  exchangeType: number;
  messageId: number;
  payloads: Payload[];
}

export interface Task {
  readonly name: string;
  /** Initiator: add payloads to the request. */
  buildRequest(msg: TaskMessage): void;
  /** Initiator: consume the response. */
  processResponse(msg: TaskMessage): TaskStatus;
  /** Responder: consume the request. */
  processRequest(msg: TaskMessage): void;
  /** Responder: add payloads to the response. */
  buildResponse(msg: TaskMessage): TaskStatus;
  /*
   * Public-key work ahead of a step, when it runs off the main thread
   * (../../crypto/pool): a hook returns a promise while the work is under way
   * and the exchange engine holds the IKE SA until it settles (./prepare.ts);
   * undefined when there is nothing (more) to do. Results and errors are kept
   * by the task for the synchronous step, which then reports them as before.
   */
  /** Initiator, before buildRequest of an exchange of `exchangeType`. */
  prepareRequest?(exchangeType: number): Promise<void> | undefined;
  /** Initiator, before processResponse. */
  prepareResponse?(msg: TaskMessage): Promise<void> | undefined;
  /** Responder, before processRequest and buildResponse. */
  prepareRespond?(msg: TaskMessage): Promise<void> | undefined;
}

/**
 * An error that ends an exchange (and, if `fatal`, the IKE SA). `notify` is
 * what the responder sends back (RFC 7296 §2.21); `log` is the one operator
 * line that says what was wrong.
 */
export class ExchangeFailure extends Error {
  override readonly name = 'ExchangeFailure';
  constructor(
    message: string,
    readonly notify: number | undefined,
    readonly fatal: boolean = true,
    readonly notifyData?: Buffer,
  ) {
    super(message);
  }
}

export function payloadsOfType<T extends Payload['type']>(msg: TaskMessage, type: T): PayloadOf<T>[] {
  return msg.payloads.filter((p) => p.type === type) as PayloadOf<T>[];
}

export function firstOfType<T extends Payload['type']>(msg: TaskMessage, type: T): PayloadOf<T> | undefined {
  return msg.payloads.find((p) => p.type === type) as PayloadOf<T> | undefined;
}

/**
 * An initiator's reason when the peer answered an error notify; for
 * NO_PROPOSAL_CHOSEN it names what we offered (the peer's side says what it has).
 */
export function peerRefused(notifyType: number, kind: 'IKE' | 'ESP', offered: readonly Proposal[]): string {
  return `peer answered ${notifyTypeName(notifyType)}${notifyType === NotifyType.NO_PROPOSAL_CHOSEN ? ` to the ${kind} proposals we offered: ${listProposals(offered)}` : ''}`;
}

export function notifiesOf(msg: TaskMessage): PayloadOf<PayloadType.NOTIFY>[] {
  return payloadsOfType(msg, PayloadType.NOTIFY);
}

export function findNotify(msg: TaskMessage, notifyType: number): PayloadOf<PayloadType.NOTIFY> | undefined {
  return notifiesOf(msg).find((n) => n.notifyType === notifyType);
}

/** A base with no-op handlers, so a task implements only the steps it takes part in. */
export abstract class BaseTask implements Task {
  abstract readonly name: string;
  buildRequest(_msg: TaskMessage): void {}
  processResponse(_msg: TaskMessage): TaskStatus {
    return 'done';
  }
  processRequest(_msg: TaskMessage): void {}
  buildResponse(_msg: TaskMessage): TaskStatus {
    return 'done';
  }
}

/** Initiator: each task consumes the response; those not done take part in the next exchange. `retry`: send the request again rebuilt. */
export function processResponse(tasks: readonly Task[], msg: TaskMessage): { remaining: Task[]; retry: boolean } {
  const remaining: Task[] = [];
  let retry = false;
  for (const t of tasks) {
    const status = t.processResponse(msg);
    if (status === 'retry') retry = true;
    if (status !== 'done') remaining.push(t);
  }
  return { remaining, retry };
}

/** Responder: each task consumes the request, then adds its part of the response; returns those not done. */
export function respond(tasks: readonly Task[], msg: TaskMessage, response: TaskMessage): Task[] {
  for (const t of tasks) t.processRequest(msg);
  return tasks.filter((t) => t.buildResponse(response) !== 'done');
}

/**
 * Responder of IKE_SA_INIT / IKE_AUTH: as `respond`, but an ExchangeFailure
 * becomes the response's error notify (§2.21) and is returned: the IKE SA ends
 * once that response is sent.
 */
export function respondOrFail(tasks: Task[], msg: TaskMessage, response: TaskMessage): { remaining: Task[]; failure?: ExchangeFailure } {
  try {
    return { remaining: respond(tasks, msg, response) };
  } catch (err) {
    if (!(err instanceof ExchangeFailure)) throw err;
    response.payloads = err.notify !== undefined ? [notify(err.notify, err.notifyData ? { data: err.notifyData } : {})] : [];
    return { remaining: tasks, failure: err };
  }
}

/**
 * What the tasks that start exchanges of their own once the IKE SA is
 * established (CHILD rekey, DPD) use of it: its window-1 request queue.
 */
export interface ExchangeHost {
  readonly ctx: IkeSaContext;
  /** The message ID the next request of ours gets. */
  readonly nextMessageId: number;
  /** Queue an exchange of ours (`first`: ahead of the others); it runs when no request is outstanding. */
  enqueue(job: () => void, first?: boolean): void;
  /** Nothing queued: let the next exchange go. */
  sendNextRequest(): void;
  /** Send a request of ours (retransmitted until answered); `onResponse` gets the response. */
  request(msg: TaskMessage, onResponse: (response: TaskMessage) => void): void;
}
