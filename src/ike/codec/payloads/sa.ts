/**
 * Security Association payload (RFC 7296 §3.3): proposals, transforms and
 * transform attributes.
 *
 * SA payload body: one or more Proposal substructures, back to back.
 *
 * Proposal substructure (§3.3.1)
 *   off len field
 *   0   1   Last Substruc   0 = last proposal, 2 = more follow
 *   1   1   RESERVED
 *   2   2   Proposal Length (this substructure, transforms included)
 *   4   1   Proposal Num    1, 2, 3, ... in a request; the chosen one's in a response
 *   5   1   Protocol ID     1 IKE, 2 AH, 3 ESP
 *   6   1   SPI Size        IKE: 0 (initial) or 8 (rekey); AH/ESP: 4
 *   7   1   Num Transforms
 *   8   n   SPI
 *   8+n …   Transform substructures
 *
 * Transform substructure (§3.3.2)
 *   0   1   Last Substruc   0 = last transform, 3 = more follow
 *   1   1   RESERVED
 *   2   2   Transform Length
 *   4   1   Transform Type
 *   5   1   RESERVED
 *   6   2   Transform ID
 *   8   …   Transform Attributes
 *
 * Transform attribute (§3.3.5)
 *   0   2   AF (1 bit) ‖ Attribute Type (15 bits)
 *   2   2   AF=1 (TV): Attribute Value; AF=0 (TLV): Attribute Length
 *   4   …   TLV only: Attribute Value
 */
import type { DecodeContext, GenericHeaderFields } from '../context.js';
import { PayloadType } from '../payload-type.js';
import { Reader, Writer, checkLength, checkUint } from '../reader.js';
import { IkeEncodeError } from '../errors.js';
import { plural } from '../../../util/format.js';

/** Transform attribute (§3.3.5): TV format when `value` is a number (AF=1), TLV when a Buffer. */
export interface TransformAttribute {
  type: number;
  value: number | Buffer;
}

/** Transform substructure (§3.3.2). */
export interface TransformSubstructure {
  type: number;
  id: number;
  attributes: TransformAttribute[];
  /** The two RESERVED octets (offset 1 ‖ offset 5) as received, only when non-zero. See context.ts. */
  reserved?: number;
}

/** Proposal substructure (§3.3.1). `spi` is empty in IKE_SA_INIT, 8 octets for an IKE rekey, 4 for ESP/AH. */
export interface ProposalSubstructure {
  number: number;
  protocolId: number;
  spi: Buffer;
  transforms: TransformSubstructure[];
  /** The RESERVED octet as received, only when non-zero. */
  reserved?: number;
}

export interface SaPayload extends GenericHeaderFields {
  type: PayloadType.SA;
  proposals: ProposalSubstructure[];
}

const LAST = 0;
const MORE_PROPOSALS = 2;
const MORE_TRANSFORMS = 3;
const PROTOCOL_IKE = 1;
const PROTOCOL_AH = 2;
const PROTOCOL_ESP = 3;
const ATTRIBUTE_TV = 0x8000;

/** SPI sizes §3.3.1 allows for a protocol, or undefined when the protocol is not one RFC 7296 defines. */
function allowedSpiSizes(protocolId: number): readonly number[] | undefined {
  switch (protocolId) {
    case PROTOCOL_IKE:
      return [0, 8];
    case PROTOCOL_AH:
    case PROTOCOL_ESP:
      return [4];
    default:
      return undefined;
  }
}

export function decodeSaBody(r: Reader, ctx: DecodeContext): SaPayload {
  const proposals: ProposalSubstructure[] = [];
  if (r.atEnd()) r.fail('an SA payload carries at least one proposal, this one is empty');
  for (let index = 1; ; index++) {
    const start = r.pos;
    const last = r.u8('proposal Last Substruc');
    if (last !== LAST && last !== MORE_PROPOSALS) {
      r.fail(`proposal ${index}: Last Substruc ${last}, expected 0 (last) or 2 (more)`, start);
    }
    const reserved = r.u8('proposal RESERVED');
    const length = r.u16('Proposal Length');
    if (length < 8) r.fail(`proposal ${index}: Proposal Length ${length}, at least 8 needed`, start + 2);
    r.pos = start;
    const p = r.sub(length, `SA proposal ${index}`, 'proposal');
    p.pos += 4;
    const proposal = decodeProposal(p, index, reserved);
    proposals.push(proposal);

    const previous = proposals[proposals.length - 2];
    if (previous === undefined) {
      if (proposal.number === 0) r.fail(`proposal ${index}: Proposal Num 0 is not allowed`, start + 4);
      if (!ctx.isResponse && proposal.number !== 1) {
        r.fail(`proposal ${index}: a request numbers its first proposal 1, this one is ${proposal.number}`, start + 4);
      }
    } else if (proposal.number !== previous.number + 1) {
      r.fail(`proposal ${index}: Proposal Num ${proposal.number} does not follow ${previous.number}`, start + 4);
    }

    if (last === LAST) {
      if (!r.atEnd()) r.fail(`proposal ${index} is marked last but ${r.remaining} octets follow it`);
      break;
    }
    if (r.atEnd()) r.fail(`proposal ${index} is marked "more follow" (2) but the payload ends`);
  }
  return { type: PayloadType.SA, proposals };
}

function decodeProposal(p: Reader, index: number, reserved: number): ProposalSubstructure {
  const number = p.u8('Proposal Num');
  const protocolId = p.u8('Protocol ID');
  const spiSize = p.u8('SPI Size');
  const allowed = allowedSpiSizes(protocolId);
  if (allowed !== undefined && !allowed.includes(spiSize)) {
    p.fail(`SPI Size ${spiSize} for Protocol ID ${protocolId}, expected ${allowed.join(' or ')}`, p.pos - 1);
  }
  const count = p.u8('Num Transforms');
  const spi = p.bytes(spiSize, 'SPI');
  const transforms: TransformSubstructure[] = [];
  for (let k = 1; k <= count; k++) {
    const start = p.pos;
    const last = p.u8('transform Last Substruc');
    const expected = k === count ? LAST : MORE_TRANSFORMS;
    if (last !== expected) {
      p.fail(`transform ${k} of ${count}: Last Substruc ${last}, expected ${expected}`, start);
    }
    const reserved1 = p.u8('transform RESERVED');
    const length = p.u16('Transform Length');
    if (length < 8) p.fail(`transform ${k}: Transform Length ${length}, at least 8 needed`, start + 2);
    p.pos = start;
    const t = p.sub(length, `SA proposal ${index} transform ${k}`, 'transform');
    t.pos += 4;
    const type = t.u8('Transform Type');
    const reserved2 = t.u8('transform RESERVED');
    const id = t.u16('Transform ID');
    const attributes = decodeAttributes(t);
    const transform: TransformSubstructure = { type, id, attributes };
    if (reserved1 !== 0 || reserved2 !== 0) transform.reserved = (reserved1 << 8) | reserved2;
    transforms.push(transform);
  }
  p.expectEnd(`the ${plural(count, 'transform')} Num Transforms announces`);
  const proposal: ProposalSubstructure = { number, protocolId, spi, transforms };
  if (reserved !== 0) proposal.reserved = reserved;
  return proposal;
}

function decodeAttributes(t: Reader): TransformAttribute[] {
  const attributes: TransformAttribute[] = [];
  while (!t.atEnd()) {
    const word = t.u16('attribute type');
    const type = word & 0x7fff;
    if (word & ATTRIBUTE_TV) {
      attributes.push({ type, value: t.u16('attribute value (TV)') });
    } else {
      const length = t.u16('attribute length (TLV)');
      attributes.push({ type, value: t.bytes(length, `attribute ${type} value (TLV)`) });
    }
  }
  return attributes;
}

export function encodeSaBody(p: SaPayload, w: Writer): void {
  if (p.proposals.length === 0) throw new IkeEncodeError('SA: at least one proposal is needed');
  p.proposals.forEach((proposal, i) => {
    const body = new Writer();
    body
      .u8(checkUint(proposal.number, 8, 'SA: Proposal Num'))
      .u8(checkUint(proposal.protocolId, 8, 'SA: Protocol ID'))
      .u8(checkLength(proposal.spi, 0, 255, 'SA: SPI').length)
      .u8(checkUint(proposal.transforms.length, 8, 'SA: Num Transforms'))
      .bytes(proposal.spi);
    proposal.transforms.forEach((t, k) => {
      const attrs = new Writer();
      for (const a of t.attributes) {
        checkUint(a.type, 15, 'SA: attribute type');
        if (typeof a.value === 'number') {
          attrs.u16(ATTRIBUTE_TV | a.type).u16(checkUint(a.value, 16, 'SA: attribute value (TV)'));
        } else {
          attrs
            .u16(a.type)
            .u16(checkLength(a.value, 0, 0xffff, 'SA: attribute value (TLV)').length)
            .bytes(a.value);
        }
      }
      const reserved = checkUint(t.reserved ?? 0, 16, 'SA: transform RESERVED');
      const attrBytes = attrs.finish();
      body
        .u8(k === proposal.transforms.length - 1 ? LAST : MORE_TRANSFORMS)
        .u8(reserved >> 8)
        .u16(checkUint(8 + attrBytes.length, 16, 'SA: Transform Length'))
        .u8(checkUint(t.type, 8, 'SA: Transform Type'))
        .u8(reserved & 0xff)
        .u16(checkUint(t.id, 16, 'SA: Transform ID'))
        .bytes(attrBytes);
    });
    const bodyBytes = body.finish();
    w.u8(i === p.proposals.length - 1 ? LAST : MORE_PROPOSALS)
      .u8(checkUint(proposal.reserved ?? 0, 8, 'SA: proposal RESERVED'))
      .u16(checkUint(4 + bodyBytes.length, 16, 'SA: Proposal Length'))
      .bytes(bodyBytes);
  });
}
