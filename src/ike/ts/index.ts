/** Traffic selectors (RFC 7296 §2.9, §3.13; RFC 4301 §4.4.1): ranges, sets, narrowing, config and wire conversion. */
export type { Family, TsRange } from './range.js';
export {
  ANY_PROTOCOL,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  familyOf,
  formatRange,
  formatRanges,
  hostRange,
  intersectRanges,
  isAnyPort,
  isOpaquePort,
  rangeContains,
  rangeProblem,
  sameRange,
} from './range.js';
export { covers, isSubset, removeRedundant, sameRanges, sameTraffic } from './set.js';
export { narrow } from './narrow.js';
export type { TrafficSelectorConfig } from './syntax.js';
export { parseTsConfig, parseTsConfigList, resolveTsConfig } from './config.js';
export type { ReceivedRanges } from './payload.js';
export { rangeToPayload, rangesFromPayload, rangesToPayload } from './payload.js';
export { fromEspSelector, toEspSelector, toEspSelectors } from './esp.js';
export type { ResponderTs, ResponderTsInput, TsUnacceptable } from './responder.js';
export { selectResponderTs } from './responder.js';
export type { InitiatorTsCheck, InitiatorTsInput, TsPair } from './initiator.js';
export { checkInitiatorTs, initiatorTs } from './initiator.js';
export type { TransportModeCheck } from './transport.js';
export { transportModeAllowed } from './transport.js';
export { childrenByFit } from './specificity.js';
