/**
 * Small constructors for the payloads exchanges build most often, so task
 * code reads like the RFC's message diagrams:
 *
 *   encodeMessage({ header, payloads: [sa, ke, nonce(ni), notify(NotifyType.NAT_DETECTION_SOURCE_IP, { data: hash })] })
 *
 * Next Payload fields and lengths are filled in by encodeMessage.
 */
import { IkeEncodeError } from './errors.js';
import { parseIp, prefixRange } from '../../util/ip.js';
import { PayloadType } from './payload-type.js';
import type { NotifyPayload } from './payloads/notify.js';
import type { NoncePayload } from './payloads/nonce.js';
import { TsType, type AddressRangeSelector, type TrafficSelector, type TsPayload } from './payloads/ts.js';
import type { Identification, IdPayload } from './payloads/id.js';
import type { DeletePayload } from './payloads/delete.js';

/** A Notify payload; without `spi` it concerns the IKE SA (Protocol ID 0, SPI Size 0, §3.10). */
export function notify(notifyType: number, options: { data?: Uint8Array; protocolId?: number; spi?: Uint8Array } = {}): NotifyPayload {
  const spi = Buffer.from(options.spi ?? []);
  return {
    type: PayloadType.NOTIFY,
    protocolId: options.protocolId ?? 0,
    spi,
    notifyType,
    data: Buffer.from(options.data ?? []),
  };
}

export function nonce(bytes: Uint8Array): NoncePayload {
  return { type: PayloadType.NONCE, nonce: Buffer.from(bytes) };
}

export function idPayload(type: PayloadType.IDi | PayloadType.IDr, id: Identification): IdPayload {
  return { type, idType: id.idType, data: Buffer.from(id.data) };
}

export function deletePayload(protocolId: number, spis: readonly Uint8Array[] = []): DeletePayload {
  return { type: PayloadType.DELETE, protocolId, spis: spis.map((s) => Buffer.from(s)) };
}

export interface SelectorOptions {
  /** IP protocol number, 0 = any. */
  ipProtocolId?: number;
  startPort?: number;
  endPort?: number;
}

/** An address-range traffic selector from two addresses of one family (default: all ports, any protocol). */
export function addressRange(start: string, end: string = start, options: SelectorOptions = {}): AddressRangeSelector {
  const a = parseIp(start);
  const b = parseIp(end);
  if (!a || !b || a.length !== b.length) throw new IkeEncodeError(`TS: "${start}" - "${end}" is not a range of one address family`);
  return rangeSelector(a, b, options);
}

/** The address-range selector covering a prefix, e.g. "10.1.0.0/16" or "fd00::/64" (a bare address is a /32 or /128). */
export function prefixSelector(prefix: string, options: SelectorOptions = {}): AddressRangeSelector {
  const [address, lengthText] = prefix.split('/');
  const base = parseIp(address ?? '');
  if (!base) throw new IkeEncodeError(`TS: "${prefix}" is not an address prefix`);
  const bits = base.length * 8;
  const length = lengthText === undefined ? bits : Number(lengthText);
  if (!Number.isInteger(length) || length < 0 || length > bits || (lengthText !== undefined && !/^\d+$/.test(lengthText))) {
    throw new IkeEncodeError(`TS: "${prefix}" has a bad prefix length`);
  }
  const { start, end } = prefixRange(base, length);
  return rangeSelector(start, end, options);
}

function rangeSelector(startAddress: Buffer, endAddress: Buffer, options: SelectorOptions): AddressRangeSelector {
  return {
    tsType: startAddress.length === 4 ? TsType.TS_IPV4_ADDR_RANGE : TsType.TS_IPV6_ADDR_RANGE,
    ipProtocolId: options.ipProtocolId ?? 0,
    startPort: options.startPort ?? 0,
    endPort: options.endPort ?? 0xffff,
    startAddress,
    endAddress,
  };
}

export function tsPayload(type: PayloadType.TSi | PayloadType.TSr, selectors: readonly TrafficSelector[]): TsPayload {
  return { type, selectors: [...selectors] };
}
