/**
 * Modular exponential (MODP) Diffie-Hellman groups 14-18 of RFC 3526
 * (2048- to 8192-bit safe primes, generator 2).
 *
 * - Key Exchange Data is g^x mod p as a big-endian integer, zero-prepended to
 *   exactly the length of the prime (RFC 7296 §3.4).
 * - The shared secret g^xy mod p is likewise the full prime length
 *   (RFC 7296 §2.14: g^ir is padded with zeros to the length of the modulus).
 * - A peer value y is accepted only if it has that length and 1 < y < p-1
 *   (RFC 6989 §2.1: for safe-prime groups this range check is the whole test).
 *
 * The primes are OpenSSL's built-in RFC 3526 groups (node `getDiffieHellman`);
 * test/crypto/ke-modp.test.ts compares them with the RFC's hexadecimal text.
 * The exponentiation is OpenSSL's too.
 */
import { createDiffieHellman, getDiffieHellman, randomBytes, type DiffieHellman } from 'node:crypto';
import { CryptoError, type KeyExchangeGroup, type KeyExchangePrivate } from '../types.js';
import { leftPad, octetsToBigInt } from './octets.js';
import { errorMessage } from '../../util/format.js';

export interface ModpGroupSpec {
  readonly groupId: number;
  /** IANA "Transform Type 4" name. */
  readonly name: string;
  /** node:crypto / OpenSSL name of the RFC 3526 group. */
  readonly nodeGroup: 'modp14' | 'modp15' | 'modp16' | 'modp17' | 'modp18';
  readonly primeBits: number;
  /**
   * Bits of a freshly generated private exponent: the larger "exponent size"
   * column of RFC 3526 §8 ("Strength Estimate 2"), i.e. twice the estimated
   * strength, as RFC 3526 §1 asks.
   */
  readonly exponentBits: number;
}

export const MODP_GROUP_SPECS: readonly ModpGroupSpec[] = [
  { groupId: 14, name: '2048-bit MODP Group', nodeGroup: 'modp14', primeBits: 2048, exponentBits: 320 },
  { groupId: 15, name: '3072-bit MODP Group', nodeGroup: 'modp15', primeBits: 3072, exponentBits: 420 },
  { groupId: 16, name: '4096-bit MODP Group', nodeGroup: 'modp16', primeBits: 4096, exponentBits: 480 },
  { groupId: 17, name: '6144-bit MODP Group', nodeGroup: 'modp17', primeBits: 6144, exponentBits: 540 },
  { groupId: 18, name: '8192-bit MODP Group', nodeGroup: 'modp18', primeBits: 8192, exponentBits: 620 },
];

const GENERATOR = Buffer.from([2]);

export class ModpGroup implements KeyExchangeGroup {
  readonly groupId: number;
  readonly name: string;
  readonly publicValueLength: number;
  readonly sharedSecretLength: number;
  /** p, big-endian, `primeBits / 8` octets. */
  readonly prime: Buffer;
  private readonly p: bigint;

  constructor(readonly spec: ModpGroupSpec) {
    this.groupId = spec.groupId;
    this.name = spec.name;
    this.publicValueLength = spec.primeBits / 8;
    this.sharedSecretLength = spec.primeBits / 8;
    this.prime = getDiffieHellman(spec.nodeGroup).getPrime();
    if (this.prime.length !== this.publicValueLength) {
      throw new CryptoError(`${this.label()}: OpenSSL prime has ${this.prime.length} octets`);
    }
    this.p = octetsToBigInt(this.prime);
  }

  generate(): KeyExchangePrivate {
    const bytes = Math.ceil(this.spec.exponentBits / 8);
    const excessBits = bytes * 8 - this.spec.exponentBits;
    for (;;) {
      const x = randomBytes(bytes);
      x[0] = x[0]! & (0xff >> excessBits);
      if (octetsToBigInt(x) > 1n) return this.privateFrom(x);
    }
  }

  /** `privateValue`: the exponent x, big-endian, at most the prime's length, 1 < x < p-1. */
  fromPrivate(privateValue: Uint8Array): KeyExchangePrivate {
    if (privateValue.length === 0 || privateValue.length > this.prime.length) {
      throw new CryptoError(`${this.label()}: private value must be 1..${this.prime.length} octets, got ${privateValue.length}`);
    }
    const x = octetsToBigInt(privateValue);
    if (x <= 1n || x >= this.p - 1n) throw new CryptoError(`${this.label()}: private value is not in (1, p-1)`);
    return this.privateFrom(Buffer.from(privateValue));
  }

  /** Check a peer's Key Exchange Data: exact prime length and 1 < y < p-1 (RFC 7296 §3.4, RFC 6989 §2.1). */
  validatePublicValue(data: Uint8Array): void {
    if (data.length !== this.publicValueLength) {
      throw new CryptoError(`${this.label()}: Key Exchange Data must be ${this.publicValueLength} octets, got ${data.length}`);
    }
    const y = octetsToBigInt(data);
    if (y <= 1n || y >= this.p - 1n) {
      throw new CryptoError(`${this.label()}: public value is not in the range 1 < y < p-1`);
    }
  }

  label(): string {
    return `KE group ${this.groupId} (${this.spec.nodeGroup})`;
  }

  private privateFrom(x: Buffer): ModpPrivate {
    const dh = createDiffieHellman(this.prime, GENERATOR);
    try {
      dh.setPrivateKey(x);
      dh.generateKeys(); // computes g^x mod p from the private value just set
    } catch (err) {
      throw new CryptoError(`${this.label()}: OpenSSL rejected the private value (${errorMessage(err)})`);
    }
    return new ModpPrivate(this, dh, leftPad(dh.getPublicKey(), this.publicValueLength));
  }
}

class ModpPrivate implements KeyExchangePrivate {
  constructor(
    readonly group: ModpGroup,
    private readonly dh: DiffieHellman,
    readonly publicValue: Buffer,
  ) {}

  computeSharedSecret(peerPublicValue: Uint8Array): Buffer {
    this.group.validatePublicValue(peerPublicValue);
    let secret: Buffer;
    try {
      secret = this.dh.computeSecret(Buffer.from(peerPublicValue));
    } catch (err) {
      throw new CryptoError(`${this.group.label()}: Diffie-Hellman failed (${errorMessage(err)})`);
    }
    return leftPad(secret, this.group.sharedSecretLength);
  }
}
