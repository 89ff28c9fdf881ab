import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AES_GCM_16_128 } from '../../../src/crypto/aead.js';
import {
  ExchangeType,
  FragmentReassembler,
  IkeEncodeError,
  NotifyType,
  PayloadType,
  decodeMessage,
  encodeMessage,
  fragmentMessage,
  type IkeHeader,
  type IkeMessage,
  type Payload,
} from '../../../src/ike/codec/index.js';

const aead = AES_GCM_16_128.createContext(randomBytes(20));
const header: IkeHeader = {
  spiI: randomBytes(8),
  spiR: randomBytes(8),
  exchangeType: ExchangeType.IKE_AUTH,
  initiator: true,
  response: false,
  higherVersion: false,
  messageId: 1,
};
const payloads: Payload[] = [
  { type: PayloadType.IDi, idType: 2, data: Buffer.from('moon.example.org') },
  { type: PayloadType.CERT, encoding: 4, data: randomBytes(3000) },
  { type: PayloadType.AUTH, method: 14, data: randomBytes(300) },
  { type: PayloadType.NOTIFY, protocolId: 0, spi: Buffer.alloc(0), notifyType: NotifyType.INITIAL_CONTACT, data: Buffer.alloc(0) },
];
const message: IkeMessage = { header, payloads };

function fragments(max = 576, m: IkeMessage = message): { bytes: Buffer; message: IkeMessage }[] {
  return fragmentMessage(m, { aead, maxMessageSize: max }).map((bytes) => ({ bytes, message: decodeMessage(bytes) }));
}

describe('fragmenting an IKE message (RFC 7383 §2.5)', () => {
  it('cuts the inner payload chain into SKF messages no larger than the limit, all but the last exactly at it', () => {
    const frags = fragments(576);
    const inner = encodeMessage({ header, payloads }).length - 28;
    const perFragment = 576 - 28 - 8 - 8 - 16 - 1;
    expect(frags).toHaveLength(Math.ceil(inner / perFragment));
    frags.forEach((f, i) => {
      expect(f.bytes.length).toBeLessThanOrEqual(576);
      if (i < frags.length - 1) expect(f.bytes.length).toBe(576);
      expect(f.message.header).toEqual(header);
      expect(f.message.payloads).toHaveLength(1);
      expect(f.message.payloads[0]).toMatchObject({
        type: PayloadType.SKF,
        fragmentNumber: i + 1,
        totalFragments: frags.length,
        firstPayload: i === 0 ? PayloadType.IDi : 0,
      });
    });
  });

  it('gives a message that fits one fragment, and one without payloads, a single fragment', () => {
    expect(fragments(1280, { header, payloads: payloads.slice(0, 1) })).toHaveLength(1);
    const empty = fragments(1280, { header, payloads: [] });
    expect(empty).toHaveLength(1);
    expect(empty[0]!.message.payloads[0]).toMatchObject({ firstPayload: 0, fragmentNumber: 1, totalFragments: 1 });
  });

  it('refuses a size limit that leaves no room for payload octets, or that would need more than 65535 fragments', () => {
    expect(() => fragmentMessage(message, { aead, maxMessageSize: 28 + 8 + 8 + 16 + 1 })).toThrow(IkeEncodeError);
    const huge: IkeMessage = {
      header,
      payloads: [1, 2].map(() => ({ type: PayloadType.CERT, encoding: 4, data: Buffer.alloc(40_000) }) as Payload),
    };
    // One payload octet per fragment would need more than 65535 fragments.
    expect(() => fragmentMessage(huge, { aead, maxMessageSize: 28 + 8 + 8 + 16 + 2 })).toThrow(/exceed the 16-bit Total Fragments/);
  });
});

describe('reassembling fragments (RFC 7383 §2.6)', () => {
  it('reassembles fragments that arrive in any order into the original payloads', () => {
    const frags = fragments(576);
    const order = [...frags.keys()].reverse();
    const r = new FragmentReassembler();
    const results = order.map((i) => r.add(frags[i]!.message, frags[i]!.bytes, aead));
    expect(results.slice(0, -1).every((x) => x.status === 'incomplete')).toBe(true);
    expect(results.at(-1)).toEqual({
      status: 'complete',
      header,
      payloads,
      fragments: frags.length,
      innerLength: encodeMessage(message).length - 28,
    });
    expect(r.pendingCount).toBe(0);
    expect(r.counters.completed).toBe(1);
  });

  it('discards a replayed fragment (same number and total) and counts it', () => {
    const [a, b] = fragments(576);
    const r = new FragmentReassembler();
    expect(r.add(a!.message, a!.bytes, aead).status).toBe('incomplete');
    expect(r.add(a!.message, a!.bytes, aead)).toEqual({ status: 'rejected', reason: 'duplicate' });
    expect(r.counters.rejected.duplicate).toBe(1);
    expect(r.add(b!.message, b!.bytes, aead)).toMatchObject({ status: 'incomplete', received: 2 });
  });

  it('discards a fragment with a smaller Total Fragments than those held, and starts over on a larger one', () => {
    const small = fragments(1280); // fewer, bigger fragments
    const big = fragments(576); // more, smaller fragments
    expect(big.length).toBeGreaterThan(small.length);
    const r = new FragmentReassembler();
    expect(r.add(big[0]!.message, big[0]!.bytes, aead).status).toBe('incomplete');
    expect(r.add(small[1]!.message, small[1]!.bytes, aead)).toEqual({ status: 'rejected', reason: 'stale-total' });
    expect(r.counters.rejected['stale-total']).toBe(1);

    const r2 = new FragmentReassembler();
    expect(r2.add(small[0]!.message, small[0]!.bytes, aead).status).toBe('incomplete');
    for (const f of big) r2.add(f.message, f.bytes, aead);
    expect(r2.counters.restarted).toBe(1);
    expect(r2.counters.completed).toBe(1);
  });

  it('checks the ICV of every fragment before keeping it', () => {
    const [a] = fragments(576);
    const tampered = Buffer.from(a!.bytes);
    tampered[tampered.length - 1]! ^= 1;
    const r = new FragmentReassembler();
    expect(r.add(decodeMessage(tampered), tampered, aead)).toMatchObject({ status: 'rejected', reason: 'integrity' });
    expect(r.pendingCount).toBe(0);
    const otherKey = AES_GCM_16_128.createContext(randomBytes(20));
    expect(r.add(a!.message, a!.bytes, otherKey)).toMatchObject({ status: 'rejected', reason: 'integrity' });
    expect(r.counters.rejected.integrity).toBe(2);
  });

  it('enforces the Total Fragments, size and pending-message limits', () => {
    const frags = fragments(300);
    const few = new FragmentReassembler({ maxFragments: frags.length - 1 });
    expect(few.add(frags[0]!.message, frags[0]!.bytes, aead)).toEqual({ status: 'rejected', reason: 'too-many-fragments' });

    const small = new FragmentReassembler({ maxBytes: 1000 });
    const results = frags.map((f) => small.add(f.message, f.bytes, aead));
    expect(results.some((x) => x.status === 'rejected' && x.reason === 'too-large')).toBe(true);
    expect(small.counters.completed).toBe(0);

    const one = new FragmentReassembler({ maxPending: 1 });
    const other = fragments(300, { header: { ...header, messageId: 2 }, payloads });
    expect(one.add(frags[0]!.message, frags[0]!.bytes, aead).status).toBe('incomplete');
    expect(one.add(other[0]!.message, other[0]!.bytes, aead)).toEqual({ status: 'rejected', reason: 'too-many-pending' });
    expect(one.counters.rejected['too-many-pending']).toBe(1);
  });

  it('drops a partial message once the timeout has passed since its first fragment', () => {
    let now = 1000;
    const r = new FragmentReassembler({ timeoutMs: 5000 }, () => now);
    const frags = fragments(576);
    expect(r.add(frags[0]!.message, frags[0]!.bytes, aead).status).toBe('incomplete');
    now += 4999;
    expect(r.expire()).toBe(0);
    now += 1;
    expect(r.expire()).toBe(1);
    expect(r.counters.timedOut).toBe(1);
    // The rest alone no longer completes the message.
    const last = frags.slice(1).map((f) => r.add(f.message, f.bytes, aead));
    expect(last.every((x) => x.status === 'incomplete')).toBe(true);
  });

  it('keeps a request and a response with the same Message ID apart', () => {
    const req = fragments(576);
    const resp = fragments(576, { header: { ...header, initiator: false, response: true }, payloads: payloads.slice(0, 2) });
    const r = new FragmentReassembler();
    const done: string[] = [];
    for (let i = 0; i < Math.max(req.length, resp.length); i++) {
      for (const f of [req[i], resp[i]]) {
        if (!f) continue;
        const x = r.add(f.message, f.bytes, aead);
        if (x.status === 'complete') done.push(x.header.response ? 'response' : 'request');
        expect(x.status).not.toBe('rejected');
      }
    }
    expect(done.sort()).toEqual(['request', 'response']);
  });

  it('rejects a fragment whose exchange type differs from the fragments held, and a message that is not a fragment', () => {
    const frags = fragments(576);
    const other = fragments(576, { header: { ...header, exchangeType: ExchangeType.INFORMATIONAL }, payloads });
    const r = new FragmentReassembler();
    r.add(frags[0]!.message, frags[0]!.bytes, aead);
    expect(r.add(other[1]!.message, other[1]!.bytes, aead)).toEqual({ status: 'rejected', reason: 'inconsistent-header' });
    const plain = encodeMessage(message);
    expect(r.add(decodeMessage(plain), plain, aead)).toEqual({ status: 'rejected', reason: 'not-a-fragment' });
  });

  it('reports a malformed reassembled message with the error the responder must send', () => {
    const critical: Payload = { type: 'unknown', payloadType: 99, body: Buffer.alloc(10), critical: true };
    const frags = fragments(576, { header, payloads: [...payloads, critical] });
    const r = new FragmentReassembler();
    const results = frags.map((f) => r.add(f.message, f.bytes, aead));
    const last = results.at(-1)!;
    expect(last).toMatchObject({ status: 'rejected', reason: 'malformed' });
    if (last.status !== 'rejected') throw new Error('not rejected');
    expect(last.error).toMatchObject({ notifyType: NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD, notifyData: Buffer.from([99]) });
    expect(r.counters.rejected.malformed).toBe(1);
  });
});
