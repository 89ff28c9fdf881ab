/**
 * ESP packets (src/esp/packet.ts) against published and captured octets:
 *
 *  - draft-mcgrew-gcm-test-01 §4 (test/vectors/gcm-draft-mcgrew-gcm-test-01.json):
 *    all sixteen AES-GCM-ESP packets, 32-bit and extended sequence numbers,
 *    open with `openEsp` to the draft's plaintext (less the trailer) and
 *    `sealEsp` rebuilds each packet octet for octet from the payload alone
 *    (so the padding rule matches the draft's).
 *  - The strongSwan 5.9.8 capture (test/fixtures/strongswan-5.9.8-ecp384bp-demo):
 *    16 tunnel-mode ESP-in-UDP packets (inner IPv4 ICMP and IPv6 ICMPv6)
 *    decapsulate to valid inner packets and re-encapsulate to the same octets.
 *
 * Plus the failure results of openEsp: bad padding, pad length beyond the
 * plaintext, Next Header 59 (dummy), wrong ESN high half.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AES_GCM_16_128, aeadFor } from '../../src/crypto/aead.js';
import {
  decapTunnel,
  encapTunnel,
  encapTunnelInto,
  espSealedLength,
  espSeqLow,
  espSpi,
  openEsp,
  sealEsp,
  sealEspInto,
  type EspSa,
} from '../../src/esp/packet.js';
import { ipv4HeaderChecksumValid, packetSelector } from '../../src/esp/ip.js';
import { demoFile } from '../support/fixture.js';
import { readEspInUdp } from '../support/pcap.js';

const hex = (s: string): Buffer => Buffer.from(s, 'hex');

interface EspCase {
  page: number;
  key: string;
  spi: string;
  seq: string;
  nonce: string;
  plaintext: string;
  packet: string;
}
const mcgrew = (JSON.parse(readFileSync(new URL('../vectors/gcm-draft-mcgrew-gcm-test-01.json', import.meta.url), 'utf8')) as { vectors: EspCase[] }).vectors;

/** Independent RFC 1071 check: the one's complement sum over the octets (plus `extra`) is 0xffff. */
function checksumOk(octets: Buffer, extra = 0): boolean {
  let sum = extra;
  for (let i = 0; i < octets.length; i += 2) sum += (octets[i]! << 8) + (octets[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum === 0xffff;
}

describe('draft-mcgrew-gcm-test-01 §4 ESP packets through openEsp and sealEsp', () => {
  mcgrew.forEach((c, i) => {
    const keyBits = c.key.length * 4;
    const esn = c.seq.length === 16;
    const seq = BigInt(`0x${c.seq}`);
    it(`case ${i + 1} (page ${c.page}, AES-${keyBits}, ${esn ? 'ESN' : '32-bit seq'} ${c.seq}) opens to the draft's plaintext and reseals to the same packet`, () => {
      const nonce = hex(c.nonce);
      const ctx = aeadFor(20, keyBits)!.createContext(Buffer.concat([hex(c.key), nonce.subarray(0, 4)]));
      const packet = hex(c.packet);
      const sa: EspSa = { ctx, spi: espSpi(packet)!, esn };
      expect(sa.spi.toString(16).padStart(8, '0')).toBe(c.spi);
      expect(espSeqLow(packet)).toBe(Number(seq & 0xffffffffn));

      // openEsp decrypts in place: open a copy, the vector is needed again below
      const r = openEsp(sa, Buffer.from(packet), Number(seq >> 32n));
      expect(r.ok).toBe(true);
      if (!r.ok) return;
      const pt = hex(c.plaintext);
      expect(r.nextHeader).toBe(pt[pt.length - 1]);
      expect(r.payload.toString('hex')).toBe(pt.subarray(0, pt.length - 2 - pt[pt.length - 2]!).toString('hex'));

      const iv = nonce.subarray(4);
      expect(sealEsp(sa, seq, iv, r.payload, r.nextHeader).toString('hex')).toBe(c.packet);
      // the IV given as a 64-bit counter is written big-endian
      expect(sealEsp(sa, seq, iv.readBigUInt64BE(0), r.payload, r.nextHeader).toString('hex')).toBe(c.packet);
      // into a larger buffer at an offset, with the length returned
      const out = Buffer.alloc(packet.length + 7, 0xee);
      expect(sealEspInto(sa, seq, iv, r.payload, r.nextHeader, out, 3)).toBe(packet.length);
      expect(out.subarray(3, 3 + packet.length).toString('hex')).toBe(c.packet);
      expect([...out.subarray(0, 3), ...out.subarray(3 + packet.length)]).toEqual(Array(7).fill(0xee));

      if (esn) {
        // a wrong guess of the high half fails the ICV (it is in the AAD, not on the wire)
        expect(openEsp(sa, packet, Number(seq >> 32n) ^ 1)).toEqual({ ok: false, reason: 'icv' });
        expect(openEsp({ ...sa, esn: false }, packet)).toEqual({ ok: false, reason: 'icv' });
      }
      ctx.destroy();
    });
  });

  it('a payload already in place at offset + 16 of the output buffer is sealed without moving it', () => {
    const c = mcgrew[1]!;
    const nonce = hex(c.nonce);
    const ctx = aeadFor(20, c.key.length * 4)!.createContext(Buffer.concat([hex(c.key), nonce.subarray(0, 4)]));
    const packet = hex(c.packet);
    const sa: EspSa = { ctx, spi: espSpi(packet)!, esn: false };
    const r = openEsp(sa, packet);
    if (!r.ok) throw new Error('vector does not open');
    const out = Buffer.alloc(espSealedLength(sa, r.payload.length));
    r.payload.copy(out, 16);
    const n = sealEspInto(sa, BigInt(`0x${c.seq}`), nonce.subarray(4), out.subarray(16, 16 + r.payload.length), r.nextHeader, out);
    expect(out.subarray(0, n).toString('hex')).toBe(c.packet);
  });
});

const sas = readFileSync(demoFile('wireshark-keys/esp_sa'), 'utf8')
  .trim()
  .split('\n')
  .map((line) => {
    const f = line.split(',').map((s) => s.replace(/^"|"$/g, ''));
    return { spi: Number.parseInt(f[3]!, 16), keyMaterial: hex(f[5]!.replace(/^0x/, '')) };
  });

describe('strongSwan 5.9.8 capture: tunnel-mode ESP-in-UDP packets', () => {
  const packets = readEspInUdp(demoFile('exchange.pcap'));

  it('holds 16 ESP packets with both IPv4 and IPv6 inner packets', () => {
    expect(packets).toHaveLength(16);
  });

  const families = new Set<number>();
  const ivConstants = new Map<number, bigint[]>();
  for (const p of packets) {
    it(`frame ${p.frame} (${p.src} → ${p.dst}) decapsulates to a valid inner packet and re-encapsulates to the same octets`, () => {
      const spi = espSpi(p.payload)!;
      const row = sas.find((s) => s.spi === spi)!;
      const sa: EspSa = { ctx: AES_GCM_16_128.createContext(row.keyMaterial), spi, esn: false };
      const counters = { icvFailures: 0, badPadding: 0 };
      const r = decapTunnel(sa, Buffer.from(p.payload), 0, counters);
      expect(r.ok).toBe(true);
      if (!r.ok) return;
      const inner = r.packet;
      const sel = packetSelector(inner)!;
      families.add(sel.family);
      if (sel.family === 4) {
        expect(ipv4HeaderChecksumValid(inner)).toBe(true);
        expect(sel.protocol).toBe(1);
        expect(checksumOk(inner.subarray((inner[0]! & 15) * 4))).toBe(true); // ICMP
      } else {
        expect(sel.protocol).toBe(58);
        // ICMPv6 checksum over the pseudo-header (RFC 8200 §8.1): addresses, length, next header
        const body = inner.subarray(40);
        let pseudo = body.length + 58;
        for (let i = 8; i < 40; i += 2) pseudo += inner.readUInt16BE(i);
        expect(checksumOk(body, pseudo)).toBe(true);
      }
      // echo request / reply: ICMP type 8/0, ICMPv6 128/129, code 0 (type << 8 | code in the port fields)
      expect([8 << 8, 0, 128 << 8, 129 << 8]).toContain(sel.srcPort);

      const seq = espSeqLow(p.payload)!;
      const iv = p.payload.subarray(8, 16);
      expect(encapTunnel(sa, seq, iv, inner)?.toString('hex')).toBe(p.payload.toString('hex'));
      // strongSwan's IVs are the sequence number XORed with a per-SA constant: given as a counter they seal the same
      const ivConstant = iv.readBigUInt64BE(0) ^ BigInt(seq);
      ivConstants.set(spi, [...(ivConstants.get(spi) ?? []), ivConstant]);
      expect(encapTunnel(sa, seq, ivConstant ^ BigInt(seq), inner)?.toString('hex')).toBe(p.payload.toString('hex'));
      const out = Buffer.alloc(2048);
      const n = encapTunnelInto(sa, seq, iv, inner, out, 0);
      expect(out.subarray(0, n).toString('hex')).toBe(p.payload.toString('hex'));
      expect(counters).toEqual({ icvFailures: 0, badPadding: 0 });
    });
  }

  it('covered both inner families, and each SA XORed its sequence numbers with one constant to make IVs', () => {
    expect([...families].sort()).toEqual([4, 6]);
    expect(ivConstants.size).toBe(4);
    for (const constants of ivConstants.values()) expect(new Set(constants).size).toBe(1);
  });
});

describe('openEsp failure results', () => {
  const ctx = AES_GCM_16_128.createContext(Buffer.alloc(20, 7));
  const sa: EspSa = { ctx, spi: 0x1234, esn: false };
  const iv = Buffer.from('0001020304050607', 'hex');

  /** An ESP packet with a chosen (possibly invalid) plaintext trailer, correctly authenticated. */
  function craft(plaintext: Buffer, seq = 1): Buffer {
    const head = Buffer.alloc(16);
    head.writeUInt32BE(sa.spi, 0);
    head.writeUInt32BE(seq, 4);
    iv.copy(head, 8);
    return Buffer.concat([head, ctx.seal(iv, head.subarray(0, 8), plaintext)]);
  }

  it('padding octets other than 1, 2, 3, … are rejected as padding and counted', () => {
    const counters = { icvFailures: 0, badPadding: 0 };
    const payload = Buffer.from('payload!');
    expect(openEsp(sa, craft(Buffer.concat([payload, Buffer.from([1, 3, 2, 6])])), 0, counters)).toEqual({ ok: false, reason: 'padding' });
    expect(openEsp(sa, craft(Buffer.concat([payload, Buffer.from([0, 0, 2, 6])])), 0, counters)).toEqual({ ok: false, reason: 'padding' });
    expect(counters).toEqual({ icvFailures: 0, badPadding: 2 });
    // and the same with correct padding opens
    const ok = openEsp(sa, craft(Buffer.concat([payload, Buffer.from([1, 2, 2, 6])])), 0, counters);
    expect(ok.ok && ok.payload.toString()).toBe('payload!');
    expect(ok.ok && ok.nextHeader).toBe(6);
  });

  it('a pad length longer than the plaintext before it is rejected as padding', () => {
    const counters = { icvFailures: 0, badPadding: 0 };
    expect(openEsp(sa, craft(Buffer.from([1, 2, 3, 6])), 0, counters)).toEqual({ ok: false, reason: 'padding' });
    expect(openEsp(sa, craft(Buffer.from([0xff, 6])), 0, counters)).toEqual({ ok: false, reason: 'padding' });
    expect(counters.badPadding).toBe(2);
  });

  it('a packet with Next Header 59 is a dummy packet (RFC 4303 §2.6) for the caller to drop', () => {
    expect(openEsp(sa, sealEsp(sa, 5, 5, Buffer.from('tfc'), 59), 0)).toEqual({ ok: false, reason: 'dummy' });
    expect(openEsp(sa, sealEsp(sa, 6, 6, Buffer.alloc(0), 59), 0)).toEqual({ ok: false, reason: 'dummy' });
  });

  it('a packet that fails the ICV is counted as an ICV failure', () => {
    const counters = { icvFailures: 0, badPadding: 0 };
    const p = sealEsp(sa, 7, 7, Buffer.from('x'), 17);
    p[p.length - 1]! ^= 1;
    expect(openEsp(sa, p, 0, counters)).toEqual({ ok: false, reason: 'icv' });
    expect(counters).toEqual({ icvFailures: 1, badPadding: 0 });
  });

  it('sealing refuses sequence numbers beyond 32 bits without ESN and a too small output buffer', () => {
    expect(() => sealEsp(sa, 2 ** 32, 1, Buffer.alloc(1), 6)).toThrow(RangeError);
    expect(() => sealEsp(sa, -1, 1, Buffer.alloc(1), 6)).toThrow(RangeError);
    expect(() => sealEspInto(sa, 1, 1, Buffer.alloc(10), 6, Buffer.alloc(40))).toThrow(RangeError);
    expect(sealEsp({ ...sa, esn: true }, 2 ** 32 + 5, 1, Buffer.alloc(1), 6).readUInt32BE(4)).toBe(5);
  });
});
