/**
 * The responder's traffic selector decision for a CHILD_SA (RFC 7296 §2.9).
 *
 * TSi is the initiator's side of the traffic and TSr the responder's, so the
 * responder narrows TSi with its `remote_ts` and TSr with its `local_ts`
 * (each side independently; the CHILD_SA then carries every pair of the
 * two results). `dynamic` in `remote_ts` stands for the initiator's address,
 * in `local_ts` for our own.
 *
 * §2.9 lets an initiator put the selector of the packet that triggered the
 * negotiation first in TSi and TSr, so that a responder with several
 * policies can pick the narrowest one fitting that packet, and requires the
 * responder to keep those first selectors when its policy allows them.
 * Narrowing the whole proposal always keeps them when the policy allows
 * them, and keeps every other allowed range too (see ./narrow.ts): the
 * result may hold several ranges. `packetCovered` says whether the first
 * selectors survived, for a caller that chooses between several CHILD_SA
 * configurations.
 */
import type { TrafficSelector as PayloadSelector } from '../codec/payloads/ts.js';
import { resolveTsConfig } from './config.js';
import type { TrafficSelectorConfig } from './syntax.js';
import { narrow } from './narrow.js';
import { type ReceivedRanges, rangesFromPayload } from './payload.js';
import { type TsRange, formatRanges } from './range.js';
import { covers, isSubset } from './set.js';

export interface ResponderTsInput {
  /** The initiator's TSi and TSr payload selectors, as received. */
  tsi: readonly PayloadSelector[];
  tsr: readonly PayloadSelector[];
  /** Our `local_ts` (matched against TSr) and `remote_ts` (matched against TSi). */
  localConfig: readonly TrafficSelectorConfig[];
  remoteConfig: readonly TrafficSelectorConfig[];
  /** What `dynamic` stands for on each side: the IKE addresses (or virtual IPs). */
  localAddr: string | readonly string[];
  remoteAddr: string | readonly string[];
}

export interface ResponderTs {
  /** The narrowed sets to answer with, in TSi and TSr. */
  tsi: TsRange[];
  tsr: TsRange[];
  /** True when the answer selects less traffic than the proposal. */
  narrowed: boolean;
  /** True when the proposal's first TSi and first TSr (the triggering packet, if any) are both kept. */
  packetCovered: boolean;
  /** Proposed selectors left out because they are not address ranges (§2.9) or select nothing. */
  ignored: string[];
}

export interface TsUnacceptable {
  error: 'TS_UNACCEPTABLE';
  reason: string;
}

export function selectResponderTs(input: ResponderTsInput): ResponderTs | TsUnacceptable {
  const tsi = rangesFromPayload(input.tsi);
  const tsr = rangesFromPayload(input.tsr);
  const ignored = [...tsi.ignored.map((l) => `TSi ${l}`), ...tsr.ignored.map((l) => `TSr ${l}`)];
  const remote = resolveTsConfig(input.remoteConfig, input.remoteAddr);
  const local = resolveTsConfig(input.localConfig, input.localAddr);

  const side = (name: 'TSi' | 'TSr', received: ReceivedRanges, configured: TsRange[], configName: string): TsRange[] | TsUnacceptable => {
    const proposed = received.ranges;
    if (proposed.length === 0) {
      const why = received.ignored.length > 0 ? ` (${received.ignored.join('; ')})` : '';
      return { error: 'TS_UNACCEPTABLE', reason: `${name} holds no usable address range${why}` };
    }
    const result = narrow(proposed, configured);
    if (result.length === 0) {
      return {
        error: 'TS_UNACCEPTABLE',
        reason: `${name} ${formatRanges(proposed)} does not overlap ${configName} ${formatRanges(configured)}`,
      };
    }
    return result;
  };

  const outI = side('TSi', tsi, remote, 'remote_ts');
  if ('error' in outI) return outI;
  const outR = side('TSr', tsr, local, 'local_ts');
  if ('error' in outR) return outR;

  const firstI = tsi.ranges[0];
  const firstR = tsr.ranges[0];
  return {
    tsi: outI,
    tsr: outR,
    narrowed: !isSubset(tsi.ranges, outI) || !isSubset(tsr.ranges, outR),
    packetCovered: firstI !== undefined && firstR !== undefined && covers(outI, firstI) && covers(outR, firstR),
    ignored,
  };
}
