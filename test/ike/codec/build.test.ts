import { describe, expect, it } from 'vitest';
import {
  ExchangeType,
  IkeEncodeError,
  NotifyType,
  PayloadType,
  addressRange,
  decodeMessage,
  deletePayload,
  describeMessage,
  encodeMessage,
  fqdnId,
  idPayload,
  nonce,
  notify,
  prefixSelector,
  selectorToString,
  tsPayload,
  type IkeMessage,
} from '../../../src/ike/codec/index.js';

describe('payload constructors', () => {
  it('build a message whose Next Payload chain, lengths and counts encodeMessage fills in', () => {
    const m: IkeMessage = {
      header: {
        spiI: Buffer.alloc(8, 1),
        spiR: Buffer.alloc(8, 2),
        exchangeType: ExchangeType.CREATE_CHILD_SA,
        initiator: true,
        response: false,
        higherVersion: false,
        messageId: 2,
      },
      payloads: [
        notify(NotifyType.REKEY_SA, { protocolId: 3, spi: Buffer.from('c0ffee01', 'hex') }),
        nonce(Buffer.alloc(32, 9)),
        idPayload(PayloadType.IDi, fqdnId('moon.ikev2.test')),
        tsPayload(PayloadType.TSi, [addressRange('10.77.0.1'), prefixSelector('fd77::/64', { ipProtocolId: 6, startPort: 443, endPort: 443 })]),
        deletePayload(3, [Buffer.from('c0ffee02', 'hex')]),
        notify(NotifyType.INITIAL_CONTACT),
      ],
    };
    const bytes = encodeMessage(m);
    expect(decodeMessage(bytes)).toEqual(m);
    expect(describeMessage(m)).toBe('CREATE_CHILD_SA request 2 [ N(REKEY_SA) Nonce IDi TSi D N(INITIAL_CONTACT) ]');
  });

  it('turn prefixes into address ranges', () => {
    expect(selectorToString(prefixSelector('10.1.2.3/16'))).toBe('10.1.0.0-10.1.255.255');
    expect(selectorToString(prefixSelector('10.1.2.3'))).toBe('10.1.2.3-10.1.2.3');
    expect(selectorToString(prefixSelector('0.0.0.0/0'))).toBe('0.0.0.0-255.255.255.255');
    expect(selectorToString(prefixSelector('fd00::1/120', { ipProtocolId: 17, startPort: 53, endPort: 53 }))).toBe('fd00::-fd00::ff[17/53-53]');
    for (const bad of ['10.0.0.0/33', '10.0.0.0/x', 'moon/8', 'fd00::/129']) expect(() => prefixSelector(bad)).toThrow(IkeEncodeError);
    expect(() => addressRange('10.0.0.1', 'fd00::1')).toThrow(IkeEncodeError);
  });
});
