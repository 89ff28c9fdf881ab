/**
 * IKEv2 key derivation (RFC 7296):
 *
 * - §2.14  SKEYSEED = prf(Ni | Nr, g^ir) and
 *          {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr}
 *            = prf+ (SKEYSEED, Ni | Nr | SPIi | SPIr)
 * - §2.18  rekeying the IKE SA: SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr),
 *          then the §2.14 split with the new exchange's nonces and the new SPIs
 * - §2.17  CHILD_SA keying material: KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr)
 *
 * Only PRFs that accept variable-length keys (the HMAC PRFs of ./prf.ts) are
 * supported. §2.14 gives PRFs with a fixed key size (AES128_XCBC, RFC 4434;
 * AES128_CMAC, RFC 4615) a special rule: SKEYSEED is keyed with only the first
 * 64 bits of Ni and of Nr; deriveSkeyseed refuses those transform IDs rather
 * than computing something a peer would not.
 *
 * "Ni" and "Nr" are the nonce payload bodies (Nonce Data, without the generic
 * payload header); SPIs are the 8-octet IKE SPIs from the IKE header, or for a
 * rekey from the new IKE SA's proposal (§3.3.1).
 *
 * Every key is returned in its own Buffer (not a view into a shared one), so a
 * caller can keep SK_d and zero the rest; wipe() zeroes all of them. prf+
 * output that is split here is zeroed before returning.
 */
import { prfPlus } from './prf.js';
import { CryptoError, type Prf } from './types.js';

/** Transform Type 2 IDs of the fixed-key PRFs that §2.14 treats specially (not implemented). */
const PRF_ID_AES128_XCBC = 4;
const PRF_ID_AES128_CMAC = 8;
/** IKE SPIs are 8 octets (RFC 7296 §3.1). */
const IKE_SPI_LENGTH = 8;

/** The seven IKE SA secrets of RFC 7296 §2.14, in derivation order. */
export interface IkeSaKeys {
  /** Key for deriving CHILD_SA keys and the next SKEYSEED (§2.17, §2.18). */
  SK_d: Buffer;
  /** Integrity key, initiator → responder. Empty for AEAD ciphers (RFC 5282 §5). */
  SK_ai: Buffer;
  /** Integrity key, responder → initiator. Empty for AEAD ciphers. */
  SK_ar: Buffer;
  /** Encryption key material, initiator → responder (for AEAD: key ‖ salt, RFC 5282 §7.1). */
  SK_ei: Buffer;
  /** Encryption key material, responder → initiator. */
  SK_er: Buffer;
  /** Key for the initiator's AUTH payload (§2.15). */
  SK_pi: Buffer;
  /** Key for the responder's AUTH payload (§2.15). */
  SK_pr: Buffer;
}

/** Keys of one direction of an ESP or AH SA pair. */
export interface ChildSaDirectionKeys {
  /** Encryption key material (for AEAD: key ‖ salt, RFC 4106 §8.1); empty if none. */
  encr: Buffer;
  /** Integrity key; empty for AEAD or when no integrity transform is used. */
  integ: Buffer;
}

/** KEYMAT split for one CHILD_SA (an ESP or AH SA pair), RFC 7296 §2.17. */
export interface ChildSaKeymat {
  /** Keys of the SA carrying data from the exchange's initiator to its responder. */
  initiatorToResponder: ChildSaDirectionKeys;
  /** Keys of the SA carrying data from the exchange's responder to its initiator. */
  responderToInitiator: ChildSaDirectionKeys;
}

export interface IkeSaKeyInput {
  prf: Prf;
  skeyseed: Uint8Array;
  /** Initiator's nonce (Nonce Data) of the exchange that created this IKE SA. */
  Ni: Uint8Array;
  /** Responder's nonce of that exchange. */
  Nr: Uint8Array;
  /** Initiator's IKE SPI of this IKE SA (8 octets). */
  spiI: Uint8Array;
  /** Responder's IKE SPI of this IKE SA (8 octets). */
  spiR: Uint8Array;
  /** Octets for each of SK_ei and SK_er; includes the salt for AEAD (20 for AES-GCM-128). */
  encrKeyMaterialLength: number;
  /** Octets for each of SK_ai and SK_ar; 0 for AEAD. */
  integKeyLength: number;
}

export interface ChildKeymatInput {
  /** PRF of the IKE SA the CHILD_SA is negotiated in. */
  prf: Prf;
  /** SK_d of that IKE SA. */
  skD: Uint8Array;
  /** Initiator's nonce of the exchange creating the CHILD_SA (IKE_SA_INIT's for the first one). */
  Ni: Uint8Array;
  /** Responder's nonce of that exchange. */
  Nr: Uint8Array;
  /** g^ir (new) of the CREATE_CHILD_SA's optional KE payloads (PFS), if any. */
  gir?: Uint8Array | undefined;
  /** Octets of encryption key material per direction (key ‖ salt for AEAD). */
  encrKeyMaterialLength: number;
  /** Octets of integrity key per direction; 0 for AEAD. */
  integKeyLength: number;
}

function checkLength(what: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new CryptoError(`${what} must be a non-negative integer, got ${n}`);
}

function checkVariableKeyPrf(prf: Prf): void {
  if (prf.transformId === PRF_ID_AES128_XCBC || prf.transformId === PRF_ID_AES128_CMAC) {
    throw new CryptoError(`${prf.name}: PRFs with a fixed key size need RFC 7296 §2.14's truncated-nonce rule, which tunsec does not implement`);
  }
}

function concat(parts: readonly Uint8Array[]): Buffer {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = Buffer.alloc(length);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** Reads consecutive keys out of prf+ output into Buffers of their own. */
class KeyReader {
  private offset = 0;
  constructor(private readonly material: Buffer) {}

  take(length: number): Buffer {
    const key = Buffer.alloc(length);
    this.material.copy(key, 0, this.offset, this.offset + length);
    this.offset += length;
    return key;
  }
}

/**
 * SKEYSEED = prf(Ni | Nr, g^ir), RFC 7296 §2.14. `gir` is the D-H shared
 * secret in the group's encoding (RFC 7296 §2.14: big-endian, zero-padded to
 * the modulus length for MODP; the x coordinate for ECP, RFC 5903 §7).
 */
export function deriveSkeyseed(prf: Prf, Ni: Uint8Array, Nr: Uint8Array, gir: Uint8Array): Buffer {
  checkVariableKeyPrf(prf);
  const key = concat([Ni, Nr]);
  try {
    return prf.compute(key, gir);
  } finally {
    key.fill(0);
  }
}

/**
 * {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} = prf+ (SKEYSEED, Ni | Nr | SPIi | SPIr),
 * RFC 7296 §2.14. SK_d, SK_pi and SK_pr have the PRF's preferred key length
 * (its output length for the HMAC PRFs, RFC 4868 §2.1.2). For the IKE SA
 * created by a rekey (§2.18) pass the new SKEYSEED, the CREATE_CHILD_SA
 * nonces and the new IKE SA's SPIs.
 */
export function deriveIkeSaKeys(input: IkeSaKeyInput): IkeSaKeys {
  const { prf, skeyseed, Ni, Nr, spiI, spiR, encrKeyMaterialLength, integKeyLength } = input;
  checkLength('encrKeyMaterialLength', encrKeyMaterialLength);
  checkLength('integKeyLength', integKeyLength);
  if (spiI.length !== IKE_SPI_LENGTH || spiR.length !== IKE_SPI_LENGTH) {
    throw new CryptoError(`IKE SPIs must be ${IKE_SPI_LENGTH} octets, got ${spiI.length} and ${spiR.length}`);
  }
  const prfKeyLength = prf.outputLength;
  const total = 3 * prfKeyLength + 2 * integKeyLength + 2 * encrKeyMaterialLength;
  const seed = concat([Ni, Nr, spiI, spiR]);
  const material = prfPlus(prf, skeyseed, seed, total);
  seed.fill(0);
  try {
    const r = new KeyReader(material);
    return {
      SK_d: r.take(prfKeyLength),
      SK_ai: r.take(integKeyLength),
      SK_ar: r.take(integKeyLength),
      SK_ei: r.take(encrKeyMaterialLength),
      SK_er: r.take(encrKeyMaterialLength),
      SK_pi: r.take(prfKeyLength),
      SK_pr: r.take(prfKeyLength),
    };
  } finally {
    material.fill(0);
  }
}

/**
 * SKEYSEED of an IKE SA created by rekeying (RFC 7296 §2.18):
 * prf(SK_d (old), g^ir (new) | Ni | Nr). `prf` is the OLD IKE SA's PRF (the
 * rekeying exchange belongs to the old SA); the new IKE SA's keys then come
 * from deriveIkeSaKeys with the new SA's PRF, the CREATE_CHILD_SA nonces and
 * the new SPIs.
 */
export function deriveRekeyedSkeyseed(prf: Prf, oldSkD: Uint8Array, gir: Uint8Array, Ni: Uint8Array, Nr: Uint8Array): Buffer {
  checkVariableKeyPrf(prf);
  const data = concat([gir, Ni, Nr]);
  try {
    return prf.compute(oldSkD, data);
  } finally {
    data.fill(0);
  }
}

/**
 * KEYMAT = prf+(SK_d, Ni | Nr), or prf+(SK_d, g^ir (new) | Ni | Nr) when the
 * CREATE_CHILD_SA carried KE payloads (RFC 7296 §2.17). Split in §2.17's
 * order for one ESP or AH SA pair: all keys of the initiator→responder SA
 * first, then the responder→initiator SA; within an SA the encryption key
 * first and the integrity key after it (RFC 4301 via §2.17).
 */
export function deriveChildKeymat(input: ChildKeymatInput): ChildSaKeymat {
  const { prf, skD, Ni, Nr, gir, encrKeyMaterialLength, integKeyLength } = input;
  checkLength('encrKeyMaterialLength', encrKeyMaterialLength);
  checkLength('integKeyLength', integKeyLength);
  const seed = concat(gir === undefined ? [Ni, Nr] : [gir, Ni, Nr]);
  const perDirection = encrKeyMaterialLength + integKeyLength;
  const material = prfPlus(prf, skD, seed, 2 * perDirection);
  seed.fill(0);
  try {
    const r = new KeyReader(material);
    const initiatorToResponder = { encr: r.take(encrKeyMaterialLength), integ: r.take(integKeyLength) };
    const responderToInitiator = { encr: r.take(encrKeyMaterialLength), integ: r.take(integKeyLength) };
    return { initiatorToResponder, responderToInitiator };
  } finally {
    material.fill(0);
  }
}

/** Overwrite every key of a derivation result (or a single key) with zeros. */
export function wipe(keys: IkeSaKeys | ChildSaKeymat | ChildSaDirectionKeys | Uint8Array): void {
  if (keys instanceof Uint8Array) {
    keys.fill(0);
  } else if ('initiatorToResponder' in keys) {
    wipe(keys.initiatorToResponder);
    wipe(keys.responderToInitiator);
  } else if ('encr' in keys) {
    keys.encr.fill(0);
    keys.integ.fill(0);
  } else {
    for (const key of [keys.SK_d, keys.SK_ai, keys.SK_ar, keys.SK_ei, keys.SK_er, keys.SK_pi, keys.SK_pr]) key.fill(0);
  }
}
