/**
 * The small interfaces the rest of tunsec sees of its cryptography.
 * Implementations live next to this file; nothing above src/crypto touches
 * node:crypto or noble directly.
 */

/** Raised for any unusable key, public value, signature encoding or parameter. */
export class CryptoError extends Error {
  override readonly name = 'CryptoError';
}

/**
 * AEAD cipher as IKEv2 (RFC 5282) and ESP (RFC 4106) use it: the key material
 * negotiated for the SA is `key ‖ salt`; the nonce of one operation is
 * `salt ‖ iv` where the 8-octet IV travels in the packet.
 */
export interface AeadAlgorithm {
  /** IKEv2 transform ID (Transform Type 1), e.g. 20 = ENCR_AES_GCM_16. */
  readonly transformId: number;
  /** Key length in bits (Key Length attribute), without the salt. */
  readonly keyBits: number;
  /** Octets of key material to take from prf+/KEYMAT: key + salt. */
  readonly keyMaterialLength: number;
  readonly saltLength: number;
  readonly ivLength: number;
  readonly icvLength: number;
  /**
   * Bind key material (key ‖ salt, `keyMaterialLength` octets) into a reusable context.
   * By default the native implementation (OpenSSL EVP keyed once, native/tunsec_aead.cc) when
   * the addon is loadable, node:crypto otherwise; `options.implementation` picks one explicitly
   * (CryptoError if 'native' is asked for and the addon is not available).
   */
  createContext(keyMaterial: Uint8Array, options?: AeadContextOptions): AeadContext;
}

/** 'native': the tunsec addon's AeadKey; 'node': node:crypto createCipheriv per call. */
export type AeadImplementation = 'native' | 'node';

export interface AeadContextOptions {
  /** Default: 'native' when the addon is loadable, else 'node'. */
  implementation?: AeadImplementation;
}

export interface AeadContext {
  readonly algorithm: AeadAlgorithm;
  /** Which implementation this context uses. */
  readonly implementation: AeadImplementation;
  /** ciphertext ‖ ICV. `iv` is the 8-octet explicit IV. */
  seal(iv: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Buffer;
  /** Plaintext, or `null` when the ICV does not verify. Never throws on bad input data. */
  open(iv: Uint8Array, aad: Uint8Array, ciphertextAndIcv: Uint8Array): Buffer | null;
  /**
   * Seal in place, for the ESP datapath: nonce = salt ‖ `buf[ivOff, ivOff+8)`;
   * `buf[ptOff, ptOff+ptLen)` is replaced by its ciphertext and the ICV is written at
   * `buf[ptOff+ptLen, ptOff+ptLen+icvLength)`. `aad` may be any length (ESP: 8 or 12 octets,
   * RFC 4106 §5) and may be a view of `buf` (e.g. the packet's SPI ‖ Sequence Number).
   * Throws TypeError for a non-Uint8Array `buf`/`aad` or a non-number offset, RangeError for an
   * offset or length that is not a non-negative integer or reaches outside `buf`.
   */
  sealInPlace(buf: Uint8Array, ivOff: number, aad: Uint8Array, ptOff: number, ptLen: number): void;
  /**
   * Open in place: `buf[ctOff, ctOff+ctLen)` is the ciphertext (ctLen excludes the ICV, which
   * follows at `buf[ctOff+ctLen]`); on `true` it has been replaced by the plaintext. On `false`
   * (ICV did not verify) `buf` is left unchanged — it still holds the ciphertext, never
   * unauthenticated plaintext — and nothing in it may be treated as decrypted data.
   * Never throws for bad data; argument errors throw like `sealInPlace`.
   */
  openInPlace(buf: Uint8Array, ivOff: number, aad: Uint8Array, ctOff: number, ctLen: number): boolean;
  /** Overwrite the key material held by this context (SA deleted); later use throws CryptoError. */
  destroy(): void;
  /**
   * The addon's handle of this key, for the batched ESP datapath (native/tunsec_esp.cc): a
   * positive number while the native key lives, 0 after destroy(); undefined for contexts
   * without a native key (node:crypto).
   */
  readonly nativeHandle?: number;
}

/** Pseudo-random function (Transform Type 2), RFC 7296 §2.13, RFC 4868. */
export interface Prf {
  readonly transformId: number;
  readonly name: string;
  /** Output length in octets (also the preferred key length). */
  readonly outputLength: number;
  compute(key: Uint8Array, data: Uint8Array): Buffer;
}

/** A Diffie-Hellman / key exchange group (Transform Type 4). */
export interface KeyExchangeGroup {
  readonly groupId: number;
  readonly name: string;
  /** Length of the Key Exchange Data in the KE payload. */
  readonly publicValueLength: number;
  /** Length of the shared secret g^ir. */
  readonly sharedSecretLength: number;
  /** A fresh ephemeral private value. */
  generate(): KeyExchangePrivate;
  /** Import a known private value (test vectors); encoding as the group's RFC defines it. */
  fromPrivate(privateValue: Uint8Array): KeyExchangePrivate;
}

export interface KeyExchangePrivate {
  readonly group: KeyExchangeGroup;
  /** Key Exchange Data as carried in the KE payload. */
  readonly publicValue: Buffer;
  /**
   * g^ir from the peer's KE data. Throws CryptoError if the peer value is
   * malformed (wrong length, not on the curve, the identity, out of range).
   */
  computeSharedSecret(peerPublicValue: Uint8Array): Buffer;
}
