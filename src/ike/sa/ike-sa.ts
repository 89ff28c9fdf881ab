/**
 * One IKE SA (RFC 7296 §1): its context (identity, keys: ./context.ts), its
 * task queue and the exchange engine that builds requests from the tasks and
 * hands the peer's requests to them. Message IDs, retransmission and the
 * response cache are ./windows.ts's, SK/SKF ./protection.ts's, the
 * per-concern work the tasks' (../tasks/).
 */
import { ExchangeType, IkeIntegrityError, IkeParseError, NotifyType, type IkeMessage } from '../codec/index.js';
import { notify } from '../codec/build.js';
import type { Endpoint } from '../net/udp.js';
import type { IkeSaIo } from './io.js';
import { ExchangeFailure, processResponse, respondOrFail, type Task, type TaskMessage } from '../tasks/task.js';
import { initialExchangeTasks } from '../tasks/initial-exchanges.js';
import { PrepareGate, prepareTasks } from '../tasks/prepare.js';
import { floatToNattPort } from '../tasks/ike-natd.js';
import { authFailedNotice } from '../tasks/ike-auth.js';
import type { CreateChildOutcome } from '../tasks/create-child-sa.js';
import {
  createChildSaAnswered,
  respondCreateChildSaExchange,
  runCreateChildSa,
  type CreateChildSaHost,
  type CreateChildSaRequest,
  type CreateChildSaResponder,
} from '../tasks/create-child-sa-exchange.js';
import type { RequestResult } from '../tasks/create-child-sa.js';
import type { ChildPeerConfig } from './peer-config.js';
import type { ExpireEvent } from '../../esp/api.js';
import type { RetransmitSettings } from '../exchange/index.js';
import { ExchangeWindows, type PendingRequest } from './windows.js';
import { IkeSaContext, compactChildRecord, type ChildSaRecord, type IkeSaEndCause } from './context.js';
import { ChildRekeys, retryDelay, type ChildRekeyHost } from '../tasks/child-rekey.js';
import { Dpd, type DpdHost } from '../tasks/dpd.js';
import { respondInformational } from '../tasks/delete.js';
import { IkeRekey, type IkeRekeyHost } from '../tasks/ike-rekey.js';
import { IkeDelete, type IkeDeleteHost } from '../tasks/ike-delete.js';
import { createChild, type NewChildHost } from '../tasks/child-new.js';
import { IkeSaTimers } from './timers.js';
import { MessageProtection } from './protection.js';
import { SaEventEmitter, type SaEvents } from './events.js';

export type { IkeSaIo } from './io.js';

export type { IkeSaEndCause } from './context.js';

/** What an IKE SA reports (./events.ts). */
export type IkeSaEvents = SaEvents<IkeSa>;

export { OLD_INBOUND_GRACE_MS, RESPONDER_OUTBOUND_SWITCH_MS } from '../tasks/child-rekey.js';

/** What the tasks that start or answer exchanges once established use of their IKE SA. */
type TasksHost = ChildRekeyHost & DpdHost & IkeRekeyHost<IkeSa> & NewChildHost & CreateChildSaHost & CreateChildSaResponder & IkeDeleteHost;

export class IkeSa {
  /** Our requests and the peer's, with retransmission and the response cache (./windows.ts). */
  private readonly windows: ExchangeWindows;
  /** IKE lifetimes, keepalives, one-shot retries (./timers.ts). */
  private readonly timers: IkeSaTimers;
  /** This IKE SA as its tasks see it. */
  private readonly tasks: TasksHost;
  /** Liveness checks (../tasks/dpd.ts). */
  private readonly dpd: Dpd;
  /** Our IKE SA rekey (../tasks/ike-rekey.ts). */
  private readonly ikeRekey: IkeRekey<IkeSa>;
  /** Our Delete of this IKE SA (../tasks/ike-delete.ts). */
  private readonly ikeDelete: IkeDelete;
  /** Initiator tasks still to run, across exchanges (IKE_SA_INIT → IKE_AUTH). */
  private initiatorTasks: Task[] = [];
  /** Responder tasks of the IKE_SA_INIT/IKE_AUTH pair. */
  private responderTasks: Task[] = [];
  private readonly events: SaEventEmitter<IkeSa>;
  /** Set by the manager while a new IKE SA is being set up to replace this one (make-before-break) and until this one is gone. */
  reauthenticating = false;
  /** Set by the manager: registers the IKE SA that replaces this one after a rekey (§2.18). Without it IKE rekeys are refused. */
  spawn?: (ctx: IkeSaContext) => IkeSa;
  /** CHILD_SA rekeys in both roles, §2.8.1 collisions, old pairs' deletion; each pair's state (../tasks/child-rekey.ts). */
  readonly childRekeys: ChildRekeys;
  /** CHILD_SA requests of ours sent and not answered: their reserved SPIs are released if the IKE SA ends first. */
  private readonly unanswered = new Set<{ abandon(): void }>();
  /** SK encryption, fragmentation and reassembly of this IKE SA's messages (./protection.ts). */
  private readonly protection: MessageProtection;
  /** The configured children whose CHILD_SAs it carried when it was destroyed (dpd_action / close_action apply to these). */
  childNamesAtEnd: string[] = [];
  /** Holds this IKE SA while its tasks' public-key work runs off the main thread (../tasks/prepare.ts). */
  private readonly gate = new PrepareGate(
    () => this.ctx.state !== 'destroyed',
    (err) => this.failAfterPrepare(err),
    () => this.sendNextRequest(),
  );

  constructor(
    readonly ctx: IkeSaContext,
    private readonly io: IkeSaIo,
    retransmit: Partial<RetransmitSettings> = {},
    /** Made by an IKE SA rekey: established from the start, no IKE_SA_INIT/IKE_AUTH tasks. */
    rekeyed = false,
  ) {
    // an IKE SA made by a rekey has its keys and peer from the old one: no initial exchanges
    if (rekeyed) {
      /* no initial exchanges */
    } else if (ctx.originalInitiator) this.initiatorTasks = initialExchangeTasks(ctx);
    else this.responderTasks = initialExchangeTasks(ctx);
    this.events = new SaEventEmitter<IkeSa>(ctx.log, (sa) => sa.ctx.name);
    this.protection = new MessageProtection(ctx, io.nattPort, () => this.dpd.heard());
    // §2.4: an established peer that stops answering is dead; one that never got there failed
    this.windows = new ExchangeWindows(ctx, io, this.protection, retransmit, (reason) =>
      this.destroy(reason, ctx.state === 'established' ? 'dead-peer' : ctx.state === 'deleting' ? this.ikeDelete.cause : 'failed'),
    );
    const host = new IkeSaTasksHost(this);
    this.tasks = host;
    this.childRekeys = new ChildRekeys(host);
    this.dpd = new Dpd(host);
    this.ikeRekey = new IkeRekey(host, retryDelay);
    this.ikeDelete = new IkeDelete(host);
    this.timers = new IkeSaTimers({
      get established() {
        return ctx.state === 'established';
      },
      ikeRekeyDue: () => this.rekeyIke('rekey_time'),
      reauthDue: () => this.reauthenticate('reauth_time'),
      hardEnd: (reason) => this.delete(reason, 'expired'),
    });
    ctx.observer = {
      childEstablished: (child) => {
        compactChildRecord(child);
        this.events.emit('childEstablished', this, child);
      },
      childFailed: (name, reason) => this.events.emit('childFailed', this, name, reason),
    };
  }

  on<K extends keyof IkeSaEvents>(event: K, handler: IkeSaEvents[K]): this {
    this.events.on(event, handler);
    return this;
  }

  /** Every event of this IKE SA is emitted by `target` too (the manager's emitter). */
  forwardEvents(target: SaEventEmitter<IkeSa>): void {
    this.events.forwardTo(target);
  }

  get state(): IkeSaContext['state'] {
    return this.ctx.state;
  }

  /** The message ID the peer's next request must carry (RFC 7296 §2.3). */
  get expectedPeerMessageId(): number {
    return this.windows.expectedPeerId;
  }

  /** Start IKE_SA_INIT (original initiator). */
  initiate(): void {
    this.ctx.state = 'connecting';
    this.ctx.log.log('info', `${this.ctx.config.name}: initiating IKE_SA to ${this.ctx.remote.address}`);
    this.sendNextRequest();
  }

  private sendNextRequest(): void {
    if (this.windows.pending || this.gate.busy) return;
    if (this.ikeDelete.sendQueued()) return;
    if (this.initiatorTasks.length === 0) {
      if (this.ctx.state === 'established') this.windows.runQueued();
      return;
    }
    const exchangeType = this.ctx.keys ? ExchangeType.IKE_AUTH : ExchangeType.IKE_SA_INIT;
    const preparing = prepareTasks(this.initiatorTasks, (t) => t.prepareRequest?.(exchangeType));
    if (preparing) return this.gate.wait(preparing, () => this.sendNextRequest());
    const msg: TaskMessage = { exchangeType, messageId: this.windows.nextId, payloads: [] };
    try {
      for (const t of this.initiatorTasks) t.buildRequest(msg);
    } catch (err) {
      return this.fail(err);
    }
    this.sendRequest(msg, this.initiatorTasks);
  }

  private sendRequest(msg: TaskMessage, tasks: Task[], onResponse?: (msg: TaskMessage) => void): void {
    try {
      this.windows.send(msg, tasks, onResponse);
    } catch (err) {
      return this.fail(err);
    }
  }

  /** A datagram for this IKE SA (the manager matched the SPIs). */
  receive(datagram: Buffer, message: IkeMessage, local: Endpoint, remote: Endpoint): void {
    if (this.ctx.state === 'destroyed') return;
    if (this.gate.hold(() => this.receive(datagram, message, local, remote))) return;
    try {
      if (message.header.response) this.receiveResponse(datagram, message, remote);
      else this.receiveRequest(datagram, message, local, remote);
    } catch (err) {
      if (err instanceof IkeIntegrityError) {
        this.protection.dropLog(`message ${message.header.messageId} failed integrity check, dropped`);
        return;
      }
      if (err instanceof IkeParseError) {
        this.protection.dropLog(`malformed message ${message.header.messageId} dropped: ${err.message}`);
        return;
      }
      throw err;
    }
  }

  private receiveResponse(datagram: Buffer, message: IkeMessage, remote: Endpoint): void {
    const answered = this.windows.takeResponse(datagram, message);
    if (!answered) return;
    const { request: p, payloads } = answered;
    const msg: TaskMessage = { exchangeType: p.exchangeType, messageId: p.messageId, payloads };
    if (p.onResponse) {
      p.onResponse(msg);
      if (this.ctx.state !== 'destroyed') this.sendNextRequest();
      return;
    }
    if (p.exchangeType === ExchangeType.IKE_SA_INIT) this.ctx.initResponse = Buffer.from(datagram);
    const preparing = prepareTasks(p.tasks, (t) => t.prepareResponse?.(msg));
    if (preparing) return this.gate.wait(preparing, () => this.processInitialResponse(p, msg, remote));
    this.processInitialResponse(p, msg, remote);
  }

  /** The response to our IKE_SA_INIT / IKE_AUTH request, to the initiator tasks. */
  private processInitialResponse(p: PendingRequest, msg: TaskMessage, remote: Endpoint): void {
    let remaining: Task[];
    try {
      let retry: boolean;
      ({ remaining, retry } = processResponse(p.tasks, msg));
      if (retry) {
        // COOKIE / INVALID_KE_PAYLOAD: the same IKE_SA_INIT again, message ID 0, responder SPI still zero.
        this.windows.restart();
        this.ctx.spiR = Buffer.alloc(8);
        this.initiatorTasks = p.tasks;
        this.sendNextRequest();
        return;
      }
    } catch (err) {
      const notice = p.exchangeType === ExchangeType.IKE_AUTH && this.ctx.keys ? authFailedNotice(err, this.windows.nextId) : undefined;
      if (notice) this.windows.sendOnce(notice); // §2.21.2: fire and forget, then the SA goes
      return this.fail(err);
    }
    if (p.exchangeType === ExchangeType.IKE_SA_INIT) floatToNattPort(this.ctx, remote, this.io.nattPort);
    this.initiatorTasks = remaining;
    if (p.exchangeType === ExchangeType.IKE_AUTH) this.establish();
    this.sendNextRequest();
  }

  /** IKE_AUTH completed, or (`rekeyOf`) made by a rekey of that IKE SA (../tasks/ike-rekey.ts), carrying its CHILD_SAs. */
  establish(rekeyOf?: IkeSaContext): void {
    this.ctx.state = 'established';
    this.ctx.establishedAt = Date.now();
    this.ctx.releaseInitialExchange();
    this.protection.clear(); // IKE_AUTH's fragments (RFC 7383) are in; the next fragmented message makes a new reassembler
    if (rekeyOf) this.ctx.peerId ??= rekeyOf.peerId;
    // RFC 3948 §2.3: behind a NAT, a one-octet 0xFF datagram from the NAT-T port keeps its mapping (default every 20 s, even with other traffic).
    if (this.ctx.natLocal && this.io.sendKeepalive)
      this.timers.startKeepalives(
        this.io.keepaliveMs ?? 20_000,
        () => this.ctx.state === 'established' && this.io.sendKeepalive?.(this.ctx.local, this.ctx.remote),
      );
    const { local, remote, config, peerId } = this.ctx;
    this.ctx.log.log(
      'info',
      `${this.ctx.name}: IKE_SA established ${rekeyOf ? `by rekeying ${rekeyOf.name}` : `between ${local.address}[${config.localId.value}]...${remote.address}[${peerId?.value ?? '?'}]`}`,
    );
    this.events.emit('established', this);
    for (const child of this.ctx.pendingChildEvents.splice(0)) {
      compactChildRecord(child);
      this.events.emit('childEstablished', this, child);
    }
    // CHILD rekey timers; IKE rekey (rekey_time − random rand_time), reauthentication (reauth_time − random rand_time) and hard end (the first + over_time)
    for (const c of this.ctx.children) this.childRekeys.scheduleChildRekey(c);
    this.timers.startLifetimes(this.ctx.config.ikeLifetimes);
    this.dpd.start();
  }

  private receiveRequest(datagram: Buffer, message: IkeMessage, local: Endpoint, remote: Endpoint): void {
    const id = message.header.messageId;
    const payloads = this.windows.openRequest(datagram, message, local, remote);
    if (!payloads) return;
    // The peer's requests come from where it is now (NAT-T float, §2.23).
    this.ctx.local = local;
    this.ctx.remote = remote;
    const exchangeType = message.header.exchangeType;
    if (exchangeType === ExchangeType.IKE_SA_INIT) this.ctx.initRequest = Buffer.from(datagram);
    const msg: TaskMessage = { exchangeType, messageId: id, payloads };
    const response: TaskMessage = { exchangeType, messageId: id, payloads: [] };
    if (exchangeType === ExchangeType.IKE_SA_INIT || exchangeType === ExchangeType.IKE_AUTH) {
      // a second IKE_AUTH on an established SA (only a holder of its keys can send one) is not a new authentication
      if ((exchangeType === ExchangeType.IKE_SA_INIT) !== !this.ctx.keys || this.ctx.originalInitiator || this.ctx.state === 'established') {
        this.protection.dropLog(`unexpected ${ExchangeType[exchangeType]} request ${id} dropped`);
        return;
      }
      const preparing = prepareTasks(this.responderTasks, (t) => t.prepareRespond?.(msg));
      if (preparing) return this.gate.wait(preparing, () => this.answerInitialRequest(msg, response, local, remote));
      return this.answerInitialRequest(msg, response, local, remote);
    }
    let fatal: { reason: string; cause: IkeSaEndCause } | undefined;
    let outcome: CreateChildOutcome | undefined;
    if (exchangeType === ExchangeType.INFORMATIONAL) {
      const peerDeletesIkeSa = (): { successorName: string | undefined; redundant: boolean } => {
        this.ikeRekey.peerDeletes();
        return { successorName: this.successor?.ctx.name, redundant: this.ikeDelete.redundant };
      };
      fatal = respondInformational({ ctx: this.ctx, peerDeletesIkeSa, peerDeletedChildren: (spis) => this.childRekeys.peerDeleted(spis) }, msg, response);
    } else if (exchangeType === ExchangeType.CREATE_CHILD_SA) {
      outcome = respondCreateChildSaExchange(this.tasks, msg, response);
    } else {
      response.payloads.push(notify(NotifyType.NO_ADDITIONAL_SAS));
    }
    this.windows.respond(response, local, remote);
    if (fatal !== undefined) return this.destroy(fatal.reason, fatal.cause);
    if (outcome) createChildSaAnswered(this.tasks, outcome);
  }

  /** The peer's IKE_SA_INIT / IKE_AUTH request, to the responder tasks; the response sent (§1.2). */
  private answerInitialRequest(msg: TaskMessage, response: TaskMessage, local: Endpoint, remote: Endpoint): void {
    const { remaining, failure } = respondOrFail(this.responderTasks, msg, response);
    if (failure) this.ctx.log.log('warn', `${this.ctx.name}: ${failure.message}`);
    else {
      this.responderTasks = remaining;
      if (msg.exchangeType === ExchangeType.IKE_SA_INIT) this.ctx.state = 'connecting';
    }
    this.windows.respond(response, local, remote);
    if (failure) return this.destroy(failure.message, 'failed');
    if (msg.exchangeType === ExchangeType.IKE_AUTH) this.establish();
  }

  /** Delete the IKE SA (INFORMATIONAL with Delete, §1.4.1), then destroy it when answered or after retransmits. */
  delete(reason = 'deleted by request', cause: IkeSaEndCause = 'local'): void {
    if (this.ctx.state === 'destroyed') return;
    if (!this.ctx.keys || this.ctx.state !== 'established') return this.destroy(reason, cause);
    this.initiatorTasks = [];
    this.windows.dropQueued();
    this.stopTimers();
    this.ikeDelete.start(reason, cause);
  }

  /** Public-key work of a task failed outside its ExchangeFailures (a bug): the IKE SA ends, the daemon goes on. */
  private failAfterPrepare(err: unknown): void {
    if (err instanceof ExchangeFailure) return this.fail(err);
    this.ctx.log.log('error', `${this.ctx.name}: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    this.destroy('internal error', 'failed');
  }

  private fail(err: unknown): void {
    if (err instanceof ExchangeFailure) {
      this.ctx.log.log('warn', `${this.ctx.name}: ${err.message}`);
      return this.destroy(err.message, 'failed');
    }
    throw err;
  }

  /** Tear down: stop timers, remove CHILD SAs from the datapath, wipe keys. */
  destroy(reason: string, cause: IkeSaEndCause = 'local'): void {
    if (this.ctx.state === 'destroyed') return;
    this.windows.clear();
    this.timers.stopKeepalives();
    this.stopTimers();
    this.childRekeys.teardown();
    for (const req of this.unanswered) req.abandon();
    this.unanswered.clear();
    this.protection.clear();
    this.childNamesAtEnd = [...new Set(this.ctx.children.map((c) => c.name))];
    for (const child of this.ctx.children.splice(0)) this.childRekeys.removeChild(child);
    this.ctx.keys?.destroy();
    this.ctx.state = 'destroyed';
    this.ctx.log.log('info', `${this.ctx.name}: IKE_SA destroyed: ${reason}`);
    this.events.emit('destroyed', this, reason, cause);
  }

  // ---------------------------------------------------------------------
  // SA lifecycle (RFC 7296 §1.3, §2.8, §2.18): new CHILD_SAs, IKE rekey, soft
  // expiries from the SAD. CHILD rekeys: ../tasks/child-rekey.ts; DPD:
  // ../tasks/dpd.ts; lifetimes, keepalives and retries: ./timers.ts.

  private enqueue(job: () => void, first = false): void {
    this.windows.queue(job, first);
    this.sendNextRequest();
  }

  private stopTimers(): void {
    this.childRekeys.states.stopTimers();
    this.timers.stop();
  }

  /**
   * Reauthentication succeeded (a new IKE SA carries the CHILD_SAs now): no more
   * rekeys or liveness checks here; the manager deletes this SA after a grace
   * period for packets in flight on its CHILD_SAs.
   */
  retire(): void {
    this.stopTimers();
    this.windows.dropQueued();
  }

  /** Ask for reauthentication: a new IKE SA with a fresh IKE_AUTH replaces this one, make-before-break (the manager makes it). */
  reauthenticate(why: string): void {
    if (this.ctx.state !== 'established') return;
    this.ctx.log.log('info', `${this.ctx.name}: reauthenticating the IKE_SA (${why}): a new IKE_SA replaces it, make-before-break`);
    this.events.emit('reauthDue', this);
  }

  /** The SAD raised an expiry for one of our SAs: a soft one starts the CHILD_SA's rekey. */
  softExpired(e: ExpireEvent): void {
    this.childRekeys.softExpired(e);
  }

  /**
   * Create a CHILD_SA of a configured child on this established IKE SA
   * (CREATE_CHILD_SA, §1.3.1): further `start` children after the one of
   * IKE_AUTH, a child whose traffic hit its trap, close_action `start`. A no-op
   * while one for the child is under way or the child is there.
   */
  createChild(config: ChildPeerConfig, why: string): void {
    if (this.successor) return this.successor.createChild(config, why);
    createChild(this.tasks, config, why, retryDelay);
  }

  /** Initiate the rekey of a CHILD_SA (§1.3.3); a no-op when one is already under way. */
  rekeyChild(child: ChildSaRecord, why: string): void {
    if (this.successor) return this.successor.rekeyChild(child, why);
    this.childRekeys.rekeyChild(child, why);
  }

  /**
   * Delete one CHILD_SA while the IKE SA stays (INFORMATIONAL Delete, §1.4.1);
   * resolves when the peer answered (`childDeleted` is emitted then), or with
   * the reason it was not deleted. Never resolves if the IKE SA ends first
   * (callers bound the wait).
   */
  deleteChild(child: ChildSaRecord, why: string): Promise<{ ok: true } | { ok: false; reason: string }> {
    if (this.successor) return this.successor.deleteChild(child, why);
    return this.childRekeys.deleteChild(child, why);
  }

  /** Initiate the rekey of this IKE SA (§1.3.2); the CHILD_SAs move to the new one. */
  rekeyIke(why = 'requested'): void {
    this.ikeRekey.initiate(why);
  }

  /** Received messages dropped as malformed, unauthenticated or rejected fragments. */
  get droppedMessages(): number {
    return this.protection.dropped;
  }

  /** Liveness checks (empty INFORMATIONAL requests, §2.4) sent by this IKE SA. */
  get dpdChecks(): number {
    return this.dpd.checks;
  }

  /** When the IKE rekey, reauthentication and hard end of this IKE SA are due (ms since the epoch); empty once stopped. */
  get lifetimeDeadlines(): { readonly rekeyAt?: number; readonly reauthAt?: number; readonly endAt?: number } {
    return this.timers.deadlines;
  }

  /** The IKE SA that replaced this one by a rekey, if any. */
  get successor(): IkeSa | undefined {
    return this.ikeRekey.successor;
  }

  /** §2.8.1: the redundant IKE SA of a rekey collision we initiated: we delete it (../tasks/ike-delete.ts). */
  deleteRedundant(reason: string): void {
    this.ikeDelete.deleteRedundant(reason);
  }

  /** §2.8.1: the redundant IKE SA of a rekey collision the peer initiated: the peer deletes it, we do after `ms`. */
  awaitRedundantDelete(ms: number): void {
    this.ikeDelete.awaitRedundantDelete(ms);
  }
}

/**
 * What the tasks that start or answer exchanges once established
 * (../tasks/child-rekey.ts, child-new.ts, ike-rekey.ts, dpd.ts, …) use of
 * their IKE SA: one object per IKE SA with its methods on the prototype (an
 * object literal of arrow functions and getters cost ~3.5 KiB per IKE SA,
 * docs/notes/memory.md). It reaches the IKE SA's private parts by element
 * access, the way TypeScript allows it, so that they stay private to others.
 */
class IkeSaTasksHost implements TasksHost {
  constructor(private readonly sa: IkeSa) {}

  get ctx(): IkeSaContext {
    return this.sa.ctx;
  }
  get ikeRekey(): IkeRekey<IkeSa> {
    return this.sa['ikeRekey'];
  }
  get ikeRekeying(): boolean {
    return this.sa['ikeRekey'].rekeying;
  }
  get replaced(): boolean {
    return this.sa.successor !== undefined;
  }
  get nextMessageId(): number {
    return this.sa['windows'].nextId;
  }
  get unanswered(): Set<{ abandon(): void }> {
    return this.sa['unanswered'];
  }
  get childRekeys(): ChildRekeys {
    return this.sa.childRekeys;
  }
  get idle(): boolean {
    return this.sa['windows'].idle;
  }
  get canSpawn(): boolean {
    return this.sa.spawn !== undefined;
  }
  get reauthenticating(): boolean {
    return this.sa.reauthenticating;
  }
  get requestOutstanding(): boolean {
    return this.sa['windows'].pending !== undefined;
  }
  enqueue(job: () => void, first?: boolean): void {
    this.sa['enqueue'](job, first);
  }
  retryFirst(job: () => void): void {
    this.sa['windows'].queue(job, true);
  }
  sendNextRequest(): void {
    this.sa['sendNextRequest']();
  }
  request(msg: TaskMessage, onResponse: (msg: TaskMessage) => void): void {
    this.sa['sendRequest'](msg, [], onResponse);
  }
  rekeyChild(child: ChildSaRecord, why: string): void {
    this.sa.rekeyChild(child, why);
  }
  createChild(config: ChildPeerConfig, why: string): void {
    this.sa.createChild(config, why);
  }
  childEstablished(child: ChildSaRecord): void {
    compactChildRecord(child);
    this.sa['events'].emit('childEstablished', this.sa, child);
  }
  childRekeyed(old: ChildSaRecord, fresh: ChildSaRecord): void {
    compactChildRecord(fresh);
    this.sa['events'].emit('childRekeyed', this.sa, old, fresh);
  }
  childFailed(name: string, reason: string): void {
    this.sa['events'].emit('childFailed', this.sa, name, reason);
  }
  childClosed(child: ChildSaRecord): void {
    this.sa['events'].emit('childClosed', this.sa, child);
  }
  childDeleted(child: ChildSaRecord): void {
    this.sa['events'].emit('childDeleted', this.sa, child);
  }
  later(ms: number, fn: () => void): void {
    this.sa['timers'].later(ms, fn);
  }
  livenessCheck(): void {
    this.sa['events'].emit('livenessCheck', this.sa);
  }
  createChildSaExchange<T>(
    req: CreateChildSaRequest<T>,
    buildFailed: (err: Error) => void,
    answered: (r: Exclude<RequestResult<T>, { status: 'retry' }>) => void,
  ): void {
    runCreateChildSa(this, req, buildFailed, answered);
  }
  spawn(ctx: IkeSaContext): IkeSa {
    return this.sa.spawn!(ctx);
  }
  ikeRekeyed(next: IkeSa): void {
    this.sa['events'].emit('ikeRekeyed', this.sa, next);
  }
  delete(reason?: string, cause?: IkeSaEndCause): void {
    this.sa.delete(reason, cause);
  }
  destroy(reason: string, cause?: IkeSaEndCause): void {
    this.sa.destroy(reason, cause);
  }
  whateverState(ms: number, fn: () => void): void {
    this.sa['timers'].whateverState(ms, fn);
  }
  rekeyIke(why?: string): void {
    this.sa.rekeyIke(why);
  }
}
