/**
 * One IKE SA's exchange engine (RFC 7296 §1, §2.1–§2.3): builds requests
 * from its tasks, encrypts (SK, RFC 5282) and fragments (SKF, RFC 7383) them,
 * retransmits until the matching response arrives, and answers the peer's
 * requests — a retransmitted request gets the cached response, never a second
 * processing. Tasks (../tasks/) do the per-concern work.
 */
import { ExchangeType, IkeIntegrityError, IkeParseError, NotifyType, type IkeMessage } from '../codec/index.js';
import { deletePayload, notify } from '../codec/build.js';
import { ProtocolId } from '../transforms.js';
import type { Endpoint } from '../net/udp.js';
import { ExchangeFailure, processResponse, respond, type Task, type TaskMessage } from '../tasks/task.js';
import { IkeInitTask } from '../tasks/ike-init.js';
import { IkeNatdTask } from '../tasks/ike-natd.js';
import { IkeCertPreTask } from '../tasks/ike-cert-pre.js';
import { IkeAuthTask } from '../tasks/ike-auth.js';
import { ChildCreateTask } from '../tasks/child-create.js';
import type { CreateChildOutcome } from '../tasks/create-child-sa.js';
import {
  createChildSaAnswered,
  respondCreateChildSaExchange,
  runCreateChildSa,
  type CreateChildSaHost,
  type CreateChildSaResponder,
} from '../tasks/create-child-sa-exchange.js';
import type { ChildPeerConfig } from './peer-config.js';
import type { ExpireEvent } from '../../esp/api.js';
import { Retransmitter, RequestWindow, ResponseWindow, type RetransmitSettings } from '../exchange/index.js';
import { IkeSaContext, type ChildSaRecord, type IkeSaEndCause } from './context.js';
import { ChildRekeys, retryDelay, type ChildRekeyHost } from '../tasks/child-rekey.js';
import { Dpd, type DpdHost } from '../tasks/dpd.js';
import { respondInformational } from '../tasks/delete.js';
import { IkeRekey, type IkeRekeyHost } from '../tasks/ike-rekey.js';
import { createChild, type NewChildHost } from '../tasks/child-new.js';
import { IkeSaTimers } from './timers.js';
import { MessageProtection } from './protection.js';
import { SaEventEmitter, type SaEvents } from './events.js';

export interface IkeSaIo {
  /** Send datagrams (one, or the fragments of one message) from `local` to `remote`. */
  send(local: Endpoint, remote: Endpoint, datagrams: Buffer[]): void;
  /** NAT-T port to float to (§2.23); 4500 in production. */
  readonly nattPort: number;
  /** Send a NAT-keepalive (RFC 3948 §2.3) from the NAT-T socket of `local`. */
  sendKeepalive?(local: Endpoint, remote: Endpoint): void;
  /** Milliseconds between keepalives while behind a NAT; 0 = none (default 20 s, charon.keep_alive). */
  readonly keepaliveMs?: number;
}

export type { IkeSaEndCause } from './context.js';

/** What an IKE SA reports (./events.ts). */
export type IkeSaEvents = SaEvents<IkeSa>;

export { OLD_INBOUND_GRACE_MS, RESPONDER_OUTBOUND_SWITCH_MS } from '../tasks/child-rekey.js';

interface PendingRequest {
  messageId: number;
  exchangeType: number;
  datagrams: Buffer[];
  tasks: Task[];
  retransmitter: Retransmitter;
  onResponse?: (msg: TaskMessage) => void;
}

/** What the tasks that start or answer exchanges once established use of their IKE SA. */
type TasksHost = ChildRekeyHost & DpdHost & IkeRekeyHost<IkeSa> & NewChildHost & CreateChildSaHost & CreateChildSaResponder;

export class IkeSa {
  /** Our requests (§2.3; window 1). */
  private requests = new RequestWindow<PendingRequest>();
  /** The peer's requests and our cached responses (§2.1). */
  private readonly responses = new ResponseWindow();
  private pending?: PendingRequest;
  /** IKE lifetimes, keepalives, one-shot retries (./timers.ts). */
  private readonly timers: IkeSaTimers;
  /** This IKE SA as its tasks see it. */
  private readonly tasks: TasksHost;
  /** Liveness checks (../tasks/dpd.ts). */
  private readonly dpd: Dpd;
  /** Our IKE SA rekey (../tasks/ike-rekey.ts). */
  private readonly ikeRekey: IkeRekey<IkeSa>;
  /** A Delete requested while another request was outstanding (sent when it is answered). */
  private queuedDelete?: string;
  /** Initiator tasks still to run, across exchanges (IKE_SA_INIT → IKE_AUTH). */
  private initiatorTasks: Task[] = [];
  /** Responder tasks of the IKE_SA_INIT/IKE_AUTH pair. */
  private responderTasks: Task[] = [];
  private readonly events: SaEventEmitter<IkeSa>;
  /** Set by the manager while a new IKE SA is being set up to replace this one (make-before-break) and until this one is gone. */
  reauthenticating = false;
  /** Set by the manager: registers the IKE SA that replaces this one after a rekey (§2.18). Without it IKE rekeys are refused. */
  spawn?: (ctx: IkeSaContext) => IkeSa;
  /** Exchanges we initiate once the IKE SA is established (CHILD rekeys, Deletes, IKE rekey), one at a time (window 1). */
  private jobs: Array<() => void> = [];
  /** CHILD_SA rekeys in both roles, §2.8.1 collisions, old pairs' deletion; each pair's state (../tasks/child-rekey.ts). */
  readonly childRekeys: ChildRekeys;
  /** CHILD_SA requests of ours sent and not answered: their reserved SPIs are released if the IKE SA ends first. */
  private readonly unanswered = new Set<{ abandon(): void }>();
  /** §2.8.1: made by the losing exchange of an IKE rekey collision; deleted by that exchange's initiator. */
  private redundant = false;
  /** Why a Delete we send ends this SA (the cause reported once it is answered). */
  private deleteCause: IkeSaEndCause = 'local';
  /** SK encryption, fragmentation and reassembly of this IKE SA's messages (./protection.ts). */
  private readonly protection: MessageProtection;
  /** The configured children whose CHILD_SAs it carried when it was destroyed (dpd_action / close_action apply to these). */
  childNamesAtEnd: string[] = [];

  constructor(
    readonly ctx: IkeSaContext,
    private readonly io: IkeSaIo,
    private readonly retransmit: Partial<RetransmitSettings> = {},
    /** Made by an IKE SA rekey: established from the start, no IKE_SA_INIT/IKE_AUTH tasks. */
    rekeyed = false,
  ) {
    const tasks = (): Task[] => [
      new IkeInitTask(ctx),
      new IkeNatdTask(ctx),
      new IkeCertPreTask(ctx),
      new IkeAuthTask(ctx),
      ...(ctx.originalInitiator ? ctx.config.children.slice(0, 1) : [undefined]).map((c) => new ChildCreateTask(ctx, c)),
    ];
    if (rekeyed) {
      /* keys and peer come from the old IKE SA */
    } else if (ctx.originalInitiator) this.initiatorTasks = tasks();
    else this.responderTasks = tasks();
    this.events = new SaEventEmitter<IkeSa>(ctx.log, () => ctx.name);
    this.protection = new MessageProtection(ctx, io.nattPort, () => this.dpd.heard());
    const host = this.host();
    this.tasks = host;
    this.childRekeys = new ChildRekeys(host);
    this.dpd = new Dpd(host);
    this.ikeRekey = new IkeRekey(host, retryDelay);
    this.timers = new IkeSaTimers({
      get established() {
        return ctx.state === 'established';
      },
      ikeRekeyDue: () => this.rekeyIke('rekey_time'),
      reauthDue: () => this.reauthenticate('reauth_time'),
      hardEnd: (reason) => this.delete(reason, 'expired'),
    });
    ctx.observer = {
      childEstablished: (child) => this.emit('childEstablished', this, child),
      childFailed: (name, reason) => this.emit('childFailed', this, name, reason),
    };
  }

  /** What the tasks that start exchanges once established (../tasks/child-rekey.ts, child-new.ts, ike-rekey.ts, dpd.ts) use of this IKE SA. */
  private host(): TasksHost {
    const sa = this;
    const host: TasksHost = {
      ctx: this.ctx,
      get ikeRekey() {
        return sa.ikeRekey;
      },
      get ikeRekeying() {
        return sa.ikeRekey.rekeying;
      },
      get replaced() {
        return sa.successor !== undefined;
      },
      get nextMessageId() {
        return sa.requests.nextId;
      },
      unanswered: this.unanswered,
      enqueue: (job, first) => this.enqueue(job, first),
      retryFirst: (job) => void this.jobs.unshift(job),
      sendNextRequest: () => this.sendNextRequest(),
      request: (msg, onResponse) => this.sendRequest(msg, [], onResponse),
      rekeyChild: (child, why) => this.rekeyChild(child, why),
      createChild: (config, why) => this.createChild(config, why),
      get childRekeys() {
        return sa.childRekeys;
      },
      childEstablished: (child) => this.emit('childEstablished', this, child),
      childRekeyed: (old, fresh) => this.emit('childRekeyed', this, old, fresh),
      childFailed: (name, reason) => this.emit('childFailed', this, name, reason),
      childClosed: (child) => this.emit('childClosed', this, child),
      later: (ms, fn) => void this.timers.later(ms, fn),
      get idle() {
        return !sa.pending && sa.jobs.length === 0;
      },
      livenessCheck: () => this.emit('livenessCheck', this),
      get canSpawn() {
        return sa.spawn !== undefined;
      },
      get reauthenticating() {
        return sa.reauthenticating;
      },
      createChildSaExchange: (req, buildFailed, answered) => runCreateChildSa(host, req, buildFailed, answered),
      spawn: (ctx) => this.spawn!(ctx),
      ikeRekeyed: (next) => this.emit('ikeRekeyed', this, next),
      delete: (reason, cause) => this.delete(reason, cause),
      rekeyIke: (why) => this.rekeyIke(why),
    };
    return host;
  }

  on<K extends keyof IkeSaEvents>(event: K, handler: IkeSaEvents[K]): this {
    this.events.on(event, handler);
    return this;
  }

  private emit<K extends keyof IkeSaEvents>(event: K, ...args: Parameters<IkeSaEvents[K]>): void {
    this.events.emit(event, ...args);
  }

  get state(): IkeSaContext['state'] {
    return this.ctx.state;
  }

  /** Start IKE_SA_INIT (original initiator). */
  initiate(): void {
    this.ctx.state = 'connecting';
    this.ctx.log.log('info', `${this.ctx.config.name}: initiating IKE_SA to ${this.ctx.remote.address}`);
    this.sendNextRequest();
  }

  private exchangeForInitiator(): number {
    if (!this.ctx.keys) return ExchangeType.IKE_SA_INIT;
    return ExchangeType.IKE_AUTH;
  }

  private sendNextRequest(): void {
    if (this.pending) return;
    if (this.queuedDelete !== undefined) {
      const reason = this.queuedDelete;
      this.queuedDelete = undefined;
      return this.sendDelete(reason);
    }
    if (this.initiatorTasks.length === 0) {
      if (this.ctx.state === 'established') this.jobs.shift()?.();
      return;
    }
    const exchangeType = this.exchangeForInitiator();
    const msg: TaskMessage = { exchangeType, messageId: this.requests.nextId, payloads: [] };
    try {
      for (const t of this.initiatorTasks) t.buildRequest(msg);
    } catch (err) {
      return this.fail(err);
    }
    this.sendRequest(msg, this.initiatorTasks);
  }

  private sendRequest(msg: TaskMessage, tasks: Task[], onResponse?: (msg: TaskMessage) => void): void {
    let datagrams: Buffer[];
    try {
      datagrams = this.protection.encode(msg, false);
    } catch (err) {
      return this.fail(err);
    }
    if (msg.exchangeType === ExchangeType.IKE_SA_INIT) this.ctx.initRequest = datagrams[0];
    const name = ExchangeType[msg.exchangeType] ?? String(msg.exchangeType);
    const retransmitter = new Retransmitter({
      settings: this.retransmit,
      send: (attempt) => {
        if (attempt > 0) this.ctx.log.log('info', `${this.ctx.name}: retransmit ${attempt} of ${name} request ${msg.messageId}`);
        this.io.send(this.ctx.local, this.ctx.remote, datagrams);
      },
      giveUp: (r) =>
        this.destroy(
          `peer ${this.ctx.remote.address} did not answer ${name} request ${msg.messageId} after ${r.retransmits} retransmits (${(r.elapsedMs / 1000).toFixed(1)} s)`,
          // §2.4: an established peer that stops answering is dead; one that never got there failed
          this.ctx.state === 'established' ? 'dead-peer' : this.ctx.state === 'deleting' ? this.deleteCause : 'failed',
        ),
    });
    const pending: PendingRequest = {
      messageId: msg.messageId,
      exchangeType: msg.exchangeType,
      datagrams,
      tasks,
      retransmitter,
      ...(onResponse ? { onResponse } : {}),
    };
    this.requests.allocate(pending);
    this.pending = pending;
    retransmitter.start();
  }

  /** A datagram for this IKE SA (the manager matched the SPIs). */
  receive(datagram: Buffer, message: IkeMessage, local: Endpoint, remote: Endpoint): void {
    if (this.ctx.state === 'destroyed') return;
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
    const p = this.pending;
    if (!p || message.header.messageId !== p.messageId) return; // §2.3: not the response we wait for
    if (p.exchangeType === ExchangeType.IKE_SA_INIT && this.ctx.spiR.equals(Buffer.alloc(8))) {
      // The responder's SPI arrives with its first response; keys depend on it.
      this.ctx.spiR = Buffer.from(message.header.spiR);
    }
    const payloads = this.protection.open(datagram, message);
    if (!payloads) return;
    p.retransmitter.cancel();
    this.requests.response(p.messageId);
    this.pending = undefined;
    const msg: TaskMessage = { exchangeType: p.exchangeType, messageId: p.messageId, payloads };
    if (p.onResponse) {
      p.onResponse(msg);
      if (this.ctx.state !== 'destroyed') this.sendNextRequest();
      return;
    }
    if (p.exchangeType === ExchangeType.IKE_SA_INIT) this.ctx.initResponse = Buffer.from(datagram);
    let remaining: Task[];
    try {
      let retry: boolean;
      ({ remaining, retry } = processResponse(p.tasks, msg));
      if (retry) {
        // COOKIE / INVALID_KE_PAYLOAD: the same IKE_SA_INIT again, message ID 0, responder SPI still zero.
        this.requests = new RequestWindow<PendingRequest>();
        this.ctx.spiR = Buffer.alloc(8);
        this.initiatorTasks = p.tasks;
        this.sendNextRequest();
        return;
      }
    } catch (err) {
      if (p.exchangeType === ExchangeType.IKE_AUTH && this.ctx.keys) this.notifyAuthFailure(err);
      return this.fail(err);
    }
    if (p.exchangeType === ExchangeType.IKE_SA_INIT) this.floatIfNat(remote);
    this.initiatorTasks = remaining;
    if (p.exchangeType === ExchangeType.IKE_AUTH) this.establish();
    this.sendNextRequest();
  }

  /** §2.23: with a NAT detected, IKE moves to port 4500 from IKE_AUTH on (and ESP is UDP-encapsulated). */
  private floatIfNat(remote: Endpoint): void {
    if (!this.ctx.udpEncapsulation || this.ctx.local.port === this.io.nattPort) return;
    this.ctx.local = { address: this.ctx.local.address, port: this.io.nattPort };
    this.ctx.remote = { address: remote.address, port: this.io.nattPort };
  }

  /** IKE_AUTH completed, or (`rekeyOf`) made by a rekey of that IKE SA (../tasks/ike-rekey.ts), carrying its CHILD_SAs. */
  establish(rekeyOf?: IkeSaContext): void {
    this.ctx.state = 'established';
    this.ctx.establishedAt = Date.now();
    if (rekeyOf) this.ctx.peerId ??= rekeyOf.peerId;
    this.startKeepalives();
    const { local, remote, config, peerId } = this.ctx;
    this.ctx.log.log(
      'info',
      `${this.ctx.name}: IKE_SA established ${rekeyOf ? `by rekeying ${rekeyOf.name}` : `between ${local.address}[${config.localId.value}]...${remote.address}[${peerId?.value ?? '?'}]`}`,
    );
    this.emit('established', this);
    for (const child of this.ctx.pendingChildEvents.splice(0)) this.emit('childEstablished', this, child);
    this.startLifetimes();
    this.dpd.start();
  }

  /**
   * RFC 3948 §2.3: behind a NAT, keep its mapping alive with a one-octet
   * 0xFF datagram from the NAT-T port (strongSwan's default: every 20 s).
   * Simplification: sent on the interval even when other traffic flows.
   */
  private startKeepalives(): void {
    const interval = this.io.keepaliveMs ?? 20_000;
    if (!this.ctx.natLocal || interval <= 0 || !this.io.sendKeepalive) return;
    this.timers.startKeepalives(interval, () => {
      if (this.ctx.state === 'established') this.io.sendKeepalive!(this.ctx.local, this.ctx.remote);
    });
  }

  private receiveRequest(datagram: Buffer, message: IkeMessage, local: Endpoint, remote: Endpoint): void {
    const id = message.header.messageId;
    const cached = this.responses.cachedResponse(id);
    if (cached) {
      // §2.1: a retransmitted request gets the same response, never a second processing
      // (once per retransmitted message: on its last fragment).
      if (MessageProtection.isLastFragmentOrWhole(message)) {
        this.responses.receive(id);
        this.io.send(
          local,
          remote,
          cached.map((c) => Buffer.from(c)),
        );
      }
      return;
    }
    if (id < this.responses.expectedId || id >= this.responses.expectedId + this.responses.windowSize) return; // §2.3
    const payloads = this.protection.open(datagram, message);
    if (!payloads) return;
    if (this.responses.receive(id).action !== 'process') return;
    // The peer's requests come from where it is now (NAT-T float, §2.23).
    this.ctx.local = local;
    this.ctx.remote = remote;
    const exchangeType = message.header.exchangeType;
    if (exchangeType === ExchangeType.IKE_SA_INIT) this.ctx.initRequest = Buffer.from(datagram);
    const msg: TaskMessage = { exchangeType, messageId: id, payloads };
    const response: TaskMessage = { exchangeType, messageId: id, payloads: [] };
    let fatal: { reason: string; cause: IkeSaEndCause } | undefined;
    let outcome: CreateChildOutcome | undefined;
    if (exchangeType === ExchangeType.IKE_SA_INIT || exchangeType === ExchangeType.IKE_AUTH) {
      // a second IKE_AUTH on an established SA (only a holder of its keys can send one) is not a new authentication
      if ((exchangeType === ExchangeType.IKE_SA_INIT) !== !this.ctx.keys || this.ctx.originalInitiator || this.ctx.state === 'established') {
        this.protection.dropLog(`unexpected ${ExchangeType[exchangeType]} request ${id} dropped`);
        return;
      }
      try {
        this.responderTasks = respond(this.responderTasks, msg, response);
        if (exchangeType === ExchangeType.IKE_SA_INIT) this.ctx.state = 'connecting';
      } catch (err) {
        if (!(err instanceof ExchangeFailure)) throw err;
        fatal = { reason: err.message, cause: 'failed' };
        this.ctx.log.log('warn', `${this.ctx.name}: ${err.message}`);
        response.payloads = err.notify !== undefined ? [notify(err.notify, err.notifyData ? { data: err.notifyData } : {})] : [];
      }
    } else if (exchangeType === ExchangeType.INFORMATIONAL) {
      const peerDeletesIkeSa = (): { successorName: string | undefined; redundant: boolean } => {
        this.ikeRekey.peerDeletes();
        return { successorName: this.successor?.ctx.name, redundant: this.redundant };
      };
      fatal = respondInformational({ ctx: this.ctx, peerDeletesIkeSa, peerDeletedChildren: (spis) => this.childRekeys.peerDeleted(spis) }, msg, response);
    } else if (exchangeType === ExchangeType.CREATE_CHILD_SA) {
      outcome = respondCreateChildSaExchange(this.tasks, msg, response);
    } else {
      response.payloads.push(notify(NotifyType.NO_ADDITIONAL_SAS));
    }
    const datagrams = this.protection.encode(response, true);
    if (exchangeType === ExchangeType.IKE_SA_INIT) this.ctx.initResponse = datagrams[0];
    this.responses.respond(id, datagrams);
    this.io.send(local, remote, datagrams);
    if (fatal !== undefined) return this.destroy(fatal.reason, fatal.cause);
    if (exchangeType === ExchangeType.IKE_AUTH) this.establish();
    if (outcome) createChildSaAnswered(this.tasks, outcome);
  }

  /** §2.21.2: tell the responder its AUTH was not accepted (fire and forget, then the SA goes). */
  private notifyAuthFailure(err: unknown): void {
    if (!(err instanceof ExchangeFailure) || err.notify !== NotifyType.AUTHENTICATION_FAILED) return;
    try {
      const msg: TaskMessage = {
        exchangeType: ExchangeType.INFORMATIONAL,
        messageId: this.requests.nextId,
        payloads: [notify(NotifyType.AUTHENTICATION_FAILED)],
      };
      this.io.send(this.ctx.local, this.ctx.remote, this.protection.encode(msg, false));
    } catch {
      /* best effort */
    }
  }

  /** Delete the IKE SA (INFORMATIONAL with Delete, §1.4.1), then destroy it when answered or after retransmits. */
  delete(reason = 'deleted by request', cause: IkeSaEndCause = 'local'): void {
    if (this.ctx.state === 'destroyed') return;
    if (!this.ctx.keys || this.ctx.state !== 'established') return this.destroy(reason, cause);
    this.initiatorTasks = [];
    this.jobs = [];
    this.stopTimers();
    this.startDelete(reason, cause);
  }

  private startDelete(reason: string, cause: IkeSaEndCause): void {
    this.ctx.state = 'deleting';
    this.deleteCause = cause;
    // §2.3: with a request outstanding the Delete waits for its response (window 1);
    // a Delete sent with the next ID would be dropped by a peer that never saw the current one.
    if (this.pending) this.queuedDelete = reason;
    else this.sendDelete(reason);
  }

  private sendDelete(reason: string): void {
    this.sendRequest({ exchangeType: ExchangeType.INFORMATIONAL, messageId: this.requests.nextId, payloads: [deletePayload(ProtocolId.IKE)] }, [], () =>
      this.destroy(reason, this.deleteCause),
    );
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
    this.pending?.retransmitter.cancel();
    this.requests.clear();
    this.pending = undefined;
    this.timers.stopKeepalives();
    this.jobs = [];
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
    this.emit('destroyed', this, reason, cause);
  }

  // ---------------------------------------------------------------------
  // SA lifecycle (RFC 7296 §1.3, §2.8, §2.18): new CHILD_SAs, IKE rekey, soft
  // expiries from the SAD. CHILD rekeys: ../tasks/child-rekey.ts; DPD:
  // ../tasks/dpd.ts; lifetimes, keepalives and retries: ./timers.ts.

  private enqueue(job: () => void, first = false): void {
    if (first) this.jobs.unshift(job);
    else this.jobs.push(job);
    this.sendNextRequest();
  }

  private stopTimers(): void {
    this.childRekeys.states.stopTimers();
    this.timers.stop();
  }

  /**
   * IKE rekey (rekey_time − random rand_time), reauthentication (reauth_time −
   * random rand_time) and hard end (the first of them + over_time) timers;
   * CHILD rekey timers.
   */
  private startLifetimes(): void {
    for (const c of this.ctx.children) this.childRekeys.scheduleChildRekey(c);
    this.timers.startLifetimes(this.ctx.config.ikeLifetimes);
  }

  /**
   * Reauthentication succeeded (a new IKE SA carries the CHILD_SAs now): no more
   * rekeys or liveness checks here; the manager deletes this SA after a grace
   * period for packets in flight on its CHILD_SAs.
   */
  retire(): void {
    this.stopTimers();
    this.jobs = [];
  }

  /** Ask for reauthentication: a new IKE SA with a fresh IKE_AUTH replaces this one, make-before-break (the manager makes it). */
  reauthenticate(why: string): void {
    if (this.ctx.state !== 'established') return;
    this.ctx.log.log('info', `${this.ctx.name}: reauthenticating the IKE_SA (${why}): a new IKE_SA replaces it, make-before-break`);
    this.emit('reauthDue', this);
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
    if (this.ctx.state !== 'established') return Promise.resolve({ ok: false, reason: `the IKE_SA is ${this.ctx.state}` });
    this.ctx.log.log('info', `${this.ctx.name}: deleting CHILD_SA ${child.name}{${child.reqid}} (${why})`);
    return new Promise((resolve) =>
      this.childRekeys.deleteChild(child, why, (outcome) => {
        if (outcome.ok) this.emit('childDeleted', this, child);
        resolve(outcome);
      }),
    );
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

  /** §2.8.1: made by the losing exchange of an IKE rekey collision we initiated: we delete it (nothing ever ran on it). */
  deleteRedundant(reason: string): void {
    if (this.ctx.state === 'destroyed' || this.ctx.state === 'deleting') return;
    this.redundant = true;
    this.ctx.log.log('info', `${this.ctx.name}: deleting the IKE_SA: ${reason}`);
    this.startDelete(reason, 'rekeyed');
  }

  /** §2.8.1: made by the losing exchange of an IKE rekey collision the peer initiated: the peer deletes it, we do after `ms`. */
  awaitRedundantDelete(ms: number): void {
    this.redundant = true;
    this.timers.whateverState(ms, () => this.deleteRedundant('redundant IKE_SA of a rekey collision, not deleted by the peer (§2.8.1)'));
  }
}
