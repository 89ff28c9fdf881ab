/**
 * Proposal selection, RFC 7296 §2.7 and §3.3.6, as responder and initiator,
 * and the KE group decisions of §1.2/§1.3 (INVALID_KE_PAYLOAD).
 */
import { describe, expect, it } from 'vitest';
import { parseProposalList } from '../../../src/ike/proposal/parse.js';
import {
  checkKeGroup,
  checkSelectedProposal,
  initialKeGroup,
  offersKeGroup,
  promoteKeGroup,
  selectProposal,
  withoutKe,
} from '../../../src/ike/proposal/select.js';
import type { SelectionOptions } from '../../../src/ike/proposal/select.js';
import { formatProposal } from '../../../src/ike/proposal/format.js';
import { fromProposalSubstructures, toProposalSubstructures } from '../../../src/ike/proposal/substructure.js';
import type { Proposal, ProposalProtocol, ReceivedProposal, SelectedProposal } from '../../../src/ike/proposal/types.js';
import { EncrId, KeId, ProtocolId, TransformType } from '../../../src/ike/transforms.js';

const IKE = ProtocolId.IKE;
const ESP = ProtocolId.ESP;

function proposals(text: string, protocol: ProposalProtocol): Proposal[] {
  const r = parseProposalList(text, protocol);
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.value.proposals;
}

/** What the peer's SA payload turns into after the codec: numbered 1, 2, … */
function offer(text: string, protocol: ProposalProtocol, spi = Buffer.alloc(protocol === IKE ? 0 : 4, 0xab)): ReceivedProposal[] {
  return fromProposalSubstructures(toProposalSubstructures(proposals(text, protocol), spi));
}

function select(peer: string, ours: string, protocol: ProposalProtocol, options?: SelectionOptions): string | undefined {
  const s = selectProposal(offer(peer, protocol), proposals(ours, protocol), options);
  return s === undefined ? undefined : `${s.number}:${formatProposal(s)}`;
}

describe('responder selection', () => {
  it('an identical proposal is selected with its number', () => {
    expect(select('aes128gcm16-prfsha384-ecp384bp!', 'aes128gcm16-prfsha384-ecp384bp!', IKE)).toBe('1:aes128gcm16-prfsha384-ecp384bp');
  });

  it('one transform of each type is picked from a proposal offering several', () => {
    expect(select('aes256gcm16-aes128gcm16-prfsha512-prfsha384-ecp521-ecp384bp!', 'aes128gcm16-prfsha384-ecp384bp!', IKE)).toBe(
      '1:aes128gcm16-prfsha384-ecp384bp',
    );
  });

  it('a strict proposal with "!" rejects a peer that offers only modp2048', () => {
    expect(select('aes128-sha256-modp2048!', 'aes128gcm16-prfsha384-ecp384bp!', IKE)).toBeUndefined();
  });

  it('without "!" the appended defaults accept a peer that offers aes256-sha256-modp3072', () => {
    expect(select('aes256-sha256-modp3072!', 'aes128gcm16-prfsha384-ecp384bp', IKE)).toBe('1:aes256-sha256-prfsha256-modp3072');
  });

  it('the defaults still refuse a weak peer offer (3des-sha1-modp1024)', () => {
    expect(select('3des-sha1-modp1024!', 'aes128gcm16-prfsha384-ecp384bp', IKE)).toBeUndefined();
  });

  it('a different key length of the same cipher does not match', () => {
    expect(select('aes256gcm16-prfsha384-ecp384bp!', 'aes128gcm16-prfsha384-ecp384bp!', IKE)).toBeUndefined();
    expect(select('aes256-sha256-ecp256!', 'aes128-sha256-ecp256!', IKE)).toBeUndefined();
  });

  it('a different ICV length of AES-GCM does not match', () => {
    expect(select('aes128gcm12-prfsha384-ecp384bp!', 'aes128gcm16-prfsha384-ecp384bp!', IKE)).toBeUndefined();
  });

  it('by default our order decides, like strongSwan (prefer_configured_proposals = yes)', () => {
    const peer = 'aes256-sha256-ecp256,aes128gcm16-prfsha384-ecp384bp!';
    const ours = 'aes128gcm16-prfsha384-ecp384bp,aes256-sha256-ecp256!';
    expect(select(peer, ours, IKE)).toBe('2:aes128gcm16-prfsha384-ecp384bp');
    expect(select(peer, ours, IKE, { preferLocal: false })).toBe('1:aes256-sha256-prfsha256-ecp256');
  });

  it('inside a proposal, the preferring side also decides the order of algorithms', () => {
    const peer = 'aes128gcm16-aes256gcm16-prfsha256-prfsha384-ecp256-ecp384!';
    const ours = 'aes256gcm16-aes128gcm16-prfsha384-prfsha256-ecp384-ecp256!';
    expect(select(peer, ours, IKE)).toBe('1:aes256gcm16-prfsha384-ecp384');
    expect(select(peer, ours, IKE, { preferLocal: false })).toBe('1:aes128gcm16-prfsha256-ecp256');
  });

  it('the first acceptable of several peer proposals is found past unacceptable ones', () => {
    expect(select('aes128-sha1-modp1024,aes256-sha512-modp4096,aes128gcm16-prfsha384-ecp384bp!', 'aes128gcm16-prfsha384-ecp384bp!', IKE)).toBe(
      '3:aes128gcm16-prfsha384-ecp384bp',
    );
  });

  it('ESN: a peer offering esn and noesn gets noesn from a default ESP proposal', () => {
    expect(select('aes128gcm16-esn-noesn!', 'aes128gcm16!', ESP)).toBe('1:aes128gcm16-noesn');
  });

  it('ESN: a peer requiring ESN matches only a proposal that allows it', () => {
    expect(select('aes128gcm16-esn!', 'aes128gcm16!', ESP)).toBeUndefined();
    expect(select('aes128gcm16-esn!', 'aes128gcm16-esn-noesn!', ESP)).toBe('1:aes128gcm16-esn');
  });

  it('ESP in IKE_AUTH ignores the PFS group (skipKe)', () => {
    const peer = fromProposalSubstructures(toProposalSubstructures(withoutKe(proposals('aes128gcm16-ecp384bp!', ESP)), Buffer.alloc(4)));
    expect(peer[0]?.transforms.some((t) => t.type === TransformType.KE)).toBe(false);
    const s = selectProposal(peer, proposals('aes128gcm16-ecp384bp!', ESP), { skipKe: true });
    expect(s && formatProposal(s)).toBe('aes128gcm16-noesn');
    // Without skipKe our PFS group is required and the KE-less offer fails.
    expect(selectProposal(peer, proposals('aes128gcm16-ecp384bp!', ESP))).toBeUndefined();
  });

  it('ESP in CREATE_CHILD_SA: the PFS group must match unless one side allows none', () => {
    expect(select('aes128gcm16-ecp384bp!', 'aes128gcm16-ecp384bp!', ESP)).toBe('1:aes128gcm16-ecp384bp-noesn');
    expect(select('aes128gcm16-ecp256!', 'aes128gcm16-ecp384bp!', ESP)).toBeUndefined();
    expect(select('aes128gcm16!', 'aes128gcm16-ecp384bp!', ESP)).toBeUndefined();
    expect(select('aes128gcm16!', 'aes128gcm16-ecp384bp-none!', ESP)).toBe('1:aes128gcm16-noesn');
    expect(select('aes128gcm16-ecp384bp-none!', 'aes128gcm16-none!', ESP)).toBe('1:aes128gcm16-noesn');
  });

  it("the selected proposal keeps the peer's SPI", () => {
    const s = selectProposal(offer('aes128gcm16-ecp384bp!', ESP, Buffer.from('c0ffee01', 'hex')), proposals('aes128gcm16-ecp384bp!', ESP));
    expect(s?.spi.toString('hex')).toBe('c0ffee01');
  });

  it('a proposal with a transform type tunsec does not understand is skipped, the next one is used', () => {
    const subs = toProposalSubstructures(proposals('aes128gcm16-prfsha384-ecp384bp,aes128gcm16-prfsha384-ecp384bp!', IKE));
    subs[0]?.transforms.push({ type: 6, id: 36, attributes: [] }); // ADDKE1 (RFC 9370)
    const received = fromProposalSubstructures(subs);
    expect(received[0]?.unacceptable).toBe('transform type 6 (ADDKE1) is not understood');
    expect(selectProposal(received, proposals('aes128gcm16-prfsha384-ecp384bp!', IKE))?.number).toBe(2);
  });

  it('the KE group of the received KE payload is preferred when acceptable (no INVALID_KE_PAYLOAD round trip)', () => {
    const peer = 'aes128gcm16-prfsha384-ecp256-ecp384bp!';
    const ours = 'aes128gcm16-prfsha384-ecp384bp-ecp256!';
    expect(select(peer, ours, IKE)).toBe('1:aes128gcm16-prfsha384-ecp384bp');
    expect(select(peer, ours, IKE, { preferKeGroup: KeId.ECP_256 })).toBe('1:aes128gcm16-prfsha384-ecp256');
    expect(select(peer, ours, IKE, { preferKeGroup: KeId.CURVE_25519 })).toBe('1:aes128gcm16-prfsha384-ecp384bp');
  });
});

describe('key exchange group decisions', () => {
  const selected = (peer: string, ours: string, protocol: ProposalProtocol, options?: SelectionOptions): SelectedProposal => {
    const s = selectProposal(offer(peer, protocol), proposals(ours, protocol), options);
    if (s === undefined) throw new Error('no proposal selected');
    return s;
  };

  it('a KE payload of the selected group is accepted', () => {
    expect(checkKeGroup(selected('aes128gcm16-prfsha384-ecp384bp!', 'aes128gcm16-prfsha384-ecp384bp!', IKE), KeId.ECP_384_BP)).toEqual({
      action: 'accept',
      group: KeId.ECP_384_BP,
    });
  });

  it('a KE payload of another group is answered with INVALID_KE_PAYLOAD naming the selected group', () => {
    const s = selected('aes128gcm16-prfsha384-modp2048-ecp384bp!', 'aes128gcm16-prfsha384-ecp384bp!', IKE, { preferKeGroup: KeId.MODP_2048 });
    expect(checkKeGroup(s, KeId.MODP_2048)).toEqual({ action: 'invalid-ke', requestGroup: KeId.ECP_384_BP });
  });

  it('a CREATE_CHILD_SA with a PFS proposal but no KE payload asks for the group', () => {
    expect(checkKeGroup(selected('aes128gcm16-ecp384bp!', 'aes128gcm16-ecp384bp!', ESP), undefined)).toEqual({
      action: 'invalid-ke',
      requestGroup: KeId.ECP_384_BP,
    });
  });

  it('a selected proposal without KE needs no KE payload', () => {
    expect(checkKeGroup(selected('aes128gcm16!', 'aes128gcm16-ecp384bp-none!', ESP), KeId.ECP_384_BP)).toEqual({ action: 'no-ke' });
  });

  it('the initiator starts with the first group, checks a requested group and moves it to the front', () => {
    const ours = proposals('aes128gcm16-prfsha384-ecp384bp-ecp256,aes256-sha256-modp3072!', IKE);
    expect(initialKeGroup(ours)).toBe(KeId.ECP_384_BP);
    expect(offersKeGroup(ours, KeId.MODP_3072)).toBe(true);
    expect(offersKeGroup(ours, KeId.MODP_2048)).toBe(false);
    expect(promoteKeGroup(ours, KeId.ECP_256).map(formatProposal)).toEqual(['aes128gcm16-prfsha384-ecp256-ecp384bp', 'aes256-sha256-prfsha256-modp3072']);
    expect(promoteKeGroup(ours, KeId.MODP_3072).map(formatProposal)).toEqual(['aes256-sha256-prfsha256-modp3072', 'aes128gcm16-prfsha384-ecp384bp-ecp256']);
  });

  it('withoutKe strips KE for the IKE_AUTH SA payload and sends proposals that became equal once', () => {
    expect(withoutKe(proposals('aes128gcm16-ecp384bp,aes128gcm16-ecp256!', ESP)).map(formatProposal)).toEqual(['aes128gcm16-noesn']);
  });
});

describe('initiator check of the reply', () => {
  const ours = proposals('aes256gcm16-aes128gcm16-prfsha384-ecp384bp,aes256-sha256-ecp256!', IKE);
  const reply = (text: string, number = 1): ReceivedProposal[] =>
    fromProposalSubstructures(toProposalSubstructures(proposals(text, IKE)).map((s) => ({ ...s, number })));

  it('a reply choosing one transform of each type from the named proposal is accepted', () => {
    const r = checkSelectedProposal(ours, reply('aes128gcm16-prfsha384-ecp384bp!'));
    expect(r.ok && formatProposal(r.selected)).toBe('aes128gcm16-prfsha384-ecp384bp');
    const r2 = checkSelectedProposal(ours, reply('aes256-sha256-ecp256!', 2));
    expect(r2.ok && formatProposal(r2.selected)).toBe('aes256-sha256-prfsha256-ecp256');
  });

  it('a reply with two proposals is rejected', () => {
    expect(checkSelectedProposal(ours, reply('aes128gcm16-prfsha384-ecp384bp,aes256gcm16-prfsha384-ecp384bp!'))).toEqual({
      ok: false,
      error: 'the reply carries 2 proposals, exactly one is allowed (RFC 7296 §2.7)',
    });
  });

  it('a reply with two transforms of one type is rejected', () => {
    expect(checkSelectedProposal(ours, reply('aes256gcm16-aes128gcm16-prfsha384-ecp384bp!'))).toEqual({
      ok: false,
      error: 'the reply selects 2 ENCR transforms, exactly one is allowed',
    });
  });

  it('a reply naming a transform we did not offer in that proposal is rejected', () => {
    expect(checkSelectedProposal(ours, reply('aes128gcm16-prfsha256-ecp384bp!'))).toEqual({
      ok: false,
      error: 'the reply selects PRF HMAC_SHA2_256, which proposal 1 did not offer',
    });
    expect(checkSelectedProposal(ours, reply('aes256-sha256-ecp256!', 1))).toMatchObject({ ok: false });
  });

  it('a reply with another key length than offered is rejected', () => {
    expect(checkSelectedProposal(ours, reply('aes192gcm16-prfsha384-ecp384bp!'))).toEqual({
      ok: false,
      error: 'the reply selects ENCR AES_GCM_16 (192 bits), which proposal 1 did not offer',
    });
  });

  it('a reply leaving out a type we offered is rejected', () => {
    const noKe = reply('aes128gcm16-prfsha384-ecp384bp!');
    const stripped = noKe.map((p) => ({ ...p, transforms: p.transforms.filter((t) => t.type !== TransformType.KE) }));
    expect(checkSelectedProposal(ours, stripped)).toEqual({
      ok: false,
      error: 'the reply selects no KE transform, proposal 1 offered one',
    });
  });

  it('a reply naming a proposal number we never sent is rejected', () => {
    expect(checkSelectedProposal(ours, reply('aes128gcm16-prfsha384-ecp384bp!', 3))).toEqual({
      ok: false,
      error: 'the reply selects proposal 3, we offered 2',
    });
  });

  it('an ESP reply in IKE_AUTH must not carry KE, and may omit it', () => {
    const esp = withoutKe(proposals('aes128gcm16-ecp384bp!', ESP));
    const ok = fromProposalSubstructures(toProposalSubstructures(proposals('aes128gcm16-noesn!', ESP), Buffer.alloc(4, 1)));
    const r = checkSelectedProposal(esp, ok, { skipKe: true });
    expect(r.ok && formatProposal(r.selected)).toBe('aes128gcm16-noesn');
    expect(r.ok && r.selected.spi.toString('hex')).toBe('01010101');
  });

  it('an ESP reply with ESN when we offered only noesn is rejected', () => {
    const esp = proposals('aes128gcm16!', ESP);
    const bad = fromProposalSubstructures(toProposalSubstructures(proposals('aes128gcm16-esn!', ESP), Buffer.alloc(4)));
    expect(checkSelectedProposal(esp, bad)).toEqual({ ok: false, error: 'the reply selects ESN ESN, which proposal 1 did not offer' });
  });

  it('an ESP reply may drop an optional PFS group', () => {
    const esp = proposals('aes128gcm16-ecp384bp-none!', ESP);
    const noPfs = fromProposalSubstructures(toProposalSubstructures(proposals('aes128gcm16!', ESP), Buffer.alloc(4)));
    const r = checkSelectedProposal(esp, noPfs);
    expect(r.ok && r.selected.transforms.map((t) => t.type)).toEqual([TransformType.ENCR, TransformType.ESN]);
  });

  it('the selected AES transform keeps its key length', () => {
    const r = checkSelectedProposal(ours, reply('aes256gcm16-prfsha384-ecp384bp!'));
    expect(r.ok && r.selected.transforms[0]).toEqual({ type: TransformType.ENCR, id: EncrId.AES_GCM_16, keyLength: 256 });
  });
});
