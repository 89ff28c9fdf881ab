/**
 * X.501 Distinguished Names (RFC 5280 §4.1.2.4): parsed from DER, printed the
 * way strongSwan prints them ("C=CH, O=IKEv2 Interop Test, CN=moon", RDNs in
 * DER order), read back from that text, and compared.
 *
 *   Name ::= SEQUENCE OF RelativeDistinguishedName
 *   RelativeDistinguishedName ::= SET SIZE (1..MAX) OF AttributeTypeAndValue
 *   AttributeTypeAndValue ::= SEQUENCE { type OBJECT IDENTIFIER, value ANY }
 *
 * Comparison (issuer/subject chaining, ID_DER_ASN1_DN against a subject)
 * follows the spirit of RFC 5280 §7.1 without full LDAP string preparation:
 * same number of RDNs, same attribute types in the same order (the
 * attributes of a multi-valued RDN in any order), string values equal after
 * Unicode NFKC, case folding, trimming and collapsing inner white space,
 * whatever their string type (PrintableString vs UTF8String); other values
 * byte for byte.
 *
 * Text form: "type=value" joined by ", " (also accepted: ",", and
 * strongSwan's "/C=CH/O=X/CN=moon"), attributes of one RDN joined by " + ".
 * Type names are strongSwan's (SN and serialNumber are 2.5.4.5, S is the
 * surname), unknown types print as dotted OIDs. Values that are not strings
 * print as "#" and the hex of their DER (RFC 4514 §2.4). "\" escapes the
 * next character; ",", "+" and "\" in values are printed escaped.
 */
import { DerError, Tag, expectTag, oid as oidTlv, readChildren, readOid, readWhole, tlv } from './der.js';
import { PkiError } from './errors.js';

export interface AttributeTypeAndValue {
  /** Dotted OID of the attribute type. */
  readonly type: string;
  /** The value's DER tag. */
  readonly tag: number;
  /** The value's whole DER encoding. */
  readonly encoded: Buffer;
  /** The decoded string for string types, null otherwise. */
  readonly text: string | null;
}

export type RelativeDistinguishedName = readonly AttributeTypeAndValue[];

export interface Name {
  /** The DER encoding (exactly as it appeared in the certificate or ID payload). */
  readonly der: Buffer;
  readonly rdns: readonly RelativeDistinguishedName[];
  /** "C=CH, O=IKEv2 Interop Test, CN=moon" */
  readonly text: string;
  /** Canonical comparison key: equal keys ⇔ the names match (see the module comment). */
  readonly key: string;
}

/** Attribute types with short names: [OID, printed name, other accepted names]. */
const ATTRIBUTE_TYPES: ReadonlyArray<readonly [string, string, ...string[]]> = [
  ['2.5.4.3', 'CN', 'commonName'],
  ['2.5.4.4', 'S', 'surname'],
  ['2.5.4.5', 'serialNumber', 'SN'],
  ['2.5.4.6', 'C', 'countryName'],
  ['2.5.4.7', 'L', 'localityName'],
  ['2.5.4.8', 'ST', 'stateOrProvinceName'],
  ['2.5.4.9', 'street', 'streetAddress'],
  ['2.5.4.10', 'O', 'organizationName'],
  ['2.5.4.11', 'OU', 'organizationalUnitName'],
  ['2.5.4.12', 'T', 'title'],
  ['2.5.4.13', 'D', 'description'],
  ['2.5.4.17', 'postalCode'],
  ['2.5.4.41', 'N', 'name'],
  ['2.5.4.42', 'G', 'givenName'],
  ['2.5.4.43', 'I', 'initials'],
  ['2.5.4.45', 'ID', 'x500UniqueIdentifier'],
  ['2.5.4.46', 'dnQualifier'],
  ['2.5.4.65', 'pseudonym'],
  ['1.2.840.113549.1.9.1', 'E', 'Email', 'emailAddress'],
  ['0.9.2342.19200300.100.1.1', 'UID', 'userid'],
  ['0.9.2342.19200300.100.1.25', 'DC', 'domainComponent'],
];
const NAME_OF_OID = new Map(ATTRIBUTE_TYPES.map(([oid, name]) => [oid, name]));
const OID_OF_NAME = new Map<string, string>(ATTRIBUTE_TYPES.flatMap(([oid, ...names]) => names.map((n) => [n.toLowerCase(), oid] as [string, string])));
/** Attributes that RFC 5280 Appendix A types as IA5String / PrintableString only. */
const IA5_ATTRIBUTES = new Set(['1.2.840.113549.1.9.1', '0.9.2342.19200300.100.1.25']);
const PRINTABLE_ONLY_ATTRIBUTES = new Set(['2.5.4.6', '2.5.4.5', '2.5.4.46']);

// ---------------------------------------------------------------------------
// DER → Name

/** Decode a string-typed value; null for non-string types or invalid contents. */
function decodeString(tag: number, v: Buffer): string | null {
  switch (tag) {
    case Tag.UTF8_STRING: {
      const s = v.toString('utf8');
      return Buffer.from(s, 'utf8').equals(v) ? s : null;
    }
    case Tag.PRINTABLE_STRING:
    case Tag.IA5_STRING:
    case Tag.NUMERIC_STRING:
    case Tag.VISIBLE_STRING:
    case Tag.T61_STRING:
      return v.toString('latin1');
    case Tag.BMP_STRING: {
      if (v.length % 2) return null;
      const swapped = Buffer.from(v);
      swapped.swap16();
      return swapped.toString('utf16le');
    }
    case Tag.UNIVERSAL_STRING: {
      if (v.length % 4) return null;
      let s = '';
      for (let i = 0; i < v.length; i += 4) {
        const cp = v.readUInt32BE(i);
        if (cp > 0x10ffff) return null;
        s += String.fromCodePoint(cp);
      }
      return s;
    }
    default:
      return null;
  }
}

/** Parse a DER Name; DerError when it is not one. */
export function decodeName(der: Buffer, what = 'Name'): Name {
  const seq = readWhole(der, Tag.SEQUENCE, what);
  const rdns: AttributeTypeAndValue[][] = [];
  for (const set of readChildren(seq.content, what)) {
    expectTag(set, Tag.SET, `${what} RDN`);
    const atvs: AttributeTypeAndValue[] = [];
    for (const atv of readChildren(set.content, `${what} RDN`)) {
      expectTag(atv, Tag.SEQUENCE, `${what} AttributeTypeAndValue`);
      const [type, value, ...extra] = readChildren(atv.content, `${what} AttributeTypeAndValue`);
      if (!type || !value || extra.length) throw new DerError(`${what}: AttributeTypeAndValue is not { type, value }`);
      expectTag(type, Tag.OID, `${what} attribute type`);
      atvs.push({
        type: readOid(type, `${what} attribute type`),
        tag: value.tag,
        encoded: Buffer.from(value.encoded),
        text: decodeString(value.tag, value.content),
      });
    }
    if (atvs.length === 0) throw new DerError(`${what}: empty RDN`);
    rdns.push(atvs);
  }
  return finish(Buffer.from(der), rdns);
}

function finish(der: Buffer, rdns: AttributeTypeAndValue[][]): Name {
  return { der, rdns, text: formatRdns(rdns), key: comparisonKey(rdns) };
}

/** "C=CH, O=X, CN=moon" for a DER Name, or null if the octets are not a Name. */
export function dnToString(der: Uint8Array): string | null {
  try {
    return decodeName(Buffer.from(der)).text;
  } catch (err) {
    if (err instanceof DerError) return null;
    throw err;
  }
}

/** Escape what the text form would otherwise read differently: "\\", ",", "+", a leading "#", edge spaces. */
function escapeValue(s: string): string {
  return s
    .replace(/[\\,+]/g, (c) => `\\${c}`)
    .replace(/^[# ]/, (c) => `\\${c}`)
    .replace(/ $/, '\\ ');
}

function formatRdns(rdns: readonly RelativeDistinguishedName[]): string {
  return rdns
    .map((rdn) =>
      rdn
        .map((atv) => {
          const name = NAME_OF_OID.get(atv.type) ?? atv.type;
          const value = atv.text === null ? `#${atv.encoded.toString('hex')}` : escapeValue(atv.text);
          return `${name}=${value}`;
        })
        .join(' + '),
    )
    .join(', ');
}

function normalizeString(s: string): string {
  return s.normalize('NFKC').trim().replace(/\s+/g, ' ').toLowerCase();
}

function comparisonKey(rdns: readonly RelativeDistinguishedName[]): string {
  return JSON.stringify(
    rdns.map((rdn) => rdn.map((atv) => `${atv.type}=${atv.text === null ? `#${atv.encoded.toString('hex')}` : `"${normalizeString(atv.text)}`}`).sort()),
  );
}

/** Do two names denote the same entity (module comment: RFC 5280 §7.1, simplified)? */
export function namesMatch(a: Name, b: Name): boolean {
  return a.key === b.key;
}

// ---------------------------------------------------------------------------
// Text → Name

const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

/** Split on an unescaped separator, keeping escapes for the next stage. */
function splitUnescaped(text: string, separator: string): string[] {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\\' && i + 1 < text.length) {
      current += c + text[i + 1]!;
      i++;
    } else if (c === separator) {
      parts.push(current);
      current = '';
    } else {
      current += c;
    }
  }
  parts.push(current);
  return parts;
}

function unescape(s: string): string {
  return s.replace(/\\([0-9a-fA-F]{2})|\\(.)/g, (_m, hex: string | undefined, ch: string | undefined) =>
    hex !== undefined ? String.fromCharCode(parseInt(hex, 16)) : ch!,
  );
}

/** DER of one attribute value; `raw` is the value text still escaped ("#hex" only when the "#" is not escaped). */
function encodeValue(type: string, raw: string, text: string): Buffer {
  if (raw.startsWith('#')) {
    const hex = raw.slice(1);
    if (!/^([0-9a-fA-F]{2})+$/.test(hex)) throw new PkiError(`DN "${text}": "${raw}" is not #hex`);
    const der = Buffer.from(hex, 'hex');
    try {
      readWhole(der, der[0]!, 'value');
    } catch {
      throw new PkiError(`DN "${text}": "${raw}" is not one DER element`);
    }
    return der;
  }
  const value = unescape(raw);
  if (IA5_ATTRIBUTES.has(type)) {
    if (!/^[\x00-\x7f]*$/.test(value)) throw new PkiError(`DN "${text}": ${NAME_OF_OID.get(type)} must be ASCII`);
    return tlv(Tag.IA5_STRING, Buffer.from(value, 'latin1'));
  }
  if (PRINTABLE.test(value)) return tlv(Tag.PRINTABLE_STRING, Buffer.from(value, 'latin1'));
  if (PRINTABLE_ONLY_ATTRIBUTES.has(type)) {
    throw new PkiError(`DN "${text}": ${NAME_OF_OID.get(type)} allows only PrintableString characters`);
  }
  return tlv(Tag.UTF8_STRING, Buffer.from(value, 'utf8'));
}

/**
 * A Name from text such as "C=CH, O=IKEv2 Interop Test, CN=moon" or
 * "/C=CH/O=X/CN=moon". Values are PrintableString when they fit, UTF8String
 * otherwise (IA5String for E and DC). A "+" starts another attribute of the
 * same RDN only when followed by "type="; otherwise it is part of the value.
 */
export function nameFromString(text: string): Name {
  try {
    return parseNameText(text);
  } catch (err) {
    // A dotted attribute type that is no valid OID ("1.99=x") fails in the DER writer.
    if (err instanceof DerError) throw new PkiError(`DN "${text}": ${err.message}`);
    throw err;
  }
}

function parseNameText(text: string): Name {
  const slashForm = text.startsWith('/');
  const rdnTexts = slashForm ? splitUnescaped(text.slice(1), '/') : splitUnescaped(text, ',');
  const rdns: AttributeTypeAndValue[][] = [];
  const encodedRdns: Buffer[] = [];
  for (const rdnText of rdnTexts) {
    if (rdnText.trim() === '') {
      if (slashForm && rdnText === '') continue; // "/C=CH/CN=moon/"
      throw new PkiError(`DN "${text}": empty RDN`);
    }
    const atvTexts = mergePlusParts(splitUnescaped(rdnText, '+'));
    const atvs: AttributeTypeAndValue[] = [];
    for (const atvText of atvTexts) {
      const eq = atvText.indexOf('=');
      if (eq < 0) throw new PkiError(`DN "${text}": "${atvText.trim()}" is not type=value`);
      const typeText = atvText.slice(0, eq).trim();
      const type = /^\d+(\.\d+)+$/.test(typeText) ? typeText : OID_OF_NAME.get(typeText.toLowerCase());
      if (!type) throw new PkiError(`DN "${text}": unknown attribute type "${typeText}"`);
      const raw = atvText
        .slice(eq + 1)
        .replace(/^\s+/, '')
        .replace(/(?<!\\)\s+$/, '');
      let encoded: Buffer;
      try {
        encoded = encodeValue(type, raw, text);
      } catch (err) {
        if (err instanceof DerError) throw new PkiError(`DN "${text}": ${err.message}`);
        throw err;
      }
      const inner = readWhole(encoded, encoded[0]!, 'value');
      atvs.push({ type, tag: encoded[0]!, encoded, text: decodeString(inner.tag, inner.content) });
    }
    rdns.push(atvs);
    const atvDers = atvs.map((a) => tlv(Tag.SEQUENCE, Buffer.concat([oidTlv(a.type), a.encoded])));
    // DER orders the members of a SET OF by their encodings (X.690 §11.6).
    atvDers.sort(Buffer.compare);
    encodedRdns.push(tlv(Tag.SET, Buffer.concat(atvDers)));
  }
  if (rdns.length === 0) throw new PkiError(`DN "${text}": no RDNs`);
  return finish(tlv(Tag.SEQUENCE, Buffer.concat(encodedRdns)), rdns);
}

/** Re-join "+"-separated pieces that do not start with "type=" (a literal "+" in a value). */
function mergePlusParts(parts: string[]): string[] {
  const out: string[] = [];
  for (const part of parts) {
    if (out.length > 0 && !/^\s*[A-Za-z0-9.]+\s*=/.test(part)) out[out.length - 1] += `+${part}`;
    else out.push(part);
  }
  return out;
}
