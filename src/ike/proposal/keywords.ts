/**
 * strongSwan's proposal keywords (docs.strongswan.org, "Algorithm Proposals
 * (Cipher Suites)") and the IKEv2 transforms they stand for. Several keywords
 * may name one transform (aes128gcm16 = aes128gcm128 = aes128gcm); the first
 * one listed for a transform is its canonical spelling, used when printing.
 */
import { EncrId, EsnId, IntegId, KeId, PrfId, TransformType } from '../transforms.js';
import type { Transform } from './types.js';

type Row = readonly [keyword: string, type: TransformType, id: number, keyLength?: number];

const E = TransformType.ENCR;
const I = TransformType.INTEG;
const P = TransformType.PRF;
const K = TransformType.KE;
const S = TransformType.ESN;

/** `aes`-family keyword rows for one mode: aes128<suffix>, aes192<suffix>, aes256<suffix>, each with its aliases. */
function sized(prefix: string, id: number, suffixes: readonly string[]): Row[] {
  const rows: Row[] = [];
  for (const bits of [128, 192, 256]) {
    for (const suffix of suffixes) rows.push([`${prefix}${bits}${suffix}`, E, id, bits]);
  }
  return rows;
}

const ROWS: readonly Row[] = [
  // Encryption (Transform Type 1). Canonical spelling first.
  ...sized('aes', EncrId.AES_CBC, ['']),
  ['aes', E, EncrId.AES_CBC, 128],
  ...sized('aes', EncrId.AES_CTR, ['ctr']),
  ...sized('aes', EncrId.AES_CCM_8, ['ccm8', 'ccm64']),
  ...sized('aes', EncrId.AES_CCM_12, ['ccm12', 'ccm96']),
  ...sized('aes', EncrId.AES_CCM_16, ['ccm16', 'ccm128', 'ccm']),
  ...sized('aes', EncrId.AES_GCM_8, ['gcm8', 'gcm64']),
  ...sized('aes', EncrId.AES_GCM_12, ['gcm12', 'gcm96']),
  ...sized('aes', EncrId.AES_GCM_16, ['gcm16', 'gcm128', 'gcm']),
  ...sized('aes', EncrId.NULL_AUTH_AES_GMAC, ['gmac']),
  ...sized('camellia', EncrId.CAMELLIA_CBC, ['']),
  ['camellia', E, EncrId.CAMELLIA_CBC, 128],
  ...sized('camellia', EncrId.CAMELLIA_CTR, ['ctr']),
  ...sized('camellia', EncrId.CAMELLIA_CCM_8, ['ccm8', 'ccm64']),
  ...sized('camellia', EncrId.CAMELLIA_CCM_12, ['ccm12', 'ccm96']),
  ...sized('camellia', EncrId.CAMELLIA_CCM_16, ['ccm16', 'ccm128']),
  ['3des', E, EncrId.TRIPLE_DES],
  ['chacha20poly1305', E, EncrId.CHACHA20_POLY1305],
  ['null', E, EncrId.NULL],
  // Integrity (Transform Type 3).
  ['md5', I, IntegId.HMAC_MD5_96],
  ['md5_128', I, IntegId.HMAC_MD5_128],
  ['sha1', I, IntegId.HMAC_SHA1_96],
  ['sha', I, IntegId.HMAC_SHA1_96],
  ['sha1_160', I, IntegId.HMAC_SHA1_160],
  ['aesxcbc', I, IntegId.AES_XCBC_96],
  ['aescmac', I, IntegId.AES_CMAC_96],
  ['sha256', I, IntegId.HMAC_SHA2_256_128],
  ['sha2_256', I, IntegId.HMAC_SHA2_256_128],
  ['sha384', I, IntegId.HMAC_SHA2_384_192],
  ['sha2_384', I, IntegId.HMAC_SHA2_384_192],
  ['sha512', I, IntegId.HMAC_SHA2_512_256],
  ['sha2_512', I, IntegId.HMAC_SHA2_512_256],
  // Pseudo-random functions (Transform Type 2).
  ['prfmd5', P, PrfId.HMAC_MD5],
  ['prfsha1', P, PrfId.HMAC_SHA1],
  ['prfaesxcbc', P, PrfId.AES128_XCBC],
  ['prfaescmac', P, PrfId.AES128_CMAC],
  ['prfsha256', P, PrfId.HMAC_SHA2_256],
  ['prfsha384', P, PrfId.HMAC_SHA2_384],
  ['prfsha512', P, PrfId.HMAC_SHA2_512],
  // Key exchange methods (Transform Type 4). `none` makes PFS optional in ESP/AH proposals.
  ['modpnone', K, KeId.NONE],
  ['none', K, KeId.NONE],
  ['modp768', K, KeId.MODP_768],
  ['modp1024', K, KeId.MODP_1024],
  ['modp1536', K, KeId.MODP_1536],
  ['modp2048', K, KeId.MODP_2048],
  ['modp3072', K, KeId.MODP_3072],
  ['modp4096', K, KeId.MODP_4096],
  ['modp6144', K, KeId.MODP_6144],
  ['modp8192', K, KeId.MODP_8192],
  ['modp1024s160', K, KeId.MODP_1024_160],
  ['modp2048s224', K, KeId.MODP_2048_224],
  ['modp2048s256', K, KeId.MODP_2048_256],
  ['ecp192', K, KeId.ECP_192],
  ['ecp224', K, KeId.ECP_224],
  ['ecp256', K, KeId.ECP_256],
  ['ecp384', K, KeId.ECP_384],
  ['ecp521', K, KeId.ECP_521],
  ['ecp224bp', K, KeId.ECP_224_BP],
  ['ecp256bp', K, KeId.ECP_256_BP],
  ['ecp384bp', K, KeId.ECP_384_BP],
  ['ecp512bp', K, KeId.ECP_512_BP],
  ['curve25519', K, KeId.CURVE_25519],
  ['x25519', K, KeId.CURVE_25519],
  ['curve448', K, KeId.CURVE_448],
  ['x448', K, KeId.CURVE_448],
  // Extended Sequence Numbers (Transform Type 5).
  ['noesn', S, EsnId.NO_ESN],
  ['esn', S, EsnId.ESN],
];

/**
 * Keywords strongSwan knows that tunsec deliberately does not accept, with the
 * reason given to the operator.
 */
export const UNSUPPORTED_KEYWORDS: ReadonlyMap<string, string> = new Map([
  ['des', 'single DES is broken'],
  ['cast128', 'CAST is not supported'],
  ...['', '128', '192', '256'].map((n): [string, string] => [`blowfish${n}`, 'Blowfish is not supported']),
  ...['', '128', '192', '256'].map((n): [string, string] => [`serpent${n}`, 'Serpent has no IKEv2 transform ID']),
  ...['', '128', '192', '256'].map((n): [string, string] => [`twofish${n}`, 'Twofish has no IKEv2 transform ID']),
  ['camelliaxcbc', 'Camellia-XCBC has no IKEv2 transform ID'],
  ['prfcamelliaxcbc', 'Camellia-XCBC has no IKEv2 transform ID'],
  ['sha256_96', 'HMAC-SHA-256 truncated to 96 bits is a non-standard strongSwan private algorithm'],
  ['sha2_256_96', 'HMAC-SHA-256 truncated to 96 bits is a non-standard strongSwan private algorithm'],
  ['chacha20poly1305compat', 'the pre-standard ChaCha20-Poly1305 variant is not supported'],
  ['modpnull', 'the MODP_NULL test group is not supported'],
  ['gost256', 'GOST key exchange is not supported'],
  ['gost512', 'GOST key exchange is not supported'],
  ['mlkem512', 'ML-KEM (additional key exchanges, RFC 9370) is not supported'],
  ['mlkem768', 'ML-KEM (additional key exchanges, RFC 9370) is not supported'],
  ['mlkem1024', 'ML-KEM (additional key exchanges, RFC 9370) is not supported'],
]);

const BY_KEYWORD: ReadonlyMap<string, Transform> = new Map(ROWS.map(([keyword, type, id, keyLength]) => [keyword, transform(type, id, keyLength)]));

const CANONICAL: ReadonlyMap<string, string> = (() => {
  const map = new Map<string, string>();
  for (const [keyword, type, id, keyLength] of ROWS) {
    const key = transformKey(transform(type, id, keyLength));
    if (!map.has(key)) map.set(key, keyword);
  }
  return map;
})();

function transform(type: TransformType, id: number, keyLength?: number): Transform {
  return keyLength === undefined ? { type, id } : { type, id, keyLength };
}

function transformKey(t: Transform): string {
  return `${t.type}/${t.id}/${t.keyLength ?? ''}`;
}

/** The transform a keyword stands for, or undefined if it is not a tunsec keyword. */
export function transformForKeyword(keyword: string): Transform | undefined {
  return BY_KEYWORD.get(keyword);
}

/** The canonical keyword of a transform (e.g. AES_GCM_16/128 → 'aes128gcm16'), or undefined if it has none. */
export function keywordForTransform(t: Transform): string | undefined {
  const gmacBits = GMAC_INTEG_BITS.get(t.id);
  if (t.type === TransformType.INTEG && gmacBits !== undefined) {
    // AH carries AES-GMAC as an integrity algorithm; strongSwan spells it like the ESP cipher.
    return CANONICAL.get(transformKey({ type: TransformType.ENCR, id: EncrId.NULL_AUTH_AES_GMAC, keyLength: gmacBits }));
  }
  return CANONICAL.get(transformKey(t));
}

/** Every keyword tunsec accepts, canonical spellings and aliases. */
export function allKeywords(): string[] {
  return [...BY_KEYWORD.keys()];
}

const AEAD_IDS: ReadonlySet<number> = new Set([
  EncrId.AES_CCM_8,
  EncrId.AES_CCM_12,
  EncrId.AES_CCM_16,
  EncrId.AES_GCM_8,
  EncrId.AES_GCM_12,
  EncrId.AES_GCM_16,
  EncrId.NULL_AUTH_AES_GMAC,
  EncrId.CAMELLIA_CCM_8,
  EncrId.CAMELLIA_CCM_12,
  EncrId.CAMELLIA_CCM_16,
  EncrId.CHACHA20_POLY1305,
]);

/** Combined-mode (AEAD, RFC 5282) encryption: integrity comes with the cipher, no INTEG transform. */
export function isAeadEncryption(encrId: number): boolean {
  return AEAD_IDS.has(encrId);
}

const VARIABLE_KEY_IDS: ReadonlySet<number> = new Set([
  EncrId.AES_CBC,
  EncrId.AES_CTR,
  EncrId.AES_CCM_8,
  EncrId.AES_CCM_12,
  EncrId.AES_CCM_16,
  EncrId.AES_GCM_8,
  EncrId.AES_GCM_12,
  EncrId.AES_GCM_16,
  EncrId.NULL_AUTH_AES_GMAC,
  EncrId.CAMELLIA_CBC,
  EncrId.CAMELLIA_CTR,
  EncrId.CAMELLIA_CCM_8,
  EncrId.CAMELLIA_CCM_12,
  EncrId.CAMELLIA_CCM_16,
]);

/** Encryption algorithms whose transforms carry a Key Length attribute (RFC 7296 §3.3.5). */
export function takesKeyLength(type: number, id: number): boolean {
  return type === TransformType.ENCR && VARIABLE_KEY_IDS.has(id);
}

/** AES-GMAC as an integrity algorithm (AH): integrity ID → key size. */
const GMAC_INTEG_BITS: ReadonlyMap<number, number> = new Map([
  [IntegId.AES_128_GMAC, 128],
  [IntegId.AES_192_GMAC, 192],
  [IntegId.AES_256_GMAC, 256],
]);

/** The AH integrity transform for AES-GMAC of a key size (strongSwan parses `aes128gmac` as a cipher). */
export function gmacIntegrity(keyLength: number): Transform | undefined {
  for (const [id, bits] of GMAC_INTEG_BITS) if (bits === keyLength) return { type: TransformType.INTEG, id };
  return undefined;
}

/**
 * The PRF strongSwan derives from an integrity algorithm when an IKE proposal
 * names no PRF (same hash or cipher, untruncated).
 */
const PRF_FOR_INTEG: ReadonlyMap<number, number> = new Map([
  [IntegId.HMAC_MD5_96, PrfId.HMAC_MD5],
  [IntegId.HMAC_MD5_128, PrfId.HMAC_MD5],
  [IntegId.HMAC_SHA1_96, PrfId.HMAC_SHA1],
  [IntegId.HMAC_SHA1_160, PrfId.HMAC_SHA1],
  [IntegId.AES_XCBC_96, PrfId.AES128_XCBC],
  [IntegId.AES_CMAC_96, PrfId.AES128_CMAC],
  [IntegId.HMAC_SHA2_256_128, PrfId.HMAC_SHA2_256],
  [IntegId.HMAC_SHA2_384_192, PrfId.HMAC_SHA2_384],
  [IntegId.HMAC_SHA2_512_256, PrfId.HMAC_SHA2_512],
]);

export function prfForIntegrity(integId: number): number | undefined {
  return PRF_FOR_INTEG.get(integId);
}
