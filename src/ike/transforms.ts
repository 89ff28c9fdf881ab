/**
 * IKEv2 transform registry: RFC 7296 §3.3.2 and the IANA "Internet Key
 * Exchange Version 2 (IKEv2) Parameters" registry (Transform Type Values and
 * the per-type Transform IDs), as numbers and IANA names.
 * The strongSwan proposal keywords that map onto these live in ./proposal/.
 */

/** Transform Type (RFC 7296 §3.3.2, RFC 9370 for ADDKE). */
export enum TransformType {
  ENCR = 1,
  PRF = 2,
  INTEG = 3,
  /** "D-H" in RFC 7296, "Key Exchange Method" since RFC 9370. */
  KE = 4,
  /** Extended Sequence Numbers (RFC 7296); "Sequence Numbers" in the current registry. */
  ESN = 5,
}

export const TRANSFORM_TYPE_NAMES: Readonly<Record<number, string>> = {
  1: 'ENCR',
  2: 'PRF',
  3: 'INTEG',
  4: 'KE',
  5: 'ESN',
};

/** Transform Type 1 IDs. */
export enum EncrId {
  DES_IV64 = 1,
  DES = 2,
  TRIPLE_DES = 3,
  RC5 = 4,
  IDEA = 5,
  CAST = 6,
  BLOWFISH = 7,
  TRIPLE_IDEA = 8,
  DES_IV32 = 9,
  NULL = 11,
  AES_CBC = 12,
  AES_CTR = 13,
  AES_CCM_8 = 14,
  AES_CCM_12 = 15,
  AES_CCM_16 = 16,
  AES_GCM_8 = 18,
  AES_GCM_12 = 19,
  AES_GCM_16 = 20,
  NULL_AUTH_AES_GMAC = 21,
  CAMELLIA_CBC = 23,
  CAMELLIA_CTR = 24,
  CAMELLIA_CCM_8 = 25,
  CAMELLIA_CCM_12 = 26,
  CAMELLIA_CCM_16 = 27,
  CHACHA20_POLY1305 = 28,
}

/** Transform Type 2 IDs. */
export enum PrfId {
  HMAC_MD5 = 1,
  HMAC_SHA1 = 2,
  HMAC_TIGER = 3,
  AES128_XCBC = 4,
  HMAC_SHA2_256 = 5,
  HMAC_SHA2_384 = 6,
  HMAC_SHA2_512 = 7,
  AES128_CMAC = 8,
}

/** Transform Type 3 IDs. */
export enum IntegId {
  NONE = 0,
  HMAC_MD5_96 = 1,
  HMAC_SHA1_96 = 2,
  DES_MAC = 3,
  KPDK_MD5 = 4,
  AES_XCBC_96 = 5,
  HMAC_MD5_128 = 6,
  HMAC_SHA1_160 = 7,
  AES_CMAC_96 = 8,
  AES_128_GMAC = 9,
  AES_192_GMAC = 10,
  AES_256_GMAC = 11,
  HMAC_SHA2_256_128 = 12,
  HMAC_SHA2_384_192 = 13,
  HMAC_SHA2_512_256 = 14,
}

/** Transform Type 4 IDs (Diffie-Hellman / Key Exchange Method). */
export enum KeId {
  NONE = 0,
  MODP_768 = 1,
  MODP_1024 = 2,
  MODP_1536 = 5,
  MODP_2048 = 14,
  MODP_3072 = 15,
  MODP_4096 = 16,
  MODP_6144 = 17,
  MODP_8192 = 18,
  ECP_256 = 19,
  ECP_384 = 20,
  ECP_521 = 21,
  MODP_1024_160 = 22,
  MODP_2048_224 = 23,
  MODP_2048_256 = 24,
  ECP_192 = 25,
  ECP_224 = 26,
  ECP_224_BP = 27,
  ECP_256_BP = 28,
  ECP_384_BP = 29,
  ECP_512_BP = 30,
  CURVE_25519 = 31,
  CURVE_448 = 32,
}

/** Transform Type 5 IDs. */
export enum EsnId {
  NO_ESN = 0,
  ESN = 1,
}

/** Transform attribute types (RFC 7296 §3.3.5). Only Key Length (14, TV format) is defined. */
export enum TransformAttributeType {
  KEY_LENGTH = 14,
}

/** IANA name of a transform ID, e.g. transformIdName(TransformType.ENCR, 20) === 'AES_GCM_16'. */
export function transformIdName(type: number, id: number): string {
  const table: Record<number, Record<number, string>> = {
    [TransformType.ENCR]: EncrId as unknown as Record<number, string>,
    [TransformType.PRF]: PrfId as unknown as Record<number, string>,
    [TransformType.INTEG]: IntegId as unknown as Record<number, string>,
    [TransformType.KE]: KeId as unknown as Record<number, string>,
    [TransformType.ESN]: EsnId as unknown as Record<number, string>,
  };
  return table[type]?.[id] ?? `UNKNOWN_${TRANSFORM_TYPE_NAMES[type] ?? `TYPE${type}`}_${id}`;
}

/** Protocol ID in proposals, Notify and Delete payloads (RFC 7296 §3.3.1). */
export enum ProtocolId {
  NONE = 0,
  IKE = 1,
  AH = 2,
  ESP = 3,
}
