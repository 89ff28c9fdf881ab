/**
 * IKEv2 Payload Types (RFC 7296 §3.2, IANA "IKEv2 Payload Types"), with the
 * short notation RFC 7296 uses for each (SA, KE, IDi, ...).
 */

export enum PayloadType {
  /** "No Next Payload": ends a payload chain. */
  NONE = 0,
  SA = 33,
  KE = 34,
  IDi = 35,
  IDr = 36,
  CERT = 37,
  CERTREQ = 38,
  AUTH = 39,
  /** Ni / Nr. */
  NONCE = 40,
  /** N. */
  NOTIFY = 41,
  /** D. */
  DELETE = 42,
  /** V. */
  VENDOR_ID = 43,
  TSi = 44,
  TSr = 45,
  /** Encrypted and Authenticated (§3.14). */
  SK = 46,
  CP = 47,
  EAP = 48,
  /** Encrypted and Authenticated Fragment (RFC 7383 §2.5). */
  SKF = 53,
}

const NOTATION: Readonly<Record<number, string>> = {
  [PayloadType.SA]: 'SA',
  [PayloadType.KE]: 'KE',
  [PayloadType.IDi]: 'IDi',
  [PayloadType.IDr]: 'IDr',
  [PayloadType.CERT]: 'CERT',
  [PayloadType.CERTREQ]: 'CERTREQ',
  [PayloadType.AUTH]: 'AUTH',
  [PayloadType.NONCE]: 'Nonce',
  [PayloadType.NOTIFY]: 'N',
  [PayloadType.DELETE]: 'D',
  [PayloadType.VENDOR_ID]: 'V',
  [PayloadType.TSi]: 'TSi',
  [PayloadType.TSr]: 'TSr',
  [PayloadType.SK]: 'SK',
  [PayloadType.CP]: 'CP',
  [PayloadType.EAP]: 'EAP',
  [PayloadType.SKF]: 'SKF',
  // Registered but not implemented by tunsec: decoded as unknown payloads.
  49: 'GSPM',
  50: 'IDg',
  51: 'GSA',
  52: 'KD',
  54: 'PS',
};

/** RFC notation of a payload type ("TSi", "N", ...) or "PAYLOAD_<n>". */
export function payloadTypeName(type: number): string {
  return NOTATION[type] ?? `PAYLOAD_${type}`;
}

/** Payload types this codec parses; anything else is an unknown payload (§3.2, critical bit). */
export function isKnownPayloadType(type: number): type is Exclude<PayloadType, PayloadType.NONE> {
  return (type >= PayloadType.SA && type <= PayloadType.EAP) || type === PayloadType.SKF;
}
