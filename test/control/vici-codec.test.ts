/**
 * The VICI codec (src/control/vici/) against byte sequences written from
 * strongSwan's vici README (src/libcharon/plugins/vici/README.md: "Message
 * format", its encoding example, "Packet layer", "Transport protocol"), its
 * strictness on every rule the README states, and fuzz-style properties:
 * random and mutated input only ever yields a message or a ViciParseError.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ViciParseError, decodeMessage, encodeMessage, messageToObject, type ViciInput, type ViciMessage } from '../../src/control/vici/message.js';
import { ViciFrameReader, ViciPacketType, VICI_MAX_SEGMENT, decodePacket, encodePacket } from '../../src/control/vici/packet.js';

const b = (...parts: Array<number | string>): Buffer => Buffer.concat(parts.map((p) => (typeof p === 'number' ? Buffer.from([p]) : Buffer.from(p, 'latin1'))));

/** The README's encoding example: key1 = value1, section1 = { sub-section = { key2 = value2 }, list1 = [item1, item2] }. */
const README_EXAMPLE = b(
  3,
  4,
  'key1',
  0,
  6,
  'value1',
  1,
  8,
  'section1',
  1,
  11,
  'sub-section',
  3,
  4,
  'key2',
  0,
  6,
  'value2',
  2,
  4,
  5,
  'list1',
  5,
  0,
  5,
  'item1',
  5,
  0,
  5,
  'item2',
  6,
  2,
);

describe('VICI messages', () => {
  it("decodes the README's encoding example into its tree, and encodes the tree back to the same octets", () => {
    const m = decodeMessage(README_EXAMPLE);
    expect(messageToObject(m)).toEqual({ key1: 'value1', section1: { 'sub-section': { key2: 'value2' }, list1: ['item1', 'item2'] } });
    expect(encodeMessage({ key1: 'value1', section1: { 'sub-section': { key2: 'value2' }, list1: ['item1', 'item2'] } })).toEqual(README_EXAMPLE);
  });

  it('keeps the order of elements, including keys a plain object would reorder (a Map section)', () => {
    const input = new Map<string, string>([
      ['b', '1'],
      ['10', '2'],
      ['a', '3'],
    ]);
    const m = decodeMessage(encodeMessage(input));
    expect(m.map((e) => e.name)).toEqual(['b', '10', 'a']);
  });

  it('encodes numbers as decimal text, leaves undefined keys out, and carries raw octets (a certificate) untouched', () => {
    const der = Buffer.from([0x30, 0x82, 0x00, 0xff, 0x00]);
    const out = encodeMessage({ uniqueid: 7, missing: undefined, data: der });
    expect(out).toEqual(b(3, 8, 'uniqueid', 0, 1, '7', 3, 4, 'data', 0, 5, 0x30, 0x82, 0x00, 0xff, 0x00));
    const e = decodeMessage(out)[1]!;
    expect(e.kind === 'value' && e.value).toEqual(der);
  });

  it('an empty message and an empty list are valid', () => {
    expect(decodeMessage(Buffer.alloc(0))).toEqual([]);
    expect(messageToObject(decodeMessage(b(4, 1, 'l', 6)))).toEqual({ l: [] });
  });

  const malformed: Array<[string, Buffer, string]> = [
    ['an unknown element type', b(9), 'unknown element type 9'],
    ['a name running past the end', b(3, 10, 'key'), 'name of 10 octets runs past the end'],
    ['a missing value length', b(3, 1, 'k', 0), 'truncated before a value length'],
    ['a value running past the end', b(3, 1, 'k', 0, 9, 'abc'), 'value of 9 octets runs past the end'],
    ['an empty name', b(3, 0, 0, 0), 'empty name'],
    ['a name with a control character', b(3, 2, 'a\n', 0, 0), 'not printable ASCII'],
    ['a name with a non-ASCII octet', b(1, 2, 'a', 0xe9, 2), 'not printable ASCII'],
    ['SECTION_END without a section', b(2), 'section end without a section'],
    ['a section left open', b(1, 1, 's', 3, 1, 'k', 0, 0), "section 's' not closed"],
    ['a list left open', b(4, 1, 'l', 5, 0, 0), "list 'l' not closed"],
    ['LIST_ITEM outside a list', b(5, 0, 1, 'x'), 'list item outside a list'],
    ['LIST_END without a list', b(6), 'list end without a list'],
    ['a key/value inside a list', b(4, 1, 'l', 3, 1, 'k', 0, 0, 6), "key/value inside list 'l'"],
    ['a list inside a list', b(4, 1, 'l', 4, 1, 'm', 6, 6), "list inside list 'l'"],
    ['a section inside a list', b(4, 1, 'l', 1, 1, 's', 2, 6), "section inside list 'l'"],
    ['a duplicate key in a section', b(1, 1, 's', 3, 1, 'k', 0, 0, 4, 1, 'k', 6, 2), "duplicate key 'k' in section 's'"],
    ['a duplicate key in the root section', b(3, 1, 'k', 0, 0, 3, 1, 'k', 0, 0), "duplicate key 'k' in the root section"],
  ];
  for (const [what, octets, why] of malformed) {
    it(`refuses ${what} with a ViciParseError saying so`, () => {
      expect(() => decodeMessage(octets)).toThrow(ViciParseError);
      expect(() => decodeMessage(octets)).toThrow(why);
    });
  }

  it('bounds nesting depth and element count', () => {
    const deep = Buffer.concat([
      ...Array.from({ length: 20 }, (_, i) => b(1, 2, `s${String.fromCharCode(97 + i)}`)),
      ...Array.from({ length: 20 }, () => b(2)),
    ]);
    expect(() => decodeMessage(deep)).toThrow('nested deeper than 16');
    const many = Buffer.concat([b(4, 1, 'l'), ...Array.from({ length: 101 }, () => b(5, 0, 0)), b(6)]);
    expect(() => decodeMessage(many, { maxDepth: 16, maxElements: 100 })).toThrow('more than 100 elements');
  });

  it('refuses to encode what the format cannot carry', () => {
    expect(() => encodeMessage({ ['x'.repeat(256)]: 'v' })).toThrow('1–255 printable ASCII');
    expect(() => encodeMessage({ 'bad\nname': 'v' })).toThrow('printable ASCII');
    expect(() => encodeMessage({ k: Buffer.alloc(65536) })).toThrow('more than 65535');
  });
});

describe('VICI packets and framing', () => {
  it('a CMD_REQUEST is the length, type 0, the name and the message', () => {
    expect(encodePacket({ type: ViciPacketType.CMD_REQUEST, name: 'version', message: {} })).toEqual(b(0, 0, 0, 9, 0, 7, 'version'));
    const p = decodePacket(b(0, 8, 'list-sas', 3, 3, 'ike', 0, 4, 'moon'));
    expect(p).toMatchObject({ type: ViciPacketType.CMD_REQUEST, name: 'list-sas' });
    expect(p.type === ViciPacketType.CMD_REQUEST && messageToObject(p.message)).toEqual({ ike: 'moon' });
  });

  it('event (un)registrations carry a name only; confirmations and CMD_UNKNOWN carry nothing', () => {
    expect(encodePacket({ type: ViciPacketType.EVENT_REGISTER, name: 'log' })).toEqual(b(0, 0, 0, 5, 3, 3, 'log'));
    expect(encodePacket({ type: ViciPacketType.EVENT_CONFIRM })).toEqual(b(0, 0, 0, 1, 5));
    expect(encodePacket({ type: ViciPacketType.CMD_UNKNOWN })).toEqual(b(0, 0, 0, 1, 2));
    expect(decodePacket(b(4, 10, 'ike-updown'))).toEqual({ type: ViciPacketType.EVENT_UNREGISTER, name: 'ike-updown' });
    expect(decodePacket(b(6))).toEqual({ type: ViciPacketType.EVENT_UNKNOWN });
  });

  it('an EVENT and a CMD_RESPONSE round-trip with their messages', () => {
    const ev = encodePacket({ type: ViciPacketType.EVENT, name: 'ike-updown', message: { up: 'yes', moon: { state: 'ESTABLISHED' } } });
    const p = decodePacket(ev.subarray(4));
    expect(p.type === ViciPacketType.EVENT && [p.name, messageToObject(p.message)]).toEqual(['ike-updown', { up: 'yes', moon: { state: 'ESTABLISHED' } }]);
    const r = decodePacket(encodePacket({ type: ViciPacketType.CMD_RESPONSE, message: { success: 'yes' } }).subarray(4));
    expect(r.type === ViciPacketType.CMD_RESPONSE && messageToObject(r.message)).toEqual({ success: 'yes' });
  });

  const badPackets: Array<[string, Buffer, string]> = [
    ['an empty segment', Buffer.alloc(0), 'empty segment'],
    ['an unknown packet type', b(8), 'unknown packet type 8'],
    ['a CMD_REQUEST without its name', b(0), 'without its name'],
    ['a name running past the end', b(3, 9, 'log'), 'runs past the end'],
    ['an empty name', b(0, 0), 'empty name'],
    ['a name that is not printable', b(3, 1, 0), 'not printable ASCII'],
    ['octets after an EVENT_CONFIRM', b(5, 0), 'unexpected octets'],
    ['octets after an EVENT_REGISTER name', b(3, 3, 'log', 0), 'unexpected octets'],
    ['a malformed message in a request', b(0, 7, 'version', 2), 'section end without a section'],
  ];
  for (const [what, octets, why] of badPackets) {
    it(`refuses ${what}`, () => {
      expect(() => decodePacket(octets)).toThrow(ViciParseError);
      expect(() => decodePacket(octets)).toThrow(why);
    });
  }

  it('the frame reader reassembles segments from any split of the stream, one octet at a time included', () => {
    const stream = Buffer.concat([
      encodePacket({ type: ViciPacketType.EVENT_REGISTER, name: 'log' }),
      encodePacket({ type: ViciPacketType.CMD_REQUEST, name: 'stats', message: { a: 'b' } }),
    ]);
    const r = new ViciFrameReader();
    const got: Buffer[] = [];
    for (const o of stream) got.push(...r.push(Buffer.from([o])));
    expect(got.map((s) => decodePacket(s).type)).toEqual([ViciPacketType.EVENT_REGISTER, ViciPacketType.CMD_REQUEST]);
    expect(r.buffered).toBe(0);
  });

  it('the frame reader refuses a zero length and a length above its limit (the framing is lost then)', () => {
    expect(() => new ViciFrameReader().push(b(0, 0, 0, 0))).toThrow('segment of length 0');
    expect(() => new ViciFrameReader(1024).push(b(0, 0, 4, 1))).toThrow('1025 octets exceeds the limit of 1024');
    expect(() => new ViciFrameReader().push(Buffer.from([0xff, 0xff, 0xff, 0xff]))).toThrow(`exceeds the limit of ${VICI_MAX_SEGMENT}`);
  });
});

describe('VICI codec under random and mutated input (fuzz-style properties)', () => {
  const name = fc.stringMatching(/^[a-z][a-z0-9_-]{0,12}$/);
  const value = fc.oneof(
    fc.string({ maxLength: 40 }),
    fc.uint8Array({ maxLength: 40 }).map((u) => Buffer.from(u)),
    fc.nat(),
  );
  const tree: fc.Arbitrary<Record<string, unknown>> = fc.letrec<{ section: Record<string, unknown> }>((tie) => ({
    section: fc.dictionary(
      name,
      fc.oneof({ depthSize: 'small', withCrossShrink: true }, value, fc.array(fc.string({ maxLength: 20 }), { maxLength: 4 }), tie('section')),
      { maxKeys: 5 },
    ),
  })).section;

  /** decode either returns a message or throws a ViciParseError: nothing else. */
  const decodesOrRefuses = (octets: Buffer): void => {
    try {
      decodeMessage(octets);
    } catch (err) {
      if (!(err instanceof ViciParseError)) throw err;
    }
    try {
      decodePacket(octets);
    } catch (err) {
      if (!(err instanceof ViciParseError)) throw err;
    }
  };

  it('random octets are decoded or refused with a ViciParseError, never another exception', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (u) => decodesOrRefuses(Buffer.from(u))),
      { numRuns: 5000 },
    );
  });

  it('valid messages with octets flipped, cut or inserted are decoded or refused with a ViciParseError', () => {
    const mutation = fc.tuple(
      tree,
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('flip', 'cut', 'insert')), { minLength: 1, maxLength: 4 }),
    );
    fc.assert(
      fc.property(mutation, ([t, muts]) => {
        let octets = encodeMessage(t as ViciInput);
        for (const [at, o, kind] of muts) {
          const i = octets.length === 0 ? 0 : at % octets.length;
          if (kind === 'flip' && octets.length > 0) octets = Buffer.concat([octets.subarray(0, i), Buffer.from([o]), octets.subarray(i + 1)]);
          else if (kind === 'cut') octets = octets.subarray(0, i);
          else octets = Buffer.concat([octets.subarray(0, i), Buffer.from([o]), octets.subarray(i)]);
        }
        decodesOrRefuses(octets);
      }),
      { numRuns: 3000 },
    );
  });

  it('any tree encodes and decodes to the same tree', () => {
    const plain = (m: ViciMessage): unknown => messageToObject(m);
    const normal = (t: Record<string, unknown>): unknown =>
      Object.fromEntries(
        Object.entries(t).map(([k, v]) => [
          k,
          Buffer.isBuffer(v)
            ? v.toString('utf8')
            : typeof v === 'number'
              ? String(v)
              : Array.isArray(v)
                ? v
                : typeof v === 'object' && v !== null
                  ? normal(v as Record<string, unknown>)
                  : v,
        ]),
      );
    fc.assert(
      fc.property(tree, (t) => {
        expect(plain(decodeMessage(encodeMessage(t as ViciInput)))).toEqual(normal(t));
      }),
      { numRuns: 1000 },
    );
  });
});
