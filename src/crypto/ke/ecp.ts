/**
 * Elliptic curve groups modulo a prime (ECP) for IKEv2 Key Exchange:
 *
 * - groups 19, 20, 21: NIST P-256, P-384, P-521 (RFC 5903);
 * - groups 27, 28, 29, 30: brainpoolP224r1, P256r1, P384r1, P512r1 (RFC 6954,
 *   curves from RFC 5639).
 *
 * Key Exchange Data (RFC 5903 §7; RFC 6954 uses the same format): x ‖ y, each coordinate a
 * big-endian integer of exactly the field size in octets; no 0x04 prefix and
 * no compressed form. The shared secret g^ir is the x coordinate of the
 * common point, again field-size octets (RFC 5903 §7, RFC 6954).
 *
 * The scalar multiplication runs in OpenSSL (node:crypto `createECDH`). The
 * peer's value is checked here first, as RFC 6989 §2 asks:
 * exact length, both coordinates below p, not the all-zero "point at
 * infinity" some stacks send, and y² = x³ + ax + b (mod p). Every curve here
 * has cofactor 1, so a point on the curve lies in the prime-order group and
 * no further subgroup test is needed (RFC 6989 §2).
 */
import { createECDH, type ECDH } from 'node:crypto';
import { CryptoError, type KeyExchangeGroup, type KeyExchangePrivate } from '../types.js';
import { bigIntToOctets, isAllZero, leftPad, octetsToBigInt } from './octets.js';
import { errorMessage } from '../../util/format.js';

/** Short Weierstrass curve y² = x³ + ax + b over GF(p) with base point (gx, gy) of prime order n, cofactor 1. */
export interface WeierstrassCurve {
  readonly p: bigint;
  readonly a: bigint;
  readonly b: bigint;
  readonly n: bigint;
  readonly gx: bigint;
  readonly gy: bigint;
}

export interface EcpGroupSpec {
  readonly groupId: number;
  /** IANA "Transform Type 4" name. */
  readonly name: string;
  /** OpenSSL curve name for createECDH. */
  readonly opensslCurve: string;
  /** Octets per coordinate (= octets of the private scalar for these curves). */
  readonly fieldLength: number;
  readonly curve: WeierstrassCurve;
}

/** NIST P-256, RFC 5903 §3.1. */
const P256: WeierstrassCurve = {
  p: 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn,
  a: 0xffffffff00000001000000000000000000000000fffffffffffffffffffffffcn,
  b: 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn,
  n: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
  gx: 0x6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296n,
  gy: 0x4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5n,
};

/** NIST P-384, RFC 5903 §3.2. */
const P384: WeierstrassCurve = {
  p: 0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffffn,
  a: 0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000fffffffcn,
  b: 0xb3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aefn,
  n: 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
  gx: 0xaa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7n,
  gy: 0x3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5fn,
};

/** NIST P-521, RFC 5903 §3.3. */
const P521: WeierstrassCurve = {
  p: 0x1ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffn,
  a: 0x1fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffcn,
  b: 0x51953eb9618e1c9a1f929a21a0b68540eea2da725b99b315f3b8b489918ef109e156193951ec7e937b1652c0bd3bb1bf073573df883d2c34f1ef451fd46b503f00n,
  n: 0x1fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409n,
  gx: 0xc6858e06b70404e9cd9e3ecb662395b4429c648139053fb521f828af606b4d3dbaa14b5e77efe75928fe1dc127a2ffa8de3348b3c1856a429bf97e7e31c2e5bd66n,
  gy: 0x11839296a789a3bc0045c8a5fb42c7d1bd998f54449579b446817afbd17273e662c97ee72995ef42640c550b9013fad0761353c7086a272c24088be94769fd16650n,
};

/** brainpoolP224r1, RFC 5639 §3.3. */
const BP224R1: WeierstrassCurve = {
  p: 0xd7c134aa264366862a18302575d1d787b09f075797da89f57ec8c0ffn,
  a: 0x68a5e62ca9ce6c1c299803a6c1530b514e182ad8b0042a59cad29f43n,
  b: 0x2580f63ccfe44138870713b1a92369e33e2135d266dbb372386c400bn,
  n: 0xd7c134aa264366862a18302575d0fb98d116bc4b6ddebca3a5a7939fn,
  gx: 0x0d9029ad2c7e5cf4340823b2a87dc68c9e4ce3174c1e6efdee12c07dn,
  gy: 0x58aa56f772c0726f24c6b89e4ecdac24354b9e99caa3f6d3761402cdn,
};

/** brainpoolP256r1, RFC 5639 §3.4. */
const BP256R1: WeierstrassCurve = {
  p: 0xa9fb57dba1eea9bc3e660a909d838d726e3bf623d52620282013481d1f6e5377n,
  a: 0x7d5a0975fc2c3057eef67530417affe7fb8055c126dc5c6ce94a4b44f330b5d9n,
  b: 0x26dc5c6ce94a4b44f330b5d9bbd77cbf958416295cf7e1ce6bccdc18ff8c07b6n,
  n: 0xa9fb57dba1eea9bc3e660a909d838d718c397aa3b561a6f7901e0e82974856a7n,
  gx: 0x8bd2aeb9cb7e57cb2c4b482ffc81b7afb9de27e1e3bd23c23a4453bd9ace3262n,
  gy: 0x547ef835c3dac4fd97f8461a14611dc9c27745132ded8e545c1d54c72f046997n,
};

/** brainpoolP384r1, RFC 5639 §3.6. */
const BP384R1: WeierstrassCurve = {
  p: 0x8cb91e82a3386d280f5d6f7e50e641df152f7109ed5456b412b1da197fb71123acd3a729901d1a71874700133107ec53n,
  a: 0x7bc382c63d8c150c3c72080ace05afa0c2bea28e4fb22787139165efba91f90f8aa5814a503ad4eb04a8c7dd22ce2826n,
  b: 0x04a8c7dd22ce28268b39b55416f0447c2fb77de107dcd2a62e880ea53eeb62d57cb4390295dbc9943ab78696fa504c11n,
  n: 0x8cb91e82a3386d280f5d6f7e50e641df152f7109ed5456b31f166e6cac0425a7cf3ab6af6b7fc3103b883202e9046565n,
  gx: 0x1d1c64f068cf45ffa2a63a81b7c13f6b8847a3e77ef14fe3db7fcafe0cbd10e8e826e03436d646aaef87b2e247d4af1en,
  gy: 0x8abe1d7520f9c2a45cb1eb8e95cfd55262b70b29feec5864e19c054ff99129280e4646217791811142820341263c5315n,
};

/** brainpoolP512r1, RFC 5639 §3.7. */
const BP512R1: WeierstrassCurve = {
  p: 0xaadd9db8dbe9c48b3fd4e6ae33c9fc07cb308db3b3c9d20ed6639cca703308717d4d9b009bc66842aecda12ae6a380e62881ff2f2d82c68528aa6056583a48f3n,
  a: 0x7830a3318b603b89e2327145ac234cc594cbdd8d3df91610a83441caea9863bc2ded5d5aa8253aa10a2ef1c98b9ac8b57f1117a72bf2c7b9e7c1ac4d77fc94can,
  b: 0x3df91610a83441caea9863bc2ded5d5aa8253aa10a2ef1c98b9ac8b57f1117a72bf2c7b9e7c1ac4d77fc94cadc083e67984050b75ebae5dd2809bd638016f723n,
  n: 0xaadd9db8dbe9c48b3fd4e6ae33c9fc07cb308db3b3c9d20ed6639cca70330870553e5c414ca92619418661197fac10471db1d381085ddaddb58796829ca90069n,
  gx: 0x81aee4bdd82ed9645a21322e9c4c6a9385ed9f70b5d916c1b43b62eef4d0098eff3b1f78e2d0d48d50d1687b93b97d5f7c6d5047406a5e688b352209bcb9f822n,
  gy: 0x7dde385d566332ecc0eabfa9cf7822fdf209f70024a57b1aa000c55b881f8111b2dcde494a5f485e5bca4bd88a2763aed1ca2b2fa8f0540678cd1e0f3ad80892n,
};

/** The ECP groups, by IANA Transform Type 4 ID. */
export const ECP_GROUP_SPECS: readonly EcpGroupSpec[] = [
  { groupId: 19, name: '256-bit random ECP group', opensslCurve: 'prime256v1', fieldLength: 32, curve: P256 },
  { groupId: 20, name: '384-bit random ECP group', opensslCurve: 'secp384r1', fieldLength: 48, curve: P384 },
  { groupId: 21, name: '521-bit random ECP group', opensslCurve: 'secp521r1', fieldLength: 66, curve: P521 },
  { groupId: 27, name: '224-bit Brainpool ECP group', opensslCurve: 'brainpoolP224r1', fieldLength: 28, curve: BP224R1 },
  { groupId: 28, name: '256-bit Brainpool ECP group', opensslCurve: 'brainpoolP256r1', fieldLength: 32, curve: BP256R1 },
  { groupId: 29, name: '384-bit Brainpool ECP group', opensslCurve: 'brainpoolP384r1', fieldLength: 48, curve: BP384R1 },
  { groupId: 30, name: '512-bit Brainpool ECP group', opensslCurve: 'brainpoolP512r1', fieldLength: 64, curve: BP512R1 },
];

const mod = (v: bigint, m: bigint): bigint => {
  const r = v % m;
  return r < 0n ? r + m : r;
};

/** y² ≡ x³ + ax + b (mod p), for coordinates already reduced below p. */
export function isOnCurve(curve: WeierstrassCurve, x: bigint, y: bigint): boolean {
  const { p, a, b } = curve;
  return mod(y * y, p) === mod(x * x * x + a * x + b, p);
}

/** An ECP group; one instance per group ID. */
export class EcpGroup implements KeyExchangeGroup {
  readonly groupId: number;
  readonly name: string;
  readonly publicValueLength: number;
  readonly sharedSecretLength: number;

  constructor(readonly spec: EcpGroupSpec) {
    this.groupId = spec.groupId;
    this.name = spec.name;
    this.publicValueLength = 2 * spec.fieldLength;
    this.sharedSecretLength = spec.fieldLength;
  }

  generate(): KeyExchangePrivate {
    const ecdh = createECDH(this.spec.opensslCurve);
    ecdh.generateKeys();
    return new EcpPrivate(this, ecdh);
  }

  /** `privateValue`: the scalar d, big-endian, exactly `fieldLength` octets, 1 ≤ d < n (RFC 5903 §8 form). */
  fromPrivate(privateValue: Uint8Array): KeyExchangePrivate {
    const { fieldLength, curve } = this.spec;
    if (privateValue.length !== fieldLength) {
      throw new CryptoError(`${this.label()}: private value must be ${fieldLength} octets, got ${privateValue.length}`);
    }
    const d = octetsToBigInt(privateValue);
    if (d < 1n || d >= curve.n) throw new CryptoError(`${this.label()}: private value is not in [1, n-1]`);
    const ecdh = createECDH(this.spec.opensslCurve);
    try {
      ecdh.setPrivateKey(Buffer.from(privateValue));
    } catch (err) {
      throw new CryptoError(`${this.label()}: OpenSSL rejected the private value (${errorMessage(err)})`);
    }
    return new EcpPrivate(this, ecdh);
  }

  /**
   * Check a peer's Key Exchange Data (RFC 6989 §2) and return it as an
   * SEC 1 uncompressed point (0x04 ‖ x ‖ y) for OpenSSL.
   */
  decodePublicValue(data: Uint8Array): Buffer {
    const { fieldLength, curve } = this.spec;
    if (data.length !== this.publicValueLength) {
      throw new CryptoError(`${this.label()}: Key Exchange Data must be ${this.publicValueLength} octets (x ‖ y), got ${data.length}`);
    }
    if (isAllZero(data)) {
      throw new CryptoError(`${this.label()}: Key Exchange Data is all zero (the point at infinity is not a valid public value)`);
    }
    const x = octetsToBigInt(data.subarray(0, fieldLength));
    const y = octetsToBigInt(data.subarray(fieldLength));
    if (x >= curve.p || y >= curve.p) throw new CryptoError(`${this.label()}: public value coordinate is not below p`);
    if (!isOnCurve(curve, x, y)) throw new CryptoError(`${this.label()}: public value is not a point on the curve`);
    return Buffer.concat([Buffer.from([0x04]), data]);
  }

  label(): string {
    return `KE group ${this.groupId} (${this.spec.opensslCurve})`;
  }
}

class EcpPrivate implements KeyExchangePrivate {
  readonly publicValue: Buffer;

  constructor(
    readonly group: EcpGroup,
    private readonly ecdh: ECDH,
  ) {
    const uncompressed = ecdh.getPublicKey(null, 'uncompressed');
    const expected = 1 + group.publicValueLength;
    if (uncompressed.length !== expected || uncompressed[0] !== 0x04) {
      throw new CryptoError(`${group.label()}: unexpected public key encoding from OpenSSL`);
    }
    this.publicValue = uncompressed.subarray(1);
  }

  computeSharedSecret(peerPublicValue: Uint8Array): Buffer {
    const point = this.group.decodePublicValue(peerPublicValue);
    let secret: Buffer;
    try {
      secret = this.ecdh.computeSecret(point);
    } catch (err) {
      throw new CryptoError(`${this.group.label()}: ECDH failed (${errorMessage(err)})`);
    }
    return leftPad(secret, this.group.sharedSecretLength);
  }
}

/** The curve's base point as Key Exchange Data (x ‖ y); handy in tests. */
export function basePointKeyExchangeData(spec: EcpGroupSpec): Buffer {
  return Buffer.concat([bigIntToOctets(spec.curve.gx, spec.fieldLength), bigIntToOctets(spec.curve.gy, spec.fieldLength)]);
}
