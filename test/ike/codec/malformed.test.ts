import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AES_GCM_16_128 } from '../../../src/crypto/aead.js';
import {
  ExchangeType,
  IkeEncodeError,
  IkeIntegrityError,
  IkeParseError,
  NotifyType,
  PayloadType,
  decodeMessage,
  decryptSk,
  encodeHeader,
  encodeMessage,
  type IkeHeader,
  type IkeMessage,
  type Payload,
} from '../../../src/ike/codec/index.js';
import { buildPlaintext, sealEncrypted } from '../../../src/ike/codec/sk.js';

const request: IkeHeader = {
  spiI: Buffer.from('0102030405060708', 'hex'),
  spiR: Buffer.from('1112131415161718', 'hex'),
  exchangeType: ExchangeType.CREATE_CHILD_SA,
  initiator: true,
  response: false,
  higherVersion: false,
  messageId: 7,
};
const response: IkeHeader = { ...request, initiator: false, response: true };

/** Generic payload header ‖ body. */
function payload(next: number, body: Buffer | string, flags = 0): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body.replace(/\s/g, ''), 'hex') : body;
  const h = Buffer.from([next, flags, 0, 0]);
  h.writeUInt16BE(4 + b.length, 2);
  return Buffer.concat([h, b]);
}

function datagram(first: number, chain: Buffer, header: IkeHeader = request): Buffer {
  return Buffer.concat([encodeHeader(header, first, 28 + chain.length), chain]);
}

function parseError(bytes: Buffer): IkeParseError {
  try {
    decodeMessage(bytes);
  } catch (err) {
    expect(err).toBeInstanceOf(IkeParseError);
    return err as IkeParseError;
  }
  throw new Error('the message decoded');
}

function roundTrips(bytes: Buffer): IkeMessage {
  const m = decodeMessage(bytes);
  expect(encodeMessage(m)).toEqual(bytes);
  return m;
}

const nonce = Buffer.alloc(32, 0xab);

describe('IKE header (RFC 7296 §3.1)', () => {
  it('a datagram shorter than the 28-octet header is INVALID_SYNTAX', () => {
    const e = parseError(datagram(0, Buffer.alloc(0)).subarray(0, 27));
    expect(e.notifyType).toBe(NotifyType.INVALID_SYNTAX);
    expect(e.offset).toBe(0);
  });

  it('a Length field larger or smaller than the datagram is INVALID_SYNTAX pointing at the Length field', () => {
    const good = datagram(PayloadType.NONCE, payload(0, nonce));
    for (const delta of [1, -1, 1000]) {
      const bad = Buffer.from(good);
      bad.writeUInt32BE(good.length + delta, 24);
      const e = parseError(bad);
      expect(e.notifyType).toBe(NotifyType.INVALID_SYNTAX);
      expect(e.offset).toBe(24);
      expect(e.message).toContain(`the datagram is ${good.length} octets`);
    }
    expect(parseError(Buffer.concat([good, Buffer.alloc(1)])).offset).toBe(24);
  });

  it('a major version above 2 is INVALID_MAJOR_VERSION, checked before anything else, and so is IKEv1', () => {
    for (const version of [0x30, 0xf0, 0x10]) {
      const bad = datagram(PayloadType.NONCE, payload(0, nonce));
      bad[17] = version;
      bad.writeUInt32BE(9999, 24); // a broken Length does not mask the version
      const e = parseError(bad);
      expect(e.notifyType).toBe(NotifyType.INVALID_MAJOR_VERSION);
      expect(e.notifyData).toEqual(Buffer.alloc(0));
      expect(e.offset).toBe(17);
    }
  });

  it('keeps a non-zero minor version and X flag bits so the message re-encodes exactly, and reads the V flag', () => {
    const bytes = datagram(PayloadType.NONCE, payload(0, nonce));
    bytes[17] = 0x21;
    bytes[19] = 0x08 | 0x10 | 0x01;
    const m = roundTrips(bytes);
    expect(m.header).toMatchObject({ minorVersion: 1, reservedFlags: 0x01, higherVersion: true, initiator: true });
  });
});

describe('the payload chain (RFC 7296 §3.2)', () => {
  it('a Payload Length below 4 or past the end of the message is INVALID_SYNTAX', () => {
    const short = payload(0, nonce);
    short.writeUInt16BE(3, 2);
    expect(parseError(datagram(PayloadType.NONCE, short)).message).toMatch(/Payload Length 3/);
    const long = payload(0, nonce);
    long.writeUInt16BE(200, 2);
    const e = parseError(datagram(PayloadType.NONCE, long));
    expect(e.message).toBe('Nonce: Payload Length 200, but only 36 octets are left');
    expect(e.offset).toBe(30);
  });

  it('a chain that names a next payload after the last octet, or ends with octets to spare, is INVALID_SYNTAX', () => {
    expect(parseError(datagram(PayloadType.NONCE, payload(PayloadType.NOTIFY, nonce))).message).toMatch(
      /^N: the chain announces this payload but only 0 octets are left/,
    );
    expect(parseError(datagram(PayloadType.NONCE, Buffer.concat([payload(0, nonce), Buffer.alloc(3)]))).message).toBe(
      '3 octets after the last payload of the chain',
    );
  });

  it('an unknown payload with the Critical bit set is UNSUPPORTED_CRITICAL_PAYLOAD carrying the payload type as notification data', () => {
    const bytes = datagram(PayloadType.NONCE, Buffer.concat([payload(50, nonce), payload(0, 'cafe', 0x80)]));
    const e = parseError(bytes);
    expect(e.notifyType).toBe(NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD);
    expect(e.notifyData).toEqual(Buffer.from([50]));
    expect(e.payloadType).toBe(50);
    expect(e.offset).toBe(28 + 36);
  });

  it('an unknown payload without the Critical bit is skipped but kept raw, the chain continues after it, and the message re-encodes exactly', () => {
    const bytes = datagram(PayloadType.NONCE, Buffer.concat([payload(200, nonce), payload(PayloadType.NOTIFY, 'cafe', 0x05), payload(0, '00004000')]));
    const m = roundTrips(bytes);
    expect(m.payloads).toEqual([
      { type: PayloadType.NONCE, nonce },
      { type: 'unknown', payloadType: 200, body: Buffer.from('cafe', 'hex'), headerReserved: 5 },
      { type: PayloadType.NOTIFY, protocolId: 0, spi: Buffer.alloc(0), notifyType: NotifyType.INITIAL_CONTACT, data: Buffer.alloc(0) },
    ]);
  });

  it('the Critical bit on a known payload is ignored but kept', () => {
    const m = roundTrips(datagram(PayloadType.NONCE, payload(0, nonce, 0x80)));
    expect(m.payloads[0]).toEqual({ type: PayloadType.NONCE, nonce, critical: true });
  });

  it('an Encrypted payload that is not the last one is INVALID_SYNTAX', () => {
    const chain = Buffer.concat([payload(PayloadType.NONCE, Buffer.alloc(40)), payload(0, nonce)]);
    expect(parseError(datagram(PayloadType.SK, chain)).message).toBe('SK: must be the last payload, but 36 octets follow it');
  });
});

/** SA payload body: proposals given as [lastSubstruc, number, protocol, spi, transforms[[last, type, id, attrs]]]. */
function proposal(
  last: number,
  num: number,
  protocol: number,
  spi: string,
  transforms: Array<[number, number, number, string?]>,
  countOverride?: number,
): Buffer {
  const t = transforms.map(([l, type, id, attrs]) => {
    const a = Buffer.from(attrs ?? '', 'hex');
    const b = Buffer.alloc(8);
    b[0] = l;
    b.writeUInt16BE(8 + a.length, 2);
    b[4] = type;
    b.writeUInt16BE(id, 6);
    return Buffer.concat([b, a]);
  });
  const spiBytes = Buffer.from(spi, 'hex');
  const head = Buffer.from([last, 0, 0, 0, num, protocol, spiBytes.length, countOverride ?? transforms.length]);
  const body = Buffer.concat([head, spiBytes, ...t]);
  body.writeUInt16BE(body.length, 2);
  return body;
}

const aesGcm128: [number, number, number, string] = [0, 1, 20, '800e0080'];

describe('SA payload substructures (RFC 7296 §3.3)', () => {
  const sa = (body: Buffer, header: IkeHeader = request) => datagram(PayloadType.SA, payload(0, body), header);

  it('a well-formed ESP proposal with a TV Key Length decodes and re-encodes', () => {
    const m = roundTrips(
      sa(
        proposal(0, 1, 3, 'c0ffee01', [
          [3, 1, 20, '800e0080'],
          [0, 5, 0],
        ]),
      ),
    );
    expect(m.payloads[0]).toEqual({
      type: PayloadType.SA,
      proposals: [
        {
          number: 1,
          protocolId: 3,
          spi: Buffer.from('c0ffee01', 'hex'),
          transforms: [
            { type: 1, id: 20, attributes: [{ type: 14, value: 128 }] },
            { type: 5, id: 0, attributes: [] },
          ],
        },
      ],
    });
  });

  it('TLV attributes (AF = 0) come back as octets and re-encode as TLV', () => {
    const m = roundTrips(sa(proposal(0, 1, 3, 'c0ffee01', [[0, 1, 20, '4001 0003 010203 800e0100'.replace(/ /g, '')]])));
    const p = m.payloads[0]!;
    if (p.type !== PayloadType.SA) throw new Error('not SA');
    expect(p.proposals[0]!.transforms[0]!.attributes).toEqual([
      { type: 0x4001, value: Buffer.from('010203', 'hex') },
      { type: 14, value: 256 },
    ]);
  });

  it('a proposal Last Substruc other than 0 or 2 is INVALID_SYNTAX', () => {
    const e = parseError(sa(proposal(3, 1, 3, 'c0ffee01', [aesGcm128])));
    expect(e.message).toBe('SA: proposal 1: Last Substruc 3, expected 0 (last) or 2 (more)');
    expect(e.offset).toBe(32);
  });

  it('a transform Last Substruc that disagrees with Num Transforms is INVALID_SYNTAX', () => {
    expect(
      parseError(
        sa(
          proposal(0, 1, 3, 'c0ffee01', [
            [0, 1, 20, '800e0080'],
            [0, 5, 0],
          ]),
        ),
      ).message,
    ).toBe('SA proposal 1: transform 1 of 2: Last Substruc 0, expected 3');
    expect(parseError(sa(proposal(0, 1, 3, 'c0ffee01', [[3, 1, 20, '800e0080']]))).message).toBe(
      'SA proposal 1: transform 1 of 1: Last Substruc 3, expected 0',
    );
  });

  it('a proposal marked last with more octets after it, or marked "more" at the end, is INVALID_SYNTAX', () => {
    const two = Buffer.concat([proposal(0, 1, 3, 'c0ffee01', [aesGcm128]), proposal(0, 2, 3, 'c0ffee01', [aesGcm128])]);
    expect(parseError(sa(two)).message).toBe('SA: proposal 1 is marked last but 24 octets follow it');
    expect(parseError(sa(proposal(2, 1, 3, 'c0ffee01', [aesGcm128]))).message).toBe('SA: proposal 1 is marked "more follow" (2) but the payload ends');
  });

  it('Num Transforms larger or smaller than the transforms present is INVALID_SYNTAX', () => {
    expect(parseError(sa(proposal(0, 1, 3, 'c0ffee01', [aesGcm128], 2))).message).toMatch(/Last Substruc 0, expected 3/);
    expect(
      parseError(
        sa(
          proposal(
            0,
            1,
            3,
            'c0ffee01',
            [
              [3, 1, 20, '800e0080'],
              [0, 5, 0],
            ],
            1,
          ),
        ),
      ).message,
    ).toMatch(/Last Substruc 3, expected 0/);
    expect(parseError(sa(proposal(0, 1, 3, 'c0ffee01', [aesGcm128], 0))).message).toBe(
      'SA proposal 1: 12 unexpected octets after the 0 transforms Num Transforms announces',
    );
  });

  it('a request numbers its proposals 1, 2, 3; a response may echo any single number', () => {
    const p = (last: number, n: number) => proposal(last, n, 3, 'c0ffee01', [aesGcm128]);
    roundTrips(sa(Buffer.concat([p(2, 1), p(2, 2), p(0, 3)])));
    expect(parseError(sa(p(0, 2))).message).toBe('SA: proposal 1: a request numbers its first proposal 1, this one is 2');
    expect(parseError(sa(Buffer.concat([p(2, 1), p(0, 3)]))).message).toBe('SA: proposal 2: Proposal Num 3 does not follow 1');
    expect(parseError(sa(Buffer.concat([p(2, 1), p(0, 1)]))).message).toBe('SA: proposal 2: Proposal Num 1 does not follow 1');
    roundTrips(sa(p(0, 7), response));
    expect(parseError(sa(p(0, 0), response)).message).toBe('SA: proposal 1: Proposal Num 0 is not allowed');
  });

  it('an SPI Size that does not fit the Protocol ID is INVALID_SYNTAX (IKE: 0 or 8, ESP/AH: 4)', () => {
    roundTrips(sa(proposal(0, 1, 1, '', [aesGcm128])));
    roundTrips(sa(proposal(0, 1, 1, '0102030405060708', [aesGcm128])));
    expect(parseError(sa(proposal(0, 1, 1, 'c0ffee01', [aesGcm128]))).message).toBe('SA proposal 1: SPI Size 4 for Protocol ID 1, expected 0 or 8');
    expect(parseError(sa(proposal(0, 1, 3, '', [aesGcm128]))).message).toBe('SA proposal 1: SPI Size 0 for Protocol ID 3, expected 4');
  });

  it('an empty SA payload, a Proposal Length below 8 and a Transform Length below 8 are INVALID_SYNTAX', () => {
    expect(parseError(sa(Buffer.alloc(0))).message).toBe('SA: an SA payload carries at least one proposal, this one is empty');
    const p = proposal(0, 1, 3, 'c0ffee01', [aesGcm128]);
    p.writeUInt16BE(7, 2);
    expect(parseError(sa(p)).message).toBe('SA: proposal 1: Proposal Length 7, at least 8 needed');
    const t = proposal(0, 1, 3, 'c0ffee01', [aesGcm128]);
    t.writeUInt16BE(4, 12 + 2);
    expect(parseError(sa(t)).message).toBe('SA proposal 1: transform 1: Transform Length 4, at least 8 needed');
  });

  it('a TLV attribute whose length runs past its transform is INVALID_SYNTAX', () => {
    expect(parseError(sa(proposal(0, 1, 3, 'c0ffee01', [[0, 1, 20, '000e0010aabb']]))).message).toBe(
      'SA proposal 1 transform 1: attribute 14 value (TLV) needs 16 octets, only 2 left',
    );
  });
});

describe('Traffic Selector payloads (RFC 7296 §3.13)', () => {
  const ts4 = (length = 16) => {
    const b = Buffer.from('07 00 0010 0000 ffff 0a000001 0a0000ff'.replace(/\s/g, ''), 'hex');
    b.writeUInt16BE(length, 2);
    return b;
  };
  const tsi = (count: number, ...selectors: Buffer[]) => datagram(PayloadType.TSi, payload(0, Buffer.concat([Buffer.from([count, 0, 0, 0]), ...selectors])));

  it('a selector length that does not match its TS type is INVALID_SYNTAX with a message naming both', () => {
    const e = parseError(tsi(1, ts4(12)));
    expect(e.message).toBe('TSi: traffic selector 1 length 12, expected 16 for TS_IPV4_ADDR_RANGE');
    expect(e.offset).toBe(28 + 4 + 4 + 2);
    expect(e.payloadType).toBe(PayloadType.TSi);
    const v6 = Buffer.concat([Buffer.from('08000010', 'hex'), Buffer.alloc(12)]);
    expect(parseError(tsi(1, v6)).message).toBe('TSi: traffic selector 1 length 16, expected 40 for TS_IPV6_ADDR_RANGE');
  });

  it('Number of TSs larger or smaller than the selectors present is INVALID_SYNTAX', () => {
    expect(parseError(tsi(2, ts4())).message).toBe('TSi: TS Type needs 1 octet, only 0 left');
    expect(parseError(tsi(1, ts4(), ts4())).message).toBe('TSi: 16 unexpected octets after the 1 traffic selector Number of TSs announces');
  });

  it('a selector of an unknown TS type is kept with its octets, and re-encodes', () => {
    const m = roundTrips(tsi(2, ts4(), Buffer.from('0a000006abcd', 'hex')));
    const p = m.payloads[0]!;
    if (p.type !== PayloadType.TSi) throw new Error('not TSi');
    expect(p.selectors[1]).toEqual({ tsType: 'unknown', selectorType: 10, ipProtocolId: 0, data: Buffer.from('abcd', 'hex') });
  });
});

describe('Delete payload (RFC 7296 §3.11)', () => {
  const d = (hex: string) => datagram(PayloadType.DELETE, payload(0, hex));

  it('decodes ESP SPIs and an IKE delete with SPI Size 0', () => {
    expect(roundTrips(d('03 04 0002 c0ffee01 c0ffee02')).payloads[0]).toEqual({
      type: PayloadType.DELETE,
      protocolId: 3,
      spis: [Buffer.from('c0ffee01', 'hex'), Buffer.from('c0ffee02', 'hex')],
    });
    expect(roundTrips(d('01 00 0000')).payloads[0]).toEqual({ type: PayloadType.DELETE, protocolId: 1, spis: [] });
  });

  it('an SPI Size inconsistent with the Protocol ID is INVALID_SYNTAX', () => {
    expect(parseError(d('03 08 0001 0102030405060708')).message).toBe('D: SPI Size 8 for Protocol ID 3, expected 4');
    expect(parseError(d('01 04 0001 c0ffee01')).message).toBe('D: SPI Size 4 for Protocol ID 1, expected 0');
    expect(parseError(d('02 00 0000')).message).toBe('D: SPI Size 0 for Protocol ID 2, expected 4');
    expect(parseError(d('07 04 0001 c0ffee01')).message).toBe('D: Protocol ID 7, expected 1 (IKE), 2 (AH) or 3 (ESP)');
  });

  it('Num of SPIs that does not match the octets present is INVALID_SYNTAX', () => {
    expect(parseError(d('03 04 0002 c0ffee01')).message).toBe('D: 2 SPIs of 4 octets need 8 octets, the payload has 4');
    expect(parseError(d('03 04 0001 c0ffee01 00')).message).toBe('D: 1 SPIs of 4 octets need 4 octets, the payload has 5');
  });
});

describe('the other payload bodies', () => {
  it('a Nonce outside 16..256 octets is INVALID_SYNTAX; the bounds themselves decode', () => {
    for (const n of [16, 256]) roundTrips(datagram(PayloadType.NONCE, payload(0, Buffer.alloc(n, 1))));
    for (const n of [0, 15, 257]) {
      expect(parseError(datagram(PayloadType.NONCE, payload(0, Buffer.alloc(n, 1)))).message).toBe(
        `Nonce: Nonce Data is ${n} octets, RFC 7296 §3.9 requires 16..256`,
      );
    }
  });

  it('ID_IPV4_ADDR and ID_IPV6_ADDR data of the wrong length is INVALID_SYNTAX', () => {
    expect(parseError(datagram(PayloadType.IDi, payload(0, '01000000 0a000001 00'))).message).toBe('IDi: ID_IPV4_ADDR data is 5 octets, expected 4');
    expect(parseError(datagram(PayloadType.IDr, payload(0, '05000000 0a000001'))).message).toBe('IDr: ID_IPV6_ADDR data is 4 octets, expected 16');
  });

  it('a KE, ID, AUTH or TS payload too short for its fixed fields is INVALID_SYNTAX', () => {
    expect(parseError(datagram(PayloadType.KE, payload(0, '001d00'))).message).toBe('KE: RESERVED needs 2 octets, only 1 left');
    expect(parseError(datagram(PayloadType.IDi, payload(0, '02'))).message).toBe('IDi: RESERVED needs 1 octet, only 0 left');
    expect(parseError(datagram(PayloadType.AUTH, payload(0, ''))).message).toBe('AUTH: Auth Method needs 1 octet, only 0 left');
    expect(parseError(datagram(PayloadType.TSr, payload(0, '010000'))).message).toBe('TSr: RESERVED needs 2 octets, only 1 left');
  });

  it('a CERTREQ authority list that is not whole SHA-1 hashes, and Hash and URL data shorter than the hash, are INVALID_SYNTAX', () => {
    expect(parseError(datagram(PayloadType.CERTREQ, payload(0, Buffer.concat([Buffer.from([4]), Buffer.alloc(21)])))).message).toBe(
      'CERTREQ: Certification Authority is 21 octets, not a whole number of 20-octet SHA-1 hashes',
    );
    roundTrips(datagram(PayloadType.CERTREQ, payload(0, '04')));
    expect(parseError(datagram(PayloadType.CERT, payload(0, Buffer.concat([Buffer.from([12]), Buffer.alloc(10)])))).message).toMatch(
      /^CERT: Hash and URL data is 10 octets/,
    );
  });

  it('a Notify whose SPI Size runs past the payload is INVALID_SYNTAX', () => {
    expect(parseError(datagram(PayloadType.NOTIFY, payload(0, '03 08 4009 c0ffee01'))).message).toBe('N: SPI needs 8 octets, only 4 left');
  });

  it('an EAP message whose Length disagrees with the payload is INVALID_SYNTAX', () => {
    roundTrips(datagram(PayloadType.EAP, payload(0, '01 07 0006 0161')));
    expect(parseError(datagram(PayloadType.EAP, payload(0, '01 07 0007 0161'))).message).toBe('EAP: EAP Length 7, but the payload carries 6 octets');
  });

  it('CP attributes keep their R bit and values; an attribute running past the payload is INVALID_SYNTAX', () => {
    const m = roundTrips(datagram(PayloadType.CP, payload(0, '01 000000 0001 0000 8003 0004 0a000001')));
    expect(m.payloads[0]).toEqual({
      type: PayloadType.CP,
      cfgType: 1,
      attributes: [
        { type: 1, value: Buffer.alloc(0) },
        { type: 3, value: Buffer.from('0a000001', 'hex'), reserved: 1 },
      ],
    });
    expect(parseError(datagram(PayloadType.CP, payload(0, '01 000000 0001 0004 0a'))).message).toBe('CP: attribute 1 value needs 4 octets, only 1 left');
  });

  it('SKF Fragment Number 0, above Total Fragments, or Total Fragments 0 is INVALID_SYNTAX', () => {
    const skf = (num: number, total: number) => {
      const b = Buffer.alloc(4 + 40);
      b.writeUInt16BE(num, 0);
      b.writeUInt16BE(total, 2);
      return datagram(PayloadType.SKF, payload(PayloadType.IDi, b));
    };
    roundTrips(skf(2, 2));
    expect(parseError(skf(0, 2)).message).toBe('SKF: Fragment Number 0 outside 1..2');
    expect(parseError(skf(3, 2)).message).toBe('SKF: Fragment Number 3 outside 1..2');
    expect(parseError(skf(1, 0)).message).toBe('SKF: Total Fragments is 0');
  });
});

describe('the Encrypted payload (RFC 7296 §3.14, RFC 5282)', () => {
  const aead = AES_GCM_16_128.createContext(randomBytes(20));
  const iv = Buffer.from('0001020304050607', 'hex');

  /** A message whose SK plaintext is exactly `plaintext` (inner chain ‖ padding ‖ Pad Length), first inner type `first`. */
  function sealed(first: number, plaintext: Buffer): Buffer {
    const skLength = 4 + 8 + plaintext.length + 16;
    const prefix = Buffer.concat([encodeHeader(request, PayloadType.SK, 28 + skLength), Buffer.from([first, 0, skLength >> 8, skLength & 0xff])]);
    return sealEncrypted(prefix, iv, plaintext, aead);
  }

  it('round-trips inner payloads with padding under a fresh key', () => {
    const payloads: Payload[] = [{ type: PayloadType.NONCE, nonce }];
    const bytes = encodeMessage({ header: request, payloads }, { encrypt: { aead, iv, padding: Buffer.from([1, 2, 3]) } });
    const sk = decryptSk(decodeMessage(bytes), bytes, aead);
    expect(sk).toEqual({ payloads, iv, padding: Buffer.from([1, 2, 3]) });
  });

  it('a Pad Length larger than the decrypted octets before it is INVALID_SYNTAX (the message did authenticate)', () => {
    const bytes = sealed(0, Buffer.from([0, 0, 5]));
    const e = (() => {
      try {
        decryptSk(decodeMessage(bytes), bytes, aead);
      } catch (err) {
        return err;
      }
    })();
    expect(e).toBeInstanceOf(IkeParseError);
    expect((e as IkeParseError).message).toBe('SK: Pad Length 5 exceeds the 2 decrypted octets before it');
  });

  it('an Encrypted payload inside an Encrypted payload is INVALID_SYNTAX', () => {
    const innerSk = payload(0, Buffer.alloc(30));
    const bytes = sealed(PayloadType.SK, buildPlaintext(innerSk));
    expect(() => decryptSk(decodeMessage(bytes), bytes, aead)).toThrow('SK: an Encrypted payload inside an Encrypted payload');
  });

  it('an unknown critical payload inside SK is UNSUPPORTED_CRITICAL_PAYLOAD, with the offset into the plaintext', () => {
    const bytes = sealed(PayloadType.NONCE, buildPlaintext(Buffer.concat([payload(99, nonce), payload(0, 'beef', 0x80)])));
    try {
      decryptSk(decodeMessage(bytes), bytes, aead);
      throw new Error('decrypted');
    } catch (err) {
      expect(err).toBeInstanceOf(IkeParseError);
      expect(err).toMatchObject({ notifyType: NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD, offset: 36, notifyData: Buffer.from([99]) });
    }
  });

  it('content too short for IV, Pad Length and ICV fails as an integrity error, not a syntax error', () => {
    const bytes = datagram(PayloadType.SK, payload(0, Buffer.alloc(24)));
    expect(() => decryptSk(decodeMessage(bytes), bytes, aead)).toThrow(IkeIntegrityError);
  });

  it('a message without SK cannot be decrypted (INVALID_SYNTAX), and a fragment must go to the reassembler', () => {
    const plain = datagram(PayloadType.NONCE, payload(0, nonce));
    expect(() => decryptSk(decodeMessage(plain), plain, aead)).toThrow(IkeParseError);
    const frag = datagram(PayloadType.SKF, payload(0, Buffer.concat([Buffer.from('00010001', 'hex'), Buffer.alloc(30)])));
    expect(() => decryptSk(decodeMessage(frag), frag, aead)).toThrow(/FragmentReassembler/);
  });
});

describe('encoding refuses what the wire cannot carry', () => {
  const m = (payloads: Payload[], header: IkeHeader = request): IkeMessage => ({ header, payloads });
  it.each<[string, IkeMessage]>([
    ['a 15-octet nonce', m([{ type: PayloadType.NONCE, nonce: Buffer.alloc(15) }])],
    ['an 8-octet ESP SPI in a Delete', m([{ type: PayloadType.DELETE, protocolId: 3, spis: [Buffer.alloc(8)] }])],
    [
      'an IPv4 selector with IPv6 addresses',
      m([
        {
          type: PayloadType.TSi,
          selectors: [{ tsType: 7, ipProtocolId: 0, startPort: 0, endPort: 65535, startAddress: Buffer.alloc(16), endAddress: Buffer.alloc(16) }],
        },
      ]),
    ],
    [
      'SK before another payload',
      m([
        { type: PayloadType.SK, firstPayload: 0, content: Buffer.alloc(30) },
        { type: PayloadType.NONCE, nonce },
      ]),
    ],
    ['a 4-octet SPIi', m([], { ...request, spiI: Buffer.alloc(4) })],
    ['a Message ID of 2^32', m([], { ...request, messageId: 2 ** 32 })],
    [
      'a port of 65536',
      m([
        {
          type: PayloadType.TSr,
          selectors: [{ tsType: 7, ipProtocolId: 0, startPort: 0, endPort: 65536, startAddress: Buffer.alloc(4), endAddress: Buffer.alloc(4) }],
        },
      ]),
    ],
    ['an unknown payload that claims a known type', m([{ type: 'unknown', payloadType: PayloadType.NONCE, body: nonce }])],
    ['an SA without proposals', m([{ type: PayloadType.SA, proposals: [] }])],
    ['a payload longer than 65535 octets', m([{ type: PayloadType.VENDOR_ID, vendorId: Buffer.alloc(65532) }])],
  ])('%s', (_what, message) => {
    expect(() => encodeMessage(message)).toThrow(IkeEncodeError);
  });
});
