/**
 * Printing proposals: in the keyword syntax they are configured in
 * (`aes128gcm16-prfsha384-ecp384bp`), and with the algorithm names strongSwan
 * uses in its logs (`IKE:AES_GCM_16_128/PRF_HMAC_SHA2_384/ECP_384_BP`) and in
 * `swanctl --list-sas` (`AES_GCM_16-128/PRF_HMAC_SHA2_384/ECP_384_BP`), so
 * tunsec's output can be compared with a strongSwan peer's line by line.
 */
import { EncrId, EsnId, KeId, ProtocolId, TransformType, transformIdName } from '../transforms.js';
import { keywordForTransform } from './keywords.js';
import { PROTOCOL_NAMES, TYPE_ORDER } from './parse.js';
import type { Proposal, Transform } from './types.js';

function ordered(p: Proposal): Transform[] {
  return TYPE_ORDER.flatMap((type) => p.transforms.filter((t) => t.type === type));
}

/**
 * One proposal in keyword syntax, transforms in the order encryption,
 * integrity, PRF, key exchange, ESN: `aes128gcm16-prfsha384-ecp384bp`,
 * `aes128gcm16-ecp384bp-noesn`. Parsing the result for the same protocol gives
 * the same transforms (a PRF derived from integrity is printed explicitly).
 * A transform without a keyword prints as its IANA name.
 */
export function formatProposal(p: Proposal): string {
  return ordered(p)
    .map((t) => keywordForTransform(t) ?? `${transformIdName(t.type, t.id)}${t.keyLength === undefined ? '' : `_${t.keyLength}`}`)
    .join('-');
}

/** Several proposals, comma-separated as in configuration. */
export function formatProposalList(proposals: readonly Proposal[]): string {
  return proposals.map(formatProposal).join(',');
}

/** Several proposals as log lines name them: `a, b`. */
export function listProposals(proposals: readonly Proposal[]): string {
  return proposals.map(formatProposal).join(', ');
}

/** A responder's reason for NO_PROPOSAL_CHOSEN (§2.7): both lists, the peer's and ours. */
export function noAcceptableProposal(kind: 'IKE' | 'ESP', offered: readonly Proposal[], configured: readonly Proposal[]): string {
  return `no acceptable ${kind} proposal: peer offered ${listProposals(offered)}; configured ${listProposals(configured)}`;
}

/** strongSwan's name for a transform ID (charon's enum names; mostly the IANA names). */
export function strongswanAlgorithmName(type: TransformType, id: number): string {
  switch (type) {
    case TransformType.ENCR:
      if (id === EncrId.TRIPLE_DES) return '3DES_CBC';
      if (id === EncrId.DES) return 'DES_CBC';
      if (id === EncrId.NULL_AUTH_AES_GMAC) return 'NULL_AES_GMAC';
      return transformIdName(type, id);
    case TransformType.PRF:
      return `PRF_${transformIdName(type, id)}`;
    case TransformType.KE:
      return id === KeId.NONE ? 'KE_NONE' : transformIdName(type, id);
    case TransformType.ESN:
      return id === EsnId.ESN ? 'EXT_SEQ' : id === EsnId.NO_ESN ? 'NO_EXT_SEQ' : transformIdName(type, id);
    default:
      return transformIdName(type, id);
  }
}

/** As charon logs proposals: `IKE:AES_GCM_16_128/PRF_HMAC_SHA2_384/ECP_384_BP`, `ESP:AES_GCM_16_128/NO_EXT_SEQ`. */
export function describeProposal(p: Proposal): string {
  const algs = ordered(p).map((t) => `${strongswanAlgorithmName(t.type, t.id)}${t.keyLength === undefined ? '' : `_${t.keyLength}`}`);
  return `${PROTOCOL_NAMES[p.protocol]}:${algs.join('/')}`;
}

/**
 * A negotiated SA's algorithms as `swanctl --list-sas` prints them:
 * `AES_GCM_16-128/PRF_HMAC_SHA2_384/ECP_384_BP` for an IKE SA,
 * `ESP:AES_GCM_16-128/ECP_384_BP` for a CHILD_SA (with `/ESN` when extended
 * sequence numbers are on; `NO_EXT_SEQ` is not printed).
 */
export function formatAsListSas(p: Proposal): string {
  const parts: string[] = [];
  for (const t of ordered(p)) {
    if (t.type === TransformType.ESN) {
      if (t.id === EsnId.ESN) parts.push('ESN');
      continue;
    }
    if (t.type === TransformType.KE && t.id === KeId.NONE) continue;
    parts.push(`${strongswanAlgorithmName(t.type, t.id)}${t.keyLength === undefined ? '' : `-${t.keyLength}`}`);
  }
  const text = parts.join('/');
  return p.protocol === ProtocolId.IKE ? text : `${PROTOCOL_NAMES[p.protocol]}:${text}`;
}
