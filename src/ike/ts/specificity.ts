/**
 * Choosing among configured children as a responder (RFC 7296 §2.9): when the
 * peer's proposed selectors fit several children, the one configured for the
 * narrowest traffic is meant (a `redis` child for TCP 6379 next to a
 * host-to-host child for everything) — as strongSwan prefers the best
 * matching child configuration over the first one.
 */
import type { ChildPeerConfig } from '../sa/peer-config.js';
import { resolveTsConfig } from './config.js';
import type { TrafficSelector as PayloadSelector } from '../codec/payloads/ts.js';
import { rangesFromPayload } from './payload.js';
import { isOpaquePort, type TsRange } from './range.js';
import { selectResponderTs } from './responder.js';
import { sameTraffic } from './set.js';

/** About log2 of how much traffic a range admits: addresses × ports × protocols. */
function breadth(r: TsRange): number {
  const value = (b: Buffer): bigint => (b.length === 0 ? 0n : BigInt(`0x${b.toString('hex')}`));
  const addresses = value(r.endAddress) - value(r.startAddress) + 1n;
  const addressBits = addresses > 0n ? addresses.toString(2).length - 1 : 0;
  const ports = isOpaquePort(r) ? 1 : Math.max(1, r.endPort - r.startPort + 1);
  return addressBits + Math.log2(ports) + (r.protocol === 0 ? 8 : 0);
}

/** The children ordered from the narrowest configured traffic to the broadest; equal ones keep their configured order. */
function bySpecificity(children: readonly ChildPeerConfig[], localAddr: string, remoteAddr: string): ChildPeerConfig[] {
  const score = (c: ChildPeerConfig): number => {
    try {
      const ranges = [...resolveTsConfig(c.localTs, localAddr), ...resolveTsConfig(c.remoteTs, remoteAddr)];
      return ranges.length === 0 ? Infinity : Math.max(...ranges.map(breadth));
    } catch {
      return Infinity;
    }
  };
  return children
    .map((c, i) => ({ c, i, s: score(c) }))
    .sort((a, b) => a.s - b.s || a.i - b.i)
    .map((x) => x.c);
}

/**
 * The order a responder tries its children in for a request's TSi/TSr: first
 * those that take the proposed traffic as it is (no narrowing), narrowest
 * configuration first; then the others in configured order (they narrow).
 */
export function childrenByFit(
  children: readonly ChildPeerConfig[],
  request: { tsi: readonly PayloadSelector[]; tsr: readonly PayloadSelector[] },
  localAddr: string,
  remoteAddr: string,
): ChildPeerConfig[] {
  const tsi = rangesFromPayload(request.tsi).ranges;
  const tsr = rangesFromPayload(request.tsr).ranges;
  const whole = bySpecificity(children, localAddr, remoteAddr).filter((c) => {
    const r = selectResponderTs({ tsi: request.tsi, tsr: request.tsr, localConfig: c.localTs, remoteConfig: c.remoteTs, localAddr, remoteAddr });
    return !('error' in r) && sameTraffic(r.tsi, tsi) && sameTraffic(r.tsr, tsr);
  });
  return [...whole, ...children.filter((c) => !whole.includes(c))];
}
