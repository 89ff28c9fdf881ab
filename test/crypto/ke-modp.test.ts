/**
 * MODP groups 14-18 (RFC 3526). The primes are compared with the RFC's own
 * hexadecimal text (test/vectors/ke-rfc3526.json, RFC 3526 §3-§7); RFC 3526
 * publishes no Diffie-Hellman exchange vectors, so the exchange is checked by
 * agreement of both sides and against an independent BigInt g^x mod p.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { keyExchangeGroup } from '../../src/crypto/ke/index.js';
import { MODP_GROUP_SPECS, ModpGroup } from '../../src/crypto/ke/modp.js';
import { bigIntToOctets, octetsToBigInt } from '../../src/crypto/ke/octets.js';
import { CryptoError } from '../../src/crypto/types.js';

interface Rfc3526 {
  groups: Record<string, { section: string; title: string; hex: string[]; generator: number }>;
}
const rfc3526 = JSON.parse(readFileSync(new URL('../vectors/ke-rfc3526.json', import.meta.url), 'utf8')) as Rfc3526;

function modpGroup(id: number): ModpGroup {
  const group = keyExchangeGroup(id);
  if (!(group instanceof ModpGroup)) throw new Error(`group ${id} is not a MODP group`);
  return group;
}

/** Square-and-multiply, independent of OpenSSL. */
function modPow(base: bigint, exponent: bigint, modulus: bigint): bigint {
  let result = 1n;
  let b = base % modulus;
  for (let e = exponent; e > 0n; e >>= 1n) {
    if (e & 1n) result = (result * b) % modulus;
    b = (b * b) % modulus;
  }
  return result;
}

for (const spec of MODP_GROUP_SPECS) {
  const group = modpGroup(spec.groupId);
  const rfc = rfc3526.groups[String(spec.groupId)]!;
  const p = octetsToBigInt(group.prime);
  const L = spec.primeBits / 8;

  describe(`MODP group ${spec.groupId} (${spec.name})`, () => {
    it(`uses the prime of RFC 3526 §${rfc.section} (${rfc.title}), generator 2`, () => {
      expect(group.prime.toString('hex').toUpperCase()).toBe(rfc.hex.join('').replace(/ /g, ''));
      expect(rfc.generator).toBe(2);
      expect(group.publicValueLength).toBe(L);
      expect(group.sharedSecretLength).toBe(L);
    });

    it('both sides of a generated exchange agree on a prime-length shared secret', () => {
      const a = group.generate();
      const b = group.generate();
      expect(a.publicValue).toHaveLength(L);
      const secret = a.computeSharedSecret(b.publicValue);
      expect(secret).toHaveLength(L);
      expect(secret).toEqual(b.computeSharedSecret(a.publicValue));
    });

    it('KE data of an imported private value x is 2^x mod p, zero-padded to the prime length (RFC 7296 §3.4)', () => {
      const x = 0x0123456789abcdef0123456789abcdefn;
      const ours = group.fromPrivate(bigIntToOctets(x, 16));
      expect(ours.publicValue).toEqual(bigIntToOctets(modPow(2n, x, p), L));
      const y = 0xfedcba9876543210n;
      const peer = group.fromPrivate(bigIntToOctets(y, 8));
      expect(ours.computeSharedSecret(peer.publicValue)).toEqual(bigIntToOctets(modPow(2n, x * y, p), L));
    });

    it('a shared secret with leading zero octets keeps the full prime length', () => {
      // 2^x with x < 8·L - 8 has a zero top octet; use it as the peer's value with x' = 1.
      const small = bigIntToOctets(2n ** 100n, L);
      expect(small[0]).toBe(0);
      expect(group.fromPrivate(Buffer.from([2])).computeSharedSecret(small)).toEqual(bigIntToOctets(2n ** 200n, L));
    });

    it('peer values 0, 1, p-1, p, p+1 and 2^bits-1 are rejected with CryptoError (RFC 6989 §2.1: 1 < y < p-1)', () => {
      const ours = group.generate();
      for (const y of [0n, 1n, p - 1n, p, p + 1n, 2n ** BigInt(spec.primeBits) - 1n]) {
        expect(() => ours.computeSharedSecret(bigIntToOctets(y, L)), `y = ${y.toString(16).slice(0, 12)}…`).toThrow(CryptoError);
      }
      expect(ours.computeSharedSecret(bigIntToOctets(2n, L))).toHaveLength(L);
      // p-2 passes RFC 6989's range check; Node 22's OpenSSL also checks the prime-order subgroup and may refuse it, always as CryptoError
      try {
        expect(ours.computeSharedSecret(bigIntToOctets(p - 2n, L))).toHaveLength(L);
      } catch (err) {
        expect(err).toBeInstanceOf(CryptoError);
      }
    });

    it('KE data that is not exactly the prime length is rejected with CryptoError, even with a valid value', () => {
      const ours = group.generate();
      const two = bigIntToOctets(2n, L);
      for (const bad of [Buffer.alloc(0), two.subarray(1), Buffer.concat([Buffer.from([0]), two]), Buffer.from([2])]) {
        expect(() => ours.computeSharedSecret(bad)).toThrow(CryptoError);
      }
    });

    it('private values 0, 1, p-1, empty and oversize are rejected with CryptoError', () => {
      for (const x of [Buffer.from([0]), Buffer.from([1]), bigIntToOctets(p - 1n, L), Buffer.alloc(0), Buffer.alloc(L + 1, 1)]) {
        expect(() => group.fromPrivate(x)).toThrow(CryptoError);
      }
    });
  });
}
