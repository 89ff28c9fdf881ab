/**
 * Identification payloads, IDi and IDr (RFC 7296 §3.5).
 *
 *   off len field
 *   0   1   ID Type
 *   1   3   RESERVED
 *   4   …   Identification Data
 *
 * ID_IPV4_ADDR data is 4 octets and ID_IPV6_ADDR 16 (checked); the other
 * types are opaque to the codec. The AUTH payload (§2.15) signs the body of
 * this payload (ID Type ‖ RESERVED ‖ data): {@link encodeIdBody} gives it.
 *
 * Helpers turn identities into the text operators read and write
 * (strongSwan's conventions): "10.0.0.1", "fd00::1", "moon.example.org" or
 * "@moon.example.org" (FQDN), "user@example.org" (RFC822),
 * "C=CH, O=Example, CN=moon" (DN), "@#0123abcd" (KEY_ID), "%null" (ID_NULL).
 * Reading and printing the types an IKE identity can have is src/pki's
 * (`parseIdentity`, `identityToString`); the codec adds ID_NULL and a
 * fallback for data that is no valid identity.
 */
import type { GenericHeaderFields } from '../context.js';
import { PayloadType } from '../payload-type.js';
import { Writer, type Reader, checkUint } from '../reader.js';
import { IkeEncodeError } from '../errors.js';
import { formatIp, parseIp } from '../../../util/ip.js';
import { PkiError } from '../../../pki/errors.js';
import { identityFromIdPayload, identityToIdPayload, identityToString, parseIdentity } from '../../../pki/identity.js';
import { dnFromString } from '../dn.js';

/** IANA "IKEv2 Identification Payload ID Types". */
export enum IdType {
  ID_IPV4_ADDR = 1,
  ID_FQDN = 2,
  ID_RFC822_ADDR = 3,
  ID_IPV6_ADDR = 5,
  ID_DER_ASN1_DN = 9,
  ID_DER_ASN1_GN = 10,
  ID_KEY_ID = 11,
  /** RFC 4595 */
  ID_FC_NAME = 12,
  /** RFC 7619 */
  ID_NULL = 13,
}

/** An identity: ID Type and Identification Data. */
export interface Identification {
  idType: number;
  data: Buffer;
}

export interface IdPayload extends GenericHeaderFields, Identification {
  type: PayloadType.IDi | PayloadType.IDr;
  /** RESERVED (3 octets) as received, only when non-zero. */
  reserved?: number;
}

const FIXED_LENGTH: Readonly<Record<number, number>> = {
  [IdType.ID_IPV4_ADDR]: 4,
  [IdType.ID_IPV6_ADDR]: 16,
};

export function decodeIdBody(r: Reader, type: PayloadType.IDi | PayloadType.IDr): IdPayload {
  const idType = r.u8('ID Type');
  const reserved = (r.u8('RESERVED') << 16) | r.u16('RESERVED');
  const fixed = FIXED_LENGTH[idType];
  if (fixed !== undefined && r.remaining !== fixed) {
    r.fail(`${IdType[idType]} data is ${r.remaining} octets, expected ${fixed}`);
  }
  const p: IdPayload = { type, idType, data: r.rest() };
  if (reserved !== 0) p.reserved = reserved;
  return p;
}

export function encodeIdBody(p: Identification & { reserved?: number }, w: Writer = new Writer()): Buffer {
  const fixed = FIXED_LENGTH[p.idType];
  if (fixed !== undefined && p.data.length !== fixed) {
    throw new IkeEncodeError(`ID: ${IdType[p.idType]} data is ${p.data.length} octets, expected ${fixed}`);
  }
  w.u8(checkUint(p.idType, 8, 'ID: ID Type'))
    .u24(checkUint(p.reserved ?? 0, 24, 'ID: RESERVED'))
    .bytes(p.data);
  return w.finish();
}

/** Name of an ID type ("ID_FQDN"), or "ID_<n>". */
export function idTypeName(idType: number): string {
  return IdType[idType] ?? `ID_${idType}`;
}

/** Readable text for an identity (never throws; unparseable data shows as hex). */
export function idToString(id: Identification): string {
  switch (id.idType) {
    case IdType.ID_NULL:
      return '%null';
    case IdType.ID_IPV4_ADDR:
    case IdType.ID_IPV6_ADDR:
    case IdType.ID_FQDN:
    case IdType.ID_RFC822_ADDR:
    case IdType.ID_DER_ASN1_DN:
    case IdType.ID_KEY_ID:
      try {
        return identityToString(identityFromIdPayload(id));
      } catch (err) {
        if (!(err instanceof PkiError)) throw err;
      }
      // Data that is no valid identity of its type.
      if (id.idType === IdType.ID_FQDN || id.idType === IdType.ID_RFC822_ADDR) return id.data.toString('utf8');
      return id.idType === IdType.ID_DER_ASN1_DN ? `#${id.data.toString('hex')}` : formatIp(id.data);
    default:
      return `${idTypeName(id.idType)}:#${id.data.toString('hex')}`;
  }
}

export function ipId(address: string): Identification {
  const bytes = parseIp(address);
  if (!bytes) throw new IkeEncodeError(`ID: "${address}" is not an IPv4 or IPv6 address`);
  return { idType: bytes.length === 4 ? IdType.ID_IPV4_ADDR : IdType.ID_IPV6_ADDR, data: bytes };
}

export function fqdnId(name: string): Identification {
  return { idType: IdType.ID_FQDN, data: Buffer.from(name, 'utf8') };
}

export function rfc822Id(address: string): Identification {
  return { idType: IdType.ID_RFC822_ADDR, data: Buffer.from(address, 'utf8') };
}

/** ID_DER_ASN1_DN from DER octets or from text such as "C=CH, O=Example, CN=moon". */
export function dnId(dn: Buffer | string): Identification {
  const der = typeof dn === 'string' ? dnFromString(dn) : dn;
  if (der === null) throw new IkeEncodeError(`ID: "${String(dn)}" is not a distinguished name`);
  return { idType: IdType.ID_DER_ASN1_DN, data: Buffer.from(der) };
}

export function keyId(bytes: Uint8Array): Identification {
  return { idType: IdType.ID_KEY_ID, data: Buffer.from(bytes) };
}

export function nullId(): Identification {
  return { idType: IdType.ID_NULL, data: Buffer.alloc(0) };
}

/**
 * An identity from configuration text, as strongSwan reads it (src/pki's
 * `parseIdentity`: an IP address; "@#hex" → KEY_ID; "@name" → FQDN;
 * "@@user@host" and "user@host" → RFC822; text with "=" → DN; prefixes such
 * as "fqdn:"; else FQDN), plus "%null" → ID_NULL.
 */
export function idFromString(text: string): Identification {
  if (text === '%null') return nullId();
  try {
    const { idType, data } = identityToIdPayload(parseIdentity(text));
    return { idType, data };
  } catch (err) {
    if (err instanceof PkiError) throw new IkeEncodeError(`ID: ${err.message}`);
    throw err;
  }
}
