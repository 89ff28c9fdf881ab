/**
 * RFC 7619 on the wire: ID_NULL (ID Type 13, no data) and AUTH method 13
 * (NULL Authentication), through the codec and src/pki's identities.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AES_GCM_16_128 } from '../../../src/crypto/aead.js';
import {
  AuthMethod,
  ExchangeType,
  IdType,
  PayloadType,
  decodeMessage,
  decryptSk,
  encodeIdBody,
  encodeMessage,
  type IkeHeader,
  type Payload,
} from '../../../src/ike/codec/index.js';
import { NULL_IDENTITY, identityFromIdPayload, identityToIdPayload, identityToString, parseIdentity } from '../../../src/pki/index.js';

const header: IkeHeader = {
  spiI: Buffer.from('0102030405060708', 'hex'),
  spiR: Buffer.from('1112131415161718', 'hex'),
  exchangeType: ExchangeType.IKE_AUTH,
  initiator: true,
  response: false,
  higherVersion: false,
  messageId: 1,
};

describe('ID_NULL and NULL Authentication in the codec (RFC 7619 §2, §3)', () => {
  it('ID_NULL is ID Type 13 with empty Identification Data, and reads back as the %null identity', () => {
    const id = identityToIdPayload(NULL_IDENTITY);
    expect(id.idType).toBe(13);
    expect(id.idType).toBe(IdType.ID_NULL);
    expect(id.data.length).toBe(0);
    // The body AUTH's MACedID covers: ID Type, three RESERVED octets, no data.
    expect(encodeIdBody(id).toString('hex')).toBe('0d000000');
    expect(identityFromIdPayload(id)).toEqual(NULL_IDENTITY);
    expect(identityToString(NULL_IDENTITY)).toBe('%null');
    expect(parseIdentity('%null')).toEqual(NULL_IDENTITY);
  });

  it('an ID_NULL whose data is not empty still reads as %null (the data names nobody)', () => {
    expect(identityFromIdPayload({ idType: 13, data: Buffer.from('x') })).toEqual(NULL_IDENTITY);
  });

  it('IDi ID_NULL and AUTH method 13 round-trip through an encrypted IKE_AUTH message', () => {
    const aead = AES_GCM_16_128.createContext(randomBytes(20));
    const iv = Buffer.from('0001020304050607', 'hex');
    const mic = randomBytes(48);
    const payloads: Payload[] = [
      { type: PayloadType.IDi, idType: IdType.ID_NULL, data: Buffer.alloc(0) },
      { type: PayloadType.AUTH, method: AuthMethod.NULL_AUTHENTICATION, data: mic },
    ];
    const bytes = encodeMessage({ header, payloads }, { encrypt: { aead, iv } });
    const sk = decryptSk(decodeMessage(bytes), bytes, aead);
    expect(sk.payloads).toEqual(payloads);
    expect(AuthMethod.NULL_AUTHENTICATION).toBe(13);
  });
});
