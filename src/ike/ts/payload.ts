/**
 * Selector ranges ⇄ the codec's TSi/TSr selectors (RFC 7296 §3.13.1).
 *
 * Received selectors of a type other than TS_IPV4_ADDR_RANGE and
 * TS_IPV6_ADDR_RANGE are ignored, as §2.9 asks of a responder ("the
 * responder ignores that Traffic Selector, so that the unknown type is not
 * returned in the narrowed set"); so are address ranges that select nothing
 * (start after end). Both are reported, for logs.
 */
import { TsType, type AddressRangeSelector, type TrafficSelector as PayloadSelector } from '../codec/payloads/ts.js';
import { type TsRange, rangeProblem } from './range.js';

export interface ReceivedRanges {
  ranges: TsRange[];
  /** One line per selector left out, with the reason. */
  ignored: string[];
}

export function rangesFromPayload(selectors: readonly PayloadSelector[]): ReceivedRanges {
  const ranges: TsRange[] = [];
  const ignored: string[] = [];
  selectors.forEach((s, i) => {
    if (s.tsType === 'unknown') {
      ignored.push(`selector ${i + 1}: TS type ${s.selectorType} is not an address range`);
      return;
    }
    const range: TsRange = {
      protocol: s.ipProtocolId,
      startAddress: Buffer.from(s.startAddress),
      endAddress: Buffer.from(s.endAddress),
      startPort: s.startPort,
      endPort: s.endPort,
    };
    const problem = rangeProblem(range);
    if (problem !== undefined) {
      ignored.push(`selector ${i + 1}: ${problem}`);
      return;
    }
    ranges.push(range);
  });
  return { ranges, ignored };
}

export function rangeToPayload(r: TsRange): AddressRangeSelector {
  return {
    tsType: r.startAddress.length === 4 ? TsType.TS_IPV4_ADDR_RANGE : TsType.TS_IPV6_ADDR_RANGE,
    ipProtocolId: r.protocol,
    startPort: r.startPort,
    endPort: r.endPort,
    startAddress: Buffer.from(r.startAddress),
    endAddress: Buffer.from(r.endAddress),
  };
}

/** The selectors of a TSi or TSr payload; wrap them with `tsPayload(PayloadType.TSi, …)`. */
export function rangesToPayload(ranges: readonly TsRange[]): AddressRangeSelector[] {
  return ranges.map(rangeToPayload);
}
