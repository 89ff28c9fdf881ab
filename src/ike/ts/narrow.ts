/**
 * Narrowing (RFC 7296 §2.9): the part of a proposed selector set that a
 * configured policy allows.
 *
 * Every configured range is intersected with every proposed range (address
 * ranges overlap, port ranges overlap, protocol equal or 0 = any on one
 * side); the non-empty intersections, configured order first and proposed
 * order second, form the result, less any range another result range already
 * contains. An empty result means the policy allows none of the proposal:
 * the responder answers TS_UNACCEPTABLE.
 *
 * The result is the exact intersection of the two unions, so:
 *   narrow(a, b) ⊆ a and ⊆ b; narrow(a, b) and narrow(b, a) hold the same
 *   ranges; narrow(narrow(a, b), b) = narrow(a, b).
 *
 * Unlike the RFC's example of a responder that insists on one SA per address
 * pair, every overlapping piece is kept, so one CHILD_SA carries all the
 * traffic both sides agree on and ADDITIONAL_TS_POSSIBLE is never needed
 * (strongSwan behaves the same way).
 */
import { type TsRange, boxKey, fromBox, intersectBoxes, toBox } from './range.js';
import { removeRedundant } from './set.js';

export function narrow(proposed: readonly TsRange[], configured: readonly TsRange[]): TsRange[] {
  const proposedBoxes = proposed.map(toBox);
  const seen = new Set<string>();
  const out: TsRange[] = [];
  for (const c of configured.map(toBox)) {
    for (const p of proposedBoxes) {
      const i = intersectBoxes(c, p);
      if (i === undefined) continue;
      const key = boxKey(i);
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(fromBox(i));
    }
  }
  return removeRedundant(out);
}
