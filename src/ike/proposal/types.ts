/**
 * The negotiation view of SA proposals (RFC 7296 §3.3): what a configured
 * proposal offers, what a peer offered, what was selected. The wire shapes
 * (ProposalSubstructure) are converted to and from these in ./substructure.ts.
 */
import type { ProtocolId, TransformType } from '../transforms.js';

/** Protocols a proposal can be for (RFC 7296 §3.3.1 Protocol ID). */
export type ProposalProtocol = ProtocolId.IKE | ProtocolId.AH | ProtocolId.ESP;

/**
 * One transform (RFC 7296 §3.3.2). `keyLength` is the Key Length attribute
 * (§3.3.5) in bits, present exactly for algorithms with variable key sizes
 * (AES, Camellia) and absent otherwise.
 */
export interface Transform {
  readonly type: TransformType;
  readonly id: number;
  readonly keyLength?: number;
}

/**
 * A proposal as configured or offered: transforms in preference order; a
 * transform type may appear several times (IKEv2 lets one proposal offer
 * alternatives of each type, §3.3).
 */
export interface Proposal {
  readonly protocol: ProposalProtocol;
  readonly transforms: readonly Transform[];
}

/** A proposal as it arrived from the peer, with its Proposal Num and SPI. */
export interface ReceivedProposal extends Proposal {
  readonly number: number;
  readonly spi: Buffer;
  /**
   * Set when the proposal can never be accepted (§3.3.6: it carries a transform
   * type tunsec does not understand, or another protocol than IKE/AH/ESP).
   */
  readonly unacceptable?: string;
  /** Transforms dropped from `transforms` because they cannot match (e.g. an unknown attribute), as readable notes. */
  readonly ignoredTransforms?: readonly string[];
}

/** The outcome of negotiation: exactly one transform of each negotiated type. */
export interface SelectedProposal extends Proposal {
  /** The Proposal Num of the chosen proposal, as the initiator numbered it. */
  readonly number: number;
  /** The SPI the chosen proposal carried (the peer's, for ESP/AH and IKE rekeys). */
  readonly spi: Buffer;
}

/** All transforms of one type, in preference order. */
export function transformsOfType(p: Proposal, type: TransformType): Transform[] {
  return p.transforms.filter((t) => t.type === type);
}

/** The first (for a selected proposal: the only) transform of a type. */
export function transformOfType(p: Proposal, type: TransformType): Transform | undefined {
  return p.transforms.find((t) => t.type === type);
}

export function sameTransform(a: Transform, b: Transform): boolean {
  return a.type === b.type && a.id === b.id && a.keyLength === b.keyLength;
}
