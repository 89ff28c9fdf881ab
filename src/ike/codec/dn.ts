/**
 * Distinguished Names for ID_DER_ASN1_DN (RFC 7296 §3.5): DER ↔ the text form
 * operators write ("C=CH, O=Example, CN=moon.example.org", the order of the
 * DER, as strongSwan prints it).
 *
 *   Name ::= SEQUENCE OF RelativeDistinguishedName
 *   RelativeDistinguishedName ::= SET OF AttributeTypeAndValue
 *   AttributeTypeAndValue ::= SEQUENCE { type OBJECT IDENTIFIER, value ANY }
 *
 * Only what an identity needs: short names for the usual attribute types,
 * the usual string types, dotted OIDs and "#hex" for the rest. Commas and
 * backslashes inside values are escaped with a backslash. Multi-valued RDNs
 * print joined by " + " but cannot be written in text.
 */

const TAG_SEQUENCE = 0x30;
const TAG_SET = 0x31;
const TAG_OID = 0x06;
const TAG_UTF8 = 0x0c;
const TAG_PRINTABLE = 0x13;
const TAG_T61 = 0x14;
const TAG_IA5 = 0x16;
const TAG_UNIVERSAL = 0x1c;
const TAG_BMP = 0x1e;

const NAMES: ReadonlyArray<readonly [string, string]> = [
  ['2.5.4.3', 'CN'],
  ['2.5.4.4', 'SN'],
  ['2.5.4.5', 'serialNumber'],
  ['2.5.4.6', 'C'],
  ['2.5.4.7', 'L'],
  ['2.5.4.8', 'ST'],
  ['2.5.4.9', 'street'],
  ['2.5.4.10', 'O'],
  ['2.5.4.11', 'OU'],
  ['2.5.4.12', 'T'],
  ['2.5.4.17', 'postalCode'],
  ['2.5.4.42', 'G'],
  ['2.5.4.43', 'I'],
  ['2.5.4.46', 'dnQualifier'],
  ['1.2.840.113549.1.9.1', 'E'],
  ['0.9.2342.19200300.100.1.1', 'UID'],
  ['0.9.2342.19200300.100.1.25', 'DC'],
];
const NAME_OF = new Map(NAMES);
const OID_OF = new Map<string, string>(NAMES.map(([oid, name]) => [name.toLowerCase(), oid]));
OID_OF.set('email', '1.2.840.113549.1.9.1');
OID_OF.set('emailaddress', '1.2.840.113549.1.9.1');

interface Tlv {
  tag: number;
  value: Buffer;
  end: number;
}

/** One DER TLV at `pos`, or null if it does not fit (never throws). */
function readTlv(buf: Buffer, pos: number, end: number): Tlv | null {
  if (pos + 2 > end) return null;
  const tag = buf[pos]!;
  if ((tag & 0x1f) === 0x1f) return null;
  let len = buf[pos + 1]!;
  let p = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 3 || p + n > end) return null;
    len = 0;
    for (let i = 0; i < n; i++) len = (len << 8) | buf[p + i]!;
    p += n;
  }
  if (p + len > end) return null;
  return { tag, value: buf.subarray(p, p + len), end: p + len };
}

function oidToString(v: Buffer): string | null {
  if (v.length === 0) return null;
  const arcs: number[] = [];
  let acc = 0;
  for (const b of v) {
    acc = acc * 128 + (b & 0x7f);
    if (acc > Number.MAX_SAFE_INTEGER / 128) return null;
    if (!(b & 0x80)) {
      arcs.push(acc);
      acc = 0;
    }
  }
  if (v[v.length - 1]! & 0x80) return null;
  const first = arcs.shift()!;
  const head = first < 80 ? [Math.floor(first / 40), first % 40] : [2, first - 80];
  return [...head, ...arcs].join('.');
}

function oidToDer(oid: string): Buffer | null {
  const arcs = oid.split('.').map(Number);
  if (arcs.length < 2 || arcs.some((a) => !Number.isSafeInteger(a) || a < 0)) return null;
  const [a, b, ...rest] = arcs as [number, number, ...number[]];
  if (a > 2 || (a < 2 && b > 39)) return null;
  const out: number[] = [];
  for (const arc of [a * 40 + b, ...rest]) {
    const bytes = [arc & 0x7f];
    let v = Math.floor(arc / 128);
    while (v > 0) {
      bytes.unshift((v & 0x7f) | 0x80);
      v = Math.floor(v / 128);
    }
    out.push(...bytes);
  }
  return Buffer.from(out);
}

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  if (n < 0x100) return Buffer.from([0x81, n]);
  if (n < 0x10000) return Buffer.from([0x82, n >> 8, n & 0xff]);
  return Buffer.from([0x83, n >> 16, (n >> 8) & 0xff, n & 0xff]);
}

function tlv(tag: number, value: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), derLength(value.length), value]);
}

function stringValue(tag: number, v: Buffer): string | null {
  switch (tag) {
    case TAG_UTF8:
      return v.toString('utf8');
    case TAG_PRINTABLE:
    case TAG_IA5:
    case TAG_T61:
      return v.toString('latin1');
    case TAG_BMP: {
      if (v.length % 2) return null;
      const swapped = Buffer.from(v);
      swapped.swap16();
      return swapped.toString('utf16le');
    }
    case TAG_UNIVERSAL: {
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

function escapeValue(s: string): string {
  return s.replace(/[\\,]/g, (c) => `\\${c}`);
}

/** "C=CH, O=Example, CN=moon" for a DER Name, or null if the octets are not one (never throws). */
export function dnToString(der: Buffer): string | null {
  const name = readTlv(der, 0, der.length);
  if (!name || name.tag !== TAG_SEQUENCE || name.end !== der.length) return null;
  const rdns: string[] = [];
  const body = name.value;
  for (let pos = 0; pos < body.length; ) {
    const set = readTlv(body, pos, body.length);
    if (!set || set.tag !== TAG_SET) return null;
    pos = set.end;
    const atvs: string[] = [];
    for (let q = 0; q < set.value.length; ) {
      const seq = readTlv(set.value, q, set.value.length);
      if (!seq || seq.tag !== TAG_SEQUENCE) return null;
      q = seq.end;
      const oid = readTlv(seq.value, 0, seq.value.length);
      if (!oid || oid.tag !== TAG_OID) return null;
      const value = readTlv(seq.value, oid.end, seq.value.length);
      if (!value || value.end !== seq.value.length) return null;
      const oidText = oidToString(oid.value);
      if (oidText === null) return null;
      const text = stringValue(value.tag, value.value);
      const rendered =
        text === null ? `#${seq.value.subarray(oid.end).toString('hex')}` : escapeValue(text);
      atvs.push(`${NAME_OF.get(oidText) ?? oidText}=${rendered}`);
    }
    if (atvs.length === 0) return null;
    rdns.push(atvs.join(' + '));
  }
  return rdns.join(', ');
}

const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

/** DER Name for "C=CH, O=Example, CN=moon" (one attribute per RDN), or null if the text is not a DN. */
export function dnFromString(text: string): Buffer | null {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\\' && i + 1 < text.length) {
      current += c + text[++i]!;
    } else if (c === ',') {
      parts.push(current);
      current = '';
    } else {
      current += c;
    }
  }
  parts.push(current);
  const rdns: Buffer[] = [];
  for (const raw of parts) {
    const part = raw.trim();
    if (part === '') {
      if (parts.length === 1) return null;
      continue;
    }
    const eq = part.indexOf('=');
    if (eq <= 0) return null;
    const key = part.slice(0, eq).trim();
    const value = part
      .slice(eq + 1)
      .trim()
      .replace(/\\(.)/g, '$1');
    const oid = OID_OF.get(key.toLowerCase()) ?? (/^\d+(\.\d+)+$/.test(key) ? key : undefined);
    if (oid === undefined) return null;
    const oidDer = oidToDer(oid);
    if (oidDer === null) return null;
    let valueDer: Buffer;
    if (value.startsWith('#') && /^#([0-9a-fA-F]{2})+$/.test(value)) {
      valueDer = Buffer.from(value.slice(1), 'hex');
      if (readTlv(valueDer, 0, valueDer.length)?.end !== valueDer.length) return null;
    } else {
      const ia5 = oid === '1.2.840.113549.1.9.1' || oid === '0.9.2342.19200300.100.1.25';
      const tag = ia5 ? TAG_IA5 : PRINTABLE.test(value) ? TAG_PRINTABLE : TAG_UTF8;
      valueDer = tlv(tag, Buffer.from(value, tag === TAG_UTF8 ? 'utf8' : 'latin1'));
    }
    rdns.push(tlv(TAG_SET, tlv(TAG_SEQUENCE, Buffer.concat([tlv(TAG_OID, oidDer), valueDer]))));
  }
  if (rdns.length === 0) return null;
  return tlv(TAG_SEQUENCE, Buffer.concat(rdns));
}
