/**
 * AES-GCM with a 16-octet ICV as IKEv2 (RFC 5282) and ESP (RFC 4106) use it:
 * key material = key ‖ 4-octet salt, nonce = salt ‖ 8-octet explicit IV.
 * node:crypto (OpenSSL) on the fast path.
 */
import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject } from 'node:crypto';
import { CryptoError, type AeadAlgorithm, type AeadContext } from './types.js';

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

  createContext(keyMaterial: Uint8Array): AeadContext {
    if (keyMaterial.length !== this.keyMaterialLength) {
      throw new CryptoError(
        `AES-GCM-16 ${this.keyBits}: key material must be ${this.keyMaterialLength} octets (key ‖ salt), got ${keyMaterial.length}`,
      );
    }
    const keyLen = this.keyBits / 8;
    // createSecretKey copies the octets into the KeyObject; zero our temporary copy.
    const keyCopy = Buffer.alloc(keyLen);
    keyCopy.set(keyMaterial.subarray(0, keyLen));
    const key = createSecretKey(keyCopy);
    keyCopy.fill(0);
    return new AesGcm16Context(this, this.cipherName, key, Buffer.from(keyMaterial.subarray(keyLen)));
  }
}

class AesGcm16Context implements AeadContext {
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
