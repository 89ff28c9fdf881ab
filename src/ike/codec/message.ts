/**
 * Whole IKE messages: header + payload chain, and the Encrypted payload.
 *
 *   decodeMessage(datagram)            → { header, payloads }   (SK/SKF left opaque)
 *   decryptSk(message, datagram, aead) → the payloads inside SK
 *   encodeMessage(message)             → octets
 *   encodeMessage(message, { encrypt: { aead, iv } })
 *                                      → octets, message.payloads sealed inside an SK
 *
 * Decoding checks the header Length against the datagram, walks the chain
 * with every length bounded by its container, and raises only
 * IkeParseError (or IkeIntegrityError from decryption). Encoding fills in
 * every Next Payload, length and count field; decode → encode reproduces
 * the datagram octet for octet (reserved fields included, see context.ts).
 */
import type { AeadContext } from '../../crypto/types.js';
import { type Payload, type PayloadOf, decodePayloadChain, encodePayloadChain, payloadNumber } from './chain.js';
import { IkeParseError } from './errors.js';
import { IKE_HEADER_LENGTH, type IkeHeader, decodeHeader, encodeHeader, exchangeTypeName } from './header.js';
import { notifyTypeName } from './notify.js';
import { PayloadType, payloadTypeName } from './payload-type.js';
import { checkUint } from './reader.js';
import { buildPlaintext, decodeInner, encodeInner, encryptedPayloadLength, openEncrypted, pickIv, sealEncrypted } from './sk.js';

export interface IkeMessage {
  header: IkeHeader;
  payloads: Payload[];
}

export interface EncryptOptions {
  aead: AeadContext;
  /**
   * Explicit IV (the cipher's IV length, 8 octets for AES-GCM). It must never
   * repeat under one key; the IKE SA supplies it (a counter is ideal).
   * Absent: random octets.
   */
  iv?: Uint8Array;
  /** Padding octets before the Pad Length (default none). */
  padding?: Uint8Array;
}

export interface EncodeOptions {
  /** Seal message.payloads inside an SK payload (the message then has SK as its only payload). */
  encrypt?: EncryptOptions;
}

/** The inside of an Encrypted payload, decrypted. */
export interface DecryptedSk {
  payloads: Payload[];
  iv: Buffer;
  padding: Buffer;
}

export function decodeMessage(datagram: Uint8Array): IkeMessage {
  const buf = Buffer.from(datagram.buffer, datagram.byteOffset, datagram.byteLength);
  const { header, nextPayload, length } = decodeHeader(buf);
  if (length !== buf.length) {
    throw new IkeParseError(`IKE header: Length ${length}, but the datagram is ${buf.length} octets`, { offset: 24 });
  }
  const payloads = decodePayloadChain(buf, IKE_HEADER_LENGTH, buf.length, nextPayload, { isResponse: header.response }, false);
  return { header, payloads };
}

export function encodeMessage(message: IkeMessage, options: EncodeOptions = {}): Buffer {
  if (options.encrypt) return encodeEncrypted(message, options.encrypt);
  const chain = encodePayloadChain(message.payloads);
  const first = message.payloads[0];
  const head = encodeHeader(message.header, first ? payloadNumber(first) : PayloadType.NONE, IKE_HEADER_LENGTH + chain.length);
  return Buffer.concat([head, chain]);
}

function encodeEncrypted(message: IkeMessage, { aead, iv, padding }: EncryptOptions): Buffer {
  const plaintext = buildPlaintext(encodeInner(message.payloads), padding);
  const theIv = pickIv(aead, iv);
  const skLength = checkUint(encryptedPayloadLength(aead, plaintext.length), 16, 'SK: Payload Length');
  const first = message.payloads[0];
  const head = encodeHeader(message.header, PayloadType.SK, IKE_HEADER_LENGTH + skLength);
  const skHeader = Buffer.from([first ? payloadNumber(first) : PayloadType.NONE, 0, skLength >> 8, skLength & 0xff]);
  return sealEncrypted(Buffer.concat([head, skHeader]), theIv, plaintext, aead);
}

/**
 * Decrypts the SK payload that ends `message` (decoded from `datagram`) and
 * decodes the payloads inside. Raises IkeIntegrityError when the ICV does
 * not verify (drop silently), IkeParseError for a message without SK or
 * a malformed inside (offsets are then into the plaintext).
 */
export function decryptSk(message: IkeMessage, datagram: Uint8Array, aead: AeadContext): DecryptedSk {
  const sk = message.payloads[message.payloads.length - 1];
  if (sk?.type === PayloadType.SKF) {
    throw new TypeError('decryptSk: this message is an RFC 7383 fragment; feed it to a FragmentReassembler');
  }
  if (sk?.type !== PayloadType.SK) {
    throw new IkeParseError(`${exchangeTypeName(message.header.exchangeType)}: no Encrypted payload (SK) in the message`, {
      offset: IKE_HEADER_LENGTH,
    });
  }
  const buf = Buffer.from(datagram.buffer, datagram.byteOffset, datagram.byteLength);
  const opened = openEncrypted(buf, sk.content, aead, PayloadType.SK);
  const payloads = decodeInner(opened, sk.firstPayload, { isResponse: message.header.response });
  return { payloads, iv: opened.iv, padding: opened.padding };
}

/** decodeMessage + decryptSk: the header and the payloads inside SK. */
export function decodeEncryptedMessage(datagram: Uint8Array, aead: AeadContext): IkeMessage & DecryptedSk {
  const message = decodeMessage(datagram);
  return { header: message.header, ...decryptSk(message, datagram, aead) };
}

/** The message's payloads whose type is T. */
export function payloadsOf<T extends Payload['type']>(payloads: readonly Payload[], type: T): PayloadOf<T>[] {
  return payloads.filter((p) => p.type === type) as PayloadOf<T>[];
}

/** strongSwan-style one-line summary for logs: "IKE_AUTH request 1 [ IDi CERT N(INITIAL_CONTACT) SK ]". */
export function describeMessage(message: IkeMessage): string {
  const h = message.header;
  return `${exchangeTypeName(h.exchangeType)} ${h.response ? 'response' : 'request'} ${h.messageId} [ ${describePayloads(message.payloads)} ]`;
}

export function describePayloads(payloads: readonly Payload[]): string {
  return payloads
    .map((p) => {
      if (p.type === PayloadType.NOTIFY) return `N(${notifyTypeName(p.notifyType)})`;
      if (p.type === PayloadType.SKF) return `SKF(${p.fragmentNumber}/${p.totalFragments})`;
      return payloadTypeName(payloadNumber(p));
    })
    .join(' ');
}
