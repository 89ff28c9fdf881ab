/**
 * Vendor ID payload, V (RFC 7296 §3.12).
 *
 *   off len field
 *   0   …   Vendor ID (VID), opaque
 */
import type { GenericHeaderFields } from '../context.js';
import { PayloadType } from '../payload-type.js';
import type { Reader, Writer } from '../reader.js';

export interface VendorIdPayload extends GenericHeaderFields {
  type: PayloadType.VENDOR_ID;
  vendorId: Buffer;
}

export function decodeVendorIdBody(r: Reader): VendorIdPayload {
  return { type: PayloadType.VENDOR_ID, vendorId: r.rest() };
}

export function encodeVendorIdBody(p: VendorIdPayload, w: Writer): void {
  w.bytes(p.vendorId);
}
