/**
 * Configuration payload, CP (RFC 7296 §3.15).
 *
 * Payload body
 *   off len field
 *   0   1   CFG Type      1 CFG_REQUEST, 2 CFG_REPLY, 3 CFG_SET, 4 CFG_ACK
 *   1   3   RESERVED
 *   4   …   Configuration Attributes
 *
 * Configuration attribute (§3.15.1)
 *   0   2   R (1 bit, reserved) ‖ Attribute Type (15 bits)
 *   2   2   Length
 *   4   …   Value
 *
 * Attribute values stay opaque here (their lengths are per type and a
 * request may send them empty); the code that assigns or uses addresses
 * interprets them.
 */
import type { GenericHeaderFields } from '../context.js';
import { PayloadType } from '../payload-type.js';
import { type Reader, type Writer, checkLength, checkUint } from '../reader.js';

export enum CfgType {
  CFG_REQUEST = 1,
  CFG_REPLY = 2,
  CFG_SET = 3,
  CFG_ACK = 4,
}

/** IANA "IKEv2 Configuration Payload Attribute Types" (the RFC 7296 ones and a few common extensions). */
export enum ConfigAttributeType {
  INTERNAL_IP4_ADDRESS = 1,
  INTERNAL_IP4_NETMASK = 2,
  INTERNAL_IP4_DNS = 3,
  INTERNAL_IP4_NBNS = 4,
  INTERNAL_IP4_DHCP = 6,
  APPLICATION_VERSION = 7,
  INTERNAL_IP6_ADDRESS = 8,
  INTERNAL_IP6_DNS = 10,
  INTERNAL_IP6_DHCP = 12,
  INTERNAL_IP4_SUBNET = 13,
  SUPPORTED_ATTRIBUTES = 14,
  INTERNAL_IP6_SUBNET = 15,
  /** RFC 5739 */
  MIP6_HOME_PREFIX = 16,
  INTERNAL_IP6_LINK = 17,
  INTERNAL_IP6_PREFIX = 18,
  /** RFC 8598 */
  INTERNAL_DNS_DOMAIN = 25,
  INTERNAL_DNSSEC_TA = 26,
}

export interface ConfigAttribute {
  type: number;
  value: Buffer;
  /** The R bit as received, only when set. */
  reserved?: number;
}

export interface CpPayload extends GenericHeaderFields {
  type: PayloadType.CP;
  cfgType: number;
  attributes: ConfigAttribute[];
  /** RESERVED (3 octets) as received, only when non-zero. */
  reserved?: number;
}

export function decodeCpBody(r: Reader): CpPayload {
  const cfgType = r.u8('CFG Type');
  const reserved = (r.u8('RESERVED') << 16) | r.u16('RESERVED');
  const attributes: ConfigAttribute[] = [];
  while (!r.atEnd()) {
    const word = r.u16('attribute type');
    const length = r.u16('attribute length');
    const a: ConfigAttribute = { type: word & 0x7fff, value: r.bytes(length, `attribute ${word & 0x7fff} value`) };
    if (word & 0x8000) a.reserved = 1;
    attributes.push(a);
  }
  const p: CpPayload = { type: PayloadType.CP, cfgType, attributes };
  if (reserved !== 0) p.reserved = reserved;
  return p;
}

export function encodeCpBody(p: CpPayload, w: Writer): void {
  w.u8(checkUint(p.cfgType, 8, 'CP: CFG Type')).u24(checkUint(p.reserved ?? 0, 24, 'CP: RESERVED'));
  for (const a of p.attributes) {
    const r = checkUint(a.reserved ?? 0, 1, 'CP: attribute R bit');
    w.u16((r << 15) | checkUint(a.type, 15, 'CP: Attribute Type'))
      .u16(checkLength(a.value, 0, 0xffff, 'CP: attribute value').length)
      .bytes(a.value);
  }
}
