/**
 * ESP round trip against a real peer: the 16 ESP-in-UDP packets (RFC 3948)
 * of the recorded strongSwan 5.9.8 exchange
 * (test/fixtures/strongswan-5.9.8-ecp384bp-demo/exchange.pcap), opened with
 * AES_GCM_16_128 and the keys in wireshark-keys/esp_sa (which
 * ikev2-keys-strongswan.test.ts derives from the IKE exchange).
 *
 * ESP layout (RFC 4303 §2, RFC 4106 §3): SPI 4 | Sequence Number 4 | IV 8 |
 * ciphertext | ICV 16; AAD = SPI ‖ Sequence Number (RFC 4106 §5, no ESN:
 * kernel-libipsec does not do ESN). The plaintext ends with Padding
 * (1, 2, 3, …, RFC 4303 §2.4), Pad Length and Next Header (tunnel mode:
 * 4 = IPv4, 41 = IPv6).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AES_GCM_16_128 } from '../../src/crypto/aead.js';
import { demoFile } from '../support/fixture.js';
import { readEspInUdp } from '../support/pcap.js';

const packets = readEspInUdp(demoFile('exchange.pcap'));

/** wireshark-keys/esp_sa rows: "IPv4","src","dst","0xSPI","AES-GCM…","0xkey‖salt","NULL","0x". */
const sas = readFileSync(demoFile('wireshark-keys/esp_sa'), 'utf8')
  .trim()
  .split('\n')
  .map((line) => {
    const f = line.split(',').map((s) => s.replace(/^"|"$/g, ''));
    return { src: f[1]!, dst: f[2]!, spi: Number.parseInt(f[3]!, 16), keyMaterial: Buffer.from(f[5]!.replace(/^0x/, ''), 'hex') };
  });

function saFor(spi: number): (typeof sas)[number] {
  const sa = sas.find((s) => s.spi === spi);
  if (sa === undefined) throw new Error(`no esp_sa row for SPI ${spi.toString(16)}`);
  return sa;
}

interface EspPacket {
  spi: number;
  seq: number;
  aad: Buffer;
  iv: Buffer;
  ciphertextAndIcv: Buffer;
}

function parseEsp(payload: Buffer): EspPacket {
  return {
    spi: payload.readUInt32BE(0),
    seq: payload.readUInt32BE(4),
    aad: payload.subarray(0, 8),
    iv: payload.subarray(8, 16),
    ciphertextAndIcv: payload.subarray(16),
  };
}

describe('ESP-in-UDP packets of the strongSwan capture', () => {
  it('there are 16, on the four SAs of esp_sa, each sent in the direction esp_sa gives, sequence numbers 1, 2, 3, … per SA', () => {
    expect(packets).toHaveLength(16);
    expect(sas).toHaveLength(4);
    const lastSeq = new Map<number, number>();
    for (const p of packets) {
      const esp = parseEsp(p.payload);
      const sa = saFor(esp.spi);
      expect([p.src, p.dst]).toEqual([sa.src, sa.dst]);
      expect(sa.keyMaterial).toHaveLength(AES_GCM_16_128.keyMaterialLength);
      expect(esp.seq).toBe((lastSeq.get(esp.spi) ?? 0) + 1);
      lastSeq.set(esp.spi, esp.seq);
    }
    expect([...lastSeq.keys()].sort()).toEqual(sas.map((s) => s.spi).sort());
  });

  for (const p of packets) {
    it(`frame ${p.frame} (${p.src} → ${p.dst}): opens with AES_GCM_16_128, has a valid ESP trailer, and reseals to the same octets`, () => {
      const esp = parseEsp(p.payload);
      const ctx = AES_GCM_16_128.createContext(saFor(esp.spi).keyMaterial);
      const plaintext = ctx.open(esp.iv, esp.aad, esp.ciphertextAndIcv);
      expect(plaintext).not.toBeNull();
      const pt = plaintext!;

      // Trailer (RFC 4303 §2.4-2.6): … Padding | Pad Length | Next Header
      const nextHeader = pt[pt.length - 1]!;
      const padLength = pt[pt.length - 2]!;
      const payloadLength = pt.length - 2 - padLength;
      expect([4, 41]).toContain(nextHeader);
      const padding = [...pt.subarray(payloadLength, pt.length - 2)];
      expect(padding).toEqual(Array.from({ length: padLength }, (_, i) => i + 1));
      // ciphertext is padded to a multiple of 4 octets (RFC 4303 §2.4)
      expect(pt.length % 4).toBe(0);

      // Tunnel mode: the payload is the inner IP packet, of the version Next Header says, and exactly that long.
      const inner = pt.subarray(0, payloadLength);
      if (nextHeader === 4) {
        expect(inner[0]! >> 4).toBe(4);
        expect(inner.readUInt16BE(2)).toBe(inner.length);
      } else {
        expect(inner[0]! >> 4).toBe(6);
        expect(40 + inner.readUInt16BE(4)).toBe(inner.length);
      }

      // same key, same IV, same AAD, same plaintext → the packet as strongSwan sent it
      const resealed = Buffer.concat([esp.aad, esp.iv, ctx.seal(esp.iv, esp.aad, pt)]);
      expect(resealed.toString('hex')).toBe(p.payload.toString('hex'));

      // and the packet with its sequence number changed does not verify (the AAD covers it)
      const aad = Buffer.from(esp.aad);
      aad.writeUInt32BE(esp.seq + 1, 4);
      expect(ctx.open(esp.iv, aad, esp.ciphertextAndIcv)).toBeNull();
      ctx.destroy();
    });
  }
});
