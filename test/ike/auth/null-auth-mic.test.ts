/**
 * NULL Authentication's AUTH data (RFC 7619 §2.1): RFC 7296 §2.15's shared key
 * MIC with SK_pi / SK_pr as the secret, checked against HMAC computed directly
 * with node:crypto.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { prfFor } from '../../../src/crypto/prf.js';
import { sharedKeyMic, sharedKeyMicMatches } from '../../../src/ike/auth/shared-key-mic.js';

describe('the shared key MIC of NULL Authentication (RFC 7296 §2.15, RFC 7619 §2.1)', () => {
  it.each([
    [5, 'sha256'],
    [6, 'sha384'],
    [7, 'sha512'],
  ] as const)('PRF_HMAC transform %i: AUTH = prf(prf(SK_p, "Key Pad for IKEv2"), signed octets)', (transformId, hash) => {
    const prf = prfFor(transformId)!;
    const skP = randomBytes(prf.outputLength);
    const octets = randomBytes(300);
    const padded = createHmac(hash, skP).update('Key Pad for IKEv2', 'ascii').digest();
    const want = createHmac(hash, padded).update(octets).digest();
    const got = sharedKeyMic(prf, skP, octets);
    expect(got.equals(want)).toBe(true);
    expect(sharedKeyMicMatches(got, want)).toBe(true);
    expect(sharedKeyMicMatches(got, Buffer.concat([want, Buffer.alloc(1)]))).toBe(false);
    expect(sharedKeyMicMatches(got, Buffer.alloc(0))).toBe(false);
    const flipped = Buffer.from(want);
    flipped[0]! ^= 1;
    expect(sharedKeyMicMatches(got, flipped)).toBe(false);
  });
});
