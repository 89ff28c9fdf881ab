/**
 * One IKE SA's exchange engine (RFC 7296 §1, §2.1–§2.3): builds requests
 * from its tasks, encrypts (SK, RFC 5282) and fragments (SKF, RFC 7383) them,
 * retransmits until the matching response arrives, and answers the peer's
 * requests — a retransmitted request gets the cached response, never a second
 * processing. Tasks (../tasks/) do the per-concern work.
 */
import {
  ExchangeType,
  FragmentReassembler,
  IkeIntegrityError,
  IkeParseError,
  NotifyType,
  PayloadType,
  decryptSk,
  encodeMessage,
  fragmentMessage,
  type IkeHeader,
  type IkeMessage,
  type Payload,
} from '../codec/index.js';
import { deletePayload, notify } from '../codec/build.js';
import { ProtocolId } from '../transforms.js';
import type { Endpoint } from '../net/udp.js';
import { ExchangeFailure, type Task, type TaskMessage } from '../tasks/task.js';
import { IkeInitTask } from '../tasks/ike-init.js';
import { IkeNatdTask } from '../tasks/ike-natd.js';
import { IkeCertPreTask } from '../tasks/ike-cert-pre.js';
import { IkeAuthTask } from '../tasks/ike-auth.js';
import { ChildCreateTask } from '../tasks/child-create.js';
import { CreateChildRefusal, respondCreateChildSa, type CreateChildOutcome, type RequestResult } from '../tasks/create-child-sa.js';
import type { ChildPeerConfig } from './peer-config.js';
import type { ExpireEvent } from '../../esp/api.js';
import { Retransmitter, RequestWindow, ResponseWindow, type RetransmitSettings } from '../exchange/index.js';
import { IkeSaContext, type ChildSaRecord, type IkeSaEndCause } from './context.js';
import { ChildRekeys, retryDelay, spiHex, type ChildRekeyHost } from '../tasks/child-rekey.js';
import { Dpd, type DpdHost } from '../tasks/dpd.js';
import { respondInformational } from '../tasks/delete.js';
import { IkeRekey, type CreateChildSaRequest, type IkeRekeyHost } from '../tasks/ike-rekey.js';
import { createChild, type NewChildHost } from '../tasks/child-new.js';
import { IkeSaTimers } from './timers.js';

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

export interface IkeSaEvents {
  established(sa: IkeSa): void;
  /** The IKE SA is gone (deleted, failed, timed out); `reason` is the operator's log line. */
  destroyed(sa: IkeSa, reason: string, cause: IkeSaEndCause): void;
  childEstablished(sa: IkeSa, child: ChildSaRecord): void;
  /** A CHILD_SA could not be negotiated; the IKE SA stays up. */
  childFailed(sa: IkeSa, name: string, reason: string): void;
  /** A CHILD_SA was rekeyed (either side initiated): `fresh` replaces `old` (same reqid). */
  childRekeyed(sa: IkeSa, old: ChildSaRecord, fresh: ChildSaRecord): void;
  /** The IKE SA was rekeyed (§2.18): `successor` carries its CHILD_SAs now; this one is deleted next. */
  ikeRekeyed(sa: IkeSa, successor: IkeSa): void;
  /** The peer deleted a CHILD_SA (not a rekey's old pair) while the IKE SA stays (§1.4.1): close_action applies. */
  childClosed(sa: IkeSa, child: ChildSaRecord): void;
  /** reauth_time is reached: a new IKE SA with a fresh IKE_AUTH should replace this one (the manager does it). */
  reauthDue(sa: IkeSa): void;
  /** A liveness check (DPD, §2.4) was sent. */
  livenessCheck(sa: IkeSa): void;
}

export { OLD_INBOUND_GRACE_MS, RESPONDER_OUTBOUND_SWITCH_MS } from '../tasks/child-rekey.js';

type Listeners = { [K in keyof IkeSaEvents]: Array<IkeSaEvents[K]> };

interface PendingRequest {
  messageId: number;
  exchangeType: number;
  datagrams: Buffer[];
  tasks: Task[];
  retransmitter: Retransmitter;
  onResponse?: (msg: TaskMessage) => void;
}

export class IkeSa {
  /** Our requests (§2.3; window 1). */
  private requests = new RequestWindow<PendingRequest>();
  /** The peer's requests and our cached responses (§2.1). */
  private readonly responses = new ResponseWindow();
  private pending?: PendingRequest;
  /** IKE lifetimes, keepalives, one-shot retries (./timers.ts). */
  private readonly timers: IkeSaTimers;
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
  private readonly reassembler = new FragmentReassembler();
  private readonly listeners: Listeners = { established: [], destroyed: [], childEstablished: [], childFailed: [], childRekeyed: [], ikeRekeyed: [], childClosed: [], reauthDue: [], livenessCheck: [] };
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
  /** Received messages dropped as malformed, unauthenticated or rejected fragments. */
  droppedMessages = 0;
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
    const host = this.host();
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
  private host(): ChildRekeyHost & DpdHost & IkeRekeyHost<IkeSa> & NewChildHost {
    const sa = this;
    return {
      ctx: this.ctx,
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
      createChildSaExchange: (req, buildFailed, answered) => this.createChildSaExchange(req, buildFailed, answered),
      spawn: (ctx) => this.spawn!(ctx),
      ikeRekeyed: (next) => this.emit('ikeRekeyed', this, next),
      delete: (reason, cause) => this.delete(reason, cause),
      rekeyIke: (why) => this.rekeyIke(why),
    };
  }

  on<K extends keyof IkeSaEvents>(event: K, handler: IkeSaEvents[K]): this {
    this.listeners[event].push(handler);
    return this;
  }

  private emit<K extends keyof IkeSaEvents>(event: K, ...args: Parameters<IkeSaEvents[K]>): void {
    for (const h of this.listeners[event]) {
      try {
        (h as (...a: Parameters<IkeSaEvents[K]>) => void)(...args);
      } catch (err) {
        this.ctx.log.log('error', `${this.ctx.name}: ${event} listener failed: ${(err as Error).stack ?? String(err)}`);
      }
    }
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

  private header(exchangeType: number, messageId: number, response: boolean): IkeHeader {
    return {
      spiI: this.ctx.spiI,
      spiR: this.ctx.spiR,
      exchangeType,
      initiator: this.ctx.originalInitiator,
      response,
      higherVersion: false,
      messageId,
    };
  }

  /** Encode (and for anything after IKE_SA_INIT, encrypt and maybe fragment) one message. */
  private encode(msg: TaskMessage, response: boolean): Buffer[] {
    const message: IkeMessage = { header: this.header(msg.exchangeType, msg.messageId, response), payloads: msg.payloads };
    if (msg.exchangeType === ExchangeType.IKE_SA_INIT) return [encodeMessage(message)];
    const keys = this.ctx.keys!;
    const aead = keys.sealerFor(this.ctx.originalInitiator);
    const whole = encodeMessage(message, { encrypt: { aead, iv: keys.nextIv() } });
    const limit = this.maxMessageSize();
    if (whole.length <= limit || !this.ctx.peerFragmentation || !this.ctx.config.fragmentation) return [whole];
    return fragmentMessage(message, { aead, maxMessageSize: limit, nextIv: () => keys.nextIv() });
  }

  /** Largest IKE message before fragmenting: the configured IP datagram size minus IP, UDP and marker. */
  private maxMessageSize(): number {
    const ipHeader = this.ctx.remote.address.includes(':') ? 40 : 20;
    const marker = this.ctx.local.port === this.io.nattPort ? 4 : 0;
    return this.ctx.config.fragmentSize - ipHeader - 8 - marker;
  }

  private sendRequest(msg: TaskMessage, tasks: Task[], onResponse?: (msg: TaskMessage) => void): void {
    let datagrams: Buffer[];
    try {
      datagrams = this.encode(msg, false);
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
    const pending: PendingRequest = { messageId: msg.messageId, exchangeType: msg.exchangeType, datagrams, tasks, retransmitter, ...(onResponse ? { onResponse } : {}) };
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
        this.dropLog(`message ${message.header.messageId} failed integrity check, dropped`);
        return;
      }
      if (err instanceof IkeParseError) {
        this.dropLog(`malformed message ${message.header.messageId} dropped: ${err.message}`);
        return;
      }
      throw err;
    }
  }

  /**
   * Messages dropped before (or by) the ICV check: anyone who saw our SPIs can
   * send them, so the log shows the first few and then every 100th, counted.
   */
  private dropLog(what: string): void {
    this.droppedMessages++;
    if (this.droppedMessages <= 3 || this.droppedMessages % 100 === 0) {
      this.ctx.log.log('warn', `${this.ctx.name}: ${what}${this.droppedMessages > 3 ? ` (${this.droppedMessages} dropped so far)` : ''}`);
    }
  }

  /** The inner payloads of a received message, or undefined while fragments are missing. */
  private open(datagram: Buffer, message: IkeMessage): Payload[] | undefined {
    if (message.header.exchangeType === ExchangeType.IKE_SA_INIT) return message.payloads;
    const keys = this.ctx.keys;
    if (!keys) throw new IkeParseError('encrypted message before the IKE SA has keys', { offset: 0 });
    const aead = keys.sealerFor(message.header.initiator);
    const last = message.payloads[message.payloads.length - 1];
    if (last?.type === PayloadType.SKF) {
      const r = this.reassembler.add(message, datagram, aead);
      if (r.status === 'complete') {
        this.dpd.heard();
        this.ctx.log.log('info', `${this.ctx.name}: ${ExchangeType[message.header.exchangeType] ?? 'message'} ${message.header.messageId} reassembled from ${r.fragments} fragments (RFC 7383)`);
        return r.payloads;
      }
      if (r.status === 'rejected') {
        if (r.error) throw r.error;
        this.dropLog(`IKE fragment rejected: ${r.reason}`);
      }
      return undefined;
    }
    if (last?.type !== PayloadType.SK) throw new IkeParseError(`${ExchangeType[message.header.exchangeType] ?? 'exchange'} message without an Encrypted payload`, { offset: 28 });
    const payloads = decryptSk(message, datagram, aead).payloads;
    this.dpd.heard();
    return payloads;
  }

  private receiveResponse(datagram: Buffer, message: IkeMessage, remote: Endpoint): void {
    const p = this.pending;
    if (!p || message.header.messageId !== p.messageId) return; // §2.3: not the response we wait for
    if (p.exchangeType === ExchangeType.IKE_SA_INIT && this.ctx.spiR.equals(Buffer.alloc(8))) {
      // The responder's SPI arrives with its first response; keys depend on it.
      this.ctx.spiR = Buffer.from(message.header.spiR);
    }
    const payloads = this.open(datagram, message);
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
    const remaining: Task[] = [];
    try {
      let retry = false;
      for (const t of p.tasks) {
        const status = t.processResponse(msg);
        if (status === 'retry') retry = true;
        if (status !== 'done') remaining.push(t);
      }
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

  private establish(): void {
    this.ctx.state = 'established';
    this.ctx.establishedAt = Date.now();
    this.startKeepalives();
    this.ctx.log.log('info', `${this.ctx.name}: IKE_SA established between ${this.ctx.local.address}[${this.ctx.config.localId.value}]...${this.ctx.remote.address}[${this.ctx.peerId?.value ?? '?'}]`);
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
      if (this.isLastFragmentOrWhole(message)) {
        this.responses.receive(id);
        this.io.send(local, remote, cached.map((c) => Buffer.from(c)));
      }
      return;
    }
    if (id < this.responses.expectedId || id >= this.responses.expectedId + this.responses.windowSize) return; // §2.3
    const payloads = this.open(datagram, message);
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
        this.dropLog(`unexpected ${ExchangeType[exchangeType]} request ${id} dropped`);
        return;
      }
      try {
        for (const t of this.responderTasks) t.processRequest(msg);
        if (exchangeType === ExchangeType.IKE_SA_INIT) this.ctx.state = 'connecting';
        const remaining: Task[] = [];
        for (const t of this.responderTasks) if (t.buildResponse(response) !== 'done') remaining.push(t);
        this.responderTasks = remaining;
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
      outcome = this.respondCreateChildSa(msg, response);
    } else {
      response.payloads.push(notify(NotifyType.NO_ADDITIONAL_SAS));
    }
    const datagrams = this.encode(response, true);
    if (exchangeType === ExchangeType.IKE_SA_INIT) this.ctx.initResponse = datagrams[0];
    this.responses.respond(id, datagrams);
    this.io.send(local, remote, datagrams);
    if (fatal !== undefined) return this.destroy(fatal.reason, fatal.cause);
    if (exchangeType === ExchangeType.IKE_AUTH) this.establish();
    if (outcome) this.createChildSaAnswered(outcome);
  }

  private isLastFragmentOrWhole(message: IkeMessage): boolean {
    const last = message.payloads[message.payloads.length - 1];
    return last?.type !== PayloadType.SKF || last.fragmentNumber === last.totalFragments;
  }

  /** §2.21.2: tell the responder its AUTH was not accepted (fire and forget, then the SA goes). */
  private notifyAuthFailure(err: unknown): void {
    if (!(err instanceof ExchangeFailure) || err.notify !== NotifyType.AUTHENTICATION_FAILED) return;
    try {
      const msg: TaskMessage = { exchangeType: ExchangeType.INFORMATIONAL, messageId: this.requests.nextId, payloads: [notify(NotifyType.AUTHENTICATION_FAILED)] };
      this.io.send(this.ctx.local, this.ctx.remote, this.encode(msg, false));
    } catch {
      /* best effort */
    }
  }

  /** Delete the IKE SA (INFORMATIONAL with Delete, §1.4.1), then destroy it when answered or after retransmits. */
  delete(reason = 'deleted by request', cause: IkeSaEndCause = 'local'): void {
    if (this.ctx.state === 'destroyed') return;
    if (!this.ctx.keys || this.ctx.state !== 'established') return this.destroy(reason, cause);
    this.ctx.state = 'deleting';
    this.deleteCause = cause;
    this.initiatorTasks = [];
    this.jobs = [];
    this.stopTimers();
    // §2.3: with a request outstanding the Delete waits for its response (window 1);
    // a Delete sent with the next ID would be dropped by a peer that never saw the current one.
    if (this.pending) {
      this.queuedDelete = reason;
      return;
    }
    this.sendDelete(reason);
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
    this.reassembler.clear();
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
    if (e.hard || this.ctx.state !== 'established') return;
    const spi = e.spi >>> 0;
    const child = this.ctx.children.find((c) => c.reqid === e.reqid && (e.direction === 'in' ? c.inboundSpi === spi : c.outboundSpi === spi));
    if (child) this.rekeyChild(child, `soft ${e.reason} limit of SA ${spiHex(spi)}_${e.direction === 'in' ? 'i' : 'o'}`);
  }

  /**
   * Create a CHILD_SA of a configured child on this established IKE SA
   * (CREATE_CHILD_SA, §1.3.1): further `start` children after the one of
   * IKE_AUTH, a child whose traffic hit its trap, close_action `start`. A no-op
   * while one for the child is under way or the child is there.
   */
  createChild(config: ChildPeerConfig, why: string): void {
    if (this.successor) return this.successor.createChild(config, why);
    createChild(this.host(), config, why, retryDelay);
  }

  /**
   * One CREATE_CHILD_SA exchange of ours: build the request (a failure there is
   * `buildFailed`'s, and the next queued exchange goes), send it, and hand the
   * outcome on — an exception while processing the response is a failure, an
   * INVALID_KE_PAYLOAD asking for another group we offer is sent again at once.
   */
  private createChildSaExchange<T>(
    req: CreateChildSaRequest<T>,
    buildFailed: (err: Error) => void,
    answered: (r: Exclude<RequestResult<T>, { status: 'retry' }>) => void,
  ): void {
    const send = (): void => {
      const msg: TaskMessage = { exchangeType: ExchangeType.CREATE_CHILD_SA, messageId: this.requests.nextId, payloads: [] };
      try {
        req.build(msg);
      } catch (err) {
        buildFailed(err as Error);
        return this.sendNextRequest();
      }
      const abandonable = req.abandon ? { abandon: () => req.abandon?.() } : undefined;
      if (abandonable) this.unanswered.add(abandonable);
      this.sendRequest(msg, [], (response) => {
        if (abandonable) this.unanswered.delete(abandonable);
        let r: RequestResult<T>;
        try {
          r = req.process(response);
        } catch (err) {
          r = { status: 'failed', reason: (err as Error).message };
        }
        if (r.status === 'retry') return void this.jobs.unshift(send);
        answered(r);
      });
    };
    send();
  }

  /** Initiate the rekey of a CHILD_SA (§1.3.3); a no-op when one is already under way. */
  rekeyChild(child: ChildSaRecord, why: string): void {
    if (this.successor) return this.successor.rekeyChild(child, why);
    this.childRekeys.rekeyChild(child, why);
  }

  /** Delete a CHILD_SA (INFORMATIONAL, §1.4.1); the IKE SA stays. */
  deleteChild(child: ChildSaRecord, why: string): void {
    if (this.successor) return this.successor.deleteChild(child, why);
    this.childRekeys.deleteChild(child, why);
  }

  /** Responder side of CREATE_CHILD_SA. */
  private respondCreateChildSa(msg: TaskMessage, response: TaskMessage): CreateChildOutcome | undefined {
    const refuse = (notifyType: number, why: string, data?: Buffer): undefined => {
      this.ctx.log.log('warn', `${this.ctx.name}: CREATE_CHILD_SA ${msg.messageId} refused (${NotifyType[notifyType] ?? notifyType}): ${why}`);
      response.payloads = [notify(notifyType, data ? { data } : {})];
      return undefined;
    };
    if (this.ctx.state !== 'established' || this.successor) return refuse(NotifyType.TEMPORARY_FAILURE, 'the IKE_SA is being rekeyed or deleted');
    const ike = msg.payloads.some((p) => p.type === PayloadType.SA && p.proposals.some((q) => q.protocolId === ProtocolId.IKE));
    // our IKE rekey in flight is no refusal: a collision, settled by the nonces (§2.8.1, ../tasks/ike-rekey.ts)
    if (ike && (this.ikeRekey.refusesPeerRekey || this.childRekeys.busy)) return refuse(NotifyType.TEMPORARY_FAILURE, 'an exchange of ours is under way (§2.25)');
    if (ike && !this.spawn) return refuse(NotifyType.NO_ADDITIONAL_SAS, 'IKE_SA rekeying is not available here');
    if (!ike && this.ikeRekey.rekeying) return refuse(NotifyType.TEMPORARY_FAILURE, 'we are rekeying the IKE_SA (§2.25)');
    try {
      return respondCreateChildSa(this.ctx, msg, response, (outbound) => {
        // Our own rekey of it may be under way: answered as usual all the same (§2.25), the
        // collision is settled by the nonces when our exchange completes (§2.8.1).
        return this.ctx.children.find((c) => c.outboundSpi === outbound);
      });
    } catch (err) {
      if (err instanceof CreateChildRefusal) return refuse(err.notifyType, err.message, err.data);
      throw err;
    }
  }

  private createChildSaAnswered(outcome: CreateChildOutcome): void {
    switch (outcome.kind) {
      case 'child-rekey':
        this.childRekeys.peerRekeyed(outcome.old, outcome.record, outcome.nonces);
        return;
      case 'child-new':
        this.ctx.children.push(outcome.record);
        this.childRekeys.scheduleChildRekey(outcome.record);
        this.emit('childEstablished', this, outcome.record);
        return;
      case 'ike-rekey':
        this.ikeRekey.peerRekeyed(outcome.ctx, outcome.nonces);
        return;
    }
  }

  /** Initiate the rekey of this IKE SA (§1.3.2); the CHILD_SAs move to the new one. */
  rekeyIke(why = 'requested'): void {
    this.ikeRekey.initiate(why);
  }

  /** Made by a rekey of `old` (../tasks/ike-rekey.ts): established now, carrying its CHILD_SAs. */
  adoptAsRekeyed(old: IkeSaContext): void {
    this.ctx.state = 'established';
    this.ctx.establishedAt = Date.now();
    this.ctx.peerId ??= old.peerId;
    this.startKeepalives();
    this.ctx.log.log('info', `${this.ctx.name}: IKE_SA established by rekeying ${old.name}`);
    this.emit('established', this);
    this.startLifetimes();
    this.dpd.start();
  }

  /** Liveness checks (empty INFORMATIONAL requests, §2.4) sent by this IKE SA. */
  get dpdChecks(): number {
    return this.dpd.checks;
  }

  /** The IKE SA that replaced this one by a rekey, if any. */
  get successor(): IkeSa | undefined {
    return this.ikeRekey.successor;
  }

  /** §2.8.1: made by the losing exchange of an IKE rekey collision we initiated: we delete it (nothing ever ran on it). */
  deleteRedundant(reason: string): void {
    if (this.ctx.state === 'destroyed' || this.ctx.state === 'deleting') return;
    this.redundant = true;
    this.ctx.state = 'deleting';
    this.deleteCause = 'rekeyed';
    this.ctx.log.log('info', `${this.ctx.name}: deleting the IKE_SA: ${reason}`);
    if (this.pending) this.queuedDelete = reason;
    else this.sendDelete(reason);
  }

  /** §2.8.1: made by the losing exchange of an IKE rekey collision the peer initiated: the peer deletes it, we do after `ms`. */
  awaitRedundantDelete(ms: number): void {
    this.redundant = true;
    this.timers.whateverState(ms, () => this.deleteRedundant('redundant IKE_SA of a rekey collision, not deleted by the peer (§2.8.1)'));
  }
}
