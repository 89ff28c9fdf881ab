/**
 * Delete payload, D (RFC 7296 §3.11).
 *
 *   off len field
 *   0   1   Protocol ID     1 IKE, 2 AH, 3 ESP
 *   1   1   SPI Size        IKE: 0 (the SPIs are in the header); AH/ESP: 4
 *   2   2   Num of SPIs
 *   4   …   SPIs, Num of SPIs × SPI Size octets
 *
 * Protocol ID and SPI Size must agree (§3.11); any other protocol is
 * INVALID_SYNTAX. For IKE, strongSwan (and everybody) sends Num of SPIs = 0;
 * a non-zero count of zero-length SPIs decodes as that many empty buffers so
 * the octets survive a round trip.
 */
import type { GenericHeaderFields } from '../context.js';
import { PayloadType } from '../payload-type.js';
import { type Reader, type Writer, checkUint } from '../reader.js';
import { IkeEncodeError } from '../errors.js';

export interface DeletePayload extends GenericHeaderFields {
  type: PayloadType.DELETE;
  protocolId: number;
  spis: Buffer[];
}

/** SPI Size §3.11 requires for a Delete payload's Protocol ID, or undefined for a protocol it does not define. */
export function deleteSpiSize(protocolId: number): number | undefined {
  switch (protocolId) {
    case 1:
      return 0;
    case 2:
    case 3:
      return 4;
    default:
      return undefined;
  }
}

export function decodeDeleteBody(r: Reader): DeletePayload {
  const protocolId = r.u8('Protocol ID');
  const spiSize = r.u8('SPI Size');
  const expected = deleteSpiSize(protocolId);
  if (expected === undefined) r.fail(`Protocol ID ${protocolId}, expected 1 (IKE), 2 (AH) or 3 (ESP)`, r.pos - 2);
  if (spiSize !== expected) r.fail(`SPI Size ${spiSize} for Protocol ID ${protocolId}, expected ${expected}`, r.pos - 1);
  const count = r.u16('Num of SPIs');
  if (count * spiSize !== r.remaining) {
    r.fail(`${count} SPIs of ${spiSize} octets need ${count * spiSize} octets, the payload has ${r.remaining}`);
  }
  const spis: Buffer[] = [];
  for (let i = 0; i < count; i++) spis.push(r.bytes(spiSize, 'SPI'));
  return { type: PayloadType.DELETE, protocolId, spis };
}

export function encodeDeleteBody(p: DeletePayload, w: Writer): void {
  const size = deleteSpiSize(p.protocolId);
  if (size === undefined) throw new IkeEncodeError(`D: Protocol ID ${p.protocolId} is not IKE, AH or ESP`);
  for (const spi of p.spis) {
    if (spi.length !== size) throw new IkeEncodeError(`D: SPI of ${spi.length} octets for Protocol ID ${p.protocolId}, expected ${size}`);
  }
  w.u8(p.protocolId)
    .u8(size)
    .u16(checkUint(p.spis.length, 16, 'D: Num of SPIs'));
  for (const spi of p.spis) w.bytes(spi);
}
