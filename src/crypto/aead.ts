/**
 * AES-GCM with a 16-octet ICV as IKEv2 (RFC 5282) and ESP (RFC 4106) use it:
 * key material = key ‖ 4-octet salt, nonce = salt ‖ 8-octet explicit IV.
 *
 * Two implementations behind one AeadContext: the native one (src/crypto/aead-native.ts,
 * OpenSSL EVP keyed once per SA in the tunsec addon, ~1 µs per packet) when the addon is
 * loadable, and node:crypto (createCipheriv per call, ~9 µs) otherwise or on request
 * (`createContext(material, { implementation: 'node' })`).
 */
import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject } from 'node:crypto';
import { createNativeAesGcmContext, nativeAeadAvailable } from './aead-native.js';
import { CryptoError, type AeadAlgorithm, type AeadContext, type AeadContextOptions } from './types.js';

const SALT_LENGTH = 4;
const IV_LENGTH = 8;
const ICV_LENGTH = 16;
/** ENCR_AES_GCM_16 (IANA IKEv2 Transform Type 1 ID 20). */
const ENCR_AES_GCM_16 = 20;

class AesGcm16 implements AeadAlgorithm {
  readonly transformId = ENCR_AES_GCM_16;
  readonly saltLength = SALT_LENGTH;
  readonly ivLength = IV_LENGTH;
  readonly icvLength = ICV_LENGTH;
  readonly keyMaterialLength: number;
  private readonly cipherName: 'aes-128-gcm' | 'aes-192-gcm' | 'aes-256-gcm';

  constructor(readonly keyBits: 128 | 192 | 256) {
    this.keyMaterialLength = keyBits / 8 + SALT_LENGTH;
    this.cipherName = `aes-${keyBits}-gcm`;
  }

  createContext(keyMaterial: Uint8Array, options?: AeadContextOptions): AeadContext {
    if (keyMaterial.length !== this.keyMaterialLength) {
      throw new CryptoError(`AES-GCM-16 ${this.keyBits}: key material must be ${this.keyMaterialLength} octets (key ‖ salt), got ${keyMaterial.length}`);
    }
    const implementation = options?.implementation ?? (nativeAeadAvailable() ? 'native' : 'node');
    if (implementation === 'native') return createNativeAesGcmContext(this, keyMaterial);
    if (implementation !== 'node') throw new CryptoError(`unknown AEAD implementation ${String(implementation)}`);
    const keyLen = this.keyBits / 8;
    // createSecretKey copies the octets into the KeyObject; zero our temporary copy.
    const keyCopy = Buffer.alloc(keyLen);
    keyCopy.set(keyMaterial.subarray(0, keyLen));
    const key = createSecretKey(keyCopy);
    keyCopy.fill(0);
    return new AesGcm16Context(this, this.cipherName, key, Buffer.from(keyMaterial.subarray(keyLen)));
  }
}

/**
 * Argument checks of sealInPlace/openInPlace, the same errors the addon throws: TypeError for a
 * non-Uint8Array or a non-number, RangeError for a bad or out-of-bounds offset/length.
 */
function checkInPlace(buf: unknown, ivOff: unknown, aad: unknown, off: unknown, len: unknown): void {
  if (!(buf instanceof Uint8Array)) throw new TypeError('AEAD: buf must be a Uint8Array');
  if (!(aad instanceof Uint8Array)) throw new TypeError('AEAD: aad must be a Uint8Array');
  for (const v of [ivOff, off, len]) {
    if (typeof v !== 'number') throw new TypeError('AEAD: offsets and lengths must be numbers');
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError('AEAD: offsets and lengths must be non-negative integers');
  }
  const n = buf.length;
  if ((ivOff as number) + IV_LENGTH > n) throw new RangeError(`AEAD: IV (${IV_LENGTH} octets at ivOff) outside buf`);
  if ((off as number) + (len as number) + ICV_LENGTH > n) throw new RangeError(`AEAD: data (and the ${ICV_LENGTH}-octet ICV after it) outside buf`);
}

class AesGcm16Context implements AeadContext {
  readonly implementation = 'node' as const;
  /** salt ‖ iv, rebuilt in place per operation. */
  private readonly nonce = Buffer.alloc(SALT_LENGTH + IV_LENGTH);

  constructor(
    readonly algorithm: AeadAlgorithm,
    private readonly cipherName: string,
    private key: KeyObject | null,
    salt: Buffer,
  ) {
    salt.copy(this.nonce, 0);
    salt.fill(0);
  }

  private liveKey(): KeyObject {
    if (this.key === null) throw new CryptoError('AEAD context used after destroy()');
    return this.key;
  }

  private setIv(iv: Uint8Array): void {
    if (iv.length !== IV_LENGTH) throw new CryptoError(`AES-GCM IV must be ${IV_LENGTH} octets, got ${iv.length}`);
    this.nonce.set(iv, SALT_LENGTH);
  }

  seal(iv: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Buffer {
    this.setIv(iv);
    const c = createCipheriv(this.cipherName as 'aes-128-gcm', this.liveKey(), this.nonce, { authTagLength: ICV_LENGTH });
    c.setAAD(aad);
    const head = c.update(plaintext);
    const tail = c.final();
    return Buffer.concat([head, tail, c.getAuthTag()], head.length + tail.length + ICV_LENGTH);
  }

  open(iv: Uint8Array, aad: Uint8Array, ciphertextAndIcv: Uint8Array): Buffer | null {
    if (iv.length !== IV_LENGTH || ciphertextAndIcv.length < ICV_LENGTH) return null;
    this.setIv(iv);
    const ctLen = ciphertextAndIcv.length - ICV_LENGTH;
    const d = createDecipheriv(this.cipherName as 'aes-128-gcm', this.liveKey(), this.nonce, { authTagLength: ICV_LENGTH });
    d.setAAD(aad);
    d.setAuthTag(ciphertextAndIcv.subarray(ctLen));
    const head = d.update(ciphertextAndIcv.subarray(0, ctLen));
    try {
      const tail = d.final();
      return tail.length === 0 ? head : Buffer.concat([head, tail]);
    } catch {
      head.fill(0);
      return null;
    }
  }

  sealInPlace(buf: Uint8Array, ivOff: number, aad: Uint8Array, ptOff: number, ptLen: number): void {
    const key = this.liveKey();
    checkInPlace(buf, ivOff, aad, ptOff, ptLen);
    this.nonce.set(buf.subarray(ivOff, ivOff + IV_LENGTH), SALT_LENGTH);
    const c = createCipheriv(this.cipherName as 'aes-128-gcm', key, this.nonce, { authTagLength: ICV_LENGTH });
    c.setAAD(aad);
    // node:crypto cannot write into buf: copy its output back (GCM output length = input length).
    const head = c.update(buf.subarray(ptOff, ptOff + ptLen));
    buf.set(head, ptOff);
    const tail = c.final();
    buf.set(tail, ptOff + head.length);
    buf.set(c.getAuthTag(), ptOff + ptLen);
  }

  openInPlace(buf: Uint8Array, ivOff: number, aad: Uint8Array, ctOff: number, ctLen: number): boolean {
    const key = this.liveKey();
    checkInPlace(buf, ivOff, aad, ctOff, ctLen);
    this.nonce.set(buf.subarray(ivOff, ivOff + IV_LENGTH), SALT_LENGTH);
    const d = createDecipheriv(this.cipherName as 'aes-128-gcm', key, this.nonce, { authTagLength: ICV_LENGTH });
    d.setAAD(aad);
    d.setAuthTag(buf.subarray(ctOff + ctLen, ctOff + ctLen + ICV_LENGTH));
    const head = d.update(buf.subarray(ctOff, ctOff + ctLen));
    let tail: Buffer;
    try {
      tail = d.final();
    } catch {
      head.fill(0);
      return false; // buf untouched: it still holds the ciphertext
    }
    buf.set(head, ctOff);
    buf.set(tail, ctOff + head.length);
    head.fill(0);
    return true;
  }

  destroy(): void {
    this.nonce.fill(0);
    this.key = null;
  }
}

export const AES_GCM_16_128: AeadAlgorithm = new AesGcm16(128);
export const AES_GCM_16_192: AeadAlgorithm = new AesGcm16(192);
export const AES_GCM_16_256: AeadAlgorithm = new AesGcm16(256);

/** The AEAD for an ENCR transform ID and Key Length attribute, or undefined if tunsec does not implement it. */
export function aeadFor(transformId: number, keyBits: number): AeadAlgorithm | undefined {
  if (transformId !== ENCR_AES_GCM_16) return undefined;
  switch (keyBits) {
    case 128:
      return AES_GCM_16_128;
    case 192:
      return AES_GCM_16_192;
    case 256:
      return AES_GCM_16_256;
    default:
      return undefined;
  }
}
