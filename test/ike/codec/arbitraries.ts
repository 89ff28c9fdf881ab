/**
 * fast-check generators for valid IKE messages: every payload type with
 * random contents inside what the codec accepts, and random mutations of
 * octet strings. Test support for property.test.ts.
 */
import fc from 'fast-check';
import {
  ExchangeType,
  PayloadType,
  isKnownPayloadType,
  type IkeHeader,
  type IkeMessage,
  type Payload,
  type ProposalSubstructure,
  type TrafficSelector,
  type TransformSubstructure,
} from '../../../src/ike/codec/index.js';

export const bytes = (minLength: number, maxLength: number): fc.Arbitrary<Buffer> => fc.uint8Array({ minLength, maxLength }).map((b) => Buffer.from(b));
const u8 = fc.integer({ min: 0, max: 0xff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const nonZero = (bits: number) => fc.integer({ min: 1, max: 2 ** bits - 1 });

/** Optional non-zero RESERVED value (absent means zero on the wire, which is how the decoder reports it). */
const reserved = (bits: number) => fc.option(nonZero(bits), { nil: undefined, freq: 4 });

function withOptional<T extends object>(base: fc.Arbitrary<T>, extras: Record<string, fc.Arbitrary<unknown>>): fc.Arbitrary<T> {
  return fc.tuple(base, fc.record(extras)).map(([b, e]) => {
    const out: Record<string, unknown> = { ...(b as Record<string, unknown>) };
    for (const [k, v] of Object.entries(e)) if (v !== undefined) out[k] = v;
    return out as T;
  });
}

/** Critical bit and header RESERVED bits of known payloads (both ignored on receipt, kept for exactness). */
function generic<T extends object>(p: fc.Arbitrary<T>): fc.Arbitrary<T> {
  return withOptional(p, {
    critical: fc.option(fc.constant(true), { nil: undefined, freq: 5 }),
    headerReserved: reserved(7),
  });
}

const transform: fc.Arbitrary<TransformSubstructure> = withOptional(
  fc.record({
    type: u8,
    id: u16,
    attributes: fc.array(
      fc.oneof(
        fc.record({ type: fc.integer({ min: 0, max: 0x7fff }), value: u16 }),
        fc.record({ type: fc.integer({ min: 0, max: 0x7fff }), value: bytes(0, 8) }),
      ),
      { maxLength: 3 },
    ),
  }),
  { reserved: reserved(16) },
);

function proposalBody(number: number): fc.Arbitrary<ProposalSubstructure> {
  const spiFor = (protocolId: number) =>
    protocolId === 1 ? fc.oneof(bytes(0, 0), bytes(8, 8)) : protocolId === 2 || protocolId === 3 ? bytes(4, 4) : bytes(0, 8);
  return fc.oneof(fc.constantFrom(1, 2, 3), u8).chain((protocolId) =>
    withOptional(
      fc.record({
        number: fc.constant(number),
        protocolId: fc.constant(protocolId),
        spi: spiFor(protocolId),
        transforms: fc.array(transform, { maxLength: 5 }),
      }),
      { reserved: reserved(8) },
    ),
  );
}

function saPayload(isResponse: boolean): fc.Arbitrary<Payload> {
  return fc
    .tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 250 }))
    .chain(([n, start]) => fc.tuple(...Array.from({ length: n }, (_, i) => proposalBody((isResponse ? start : 1) + i))))
    .map((proposals) => ({ type: PayloadType.SA, proposals }) as Payload);
}

const selector: fc.Arbitrary<TrafficSelector> = fc.oneof(
  fc.record({
    tsType: fc.constant(7 as const),
    ipProtocolId: u8,
    startPort: u16,
    endPort: u16,
    startAddress: bytes(4, 4),
    endAddress: bytes(4, 4),
  }),
  fc.record({
    tsType: fc.constant(8 as const),
    ipProtocolId: u8,
    startPort: u16,
    endPort: u16,
    startAddress: bytes(16, 16),
    endAddress: bytes(16, 16),
  }),
  fc.record({
    tsType: fc.constant('unknown' as const),
    selectorType: u8.filter((t) => t !== 7 && t !== 8),
    ipProtocolId: u8,
    data: bytes(0, 20),
  }),
);

/** Any payload that may appear inside an SK (everything but SK and SKF). */
export function innerPayload(isResponse: boolean): fc.Arbitrary<Payload> {
  return fc.oneof(
    generic(saPayload(isResponse)),
    generic(withOptional(fc.record({ type: fc.constant(PayloadType.KE), dhGroup: u16, keyExchangeData: bytes(0, 64) }), { reserved: reserved(16) })),
    generic(
      withOptional(
        fc
          .tuple(
            fc.constantFrom(PayloadType.IDi, PayloadType.IDr),
            fc.oneof(
              fc.record({ idType: fc.constant(1), data: bytes(4, 4) }),
              fc.record({ idType: fc.constant(5), data: bytes(16, 16) }),
              fc.record({ idType: fc.constantFrom(2, 3, 9, 10, 11, 12, 13, 200), data: bytes(0, 40) }),
            ),
          )
          .map(([type, id]) => ({ type, ...id })),
        { reserved: reserved(24) },
      ),
    ),
    generic(
      fc
        .record({ type: fc.constant(PayloadType.CERT), encoding: u8, data: bytes(0, 60) })
        .filter((p) => !((p.encoding === 12 || p.encoding === 13) && p.data.length < 20)),
    ),
    generic(fc.record({ type: fc.constant(PayloadType.CERTREQ), encoding: u8, caKeyHashes: fc.array(bytes(20, 20), { maxLength: 4 }) })),
    generic(withOptional(fc.record({ type: fc.constant(PayloadType.AUTH), method: u8, data: bytes(0, 64) }), { reserved: reserved(24) })),
    generic(fc.record({ type: fc.constant(PayloadType.NONCE), nonce: bytes(16, 256) })),
    generic(fc.record({ type: fc.constant(PayloadType.NOTIFY), protocolId: u8, spi: bytes(0, 16), notifyType: u16, data: bytes(0, 32) })),
    generic(
      fc.oneof(
        fc.record({ type: fc.constant(PayloadType.DELETE), protocolId: fc.constant(1), spis: fc.array(bytes(0, 0), { maxLength: 3 }) }),
        fc.record({ type: fc.constant(PayloadType.DELETE), protocolId: fc.constantFrom(2, 3), spis: fc.array(bytes(4, 4), { maxLength: 5 }) }),
      ),
    ),
    generic(fc.record({ type: fc.constant(PayloadType.VENDOR_ID), vendorId: bytes(0, 32) })),
    generic(
      withOptional(fc.record({ type: fc.constantFrom(PayloadType.TSi, PayloadType.TSr), selectors: fc.array(selector, { maxLength: 4 }) }), {
        reserved: reserved(24),
      }),
    ),
    generic(
      withOptional(
        fc.record({
          type: fc.constant(PayloadType.CP),
          cfgType: u8,
          attributes: fc.array(
            withOptional(fc.record({ type: fc.integer({ min: 0, max: 0x7fff }), value: bytes(0, 20) }), {
              reserved: fc.option(fc.constant(1), { nil: undefined }),
            }),
            { maxLength: 4 },
          ),
        }),
        { reserved: reserved(24) },
      ),
    ),
    generic(fc.record({ type: fc.constant(PayloadType.EAP), code: u8, identifier: u8, data: bytes(0, 20) })),
    // Unknown payloads are never critical once decoded (critical ones are rejected).
    withOptional(fc.record({ type: fc.constant('unknown' as const), payloadType: u8.filter((t) => t !== 0 && !isKnownPayloadType(t)), body: bytes(0, 20) }), {
      headerReserved: reserved(7),
    }),
  );
}

export const header: fc.Arbitrary<IkeHeader> = withOptional(
  fc.record({
    spiI: bytes(8, 8),
    spiR: bytes(8, 8),
    exchangeType: fc.oneof(fc.constantFrom(ExchangeType.IKE_SA_INIT, ExchangeType.IKE_AUTH, ExchangeType.CREATE_CHILD_SA, ExchangeType.INFORMATIONAL), u8),
    initiator: fc.boolean(),
    response: fc.boolean(),
    higherVersion: fc.boolean(),
    messageId: fc.integer({ min: 0, max: 0xffffffff }),
  }),
  {
    minorVersion: reserved(4),
    reservedFlags: fc.option(
      u8.map((v) => v & 0xc7).filter((v) => v !== 0),
      { nil: undefined, freq: 4 },
    ),
  },
);

const encryptedTail: fc.Arbitrary<Payload> = fc.oneof(
  generic(fc.record({ type: fc.constant(PayloadType.SK), firstPayload: u8, content: bytes(0, 64) }).map((p): Payload => p)),
  generic(
    fc.tuple(fc.integer({ min: 1, max: 0xffff }), fc.integer({ min: 1, max: 0xffff }), u8, bytes(0, 64)).map(([a, b, firstPayload, content]): Payload => ({
      type: PayloadType.SKF,
      firstPayload,
      fragmentNumber: Math.min(a, b),
      totalFragments: Math.max(a, b),
      content,
    })),
  ),
);

/** A valid message: random header, 0..7 payloads, sometimes ending in an opaque SK or SKF. */
export const message: fc.Arbitrary<IkeMessage> = header.chain((h) =>
  fc
    .tuple(fc.array(innerPayload(h.response), { maxLength: 7 }), fc.option(encryptedTail, { nil: undefined }))
    .map(([payloads, tail]) => ({ header: h, payloads: tail ? [...payloads, tail] : payloads })),
);

/** Edits of an octet string. Positions are taken modulo the current length. */
export type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'set'; at: number; value: number }
  | { kind: 'set16'; at: number; value: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; octets: Buffer }
  | { kind: 'delete'; at: number; count: number };

export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.constantFrom(0, 1, 2, 3, 0x7f, 0x80, 0xff) }),
  fc.record({ kind: fc.constant('set16' as const), at: fc.nat(), value: fc.oneof(fc.integer({ min: 0, max: 64 }), u16) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), octets: bytes(1, 12) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 12 }) }),
);

export function mutate(input: Buffer, mutations: readonly Mutation[], from = 0): Buffer {
  let b = Buffer.from(input);
  for (const m of mutations) {
    const span = b.length - from;
    if (span <= 0 && m.kind !== 'insert') continue;
    const at = from + (span > 0 ? m.at % span : 0);
    switch (m.kind) {
      case 'flip':
        b[at]! ^= 1 << m.bit;
        break;
      case 'set':
        b[at] = m.value;
        break;
      case 'set16':
        if (at + 2 <= b.length) b.writeUInt16BE(m.value, at);
        break;
      case 'truncate':
        b = b.subarray(0, at);
        break;
      case 'insert':
        b = Buffer.concat([b.subarray(0, at), m.octets, b.subarray(at)]);
        break;
      case 'delete':
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.count)]);
        break;
    }
  }
  return Buffer.from(b);
}
