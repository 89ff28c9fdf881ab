/**
 * Printing proposals (keyword syntax, charon log names, `swanctl --list-sas`)
 * and the conversion to and from SA payload substructures (RFC 7296 §3.3).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ProposalSubstructure } from '../../../src/ike/codec/payloads/sa.js';
import { describeProposal, formatAsListSas, formatProposal, formatProposalList } from '../../../src/ike/proposal/format.js';
import { allKeywords, isAeadEncryption, transformForKeyword } from '../../../src/ike/proposal/keywords.js';
import { defaultProposals, parseProposal, parseProposalList } from '../../../src/ike/proposal/parse.js';
import { fromProposalSubstructure, toProposalSubstructure, toProposalSubstructures } from '../../../src/ike/proposal/substructure.js';
import type { Proposal, ProposalProtocol } from '../../../src/ike/proposal/types.js';
import { EncrId, KeId, ProtocolId, TransformType } from '../../../src/ike/transforms.js';

const IKE = ProtocolId.IKE;
const ESP = ProtocolId.ESP;
const AH = ProtocolId.AH;

function one(text: string, protocol: ProposalProtocol): Proposal {
  const r = parseProposal(text, protocol);
  if (!r.ok) throw new Error(r.error);
  return r.proposal;
}

describe('keyword syntax', () => {
  it.each([
    [IKE, 'aes128gcm16-prfsha384-ecp384bp', 'aes128gcm16-prfsha384-ecp384bp'],
    [IKE, 'ecp384bp-prfsha384-aes128gcm128', 'aes128gcm16-prfsha384-ecp384bp'],
    [IKE, 'aes256-sha512-modp4096', 'aes256-sha512-prfsha512-modp4096'],
    [IKE, 'aes-sha2_256-x25519', 'aes128-sha256-prfsha256-curve25519'],
    [ESP, 'aes128gcm16-ecp384bp', 'aes128gcm16-ecp384bp-noesn'],
    [ESP, 'aes128gcm128-ecp384bp-noesn', 'aes128gcm16-ecp384bp-noesn'],
    [ESP, 'aes128gcm64-aes256ccm96-esn', 'aes128gcm8-aes256ccm12-esn'],
    [ESP, 'aes192gmac', 'aes192gmac-noesn'],
    [AH, 'aes128gmac-sha256', 'aes128gmac-sha256-noesn'],
    [ESP, '3des-md5-modpnone', '3des-md5-modpnone-noesn'],
  ])('%i %s prints canonically as %s', (protocol, text, printed) => {
    expect(formatProposal(one(text, protocol as ProposalProtocol))).toBe(printed);
  });

  it('a list prints comma-separated', () => {
    const r = parseProposalList('aes256-sha256-prfsha256-ecp256,aes128gcm16-prfsha256-x25519!', IKE);
    expect(r.ok && formatProposalList(r.value.proposals)).toBe('aes256-sha256-prfsha256-ecp256,aes128gcm16-prfsha256-curve25519');
  });

  it('a transform without a keyword prints as its IANA name', () => {
    expect(formatProposal({ protocol: ESP, transforms: [{ type: TransformType.ENCR, id: EncrId.DES }] })).toBe('DES');
  });
});

describe('strongSwan display names', () => {
  it('charon logs the mission proposal as IKE:AES_GCM_16_128/PRF_HMAC_SHA2_384/ECP_384_BP', () => {
    // As in test/fixtures/strongswan-5.9.8-ecp384bp-demo/moon-initiator.charon.log
    expect(describeProposal(one('aes128gcm16-prfsha384-ecp384bp', IKE))).toBe('IKE:AES_GCM_16_128/PRF_HMAC_SHA2_384/ECP_384_BP');
    expect(describeProposal(one('aes128gcm16-ecp384bp', ESP))).toBe('ESP:AES_GCM_16_128/ECP_384_BP/NO_EXT_SEQ');
  });

  it('swanctl --list-sas shows AES_GCM_16-128/PRF_HMAC_SHA2_384/ECP_384_BP and ESP:AES_GCM_16-128/ECP_384_BP', () => {
    expect(formatAsListSas(one('aes128gcm16-prfsha384-ecp384bp', IKE))).toBe('AES_GCM_16-128/PRF_HMAC_SHA2_384/ECP_384_BP');
    expect(formatAsListSas(one('aes128gcm16-ecp384bp', ESP))).toBe('ESP:AES_GCM_16-128/ECP_384_BP');
    expect(formatAsListSas(one('aes256-sha256-esn', ESP))).toBe('ESP:AES_CBC-256/HMAC_SHA2_256_128/ESN');
  });
});

describe('SA payload substructures', () => {
  it('AES transforms carry the Key Length attribute (type 14, TV); others carry none', () => {
    const sub = toProposalSubstructure(one('aes128gcm16-prfsha384-ecp384bp', IKE), 1);
    expect(sub).toEqual({
      number: 1,
      protocolId: 1,
      spi: Buffer.alloc(0),
      transforms: [
        { type: 1, id: 20, attributes: [{ type: 14, value: 128 }] },
        { type: 2, id: 6, attributes: [] },
        { type: 4, id: 29, attributes: [] },
      ],
    } satisfies ProposalSubstructure);
  });

  it('proposals are numbered from 1 and share the SPI', () => {
    const subs = toProposalSubstructures(defaultProposals(ESP), Buffer.from('01020304', 'hex'));
    expect(subs.map((s) => s.number)).toEqual([1, 2]);
    expect(subs.every((s) => s.spi.toString('hex') === '01020304' && s.protocolId === 3)).toBe(true);
  });

  it('a received AES transform without Key Length, or with an unknown attribute, cannot match and is noted', () => {
    const r = fromProposalSubstructure({
      number: 1,
      protocolId: 3,
      spi: Buffer.alloc(4),
      transforms: [
        { type: 1, id: 20, attributes: [] },
        { type: 1, id: 20, attributes: [{ type: 15, value: 1 }] },
        { type: 1, id: 28, attributes: [{ type: 14, value: 256 }] },
        { type: 1, id: 20, attributes: [{ type: 14, value: 256 }] },
        { type: 5, id: 0, attributes: [] },
      ],
    });
    expect(r.transforms).toEqual([
      { type: 1, id: 20, keyLength: 256 },
      { type: 5, id: 0 },
    ]);
    expect(r.ignoredTransforms).toEqual([
      'ENCR AES_GCM_16: no Key Length attribute',
      'ENCR AES_GCM_16: unknown attribute type 15',
      'ENCR CHACHA20_POLY1305: a Key Length attribute (256) it does not take',
    ]);
    expect(r.unacceptable).toBeUndefined();
  });

  it('INTEG NONE next to an AEAD is read as no integrity transform (RFC 5282 §8)', () => {
    const r = fromProposalSubstructure({
      number: 1,
      protocolId: 3,
      spi: Buffer.alloc(4),
      transforms: [
        { type: 1, id: 20, attributes: [{ type: 14, value: 128 }] },
        { type: 3, id: 0, attributes: [] },
        { type: 5, id: 0, attributes: [] },
      ],
    });
    expect(formatProposal(r)).toBe('aes128gcm16-noesn');
  });

  it('a proposal for an unknown protocol is unacceptable', () => {
    expect(fromProposalSubstructure({ number: 1, protocolId: 4, spi: Buffer.alloc(0), transforms: [] }).unacceptable).toBe(
      'Protocol ID 4 is not IKE, AH or ESP',
    );
  });
});

/** A random valid proposal string for a protocol, keywords shuffled. */
function proposalText(protocol: ProposalProtocol): fc.Arbitrary<string> {
  const words = allKeywords().filter((w) => w !== 'aes' && w !== 'camellia'); // aliases of aes128/camellia128
  const byType = (type: TransformType, pred: (id: number) => boolean = () => true): string[] =>
    words.filter((w) => {
      const t = transformForKeyword(w);
      return t !== undefined && t.type === type && pred(t.id);
    });
  const key = (w: string): string => JSON.stringify(transformForKeyword(w));
  const pick = (pool: string[], min: number, max: number): fc.Arbitrary<string[]> =>
    fc.uniqueArray(fc.constantFrom(...pool), { minLength: min, maxLength: max, selector: key });
  const noGmacNull = (id: number): boolean => id !== EncrId.NULL && id !== EncrId.NULL_AUTH_AES_GMAC;
  const aeadEncr = byType(TransformType.ENCR, (id) => isAeadEncryption(id) && (protocol !== IKE || noGmacNull(id)));
  const classicEncr = byType(TransformType.ENCR, (id) => !isAeadEncryption(id) && (protocol !== IKE || noGmacNull(id)));
  const integ = byType(TransformType.INTEG);
  const prf = byType(TransformType.PRF);
  const ke = byType(TransformType.KE, (id) => protocol !== IKE || id !== KeId.NONE);
  const esn = byType(TransformType.ESN);

  let parts: fc.Arbitrary<string[][]>;
  if (protocol === IKE) {
    parts = fc.oneof(
      fc.tuple(pick(aeadEncr, 1, 3), pick(prf, 1, 3), pick(ke, 1, 4)),
      fc.tuple(pick(classicEncr, 1, 3), pick(integ, 1, 3), pick(prf, 0, 2), pick(ke, 1, 4)),
    );
  } else if (protocol === ESP) {
    parts = fc.oneof(
      fc.tuple(pick(aeadEncr, 1, 3), pick(ke, 0, 3), pick(esn, 0, 2)),
      fc.tuple(pick(classicEncr, 1, 3), pick(integ, 1, 3), pick(ke, 0, 3), pick(esn, 0, 2)),
    );
  } else {
    parts = fc.tuple(pick(integ, 1, 3), pick(ke, 0, 3), pick(esn, 0, 2));
  }
  return parts
    .map((groups) => groups.flat())
    .chain((all) => fc.shuffledSubarray(all, { minLength: all.length, maxLength: all.length }))
    .map((all) => all.join('-'));
}

describe('properties', () => {
  const protocols: ProposalProtocol[] = [IKE, ESP, AH];

  it.each(protocols)('format(parse(s)) re-parses to the same transforms (protocol %i)', (protocol) => {
    fc.assert(
      fc.property(proposalText(protocol), (text) => {
        const first = one(text, protocol);
        const again = one(formatProposal(first), protocol);
        expect(again).toEqual(first);
      }),
      { numRuns: 300 },
    );
  });

  it.each(protocols)('parse → ProposalSubstructure → back keeps every transform (protocol %i)', (protocol) => {
    fc.assert(
      fc.property(proposalText(protocol), fc.integer({ min: 1, max: 255 }), (text, number) => {
        const p = one(text, protocol);
        const spi = Buffer.alloc(protocol === IKE ? 0 : 4, number);
        const back = fromProposalSubstructure(toProposalSubstructure(p, number, spi));
        expect(back).toEqual({ ...p, number, spi });
      }),
      { numRuns: 300 },
    );
  });
});
