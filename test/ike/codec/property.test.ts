import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AES_GCM_16_128 } from '../../../src/crypto/aead.js';
import {
  FragmentReassembler,
  IkeIntegrityError,
  IkeParseError,
  PayloadType,
  decodeMessage,
  decryptSk,
  encodeHeader,
  encodeMessage,
  payloadNumber,
  type IkeHeader,
} from '../../../src/ike/codec/index.js';
import { sealEncrypted } from '../../../src/ike/codec/sk.js';
import { bytes, header, innerPayload, message, mutate, mutation } from './arbitraries.js';
import { demoIkeDatagrams, senderAead } from './strongswan-demo.js';

/** Runs `f`; an IkeParseError (or `alsoAllowed`) is an acceptable outcome, anything else fails the property. */
function tolerated<T>(f: () => T, alsoAllowed: (err: unknown) => boolean = () => false): T | 'rejected' {
  try {
    return f();
  } catch (err) {
    if (err instanceof IkeParseError || alsoAllowed(err)) return 'rejected';
    throw err;
  }
}

/** Header Length rewritten to the datagram's length, so mutations reach the payloads. */
function fixLength(b: Buffer): Buffer {
  if (b.length >= 28) b.writeUInt32BE(b.length, 24);
  return b;
}

const fixture = demoIkeDatagrams();
const aead = AES_GCM_16_128.createContext(randomBytes(20));

describe('round trips of arbitrary valid messages (fast-check)', () => {
  it('decode(encode(m)) equals m and encode(decode(b)) equals b, for random messages with every payload type', () => {
    fc.assert(
      fc.property(message, (m) => {
        const b = encodeMessage(m);
        const decoded = decodeMessage(b);
        expect(decoded).toEqual(m);
        expect(encodeMessage(decoded)).toEqual(b);
      }),
      { numRuns: 2000 },
    );
  });

  it('payloads sealed in an SK under a random key, IV and padding decrypt to the same payloads and re-encrypt to the same octets', () => {
    const arb = header.chain((h) =>
      fc.record({
        header: fc.constant(h),
        payloads: fc.array(innerPayload(h.response), { maxLength: 6 }),
        iv: bytes(8, 8),
        padding: bytes(0, 16),
      }),
    );
    fc.assert(
      fc.property(arb, ({ header: h, payloads, iv, padding }) => {
        const b = encodeMessage({ header: h, payloads }, { encrypt: { aead, iv, padding } });
        const m = decodeMessage(b);
        expect(m.payloads).toHaveLength(1);
        const sk = decryptSk(m, b, aead);
        expect(sk).toEqual({ payloads, iv, padding });
        expect(encodeMessage({ header: h, payloads: sk.payloads }, { encrypt: { aead, iv: sk.iv, padding: sk.padding } })).toEqual(b);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('robustness: damaged input only ever yields IkeParseError or a faithful decode (fast-check)', () => {
  it('mutated, truncated and extended strongSwan messages decode or raise IkeParseError, and whatever decodes re-encodes to the same octets', () => {
    const arb = fc.record({
      // The two IKE_SA_INIT messages carry the only cleartext payloads: give them more weight.
      index: fc.oneof(fc.constantFrom(0, 1), fc.nat({ max: fixture.length - 1 })),
      edits: fc.array(mutation, { minLength: 1, maxLength: 4 }),
      keepLength: fc.boolean(),
    });
    fc.assert(
      fc.property(arb, ({ index, edits, keepLength }) => {
        const original = fixture[index]!.bytes;
        // Mostly edit the payloads (offset 16 on: Next Payload, version, ...), and fix the header Length so the edit is seen.
        const damaged = keepLength ? fixLength(mutate(original, edits, 16)) : mutate(original, edits);
        const m = tolerated(() => decodeMessage(damaged));
        if (m !== 'rejected') expect(encodeMessage(m)).toEqual(damaged);
      }),
      { numRuns: 4000 },
    );
  });

  it('mutations of random valid messages decode or raise IkeParseError, and whatever decodes re-encodes to the same octets', () => {
    fc.assert(
      fc.property(message, fc.array(mutation, { minLength: 1, maxLength: 3 }), (m, edits) => {
        const damaged = fixLength(mutate(encodeMessage(m), edits, 16));
        const d = tolerated(() => decodeMessage(damaged));
        if (d !== 'rejected') expect(encodeMessage(d)).toEqual(damaged);
      }),
      { numRuns: 2000 },
    );
  });

  it('random octets behind a plausible IKEv2 header decode or raise IkeParseError', () => {
    const arb = fc.record({ first: fc.integer({ min: 0, max: 60 }), body: bytes(0, 300) });
    fc.assert(
      fc.property(header, arb, (h, { first, body }) => {
        const b = Buffer.concat([encodeHeader(h, first, 28 + body.length), body]);
        const d = tolerated(() => decodeMessage(b));
        if (d !== 'rejected') expect(encodeMessage(d)).toEqual(b);
      }),
      { numRuns: 3000 },
    );
  });

  it('arbitrary octet strings of any length decode or raise IkeParseError', () => {
    fc.assert(
      fc.property(bytes(0, 120), (b) => {
        tolerated(() => decodeMessage(b));
      }),
      { numRuns: 2000 },
    );
  });

  it('damaged SK plaintexts that still authenticate decrypt or raise IkeParseError, and whatever decodes re-encrypts exactly', () => {
    // The strongSwan SK messages and the two reassembled IKE_AUTH messages, decrypted: mutate the
    // plaintext, seal it again under a known key so that it authenticates.
    const plaintexts: { header: IkeHeader; first: number; plaintext: Buffer }[] = [];
    const reassembler = new FragmentReassembler();
    for (const d of fixture) {
      const m = decodeMessage(d.bytes);
      const last = m.payloads[0]!;
      let payloads;
      if (last.type === PayloadType.SK) {
        payloads = decryptSk(m, d.bytes, senderAead(m.header)).payloads;
      } else if (last.type === PayloadType.SKF) {
        const r = reassembler.add(m, d.bytes, senderAead(m.header));
        if (r.status !== 'complete') continue;
        payloads = r.payloads;
      } else {
        continue;
      }
      const inner = encodeMessage({ header: m.header, payloads }).subarray(28);
      plaintexts.push({ header: m.header, first: payloads[0] ? payloadNumber(payloads[0]) : 0, plaintext: Buffer.concat([inner, Buffer.from([0])]) });
    }
    expect(plaintexts).toHaveLength(14);
    const iv = Buffer.alloc(8, 1);
    const seal = (h: IkeHeader, first: number, plaintext: Buffer) => {
      const skLength = 4 + 8 + plaintext.length + 16;
      const prefix = Buffer.concat([encodeHeader(h, PayloadType.SK, 28 + skLength), Buffer.from([first, 0, skLength >> 8, skLength & 0xff])]);
      return sealEncrypted(prefix, iv, plaintext, aead);
    };
    const arb = fc.record({
      index: fc.nat({ max: plaintexts.length - 1 }),
      edits: fc.array(mutation, { minLength: 1, maxLength: 4 }),
      first: fc.option(fc.integer({ min: 0, max: 60 }), { nil: undefined, freq: 4 }),
    });
    fc.assert(
      fc.property(arb, ({ index, edits, first }) => {
        const p = plaintexts[index]!;
        const damaged = mutate(p.plaintext, edits);
        if (damaged.length === 0) return;
        const b = seal(p.header, first ?? p.first, damaged);
        const sk = tolerated(() => decryptSk(decodeMessage(b), b, aead));
        if (sk !== 'rejected') {
          expect(encodeMessage({ header: p.header, payloads: sk.payloads }, { encrypt: { aead, iv: sk.iv, padding: sk.padding } })).toEqual(b);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('damaged strongSwan fragments never make the reassembler throw', () => {
    const frags = fixture.filter((d) => decodeMessage(d.bytes).payloads[0]?.type === PayloadType.SKF);
    fc.assert(
      fc.property(fc.array(fc.record({ index: fc.nat({ max: frags.length - 1 }), edits: fc.array(mutation, { maxLength: 2 }) }), { maxLength: 5 }), (feed) => {
        const r = new FragmentReassembler();
        for (const { index, edits } of feed) {
          const b = edits.length ? fixLength(mutate(frags[index]!.bytes, edits, 16)) : frags[index]!.bytes;
          const m = tolerated(() => decodeMessage(b));
          if (m === 'rejected') continue;
          tolerated(
            () => r.add(m, b, senderAead(m.header)),
            (err) => err instanceof IkeIntegrityError || (err instanceof Error && /no key row/.test(err.message)),
          );
        }
      }),
      { numRuns: 500 },
    );
  });
});
