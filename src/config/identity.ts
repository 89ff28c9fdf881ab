/**
 * IKE identities (RFC 7296 §3.5) written as strings, typed the way strongSwan
 * infers them:
 * - `%any` (or `*`, or empty) matches any identity;
 * - a string containing `=` is a Distinguished Name (`C=CH, O=strongSwan, CN=moon`);
 * - an IPv4 or IPv6 literal is an address identity;
 * - `@host.example` is an FQDN (the `@` only prevents reading it as anything else),
 *   `@@user@example` an RFC 822 address, `@#0a0b…` a hex key ID;
 * - any other string with `@` is an RFC 822 (e-mail) address, without `@` an FQDN.
 * An explicit prefix overrides the inference: `fqdn:`, `email:`/`rfc822:`,
 * `ipv4:`, `ipv6:`, `asn1dn:`, `keyid:` (`keyid:#0a0b` for hex).
 */
import { canonicalIp, ipFamily } from './ip.js';
import { type Parsed, bad, ok } from './result.js';

export type IdentityType =
  | 'ID_ANY'
  | 'ID_IPV4_ADDR'
  | 'ID_FQDN'
  | 'ID_RFC822_ADDR'
  | 'ID_IPV6_ADDR'
  | 'ID_DER_ASN1_DN'
  | 'ID_KEY_ID';

export interface Identity {
  type: IdentityType;
  /**
   * The identification data as text: the address (canonical), FQDN, e-mail
   * address or DN string; for ID_KEY_ID the octets in hex; '' for ID_ANY.
   */
  value: string;
  /** As written in the configuration. */
  text: string;
}

const PREFIXES: Readonly<Record<string, IdentityType>> = {
  'fqdn:': 'ID_FQDN',
  'email:': 'ID_RFC822_ADDR',
  'rfc822:': 'ID_RFC822_ADDR',
  'ipv4:': 'ID_IPV4_ADDR',
  'ipv6:': 'ID_IPV6_ADDR',
  'asn1dn:': 'ID_DER_ASN1_DN',
  'keyid:': 'ID_KEY_ID',
};

const DN_COMPONENT = /^\s*[A-Za-z][A-Za-z0-9.-]*\s*=/;

export function parseIdentity(text: string): Parsed<Identity> {
  const make = (type: IdentityType, value: string): Parsed<Identity> => ok({ type, value, text });
  for (const [prefix, type] of Object.entries(PREFIXES)) {
    if (text.startsWith(prefix)) return typed(type, text.slice(prefix.length), text);
  }
  if (text === '' || text === '%any' || text === '%any6' || text === '*') return make('ID_ANY', '');
  if (text.includes('=')) return typed('ID_DER_ASN1_DN', text, text);
  if (!text.includes('@')) {
    if (ipFamily(text) !== undefined) return typed(ipFamily(text) === 4 ? 'ID_IPV4_ADDR' : 'ID_IPV6_ADDR', text, text);
    // strongSwan reads other strings with ':' as key IDs; a mistyped IPv6 address would silently become one.
    if (text.includes(':')) {
      return bad(`'${text}' is neither an IPv6 address nor an FQDN; write 'keyid:${text}' if a key ID is meant`);
    }
    return typed('ID_FQDN', text, text);
  }
  if (text.startsWith('@#')) return typed('ID_KEY_ID', `#${text.slice(2)}`, text);
  if (text.startsWith('@@')) return typed('ID_RFC822_ADDR', text.slice(2), text);
  if (text.startsWith('@')) return typed('ID_FQDN', text.slice(1), text);
  return typed('ID_RFC822_ADDR', text, text);
}

function typed(type: IdentityType, value: string, text: string): Parsed<Identity> {
  if (value === '') return bad(`identity '${text}' is empty`);
  switch (type) {
    case 'ID_IPV4_ADDR':
    case 'ID_IPV6_ADDR': {
      const canonical = canonicalIp(value);
      if (canonical === undefined || (ipFamily(value) === 4) !== (type === 'ID_IPV4_ADDR')) {
        return bad(`identity '${text}' is not an ${type === 'ID_IPV4_ADDR' ? 'IPv4' : 'IPv6'} address`);
      }
      return ok({ type, value: canonical, text });
    }
    case 'ID_DER_ASN1_DN': {
      const parts = value.split(/[,/]/).filter((p) => p.trim() !== '');
      if (parts.length === 0 || !parts.every((p) => DN_COMPONENT.test(p))) {
        return bad(`identity '${text}' is not a Distinguished Name of the form 'C=CH, O=Example, CN=host'`);
      }
      return ok({ type, value: value.trim(), text });
    }
    case 'ID_KEY_ID': {
      if (value.startsWith('#')) {
        const hex = value.slice(1).replace(/:/g, '');
        if (!/^([0-9a-fA-F]{2})+$/.test(hex)) return bad(`identity '${text}': '#' must be followed by hex octets`);
        return ok({ type, value: hex.toLowerCase(), text });
      }
      return ok({ type, value: Buffer.from(value, 'utf8').toString('hex'), text });
    }
    default:
      return ok({ type, value, text });
  }
}
