/**
 * Negotiation proposals ⇄ the SA payload's Proposal and Transform
 * substructures (RFC 7296 §3.3.1, §3.3.2). The only transform attribute is Key
 * Length (§3.3.5, type 14, TV format), carried by the variable-key-size
 * ciphers (AES, Camellia) and by nothing else.
 */
import type { ProposalSubstructure, TransformSubstructure } from '../codec/payloads/sa.js';
import { IntegId, ProtocolId, TRANSFORM_TYPE_NAMES, TransformAttributeType, TransformType, transformIdName } from '../transforms.js';
import { takesKeyLength } from './keywords.js';
import type { Proposal, ProposalProtocol, ReceivedProposal, Transform } from './types.js';

/** One proposal as a Proposal substructure. `spi`: empty in IKE_SA_INIT, 8 octets for an IKE rekey, 4 for ESP/AH. */
export function toProposalSubstructure(p: Proposal, number: number, spi: Buffer = Buffer.alloc(0)): ProposalSubstructure {
  return {
    number,
    protocolId: p.protocol,
    spi,
    transforms: p.transforms.map(toTransformSubstructure),
  };
}

/** Proposals for an SA payload, numbered 1, 2, 3… in order (§3.3.1), all with the same SPI. */
export function toProposalSubstructures(proposals: readonly Proposal[], spi: Buffer = Buffer.alloc(0)): ProposalSubstructure[] {
  return proposals.map((p, i) => toProposalSubstructure(p, i + 1, spi));
}

function toTransformSubstructure(t: Transform): TransformSubstructure {
  return {
    type: t.type,
    id: t.id,
    attributes: t.keyLength === undefined ? [] : [{ type: TransformAttributeType.KEY_LENGTH, value: t.keyLength }],
  };
}

const KNOWN_TYPES: ReadonlySet<number> = new Set([TransformType.ENCR, TransformType.PRF, TransformType.INTEG, TransformType.KE, TransformType.ESN]);

function transformTypeName(type: number): string {
  if (type >= 6 && type <= 12) return `ADDKE${type - 5}`;
  return TRANSFORM_TYPE_NAMES[type] ?? `type ${type}`;
}

/**
 * A received proposal for negotiation. Never throws: what cannot be negotiated
 * is recorded instead — a proposal with a transform type tunsec does not
 * understand or an unknown protocol is `unacceptable` (§3.3.6), a transform
 * with an unknown attribute or a missing/unexpected Key Length is left out
 * (noted in `ignoredTransforms`), and INTEG NONE is dropped as meaning "no
 * integrity transform" (RFC 5282 §8).
 */
export function fromProposalSubstructure(s: ProposalSubstructure): ReceivedProposal {
  const problems: string[] = [];
  if (s.protocolId !== ProtocolId.IKE && s.protocolId !== ProtocolId.AH && s.protocolId !== ProtocolId.ESP) {
    problems.push(`Protocol ID ${s.protocolId} is not IKE, AH or ESP`);
  }
  const transforms: Transform[] = [];
  const ignored: string[] = [];
  for (const t of s.transforms) {
    if (!KNOWN_TYPES.has(t.type)) {
      problems.push(`transform type ${t.type} (${transformTypeName(t.type)}) is not understood`);
      continue;
    }
    const type = t.type as TransformType;
    const name = transformIdName(type, t.id);
    let keyLength: number | undefined;
    let why: string | undefined;
    for (const a of t.attributes) {
      if (a.type !== TransformAttributeType.KEY_LENGTH) why = `unknown attribute type ${a.type}`;
      else if (typeof a.value !== 'number') why = 'Key Length in TLV format (must be TV)';
      else if (keyLength !== undefined) why = 'two Key Length attributes';
      else keyLength = a.value;
    }
    if (why === undefined) {
      const needs = takesKeyLength(type, t.id);
      if (needs && keyLength === undefined) why = 'no Key Length attribute';
      else if (!needs && keyLength !== undefined) why = `a Key Length attribute (${keyLength}) it does not take`;
    }
    if (why !== undefined) {
      ignored.push(`${TRANSFORM_TYPE_NAMES[type]} ${name}: ${why}`);
      continue;
    }
    if (type === TransformType.INTEG && t.id === IntegId.NONE) continue;
    transforms.push(keyLength === undefined ? { type, id: t.id } : { type, id: t.id, keyLength });
  }
  return {
    number: s.number,
    protocol: s.protocolId as ProposalProtocol,
    spi: s.spi,
    transforms,
    ...(problems.length > 0 ? { unacceptable: problems.join('; ') } : {}),
    ...(ignored.length > 0 ? { ignoredTransforms: ignored } : {}),
  };
}

export function fromProposalSubstructures(list: readonly ProposalSubstructure[]): ReceivedProposal[] {
  return list.map(fromProposalSubstructure);
}
