/**
 * Traffic selector sets — the contents of one TSi or TSr payload (RFC 7296
 * §3.13): an ordered list of ranges, IPv4 and IPv6 mixed, standing for the
 * union of the traffic they select.
 */
import { type Box, type TsRange, boxContains, boxKey, intersectBoxes, toBox } from './range.js';

/**
 * Subtracting many boxes from one can split it into many pieces; past this
 * many the coverage test gives up and answers "not covered". Only a peer
 * sending hundreds of interleaved selectors gets near it, and "not covered" is
 * the safe answer for every caller (the SA is refused or called narrowed).
 */
const MAX_PIECES = 4096;

/**
 * The set without ranges that another range of it contains (of equal ranges
 * the first is kept), in the original order. It selects the same traffic.
 */
export function removeRedundant(set: readonly TsRange[]): TsRange[] {
  const boxes = set.map(toBox);
  const keys = boxes.map(boxKey);
  return set.filter((_, i) =>
    boxes.every((other, j) => {
      if (j === i || !boxContains(other, boxes[i]!)) return true;
      // Equal ranges: only the later copies go.
      return keys[j] === keys[i] && j > i;
    }),
  );
}

/** The parts of `b` outside `cut`, as disjoint boxes. */
function subtract(b: Box, cut: Box): Box[] {
  if (intersectBoxes(b, cut) === undefined) return [b];
  const pieces: Box[] = [];
  let rest = b;
  if (rest.p0 < cut.p0) pieces.push({ ...rest, p1: cut.p0 - 1 });
  if (rest.p1 > cut.p1) pieces.push({ ...rest, p0: cut.p1 + 1 });
  rest = { ...rest, p0: Math.max(rest.p0, cut.p0), p1: Math.min(rest.p1, cut.p1) };
  if (rest.q0 < cut.q0) pieces.push({ ...rest, q1: cut.q0 - 1 });
  if (rest.q1 > cut.q1) pieces.push({ ...rest, q0: cut.q1 + 1 });
  rest = { ...rest, q0: Math.max(rest.q0, cut.q0), q1: Math.min(rest.q1, cut.q1) };
  if (rest.a0 < cut.a0) pieces.push({ ...rest, a1: cut.a0 - 1n });
  if (rest.a1 > cut.a1) pieces.push({ ...rest, a0: cut.a1 + 1n });
  return pieces;
}

/**
 * Whether the union of `set` selects every packet `range` selects. The
 * ranges may split it between them: 10.0.0.0/24 is covered by 10.0.0.0/25
 * and 10.0.0.128/25 together.
 */
export function covers(set: readonly TsRange[], range: TsRange): boolean {
  let pieces = [toBox(range)];
  for (const cut of set.map(toBox)) {
    pieces = pieces.flatMap((p) => subtract(p, cut));
    if (pieces.length === 0) return true;
    if (pieces.length > MAX_PIECES) return false;
  }
  return pieces.length === 0;
}

/** Whether every packet `inner` selects is selected by `outer` (as unions). */
export function isSubset(inner: readonly TsRange[], outer: readonly TsRange[]): boolean {
  return inner.every((r) => covers(outer, r));
}

/** Whether both sets select exactly the same traffic, however they are split into ranges. */
export function sameTraffic(a: readonly TsRange[], b: readonly TsRange[]): boolean {
  return isSubset(a, b) && isSubset(b, a);
}

/** Whether both lists hold the same ranges, ignoring order and duplicates. */
export function sameRanges(a: readonly TsRange[], b: readonly TsRange[]): boolean {
  const ka = new Set(a.map((r) => boxKey(toBox(r))));
  const kb = new Set(b.map((r) => boxKey(toBox(r))));
  return ka.size === kb.size && [...ka].every((k) => kb.has(k));
}
