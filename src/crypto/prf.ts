/**
 * IKEv2 pseudo-random functions (Transform Type 2) and prf+.
 *
 * - PRF_HMAC_SHA1 (ID 2): HMAC (RFC 2104) with SHA-1, RFC 7296 §3.3.2;
 *   kept for older deployments (RFC 8247 §2.3 rates it MUST-, on its way out).
 * - PRF_HMAC_SHA2_256/384/512 (IDs 5/6/7): RFC 4868 §2.1.2. Output length
 *   and preferred key length are both the hash output length.
 * - prf+ (RFC 7296 §2.13): the key expansion every IKEv2 key derivation uses.
 *
 * HMAC accepts keys of any length (RFC 2104 §2: longer keys are hashed), which
 * IKEv2 relies on when it keys the PRF with Ni | Nr (§2.14). The fixed-key PRFs
 * AES128_XCBC (ID 4) and AES128_CMAC (ID 8) are not implemented.
 */
import { createHmac } from 'node:crypto';
import { CryptoError, type Prf } from './types.js';

/** IANA IKEv2 Transform Type 2 IDs implemented here (see src/ike/transforms.ts PrfId). */
const PRF_ID_HMAC_SHA1 = 2;
const PRF_ID_HMAC_SHA2_256 = 5;
const PRF_ID_HMAC_SHA2_384 = 6;
const PRF_ID_HMAC_SHA2_512 = 7;

/** prf+ may run at most 255 iterations: the counter is one octet (RFC 7296 §2.13). */
export const PRF_PLUS_MAX_ITERATIONS = 255;

class HmacPrf implements Prf {
  constructor(
    readonly transformId: number,
    readonly name: string,
    private readonly hash: 'sha1' | 'sha256' | 'sha384' | 'sha512',
    readonly outputLength: number,
  ) {}

  compute(key: Uint8Array, data: Uint8Array): Buffer {
    return createHmac(this.hash, key).update(data).digest();
  }
}

/** PRF_HMAC_SHA1 (2): RFC 2104 + FIPS 180-4 SHA-1, 20-octet output. */
export const PRF_HMAC_SHA1: Prf = new HmacPrf(PRF_ID_HMAC_SHA1, 'PRF_HMAC_SHA1', 'sha1', 20);
/** PRF_HMAC_SHA2_256 (5), RFC 4868 §2.1.2: 32-octet output and preferred key. */
export const PRF_HMAC_SHA2_256: Prf = new HmacPrf(PRF_ID_HMAC_SHA2_256, 'PRF_HMAC_SHA2_256', 'sha256', 32);
/** PRF_HMAC_SHA2_384 (6), RFC 4868 §2.1.2: 48-octet output and preferred key. */
export const PRF_HMAC_SHA2_384: Prf = new HmacPrf(PRF_ID_HMAC_SHA2_384, 'PRF_HMAC_SHA2_384', 'sha384', 48);
/** PRF_HMAC_SHA2_512 (7), RFC 4868 §2.1.2: 64-octet output and preferred key. */
export const PRF_HMAC_SHA2_512: Prf = new HmacPrf(PRF_ID_HMAC_SHA2_512, 'PRF_HMAC_SHA2_512', 'sha512', 64);

/** The PRF for a Transform Type 2 ID, or undefined if tunsec does not implement it. */
export function prfFor(transformId: number): Prf | undefined {
  switch (transformId) {
    case PRF_ID_HMAC_SHA1:
      return PRF_HMAC_SHA1;
    case PRF_ID_HMAC_SHA2_256:
      return PRF_HMAC_SHA2_256;
    case PRF_ID_HMAC_SHA2_384:
      return PRF_HMAC_SHA2_384;
    case PRF_ID_HMAC_SHA2_512:
      return PRF_HMAC_SHA2_512;
    default:
      return undefined;
  }
}

/**
 * prf+ (RFC 7296 §2.13):
 *
 *   prf+ (K,S) = T1 | T2 | T3 | T4 | ...
 *   T1 = prf (K, S | 0x01)
 *   T2 = prf (K, T1 | S | 0x02)
 *   Tn = prf (K, Tn-1 | S | n)
 *
 * truncated to `length` octets. Throws CryptoError if that takes more than
 * 255 iterations (255 × the PRF output length). The result is a fresh Buffer
 * the caller may zero; the intermediate blocks are zeroed here.
 */
export function prfPlus(prf: Prf, key: Uint8Array, seed: Uint8Array, length: number): Buffer {
  if (!Number.isSafeInteger(length) || length < 0) {
    throw new CryptoError(`prf+: output length must be a non-negative integer, got ${length}`);
  }
  const blockLength = prf.outputLength;
  const iterations = Math.ceil(length / blockLength);
  if (iterations > PRF_PLUS_MAX_ITERATIONS) {
    throw new CryptoError(`prf+: ${length} octets need ${iterations} iterations of ${prf.name}, at most ${PRF_PLUS_MAX_ITERATIONS} are allowed`);
  }
  const out = Buffer.alloc(length);
  // Input of iteration n: T(n-1) | S | n; T0 is empty.
  const input = Buffer.alloc(blockLength + seed.length + 1);
  let previousLength = 0;
  for (let n = 1, offset = 0; n <= iterations; n++) {
    input.set(seed, previousLength);
    input[previousLength + seed.length] = n;
    const t = prf.compute(key, input.subarray(0, previousLength + seed.length + 1));
    if (t.length !== blockLength) {
      t.fill(0);
      throw new CryptoError(`prf+: ${prf.name} returned ${t.length} octets, expected ${blockLength}`);
    }
    offset += t.copy(out, offset, 0, Math.min(blockLength, length - offset));
    t.copy(input, 0);
    previousLength = blockLength;
    t.fill(0);
  }
  input.fill(0);
  return out;
}
