/**
 * Proposal strings as strongSwan operators write them: proposals separated by
 * commas, each a dash-separated list of algorithm keywords in any order
 * (`aes128gcm16-prfsha384-ecp384bp`). Several keywords of one kind in one
 * proposal are alternatives, in descending preference (RFC 7296 §3.3).
 *
 * List semantics (ipsec.conf's, as the mission's strings use them):
 * - a `!` after the last proposal makes the list strict: only these proposals;
 * - without `!`, tunsec's default proposals (./defaults.ts) are appended;
 * - the keyword `default`, alone as a proposal, stands for those defaults
 *   (then nothing more is appended).
 * Note that swanctl.conf never appends: a swanctl list is always strict.
 */
import { EncrId, KeId, ProtocolId, TransformType } from '../transforms.js';
import { DEFAULT_PROPOSAL_STRINGS } from './defaults.js';
import { UNSUPPORTED_KEYWORDS, gmacIntegrity, isAeadEncryption, keywordForTransform, prfForIntegrity, transformForKeyword } from './keywords.js';
import type { Proposal, ProposalProtocol, Transform } from './types.js';
import { sameTransform } from './types.js';

export interface ProposalList {
  protocol: ProposalProtocol;
  /** The list as written (array items joined with commas). */
  text: string;
  /** True when the list ended in `!`. */
  strict: boolean;
  /** The proposals as written, `default` expanded in place. */
  configured: Proposal[];
  /** What is offered and accepted: `configured`, plus the defaults unless strict or `default` was used. */
  proposals: Proposal[];
}

export type ProposalListResult = { ok: true; value: ProposalList } | { ok: false; errors: string[] };
export type ProposalResult = { ok: true; proposal: Proposal } | { ok: false; error: string };

export const PROTOCOL_NAMES: Readonly<Record<ProposalProtocol, string>> = {
  [ProtocolId.IKE]: 'IKE',
  [ProtocolId.AH]: 'AH',
  [ProtocolId.ESP]: 'ESP',
};

/** Canonical order of transform types inside a parsed or printed proposal. */
export const TYPE_ORDER: readonly TransformType[] = [TransformType.ENCR, TransformType.INTEG, TransformType.PRF, TransformType.KE, TransformType.ESN];

/**
 * Parse a proposal list (`"aes128gcm16-prfsha384-ecp384bp!"`, or a YAML
 * list of proposals). Every problem is reported, one message each.
 */
export function parseProposalList(input: string | readonly string[], protocol: ProposalProtocol): ProposalListResult {
  const text = typeof input === 'string' ? input.trim() : input.map((s) => s.trim()).join(',');
  const errors: string[] = [];
  let body = text;
  let strict = false;
  if (body.endsWith('!')) {
    strict = true;
    body = body.slice(0, -1).trimEnd();
  }
  if (body === '') return { ok: false, errors: ['no proposal given'] };

  const configured: Proposal[] = [];
  let usedDefault = false;
  for (const raw of body.split(',')) {
    const item = raw.trim();
    if (item === '') {
      errors.push(`empty proposal in '${text}'`);
      continue;
    }
    if (item.includes('!')) {
      errors.push(`'!' (strict) may only follow the last proposal, not '${item}'`);
      continue;
    }
    if (item === 'default') {
      usedDefault = true;
      configured.push(...defaultProposals(protocol));
      continue;
    }
    const parsed = parseProposal(item, protocol);
    if (parsed.ok) configured.push(parsed.proposal);
    else errors.push(parsed.error);
  }
  if (errors.length > 0) return { ok: false, errors };

  const proposals = strict || usedDefault ? configured : [...configured, ...defaultProposals(protocol)];
  return { ok: true, value: { protocol, text, strict, configured, proposals } };
}

/** Parse one proposal (no commas, no `!`). */
export function parseProposal(text: string, protocol: ProposalProtocol): ProposalResult {
  const proposal = text.trim();
  const fail = (error: string): ProposalResult => ({ ok: false, error });
  const transforms: Transform[] = [];
  const wordOf = new Map<Transform, string>();

  for (const raw of proposal.split('-')) {
    const word = raw.trim();
    if (word === '') return fail(`empty algorithm in proposal '${proposal}'`);
    if (word === 'default') return fail(`'default' must stand alone as a proposal, not in '${proposal}'`);
    let t = transformForKeyword(word);
    if (t === undefined) return fail(unknownWordMessage(word, proposal));
    if (protocol === ProtocolId.AH && t.type === TransformType.ENCR) {
      // AH authenticates only: AES-GMAC is its integrity algorithm, other ciphers make no sense.
      const gmac = t.id === EncrId.NULL_AUTH_AES_GMAC ? gmacIntegrity(t.keyLength ?? 0) : undefined;
      if (gmac === undefined) {
        return fail(
          `'${word}' in AH proposal '${proposal}': AH does not encrypt (of the ciphers only aes128gmac, aes192gmac and aes256gmac are accepted, as integrity algorithms)`,
        );
      }
      t = gmac;
    }
    const earlier = transforms.find((u) => sameTransform(u, t));
    if (earlier !== undefined) {
      const first = wordOf.get(earlier) ?? word;
      return fail(
        first === word ? `algorithm '${word}' appears twice in proposal '${proposal}'` : `algorithm '${word}' repeats '${first}' in proposal '${proposal}'`,
      );
    }
    transforms.push(t);
    wordOf.set(t, word);
  }

  const name = PROTOCOL_NAMES[protocol];
  const word = (t: Transform): string => wordOf.get(t) ?? keywordForTransform(t) ?? `${t.type}/${t.id}`;
  const ofType = (type: TransformType): Transform[] => transforms.filter((t) => t.type === type);
  const encr = ofType(TransformType.ENCR);
  const integ = ofType(TransformType.INTEG);
  const prf = ofType(TransformType.PRF);
  const ke = ofType(TransformType.KE);
  const esn = ofType(TransformType.ESN);

  const aead = encr.filter((t) => isAeadEncryption(t.id));
  const classic = encr.filter((t) => !isAeadEncryption(t.id));
  if (aead[0] !== undefined && classic[0] !== undefined) {
    return fail(`proposal '${proposal}' mixes AEAD ('${word(aead[0])}') and classic ('${word(classic[0])}') encryption; put them in separate proposals`);
  }
  if (aead[0] !== undefined && integ[0] !== undefined) {
    return fail(
      `proposal '${proposal}' combines the AEAD algorithm '${word(aead[0])}' with the integrity algorithm '${word(integ[0])}'; AEAD algorithms protect integrity themselves, remove '${word(integ[0])}'`,
    );
  }

  const added: Transform[] = [];
  if (protocol === ProtocolId.IKE) {
    if (encr[0] === undefined) return fail(`IKE proposal '${proposal}' has no encryption algorithm`);
    const nullCipher = encr.find((t) => t.id === EncrId.NULL || t.id === EncrId.NULL_AUTH_AES_GMAC);
    if (nullCipher !== undefined) {
      return fail(`'${word(nullCipher)}' in IKE proposal '${proposal}': IKE messages must be encrypted`);
    }
    if (classic[0] !== undefined && integ[0] === undefined) {
      return fail(`IKE proposal '${proposal}' has no integrity algorithm, which classic (non-AEAD) encryption such as '${word(classic[0])}' requires`);
    }
    if (prf[0] === undefined) {
      // strongSwan's rule: without a PRF keyword, use the PRF matching each integrity algorithm.
      for (const i of integ) {
        const id = prfForIntegrity(i.id);
        if (id !== undefined && !added.some((t) => t.id === id)) added.push({ type: TransformType.PRF, id });
      }
      if (added.length === 0) {
        return fail(
          `IKE proposal '${proposal}' has no PRF; name one (e.g. prfsha384): with an AEAD algorithm there is no integrity algorithm to derive it from`,
        );
      }
    }
    const none = ke.find((t) => t.id === KeId.NONE);
    if (none !== undefined) {
      return fail(`'${word(none)}' in IKE proposal '${proposal}': an IKE SA always needs a key exchange method`);
    }
    if (ke[0] === undefined) {
      return fail(`IKE proposal '${proposal}' has no key exchange method (e.g. ecp384bp, curve25519)`);
    }
    if (esn[0] !== undefined) {
      return fail(`'${word(esn[0])}' in IKE proposal '${proposal}': extended sequence numbers apply to ESP and AH only`);
    }
  } else {
    if (prf[0] !== undefined) {
      return fail(`'${word(prf[0])}' in ${name} proposal '${proposal}': ${name} proposals don't negotiate a PRF (CHILD_SA keys come from the IKE SA's PRF)`);
    }
    if (protocol === ProtocolId.ESP) {
      if (encr[0] === undefined) return fail(`ESP proposal '${proposal}' has no encryption algorithm`);
      if (classic[0] !== undefined && integ[0] === undefined) {
        return fail(
          `ESP proposal '${proposal}' has no integrity algorithm; ESP with classic encryption such as '${word(classic[0])}' and no integrity protection is not accepted (RFC 8221)`,
        );
      }
    } else if (integ[0] === undefined) {
      return fail(`AH proposal '${proposal}' has no integrity algorithm`);
    }
    if (esn[0] === undefined) added.push({ type: TransformType.ESN, id: 0 });
  }

  const all = [...transforms, ...added];
  const ordered = TYPE_ORDER.flatMap((type) => all.filter((t) => t.type === type));
  return { ok: true, proposal: { protocol, transforms: ordered } };
}

function unknownWordMessage(word: string, proposal: string): string {
  const reason = UNSUPPORTED_KEYWORDS.get(word);
  if (reason !== undefined) return `algorithm '${word}' in proposal '${proposal}' is not supported: ${reason}`;
  if (/^ke[1-7]_/.test(word)) {
    return `algorithm '${word}' in proposal '${proposal}' is not supported: additional key exchanges (RFC 9370) are not supported`;
  }
  const lower = word.toLowerCase();
  if (lower !== word && (transformForKeyword(lower) !== undefined || lower === 'default')) {
    return `unknown algorithm '${word}' in proposal '${proposal}' (keywords are lower case: '${lower}')`;
  }
  return `unknown algorithm '${word}' in proposal '${proposal}'`;
}

const defaultsCache = new Map<ProposalProtocol, Proposal[]>();

/** The proposals `default` stands for (./defaults.ts). */
export function defaultProposals(protocol: ProposalProtocol): Proposal[] {
  let cached = defaultsCache.get(protocol);
  if (cached === undefined) {
    cached = DEFAULT_PROPOSAL_STRINGS[protocol].map((s) => {
      const r = parseProposal(s, protocol);
      if (!r.ok) throw new Error(`tunsec's own default proposal '${s}' does not parse: ${r.error}`);
      return r.proposal;
    });
    defaultsCache.set(protocol, cached);
  }
  return [...cached];
}
