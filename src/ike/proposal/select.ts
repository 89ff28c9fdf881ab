/**
 * Proposal selection (RFC 7296 §2.7, §3.3.6) in both roles, and the key
 * exchange group decisions around it (§1.2, §1.3, §3.10.1 INVALID_KE_PAYLOAD).
 *
 * Responder: choose one of the peer's proposals and, within it, one transform
 * of each type that one of our proposals also contains. Like strongSwan
 * (charon.prefer_configured_proposals = yes) our own order decides by
 * default: the first of our proposals that matches any of the peer's, and
 * within it our most preferred algorithm of each type; `preferLocal: false`
 * lets the peer's order decide instead.
 *
 * Initiator: the reply must hold exactly one proposal, with one transform of
 * each type, each taken from the proposal it names.
 */
import { KeId, ProtocolId, TRANSFORM_TYPE_NAMES, TransformType, transformIdName } from '../transforms.js';
import { isAeadEncryption } from './keywords.js';
import { TYPE_ORDER } from './parse.js';
import type { Proposal, ReceivedProposal, SelectedProposal, Transform } from './types.js';
import { sameTransform, transformOfType, transformsOfType } from './types.js';

export interface SelectionOptions {
  /** Our proposals' order decides (strongSwan's default). Default true. */
  preferLocal?: boolean;
  /**
   * Ignore KE transforms: the CHILD_SA created inside IKE_AUTH, whose keys
   * come from the IKE SA's exchange (§1.2; its SA payload carries no KE).
   */
  skipKe?: boolean;
  /**
   * The group of the KE payload that came with the SA payload. When it is
   * acceptable in the proposal being matched it is chosen over the preference
   * order, sparing the peer an INVALID_KE_PAYLOAD round trip (the responder
   * may choose any acceptable group, §1.2).
   */
  preferKeGroup?: number;
}

/**
 * Responder side: the selected proposal, or undefined when nothing is
 * acceptable (answer NO_PROPOSAL_CHOSEN). The result carries the peer's
 * Proposal Num and SPI; answer with `toProposalSubstructure(selected,
 * selected.number, ourSpi)`.
 */
export function selectProposal(
  received: readonly ReceivedProposal[],
  configured: readonly Proposal[],
  options: SelectionOptions = {},
): SelectedProposal | undefined {
  const usable = received.filter((r) => r.unacceptable === undefined);
  const preferLocal = options.preferLocal ?? true;
  if (preferLocal) {
    for (const ours of configured) {
      for (const theirs of usable) {
        const transforms = matchProposals(ours, theirs, options);
        if (transforms) return selected(theirs, transforms);
      }
    }
  } else {
    for (const theirs of usable) {
      for (const ours of configured) {
        const transforms = matchProposals(theirs, ours, options);
        if (transforms) return selected(theirs, transforms);
      }
    }
  }
  return undefined;
}

function selected(theirs: ReceivedProposal, transforms: Transform[]): SelectedProposal {
  return { protocol: theirs.protocol, number: theirs.number, spi: theirs.spi, transforms };
}

/**
 * One transform per type common to both proposals, choosing in `preferred`'s
 * order; undefined if some type cannot be agreed on.
 */
function matchProposals(preferred: Proposal, other: Proposal, options: SelectionOptions): Transform[] | undefined {
  if (preferred.protocol !== other.protocol) return undefined;
  const protocol = preferred.protocol;
  const result: Transform[] = [];
  let aead = false;
  for (const type of TYPE_ORDER) {
    if (type === TransformType.KE && options.skipKe === true) continue;
    if (type === TransformType.INTEG && aead) continue; // an AEAD needs no integrity transform (RFC 5282 §8)
    const mine = transformsOfType(preferred, type);
    const theirs = transformsOfType(other, type);
    if (mine.length === 0 && theirs.length === 0) continue;
    // PFS is optional for ESP/AH: one side may leave KE out if the other accepts NONE.
    const optional = type === TransformType.KE && protocol !== ProtocolId.IKE;
    if (mine.length === 0 || theirs.length === 0) {
      if (optional && [...mine, ...theirs].some((t) => t.id === KeId.NONE)) continue;
      return undefined;
    }
    let choice: Transform | undefined;
    if (type === TransformType.KE && options.preferKeGroup !== undefined) {
      const wanted = options.preferKeGroup;
      if (mine.some((t) => t.id === wanted) && theirs.some((t) => t.id === wanted)) choice = { type, id: wanted };
    }
    choice ??= mine.find((m) => theirs.some((t) => sameTransform(m, t)));
    if (choice === undefined) return undefined;
    if (type === TransformType.ENCR) aead = isAeadEncryption(choice.id);
    if (type === TransformType.KE && choice.id === KeId.NONE) continue; // agreed on no PFS
    result.push(choice);
  }
  return missingMandatory(protocol, result, options) === undefined ? result : undefined;
}

/** The first mandatory transform type (§3.3.3) a selected set of transforms lacks. */
function missingMandatory(protocol: number, transforms: readonly Transform[], options: SelectionOptions): TransformType | undefined {
  const has = (type: TransformType): boolean => transforms.some((t) => t.type === type);
  const encr = transforms.find((t) => t.type === TransformType.ENCR);
  const needsInteg = encr !== undefined && !isAeadEncryption(encr.id);
  const required: TransformType[] =
    protocol === ProtocolId.IKE
      ? [TransformType.ENCR, TransformType.PRF, ...(options.skipKe === true ? [] : [TransformType.KE])]
      : protocol === ProtocolId.ESP
        ? [TransformType.ENCR, TransformType.ESN]
        : [TransformType.INTEG, TransformType.ESN];
  if (needsInteg) required.push(TransformType.INTEG);
  return required.find((type) => !has(type));
}

export type ResponseCheck = { ok: true; selected: SelectedProposal } | { ok: false; error: string };

/**
 * Initiator side: check the responder's SA payload against what we sent
 * (`offered`, numbered 1, 2, 3… as `toProposalSubstructures` numbers them).
 * RFC 7296 §3.3.6: the initiator MUST reject a reply inconsistent with its
 * proposals.
 */
export function checkSelectedProposal(
  offered: readonly Proposal[],
  response: readonly ReceivedProposal[],
  options: Pick<SelectionOptions, 'skipKe'> = {},
): ResponseCheck {
  const fail = (error: string): ResponseCheck => ({ ok: false, error });
  if (response.length !== 1) return fail(`the reply carries ${response.length} proposals, exactly one is allowed (RFC 7296 §2.7)`);
  const reply = response[0] as ReceivedProposal;
  const ours = offered[reply.number - 1];
  if (ours === undefined) return fail(`the reply selects proposal ${reply.number}, we offered ${offered.length}`);
  if (reply.protocol !== ours.protocol) {
    return fail(`the reply's proposal ${reply.number} is for Protocol ID ${reply.protocol}, we offered ${ours.protocol}`);
  }
  if (reply.unacceptable !== undefined) return fail(`the reply's proposal is unusable: ${reply.unacceptable}`);
  if (reply.ignoredTransforms !== undefined) {
    return fail(`the reply holds transforms we did not offer: ${reply.ignoredTransforms.join('; ')}`);
  }

  for (const t of reply.transforms) {
    if (!ours.transforms.some((o) => sameTransform(o, t))) {
      return fail(`the reply selects ${describe(t)}, which proposal ${reply.number} did not offer`);
    }
  }
  const transforms: Transform[] = [];
  for (const type of TYPE_ORDER) {
    const chosen = transformsOfType(reply, type);
    if (chosen.length > 1) {
      return fail(`the reply selects ${chosen.length} ${TRANSFORM_TYPE_NAMES[type]} transforms, exactly one is allowed`);
    }
    const one = chosen[0];
    const offeredOfType = transformsOfType(ours, type);
    if (type === TransformType.KE && options.skipKe === true) {
      if (one !== undefined) return fail(`the reply selects ${describe(one)}, but no key exchange is negotiated here`);
      continue;
    }
    if (one === undefined) {
      if (offeredOfType.length === 0) continue;
      if (type === TransformType.INTEG && aeadIn(transforms)) continue;
      if (type === TransformType.KE && ours.protocol !== ProtocolId.IKE && offeredOfType.some((t) => t.id === KeId.NONE)) {
        continue;
      }
      return fail(`the reply selects no ${TRANSFORM_TYPE_NAMES[type]} transform, proposal ${reply.number} offered one`);
    }
    if (type === TransformType.KE && one.id === KeId.NONE) continue;
    transforms.push(one);
  }
  const missing = missingMandatory(ours.protocol, transforms, options);
  if (missing !== undefined) return fail(`the reply selects no ${TRANSFORM_TYPE_NAMES[missing]} transform`);
  return { ok: true, selected: { protocol: reply.protocol, number: reply.number, spi: reply.spi, transforms } };
}

function aeadIn(transforms: readonly Transform[]): boolean {
  const encr = transforms.find((t) => t.type === TransformType.ENCR);
  return encr !== undefined && isAeadEncryption(encr.id);
}

function describe(t: Transform): string {
  const name = `${TRANSFORM_TYPE_NAMES[t.type]} ${transformIdName(t.type, t.id)}`;
  return t.keyLength === undefined ? name : `${name} (${t.keyLength} bits)`;
}

/** The key exchange group of a selected proposal, undefined when it has none (no PFS / IKE_AUTH). */
export function keGroupOf(p: Proposal): number | undefined {
  return transformOfType(p, TransformType.KE)?.id;
}

export type KeDecision =
  /** The KE payload's group is the selected one: compute the shared secret with it. */
  | { action: 'accept'; group: number }
  /** The selected proposal has no key exchange (no PFS): send no KE payload, ignore any received one. */
  | { action: 'no-ke' }
  /** Answer INVALID_KE_PAYLOAD (§1.2, §3.10.1) carrying `requestGroup`, the group of the selected proposal. */
  | { action: 'invalid-ke'; requestGroup: number };

/**
 * Responder side, after `selectProposal`: is the received KE payload's group
 * (undefined when the message had no KE payload) the one the selected
 * proposal uses?
 */
export function checkKeGroup(selectedProposal: SelectedProposal, receivedGroup: number | undefined): KeDecision {
  const group = keGroupOf(selectedProposal);
  if (group === undefined) return { action: 'no-ke' };
  if (receivedGroup === group) return { action: 'accept', group };
  return { action: 'invalid-ke', requestGroup: group };
}

/**
 * The proposals without their KE transforms, for the SA payload of IKE_AUTH
 * (its CHILD_SA takes keys from the IKE SA, §1.2); proposals that become
 * identical are sent once.
 */
export function withoutKe(proposals: readonly Proposal[]): Proposal[] {
  const out: Proposal[] = [];
  for (const p of proposals) {
    const stripped: Proposal = { protocol: p.protocol, transforms: p.transforms.filter((t) => t.type !== TransformType.KE) };
    if (!out.some((q) => sameProposal(q, stripped))) out.push(stripped);
  }
  return out;
}

function sameProposal(a: Proposal, b: Proposal): boolean {
  return (
    a.protocol === b.protocol &&
    a.transforms.length === b.transforms.length &&
    a.transforms.every((t, i) => {
      const u = b.transforms[i];
      return u !== undefined && sameTransform(t, u);
    })
  );
}

/** The group an initiator sends its first KE payload for: the first KE group of the first proposal that has one. */
export function initialKeGroup(proposals: readonly Proposal[]): number | undefined {
  for (const p of proposals) {
    const ke = transformsOfType(p, TransformType.KE).find((t) => t.id !== KeId.NONE);
    if (ke !== undefined) return ke.id;
  }
  return undefined;
}

/** Whether any proposal offers the group (check a group an INVALID_KE_PAYLOAD asks for before retrying with it). */
export function offersKeGroup(proposals: readonly Proposal[], group: number): boolean {
  return group !== KeId.NONE && proposals.some((p) => transformsOfType(p, TransformType.KE).some((t) => t.id === group));
}

/**
 * The proposals to send with a KE payload of `group`: in each proposal that
 * offers the group it moves to the front of the KE transforms, and proposals
 * without it go to the back, so a responder following our order picks the
 * group we already sent a KE payload for.
 */
export function promoteKeGroup(proposals: readonly Proposal[], group: number): Proposal[] {
  const withGroup: Proposal[] = [];
  const without: Proposal[] = [];
  for (const p of proposals) {
    const ke = p.transforms.find((t) => t.type === TransformType.KE && t.id === group);
    if (ke === undefined) {
      without.push(p);
      continue;
    }
    const rest = p.transforms.filter((t) => t !== ke);
    const firstKe = rest.findIndex((t) => t.type === TransformType.KE);
    const at = firstKe === -1 ? rest.length : firstKe;
    withGroup.push({ protocol: p.protocol, transforms: [...rest.slice(0, at), ke, ...rest.slice(at)] });
  }
  return [...withGroup, ...without];
}
