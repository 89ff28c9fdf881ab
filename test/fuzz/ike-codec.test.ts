/**
 * The IKE codec under arbitrary and mutated input (fast-check): decoding
 * raises nothing but IkeParseError, what decodes re-encodes exactly,
 * fragment reassembly and SK decryption accept nothing that does not
 * authenticate, and the fuzz targets ike-message, ike-sk and ike-engine hold (their
 * oracles are the properties; see fuzz/targets/).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FragmentReassembler, IkeIntegrityError, IkeParseError, PayloadType, decodeMessage, decryptSk, encodeMessage } from '../../src/ike/codec/index.js';
import { ikeDatagrams, ikeKeyRows, senderAeadFor } from '../../fuzz/lib/fixtures.js';
import { assertTargetHolds, mutatedCorpus, octets, readyTarget } from './support.js';

const datagrams = ikeDatagrams();
const rows = ikeKeyRows();

describe('IKE codec fuzzing properties', () => {
  it('decodeMessage of arbitrary octets either decodes or throws IkeParseError, and what decodes re-encodes to the same octets', () => {
    fc.assert(
      fc.property(octets(400), fc.boolean(), (b, fixLength) => {
        if (fixLength && b.length >= 28) {
          b.writeUInt32BE(b.length, 24);
          b[17] = 0x20;
        }
        let m;
        try {
          m = decodeMessage(b);
        } catch (err) {
          expect(err).toBeInstanceOf(IkeParseError);
          return;
        }
        expect(encodeMessage(m).equals(b)).toBe(true);
      }),
      { numRuns: 5000 },
    );
  });

  it('the ike-message target holds for mutated strongSwan datagrams: decode, round trip, reassembly, SK decryption and the payload parsers raise only documented errors', async () => {
    const { target, corpus } = await readyTarget('ike-message');
    await assertTargetHolds(target, mutatedCorpus(target, corpus), 4000);
  });

  it('the ike-sk target holds for mutated SK contents sealed with the fixture keys, as one SK payload and as 2–4 fragments in either order', async () => {
    const { target, corpus } = await readyTarget('ike-sk');
    await assertTargetHolds(target, mutatedCorpus(target, corpus), 1500);
    // and for arbitrary plaintexts
    const arbitrary = fc
      .tuple(fc.nat({ max: 255 }), fc.constantFrom(0, 33, 34, 35, 36, 39, 40, 41, 44, 45, 47, 48), fc.nat({ max: 7 }), octets(300))
      .map(([t, f, m, b]) => Buffer.concat([Buffer.from([t, f, m]), b]));
    await assertTargetHolds(target, arbitrary, 1500);
  });

  it('the ike-engine target holds: mutated SK contents sealed under an IKE SA two in-process managers established reach the exchange engine and its tasks without an internal error', async () => {
    const { target, corpus } = await readyTarget('ike-engine');
    await assertTargetHolds(target, mutatedCorpus(target, corpus), 800);
  });

  it('any single flipped octet in a strongSwan SK or SKF payload is rejected as an integrity failure and nothing is left in reassembly', () => {
    const encrypted = datagrams
      .map((d) => ({ d, m: decodeMessage(d) }))
      .filter(({ m }) => [PayloadType.SK, PayloadType.SKF].includes(m.payloads[m.payloads.length - 1]!.type as PayloadType));
    expect(encrypted.length).toBe(16);
    fc.assert(
      fc.property(fc.nat({ max: encrypted.length - 1 }), fc.nat(), fc.integer({ min: 1, max: 255 }), (i, at, x) => {
        const { d, m } = encrypted[i]!;
        const aead = senderAeadFor(m.header, rows)!;
        const last = m.payloads[m.payloads.length - 1]!;
        // from the SK/SKF generic header on: everything after it is authenticated (AAD or ciphertext)
        const start =
          d.length - (last.type === PayloadType.SKF ? 8 : 4) - (last.type === PayloadType.SK || last.type === PayloadType.SKF ? last.content.length : 0);
        const tampered = Buffer.from(d);
        const pos = start + (at % (d.length - start));
        tampered[pos]! ^= x;
        let message;
        try {
          message = decodeMessage(tampered);
        } catch (err) {
          expect(err).toBeInstanceOf(IkeParseError); // a Payload Length octet
          return;
        }
        if (last.type === PayloadType.SKF) {
          const r = new FragmentReassembler();
          const res = r.add(message, tampered, aead);
          expect(res.status).toBe('rejected');
          expect(r.pendingCount).toBe(0);
        } else {
          expect(() => decryptSk(message, tampered, aead)).toThrow(IkeIntegrityError);
        }
      }),
      { numRuns: 1500 },
    );
  });
});
