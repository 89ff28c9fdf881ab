/**
 * IKEv2 key derivation (RFC 7296 §2.14, §2.17, §2.18) against the NIST
 * SP 800-135 IKEv2 KDF component vectors (ACVP "kdf-components" / "ikev2"),
 * test/vectors/kdf-acvp-ikev2.json, whose "source" fields name the exact
 * files. The ACVP names map onto RFC 7296 as:
 *
 *   SKEYSEED             = prf(Ni | Nr, g^ir)                          §2.14
 *   DKM                  = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)       §2.14
 *   DKM(Child SA)        = prf+(SK_d, Ni | Nr)                         §2.17
 *   DKM(Child SA D-H)    = prf+(SK_d, g^ir (new) | Ni | Nr)            §2.17
 *   SKEYSEED(Rekey)      = prf(SK_d, g^ir (new) | Ni | Nr)             §2.18
 *
 * with SK_d the first PRF-output-length octets of DKM. ACVP lengths are bits;
 * outputs whose length is not a multiple of 8 are compared on those bits only.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { prfFor, prfPlus } from '../../src/crypto/prf.js';
import { deriveChildKeymat, deriveIkeSaKeys, deriveRekeyedSkeyseed, deriveSkeyseed } from '../../src/crypto/ikev2-keys.js';
import type { Prf } from '../../src/crypto/types.js';

const hex = (s: string): Buffer => Buffer.from(s, 'hex');
const vectors = <T>(name: string): T => JSON.parse(readFileSync(new URL(`../vectors/${name}`, import.meta.url), 'utf8')) as T;

interface AcvpTest {
  tcId: number;
  nInit: string;
  nResp: string;
  gir: string;
  girNew: string;
  spiInit: string;
  spiResp: string;
  sKeySeed: string;
  derivedKeyingMaterial: string;
  derivedKeyingMaterialChild: string;
  derivedKeyingMaterialDh?: string;
  sKeySeedReKey?: string;
}

interface AcvpGroup {
  tgId: number;
  hashAlg: string;
  prfTransformId: number;
  dhLength: number;
  nInitLength: number;
  nRespLength: number;
  derivedKeyingMaterialLength: number;
  derivedKeyingMaterialChildLength: number;
  inputsByteAligned: boolean;
  tests: AcvpTest[];
}

interface LibreswanVector extends AcvpTest {
  hashAlg: string;
  prfTransformId: number;
  derivedKeyingMaterialLength: number;
}

const file = vectors<{ acvp: { groups: AcvpGroup[] }; libreswan: { vector: LibreswanVector } }>('kdf-acvp-ikev2.json');

function prfOf(transformId: number): Prf {
  const prf = prfFor(transformId);
  if (prf === undefined) throw new Error(`no PRF ${transformId}`);
  return prf;
}

/** Compare the first `bits` bits of `actual` with a published value (trailing pad bits ignored). */
function expectLeadingBits(actual: Uint8Array, expectedHex: string, bits: number): void {
  const expected = hex(expectedHex);
  const whole = Math.floor(bits / 8);
  const rest = bits % 8;
  expect(actual.length).toBeGreaterThanOrEqual(Math.ceil(bits / 8));
  expect(Buffer.from(actual.subarray(0, whole)).toString('hex')).toBe(expected.subarray(0, whole).toString('hex'));
  if (rest !== 0) {
    const mask = (0xff << (8 - rest)) & 0xff;
    expect(actual[whole]! & mask).toBe(expected[whole]! & mask);
  }
}

const octets = (bits: number): number => Math.ceil(bits / 8);

describe('NIST ACVP kdf-components/ikev2 vectors (SP 800-135 IKEv2 KDF)', () => {
  it('the selection covers SHA-1 and SHA2-256/384/512, with at least one fully byte-aligned group', () => {
    expect(file.acvp.groups.map((g) => g.hashAlg)).toEqual(['SHA-1', 'SHA2-256', 'SHA2-384', 'SHA2-512']);
    expect(file.acvp.groups.filter((g) => g.inputsByteAligned).map((g) => g.hashAlg)).toEqual(['SHA-1', 'SHA2-384']);
  });

  for (const g of file.acvp.groups) {
    const prf = prfOf(g.prfTransformId);
    describe(`ACVP tgId ${g.tgId}, ${g.hashAlg} (${prf.name}), g^ir ${g.dhLength} bits, Ni ${g.nInitLength}, Nr ${g.nRespLength}`, () => {
      for (const t of g.tests) {
        const Ni = hex(t.nInit);
        const Nr = hex(t.nResp);
        const spiI = hex(t.spiInit);
        const spiR = hex(t.spiResp);
        const skeyseed = hex(t.sKeySeed);

        if (g.inputsByteAligned) {
          it(`tcId ${t.tcId}: SKEYSEED = prf(Ni | Nr, g^ir) matches ACVP sKeySeed`, () => {
            expect(deriveSkeyseed(prf, Ni, Nr, hex(t.gir)).toString('hex')).toBe(t.sKeySeed.toLowerCase());
          });
        }

        it(`tcId ${t.tcId}: prf+(SKEYSEED, Ni | Nr | SPIi | SPIr) matches ACVP DKM (${g.derivedKeyingMaterialLength} bits), and deriveIkeSaKeys splits that stream`, () => {
          const dkm = prfPlus(prf, skeyseed, Buffer.concat([Ni, Nr, spiI, spiR]), octets(g.derivedKeyingMaterialLength));
          expectLeadingBits(dkm, t.derivedKeyingMaterial, g.derivedKeyingMaterialLength);
          // SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr is the same stream, cut in §2.14's order
          const keys = deriveIkeSaKeys({ prf, skeyseed, Ni, Nr, spiI, spiR, encrKeyMaterialLength: 20, integKeyLength: 24 });
          const stream = Buffer.concat([keys.SK_d, keys.SK_ai, keys.SK_ar, keys.SK_ei, keys.SK_er, keys.SK_pi, keys.SK_pr]);
          const common = Math.min(stream.length, Math.floor(g.derivedKeyingMaterialLength / 8));
          expect(stream.subarray(0, common)).toEqual(dkm.subarray(0, common));
          expect(keys.SK_d).toEqual(dkm.subarray(0, prf.outputLength));
        });

        it(`tcId ${t.tcId}: KEYMAT = prf+(SK_d, Ni | Nr) matches ACVP DKM(Child SA) (${g.derivedKeyingMaterialChildLength} bits)`, () => {
          const skD = hex(t.derivedKeyingMaterial).subarray(0, prf.outputLength);
          const keymat = prfPlus(prf, skD, Buffer.concat([Ni, Nr]), octets(g.derivedKeyingMaterialChildLength));
          expectLeadingBits(keymat, t.derivedKeyingMaterialChild, g.derivedKeyingMaterialChildLength);
          const quarter = Math.floor(g.derivedKeyingMaterialChildLength / 32);
          const split = deriveChildKeymat({ prf, skD, Ni, Nr, encrKeyMaterialLength: quarter, integKeyLength: quarter });
          expect(
            Buffer.concat([
              split.initiatorToResponder.encr,
              split.initiatorToResponder.integ,
              split.responderToInitiator.encr,
              split.responderToInitiator.integ,
            ]),
          ).toEqual(keymat.subarray(0, 4 * quarter));
        });

        if (t.derivedKeyingMaterialDh !== undefined && t.sKeySeedReKey !== undefined) {
          const dh = t.derivedKeyingMaterialDh;
          const rekey = t.sKeySeedReKey;
          it(`tcId ${t.tcId}: KEYMAT = prf+(SK_d, g^ir (new) | Ni | Nr) matches ACVP DKM(Child SA D-H)`, () => {
            const skD = hex(t.derivedKeyingMaterial).subarray(0, prf.outputLength);
            const keymat = prfPlus(prf, skD, Buffer.concat([hex(t.girNew), Ni, Nr]), octets(g.derivedKeyingMaterialChildLength));
            expectLeadingBits(keymat, dh, g.derivedKeyingMaterialChildLength);
            const quarter = Math.floor(g.derivedKeyingMaterialChildLength / 32);
            const split = deriveChildKeymat({
              prf,
              skD,
              Ni,
              Nr,
              gir: hex(t.girNew),
              encrKeyMaterialLength: quarter,
              integKeyLength: quarter,
            });
            expect(Buffer.concat([split.initiatorToResponder.encr, split.initiatorToResponder.integ])).toEqual(keymat.subarray(0, 2 * quarter));
          });

          it(`tcId ${t.tcId}: SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr) matches ACVP SKEYSEED(Rekey)`, () => {
            const skD = hex(t.derivedKeyingMaterial).subarray(0, prf.outputLength);
            expect(deriveRekeyedSkeyseed(prf, skD, hex(t.girNew), Ni, Nr).toString('hex')).toBe(rekey.toLowerCase());
          });
        }
      }
    });
  }
});

describe("libreswan's ACVP IKEv2 sample (programs/cavp/test.acvp.ikev2.{run,json}, SHA-1 tcId 100)", () => {
  const v = file.libreswan.vector;
  const prf = prfOf(v.prfTransformId);
  const Ni = hex(v.nInit);
  const Nr = hex(v.nResp);
  const bytes = octets(v.derivedKeyingMaterialLength);

  it('reproduces SKEYSEED, DKM, DKM(Child SA), DKM(Child SA D-H) and SKEYSEED(Rekey)', () => {
    const skeyseed = deriveSkeyseed(prf, Ni, Nr, hex(v.gir));
    expect(skeyseed.toString('hex')).toBe(v.sKeySeed);
    const dkm = prfPlus(prf, skeyseed, Buffer.concat([Ni, Nr, hex(v.spiInit), hex(v.spiResp)]), bytes);
    expect(dkm.toString('hex')).toBe(v.derivedKeyingMaterial);
    const skD = dkm.subarray(0, prf.outputLength);
    expect(prfPlus(prf, skD, Buffer.concat([Ni, Nr]), bytes).toString('hex')).toBe(v.derivedKeyingMaterialChild);
    expect(prfPlus(prf, skD, Buffer.concat([hex(v.girNew), Ni, Nr]), bytes).toString('hex')).toBe(v.derivedKeyingMaterialDh);
    expect(deriveRekeyedSkeyseed(prf, skD, hex(v.girNew), Ni, Nr).toString('hex')).toBe(v.sKeySeedReKey);
  });
});
