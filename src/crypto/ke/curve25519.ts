/**
 * Curve25519 (group 31) and Curve448 (group 32) for IKEv2 Key Exchange,
 * RFC 8031, with the X25519 / X448 functions of RFC 7748 §5.
 *
 * - Key Exchange Data is the 32-octet (X25519) or 56-octet (X448) u
 *   coordinate, little-endian as RFC 7748 §5 encodes it (RFC 8031 §2).
 * - The shared secret is the X25519/X448 output, same length (RFC 8031 §2).
 * - RFC 8031 §2.3: a peer value of any other length is invalid, and a
 *   shared secret of all zeros (a low-order peer point) MUST be rejected.
 *
 * The arithmetic is OpenSSL's (node:crypto KeyObjects + diffieHellman); the
 * raw keys travel in the fixed PKCS #8 / SubjectPublicKeyInfo wrappers of
 * RFC 8410 §7 and §4, whose only variable part is the key itself.
 */
import { createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { CryptoError, type KeyExchangeGroup, type KeyExchangePrivate } from '../types.js';
import { isAllZero } from './octets.js';
import { errorMessage } from '../../util/format.js';

interface XdhSpec {
  readonly groupId: number;
  readonly name: string;
  readonly keyType: 'x25519' | 'x448';
  /** Octets of a private scalar, a public u coordinate and the shared secret. */
  readonly length: number;
  /** RFC 8410 §7 OneAsymmetricKey (PKCS #8) DER up to the raw private key. */
  readonly pkcs8Prefix: Buffer;
  /** RFC 8410 §4 SubjectPublicKeyInfo DER up to the raw public key. */
  readonly spkiPrefix: Buffer;
}

/** id-X25519 = 1.3.101.110, id-X448 = 1.3.101.111 (RFC 8410 §3). */
const X25519_SPEC: XdhSpec = {
  groupId: 31,
  name: 'Curve25519',
  keyType: 'x25519',
  length: 32,
  pkcs8Prefix: Buffer.from('302e020100300506032b656e04220420', 'hex'),
  spkiPrefix: Buffer.from('302a300506032b656e032100', 'hex'),
};

const X448_SPEC: XdhSpec = {
  groupId: 32,
  name: 'Curve448',
  keyType: 'x448',
  length: 56,
  pkcs8Prefix: Buffer.from('3046020100300506032b656f043a0438', 'hex'),
  spkiPrefix: Buffer.from('3042300506032b656f033900', 'hex'),
};

export class XdhGroup implements KeyExchangeGroup {
  readonly groupId: number;
  readonly name: string;
  readonly publicValueLength: number;
  readonly sharedSecretLength: number;

  constructor(readonly spec: XdhSpec) {
    this.groupId = spec.groupId;
    this.name = spec.name;
    this.publicValueLength = spec.length;
    this.sharedSecretLength = spec.length;
  }

  generate(): KeyExchangePrivate {
    const { privateKey, publicKey } = this.spec.keyType === 'x25519' ? generateKeyPairSync('x25519') : generateKeyPairSync('x448');
    return new XdhPrivate(this, privateKey, this.rawPublic(publicKey));
  }

  /** `privateValue`: the RFC 7748 scalar k as octets (clamping is part of X25519/X448 itself). */
  fromPrivate(privateValue: Uint8Array): KeyExchangePrivate {
    if (privateValue.length !== this.spec.length) {
      throw new CryptoError(`${this.label()}: private value must be ${this.spec.length} octets, got ${privateValue.length}`);
    }
    let privateKey: KeyObject;
    try {
      privateKey = createPrivateKey({
        key: Buffer.concat([this.spec.pkcs8Prefix, privateValue]),
        format: 'der',
        type: 'pkcs8',
      });
    } catch (err) {
      throw new CryptoError(`${this.label()}: OpenSSL rejected the private value (${errorMessage(err)})`);
    }
    return new XdhPrivate(this, privateKey, this.rawPublic(createPublicKey(privateKey)));
  }

  /** The peer's u coordinate as a public KeyObject; CryptoError on a wrong length (RFC 8031 §2.3). */
  decodePublicValue(data: Uint8Array): KeyObject {
    if (data.length !== this.spec.length) {
      throw new CryptoError(`${this.label()}: Key Exchange Data must be ${this.spec.length} octets, got ${data.length}`);
    }
    try {
      return createPublicKey({ key: Buffer.concat([this.spec.spkiPrefix, data]), format: 'der', type: 'spki' });
    } catch (err) {
      throw new CryptoError(`${this.label()}: OpenSSL rejected the public value (${errorMessage(err)})`);
    }
  }

  label(): string {
    return `KE group ${this.groupId} (${this.spec.keyType})`;
  }

  private rawPublic(publicKey: KeyObject): Buffer {
    const spki = publicKey.export({ format: 'der', type: 'spki' });
    const prefix = this.spec.spkiPrefix;
    if (spki.length !== prefix.length + this.spec.length || !spki.subarray(0, prefix.length).equals(prefix)) {
      throw new CryptoError(`${this.label()}: unexpected public key encoding from OpenSSL`);
    }
    return spki.subarray(prefix.length);
  }
}

class XdhPrivate implements KeyExchangePrivate {
  constructor(
    readonly group: XdhGroup,
    private readonly privateKey: KeyObject,
    readonly publicValue: Buffer,
  ) {}

  computeSharedSecret(peerPublicValue: Uint8Array): Buffer {
    const publicKey = this.group.decodePublicValue(peerPublicValue);
    let secret: Buffer;
    try {
      secret = diffieHellman({ privateKey: this.privateKey, publicKey });
    } catch (err) {
      // OpenSSL itself refuses an all-zero X25519/X448 output; report it the RFC 8031 way.
      throw new CryptoError(`${this.group.label()}: key agreement failed, low-order peer value? (${errorMessage(err)})`);
    }
    if (secret.length !== this.group.sharedSecretLength) {
      throw new CryptoError(`${this.group.label()}: shared secret of unexpected length ${secret.length}`);
    }
    if (isAllZero(secret)) {
      throw new CryptoError(`${this.group.label()}: shared secret is all zero (RFC 8031 §2.3)`);
    }
    return secret;
  }
}

export const CURVE25519 = new XdhGroup(X25519_SPEC);
export const CURVE448 = new XdhGroup(X448_SPEC);
