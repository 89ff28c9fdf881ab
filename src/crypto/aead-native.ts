/**
 * AES-GCM-16 contexts backed by the tunsec addon's AeadKey (native/tunsec_aead.cc): OpenSSL's
 * EVP AES-GCM (the OpenSSL inside the node binary) keyed once per SA, so one packet costs one
 * N-API call and no allocation, instead of node:crypto's createCipheriv per call (~9 µs).
 *
 * `sealInPlace`/`openInPlace` go straight to the addon, which checks every argument (TypeError,
 * RangeError) and bounds. `seal`/`open` keep the Buffer-returning API of AeadContext (IKE SK
 * payloads) on top of them with one copy into a fresh buffer.
 */
import { loadNative, type NativeAeadKey } from '../native/addon.js';
import { CryptoError, type AeadAlgorithm, type AeadContext } from './types.js';

const IV_LENGTH = 8;
const ICV_LENGTH = 16;

type AeadKeyConstructor = new (key: Uint8Array, salt: Uint8Array) => NativeAeadKey;

/** undefined: not looked up yet; null: addon missing or built without AeadKey. */
let keyConstructor: AeadKeyConstructor | null | undefined;

function nativeKeyConstructor(): AeadKeyConstructor | null {
  if (keyConstructor === undefined) {
    try {
      keyConstructor = loadNative().AeadKey ?? null;
    } catch {
      keyConstructor = null;
    }
  }
  return keyConstructor;
}

/** Whether the native AES-GCM implementation can be used (addon built, with AeadKey). */
export function nativeAeadAvailable(): boolean {
  return nativeKeyConstructor() !== null;
}

/**
 * A native context for `algorithm` (an AES-GCM-16 AeadAlgorithm) from `keyMaterial` = key ‖
 * 4-octet salt, whose length the caller has checked. Throws CryptoError when the addon is not
 * available. The addon copies the key into OpenSSL's context; it keeps no reference to
 * `keyMaterial`.
 */
export function createNativeAesGcmContext(algorithm: AeadAlgorithm, keyMaterial: Uint8Array): AeadContext {
  const Key = nativeKeyConstructor();
  if (Key === null) {
    throw new CryptoError('native AES-GCM not available: the tunsec addon is not built or predates AeadKey (run `npm ci`)');
  }
  const keyLength = algorithm.keyBits / 8;
  return new NativeAesGcmContext(algorithm, new Key(keyMaterial.subarray(0, keyLength), keyMaterial.subarray(keyLength)));
}

class NativeAesGcmContext implements AeadContext {
  readonly implementation = 'native' as const;

  constructor(
    readonly algorithm: AeadAlgorithm,
    private key: NativeAeadKey | null,
  ) {
    this.handle = key?.handle ?? 0;
  }

  /** Read once: the accessor is a native call, and the datapath asks for every packet. */
  private readonly handle: number;

  get nativeHandle(): number {
    return this.key === null ? 0 : this.handle;
  }

  private liveKey(): NativeAeadKey {
    if (this.key === null) throw new CryptoError('AEAD context used after destroy()');
    return this.key;
  }

  sealInPlace(buf: Uint8Array, ivOff: number, aad: Uint8Array, ptOff: number, ptLen: number): void {
    this.liveKey().seal(buf, ivOff, aad, ptOff, ptLen);
  }

  openInPlace(buf: Uint8Array, ivOff: number, aad: Uint8Array, ctOff: number, ctLen: number): boolean {
    return this.liveKey().open(buf, ivOff, aad, ctOff, ctLen);
  }

  seal(iv: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Buffer {
    const key = this.liveKey();
    if (iv.length !== IV_LENGTH) throw new CryptoError(`AES-GCM IV must be ${IV_LENGTH} octets, got ${iv.length}`);
    // iv ‖ plaintext ‖ ICV, sealed in place; every octet is overwritten, so allocUnsafe is fine.
    const work = Buffer.allocUnsafe(IV_LENGTH + plaintext.length + ICV_LENGTH);
    work.set(iv, 0);
    work.set(plaintext, IV_LENGTH);
    key.seal(work, 0, aad, IV_LENGTH, plaintext.length);
    return work.subarray(IV_LENGTH);
  }

  open(iv: Uint8Array, aad: Uint8Array, ciphertextAndIcv: Uint8Array): Buffer | null {
    const key = this.liveKey();
    if (iv.length !== IV_LENGTH || ciphertextAndIcv.length < ICV_LENGTH) return null;
    const ctLength = ciphertextAndIcv.length - ICV_LENGTH;
    const work = Buffer.allocUnsafe(IV_LENGTH + ciphertextAndIcv.length);
    work.set(iv, 0);
    work.set(ciphertextAndIcv, IV_LENGTH);
    // On failure the addon restores the ciphertext: nothing unauthenticated is left in `work`.
    return key.open(work, 0, aad, IV_LENGTH, ctLength) ? work.subarray(IV_LENGTH, IV_LENGTH + ctLength) : null;
  }

  destroy(): void {
    this.key?.destroy();
    this.key = null;
  }
}
