/**
 * Which transforms tunsec implements. Proposals are cut down to those before
 * they are offered or matched, so a configured `default` list (which names
 * more than tunsec implements) never selects something that then fails, and
 * an initiator never offers what it could not use.
 */
import { aeadFor } from '../../crypto/aead.js';
import { keyExchangeGroup } from '../../crypto/ke/index.js';
import { prfFor } from '../../crypto/prf.js';
import type { Proposal, Transform } from '../proposal/index.js';
import { TransformType } from '../transforms.js';

export function isImplemented(t: Transform): boolean {
  switch (t.type) {
    case TransformType.ENCR:
      return aeadFor(t.id, t.keyLength ?? 0) !== undefined;
    case TransformType.PRF:
      return prfFor(t.id) !== undefined;
    case TransformType.INTEG:
      return false; // AEAD only: no separate integrity algorithm is implemented
    case TransformType.KE:
      return t.id === 0 || keyExchangeGroup(t.id) !== undefined;
    case TransformType.ESN:
      return true;
    default:
      return false;
  }
}

/**
 * The proposals with unimplemented transforms removed; a proposal that loses
 * every transform of a type it had (or its only encryption) is dropped whole.
 */
export function implementedProposals(proposals: readonly Proposal[]): Proposal[] {
  const out: Proposal[] = [];
  for (const p of proposals) {
    const kept = p.transforms.filter(isImplemented);
    const typesBefore = new Set(p.transforms.map((t) => t.type).filter((t) => t !== TransformType.INTEG));
    const typesAfter = new Set(kept.map((t) => t.type));
    if ([...typesBefore].every((t) => typesAfter.has(t)) && typesAfter.has(TransformType.ENCR)) out.push({ ...p, transforms: kept });
  }
  return out;
}
