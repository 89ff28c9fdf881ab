/**
 * IKE identities (RFC 7296 §3.5) written as strings, typed the way strongSwan
 * infers them:
 * - `%any` (or `%any6`, `*`, or empty) matches any identity;
 * - `%null` is ID_NULL (RFC 7619), the identity of a side with `auth: null`;
 * - a string containing `=` is a Distinguished Name (`C=CH, O=strongSwan, CN=moon`);
 * - an IPv4 or IPv6 literal is an address identity;
 * - `@host.example` is an FQDN (the `@` only prevents reading it as anything else),
 *   `@@user@example` an RFC 822 address, `@#0a0b…` a hex key ID;
 * - any other string with `@` is an RFC 822 (e-mail) address, without `@` an FQDN.
 * An explicit prefix overrides the inference: `fqdn:`/`dns:`, `email:`/`rfc822:`/`userfqdn:`,
 * `ipv4:`, `ipv6:`, `asn1dn:`, `keyid:` (`keyid:#0a0b` for hex).
 *
 * The inference and the checks of the value are src/pki's (`readIdentityText`,
 * `parseIdentity`), so that what the configuration accepts is what the IKE
 * daemon can use; this module adds the wildcard, keeps the text of a DN as
 * written, and words the problems for the configuration.
 */
import { PkiError, parseIdentity as parsePkiIdentity, readIdentityText, type IdentityText } from '../pki/index.js';
import { type Parsed, bad, ok } from '../util/parsed.js';

export type IdentityType = 'ID_ANY' | 'ID_NULL' | 'ID_IPV4_ADDR' | 'ID_FQDN' | 'ID_RFC822_ADDR' | 'ID_IPV6_ADDR' | 'ID_DER_ASN1_DN' | 'ID_KEY_ID';

export interface Identity {
  type: IdentityType;
  /**
   * The identification data as text: the address (canonical), FQDN, e-mail
   * address or DN string; for ID_KEY_ID the octets in hex; '' for ID_ANY and ID_NULL.
   */
  value: string;
  /** As written in the configuration. */
  text: string;
  /**
   * A remote identity that names a set of peers rather than one (a group
   * connection's `remote.id`); `type` is then ID_ANY and `value` the pattern:
   * - `wildcard`: `*.eqiad.example`, any FQDN (or a DN's CN) ending in `.eqiad.example`;
   * - `fromcert-ip`: `%fromcert-ip`, the peer's certificate must carry its IKE address as an IP SAN.
   */
  pattern?: 'wildcard' | 'fromcert-ip';
}

/** `%null`: ID_NULL (RFC 7619 §3), the identity of a side that uses NULL Authentication and names nobody. */
export const NULL_ID = '%null';

/** `%fromcert-ip`: the peer proves the address it talks from with its certificate (an IP SAN). */
export const FROMCERT_IP = '%fromcert-ip';

const ID_TYPE: Readonly<Record<IdentityText['type'], IdentityType>> = {
  fqdn: 'ID_FQDN',
  rfc822: 'ID_RFC822_ADDR',
  ipv4: 'ID_IPV4_ADDR',
  ipv6: 'ID_IPV6_ADDR',
  dn: 'ID_DER_ASN1_DN',
  keyid: 'ID_KEY_ID',
};

export function parseIdentity(text: string): Parsed<Identity> {
  const trimmed = text.trim();
  if (trimmed === NULL_ID) return ok({ type: 'ID_NULL', value: '', text });
  if (trimmed === FROMCERT_IP) return ok({ type: 'ID_ANY', value: FROMCERT_IP, text, pattern: 'fromcert-ip' });
  const wildcard = /^(?:fqdn:|dns:|@)?\*\.(.+)$/.exec(trimmed);
  if (wildcard) {
    const suffix = wildcard[1]!.toLowerCase().replace(/\.$/, '');
    if (!/^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/.test(suffix))
      return bad(`identity pattern '${text}': expected '*.' followed by a domain name, e.g. '*.eqiad.example'`);
    return ok({ type: 'ID_ANY', value: `*.${suffix}`, text, pattern: 'wildcard' });
  }
  const read = readIdentityText(text);
  if (read === undefined) return ok({ type: 'ID_ANY', value: '', text });
  const type = ID_TYPE[read.type];
  if (read.rest === '' && !read.hex) return bad(`identity '${text}' is empty`);
  try {
    const id = parsePkiIdentity(text);
    // A DN keeps the text as written; pki's value is the DN as printed.
    return ok({ type, value: id.type === 'dn' ? read.rest.trim() : id.value, text });
  } catch (err) {
    if (err instanceof PkiError) return bad(problem(read, text, err));
    throw err;
  }
}

/** The configuration's words for an identity pki refused. */
function problem(read: IdentityText, text: string, err: PkiError): string {
  switch (read.type) {
    case 'ipv4':
    case 'ipv6':
      // strongSwan reads other strings with ':' as key IDs; a mistyped IPv6 address would silently become one.
      if (!read.prefixed) return `'${text}' is neither an IPv6 address nor an FQDN; write 'keyid:${text}' if a key ID is meant`;
      return `identity '${text}' is not an ${read.type === 'ipv4' ? 'IPv4' : 'IPv6'} address`;
    case 'dn':
      return `identity '${text}' is not a Distinguished Name of the form 'C=CH, O=Example, CN=host'`;
    case 'keyid':
      if (read.hex) return `identity '${text}': '#' must be followed by hex octets`;
      break;
  }
  return `identity '${text}': ${err.message}`;
}
