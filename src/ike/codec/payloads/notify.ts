/**
 * Notify payload, N (RFC 7296 §3.10). The type registry is ../notify.ts.
 *
 *   off len field
 *   0   1   Protocol ID    0 when no SPI; 1 IKE, 2 AH, 3 ESP
 *   1   1   SPI Size
 *   2   2   Notify Message Type
 *   4   n   SPI
 *   4+n …   Notification Data
 *
 * The codec does not tie SPI Size to Protocol ID here: §3.10 only says what
 * senders put there, and which notifies carry an SPI is per type (REKEY_SA,
 * INVALID_SELECTORS, CHILD_SA_NOT_FOUND) — the exchange checks those.
 */
import type { GenericHeaderFields } from '../context.js';
import { PayloadType } from '../payload-type.js';
import { type Reader, type Writer, checkLength, checkUint } from '../reader.js';

export interface NotifyPayload extends GenericHeaderFields {
  type: PayloadType.NOTIFY;
  protocolId: number;
  spi: Buffer;
  /** A NotifyType, or any other 16-bit number (unknown types decode too). */
  notifyType: number;
  data: Buffer;
}

export function decodeNotifyBody(r: Reader): NotifyPayload {
  const protocolId = r.u8('Protocol ID');
  const spiSize = r.u8('SPI Size');
  const notifyType = r.u16('Notify Message Type');
  const spi = r.bytes(spiSize, 'SPI');
  return { type: PayloadType.NOTIFY, protocolId, spi, notifyType, data: r.rest() };
}

export function encodeNotifyBody(p: NotifyPayload, w: Writer): void {
  w.u8(checkUint(p.protocolId, 8, 'N: Protocol ID'))
    .u8(checkLength(p.spi, 0, 255, 'N: SPI').length)
    .u16(checkUint(p.notifyType, 16, 'N: Notify Message Type'))
    .bytes(p.spi)
    .bytes(p.data);
}
