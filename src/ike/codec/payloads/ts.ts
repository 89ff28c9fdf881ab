/**
 * Traffic Selector payloads, TSi and TSr (RFC 7296 §3.13).
 *
 * Payload body
 *   off len field
 *   0   1   Number of TSs
 *   1   3   RESERVED
 *   4   …   Traffic Selectors
 *
 * Traffic Selector (§3.13.1)
 *   0   1   TS Type          7 TS_IPV4_ADDR_RANGE, 8 TS_IPV6_ADDR_RANGE
 *   1   1   IP Protocol ID   0 = any
 *   2   2   Selector Length  16 for IPv4, 40 for IPv6 (checked)
 *   4   2   Start Port
 *   6   2   End Port         (start 65535, end 0 = OPAQUE)
 *   8   a   Starting Address
 *   8+a a   Ending Address
 *
 * Other TS types (TS_FC_ADDR_RANGE, TS_SECLABEL, ...) decode as
 * {tsType: 'unknown'} with their octets kept; the exchange answers
 * TS_UNACCEPTABLE if it cannot use them.
 */
import type { GenericHeaderFields } from '../context.js';
import { PayloadType } from '../payload-type.js';
import { type Reader, type Writer, checkUint } from '../reader.js';
import { IkeEncodeError } from '../errors.js';
import { formatIp } from '../../../util/ip.js';
import { plural } from '../../../util/format.js';

/** IANA "IKEv2 Traffic Selector Types". */
export enum TsType {
  TS_IPV4_ADDR_RANGE = 7,
  TS_IPV6_ADDR_RANGE = 8,
  /** RFC 4595 */
  TS_FC_ADDR_RANGE = 9,
  /** RFC 9478 */
  TS_SECLABEL = 10,
}

export interface AddressRangeSelector {
  tsType: TsType.TS_IPV4_ADDR_RANGE | TsType.TS_IPV6_ADDR_RANGE;
  ipProtocolId: number;
  startPort: number;
  endPort: number;
  startAddress: Buffer;
  endAddress: Buffer;
}

/** A selector of a type the codec does not parse: the octets after TS Type and Selector Length. */
export interface UnknownSelector {
  tsType: 'unknown';
  selectorType: number;
  /** Octet 1 (IP Protocol ID in the address-range types). */
  ipProtocolId: number;
  data: Buffer;
}

export type TrafficSelector = AddressRangeSelector | UnknownSelector;

export interface TsPayload extends GenericHeaderFields {
  type: PayloadType.TSi | PayloadType.TSr;
  selectors: TrafficSelector[];
  /** RESERVED (3 octets) as received, only when non-zero. */
  reserved?: number;
}

function addressLength(tsType: number): number | undefined {
  if (tsType === TsType.TS_IPV4_ADDR_RANGE) return 4;
  if (tsType === TsType.TS_IPV6_ADDR_RANGE) return 16;
  return undefined;
}

export function decodeTsBody(r: Reader, type: PayloadType.TSi | PayloadType.TSr): TsPayload {
  const count = r.u8('Number of TSs');
  const reserved = (r.u8('RESERVED') << 16) | r.u16('RESERVED');
  const selectors: TrafficSelector[] = [];
  for (let i = 1; i <= count; i++) {
    const start = r.pos;
    const tsType = r.u8('TS Type');
    const ipProtocolId = r.u8('IP Protocol ID');
    const length = r.u16('Selector Length');
    const addrLen = addressLength(tsType);
    if (addrLen !== undefined) {
      const expected = 8 + 2 * addrLen;
      if (length !== expected) {
        r.fail(`traffic selector ${i} length ${length}, expected ${expected} for ${TsType[tsType]}`, start + 2);
      }
      const s = r.sub(length - 4, r.where, `traffic selector ${i}`);
      selectors.push({
        tsType: tsType as AddressRangeSelector['tsType'],
        ipProtocolId,
        startPort: s.u16('Start Port'),
        endPort: s.u16('End Port'),
        startAddress: s.bytes(addrLen, 'Starting Address'),
        endAddress: s.bytes(addrLen, 'Ending Address'),
      });
    } else {
      if (length < 4) r.fail(`traffic selector ${i} length ${length}, at least 4 needed`, start + 2);
      selectors.push({ tsType: 'unknown', selectorType: tsType, ipProtocolId, data: r.bytes(length - 4, `traffic selector ${i}`) });
    }
  }
  r.expectEnd(`the ${plural(count, 'traffic selector')} Number of TSs announces`);
  const p: TsPayload = { type, selectors };
  if (reserved !== 0) p.reserved = reserved;
  return p;
}

export function encodeTsBody(p: TsPayload, w: Writer): void {
  w.u8(checkUint(p.selectors.length, 8, 'TS: Number of TSs')).u24(checkUint(p.reserved ?? 0, 24, 'TS: RESERVED'));
  for (const ts of p.selectors) {
    if (ts.tsType === 'unknown') {
      if (addressLength(ts.selectorType) !== undefined) {
        throw new IkeEncodeError(`TS: type ${ts.selectorType} is an address range, give it as one`);
      }
      w.u8(checkUint(ts.selectorType, 8, 'TS: TS Type'))
        .u8(checkUint(ts.ipProtocolId, 8, 'TS: IP Protocol ID'))
        .u16(checkUint(4 + ts.data.length, 16, 'TS: Selector Length'))
        .bytes(ts.data);
      continue;
    }
    const addrLen = addressLength(ts.tsType);
    if (addrLen === undefined || ts.startAddress.length !== addrLen || ts.endAddress.length !== addrLen) {
      throw new IkeEncodeError(
        `TS: ${TsType[ts.tsType] ?? ts.tsType} needs ${addrLen ?? '?'}-octet addresses, got ${ts.startAddress.length} and ${ts.endAddress.length}`,
      );
    }
    w.u8(ts.tsType)
      .u8(checkUint(ts.ipProtocolId, 8, 'TS: IP Protocol ID'))
      .u16(8 + 2 * addrLen)
      .u16(checkUint(ts.startPort, 16, 'TS: Start Port'))
      .u16(checkUint(ts.endPort, 16, 'TS: End Port'))
      .bytes(ts.startAddress)
      .bytes(ts.endAddress);
  }
}

/** "10.0.0.0-10.0.0.255[tcp/443-443]"-style text of a selector, for logs. */
export function selectorToString(ts: TrafficSelector): string {
  if (ts.tsType === 'unknown') return `TS_TYPE_${ts.selectorType}:#${ts.data.toString('hex')}`;
  const range = `${formatIp(ts.startAddress)}-${formatIp(ts.endAddress)}`;
  const ports = ts.startPort === 0 && ts.endPort === 0xffff ? '' : `/${ts.startPort}-${ts.endPort}`;
  return ts.ipProtocolId === 0 && ports === '' ? range : `${range}[${ts.ipProtocolId}${ports}]`;
}
