/**
 * The protection of one IKE SA's messages (RFC 7296 §3.14, RFC 5282, RFC
 * 7383): a message to send is encoded, encrypted in an SK payload under the
 * sender's keys and, when the peer supports it and it exceeds the configured
 * size, fragmented into SKF payloads; a received one is decrypted, or its
 * fragments collected until it is whole. Messages dropped here (malformed,
 * failing the ICV, rejected fragments) are counted and logged sparingly.
 */
import {
  ExchangeType,
  FragmentReassembler,
  IkeParseError,
  PayloadType,
  decryptSk,
  encodeMessage,
  fragmentMessage,
  type IkeHeader,
  type IkeMessage,
  type Payload,
} from '../codec/index.js';
import type { TaskMessage } from '../tasks/task.js';
import type { IkeSaContext } from './context.js';

export class MessageProtection {
  /** Made when the first fragment arrives (RFC 7383): most IKE SAs never see one once established. */
  private reassembler?: FragmentReassembler;
  /** Received messages dropped as malformed, unauthenticated or rejected fragments. */
  dropped = 0;

  constructor(
    private readonly ctx: IkeSaContext,
    /** NAT-T port (§2.23): messages from it carry the non-ESP marker, which counts against the size. */
    private readonly nattPort: number,
    /** A message of the peer was authenticated (DPD: the peer is alive). */
    private readonly heard: () => void,
  ) {}

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
  encode(msg: TaskMessage, response: boolean): Buffer[] {
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
    const marker = this.ctx.local.port === this.nattPort ? 4 : 0;
    return this.ctx.config.fragmentSize - ipHeader - 8 - marker;
  }

  /** The inner payloads of a received message, or undefined while fragments are missing. */
  open(datagram: Buffer, message: IkeMessage): Payload[] | undefined {
    if (message.header.exchangeType === ExchangeType.IKE_SA_INIT) return message.payloads;
    const keys = this.ctx.keys;
    if (!keys) throw new IkeParseError('encrypted message before the IKE SA has keys', { offset: 0 });
    const aead = keys.sealerFor(message.header.initiator);
    const last = message.payloads[message.payloads.length - 1];
    if (last?.type === PayloadType.SKF) {
      const r = (this.reassembler ??= new FragmentReassembler()).add(message, datagram, aead);
      if (r.status === 'complete') {
        this.heard();
        this.ctx.log.log(
          'info',
          `${this.ctx.name}: ${ExchangeType[message.header.exchangeType] ?? 'message'} ${message.header.messageId} reassembled from ${r.fragments} fragments (RFC 7383)`,
        );
        return r.payloads;
      }
      if (r.status === 'rejected') {
        if (r.error) throw r.error;
        this.dropLog(`IKE fragment rejected: ${r.reason}`);
      }
      return undefined;
    }
    if (last?.type !== PayloadType.SK)
      throw new IkeParseError(`${ExchangeType[message.header.exchangeType] ?? 'exchange'} message without an Encrypted payload`, { offset: 28 });
    const payloads = decryptSk(message, datagram, aead).payloads;
    this.heard();
    return payloads;
  }

  /** Whether `message` is whole or the last fragment of one (a retransmitted request is answered once, on it). */
  static isLastFragmentOrWhole(message: IkeMessage): boolean {
    const last = message.payloads[message.payloads.length - 1];
    return last?.type !== PayloadType.SKF || last.fragmentNumber === last.totalFragments;
  }

  /**
   * Messages dropped before (or by) the ICV check: anyone who saw our SPIs can
   * send them, so the log shows the first few and then every 100th, counted.
   */
  dropLog(what: string): void {
    this.dropped++;
    if (this.dropped <= 3 || this.dropped % 100 === 0) {
      this.ctx.log.log('warn', `${this.ctx.name}: ${what}${this.dropped > 3 ? ` (${this.dropped} dropped so far)` : ''}`);
    }
  }

  /** Forget fragments being collected (the IKE SA ends, or IKE_AUTH, fragmented or not, is done). */
  clear(): void {
    this.reassembler?.clear();
    this.reassembler = undefined;
  }
}
