/**
 * The payload chain (RFC 7296 §3.2): every payload starts with the generic
 * payload header, and each header names the type of the payload after it.
 *
 * Generic payload header
 *   off len field
 *   0   1   Next Payload
 *   1   1   C (Critical, 1 bit) ‖ RESERVED (7 bits)
 *   2   2   Payload Length (header included, ≥ 4)
 *
 * Unknown payload types: with the Critical bit set the message is rejected
 * with UNSUPPORTED_CRITICAL_PAYLOAD (its Notification Data is the payload
 * type); without it the payload is skipped by the protocol but kept here,
 * raw, so re-encoding is exact.
 *
 * SK and SKF must be the last payload of a message (§3.14, RFC 7383 §2.5);
 * their Next Payload field names the first payload *inside*. Neither may
 * appear inside an SK plaintext.
 */
import type { DecodeContext, GenericHeaderFields } from './context.js';
import { IkeEncodeError, IkeParseError } from './errors.js';
import { NotifyType } from './notify.js';
import { PayloadType, isKnownPayloadType, payloadTypeName } from './payload-type.js';
import { Reader, Writer, checkUint } from './reader.js';
import { type AuthPayload, decodeAuthBody, encodeAuthBody } from './payloads/auth.js';
import { type CertPayload, type CertReqPayload, decodeCertBody, decodeCertReqBody, encodeCertBody, encodeCertReqBody } from './payloads/cert.js';
import { type CpPayload, decodeCpBody, encodeCpBody } from './payloads/cp.js';
import { type DeletePayload, decodeDeleteBody, encodeDeleteBody } from './payloads/delete.js';
import { type EapPayload, decodeEapBody, encodeEapBody } from './payloads/eap.js';
import { type EncryptedFragmentPayload, type EncryptedPayload, decodeSkBody, decodeSkfBody, encodeSkBody, encodeSkfBody } from './payloads/encrypted.js';
import { type IdPayload, decodeIdBody, encodeIdBody } from './payloads/id.js';
import { type KePayload, decodeKeBody, encodeKeBody } from './payloads/ke.js';
import { type NoncePayload, decodeNonceBody, encodeNonceBody } from './payloads/nonce.js';
import { type NotifyPayload, decodeNotifyBody, encodeNotifyBody } from './payloads/notify.js';
import { type SaPayload, decodeSaBody, encodeSaBody } from './payloads/sa.js';
import { type TsPayload, decodeTsBody, encodeTsBody } from './payloads/ts.js';
import { type VendorIdPayload, decodeVendorIdBody, encodeVendorIdBody } from './payloads/vendor.js';
import { plural } from '../../util/format.js';

export const GENERIC_HEADER_LENGTH = 4;
const CRITICAL = 0x80;

/** A payload of a type the codec does not parse (never critical once decoded: those are rejected). */
export interface UnknownPayload extends GenericHeaderFields {
  type: 'unknown';
  payloadType: number;
  body: Buffer;
}

/** Every payload, discriminated on `type`. */
export type Payload =
  | SaPayload
  | KePayload
  | IdPayload
  | CertPayload
  | CertReqPayload
  | AuthPayload
  | NoncePayload
  | NotifyPayload
  | DeletePayload
  | VendorIdPayload
  | TsPayload
  | EncryptedPayload
  | EncryptedFragmentPayload
  | CpPayload
  | EapPayload
  | UnknownPayload;

type SelectPayload<P, T> = P extends { type: infer U } ? (T extends U ? P : never) : never;

/** The payload interface whose `type` admits T (PayloadOf<PayloadType.TSi> is TsPayload). */
export type PayloadOf<T extends Payload['type']> = SelectPayload<Payload, T>;

/** The Payload Type number on the wire. */
export function payloadNumber(p: Payload): number {
  return p.type === 'unknown' ? p.payloadType : p.type;
}

/**
 * Decodes the payloads in buf[start, end) starting with type `first`.
 * `inEncrypted`: decoding an SK plaintext, where SK and SKF may not appear.
 */
export function decodePayloadChain(buf: Buffer, start: number, end: number, first: number, ctx: DecodeContext, inEncrypted: boolean): Payload[] {
  const payloads: Payload[] = [];
  let pos = start;
  let type = first;
  while (type !== PayloadType.NONE) {
    const name = payloadTypeName(type);
    if (end - pos < GENERIC_HEADER_LENGTH) {
      throw new IkeParseError(`${name}: the chain announces this payload but only ${plural(end - pos, 'octet')} are left`, { offset: pos, payloadType: type });
    }
    const next = buf[pos]!;
    const flags = buf[pos + 1]!;
    const length = buf.readUInt16BE(pos + 2);
    if (length < GENERIC_HEADER_LENGTH || length > end - pos) {
      throw new IkeParseError(
        `${name}: Payload Length ${length}, but ${length < GENERIC_HEADER_LENGTH ? 'the generic header alone is 4' : `only ${end - pos} octets are left`}`,
        { offset: pos + 2, payloadType: type },
      );
    }
    const r = new Reader(buf, pos + GENERIC_HEADER_LENGTH, pos + length, name, type);
    let payload: Payload;
    let lastPayload = false;
    if (!isKnownPayloadType(type)) {
      if (flags & CRITICAL) {
        throw new IkeParseError(`${name}: unsupported payload type ${type} with the Critical bit set`, {
          offset: pos,
          payloadType: type,
          notifyType: NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD,
        });
      }
      payload = { type: 'unknown', payloadType: type, body: r.rest() };
    } else if (type === PayloadType.SK || type === PayloadType.SKF) {
      if (inEncrypted) r.fail('an Encrypted payload inside an Encrypted payload', pos);
      payload = type === PayloadType.SK ? decodeSkBody(r, next) : decodeSkfBody(r, next);
      lastPayload = true;
    } else {
      payload = decodeBody(r, type, ctx);
      r.expectEnd('the payload body');
    }
    if (flags & CRITICAL) payload.critical = true;
    if (flags & ~CRITICAL) payload.headerReserved = flags & ~CRITICAL;
    payloads.push(payload);
    pos += length;
    if (lastPayload) {
      if (pos !== end) {
        throw new IkeParseError(`${name}: must be the last payload, but ${end - pos} octets follow it`, {
          offset: pos,
          payloadType: type,
        });
      }
      return payloads;
    }
    type = next;
  }
  if (pos !== end) {
    throw new IkeParseError(`${end - pos} octets after the last payload of the chain`, { offset: pos });
  }
  return payloads;
}

function decodeBody(r: Reader, type: Exclude<PayloadType, PayloadType.NONE | PayloadType.SK | PayloadType.SKF>, ctx: DecodeContext): Payload {
  switch (type) {
    case PayloadType.SA:
      return decodeSaBody(r, ctx);
    case PayloadType.KE:
      return decodeKeBody(r);
    case PayloadType.IDi:
    case PayloadType.IDr:
      return decodeIdBody(r, type);
    case PayloadType.CERT:
      return decodeCertBody(r);
    case PayloadType.CERTREQ:
      return decodeCertReqBody(r);
    case PayloadType.AUTH:
      return decodeAuthBody(r);
    case PayloadType.NONCE:
      return decodeNonceBody(r);
    case PayloadType.NOTIFY:
      return decodeNotifyBody(r);
    case PayloadType.DELETE:
      return decodeDeleteBody(r);
    case PayloadType.VENDOR_ID:
      return decodeVendorIdBody(r);
    case PayloadType.TSi:
    case PayloadType.TSr:
      return decodeTsBody(r, type);
    case PayloadType.CP:
      return decodeCpBody(r);
    case PayloadType.EAP:
      return decodeEapBody(r);
  }
}

function encodeBody(p: Payload, w: Writer): void {
  switch (p.type) {
    case PayloadType.SA:
      return encodeSaBody(p, w);
    case PayloadType.KE:
      return encodeKeBody(p, w);
    case PayloadType.IDi:
    case PayloadType.IDr:
      encodeIdBody(p, w);
      return;
    case PayloadType.CERT:
      return encodeCertBody(p, w);
    case PayloadType.CERTREQ:
      return encodeCertReqBody(p, w);
    case PayloadType.AUTH:
      return encodeAuthBody(p, w);
    case PayloadType.NONCE:
      return encodeNonceBody(p, w);
    case PayloadType.NOTIFY:
      return encodeNotifyBody(p, w);
    case PayloadType.DELETE:
      return encodeDeleteBody(p, w);
    case PayloadType.VENDOR_ID:
      return encodeVendorIdBody(p, w);
    case PayloadType.TSi:
    case PayloadType.TSr:
      return encodeTsBody(p, w);
    case PayloadType.SK:
      return encodeSkBody(p, w);
    case PayloadType.SKF:
      return encodeSkfBody(p, w);
    case PayloadType.CP:
      return encodeCpBody(p, w);
    case PayloadType.EAP:
      return encodeEapBody(p, w);
    case 'unknown':
      if (isKnownPayloadType(p.payloadType) || p.payloadType === PayloadType.NONE) {
        throw new IkeEncodeError(`unknown payload: type ${p.payloadType} is one the codec parses, build it as such`);
      }
      w.bytes(p.body);
      return;
  }
}

/** Generic payload header ‖ body of one payload, with `next` as its Next Payload. */
export function encodePayload(p: Payload, next: number): Buffer {
  const body = new Writer();
  encodeBody(p, body);
  const bytes = body.finish();
  const headerReserved = checkUint(p.headerReserved ?? 0, 7, `${payloadTypeName(payloadNumber(p))}: header RESERVED`);
  const w = new Writer();
  w.u8(checkUint(next, 8, 'Next Payload'))
    .u8((p.critical ? CRITICAL : 0) | headerReserved)
    .u16(checkUint(GENERIC_HEADER_LENGTH + bytes.length, 16, `${payloadTypeName(payloadNumber(p))}: Payload Length`))
    .bytes(bytes);
  return w.finish();
}

/**
 * The octets of a payload chain, Next Payload fields filled in. An SK or
 * SKF payload must come last and carries its own `firstPayload`; with
 * `inEncrypted` (building an SK plaintext) they are refused.
 */
export function encodePayloadChain(payloads: readonly Payload[], inEncrypted = false): Buffer {
  const parts: Buffer[] = [];
  payloads.forEach((p, i) => {
    const isLast = i === payloads.length - 1;
    let next: number;
    if (p.type === PayloadType.SK || p.type === PayloadType.SKF) {
      if (inEncrypted) throw new IkeEncodeError(`${payloadTypeName(p.type)} cannot be inside an Encrypted payload`);
      if (!isLast) throw new IkeEncodeError(`${payloadTypeName(p.type)} must be the last payload of a message`);
      next = p.firstPayload;
    } else {
      next = isLast ? PayloadType.NONE : payloadNumber(payloads[i + 1]!);
    }
    parts.push(encodePayload(p, next));
  });
  return Buffer.concat(parts);
}
