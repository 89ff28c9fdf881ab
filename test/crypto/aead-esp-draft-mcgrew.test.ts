/**
 * AES-GCM-ESP packets from draft-mcgrew-gcm-test-01 §4 (the ESP test cases
 * RFC 4106 implementations are checked against),
 * test/vectors/gcm-draft-mcgrew-gcm-test-01.json: all sixteen AES-GCM cases
 * (128-, 192- and 256-bit keys, 32-bit and extended sequence numbers).
 *
 * Each packet is taken apart as RFC 4303 §2 / RFC 4106 §3 lay it out
 * (SPI 4 | Sequence Number 4 | IV 8 | ciphertext | ICV 16), opened with the
 * AES_GCM_16_* context built from key ‖ salt (RFC 4106 §8.1, salt = the first
 * four octets of the draft's nonce), and resealed to the same octets.
 * AAD is SPI ‖ seq (RFC 4106 §5), or SPI ‖ ESN high 32 bits ‖ seq with ESN.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { aeadFor } from '../../src/crypto/aead.js';

const hex = (s: string): Buffer => Buffer.from(s, 'hex');
const vectors = <T>(name: string): T => JSON.parse(readFileSync(new URL(`../vectors/${name}`, import.meta.url), 'utf8')) as T;

interface EspCase {
  page: number;
  key: string;
  spi: string;
  seq: string;
  nonce: string;
  plaintext: string;
  aad: string;
  ctextTag: string;
  packet: string;
}

const cases = vectors<{ vectors: EspCase[] }>('gcm-draft-mcgrew-gcm-test-01.json').vectors;
const ENCR_AES_GCM_16 = 20;

/** RFC 4106 §5: AAD for a 32-bit sequence number, or for a 64-bit Extended Sequence Number. */
function espAad(spi: Buffer, seq: bigint, esn: boolean): Buffer {
  const aad = Buffer.alloc(esn ? 12 : 8);
  spi.copy(aad, 0);
  if (esn) aad.writeBigUInt64BE(seq, 4);
  else aad.writeUInt32BE(Number(seq), 4);
  return aad;
}

describe('draft-mcgrew-gcm-test-01 §4: AES-GCM-ESP test packets', () => {
  it('holds the sixteen AES-GCM-ESP cases, covering all three key sizes and both sequence number sizes', () => {
    expect(cases).toHaveLength(16);
    expect(new Set(cases.map((c) => c.key.length * 4))).toEqual(new Set([128, 192, 256]));
    expect(cases.some((c) => c.seq.length === 16)).toBe(true);
    expect(cases.some((c) => c.seq.length === 8)).toBe(true);
  });

  cases.forEach((c, i) => {
    const keyBits = c.key.length * 4;
    const esn = c.seq.length === 16;
    const title = `case ${i + 1} (page ${c.page}): AES-${keyBits}, SPI ${c.spi}, ${esn ? `ESN ${c.seq}` : `seq ${c.seq}`}`;

    it(`${title}: AAD built from the packet's SPI and sequence number equals the draft's aad`, () => {
      const packet = hex(c.packet);
      const spi = packet.subarray(0, 4);
      const seqLow = packet.readUInt32BE(4);
      expect(spi.toString('hex')).toBe(c.spi);
      const seq = BigInt(`0x${c.seq}`);
      // with ESN only the low 32 bits travel in the packet (RFC 4303 §2.2.1)
      expect(seqLow).toBe(Number(seq & 0xffffffffn));
      expect(espAad(spi, seq, esn).toString('hex')).toBe(c.aad);
    });

    it(`${title}: AES_GCM_16 opens the packet to the draft's plaintext and reseals it byte for byte`, () => {
      const algorithm = aeadFor(ENCR_AES_GCM_16, keyBits);
      expect(algorithm).toBeDefined();
      const nonce = hex(c.nonce);
      const keyMaterial = Buffer.concat([hex(c.key), nonce.subarray(0, 4)]);
      expect(keyMaterial).toHaveLength(algorithm!.keyMaterialLength);
      const ctx = algorithm!.createContext(keyMaterial);

      const packet = hex(c.packet);
      const spi = packet.subarray(0, 4);
      const iv = packet.subarray(8, 16);
      expect(iv).toEqual(nonce.subarray(4));
      const ciphertextAndIcv = packet.subarray(16);
      expect(ciphertextAndIcv.toString('hex')).toBe(c.ctextTag);
      const aad = espAad(spi, BigInt(`0x${c.seq}`), esn);

      const plaintext = ctx.open(iv, aad, ciphertextAndIcv);
      expect(plaintext?.toString('hex')).toBe(c.plaintext);
      // ESP trailer: Pad Length and Next Header are the last two plaintext octets (RFC 4303 §2.4, §2.6)
      const resealed = Buffer.concat([packet.subarray(0, 16), ctx.seal(iv, aad, plaintext!)]);
      expect(resealed.toString('hex')).toBe(c.packet);

      // without the ESN high bits in the AAD, an ESN packet must not verify
      if (esn) expect(ctx.open(iv, packet.subarray(0, 8), ciphertextAndIcv)).toBeNull();
      ctx.destroy();
    });
  });
});
