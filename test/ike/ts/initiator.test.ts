/**
 * The initiator's proposal (with the triggering packet first, RFC 7296 §2.9)
 * and its check of the responder's answer: only narrowing is allowed.
 */
import { describe, expect, it } from 'vitest';
import { addressRange, prefixSelector } from '../../../src/ike/codec/build.js';
import type { TrafficSelector as PayloadSelector } from '../../../src/ike/codec/payloads/ts.js';
import { type InitiatorTsCheck, checkInitiatorTs, initiatorTs } from '../../../src/ike/ts/initiator.js';
import { rangesToPayload } from '../../../src/ike/ts/payload.js';
import type { TsRange } from '../../../src/ike/ts/range.js';
import { selectResponderTs } from '../../../src/ike/ts/responder.js';
import { cfg, show, ts } from './helpers.js';

const ME = '192.0.2.10';
const PEER = '198.51.100.1';

const sent = { tsi: ts('10.8.0.0/16'), tsr: ts('10.0.0.0/16') };

function answer(tsi: PayloadSelector[], tsr: PayloadSelector[], proposal: { tsi: TsRange[]; tsr: TsRange[] } = sent): InitiatorTsCheck {
  return checkInitiatorTs(proposal, { tsi, tsr });
}

describe('the proposal', () => {
  it('TSi is local_ts and TSr remote_ts, dynamic resolved to the IKE addresses', () => {
    const p = initiatorTs({ localConfig: cfg('dynamic'), remoteConfig: cfg('10.0.0.0/16'), localAddr: ME, remoteAddr: PEER });
    expect(show(p.tsi)).toEqual([`${ME}/32`]);
    expect(show(p.tsr)).toEqual(['10.0.0.0/16']);
  });

  it('an acquire’s packet goes first in TSi and TSr when the policy covers it', () => {
    const p = initiatorTs({
      localConfig: cfg('10.8.0.0/16'),
      remoteConfig: cfg('10.0.0.0/16'),
      localAddr: ME,
      remoteAddr: PEER,
      packet: {
        local: { protocol: 6, startAddress: '10.8.1.7', endAddress: '10.8.1.7', startPort: 40000, endPort: 40000 },
        remote: { protocol: 6, startAddress: '10.0.1.20', endAddress: '10.0.1.20', startPort: 443, endPort: 443 },
      },
    });
    expect(show(p.tsi)).toEqual(['10.8.1.7/32[tcp/40000]', '10.8.0.0/16']);
    expect(show(p.tsr)).toEqual(['10.0.1.20/32[tcp/443]', '10.0.0.0/16']);
  });

  it('a packet outside the policy is not proposed', () => {
    const p = initiatorTs({
      localConfig: cfg('10.8.0.0/16'),
      remoteConfig: cfg('10.0.0.0/16'),
      localAddr: ME,
      remoteAddr: PEER,
      packet: {
        local: { protocol: 6, startAddress: '10.9.1.7', endAddress: '10.9.1.7', startPort: 40000, endPort: 40000 },
        remote: { protocol: 6, startAddress: '10.0.1.20', endAddress: '10.0.1.20', startPort: 443, endPort: 443 },
      },
    });
    expect(show(p.tsi)).toEqual(['10.8.0.0/16']);
  });
});

describe('checking the responder’s answer', () => {
  it('the same selectors back are accepted and not narrowed', () => {
    const r = answer([prefixSelector('10.8.0.0/16')], [prefixSelector('10.0.0.0/16')]);
    expect(r).toMatchObject({ ok: true, narrowed: false });
  });

  it('a narrower answer is accepted and reported as narrowed (more traffic needs another CHILD_SA)', () => {
    const r = answer([prefixSelector('10.8.0.0/16')], [prefixSelector('10.0.1.0/24')]);
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(r.narrowed).toBe(true);
      expect(show(r.tsr)).toEqual(['10.0.1.0/24']);
    }
  });

  it('an answer wider than the proposal is an error: the SA must be deleted', () => {
    const r = answer([prefixSelector('10.8.0.0/16')], [prefixSelector('10.0.0.0/8')]);
    expect(r).toEqual({ ok: false, error: "the responder's TSr 10.0.0.0/8 is not within the proposed 10.0.0.0/16" });
  });

  it('an answer with a protocol we did not narrow to is fine only inside what we sent', () => {
    expect(answer([prefixSelector('10.8.0.0/16')], [prefixSelector('10.0.0.0/16', { ipProtocolId: 6 })]).ok).toBe(true);
    const tcpOnly = { tsi: ts('10.8.0.0/16[tcp]'), tsr: ts('10.0.0.0/16') };
    expect(answer([prefixSelector('10.8.0.0/16')], [prefixSelector('10.0.0.0/16')], tcpOnly).ok).toBe(false);
  });

  it('an answer merging two proposed ranges into one is still within the proposal', () => {
    const split = { tsi: ts('10.8.0.0/17, 10.8.128.0/17'), tsr: ts('10.0.0.0/16') };
    expect(answer([prefixSelector('10.8.0.0/16')], [prefixSelector('10.0.0.0/16')], split)).toMatchObject({ ok: true, narrowed: false });
  });

  it('an empty answer or one with unknown selector types is an error', () => {
    expect(answer([], [prefixSelector('10.0.0.0/16')])).toEqual({ ok: false, error: "the responder's TSi is empty" });
    const seclabel: PayloadSelector = { tsType: 'unknown', selectorType: 10, ipProtocolId: 0, data: Buffer.alloc(4) };
    expect(answer([prefixSelector('10.8.0.0/16'), seclabel], [prefixSelector('10.0.0.0/16')]).ok).toBe(false);
  });

  it('the packet-first proposal, narrowed by our own responder, passes the initiator check', () => {
    const packet = {
      local: { protocol: 6, startAddress: '10.8.1.7', endAddress: '10.8.1.7', startPort: 40000, endPort: 40000 },
      remote: { protocol: 6, startAddress: '10.0.1.20', endAddress: '10.0.1.20', startPort: 443, endPort: 443 },
    };
    const proposal = initiatorTs({ localConfig: cfg('10.8.0.0/16'), remoteConfig: cfg('10.0.0.0/16'), localAddr: ME, remoteAddr: PEER, packet });
    const decision = selectResponderTs({
      tsi: rangesToPayload(proposal.tsi),
      tsr: rangesToPayload(proposal.tsr),
      localConfig: cfg('10.0.1.0/24'),
      remoteConfig: cfg('10.8.0.0/16'),
      localAddr: PEER,
      remoteAddr: ME,
    });
    if ('error' in decision) throw new Error(decision.reason);
    const check = checkInitiatorTs(proposal, { tsi: rangesToPayload(decision.tsi), tsr: rangesToPayload(decision.tsr) });
    expect(check).toMatchObject({ ok: true, narrowed: true });
    expect(decision.packetCovered).toBe(true);
  });

  it('a single-host answer from a strongSwan peer with a port restriction is accepted', () => {
    const r = answer([addressRange('10.8.1.7')], [addressRange('10.0.1.20', '10.0.1.20', { ipProtocolId: 17, startPort: 53, endPort: 53 })]);
    expect(r).toMatchObject({ ok: true, narrowed: true });
  });
});
