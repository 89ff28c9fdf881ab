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
import { ChildRekeyRequest, CreateChildRefusal, IkeRekeyRequest, NewChildRequest, respondCreateChildSa, type CreateChildOutcome, type RequestResult } from '../tasks/create-child-sa.js';
import type { ChildPeerConfig } from './peer-config.js';
import type { ExpireEvent } from '../../esp/api.js';
import { Retransmitter, RequestWindow, ResponseWindow, type RetransmitSettings } from '../exchange/index.js';
import { IkeSaContext, type ChildSaRecord } from './context.js';
import { ChildStates, type ChildRekeyCollision } from './child-state.js';

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

/**
 * Why an IKE SA ended, for what comes next (strongSwan's dpd_action and
 * close_action): `dead-peer` — an exchange was not answered after every
 * retransmission (§2.4, DPD included); `peer-deleted` — the peer sent a Delete;
 * `failed` — it never got established (or the peer reported AUTHENTICATION_FAILED);
 * `replaced` — a new IKE SA of the same identities took over (INITIAL_CONTACT /
 * `unique`); `rekeyed` — its successor carries its CHILD_SAs (§2.18);
 * `expired` — not rekeyed within rekey_time + over_time; `local` — we deleted it.
 */
export type IkeSaEndCause = 'local' | 'peer-deleted' | 'dead-peer' | 'failed' | 'replaced' | 'rekeyed' | 'expired';

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

/** Responder of a CHILD rekey: switch outbound to the new SA at the latest this long after answering, even without the initiator's Delete. */
export const RESPONDER_OUTBOUND_SWITCH_MS = 5_000;
/**
 * A rekeyed-away inbound SA still accepts packets this long after its Delete
 * exchange (ESP sent just before the peer switched can arrive after the IKE
 * message that says so: different sockets, batched reads).
 */
export const OLD_INBOUND_GRACE_MS = 2_000;
/** A rekey collision's losing pair made by the peer's exchange: deleted by us if the peer has not after this long (§2.8.1). */
const REDUNDANT_GRACE_MS = 10_000;
/** Random delay range before retrying an exchange the peer answered TEMPORARY_FAILURE (§2.25). */
const TEMPORARY_RETRY_MS = [500, 2_500] as const;

function retryDelay(): number {
  return TEMPORARY_RETRY_MS[0] + Math.floor(Math.random() * (TEMPORARY_RETRY_MS[1] - TEMPORARY_RETRY_MS[0]));
}

function spiHex(spi: number): string {
  return (spi >>> 0).toString(16).padStart(8, '0');
}

function spiBuffer(spi: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(spi >>> 0);
  return b;
}

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
  private keepaliveTimer?: NodeJS.Timeout;
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
  /** Each CHILD_SA pair's state and timer (./child-state.ts). */
  private readonly childStates = new ChildStates();
  /** CHILD_SA requests of ours sent and not answered: their reserved SPIs are released if the IKE SA ends first. */
  private readonly unanswered = new Set<{ abandon(): void }>();
  /** Configured children (by name) whose CREATE_CHILD_SA we initiated and that are not finished. */
  private readonly creating = new Set<string>();
  private readonly otherTimers = new Set<NodeJS.Timeout>();
  private ikeRekeying = false;
  private successorSa?: IkeSa;
  /** Why a Delete we send ends this SA (the cause reported once it is answered). */
  private deleteCause: IkeSaEndCause = 'local';
  /** When the peer last sent an authenticated IKE message (ms); ESP counts too, through the SAD (§2.4). */
  private lastHeard = Date.now();
  /** Received messages dropped as malformed, unauthenticated or rejected fragments. */
  droppedMessages = 0;
  /** Liveness checks (empty INFORMATIONAL requests, §2.4) sent by this IKE SA. */
  dpdChecks = 0;
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
    ctx.observer = {
      childEstablished: (child) => this.emit('childEstablished', this, child),
      childFailed: (name, reason) => this.emit('childFailed', this, name, reason),
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
        this.lastHeard = Date.now();
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
    this.lastHeard = Date.now();
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
    this.startDpd();
  }

  /**
   * RFC 3948 §2.3: behind a NAT, keep its mapping alive with a one-octet
   * 0xFF datagram from the NAT-T port (strongSwan's default: every 20 s).
   * Simplification: sent on the interval even when other traffic flows.
   */
  private startKeepalives(): void {
    const interval = this.io.keepaliveMs ?? 20_000;
    if (!this.ctx.natLocal || interval <= 0 || !this.io.sendKeepalive || this.keepaliveTimer) return;
    this.keepaliveTimer = setInterval(() => {
      if (this.ctx.state === 'established') this.io.sendKeepalive!(this.ctx.local, this.ctx.remote);
    }, interval);
    this.keepaliveTimer.unref?.();
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
      fatal = this.processInformational(msg, response);
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

  /** INFORMATIONAL requests (§1.4): Delete of the IKE SA, liveness checks, status notifies. Returns why to destroy. */
  private processInformational(msg: TaskMessage, response: TaskMessage): { reason: string; cause: IkeSaEndCause } | undefined {
    for (const p of msg.payloads) {
      if (p.type === PayloadType.DELETE && p.protocolId === ProtocolId.IKE) {
        // after an IKE rekey the old SA's Delete is part of the rekey, not the peer closing
        return this.successorSa ? { reason: `rekeyed, replaced by ${this.successorSa.ctx.name}`, cause: 'rekeyed' } : { reason: 'peer deleted the IKE_SA', cause: 'peer-deleted' };
      }
    }
    for (const p of msg.payloads) {
      if (p.type === PayloadType.NOTIFY && p.notifyType === NotifyType.AUTHENTICATION_FAILED) return { reason: 'peer reported AUTHENTICATION_FAILED', cause: 'failed' };
    }
    if (msg.payloads.length === 0) this.ctx.log.log('debug', `${this.ctx.name}: liveness check (empty INFORMATIONAL) from the peer answered`);
    const ourInbound: Buffer[] = [];
    for (const p of msg.payloads) {
      if (p.type === PayloadType.DELETE && p.protocolId === ProtocolId.ESP) ourInbound.push(...this.deleteChildren(p.spis));
    }
    // §1.4.1: answer a CHILD_SA Delete with the Delete of our own half of each pair.
    if (ourInbound.length > 0) response.payloads.push(deletePayload(ProtocolId.ESP, ourInbound));
    return undefined;
  }

  /**
   * Remove the CHILD SAs whose outbound SPIs (the peer's inbound SPIs, as it
   * names them in its Delete) are listed; returns our inbound SPIs of those pairs.
   * Unknown SPIs are ignored (§1.4.1: the SA may already be gone).
   */
  private deleteChildren(peerSpis: readonly Buffer[]): Buffer[] {
    const gone: Buffer[] = [];
    for (const spi of peerSpis) {
      if (spi.length !== 4) continue;
      const outbound = spi.readUInt32BE(0);
      const loser = this.childStates.find('redundant', (c) => c.outboundSpi === outbound)?.[0];
      if (loser) {
        // §2.8.1: the initiator of the exchange with the lowest nonce deletes what it made
        this.dropRedundant(loser);
        gone.push(spiBuffer(loser.inboundSpi));
        this.ctx.log.log('info', `${this.ctx.name}: CHILD_SA ${loser.name}{${loser.reqid}} redundant SAs ${spiHex(loser.inboundSpi)}_i ${spiHex(loser.outboundSpi)}_o of the rekey collision deleted by the peer`);
        continue;
      }
      const old = this.childStates.find('superseded', (c) => c.outboundSpi === outbound)?.[0];
      if (old) {
        // §1.3.3: the rekey's initiator deletes the old SA pair: traffic goes over the new one now.
        this.finishSupersede(old);
        gone.push(spiBuffer(old.inboundSpi));
        continue;
      }
      const i = this.ctx.children.findIndex((c) => c.outboundSpi === outbound);
      if (i < 0) continue;
      const [child] = this.ctx.children.splice(i, 1);
      this.forgetChild(child!);
      this.removeChild(child!);
      const inbound = Buffer.alloc(4);
      inbound.writeUInt32BE(child!.inboundSpi);
      gone.push(inbound);
      this.ctx.log.log('info', `${this.ctx.name}: CHILD_SA ${child!.name}{${child!.reqid}} deleted by the peer (SPIs ${child!.inboundSpi.toString(16).padStart(8, '0')}_i ${outbound.toString(16).padStart(8, '0')}_o)`);
      this.emit('childClosed', this, child!);
    }
    return gone;
  }

  private removeChild(child: ChildSaRecord): void {
    // The reqid's policies belong to whichever CHILD_SA sends on it now: a CHILD_SA of
    // another IKE SA (one that replaced this IKE SA after INITIAL_CONTACT) keeps them.
    const active = this.ctx.backend.activeOutboundSpi(child.reqid);
    const ours = active === undefined || active === child.outboundSpi >>> 0;
    this.ctx.backend.deleteSa(child.inboundSpi, 'in');
    this.ctx.backend.deleteSa(child.outboundSpi, 'out');
    if (!ours) return;
    this.ctx.backend.deletePolicy(child.reqid, 'in');
    this.ctx.backend.deletePolicy(child.reqid, 'out');
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
    clearInterval(this.keepaliveTimer);
    this.jobs = [];
    this.stopTimers();
    for (const [old, entry] of this.childStates.all('superseded')) {
      this.ctx.backend.deleteSa(old.inboundSpi, 'in');
      this.ctx.backend.deleteSa(old.outboundSpi, 'out');
      if (entry.redundantOutbound !== undefined) this.ctx.backend.deleteSa(entry.redundantOutbound, 'out');
    }
    for (const req of this.unanswered) req.abandon();
    this.unanswered.clear();
    for (const [old] of this.childStates.all('rekeyed')) this.ctx.backend.deleteSa(old.inboundSpi, 'in');
    for (const [pair] of this.childStates.all('redundant')) {
      this.ctx.backend.deleteSa(pair.inboundSpi, 'in');
      this.ctx.backend.deleteSa(pair.outboundSpi, 'out');
    }
    this.childStates.clear();
    this.reassembler.clear();
    this.childNamesAtEnd = [...new Set(this.ctx.children.map((c) => c.name))];
    for (const child of this.ctx.children.splice(0)) this.removeChild(child);
    this.ctx.keys?.destroy();
    this.ctx.state = 'destroyed';
    this.ctx.log.log('info', `${this.ctx.name}: IKE_SA destroyed: ${reason}`);
    this.emit('destroyed', this, reason, cause);
  }

  // ---------------------------------------------------------------------
  // SA lifecycle (RFC 7296 §1.3, §2.8, §2.18): CREATE_CHILD_SA both roles,
  // rekey timers, soft expiries from the SAD.

  private enqueue(job: () => void, first = false): void {
    if (first) this.jobs.unshift(job);
    else this.jobs.push(job);
    this.sendNextRequest();
  }

  private later(ms: number, fn: () => void): NodeJS.Timeout {
    const t = setTimeout(() => {
      this.otherTimers.delete(t);
      if (this.ctx.state === 'established') fn();
    }, ms);
    t.unref?.();
    this.otherTimers.add(t);
    return t;
  }

  private stopTimers(): void {
    this.childStates.stopTimers();
    for (const t of this.otherTimers) clearTimeout(t);
    this.otherTimers.clear();
  }

  /**
   * IKE rekey (rekey_time − random rand_time), reauthentication (reauth_time −
   * random rand_time) and hard end (the first of them + over_time) timers;
   * CHILD rekey timers.
   */
  private startLifetimes(): void {
    for (const c of this.ctx.children) this.scheduleChildRekey(c);
    const l = this.ctx.config.ikeLifetimes;
    if (!l) return;
    const reauth = l.reauthTime ?? 0;
    const jitter = (limit: number): number => (limit - Math.random() * Math.min(l.randTime, Math.floor(limit / 2))) * 1000;
    if (l.rekeyTime > 0) this.later(jitter(l.rekeyTime), () => this.rekeyIke('rekey_time'));
    if (reauth > 0) {
      this.later(jitter(reauth), () => {
        this.ctx.log.log('info', `${this.ctx.name}: reauthenticating the IKE_SA (reauth_time): a new IKE_SA replaces it, make-before-break`);
        this.emit('reauthDue', this);
      });
    }
    const first = Math.min(...[l.rekeyTime, reauth].filter((t) => t > 0));
    if (Number.isFinite(first) && l.overTime > 0) {
      const what = reauth > 0 && (l.rekeyTime <= 0 || reauth < l.rekeyTime) ? 'reauthenticated within reauth_time' : 'rekeyed within rekey_time';
      this.later((first + l.overTime) * 1000, () => this.delete(`IKE_SA not ${what} + over_time (${first + l.overTime}s)`, 'expired'));
    }
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

  /**
   * Dead peer detection (§2.4, strongSwan's dpd_delay): when nothing
   * authenticated came from the peer — no IKE message, no ESP packet on one
   * of our CHILD_SAs' inbound SAs — for dpd_delay, send an empty INFORMATIONAL
   * request. An unanswered one (after the retransmission schedule) ends the
   * IKE SA with cause `dead-peer`. A request already under way checks the
   * peer just as well, so none is added then.
   */
  private startDpd(): void {
    const delayMs = (this.ctx.config.dpdDelay ?? 0) * 1000;
    if (delayMs <= 0) return;
    const check = (): void => {
      const idleMs = Date.now() - this.lastInbound();
      if (idleMs < delayMs) return void this.later(delayMs - idleMs, check);
      if (!this.pending && this.jobs.length === 0) this.enqueue(() => this.sendLivenessCheck());
      this.later(delayMs, check);
    };
    this.later(delayMs, check);
  }

  /** The latest authenticated traffic from the peer: IKE, or ESP on an inbound SA of ours (the SAD's coarse seconds clock). */
  private lastInbound(): number {
    let last = this.lastHeard;
    for (const c of this.ctx.children) {
      const used = this.ctx.backend.querySa(c.inboundSpi, 'in')?.lastUsed ?? 0;
      // lastUsed is whole seconds: count it as the end of that second
      if (used > 0) last = Math.max(last, Math.min(Date.now(), used * 1000 + 999));
    }
    return last;
  }

  /** §2.4: an INFORMATIONAL request with no payloads; the answer (or the retransmissions' end) tells. */
  private sendLivenessCheck(): void {
    if (this.ctx.state !== 'established') return;
    this.dpdChecks++;
    this.emit('livenessCheck', this);
    this.ctx.log.log('info', `${this.ctx.name}: no traffic from ${this.ctx.remote.address} for dpd_delay ${this.ctx.config.dpdDelay}s, sending a liveness check (DPD)`);
    this.sendRequest({ exchangeType: ExchangeType.INFORMATIONAL, messageId: this.requests.nextId, payloads: [] }, [], () =>
      this.ctx.log.log('debug', `${this.ctx.name}: liveness check answered`),
    );
  }

  /** (Re)start the rekey_time timer of an installed CHILD_SA. */
  private scheduleChildRekey(child: ChildSaRecord): void {
    const state = this.childStates.get(child);
    const carries = state && (state.kind === 'installed' || state.kind === 'rekeying' || state.kind === 'retrying') ? state : undefined;
    clearTimeout(carries?.rekeyTimer);
    if (carries) delete carries.rekeyTimer;
    else this.childStates.set(child, { kind: 'installed' });
    const seconds = child.rekeySeconds ?? 0;
    if (seconds <= 0 || !child.config) return;
    const delay = Math.max(0, child.installedAt + seconds * 1000 - Date.now());
    const t = setTimeout(() => {
      const s = this.childStates.get(child);
      if (s && 'rekeyTimer' in s && s.rekeyTimer === t) delete s.rekeyTimer;
      this.rekeyChild(child, 'rekey_time');
    }, delay);
    t.unref?.();
    (carries ?? (this.childStates.get(child) as { rekeyTimer?: NodeJS.Timeout })).rekeyTimer = t;
  }

  /** Our rekey of it ended without a new pair: back to installed (or waiting, if it came due meanwhile during an IKE rekey). */
  private endChildRekey(child: ChildSaRecord): void {
    const s = this.childStates.is(child, 'rekeying');
    if (!s) return;
    const rekeyTimer = s.rekeyTimer ? { rekeyTimer: s.rekeyTimer } : {};
    this.childStates.set(child, s.want !== undefined ? { kind: 'retrying', why: s.want, ...rekeyTimer } : { kind: 'installed', ...rekeyTimer });
  }

  private forgetChild(child: ChildSaRecord): void {
    this.childStates.delete(child);
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
    if (this.successorSa) return this.successorSa.createChild(config, why);
    if (this.ctx.state !== 'established' || this.creating.has(config.name)) return;
    if (this.ctx.children.some((c) => c.name === config.name)) return;
    this.creating.add(config.name);
    this.ctx.log.log('info', `${this.ctx.name}: creating CHILD_SA ${config.name} (${why})`);
    const req = new NewChildRequest(this.ctx, config);
    const done = (): void => {
      this.creating.delete(config.name);
    };
    const send = (): void => {
      if (this.ctx.state !== 'established' || this.successorSa || this.ikeRekeying) {
        // §2.25: not during an IKE rekey; the caller's trigger (traffic, a timer) asks again
        done();
        req.abandon();
        return this.sendNextRequest();
      }
      const buildFailed = (err: Error): void => {
        done();
        req.abandon();
        this.ctx.log.log('warn', `${this.ctx.name}: cannot create CHILD_SA ${config.name}: ${err.message}`);
      };
      this.createChildSaExchange(req, buildFailed, (r) => {
        done();
        if (r.status === 'ok') {
          this.ctx.children.push(r.value);
          this.scheduleChildRekey(r.value);
          this.emit('childEstablished', this, r.value);
          return;
        }
        req.abandon();
        if (r.status === 'temporary') {
          const ms = retryDelay();
          this.ctx.log.log('info', `${this.ctx.name}: CHILD_SA ${config.name}: peer answered TEMPORARY_FAILURE, retrying in ${ms} ms`);
          this.later(ms, () => this.createChild(config, 'retry after TEMPORARY_FAILURE'));
          return;
        }
        const reason = r.status === 'failed' ? r.reason : r.status;
        this.ctx.log.log('warn', `${this.ctx.name}: CHILD_SA ${config.name} failed: ${reason}; the IKE_SA stays up`);
        this.emit('childFailed', this, config.name, reason);
      });
    };
    this.enqueue(send);
  }

  /**
   * One CREATE_CHILD_SA exchange of ours: build the request (a failure there is
   * `buildFailed`'s, and the next queued exchange goes), send it, and hand the
   * outcome on — an exception while processing the response is a failure, an
   * INVALID_KE_PAYLOAD asking for another group we offer is sent again at once.
   */
  private createChildSaExchange<T>(
    req: { build(msg: TaskMessage): void; process(msg: TaskMessage): RequestResult<T>; abandon?(): void },
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
    if (this.successorSa) return this.successorSa.rekeyChild(child, why);
    if (this.ctx.state !== 'established') return;
    const state = this.childStates.get(child);
    if (this.ikeRekeying) {
      // §2.25: not while the IKE SA is being rekeyed; done on the new IKE SA (or here if that fails).
      if (!this.ctx.children.includes(child)) return;
      if (state?.kind === 'rekeying') state.want = why;
      else {
        if (state?.kind === 'retrying') clearTimeout(state.retryTimer);
        const rekeyTimer = this.childStates.rekeyTimer(child);
        this.childStates.set(child, { kind: 'retrying', why, ...(rekeyTimer ? { rekeyTimer } : {}) });
      }
      return;
    }
    if (state?.kind === 'rekeying') {
      delete state.want;
      return;
    }
    if (!this.ctx.children.includes(child) || !child.config || !child.localRanges || !child.remoteRanges) {
      if (state?.kind === 'retrying') {
        if (this.ctx.children.includes(child)) this.endRetry(child, state);
        else this.childStates.delete(child);
      }
      return;
    }
    if (state?.kind === 'retrying') clearTimeout(state.retryTimer);
    const rekeyTimer = this.childStates.rekeyTimer(child);
    this.childStates.set(child, { kind: 'rekeying', ...(rekeyTimer ? { rekeyTimer } : {}) });
    this.ctx.log.log('info', `${this.ctx.name}: rekeying CHILD_SA ${child.name}{${child.reqid}} ${spiHex(child.inboundSpi)}_i ${spiHex(child.outboundSpi)}_o (${why})`);
    const req = new ChildRekeyRequest(this.ctx, child);
    this.enqueue(() => this.sendChildRekey(req));
  }

  private sendChildRekey(req: ChildRekeyRequest): void {
    const child = req.old;
    if (!this.ctx.children.includes(child) || this.successorSa) {
      // rekeyed by the peer meanwhile, or moved to a new IKE SA
      this.endChildRekey(child);
      req.abandon();
      return this.sendNextRequest();
    }
    const msg: TaskMessage = { exchangeType: ExchangeType.CREATE_CHILD_SA, messageId: this.requests.nextId, payloads: [] };
    try {
      req.build(msg);
    } catch (err) {
      this.endChildRekey(child);
      req.abandon();
      this.ctx.log.log('warn', `${this.ctx.name}: cannot rekey CHILD_SA ${child.name}{${child.reqid}}: ${(err as Error).message}`);
      return this.sendNextRequest();
    }
    this.unanswered.add(req);
    this.sendRequest(msg, [], (response) => {
      this.unanswered.delete(req);
      this.childRekeyAnswered(req, response);
    });
  }

  private childRekeyAnswered(req: ChildRekeyRequest, response: TaskMessage): void {
    const child = req.old;
    const name = `CHILD_SA ${child.name}{${child.reqid}}`;
    let r: ReturnType<ChildRekeyRequest['process']>;
    try {
      r = req.process(response);
    } catch (err) {
      r = { status: 'failed', reason: (err as Error).message };
    }
    switch (r.status) {
      case 'retry':
        this.ctx.log.log('info', `${this.ctx.name}: ${name} rekey: peer asks for another key exchange group, retrying`);
        this.jobs.unshift(() => this.sendChildRekey(req));
        return;
      case 'temporary': {
        const ms = retryDelay();
        this.ctx.log.log('info', `${this.ctx.name}: ${name} rekey: peer answered TEMPORARY_FAILURE, retrying in ${ms} ms`);
        this.dropCollision(child);
        req.abandon();
        const s = this.childStates.is(child, 'rekeying');
        if (!s) return;
        const retryTimer = setTimeout(() => {
          if (this.ctx.state === 'established' && this.childStates.is(child, 'retrying')?.retryTimer === retryTimer) this.rekeyChild(child, 'retry after TEMPORARY_FAILURE');
        }, ms);
        retryTimer.unref?.();
        this.childStates.set(child, { kind: 'retrying', why: 'retry after TEMPORARY_FAILURE', retryTimer, ...(s.rekeyTimer ? { rekeyTimer: s.rekeyTimer } : {}) });
        return;
      }
      case 'not-found':
        // §2.25: the peer deleted it (or rekeyed it itself) meanwhile; nothing to rekey.
        this.ctx.log.log('info', `${this.ctx.name}: ${name} rekey: peer answered CHILD_SA_NOT_FOUND`);
        this.dropCollision(child);
        this.endChildRekey(child);
        req.abandon();
        return;
      case 'failed':
        this.ctx.log.log('warn', `${this.ctx.name}: ${name} rekey failed: ${r.reason}; the old SAs stay until their hard lifetime`);
        this.dropCollision(child);
        this.endChildRekey(child);
        req.abandon();
        this.emit('childFailed', this, child.name, `rekey failed: ${r.reason}`);
        return;
      case 'ok': {
        const collision = this.dropCollision(child);
        if (collision && this.ctx.children.includes(collision.peerPair) && !this.lowestNonceIn(r.nonces, collision.nonces)) {
          // §2.8.1: both exchanges rekeyed it; the lowest of the four nonces is in the peer's — its pair goes, ours stays.
          return this.winCollision(child, collision.peerPair, r.value);
        }
        if (!this.ctx.children.includes(child)) {
          // The peer rekeyed it too: its exchange finished first, or (collision, §2.8.1) ours holds the lowest nonce.
          this.ctx.log.log(
            'info',
            `${this.ctx.name}: ${name} was rekeyed by the peer ${collision ? 'in a collision and our exchange has the lowest nonce (§2.8.1)' : 'meanwhile'}; deleting our redundant SAs ${spiHex(r.value.inboundSpi)}_i ${spiHex(r.value.outboundSpi)}_o`,
          );
          const entry = this.childStates.is(child, 'superseded');
          if (collision && entry && !entry.switched) {
            // The winner installs its pair's inbound SA only when its own response arrives, maybe after
            // ours: we keep sending on our (redundant) pair — the winner has its inbound since it answered
            // us — until the winner's Delete of the old SA shows it is ready (or the responder's switch timer).
            entry.redundantOutbound = r.value.outboundSpi;
          } else {
            this.ctx.backend.deleteSa(r.value.outboundSpi, 'out');
            const current = this.ctx.children.find((c) => c.reqid === child.reqid);
            if (current) this.ctx.backend.setOutboundSa(current.reqid, current.outboundSpi);
          }
          this.enqueue(() => this.sendChildDelete(r.value), true);
          return;
        }
        this.replaceChild(child, r.value, true);
        return;
      }
    }
  }

  /** Our rekey of a pair the peer rekeyed too is answered (or failed): the collision, if there was one, is settled now. */
  private dropCollision(child: ChildSaRecord): ChildRekeyCollision | undefined {
    const s = this.childStates.is(child, 'superseded');
    const collision = s?.collision;
    if (s) delete s.collision;
    return collision;
  }

  /** A TEMPORARY_FAILURE retry (or a wait for the IKE rekey) of a pair no longer ours to rekey. */
  private endRetry(child: ChildSaRecord, state: { retryTimer?: NodeJS.Timeout; rekeyTimer?: NodeJS.Timeout }): void {
    clearTimeout(state.retryTimer);
    this.childStates.set(child, { kind: 'installed', ...(state.rekeyTimer ? { rekeyTimer: state.rekeyTimer } : {}) });
  }

  /** Whether the lowest of all the nonces is one of `ours` (RFC 7296 §2.8.1: that exchange's SA is the redundant one). */
  private lowestNonceIn(ours: Buffer[], theirs: Buffer[]): boolean {
    const lowest = (list: Buffer[]): Buffer => list.reduce((a, b) => (Buffer.compare(a, b) <= 0 ? a : b));
    return Buffer.compare(lowest(ours), lowest(theirs)) < 0;
  }

  /**
   * §2.8.1, our exchange won: our new pair (outbound already switched to it)
   * becomes the CHILD_SA; the peer's pair from the colliding exchange is left
   * for the peer to delete (its exchange had the lowest nonce); the old
   * CHILD_SA is deleted by us, as for any rekey we initiated.
   */
  private winCollision(old: ChildSaRecord, peerPair: ChildSaRecord, ours: ChildSaRecord): void {
    this.ctx.log.log(
      'info',
      `${this.ctx.name}: CHILD_SA ${old.name}{${old.reqid}} rekey collision (§2.8.1): the lowest nonce is in the peer's exchange; keeping ours ${spiHex(ours.inboundSpi)}_i ${spiHex(ours.outboundSpi)}_o, the peer deletes ${spiHex(peerPair.inboundSpi)}_i ${spiHex(peerPair.outboundSpi)}_o`,
    );
    const i = this.ctx.children.indexOf(peerPair);
    this.ctx.children[i] = ours;
    this.forgetChild(peerPair);
    this.scheduleChildRekey(ours);
    if (this.childStates.is(old, 'superseded')) this.childStates.delete(old);
    // our outbound SA went live when our exchange completed: the peer's pair never carries our traffic
    this.ctx.backend.deleteSa(peerPair.outboundSpi, 'out');
    this.awaitRedundantDelete(peerPair);
    this.ctx.backend.deleteSa(old.outboundSpi, 'out');
    this.enqueue(() => this.sendChildDelete(old), true);
    this.emit('childRekeyed', this, peerPair, ours);
  }

  /** The peer deletes a collision's losing pair it made; if it has not after REDUNDANT_GRACE_MS, we do (§2.8.1). */
  private awaitRedundantDelete(pair: ChildSaRecord): void {
    this.childStates.delete(pair);
    const graceTimer = setTimeout(() => {
      if (this.childStates.is(pair, 'redundant')?.graceTimer !== graceTimer) return;
      this.dropRedundant(pair);
      if (this.ctx.state === 'established') this.enqueue(() => this.sendChildDelete(pair));
    }, REDUNDANT_GRACE_MS);
    graceTimer.unref?.();
    this.childStates.set(pair, { kind: 'redundant', graceTimer });
  }

  private dropRedundant(pair: ChildSaRecord): void {
    this.childStates.delete(pair);
    this.ctx.backend.deleteSa(pair.outboundSpi, 'out');
    this.retireInbound(pair);
  }

  private replaceChild(old: ChildSaRecord, fresh: ChildSaRecord, weInitiated: boolean, collision?: ChildRekeyCollision): void {
    const i = this.ctx.children.indexOf(old);
    if (i >= 0) this.ctx.children[i] = fresh;
    else this.ctx.children.push(fresh);
    this.forgetChild(old);
    this.scheduleChildRekey(fresh);
    if (weInitiated) {
      // Outbound already switched; the old outbound SA goes now, the old inbound once the peer answered our Delete.
      this.ctx.backend.deleteSa(old.outboundSpi, 'out');
      this.enqueue(() => this.sendChildDelete(old), true);
    } else {
      const switchTimer = setTimeout(() => this.switchOutbound(old), RESPONDER_OUTBOUND_SWITCH_MS);
      switchTimer.unref?.();
      this.childStates.set(old, { kind: 'superseded', successor: fresh, switched: false, switchTimer, ...(collision ? { collision } : {}) });
    }
    this.emit('childRekeyed', this, old, fresh);
  }

  /** Delete our half of a superseded pair (INFORMATIONAL, §1.4.1); the old inbound SA lives until answered. */
  private sendChildDelete(old: ChildSaRecord): void {
    if (this.ctx.state !== 'established') return;
    const msg: TaskMessage = { exchangeType: ExchangeType.INFORMATIONAL, messageId: this.requests.nextId, payloads: [deletePayload(ProtocolId.ESP, [spiBuffer(old.inboundSpi)])] };
    this.sendRequest(msg, [], () => {
      if (this.ctx.backend.activeOutboundSpi(old.reqid) === old.outboundSpi >>> 0) {
        // still our outbound SA (a collision's redundant pair while the winner's switch is pending): move on first
        const current = this.ctx.children.find((c) => c.reqid === old.reqid && c !== old);
        if (current) this.ctx.backend.setOutboundSa(current.reqid, current.outboundSpi);
      }
      this.ctx.backend.deleteSa(old.outboundSpi, 'out');
      this.retireInbound(old);
      this.ctx.log.log('info', `${this.ctx.name}: CHILD_SA ${old.name}{${old.reqid}} old SAs ${spiHex(old.inboundSpi)}_i ${spiHex(old.outboundSpi)}_o deleted`);
    });
  }

  /** Delete an old inbound SA with a grace of OLD_INBOUND_GRACE_MS (packets still in flight to it are accepted meanwhile). */
  private retireInbound(pair: ChildSaRecord): void {
    for (const [c] of this.childStates.all('rekeyed')) if (!this.ctx.backend.querySa(c.inboundSpi, 'in')) this.childStates.delete(c);
    this.ctx.backend.deleteSa(pair.inboundSpi, 'in', OLD_INBOUND_GRACE_MS);
    this.childStates.set(pair, { kind: 'rekeyed' });
  }

  /** Responder: send over the new SA (the initiator has it installed once it deletes the old one, or after a grace). */
  private switchOutbound(old: ChildSaRecord): void {
    const entry = this.childStates.is(old, 'superseded');
    if (!entry || entry.switched) return;
    entry.switched = true;
    clearTimeout(entry.switchTimer);
    if (this.ctx.children.includes(entry.successor)) this.ctx.backend.setOutboundSa(entry.successor.reqid, entry.successor.outboundSpi);
    this.ctx.backend.deleteSa(old.outboundSpi, 'out');
    if (entry.redundantOutbound !== undefined) this.ctx.backend.deleteSa(entry.redundantOutbound, 'out');
  }

  private finishSupersede(old: ChildSaRecord): void {
    this.switchOutbound(old);
    this.childStates.delete(old);
    this.retireInbound(old);
    this.ctx.log.log('info', `${this.ctx.name}: CHILD_SA ${old.name}{${old.reqid}} old SAs ${spiHex(old.inboundSpi)}_i ${spiHex(old.outboundSpi)}_o deleted by the peer after its rekey`);
  }

  /** Responder side of CREATE_CHILD_SA. */
  private respondCreateChildSa(msg: TaskMessage, response: TaskMessage): CreateChildOutcome | undefined {
    const refuse = (notifyType: number, why: string, data?: Buffer): undefined => {
      this.ctx.log.log('warn', `${this.ctx.name}: CREATE_CHILD_SA ${msg.messageId} refused (${NotifyType[notifyType] ?? notifyType}): ${why}`);
      response.payloads = [notify(notifyType, data ? { data } : {})];
      return undefined;
    };
    if (this.ctx.state !== 'established' || this.successorSa) return refuse(NotifyType.TEMPORARY_FAILURE, 'the IKE_SA is being rekeyed or deleted');
    const ike = msg.payloads.some((p) => p.type === PayloadType.SA && p.proposals.some((q) => q.protocolId === ProtocolId.IKE));
    if (ike && (this.ikeRekeying || this.childStates.has('rekeying'))) return refuse(NotifyType.TEMPORARY_FAILURE, 'an exchange of ours is under way (§2.25)');
    if (ike && !this.spawn) return refuse(NotifyType.NO_ADDITIONAL_SAS, 'IKE_SA rekeying is not available here');
    if (!ike && this.ikeRekeying) return refuse(NotifyType.TEMPORARY_FAILURE, 'we are rekeying the IKE_SA (§2.25)');
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
      {
        const collision = this.childStates.is(outcome.old, 'rekeying') ? { peerPair: outcome.record, nonces: outcome.nonces } : undefined;
        if (collision) this.ctx.log.log('info', `${this.ctx.name}: CHILD_SA ${outcome.old.name}{${outcome.old.reqid}} rekey collision: the peer rekeys it too; settled by the nonces when our exchange completes (§2.8.1)`);
        this.replaceChild(outcome.old, outcome.record, false, collision);
      }
        return;
      case 'child-new':
        this.ctx.children.push(outcome.record);
        this.scheduleChildRekey(outcome.record);
        this.emit('childEstablished', this, outcome.record);
        return;
      case 'ike-rekey':
        this.adoptSuccessor(outcome.ctx);
        return;
    }
  }

  /** Initiate the rekey of this IKE SA (§1.3.2); the CHILD_SAs move to the new one. */
  rekeyIke(why = 'requested'): void {
    if (this.ctx.state !== 'established' || this.ikeRekeying || this.successorSa || !this.spawn || !this.ctx.keys) return;
    this.ikeRekeying = true;
    this.ctx.log.log('info', `${this.ctx.name}: rekeying IKE_SA (${why})`);
    const req = new IkeRekeyRequest(this.ctx);
    const send = (): void => {
      if (this.ctx.state !== 'established' || this.successorSa) {
        this.ikeRekeying = false;
        return this.sendNextRequest();
      }
      const buildFailed = (err: Error): void => {
        this.ikeRekeying = false;
        this.ctx.log.log('warn', `${this.ctx.name}: cannot rekey the IKE_SA: ${err.message}`);
      };
      this.createChildSaExchange(req, buildFailed, (r) => {
        this.ikeRekeying = false;
        if (r.status !== 'ok') {
          for (const [c, s] of this.childStates.all('retrying')) if (!s.retryTimer) this.rekeyChild(c, s.why);
          for (const [c, s] of this.childStates.all('rekeying')) if (s.want !== undefined) this.rekeyChild(c, s.want);
        }
        if (r.status === 'ok') {
          const next = this.adoptSuccessor(r.value);
          this.delete(`rekeyed, replaced by ${next.ctx.name}`, 'rekeyed');
          return;
        }
        if (r.status === 'temporary') {
          const ms = retryDelay();
          this.ctx.log.log('info', `${this.ctx.name}: IKE_SA rekey: peer answered TEMPORARY_FAILURE, retrying in ${ms} ms`);
          this.later(ms, () => this.rekeyIke('retry after TEMPORARY_FAILURE'));
          return;
        }
        this.ctx.log.log('warn', `${this.ctx.name}: IKE_SA rekey failed: ${r.status === 'failed' ? r.reason : r.status}`);
      });
    };
    // Ahead of queued CHILD rekeys: they move to the new IKE SA with their timers.
    this.enqueue(send, true);
  }

  /** Hand the CHILD_SAs (and superseded pairs awaiting their Delete) to the IKE SA that replaces this one. */
  private adoptSuccessor(ctx: IkeSaContext): IkeSa {
    const next = this.spawn!(ctx);
    this.successorSa = next;
    const wanted: Array<[ChildSaRecord, string]> = [];
    next.ctx.children.push(...this.ctx.children.splice(0));
    // One table moves: rekey timers restart there (startLifetimes), pending rekeys are asked again.
    for (const [child, state] of this.childStates.drain()) {
      switch (state.kind) {
        case 'installed':
          clearTimeout(state.rekeyTimer);
          break;
        case 'rekeying':
          clearTimeout(state.rekeyTimer);
          if (state.want !== undefined) wanted.push([child, state.want]);
          break;
        case 'retrying':
          clearTimeout(state.rekeyTimer);
          clearTimeout(state.retryTimer);
          wanted.push([child, state.why]);
          break;
        case 'superseded': {
          clearTimeout(state.switchTimer);
          const { collision: _settled, switchTimer: _stopped, ...entry } = state;
          if (!entry.switched) {
            const switchTimer = setTimeout(() => next.switchOutbound(child), RESPONDER_OUTBOUND_SWITCH_MS);
            switchTimer.unref?.();
            next.childStates.set(child, { ...entry, switchTimer });
          } else next.childStates.set(child, entry);
          break;
        }
        case 'redundant':
          clearTimeout(state.graceTimer);
          next.awaitRedundantDelete(child);
          break;
        case 'rekeyed':
          if (this.ctx.backend.querySa(child.inboundSpi, 'in')) next.childStates.set(child, state);
          break;
      }
    }
    this.ctx.log.log('info', `${this.ctx.name}: IKE_SA rekeyed: ${next.ctx.name} carries its ${next.ctx.children.length} CHILD_SA(s) now`);
    next.adoptAsRekeyed(this.ctx);
    this.emit('ikeRekeyed', this, next);
    for (const [c, why] of wanted) if (next.ctx.children.includes(c)) next.rekeyChild(c, `${why}, moved to the new IKE_SA`);
    return next;
  }

  private adoptAsRekeyed(old: IkeSaContext): void {
    this.ctx.state = 'established';
    this.ctx.establishedAt = Date.now();
    this.ctx.peerId ??= old.peerId;
    this.startKeepalives();
    this.ctx.log.log('info', `${this.ctx.name}: IKE_SA established by rekeying ${old.name}`);
    this.emit('established', this);
    this.startLifetimes();
    this.startDpd();
  }

  /** The IKE SA that replaced this one by a rekey, if any. */
  get successor(): IkeSa | undefined {
    return this.successorSa;
  }
}
