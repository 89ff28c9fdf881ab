/**
 * RFC 7383 reassembly bounded over all IKE SAs (daemon.limits.fragments_total_bytes):
 * the process-wide ReassemblyBudget, released on completion, restart, timeout and clear().
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AES_GCM_16_128 } from '../../src/crypto/aead.js';
import { ExchangeType, FragmentReassembler, PayloadType, decodeMessage, fragmentMessage, type IkeMessage } from '../../src/ike/codec/index.js';
import { ReassemblyBudget } from '../../src/ike/codec/fragments.js';

const aead = AES_GCM_16_128.createContext(randomBytes(20));

function fragmentsOf(messageId: number, size = 3000): { bytes: Buffer; message: IkeMessage }[] {
  const message: IkeMessage = {
    header: {
      spiI: randomBytes(8),
      spiR: randomBytes(8),
      exchangeType: ExchangeType.IKE_AUTH,
      initiator: true,
      response: false,
      higherVersion: false,
      messageId,
    },
    payloads: [{ type: PayloadType.CERT, encoding: 4, data: randomBytes(size) }],
  };
  return fragmentMessage(message, { aead, maxMessageSize: 576 }).map((bytes) => ({ bytes, message: decodeMessage(bytes) }));
}

describe('IKE fragment reassembly across all IKE SAs', () => {
  it('refuses fragments once the global byte budget is used up, whichever SA holds the octets', () => {
    const budget = new ReassemblyBudget(4000);
    const sas = [0, 1, 2].map(() => new FragmentReassembler({}, Date.now, budget));
    const msgs = [0, 1, 2].map((i) => fragmentsOf(1 + i));
    // every SA takes all but the last fragment of its message: 3 × ~2.5 KB > 4000
    const results = sas.flatMap((r, i) => msgs[i]!.slice(0, -1).map((f) => r.add(f.message, f.bytes, aead)));
    const refused = sas.reduce((n, r) => n + r.counters.rejected['global-limit'], 0);
    expect(refused).toBeGreaterThan(0);
    expect(results.filter((x) => x.status === 'rejected').every((x) => x.status === 'rejected' && x.reason === 'global-limit')).toBe(true);
    expect(budget.bytes(Date.now())).toBeLessThanOrEqual(4000);
  });

  it('gives the octets back when a message completes or its SA clears its reassembly', () => {
    const budget = new ReassemblyBudget(1 << 20);
    const a = new FragmentReassembler({}, Date.now, budget);
    const frags = fragmentsOf(1);
    for (const f of frags.slice(0, -1)) a.add(f.message, f.bytes, aead);
    expect(budget.bytes(Date.now())).toBeGreaterThan(2000);
    expect(a.add(frags.at(-1)!.message, frags.at(-1)!.bytes, aead).status).toBe('complete');
    expect(budget.bytes(Date.now())).toBe(0);

    const b = new FragmentReassembler({}, Date.now, budget);
    const more = fragmentsOf(2);
    for (const f of more.slice(0, -1)) b.add(f.message, f.bytes, aead);
    expect(budget.bytes(Date.now())).toBeGreaterThan(0);
    b.clear();
    expect(budget.bytes(Date.now())).toBe(0);
  });

  it('stops counting the octets of an abandoned reassembly once its timeout has passed', () => {
    let now = 1_000_000;
    const budget = new ReassemblyBudget(1 << 20);
    const r = new FragmentReassembler({ timeoutMs: 5000 }, () => now, budget);
    const frags = fragmentsOf(1);
    r.add(frags[0]!.message, frags[0]!.bytes, aead);
    expect(budget.bytes(now)).toBeGreaterThan(0);
    now += 5000; // the SA is gone and never calls expire(): the budget forgets by itself
    expect(budget.bytes(now)).toBe(0);
  });
});
