/**
 * Selector ranges ⇄ the datapath's selectors (src/esp/api.ts), the form in
 * which IKE installs a CHILD_SA's policies and the datapath reports the
 * packet behind an acquire (RFC 4301 §4.4.1, RFC 7296 §2.9).
 */
import type { TrafficSelector as EspSelector } from '../../esp/api.js';
import { formatIp, parseIp } from '../../util/ip.js';
import { type TsRange, rangeProblem } from './range.js';

export function toEspSelector(r: TsRange): EspSelector {
  return {
    protocol: r.protocol,
    startAddress: formatIp(r.startAddress),
    endAddress: formatIp(r.endAddress),
    startPort: r.startPort,
    endPort: r.endPort,
  };
}

export function toEspSelectors(set: readonly TsRange[]): EspSelector[] {
  return set.map(toEspSelector);
}

/** Throws TypeError for a selector that is not a valid range (the datapath's own values). */
export function fromEspSelector(s: EspSelector): TsRange {
  const startAddress = parseIp(s.startAddress);
  const endAddress = parseIp(s.endAddress);
  if (startAddress === undefined || endAddress === undefined) {
    throw new TypeError(`selector ${s.startAddress}-${s.endAddress} has a malformed address`);
  }
  const range: TsRange = { protocol: s.protocol, startAddress, endAddress, startPort: s.startPort, endPort: s.endPort };
  const problem = rangeProblem(range);
  if (problem !== undefined) throw new TypeError(`selector ${s.startAddress}-${s.endAddress}: ${problem}`);
  return range;
}
