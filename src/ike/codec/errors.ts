/**
 * The errors the IKE codec raises. Decoding a datagram raises nothing but
 * these two, whatever the input:
 *
 * - {@link IkeParseError}: the octets are not a well-formed IKEv2 message (or
 *   payload chain). It carries the Notify a responder answers with (RFC 7296
 *   §2.21.1, §3.10.1): INVALID_SYNTAX, UNSUPPORTED_CRITICAL_PAYLOAD (with the
 *   payload type as notification data) or INVALID_MAJOR_VERSION. Whether that
 *   Notify is actually sent (only for requests, only when authenticated or
 *   in IKE_SA_INIT, rate-limited) is the exchange's decision, not the codec's.
 * - {@link IkeIntegrityError}: an Encrypted (SK) or Encrypted Fragment (SKF)
 *   payload does not authenticate under the given key. Such messages are
 *   dropped silently (RFC 7296 §2.21.2, RFC 7383 §2.6): no Notify.
 *
 * Encoding raises {@link IkeEncodeError} when asked to write something the
 * wire format cannot carry (a field out of range, an IPv4 traffic selector
 * with a 16-octet address, ...): a bug in the caller, not in the peer.
 */
import { NotifyType, notifyTypeName } from './notify.js';

export class IkeParseError extends Error {
  override readonly name = 'IkeParseError';
  /** The Notify Message Type a responder sends back for this error. */
  readonly notifyType: NotifyType.INVALID_SYNTAX | NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD | NotifyType.INVALID_MAJOR_VERSION;
  /**
   * Notification Data for that Notify: the one-octet payload type for
   * UNSUPPORTED_CRITICAL_PAYLOAD (RFC 7296 §3.10.1), empty otherwise.
   */
  readonly notifyData: Buffer;
  /** Offset of the offending octet in the buffer being decoded (the datagram, or an SK plaintext). */
  readonly offset: number;
  /** Payload type of the payload being decoded when the error was found, if any. */
  readonly payloadType: number | undefined;

  constructor(
    message: string,
    options: {
      offset: number;
      notifyType?: IkeParseError['notifyType'];
      payloadType?: number;
    },
  ) {
    super(message);
    this.offset = options.offset;
    this.notifyType = options.notifyType ?? NotifyType.INVALID_SYNTAX;
    this.payloadType = options.payloadType;
    this.notifyData =
      this.notifyType === NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD && options.payloadType !== undefined
        ? Buffer.from([options.payloadType & 0xff])
        : Buffer.alloc(0);
  }

  /** Short form for logs: "INVALID_SYNTAX at 40: TSi: ...". */
  describe(): string {
    return `${notifyTypeName(this.notifyType)} at ${this.offset}: ${this.message}`;
  }
}

export class IkeIntegrityError extends Error {
  override readonly name = 'IkeIntegrityError';
  /** 46 (SK) or 53 (SKF). */
  readonly payloadType: number;
  constructor(message: string, payloadType: number) {
    super(message);
    this.payloadType = payloadType;
  }
}

export class IkeEncodeError extends Error {
  override readonly name = 'IkeEncodeError';
}
