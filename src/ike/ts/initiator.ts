/**
 * The initiator's side of traffic selector negotiation (RFC 7296 §2.9).
 *
 * Proposing: TSi is our `local_ts`, TSr our `remote_ts`, `dynamic` resolved
 * to the IKE addresses. When an acquire (a packet without an SA) started
 * the negotiation, the packet's own selectors go first in TSi and TSr so the
 * responder can pick the policy that fits it (§2.9: the initiator SHOULD
 * include them) — only when our own policy covers the packet, as otherwise
 * we would be asking for traffic we do not want.
 *
 * Checking the answer: the responder may only narrow (§2.9), so every range
 * it returned must lie within what we sent; otherwise the CHILD_SA must not
 * be used (delete it). An answer narrower than the proposal is normal; the
 * responder may have added ADDITIONAL_TS_POSSIBLE, and `narrowed` tells the
 * caller that traffic outside the answer still needs another CHILD_SA.
 */
import type { TrafficSelector as EspSelector } from '../../esp/api.js';
import type { TrafficSelector as PayloadSelector } from '../codec/payloads/ts.js';
import { resolveTsConfig } from './config.js';
import type { TrafficSelectorConfig } from './syntax.js';
import { fromEspSelector } from './esp.js';
import { rangesFromPayload } from './payload.js';
import { type TsRange, formatRanges } from './range.js';
import { covers, isSubset } from './set.js';

export interface InitiatorTsInput {
  localConfig: readonly TrafficSelectorConfig[];
  remoteConfig: readonly TrafficSelectorConfig[];
  /** What `dynamic` stands for on each side: the IKE addresses (or virtual IPs). */
  localAddr: string | readonly string[];
  remoteAddr: string | readonly string[];
  /** The packet behind an acquire (src/esp/api.ts AcquireEvent.packetSelector). */
  packet?: { local: EspSelector; remote: EspSelector };
}

export interface TsPair {
  tsi: TsRange[];
  tsr: TsRange[];
}

/** The TSi and TSr to propose. */
export function initiatorTs(input: InitiatorTsInput): TsPair {
  const tsi = resolveTsConfig(input.localConfig, input.localAddr);
  const tsr = resolveTsConfig(input.remoteConfig, input.remoteAddr);
  if (input.packet !== undefined) {
    const local = fromEspSelector(input.packet.local);
    const remote = fromEspSelector(input.packet.remote);
    if (covers(tsi, local) && covers(tsr, remote)) return { tsi: [local, ...tsi], tsr: [remote, ...tsr] };
  }
  return { tsi, tsr };
}

export type InitiatorTsCheck =
  | {
      ok: true;
      /** The responder's TSi and TSr: what the CHILD_SA carries. */
      tsi: TsRange[];
      tsr: TsRange[];
      /** True when they select less than we proposed. */
      narrowed: boolean;
    }
  | { ok: false; error: string };

/** Whether the responder's TSi/TSr are an acceptable answer to what we sent. */
export function checkInitiatorTs(
  sent: { tsi: readonly TsRange[]; tsr: readonly TsRange[] },
  received: { tsi: readonly PayloadSelector[]; tsr: readonly PayloadSelector[] },
): InitiatorTsCheck {
  const sides = [
    ['TSi', sent.tsi, rangesFromPayload(received.tsi)],
    ['TSr', sent.tsr, rangesFromPayload(received.tsr)],
  ] as const;
  for (const [name, ours, theirs] of sides) {
    if (theirs.ignored.length > 0) return { ok: false, error: `the responder's ${name} has unusable selectors: ${theirs.ignored.join('; ')}` };
    if (theirs.ranges.length === 0) return { ok: false, error: `the responder's ${name} is empty` };
    if (!isSubset(theirs.ranges, ours)) {
      return {
        ok: false,
        error: `the responder's ${name} ${formatRanges(theirs.ranges)} is not within the proposed ${formatRanges(ours)}`,
      };
    }
  }
  const [[, sentI, gotI], [, sentR, gotR]] = sides;
  return {
    ok: true,
    tsi: gotI.ranges,
    tsr: gotR.ranges,
    narrowed: !isSubset(sentI, gotI.ranges) || !isSubset(sentR, gotR.ranges),
  };
}
