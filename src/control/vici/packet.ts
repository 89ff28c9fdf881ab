/**
 * VICI packets and their transport framing (strongSwan's vici README,
 * "Transport protocol" and "Packet layer"): every packet travels as a 32-bit
 * big-endian length and that many octets; the first octet is the packet type,
 * named types carry an 8-bit-length name next, and the rest is a message
 * (./message.ts) for the types that have one.
 *
 *   CMD_REQUEST      0  name + message     CMD_RESPONSE  1  message
 *   CMD_UNKNOWN      2  —                  EVENT_REGISTER 3  name
 *   EVENT_UNREGISTER 4  name               EVENT_CONFIRM 5  —
 *   EVENT_UNKNOWN    6  —                  EVENT          7  name + message
 */
import { DEFAULT_PARSE_LIMITS, ViciParseError, decodeMessage, encodeMessage, type ViciInput, type ViciMessage, type ViciParseLimits } from './message.js';

export enum ViciPacketType {
  CMD_REQUEST = 0,
  CMD_RESPONSE = 1,
  CMD_UNKNOWN = 2,
  EVENT_REGISTER = 3,
  EVENT_UNREGISTER = 4,
  EVENT_CONFIRM = 5,
  EVENT_UNKNOWN = 6,
  EVENT = 7,
}

export type ViciPacket =
  | { readonly type: ViciPacketType.CMD_REQUEST | ViciPacketType.EVENT; readonly name: string; readonly message: ViciMessage }
  | { readonly type: ViciPacketType.CMD_RESPONSE; readonly message: ViciMessage }
  | { readonly type: ViciPacketType.EVENT_REGISTER | ViciPacketType.EVENT_UNREGISTER; readonly name: string }
  | { readonly type: ViciPacketType.CMD_UNKNOWN | ViciPacketType.EVENT_CONFIRM | ViciPacketType.EVENT_UNKNOWN };

/** The README's limit on one transport segment (the length field excluded). */
export const VICI_MAX_SEGMENT = 512 * 1024;

const NAMED = new Set<number>([ViciPacketType.CMD_REQUEST, ViciPacketType.EVENT_REGISTER, ViciPacketType.EVENT_UNREGISTER, ViciPacketType.EVENT]);
const WITH_MESSAGE = new Set<number>([ViciPacketType.CMD_REQUEST, ViciPacketType.CMD_RESPONSE, ViciPacketType.EVENT]);

/** Decode one packet (a whole transport segment, without its length field). */
export function decodePacket(segment: Buffer, limits: ViciParseLimits = DEFAULT_PARSE_LIMITS): ViciPacket {
  if (segment.length === 0) throw new ViciParseError('VICI packet: empty segment (no packet type)');
  const type = segment[0]!;
  if (type > ViciPacketType.EVENT) throw new ViciParseError(`VICI packet: unknown packet type ${type}`);
  let pos = 1;
  let name = '';
  if (NAMED.has(type)) {
    if (segment.length < 2) throw new ViciParseError(`VICI packet: ${ViciPacketType[type]} without its name`);
    const len = segment[1]!;
    pos = 2 + len;
    if (len === 0) throw new ViciParseError(`VICI packet: ${ViciPacketType[type]} with an empty name`);
    if (pos > segment.length) throw new ViciParseError(`VICI packet: ${ViciPacketType[type]} name of ${len} octets runs past the end`);
    const octets = segment.subarray(2, pos);
    if (octets.some((o) => o < 0x20 || o > 0x7e)) throw new ViciParseError(`VICI packet: ${ViciPacketType[type]} name is not printable ASCII`);
    name = octets.toString('latin1');
  }
  if (!WITH_MESSAGE.has(type)) {
    if (pos !== segment.length) throw new ViciParseError(`VICI packet: ${ViciPacketType[type]} carries ${segment.length - pos} unexpected octets`);
    return type === ViciPacketType.EVENT_REGISTER || type === ViciPacketType.EVENT_UNREGISTER
      ? { type, name }
      : { type: type as ViciPacketType.CMD_UNKNOWN | ViciPacketType.EVENT_CONFIRM | ViciPacketType.EVENT_UNKNOWN };
  }
  const message = decodeMessage(segment.subarray(pos), limits);
  return type === ViciPacketType.CMD_RESPONSE ? { type, message } : { type: type as ViciPacketType.CMD_REQUEST | ViciPacketType.EVENT, name, message };
}

/** A packet with its transport length field, ready to write. */
export function encodePacket(
  packet:
    | { type: ViciPacketType.CMD_REQUEST | ViciPacketType.EVENT; name: string; message: ViciInput }
    | { type: ViciPacketType.CMD_RESPONSE; message: ViciInput }
    | { type: ViciPacketType.EVENT_REGISTER | ViciPacketType.EVENT_UNREGISTER; name: string }
    | { type: ViciPacketType.CMD_UNKNOWN | ViciPacketType.EVENT_CONFIRM | ViciPacketType.EVENT_UNKNOWN },
): Buffer {
  const parts: Buffer[] = [Buffer.from([packet.type])];
  if ('name' in packet) {
    const n = Buffer.from(packet.name, 'latin1');
    if (n.length === 0 || n.length > 255 || n.some((o) => o < 0x20 || o > 0x7e))
      throw new RangeError(`VICI packet name ${JSON.stringify(packet.name)} is not 1–255 printable ASCII characters`);
    parts.push(Buffer.from([n.length]), n);
  }
  if ('message' in packet) parts.push(encodeMessage(packet.message));
  const body = Buffer.concat(parts);
  if (body.length > VICI_MAX_SEGMENT) throw new RangeError(`VICI packet of ${body.length} octets exceeds the ${VICI_MAX_SEGMENT}-octet segment limit`);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
}

/**
 * Cuts a byte stream into transport segments. A length of 0 or above
 * `maxSegment` cannot be recovered from (the framing is lost): `push` throws a
 * ViciParseError and the connection should end.
 */
export class ViciFrameReader {
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly maxSegment = VICI_MAX_SEGMENT) {}

  /** Octets received and not yet part of a whole segment. */
  get buffered(): number {
    return this.pending.length;
  }

  push(chunk: Buffer): Buffer[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const out: Buffer[] = [];
    while (this.pending.length >= 4) {
      const len = this.pending.readUInt32BE(0);
      if (len === 0) throw new ViciParseError('VICI transport: segment of length 0');
      if (len > this.maxSegment) throw new ViciParseError(`VICI transport: segment of ${len} octets exceeds the limit of ${this.maxSegment}`);
      if (this.pending.length < 4 + len) break;
      out.push(this.pending.subarray(4, 4 + len));
      this.pending = this.pending.subarray(4 + len);
    }
    return out;
  }
}
