/**
 * The Key Exchange Methods (IKEv2 Transform Type 4, RFC 7296 §3.3.2 and the
 * IANA registry) tunsec implements, by group number.
 */
import type { KeyExchangeGroup } from '../types.js';
import { CURVE25519, CURVE448, XdhGroup } from './curve25519.js';
import { ECP_GROUP_SPECS, EcpGroup } from './ecp.js';
import { MODP_GROUP_SPECS, ModpGroup } from './modp.js';

export { EcpGroup, ECP_GROUP_SPECS } from './ecp.js';
export { XdhGroup, CURVE25519, CURVE448 } from './curve25519.js';
export { ModpGroup, MODP_GROUP_SPECS } from './modp.js';

const GROUPS: ReadonlyMap<number, KeyExchangeGroup> = new Map<number, KeyExchangeGroup>(
  [...MODP_GROUP_SPECS.map((spec) => new ModpGroup(spec)), ...ECP_GROUP_SPECS.map((spec) => new EcpGroup(spec)), CURVE25519, CURVE448].map((group) => [
    group.groupId,
    group,
  ]),
);

/** Every supported group ID, ascending: 14-18 (MODP), 19-21 (NIST ECP), 27-30 (brainpool), 31, 32. */
export const SUPPORTED_KE_GROUPS: readonly number[] = [...GROUPS.keys()].sort((a, b) => a - b);

/** The group for an IANA Transform Type 4 ID, or undefined when tunsec does not implement it. */
export function keyExchangeGroup(groupId: number): KeyExchangeGroup | undefined {
  return GROUPS.get(groupId);
}

/** Type guard helpers for code that needs the family (e.g. logging, benchmarks). */
export const isEcpGroup = (group: KeyExchangeGroup): group is EcpGroup => group instanceof EcpGroup;
export const isXdhGroup = (group: KeyExchangeGroup): group is XdhGroup => group instanceof XdhGroup;
export const isModpGroup = (group: KeyExchangeGroup): group is ModpGroup => group instanceof ModpGroup;
