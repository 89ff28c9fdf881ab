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
import { Retransmitter, RequestWindow, ResponseWindow, type RetransmitSettings } from '../exchange/index.js';
import { IkeSaContext, type ChildSaRecord } from './context.js';

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

export interface IkeSaEvents {
  established(sa: IkeSa): void;
  /** The IKE SA is gone (deleted, failed, timed out); `reason` is the operator's log line. */
  destroyed(sa: IkeSa, reason: string): void;
  childEstablished(sa: IkeSa, child: ChildSaRecord): void;
  /** A CHILD_SA could not be negotiated; the IKE SA stays up. */
  childFailed(sa: IkeSa, name: string, reason: string): void;
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
  private readonly listeners: Listeners = { established: [], destroyed: [], childEstablished: [], childFailed: [] };

  constructor(
    readonly ctx: IkeSaContext,
    private readonly io: IkeSaIo,
    private readonly retransmit: Partial<RetransmitSettings> = {},
  ) {
    const tasks = (): Task[] => [
      new IkeInitTask(ctx),
      new IkeNatdTask(ctx),
      new IkeCertPreTask(ctx),
      new IkeAuthTask(ctx),
      ...(ctx.originalInitiator ? ctx.config.children.slice(0, 1) : [undefined]).map((c) => new ChildCreateTask(ctx, c)),
    ];
    if (ctx.originalInitiator) this.initiatorTasks = tasks();
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
    if (this.initiatorTasks.length === 0) return;
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
        this.destroy(`peer ${this.ctx.remote.address} did not answer ${name} request ${msg.messageId} after ${r.retransmits} retransmits (${(r.elapsedMs / 1000).toFixed(1)} s)`),
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
        this.ctx.log.log('warn', `${this.ctx.name}: message ${message.header.messageId} failed integrity check, dropped`);
        return;
      }
      if (err instanceof IkeParseError) {
        this.ctx.log.log('warn', `${this.ctx.name}: malformed message ${message.header.messageId} dropped: ${err.message}`);
        return;
      }
      throw err;
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
        this.ctx.log.log('info', `${this.ctx.name}: ${ExchangeType[message.header.exchangeType] ?? 'message'} ${message.header.messageId} reassembled from ${r.fragments} fragments (RFC 7383)`);
        return r.payloads;
      }
      if (r.status === 'rejected') {
        if (r.error) throw r.error;
        this.ctx.log.log('warn', `${this.ctx.name}: IKE fragment rejected: ${r.reason}`);
      }
      return undefined;
    }
    if (last?.type !== PayloadType.SK) throw new IkeParseError(`${ExchangeType[message.header.exchangeType] ?? 'exchange'} message without an Encrypted payload`, { offset: 28 });
    return decryptSk(message, datagram, aead).payloads;
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
      this.sendNextRequest();
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
    let fatal: string | undefined;
    if (exchangeType === ExchangeType.IKE_SA_INIT || exchangeType === ExchangeType.IKE_AUTH) {
      if ((exchangeType === ExchangeType.IKE_SA_INIT) !== !this.ctx.keys || this.ctx.originalInitiator) {
        this.ctx.log.log('warn', `${this.ctx.name}: unexpected ${ExchangeType[exchangeType]} request dropped`);
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
        fatal = err.message;
        this.ctx.log.log('warn', `${this.ctx.name}: ${err.message}`);
        response.payloads = err.notify !== undefined ? [notify(err.notify, err.notifyData ? { data: err.notifyData } : {})] : [];
      }
    } else if (exchangeType === ExchangeType.INFORMATIONAL) {
      fatal = this.processInformational(msg, response);
    } else {
      // CREATE_CHILD_SA arrives with the SA lifecycle work; until then refuse cleanly (§2.21.3 style).
      response.payloads.push(notify(NotifyType.NO_ADDITIONAL_SAS));
    }
    const datagrams = this.encode(response, true);
    if (exchangeType === ExchangeType.IKE_SA_INIT) this.ctx.initResponse = datagrams[0];
    this.responses.respond(id, datagrams);
    this.io.send(local, remote, datagrams);
    if (fatal !== undefined) return this.destroy(fatal);
    if (exchangeType === ExchangeType.IKE_AUTH) this.establish();
  }

  private isLastFragmentOrWhole(message: IkeMessage): boolean {
    const last = message.payloads[message.payloads.length - 1];
    return last?.type !== PayloadType.SKF || last.fragmentNumber === last.totalFragments;
  }

  /** INFORMATIONAL requests (§1.4): Delete of the IKE SA, liveness checks, status notifies. Returns a reason to destroy. */
  private processInformational(msg: TaskMessage, response: TaskMessage): string | undefined {
    for (const p of msg.payloads) {
      if (p.type === PayloadType.DELETE && p.protocolId === ProtocolId.IKE) return `peer deleted the IKE_SA`;
    }
    for (const p of msg.payloads) {
      if (p.type === PayloadType.NOTIFY && p.notifyType === NotifyType.AUTHENTICATION_FAILED) return 'peer reported AUTHENTICATION_FAILED';
    }
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
      const i = this.ctx.children.findIndex((c) => c.outboundSpi === outbound);
      if (i < 0) continue;
      const [child] = this.ctx.children.splice(i, 1);
      this.removeChild(child!);
      const inbound = Buffer.alloc(4);
      inbound.writeUInt32BE(child!.inboundSpi);
      gone.push(inbound);
      this.ctx.log.log('info', `${this.ctx.name}: CHILD_SA ${child!.name}{${child!.reqid}} deleted by the peer (SPIs ${child!.inboundSpi.toString(16).padStart(8, '0')}_i ${outbound.toString(16).padStart(8, '0')}_o)`);
    }
    return gone;
  }

  private removeChild(child: ChildSaRecord): void {
    this.ctx.backend.deleteSa(child.inboundSpi, 'in');
    this.ctx.backend.deleteSa(child.outboundSpi, 'out');
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
  delete(reason = 'deleted by request'): void {
    if (this.ctx.state === 'destroyed') return;
    if (!this.ctx.keys || this.ctx.state !== 'established') return this.destroy(reason);
    this.ctx.state = 'deleting';
    this.initiatorTasks = [];
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
      this.destroy(reason),
    );
  }

  private fail(err: unknown): void {
    if (err instanceof ExchangeFailure) {
      this.ctx.log.log('warn', `${this.ctx.name}: ${err.message}`);
      return this.destroy(err.message);
    }
    throw err;
  }

  /** Tear down: stop timers, remove CHILD SAs from the datapath, wipe keys. */
  destroy(reason: string): void {
    if (this.ctx.state === 'destroyed') return;
    this.pending?.retransmitter.cancel();
    this.requests.clear();
    this.pending = undefined;
    clearInterval(this.keepaliveTimer);
    for (const child of this.ctx.children.splice(0)) this.removeChild(child);
    this.ctx.keys?.destroy();
    this.ctx.state = 'destroyed';
    this.ctx.log.log('info', `${this.ctx.name}: IKE_SA destroyed: ${reason}`);
    this.emit('destroyed', this, reason);
  }
}
