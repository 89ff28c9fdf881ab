/**
 * One IKE SA's two message windows (RFC 7296 §2.1–§2.3): our requests, each
 * retransmitted until its response arrives (window 1), and the peer's
 * requests with our cached responses, so that a retransmitted request is
 * answered again from the cache and never processed twice; and the exchanges
 * we start once established, queued until the window is free. What the
 * messages mean is the exchange engine's (./ike-sa.ts) and its tasks'.
 */
import { ExchangeType, type IkeMessage, type Payload } from '../codec/index.js';
import type { Endpoint } from '../net/udp.js';
import type { Task, TaskMessage } from '../tasks/task.js';
import { Retransmitter, RequestWindow, ResponseWindow, type RetransmitSettings } from '../exchange/index.js';
import type { IkeSaContext } from './context.js';
import { MessageProtection } from './protection.js';

/** A request of ours waiting for its response. */
export interface PendingRequest {
  messageId: number;
  exchangeType: number;
  tasks: Task[];
  retransmitter: Retransmitter;
  onResponse?: (msg: TaskMessage) => void;
}

export interface WindowsIo {
  send(local: Endpoint, remote: Endpoint, datagrams: Buffer[]): void;
}

export class ExchangeWindows {
  /** Our requests (§2.3; window 1). */
  private requests = new RequestWindow<PendingRequest>();
  /** The peer's requests and our cached responses (§2.1). */
  private readonly responses = new ResponseWindow();
  /** Our request outstanding, if any. */
  pending?: PendingRequest;
  /** Exchanges we initiate once the IKE SA is established (CHILD rekeys, Deletes, IKE rekey), one at a time (window 1). */
  private queued: Array<() => void> = [];

  constructor(
    private readonly ctx: IkeSaContext,
    private readonly io: WindowsIo,
    private readonly protection: MessageProtection,
    private readonly retransmit: Partial<RetransmitSettings>,
    /** The peer did not answer a request after all retransmits (`reason` is the log line). */
    private readonly giveUp: (reason: string) => void,
  ) {}

  /** The message ID our next request gets. */
  get nextId(): number {
    return this.requests.nextId;
  }

  /** Queue an exchange of ours (`first`: ahead of the others); the caller lets the next one go when the window is free. */
  queue(job: () => void, first = false): void {
    if (first) this.queued.unshift(job);
    else this.queued.push(job);
  }

  /** Start the next queued exchange, if any. */
  runQueued(): void {
    this.queued.shift()?.();
  }

  /** Forget the queued exchanges (the IKE SA is deleted or retired). */
  dropQueued(): void {
    this.queued = [];
  }

  /** No request outstanding and none queued. */
  /** The message ID the peer's next request must carry (§2.3). */
  get expectedPeerId(): number {
    return this.responses.expectedId;
  }

  get idle(): boolean {
    return !this.pending && this.queued.length === 0;
  }

  /** Encode and send a request of ours, retransmitted until answered; throws what encoding throws. */
  send(msg: TaskMessage, tasks: Task[], onResponse?: (msg: TaskMessage) => void): void {
    const datagrams = this.protection.encode(msg, false);
    if (msg.exchangeType === ExchangeType.IKE_SA_INIT) this.ctx.initRequest = datagrams[0];
    const name = ExchangeType[msg.exchangeType] ?? String(msg.exchangeType);
    const retransmitter = new Retransmitter({
      settings: this.retransmit,
      send: (attempt) => {
        if (attempt > 0) this.ctx.log.log('info', `${this.ctx.name}: retransmit ${attempt} of ${name} request ${msg.messageId}`);
        this.io.send(this.ctx.local, this.ctx.remote, datagrams);
      },
      giveUp: (r) =>
        this.giveUp(
          `peer ${this.ctx.remote.address} did not answer ${name} request ${msg.messageId} after ${r.retransmits} retransmits (${(r.elapsedMs / 1000).toFixed(1)} s)`,
        ),
    });
    const pending: PendingRequest = { messageId: msg.messageId, exchangeType: msg.exchangeType, tasks, retransmitter, ...(onResponse ? { onResponse } : {}) };
    this.requests.allocate(pending);
    this.pending = pending;
    retransmitter.start();
  }

  /** Send a request once, expecting no answer (fire and forget; best effort: a failure to encode is ignored). */
  sendOnce(msg: TaskMessage): void {
    try {
      this.io.send(this.ctx.local, this.ctx.remote, this.protection.encode(msg, false));
    } catch {
      /* best effort */
    }
  }

  /** The response to our outstanding request, decrypted, with that request (no longer outstanding); undefined for anything else (§2.3). */
  takeResponse(datagram: Buffer, message: IkeMessage): { request: PendingRequest; payloads: Payload[] } | undefined {
    const p = this.pending;
    if (!p || message.header.messageId !== p.messageId) return undefined; // not the response we wait for
    if (p.exchangeType === ExchangeType.IKE_SA_INIT && this.ctx.spiR.equals(Buffer.alloc(8))) {
      // The responder's SPI arrives with its first response; keys depend on it.
      this.ctx.spiR = Buffer.from(message.header.spiR);
    }
    const payloads = this.protection.open(datagram, message);
    if (!payloads) return undefined;
    p.retransmitter.cancel();
    this.requests.response(p.messageId);
    this.pending = undefined;
    return { request: p, payloads };
  }

  /** COOKIE / INVALID_KE_PAYLOAD: IKE_SA_INIT starts again with message ID 0. */
  restart(): void {
    this.requests = new RequestWindow<PendingRequest>();
  }

  /** Stop retransmitting and forget our requests, sent and queued (the IKE SA ends). */
  clear(): void {
    this.queued = [];
    this.pending?.retransmitter.cancel();
    this.requests.clear();
    this.pending = undefined;
  }

  /**
   * A request of the peer: a retransmission is answered from the cache (on
   * its last fragment) and yields nothing, as does one outside the window
   * (§2.3) or one that does not decrypt; a new one yields its payloads.
   */
  openRequest(datagram: Buffer, message: IkeMessage, local: Endpoint, remote: Endpoint): Payload[] | undefined {
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
      return undefined;
    }
    if (id < this.responses.expectedId || id >= this.responses.expectedId + this.responses.windowSize) return undefined; // §2.3
    const payloads = this.protection.open(datagram, message);
    if (!payloads) return undefined;
    if (this.responses.receive(id).action !== 'process') return undefined;
    return payloads;
  }

  /** Encode, cache and send our response to the peer's request. */
  respond(response: TaskMessage, local: Endpoint, remote: Endpoint): void {
    const datagrams = this.protection.encode(response, true);
    if (response.exchangeType === ExchangeType.IKE_SA_INIT) this.ctx.initResponse = datagrams[0];
    this.responses.respond(response.messageId, datagrams);
    this.io.send(local, remote, datagrams);
  }
}
