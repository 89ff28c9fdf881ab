/**
 * Peer Key Exchange Data validation for every supported group: malformed
 * values (wrong length, not on the curve, coordinates ≥ p, all-zero / point
 * at infinity, out-of-range MODP values) raise CryptoError and nothing else
 * (RFC 7296 §3.4, RFC 6989 §2, RFC 5903 §7, RFC 6954, RFC 8031 §2.3).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { SUPPORTED_KE_GROUPS, isEcpGroup, isModpGroup, keyExchangeGroup } from '../../src/crypto/ke/index.js';
import { bigIntToOctets } from '../../src/crypto/ke/octets.js';
import { CryptoError, type KeyExchangeGroup, type KeyExchangePrivate } from '../../src/crypto/types.js';

function group(id: number): KeyExchangeGroup {
  const g = keyExchangeGroup(id);
  if (!g) throw new Error(`group ${id} missing`);
  return g;
}

/** Runs `f`; passes if it returns a full-length secret or throws CryptoError, fails on any other exception. */
function onlyCryptoError(ours: KeyExchangePrivate, data: Uint8Array): void {
  try {
    expect(ours.computeSharedSecret(data)).toHaveLength(ours.group.sharedSecretLength);
  } catch (err) {
    if (!(err instanceof CryptoError)) throw err;
  }
}

describe('supported key exchange groups', () => {
  it('are MODP 14-18, ECP 19-21, brainpool 27-30, Curve25519 (31) and Curve448 (32)', () => {
    expect(SUPPORTED_KE_GROUPS).toEqual([14, 15, 16, 17, 18, 19, 20, 21, 27, 28, 29, 30, 31, 32]);
    for (const id of SUPPORTED_KE_GROUPS) expect(group(id).groupId).toBe(id);
  });

  it('unknown or deprecated group IDs give undefined', () => {
    for (const id of [0, 1, 2, 5, 22, 23, 24, 25, 26, 33, 65535]) expect(keyExchangeGroup(id)).toBeUndefined();
  });
});

for (const id of SUPPORTED_KE_GROUPS) {
  const g = group(id);
  const L = g.publicValueLength;
  describe(`group ${id} (${g.name}) peer value validation`, () => {
    const ours = g.generate();

    it('KE data of the wrong length is rejected with CryptoError', () => {
      for (const length of [0, 1, L - 1, L + 1, 2 * L]) {
        expect(() => ours.computeSharedSecret(Buffer.alloc(length, 0x5a)), `length ${length}`).toThrow(CryptoError);
      }
    });

    it('all-zero KE data (the point at infinity, u = 0 or y = 0) is rejected with CryptoError', () => {
      expect(() => ours.computeSharedSecret(Buffer.alloc(L))).toThrow(CryptoError);
    });

    it('random octet strings of random lengths never raise anything but CryptoError (property)', () => {
      const runs = isModpGroup(g) && g.spec.primeBits > 4096 ? 15 : 40;
      fc.assert(
        fc.property(fc.uint8Array({ minLength: 0, maxLength: 2 * L + 2 }), (data) => onlyCryptoError(ours, data)),
        { numRuns: runs },
      );
      fc.assert(
        fc.property(fc.uint8Array({ minLength: L, maxLength: L }), (data) => onlyCryptoError(ours, data)),
        { numRuns: runs },
      );
    });

    it('fromPrivate with random octet strings never raises anything but CryptoError (property)', () => {
      fc.assert(
        fc.property(fc.uint8Array({ minLength: 0, maxLength: L + 2 }), (data) => {
          try {
            expect(g.fromPrivate(data).publicValue).toHaveLength(L);
          } catch (err) {
            if (!(err instanceof CryptoError)) throw err;
          }
        }),
        { numRuns: 25 },
      );
    });

    if (isEcpGroup(g)) {
      const { curve, fieldLength } = g.spec;
      const enc = (x: bigint, y: bigint): Buffer => Buffer.concat([bigIntToOctets(x, fieldLength), bigIntToOctets(y, fieldLength)]);

      it('a point off the curve (the base point with y + 1) is rejected with CryptoError', () => {
        expect(() => ours.computeSharedSecret(enc(curve.gx, curve.gy + 1n))).toThrow(/not a point on the curve/);
      });

      it('coordinates equal to p, or p + x (the same residue, not reduced), are rejected with CryptoError', () => {
        expect(() => ours.computeSharedSecret(enc(curve.p, curve.gy))).toThrow(CryptoError);
        expect(() => ours.computeSharedSecret(enc(curve.gx, curve.p))).toThrow(CryptoError);
        const max = 2n ** BigInt(8 * fieldLength) - 1n;
        if (curve.gx + curve.p <= max) expect(() => ours.computeSharedSecret(enc(curve.gx + curve.p, curve.gy))).toThrow(/not below p/);
        if (curve.gy + curve.p <= max) expect(() => ours.computeSharedSecret(enc(curve.gx, curve.gy + curve.p))).toThrow(/not below p/);
      });

      it('(0, 0) and (0, y) are rejected with CryptoError', () => {
        expect(() => ours.computeSharedSecret(enc(0n, 0n))).toThrow(CryptoError);
        expect(() => ours.computeSharedSecret(enc(0n, 1n))).toThrow(CryptoError);
      });

      it('the base point itself is accepted (d · G = our public value)', () => {
        expect(ours.computeSharedSecret(enc(curve.gx, curve.gy))).toEqual(ours.publicValue.subarray(0, fieldLength));
      });
    }
  });
}
