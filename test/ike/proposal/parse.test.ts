/**
 * Proposal strings in strongSwan syntax (docs.strongswan.org, "Algorithm
 * Proposals (Cipher Suites)"), including the mission's own strings.
 */
import { describe, expect, it } from 'vitest';
import { defaultProposals, parseProposal, parseProposalList } from '../../../src/ike/proposal/parse.js';
import type { Proposal, ProposalProtocol } from '../../../src/ike/proposal/types.js';
import { EncrId, EsnId, IntegId, KeId, PrfId, ProtocolId, TransformType } from '../../../src/ike/transforms.js';

const { ENCR, PRF, INTEG, KE, ESN } = TransformType;
const IKE = ProtocolId.IKE;
const ESP = ProtocolId.ESP;
const AH = ProtocolId.AH;

function list(text: string | string[], protocol: ProposalProtocol) {
  const r = parseProposalList(text, protocol);
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.value;
}

function one(text: string, protocol: ProposalProtocol): Proposal {
  const r = parseProposal(text, protocol);
  if (!r.ok) throw new Error(r.error);
  return r.proposal;
}

function errorsOf(text: string | string[], protocol: ProposalProtocol): string[] {
  const r = parseProposalList(text, protocol);
  return r.ok ? [] : r.errors;
}

const AES128GCM16 = { type: ENCR, id: EncrId.AES_GCM_16, keyLength: 128 };
const PRFSHA384 = { type: PRF, id: PrfId.HMAC_SHA2_384 };
const ECP384BP = { type: KE, id: KeId.ECP_384_BP };
const NOESN = { type: ESN, id: EsnId.NO_ESN };

describe('the mission strings', () => {
  it("'aes128gcm16-prfsha384-ecp384bp' is AES-GCM-16/128, PRF HMAC-SHA-384 and group 29, followed by the defaults", () => {
    const l = list('aes128gcm16-prfsha384-ecp384bp', IKE);
    expect(l.strict).toBe(false);
    expect(l.configured).toEqual([{ protocol: IKE, transforms: [AES128GCM16, PRFSHA384, ECP384BP] }]);
    expect(l.proposals).toEqual([...l.configured, ...defaultProposals(IKE)]);
  });

  it("'aes128gcm16-prfsha384-ecp384bp!' is strict: only that proposal", () => {
    const l = list('aes128gcm16-prfsha384-ecp384bp!', IKE);
    expect(l.strict).toBe(true);
    expect(l.proposals).toEqual([{ protocol: IKE, transforms: [AES128GCM16, PRFSHA384, ECP384BP] }]);
  });

  it("'aes128gcm128-ecp384bp-noesn' for ESP is the same cipher under its ICV-bits alias", () => {
    expect(one('aes128gcm128-ecp384bp-noesn', ESP)).toEqual({ protocol: ESP, transforms: [AES128GCM16, ECP384BP, NOESN] });
  });

  it("'aes128gcm16-ecp384bp' for ESP gets noesn when no ESN keyword is given", () => {
    expect(one('aes128gcm16-ecp384bp', ESP)).toEqual({ protocol: ESP, transforms: [AES128GCM16, ECP384BP, NOESN] });
  });

  it("'aes256-sha512-modp4096' for IKE derives PRF HMAC-SHA2-512 from the integrity algorithm", () => {
    expect(one('aes256-sha512-modp4096', IKE).transforms).toEqual([
      { type: ENCR, id: EncrId.AES_CBC, keyLength: 256 },
      { type: INTEG, id: IntegId.HMAC_SHA2_512_256 },
      { type: PRF, id: PrfId.HMAC_SHA2_512 },
      { type: KE, id: KeId.MODP_4096 },
    ]);
  });

  it("'aes256-sha256-prfsha256-ecp256,aes128gcm16-prfsha256-x25519' is two proposals in that order", () => {
    const l = list('aes256-sha256-prfsha256-ecp256,aes128gcm16-prfsha256-x25519!', IKE);
    expect(l.proposals).toEqual([
      {
        protocol: IKE,
        transforms: [
          { type: ENCR, id: EncrId.AES_CBC, keyLength: 256 },
          { type: INTEG, id: IntegId.HMAC_SHA2_256_128 },
          { type: PRF, id: PrfId.HMAC_SHA2_256 },
          { type: KE, id: KeId.ECP_256 },
        ],
      },
      { protocol: IKE, transforms: [AES128GCM16, { type: PRF, id: PrfId.HMAC_SHA2_256 }, { type: KE, id: KeId.CURVE_25519 }] },
    ]);
  });
});

describe('keywords', () => {
  it.each([
    ['aes128', EncrId.AES_CBC, 128],
    ['aes', EncrId.AES_CBC, 128],
    ['aes192', EncrId.AES_CBC, 192],
    ['aes256ctr', EncrId.AES_CTR, 256],
    ['aes128ccm8', EncrId.AES_CCM_8, 128],
    ['aes128ccm64', EncrId.AES_CCM_8, 128],
    ['aes192ccm12', EncrId.AES_CCM_12, 192],
    ['aes192ccm96', EncrId.AES_CCM_12, 192],
    ['aes256ccm16', EncrId.AES_CCM_16, 256],
    ['aes256ccm128', EncrId.AES_CCM_16, 256],
    ['aes128gcm8', EncrId.AES_GCM_8, 128],
    ['aes128gcm64', EncrId.AES_GCM_8, 128],
    ['aes256gcm12', EncrId.AES_GCM_12, 256],
    ['aes256gcm96', EncrId.AES_GCM_12, 256],
    ['aes256gcm16', EncrId.AES_GCM_16, 256],
    ['aes256gcm', EncrId.AES_GCM_16, 256],
    ['camellia192', EncrId.CAMELLIA_CBC, 192],
    ['camellia128ctr', EncrId.CAMELLIA_CTR, 128],
  ])("'%s' is ENCR %i with a %i-bit key", (word, id, bits) => {
    const integrity = /gcm|ccm/.test(word) ? '' : '-sha256';
    expect(one(`${word}${integrity}`, ESP).transforms[0]).toEqual({ type: ENCR, id, keyLength: bits });
  });

  it.each([
    ['3des', EncrId.TRIPLE_DES],
    ['null', EncrId.NULL],
  ])("'%s' is ENCR %i without a key length", (word, id) => {
    expect(one(`${word}-sha256`, ESP).transforms[0]).toEqual({ type: ENCR, id });
  });

  it('chacha20poly1305 is an AEAD without a key length', () => {
    expect(one('chacha20poly1305', ESP).transforms).toEqual([{ type: ENCR, id: EncrId.CHACHA20_POLY1305 }, NOESN]);
  });

  it('aes128gmac is the NULL-encryption GMAC cipher in ESP and the GMAC integrity algorithm in AH', () => {
    expect(one('aes128gmac', ESP).transforms[0]).toEqual({ type: ENCR, id: EncrId.NULL_AUTH_AES_GMAC, keyLength: 128 });
    expect(one('aes256gmac', AH).transforms[0]).toEqual({ type: INTEG, id: IntegId.AES_256_GMAC });
  });

  it.each([
    ['md5', IntegId.HMAC_MD5_96, PrfId.HMAC_MD5],
    ['md5_128', IntegId.HMAC_MD5_128, PrfId.HMAC_MD5],
    ['sha1', IntegId.HMAC_SHA1_96, PrfId.HMAC_SHA1],
    ['sha', IntegId.HMAC_SHA1_96, PrfId.HMAC_SHA1],
    ['sha1_160', IntegId.HMAC_SHA1_160, PrfId.HMAC_SHA1],
    ['aesxcbc', IntegId.AES_XCBC_96, PrfId.AES128_XCBC],
    ['aescmac', IntegId.AES_CMAC_96, PrfId.AES128_CMAC],
    ['sha256', IntegId.HMAC_SHA2_256_128, PrfId.HMAC_SHA2_256],
    ['sha2_256', IntegId.HMAC_SHA2_256_128, PrfId.HMAC_SHA2_256],
    ['sha384', IntegId.HMAC_SHA2_384_192, PrfId.HMAC_SHA2_384],
    ['sha2_384', IntegId.HMAC_SHA2_384_192, PrfId.HMAC_SHA2_384],
    ['sha512', IntegId.HMAC_SHA2_512_256, PrfId.HMAC_SHA2_512],
    ['sha2_512', IntegId.HMAC_SHA2_512_256, PrfId.HMAC_SHA2_512],
  ])("'%s' is INTEG %i and, with no prf keyword, IKE derives PRF %i from it", (word, integ, prf) => {
    expect(one(`aes128-${word}-ecp256`, IKE).transforms).toEqual([
      { type: ENCR, id: EncrId.AES_CBC, keyLength: 128 },
      { type: INTEG, id: integ },
      { type: PRF, id: prf },
      { type: KE, id: KeId.ECP_256 },
    ]);
  });

  it.each([
    ['prfmd5', PrfId.HMAC_MD5],
    ['prfsha1', PrfId.HMAC_SHA1],
    ['prfaesxcbc', PrfId.AES128_XCBC],
    ['prfaescmac', PrfId.AES128_CMAC],
    ['prfsha256', PrfId.HMAC_SHA2_256],
    ['prfsha384', PrfId.HMAC_SHA2_384],
    ['prfsha512', PrfId.HMAC_SHA2_512],
  ])("'%s' is PRF %i", (word, id) => {
    expect(one(`aes128gcm16-${word}-ecp256`, IKE).transforms[1]).toEqual({ type: PRF, id });
  });

  it.each([
    ['modp768', 1],
    ['modp1024', 2],
    ['modp1536', 5],
    ['modp2048', 14],
    ['modp3072', 15],
    ['modp4096', 16],
    ['modp6144', 17],
    ['modp8192', 18],
    ['ecp256', 19],
    ['ecp384', 20],
    ['ecp521', 21],
    ['modp1024s160', 22],
    ['modp2048s224', 23],
    ['modp2048s256', 24],
    ['ecp192', 25],
    ['ecp224', 26],
    ['ecp224bp', 27],
    ['ecp256bp', 28],
    ['ecp384bp', 29],
    ['ecp512bp', 30],
    ['curve25519', 31],
    ['x25519', 31],
    ['curve448', 32],
    ['x448', 32],
  ])("'%s' is key exchange group %i", (word, id) => {
    expect(one(`aes128gcm16-prfsha256-${word}`, IKE).transforms[2]).toEqual({ type: KE, id });
  });

  it('several algorithms of one kind are alternatives in the order written', () => {
    expect(one('aes256gcm16-aes128gcm16-prfsha384-prfsha256-ecp384-modp3072', IKE).transforms).toEqual([
      { type: ENCR, id: EncrId.AES_GCM_16, keyLength: 256 },
      AES128GCM16,
      PRFSHA384,
      { type: PRF, id: PrfId.HMAC_SHA2_256 },
      { type: KE, id: KeId.ECP_384 },
      { type: KE, id: KeId.MODP_3072 },
    ]);
  });

  it('the order of algorithms of different kinds does not matter', () => {
    expect(one('ecp384bp-prfsha384-aes128gcm16', IKE)).toEqual(one('aes128gcm16-prfsha384-ecp384bp', IKE));
  });

  it('esn and noesn together offer both, in the order written', () => {
    expect(one('aes128gcm16-esn-noesn', ESP).transforms).toEqual([AES128GCM16, { type: ESN, id: EsnId.ESN }, NOESN]);
  });

  it("'none' in an ESP proposal makes PFS optional", () => {
    expect(one('aes128gcm16-ecp384bp-none', ESP).transforms).toEqual([AES128GCM16, ECP384BP, { type: KE, id: KeId.NONE }, NOESN]);
  });

  it('spaces around proposals and algorithms are ignored', () => {
    expect(list(' aes128gcm16 - prfsha384-ecp384bp , aes256gcm16-prfsha384-ecp384 !', IKE).proposals).toHaveLength(2);
  });

  it('a YAML list of proposals is the same as the comma-separated string', () => {
    expect(list(['aes128gcm16-prfsha384-ecp384bp', 'aes256-sha384-ecp384!'], IKE)).toMatchObject({
      strict: true,
      proposals: list('aes128gcm16-prfsha384-ecp384bp,aes256-sha384-ecp384!', IKE).proposals,
    });
  });
});

describe('default proposals', () => {
  it("the keyword 'default' stands for the default proposals and nothing more is appended", () => {
    const l = list('default', IKE);
    expect(l.proposals).toEqual(defaultProposals(IKE));
    expect(l.proposals).toHaveLength(2);
  });

  it("'default' can follow explicit proposals", () => {
    const l = list('aes128gcm16-prfsha384-ecp384bp,default', IKE);
    expect(l.proposals).toEqual([one('aes128gcm16-prfsha384-ecp384bp', IKE), ...defaultProposals(IKE)]);
  });

  it('the ESP defaults are AEAD first, offer PFS groups optionally and no ESN', () => {
    const [aead, classic] = defaultProposals(ESP);
    expect(aead?.transforms[0]).toEqual(AES128GCM16);
    expect(aead?.transforms).toContainEqual({ type: KE, id: KeId.NONE });
    expect(aead?.transforms.at(-1)).toEqual(NOESN);
    expect(classic?.transforms[0]).toEqual({ type: ENCR, id: EncrId.AES_CBC, keyLength: 128 });
  });

  it('the defaults offer nothing below 128-bit strength', () => {
    const all = [...defaultProposals(IKE), ...defaultProposals(ESP)].flatMap((p) => p.transforms);
    expect(all).not.toContainEqual({ type: INTEG, id: IntegId.HMAC_SHA1_96 });
    expect(all).not.toContainEqual({ type: ENCR, id: EncrId.TRIPLE_DES });
    expect(all).not.toContainEqual({ type: KE, id: KeId.MODP_1024 });
  });
});

describe('errors', () => {
  it('an unknown keyword is named together with its proposal', () => {
    expect(errorsOf('aes128gcm17-prfsha384', IKE)).toEqual(["unknown algorithm 'aes128gcm17' in proposal 'aes128gcm17-prfsha384'"]);
  });

  it('an unknown keyword in the second proposal names the second proposal', () => {
    expect(errorsOf('aes128gcm16-prfsha384-ecp384bp,aes256-sha384-ecp385', IKE)).toEqual(["unknown algorithm 'ecp385' in proposal 'aes256-sha384-ecp385'"]);
  });

  it('every bad proposal of a list is reported', () => {
    expect(errorsOf('aes128gcm17-ecp384bp,aes128gcm16-sha999', ESP)).toEqual([
      "unknown algorithm 'aes128gcm17' in proposal 'aes128gcm17-ecp384bp'",
      "unknown algorithm 'sha999' in proposal 'aes128gcm16-sha999'",
    ]);
  });

  it('upper-case keywords are pointed at their lower-case spelling', () => {
    expect(errorsOf('AES128GCM16-prfsha384-ecp384bp', IKE)).toEqual([
      "unknown algorithm 'AES128GCM16' in proposal 'AES128GCM16-prfsha384-ecp384bp' (keywords are lower case: 'aes128gcm16')",
    ]);
  });

  it.each([
    ['des-sha256', "algorithm 'des' in proposal 'des-sha256' is not supported: single DES is broken"],
    [
      'aes128-sha256_96',
      "algorithm 'sha256_96' in proposal 'aes128-sha256_96' is not supported: HMAC-SHA-256 truncated to 96 bits is a non-standard strongSwan private algorithm",
    ],
    [
      'aes128gcm16-ke1_mlkem768',
      "algorithm 'ke1_mlkem768' in proposal 'aes128gcm16-ke1_mlkem768' is not supported: additional key exchanges (RFC 9370) are not supported",
    ],
  ])("strongSwan keywords tunsec refuses say why: '%s'", (text, message) => {
    expect(errorsOf(text, ESP)).toEqual([message]);
  });

  it('AEAD and classic encryption cannot be mixed in one proposal', () => {
    expect(errorsOf('aes128-aes128gcm16-sha256-ecp256', IKE)).toEqual([
      "proposal 'aes128-aes128gcm16-sha256-ecp256' mixes AEAD ('aes128gcm16') and classic ('aes128') encryption; put them in separate proposals",
    ]);
  });

  it('an AEAD proposal must not carry an integrity algorithm', () => {
    expect(errorsOf('aes128gcm16-sha256', ESP)).toEqual([
      "proposal 'aes128gcm16-sha256' combines the AEAD algorithm 'aes128gcm16' with the integrity algorithm 'sha256'; AEAD algorithms protect integrity themselves, remove 'sha256'",
    ]);
  });

  it('an AEAD IKE proposal without a prf keyword is an error: there is no integrity algorithm to derive the PRF from', () => {
    expect(errorsOf('aes128gcm16-ecp384bp', IKE)).toEqual([
      "IKE proposal 'aes128gcm16-ecp384bp' has no PRF; name one (e.g. prfsha384): with an AEAD algorithm there is no integrity algorithm to derive it from",
    ]);
  });

  it.each([
    [IKE, 'prfsha384-ecp384bp', "IKE proposal 'prfsha384-ecp384bp' has no encryption algorithm"],
    [
      IKE,
      'aes128-prfsha256-ecp256',
      "IKE proposal 'aes128-prfsha256-ecp256' has no integrity algorithm, which classic (non-AEAD) encryption such as 'aes128' requires",
    ],
    [IKE, 'aes128gcm16-prfsha384', "IKE proposal 'aes128gcm16-prfsha384' has no key exchange method (e.g. ecp384bp, curve25519)"],
    [IKE, 'aes128gcm16-prfsha384-none', "'none' in IKE proposal 'aes128gcm16-prfsha384-none': an IKE SA always needs a key exchange method"],
    [
      IKE,
      'aes128gcm16-prfsha384-ecp384bp-noesn',
      "'noesn' in IKE proposal 'aes128gcm16-prfsha384-ecp384bp-noesn': extended sequence numbers apply to ESP and AH only",
    ],
    [IKE, 'null-sha256-ecp256', "'null' in IKE proposal 'null-sha256-ecp256': IKE messages must be encrypted"],
    [
      ESP,
      'aes128gcm16-prfsha384-ecp384bp',
      "'prfsha384' in ESP proposal 'aes128gcm16-prfsha384-ecp384bp': ESP proposals don't negotiate a PRF (CHILD_SA keys come from the IKE SA's PRF)",
    ],
    [ESP, 'sha256-ecp256', "ESP proposal 'sha256-ecp256' has no encryption algorithm"],
    [
      ESP,
      'aes128-ecp256',
      "ESP proposal 'aes128-ecp256' has no integrity algorithm; ESP with classic encryption such as 'aes128' and no integrity protection is not accepted (RFC 8221)",
    ],
    [
      AH,
      'aes128-sha256',
      "'aes128' in AH proposal 'aes128-sha256': AH does not encrypt (of the ciphers only aes128gmac, aes192gmac and aes256gmac are accepted, as integrity algorithms)",
    ],
    [AH, 'ecp256', "AH proposal 'ecp256' has no integrity algorithm"],
  ])('a proposal missing or misplacing a transform type is an error (protocol %i, %s)', (protocol, text, message) => {
    expect(errorsOf(text, protocol as ProposalProtocol)).toEqual([message]);
  });

  it('a keyword given twice, or under two aliases, is an error', () => {
    expect(errorsOf('aes128gcm16-aes128gcm16', ESP)).toEqual(["algorithm 'aes128gcm16' appears twice in proposal 'aes128gcm16-aes128gcm16'"]);
    expect(errorsOf('aes128gcm16-aes128gcm128', ESP)).toEqual(["algorithm 'aes128gcm128' repeats 'aes128gcm16' in proposal 'aes128gcm16-aes128gcm128'"]);
  });

  it("'!' in the middle of a list is an error", () => {
    expect(errorsOf('aes128gcm16-ecp384bp!,aes256gcm16-ecp384bp', ESP)).toEqual([
      "'!' (strict) may only follow the last proposal, not 'aes128gcm16-ecp384bp!'",
    ]);
  });

  it("'default' mixed into a proposal is an error", () => {
    expect(errorsOf('aes128-default', ESP)).toEqual(["'default' must stand alone as a proposal, not in 'aes128-default'"]);
  });

  it('empty proposals and empty algorithms are errors', () => {
    expect(errorsOf('', ESP)).toEqual(['no proposal given']);
    expect(errorsOf('!', ESP)).toEqual(['no proposal given']);
    expect(errorsOf('aes128gcm16,,aes256gcm16', ESP)).toEqual(["empty proposal in 'aes128gcm16,,aes256gcm16'"]);
    expect(errorsOf('aes128gcm16--ecp256', ESP)).toEqual(["empty algorithm in proposal 'aes128gcm16--ecp256'"]);
  });
});
