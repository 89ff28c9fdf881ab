/**
 * IKE identities (RFC 7296 §3.5) and how a certificate vouches for them
 * (RFC 4945 §3.1 profile, as strongSwan applies it).
 *
 * Configuration text is read the way strongSwan reads it:
 *   "10.0.0.1", "fd00::1"        → ipv4 / ipv6
 *   "@#0a1b…"                    → keyid (hex; ":" separators allowed)
 *   "@@user@example.org"         → rfc822 (the text after "@@")
 *   "@moon.example.org"          → fqdn (the text after "@"; never an IP)
 *   "user@example.org"           → rfc822 (any other text with "@")
 *   "C=CH, O=X, CN=moon"         → dn (any text with "="; a text that is not
 *                                   a valid DN is an error here, where
 *                                   strongSwan would fall back to KEY_ID)
 *   "moon.example.org"           → fqdn (everything else)
 * and with an explicit type prefix: "fqdn:", "dns:", "email:", "rfc822:",
 * "userfqdn:", "ipv4:", "ipv6:", "asn1dn:", "keyid:" (literal text; "keyid:#hex"
 * for octets).
 *
 * Against a certificate (`certMatchesIdentity`):
 *   fqdn   a dNSName subjectAltName, case-insensitively, a trailing dot
 *          ignored; no wildcards ("*.example.org" in a SAN matches only
 *          that literal name)
 *   ipv4/6 an iPAddress subjectAltName, octet for octet
 *   rfc822 an rfc822Name subjectAltName; the domain part case-insensitively,
 *          the local part exactly (RFC 5280 §4.2.1.6)
 *   dn     the subject DN (names.ts comparison), or a directoryName SAN
 *   keyid  the subjectKeyIdentifier, the SHA-1 of the SPKI, or the SHA-1 of
 *          the subjectPublicKey bits
 */
import { formatGeneralName, spkiSha1, subjectPublicKeySha1, type Certificate } from './certificate.js';
import { DerError } from './der.js';
import { PkiError } from './errors.js';
import { formatIp, parseIpv4, parseIpv6 } from '../util/ip.js';
import { decodeName, nameFromString, namesMatch, type Name } from './name.js';

export type IdentityType = 'fqdn' | 'ipv4' | 'ipv6' | 'rfc822' | 'dn' | 'keyid' | 'null';

/**
 * An IKE identity. `value` is text for every type: the FQDN or address,
 * the IP address in canonical form ("fd77::1"), the DN as printed
 * ("C=CH, O=X, CN=moon"), the key ID as lower-case hex. A DN also carries
 * its DER, which is what goes into the ID payload.
 */
export type Identity =
  | { readonly type: 'fqdn' | 'rfc822' | 'ipv4' | 'ipv6' | 'keyid'; readonly value: string }
  | { readonly type: 'dn'; readonly value: string; readonly der: Buffer }
  /** ID_NULL (RFC 7619 §3): no identity at all, for NULL Authentication; shown as `%null`. */
  | { readonly type: 'null'; readonly value: '' };

/** The ID_NULL identity (RFC 7619 §3). */
export const NULL_IDENTITY: Identity = { type: 'null', value: '' };

/** IANA "IKEv2 Identification Payload ID Types" that map to Identity. */
export const ID_TYPE = {
  ID_IPV4_ADDR: 1,
  ID_FQDN: 2,
  ID_RFC822_ADDR: 3,
  ID_IPV6_ADDR: 5,
  ID_DER_ASN1_DN: 9,
  ID_KEY_ID: 11,
  /** RFC 7619 §3 */
  ID_NULL: 13,
} as const;

/** ID Type and Identification Data of an IDi/IDr payload. */
export interface IdPayloadData {
  readonly idType: number;
  readonly data: Buffer;
}

export type MatchResult = { readonly ok: true } | { readonly ok: false; readonly reason: string };

// ---------------------------------------------------------------------------
// Construction

function dnIdentity(name: Name): Identity {
  return { type: 'dn', value: name.text, der: name.der };
}

function ipIdentity(text: string, family: 4 | 6): Identity {
  const bytes = family === 4 ? parseIpv4(text) : parseIpv6(text);
  if (bytes) return { type: family === 4 ? 'ipv4' : 'ipv6', value: formatIp(bytes) };
  throw new PkiError(`identity "${text}" is not an IPv${family} address`);
}

function keyIdFromHex(text: string, original: string): Identity {
  const hex = text.replace(/:/g, '');
  if (hex === '' || !/^([0-9a-fA-F]{2})+$/.test(hex)) throw new PkiError(`identity "${original}" is not a hex key ID`);
  return { type: 'keyid', value: hex.toLowerCase() };
}

function dnFromText(text: string, original: string): Identity {
  try {
    return dnIdentity(nameFromString(text));
  } catch (err) {
    if (err instanceof PkiError) throw new PkiError(`identity "${original}" is not a valid DN: ${err.message}`);
    throw err;
  }
}

/**
 * How `parseIdentity` reads a text before it checks the value: the type,
 * and the part of the text that holds the value (after a prefix, "@", "@@"
 * or "@#").
 */
export interface IdentityText {
  readonly type: Exclude<IdentityType, 'null'>;
  readonly rest: string;
  /** A prefix such as "ipv6:" named the type (rather than the text's shape). */
  readonly prefixed: boolean;
  /** keyid only: `rest` is hex ("@#…", "keyid:#…"), not literal text. */
  readonly hex: boolean;
}

const PREFIXES: Readonly<Record<string, IdentityText['type']>> = {
  fqdn: 'fqdn',
  dns: 'fqdn',
  email: 'rfc822',
  rfc822: 'rfc822',
  userfqdn: 'rfc822',
  ipv4: 'ipv4',
  ipv6: 'ipv6',
  asn1dn: 'dn',
  keyid: 'keyid',
};

/**
 * The type strongSwan infers for configuration text (rules in the module
 * comment), without checking the value; undefined for the wildcards "",
 * "%any", "%any6" and "*".
 */
export function readIdentityText(text: string): IdentityText | undefined {
  if (text === '' || ['%any', '%any6', '*'].includes(text)) return undefined;
  const read = (type: IdentityText['type'], rest: string, prefixed = false, hex = false): IdentityText => ({ type, rest, prefixed, hex });
  const prefix = /^([a-z0-9]+):(.*)$/i.exec(text);
  const byPrefix = prefix ? PREFIXES[prefix[1]!.toLowerCase()] : undefined;
  if (byPrefix) {
    const rest = prefix![2]!;
    return byPrefix === 'keyid' && rest.startsWith('#') ? read('keyid', rest.slice(1), true, true) : read(byPrefix, rest, true);
  }
  if (text.includes('=')) return read('dn', text);
  if (text.startsWith('@#')) return read('keyid', text.slice(2), false, true);
  if (text.startsWith('@@')) return read('rfc822', text.slice(2));
  if (text.startsWith('@')) return read('fqdn', text.slice(1));
  if (text.includes('@')) return read('rfc822', text);
  if (text.includes(':')) return read('ipv6', text);
  return parseIpv4(text) ? read('ipv4', text) : read('fqdn', text);
}

/** An identity from configuration text (rules in the module comment). */
export function parseIdentity(text: string): Identity {
  if (text.trim() === '%null') return NULL_IDENTITY;
  const read = readIdentityText(text);
  if (!read) throw new PkiError(`identity "${text}" is a wildcard, not an identity of its own`);
  const { type, rest } = read;
  switch (type) {
    case 'fqdn':
    case 'rfc822':
      return { type, value: rest };
    case 'ipv4':
      return ipIdentity(rest, 4);
    case 'ipv6':
      return ipIdentity(rest, 6);
    case 'dn':
      return dnFromText(rest, text);
    case 'keyid':
      return read.hex ? keyIdFromHex(rest, text) : { type, value: Buffer.from(rest, 'utf8').toString('hex') };
  }
}

/** The identity a certificate's subject DN gives (strongSwan's default local ID). */
export function subjectIdentity(cert: Certificate): Identity {
  return dnIdentity(cert.subject);
}

/** Text as operators write it; `parseIdentity` reads it back to the same identity. */
export function identityToString(id: Identity): string {
  switch (id.type) {
    case 'keyid':
      return `@#${id.value}`;
    case 'fqdn':
      // Keep FQDNs that would otherwise read as something else recognisable.
      return /[=@:]/.test(id.value) || parseIpv4(id.value) ? `fqdn:${id.value}` : id.value;
    case 'rfc822':
      return id.value.startsWith('@') || id.value.includes('=') || !id.value.includes('@') ? `email:${id.value}` : id.value;
    case 'null':
      return '%null';
    default:
      return id.value;
  }
}

// ---------------------------------------------------------------------------
// ID payload

/** ID Type and Identification Data for an IDi/IDr payload. */
export function identityToIdPayload(id: Identity): IdPayloadData {
  switch (id.type) {
    case 'ipv4':
      return { idType: ID_TYPE.ID_IPV4_ADDR, data: parseIpv4(id.value) ?? fail(`"${id.value}" is not an IPv4 address`) };
    case 'ipv6':
      return { idType: ID_TYPE.ID_IPV6_ADDR, data: parseIpv6(id.value) ?? fail(`"${id.value}" is not an IPv6 address`) };
    case 'fqdn':
      return { idType: ID_TYPE.ID_FQDN, data: Buffer.from(id.value, 'utf8') };
    case 'rfc822':
      return { idType: ID_TYPE.ID_RFC822_ADDR, data: Buffer.from(id.value, 'utf8') };
    case 'dn':
      return { idType: ID_TYPE.ID_DER_ASN1_DN, data: Buffer.from(id.der) };
    case 'keyid':
      return { idType: ID_TYPE.ID_KEY_ID, data: Buffer.from(id.value, 'hex') };
    case 'null':
      // RFC 7619 §3: ID_NULL carries no identification data.
      return { idType: ID_TYPE.ID_NULL, data: Buffer.alloc(0) };
  }
}

function fail(message: string): never {
  throw new PkiError(message);
}

/** The identity in a received IDi/IDr payload; PkiError for malformed data or other ID types. */
export function identityFromIdPayload(payload: IdPayloadData): Identity {
  const { idType, data } = payload;
  switch (idType) {
    case ID_TYPE.ID_IPV4_ADDR:
      if (data.length !== 4) throw new PkiError(`ID_IPV4_ADDR has ${data.length} octets, expected 4`);
      return { type: 'ipv4', value: formatIp(data) };
    case ID_TYPE.ID_IPV6_ADDR:
      if (data.length !== 16) throw new PkiError(`ID_IPV6_ADDR has ${data.length} octets, expected 16`);
      return { type: 'ipv6', value: formatIp(data) };
    case ID_TYPE.ID_FQDN:
    case ID_TYPE.ID_RFC822_ADDR: {
      const text = data.toString('utf8');
      if (!Buffer.from(text, 'utf8').equals(data) || /[\x00-\x1f\x7f]/.test(text)) {
        throw new PkiError(`${idType === ID_TYPE.ID_FQDN ? 'ID_FQDN' : 'ID_RFC822_ADDR'} is not printable UTF-8 text`);
      }
      return { type: idType === ID_TYPE.ID_FQDN ? 'fqdn' : 'rfc822', value: text };
    }
    case ID_TYPE.ID_DER_ASN1_DN:
      try {
        return dnIdentity(decodeName(Buffer.from(data), 'ID_DER_ASN1_DN'));
      } catch (err) {
        if (err instanceof DerError) throw new PkiError(`ID_DER_ASN1_DN is not a DER Name (${err.message})`);
        throw err;
      }
    case ID_TYPE.ID_KEY_ID:
      return { type: 'keyid', value: data.toString('hex') };
    case ID_TYPE.ID_NULL:
      // We send it empty (RFC 7619 §3); whatever a peer put there names nobody, so it is not read.
      return NULL_IDENTITY;
    default:
      throw new PkiError(`ID type ${idType} is not supported`);
  }
}

// ---------------------------------------------------------------------------
// Identity ↔ certificate

function normalizeFqdn(s: string): string {
  return s.toLowerCase().replace(/\.$/, '');
}

function rfc822Equal(a: string, b: string): boolean {
  const at = (s: string): [string, string] => {
    const i = s.lastIndexOf('@');
    return i < 0 ? [s, ''] : [s.slice(0, i), s.slice(i + 1)];
  };
  const [la, da] = at(a);
  const [lb, db] = at(b);
  return la === lb && normalizeFqdn(da) === normalizeFqdn(db);
}

function sanList(cert: Certificate): string {
  return `[${cert.subjectAltNames.map(formatGeneralName).join(', ')}]`;
}

/** Does the certificate vouch for this identity? With a reason when it does not. Never throws. */
export function certMatchesIdentity(cert: Certificate, id: Identity): MatchResult {
  try {
    return matchIdentity(cert, id);
  } catch (err) {
    // Only reachable with a hand-made Identity whose value or DER is malformed.
    if (err instanceof PkiError || err instanceof DerError) return { ok: false, reason: `ID ${id.value} is malformed (${err.message})` };
    throw err;
  }
}

function matchIdentity(cert: Certificate, id: Identity): MatchResult {
  const sans = cert.subjectAltNames;
  let matched = false;
  switch (id.type) {
    case 'null':
      return { ok: false, reason: 'ID_NULL (RFC 7619) names nobody; no certificate vouches for it' };
    case 'fqdn': {
      const want = normalizeFqdn(id.value);
      matched = sans.some((n) => n.type === 'dns' && normalizeFqdn(n.value) === want);
      break;
    }
    case 'ipv4':
    case 'ipv6': {
      const want = identityToIdPayload(id).data;
      matched = sans.some((n) => n.type === 'ip' && n.value.equals(want));
      break;
    }
    case 'rfc822':
      matched = sans.some((n) => n.type === 'email' && rfc822Equal(n.value, id.value));
      break;
    case 'dn': {
      const want = decodeName(id.der);
      if (namesMatch(cert.subject, want)) return { ok: true };
      matched = sans.some((n) => n.type === 'dn' && namesMatch(n.value, want));
      if (!matched) return { ok: false, reason: `ID '${id.value}' does not match certificate subject '${cert.subject.text}'` };
      break;
    }
    case 'keyid': {
      const want = Buffer.from(id.value, 'hex');
      matched = (cert.subjectKeyIdentifier?.equals(want) ?? false) || spkiSha1(cert).equals(want) || subjectPublicKeySha1(cert).equals(want);
      if (!matched) return { ok: false, reason: `ID @#${id.value} is neither the subjectKeyIdentifier nor the key hash of '${cert.subject.text}'` };
      break;
    }
  }
  if (matched) return { ok: true };
  return { ok: false, reason: `ID ${id.value} not in certificate SANs ${sanList(cert)}` };
}
