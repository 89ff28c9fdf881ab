/**
 * IKE header (RFC 7296 §3.1) and exchange types.
 *
 *   off len field
 *   0   8   IKE SA Initiator's SPI
 *   8   8   IKE SA Responder's SPI   (zero in the first IKE_SA_INIT request)
 *   16  1   Next Payload
 *   17  1   MjVer (4 bits) ‖ MnVer (4 bits)   2 ‖ 0
 *   18  1   Exchange Type
 *   19  1   Flags: X X R V I X X X   (R 0x20 Response, V 0x10 Version, I 0x08 Initiator)
 *   20  4   Message ID
 *   24  4   Length of the whole message, header included
 *
 * A major version other than 2 is rejected before anything else is read
 * (INVALID_MAJOR_VERSION, §2.5: the rest may not be IKEv2 at all). The
 * minor version and the X flag bits "MUST be sent as zero and ignored on
 * receipt"; the decoder keeps non-zero values (see context.ts).
 */
import { IkeEncodeError, IkeParseError } from './errors.js';
import { NotifyType } from './notify.js';
import { checkLength, checkUint } from './reader.js';

export const IKE_HEADER_LENGTH = 28;
export const IKE_MAJOR_VERSION = 2;

/** IANA "IKEv2 Exchange Types". */
export enum ExchangeType {
  IKE_SA_INIT = 34,
  IKE_AUTH = 35,
  CREATE_CHILD_SA = 36,
  INFORMATIONAL = 37,
  /** RFC 5723 */
  IKE_SESSION_RESUME = 38,
  /** RFC 9242 */
  IKE_INTERMEDIATE = 43,
  /** RFC 9370 */
  IKE_FOLLOWUP_KE = 44,
}

export const FLAG_RESPONSE = 0x20;
export const FLAG_VERSION = 0x10;
export const FLAG_INITIATOR = 0x08;
const KNOWN_FLAGS = FLAG_RESPONSE | FLAG_VERSION | FLAG_INITIATOR;

export interface IkeHeader {
  /** IKE SA Initiator's SPI, 8 octets. */
  spiI: Buffer;
  /** IKE SA Responder's SPI, 8 octets (zero in the first IKE_SA_INIT request). */
  spiR: Buffer;
  exchangeType: number;
  /** I: set in messages sent by the original initiator of the IKE SA. */
  initiator: boolean;
  /** R: set in responses. */
  response: boolean;
  /** V: the sender can speak a higher major version. */
  higherVersion: boolean;
  messageId: number;
  /** MnVer as received, only when non-zero. */
  minorVersion?: number;
  /** The five X flag bits as received (in place, e.g. 0x01), only when non-zero. */
  reservedFlags?: number;
}

export interface DecodedHeader {
  header: IkeHeader;
  /** Next Payload: type of the first payload. */
  nextPayload: number;
  /** The Length field (equal to the datagram length once decodeMessage has checked it). */
  length: number;
}

/** Name of an exchange type ("IKE_AUTH") or "EXCHANGE_<n>". */
export function exchangeTypeName(type: number): string {
  return ExchangeType[type] ?? `EXCHANGE_${type}`;
}

/**
 * Reads the fixed header. Raises IkeParseError for a datagram shorter than
 * 28 octets (INVALID_SYNTAX) or a major version other than 2
 * (INVALID_MAJOR_VERSION). Does not compare Length with the datagram: that
 * is decodeMessage's job, so callers can read SPIs and Message ID from a
 * message whose body is broken.
 */
export function decodeHeader(datagram: Uint8Array): DecodedHeader {
  const buf = Buffer.from(datagram.buffer, datagram.byteOffset, datagram.byteLength);
  if (buf.length < IKE_HEADER_LENGTH) {
    throw new IkeParseError(`IKE header: ${buf.length} octets, the header alone is ${IKE_HEADER_LENGTH}`, { offset: 0 });
  }
  const version = buf[17]!;
  const major = version >> 4;
  if (major !== IKE_MAJOR_VERSION) {
    throw new IkeParseError(`IKE header: major version ${major}, tunsec speaks ${IKE_MAJOR_VERSION}`, {
      offset: 17,
      notifyType: NotifyType.INVALID_MAJOR_VERSION,
    });
  }
  const flags = buf[19]!;
  const header: IkeHeader = {
    spiI: Buffer.from(buf.subarray(0, 8)),
    spiR: Buffer.from(buf.subarray(8, 16)),
    exchangeType: buf[18]!,
    initiator: (flags & FLAG_INITIATOR) !== 0,
    response: (flags & FLAG_RESPONSE) !== 0,
    higherVersion: (flags & FLAG_VERSION) !== 0,
    messageId: buf.readUInt32BE(20),
  };
  if ((version & 0x0f) !== 0) header.minorVersion = version & 0x0f;
  if ((flags & ~KNOWN_FLAGS) !== 0) header.reservedFlags = flags & ~KNOWN_FLAGS;
  return { header, nextPayload: buf[16]!, length: buf.readUInt32BE(24) };
}

export function encodeHeader(header: IkeHeader, nextPayload: number, length: number): Buffer {
  const out = Buffer.alloc(IKE_HEADER_LENGTH);
  checkLength(header.spiI, 8, 8, 'IKE header: SPIi').forEach((b, i) => (out[i] = b));
  checkLength(header.spiR, 8, 8, 'IKE header: SPIr').forEach((b, i) => (out[8 + i] = b));
  out[16] = checkUint(nextPayload, 8, 'IKE header: Next Payload');
  out[17] = (IKE_MAJOR_VERSION << 4) | checkUint(header.minorVersion ?? 0, 4, 'IKE header: minor version');
  out[18] = checkUint(header.exchangeType, 8, 'IKE header: Exchange Type');
  const reserved = checkUint(header.reservedFlags ?? 0, 8, 'IKE header: reserved flags');
  if (reserved & KNOWN_FLAGS) throw new IkeEncodeError('IKE header: reservedFlags overlaps the R, V and I bits');
  out[19] = (header.response ? FLAG_RESPONSE : 0) | (header.higherVersion ? FLAG_VERSION : 0) | (header.initiator ? FLAG_INITIATOR : 0) | reserved;
  out.writeUInt32BE(checkUint(header.messageId, 32, 'IKE header: Message ID'), 20);
  out.writeUInt32BE(checkUint(length, 32, 'IKE header: Length'), 24);
  return out;
}
