/**
 * Extensible Authentication payload, EAP (RFC 7296 §3.16): one EAP message
 * (RFC 3748 §4).
 *
 *   off len field
 *   0   1   Code        1 Request, 2 Response, 3 Success, 4 Failure
 *   1   1   Identifier
 *   2   2   Length      of the EAP message; must equal the payload body (checked)
 *   4   …   Type ‖ Type-Data (Request/Response), or nothing
 */
import type { GenericHeaderFields } from '../context.js';
import { PayloadType } from '../payload-type.js';
import { type Reader, type Writer, checkUint } from '../reader.js';

export interface EapPayload extends GenericHeaderFields {
  type: PayloadType.EAP;
  code: number;
  identifier: number;
  /** Everything after the EAP Length field (Type and Type-Data for Request/Response). */
  data: Buffer;
}

export function decodeEapBody(r: Reader): EapPayload {
  const total = r.remaining;
  const code = r.u8('EAP Code');
  const identifier = r.u8('EAP Identifier');
  const length = r.u16('EAP Length');
  if (length !== total) r.fail(`EAP Length ${length}, but the payload carries ${total} octets`, r.pos - 2);
  return { type: PayloadType.EAP, code, identifier, data: r.rest() };
}

export function encodeEapBody(p: EapPayload, w: Writer): void {
  w.u8(checkUint(p.code, 8, 'EAP: Code'))
    .u8(checkUint(p.identifier, 8, 'EAP: Identifier'))
    .u16(checkUint(4 + p.data.length, 16, 'EAP: Length'))
    .bytes(p.data);
}
