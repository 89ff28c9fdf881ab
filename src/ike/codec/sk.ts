/**
 * Encrypting and decrypting the Encrypted payload (RFC 7296 §3.14) with an
 * AEAD cipher (RFC 5282): the payload carries
 *
 *   IV (ivLength) ‖ AEAD ciphertext of (inner payloads ‖ Padding ‖ Pad Length) ‖ ICV (icvLength)
 *
 * and the Associated Data is every octet of the message before the IV: the
 * IKE header, any payloads before SK, and the SK generic payload header —
 * for an SKF fragment also its Fragment Number and Total Fragments fields
 * (RFC 7383 §2.5). The IKE header's Length is part of it, so it must be final
 * before sealing.
 *
 * Padding: an AEAD has no block alignment to reach, so tunsec sends none
 * (Pad Length 0, as strongSwan does) unless asked; on receipt any Pad Length
 * that fits is accepted and the padding octets are returned so that a
 * message can be re-encrypted octet for octet.
 */
import { randomBytes } from 'node:crypto';
import type { AeadContext } from '../../crypto/types.js';
import type { DecodeContext } from './context.js';
import { IkeEncodeError, IkeIntegrityError, IkeParseError } from './errors.js';
import { type Payload, decodePayloadChain, encodePayloadChain, GENERIC_HEADER_LENGTH } from './chain.js';
import { payloadTypeName } from './payload-type.js';
import { checkLength } from './reader.js';

/** What an SK (or one SKF fragment) decrypts to. */
export interface SkPlaintext {
  /** The IV as it travelled. */
  iv: Buffer;
  /** Inner payloads ‖ Padding ‖ Pad Length, decrypted. */
  plaintext: Buffer;
  /** Length of the inner payload octets at the start of `plaintext`. */
  innerLength: number;
  /** The Padding octets (usually none). */
  padding: Buffer;
}

/**
 * Opens the IV ‖ ciphertext ‖ ICV of an SK/SKF payload whose `content` is
 * the last `content.length` octets of `datagram`. Raises IkeIntegrityError
 * if it is too short or does not authenticate, IkeParseError
 * (INVALID_SYNTAX) if the authenticated plaintext has an impossible Pad Length.
 */
export function openEncrypted(datagram: Buffer, content: Buffer, aead: AeadContext, payloadType: number): SkPlaintext {
  const { ivLength, icvLength } = aead.algorithm;
  const name = payloadTypeName(payloadType);
  if (content.length < ivLength + icvLength + 1) {
    throw new IkeIntegrityError(
      `${name}: ${content.length} octets cannot hold a ${ivLength}-octet IV, the Pad Length and a ${icvLength}-octet ICV`,
      payloadType,
    );
  }
  const contentStart = datagram.length - content.length;
  if (contentStart < 0 || !datagram.subarray(contentStart).equals(content)) {
    throw new TypeError(`${name}: the datagram given is not the one this payload was decoded from`);
  }
  const aad = datagram.subarray(0, contentStart);
  const iv = Buffer.from(content.subarray(0, ivLength));
  const plaintext = aead.open(iv, aad, content.subarray(ivLength));
  if (plaintext === null) throw new IkeIntegrityError(`${name}: ICV check failed`, payloadType);
  const padLength = plaintext[plaintext.length - 1]!;
  const innerLength = plaintext.length - 1 - padLength;
  if (innerLength < 0) {
    throw new IkeParseError(`${name}: Pad Length ${padLength} exceeds the ${plaintext.length - 1} decrypted octets before it`, {
      offset: plaintext.length - 1,
      payloadType,
    });
  }
  return { iv, plaintext, innerLength, padding: Buffer.from(plaintext.subarray(innerLength, plaintext.length - 1)) };
}

/** Inner payloads of a decrypted SK (offsets in errors are into the plaintext). */
export function decodeInner(opened: SkPlaintext, firstPayload: number, ctx: DecodeContext): Payload[] {
  return decodePayloadChain(opened.plaintext, 0, opened.innerLength, firstPayload, ctx, true);
}

/** inner ‖ padding ‖ Pad Length. */
export function buildPlaintext(inner: Buffer, padding: Uint8Array = Buffer.alloc(0)): Buffer {
  checkLength(padding, 0, 255, 'SK: Padding');
  return Buffer.concat([inner, padding, Buffer.from([padding.length])]);
}

/** A fresh IV of the cipher's length, or the caller's after checking its length. */
export function pickIv(aead: AeadContext, iv: Uint8Array | undefined): Buffer {
  const { ivLength } = aead.algorithm;
  if (iv === undefined) return randomBytes(ivLength);
  if (iv.length !== ivLength) throw new IkeEncodeError(`SK: IV of ${iv.length} octets, the cipher uses ${ivLength}`);
  return Buffer.from(iv);
}

/**
 * Seals an Encrypted (or Encrypted Fragment) payload: `prefix` is every
 * octet of the message up to the IV, already final (header Length
 * included). Returns the whole message.
 */
export function sealEncrypted(prefix: Buffer, iv: Buffer, plaintext: Buffer, aead: AeadContext): Buffer {
  const sealed = aead.seal(iv, prefix, plaintext);
  return Buffer.concat([prefix, iv, sealed]);
}

/** The SK payload's total length for a plaintext of this size. */
export function encryptedPayloadLength(aead: AeadContext, plaintextLength: number, fixedFields = 0): number {
  return GENERIC_HEADER_LENGTH + fixedFields + aead.algorithm.ivLength + plaintextLength + aead.algorithm.icvLength;
}

/** SK plaintext for these inner payloads (SK/SKF refused inside). */
export function encodeInner(payloads: readonly Payload[]): Buffer {
  return encodePayloadChain(payloads, true);
}
