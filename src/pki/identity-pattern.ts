/**
 * Remote identities that name a set of peers (a group connection's
 * `remote.id`), checked after the peer's certificate chain verified and its
 * ID matched the certificate (certMatchesIdentity):
 * - `wildcard` `*.eqiad.example`: the ID is an FQDN, or a DN whose CN is one,
 *   ending in `.eqiad.example` (one or more labels in place of `*`, as
 *   strongSwan's leading-`*` FQDN match);
 * - `fromcert-ip`: the certificate carries the peer's IKE address as an IP SAN,
 *   so a fleet CA's certificate for one host is good only from that host.
 * Which CA may vouch for the peer is the trust store's business (remote.cacerts).
 */
import type { Certificate } from './certificate.js';
import type { Identity, MatchResult } from './identity.js';
import { parseIp } from './ip.js';

export type IdentityPattern = { readonly kind: 'wildcard'; readonly suffix: string } | { readonly kind: 'fromcert-ip' };

const CN = '2.5.4.3';

/** The FQDN an identity names: an ID_FQDN, or the CN of an ID_DER_ASN1_DN vouched for by `cert`'s subject. */
function fqdnOf(id: Identity, cert: Certificate): string | undefined {
  if (id.type === 'fqdn') return id.value;
  if (id.type !== 'dn') return undefined;
  for (const rdn of [...cert.subject.rdns].reverse()) for (const a of rdn) if (a.type === CN && a.text !== null) return a.text;
  return undefined;
}

/** Whether `id`, proven by `cert` from `peerAddress`, is one the pattern admits; `suffix` is without the `*.`. */
export function identityPatternMatches(pattern: IdentityPattern, id: Identity, cert: Certificate, peerAddress: string): MatchResult {
  if (pattern.kind === 'fromcert-ip') {
    const want = parseIp(peerAddress);
    if (want && cert.subjectAltNames.some((n) => n.type === 'ip' && n.value.equals(want))) return { ok: true };
    return {
      ok: false,
      reason: `certificate '${cert.subject.text}' does not carry the peer's address ${peerAddress} as an IP subjectAltName (remote.id %fromcert-ip)`,
    };
  }
  const name = fqdnOf(id, cert)?.toLowerCase().replace(/\.$/, '');
  if (name !== undefined && name.endsWith(`.${pattern.suffix}`) && name.length > pattern.suffix.length + 1) return { ok: true };
  return { ok: false, reason: `peer identity ${id.value} does not match the pattern *.${pattern.suffix}` };
}
