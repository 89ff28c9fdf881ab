/**
 * Just enough DER (X.690 §10) to read and write certificates, CRLs and
 * names: single-octet tags, definite lengths, every read bounds-checked.
 *
 * Reading never trusts a length: an element that does not fit its
 * container, an indefinite or over-long length, or a high tag number is a
 * DerError naming what was being read. Callers turn that into a PkiError
 * with the file or payload it came from.
 */

/** Universal tags used in X.509 (X.680 §8.4). */
export const Tag = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  ENUMERATED: 0x0a,
  UTF8_STRING: 0x0c,
  SEQUENCE: 0x30,
  SET: 0x31,
  NUMERIC_STRING: 0x12,
  PRINTABLE_STRING: 0x13,
  T61_STRING: 0x14,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  VISIBLE_STRING: 0x1a,
  UNIVERSAL_STRING: 0x1c,
  BMP_STRING: 0x1e,
} as const;

/** [n] IMPLICIT primitive / [n] constructed (EXPLICIT or IMPLICIT SEQUENCE). */
export const contextPrimitive = (n: number): number => 0x80 | n;
export const contextConstructed = (n: number): number => 0xa0 | n;

export class DerError extends Error {
  override readonly name = 'DerError';
}

/** One element: its tag, its content octets and the whole TLV as it was encoded. */
export interface DerElement {
  readonly tag: number;
  readonly content: Buffer;
  /** Tag, length and content exactly as read (what a signature covers). */
  readonly encoded: Buffer;
  /** Offset just past the element in the buffer it was read from. */
  readonly end: number;
}

/** Read one element at `offset` of `buf`. */
export function readElement(buf: Buffer, offset: number, what: string): DerElement {
  if (offset + 2 > buf.length) throw new DerError(`${what}: truncated`);
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError(`${what}: high tag number form is not used in X.509`);
  const first = buf[offset + 1]!;
  let pos = offset + 2;
  let length = first;
  if (first & 0x80) {
    const count = first & 0x7f;
    if (count === 0) throw new DerError(`${what}: indefinite length is not DER`);
    if (count > 4) throw new DerError(`${what}: length of ${count} octets is too large`);
    if (pos + count > buf.length) throw new DerError(`${what}: truncated length`);
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + buf[pos + i]!;
    if (buf[pos] === 0 || length < 0x80) throw new DerError(`${what}: length is not minimally encoded`);
    pos += count;
  }
  const end = pos + length;
  if (end > buf.length) throw new DerError(`${what}: ${length} content octets announced, ${buf.length - pos} present`);
  return { tag, content: buf.subarray(pos, end), encoded: buf.subarray(offset, end), end };
}

/** `buf` must be exactly one element with tag `tag`. */
export function readWhole(buf: Buffer, tag: number, what: string): DerElement {
  // The tag first: "expected 0x30, found 0x6e" says more about a text file than a length error.
  if (buf.length > 0 && buf[0] !== tag) {
    throw new DerError(`${what}: expected tag 0x${tag.toString(16).padStart(2, '0')}, found 0x${buf[0]!.toString(16).padStart(2, '0')}`);
  }
  const el = readElement(buf, 0, what);
  expectTag(el, tag, what);
  if (el.end !== buf.length) throw new DerError(`${what}: ${buf.length - el.end} trailing octets`);
  return el;
}

/** The elements inside a constructed value's content, in order. */
export function readChildren(content: Buffer, what: string): DerElement[] {
  const out: DerElement[] = [];
  for (let offset = 0; offset < content.length;) {
    const el = readElement(content, offset, what);
    out.push(el);
    offset = el.end;
  }
  return out;
}

export function expectTag(el: DerElement | undefined, tag: number, what: string): DerElement {
  if (!el) throw new DerError(`${what}: missing`);
  if (el.tag !== tag) {
    throw new DerError(`${what}: expected tag 0x${tag.toString(16).padStart(2, '0')}, found 0x${el.tag.toString(16).padStart(2, '0')}`);
  }
  return el;
}

/** A sequence reader: take elements in order, optional ones by tag. */
export class DerCursor {
  private index = 0;
  private readonly items: DerElement[];

  constructor(
    content: Buffer,
    private readonly what: string,
  ) {
    this.items = readChildren(content, what);
  }

  /** The next element, which must have `tag`. */
  next(tag: number, field: string): DerElement {
    const el = this.items[this.index];
    expectTag(el, tag, `${this.what} ${field}`);
    this.index++;
    return el!;
  }

  /** The next element, whatever its tag (a CHOICE the caller checks). */
  nextAny(field: string): DerElement {
    const el = this.items[this.index];
    if (!el) throw new DerError(`${this.what} ${field}: missing`);
    this.index++;
    return el;
  }

  /** The next element if it has `tag`, else undefined (nothing consumed). */
  optional(tag: number): DerElement | undefined {
    const el = this.items[this.index];
    if (el?.tag !== tag) return undefined;
    this.index++;
    return el;
  }

  /** Everything must have been read. */
  done(): void {
    if (this.index !== this.items.length) throw new DerError(`${this.what}: unexpected element with tag 0x${this.items[this.index]!.tag.toString(16)}`);
  }
}

export function readOid(el: DerElement, what: string): string {
  const v = el.content;
  if (v.length === 0) throw new DerError(`${what}: empty OBJECT IDENTIFIER`);
  if (v[v.length - 1]! & 0x80) throw new DerError(`${what}: truncated OBJECT IDENTIFIER`);
  const arcs: number[] = [];
  let acc = 0;
  let started = false;
  for (const b of v) {
    if (!started && b === 0x80) throw new DerError(`${what}: OBJECT IDENTIFIER arc with a leading 0x80`);
    started = true;
    acc = acc * 128 + (b & 0x7f);
    if (acc > Number.MAX_SAFE_INTEGER / 256) throw new DerError(`${what}: OBJECT IDENTIFIER arc too large`);
    if (!(b & 0x80)) {
      arcs.push(acc);
      acc = 0;
      started = false;
    }
  }
  const first = arcs.shift()!;
  const head = first < 40 ? [0, first] : first < 80 ? [1, first - 40] : [2, first - 80];
  return [...head, ...arcs].join('.');
}

export function readBoolean(el: DerElement, what: string): boolean {
  if (el.content.length !== 1) throw new DerError(`${what}: BOOLEAN must be one octet`);
  const b = el.content[0]!;
  if (b !== 0x00 && b !== 0xff) throw new DerError(`${what}: BOOLEAN is neither 0x00 nor 0xff`);
  return b === 0xff;
}

/** A small non-negative INTEGER (pathLenConstraint, CRL reason, version). */
export function readSmallUint(el: DerElement, what: string): number {
  const v = el.content;
  if (v.length === 0 || v.length > 6) throw new DerError(`${what}: INTEGER out of range`);
  if (v[0]! & 0x80) throw new DerError(`${what}: negative INTEGER`);
  return v.readUIntBE(0, v.length);
}

/** BIT STRING: the unused-bits count and the octets. */
export function readBitString(el: DerElement, what: string): { unusedBits: number; bytes: Buffer } {
  const v = el.content;
  if (v.length === 0) throw new DerError(`${what}: empty BIT STRING`);
  const unusedBits = v[0]!;
  if (unusedBits > 7 || (unusedBits > 0 && v.length === 1)) throw new DerError(`${what}: bad BIT STRING padding`);
  return { unusedBits, bytes: v.subarray(1) };
}

/** UTCTime or GeneralizedTime as RFC 5280 §4.1.2.5 profiles them: seconds, "Z". */
export function readTime(el: DerElement, what: string): Date {
  const text = el.content.toString('latin1');
  let m: RegExpExecArray | null;
  let year: number;
  if (el.tag === Tag.UTC_TIME) {
    m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text);
    if (!m) throw new DerError(`${what}: UTCTime "${printable(text)}" is not YYMMDDHHMMSSZ`);
    const yy = Number(m[1]);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
  } else if (el.tag === Tag.GENERALIZED_TIME) {
    m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text);
    if (!m) throw new DerError(`${what}: GeneralizedTime "${printable(text)}" is not YYYYMMDDHHMMSSZ`);
    year = Number(m[1]);
  } else {
    throw new DerError(`${what}: expected UTCTime or GeneralizedTime, found tag 0x${el.tag.toString(16)}`);
  }
  const [mon, day, h, min, s] = [m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number];
  const d = new Date(Date.UTC(2000, mon - 1, day, h, min, s));
  d.setUTCFullYear(year); // Date.UTC maps years 0-99 to 1900-1999
  if (mon < 1 || mon > 12 || d.getUTCDate() !== day || h > 23 || min > 59 || s > 59) {
    throw new DerError(`${what}: "${printable(text)}" is not a valid date`);
  }
  return d;
}

function printable(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '?').slice(0, 40);
}

// ---------------------------------------------------------------------------
// Writing

export function tlv(tag: number, content: Uint8Array): Buffer {
  const n = content.length;
  let header: number[];
  if (n < 0x80) header = [tag, n];
  else if (n < 0x100) header = [tag, 0x81, n];
  else if (n < 0x10000) header = [tag, 0x82, n >> 8, n & 0xff];
  else if (n < 0x1000000) header = [tag, 0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
  else throw new DerError('DER element too long');
  return Buffer.concat([Buffer.from(header), content]);
}

export function sequence(...items: Uint8Array[]): Buffer {
  return tlv(Tag.SEQUENCE, Buffer.concat(items));
}

export function oidContent(oid: string): Buffer {
  const arcs = oid.split('.').map((a) => (/^\d+$/.test(a) ? Number(a) : NaN));
  if (arcs.length < 2 || arcs.some((a) => !Number.isSafeInteger(a))) throw new DerError(`"${oid}" is not a dotted OID`);
  const [a, b, ...rest] = arcs as [number, number, ...number[]];
  if (a > 2 || (a < 2 && b > 39)) throw new DerError(`"${oid}" is not a valid OID`);
  const out: number[] = [];
  for (const arc of [a * 40 + b, ...rest]) {
    const bytes = [arc % 128];
    let v = Math.floor(arc / 128);
    while (v > 0) {
      bytes.unshift((v % 128) | 0x80);
      v = Math.floor(v / 128);
    }
    out.push(...bytes);
  }
  return Buffer.from(out);
}

export function oid(dotted: string): Buffer {
  return tlv(Tag.OID, oidContent(dotted));
}

/** The SIGNED{…} outer structure shared by certificates and CRLs (RFC 5280 §4.1, §5.1). */
export interface SignedStructure {
  /** The to-be-signed element (tbsCertificate / tbsCertList). */
  tbs: DerElement;
  signatureAlgorithm: DerElement;
  signatureValue: Buffer;
}

/** SEQUENCE { tbs SEQUENCE, signatureAlgorithm SEQUENCE, signatureValue BIT STRING (whole octets) }. */
export function readSignedStructure(der: Buffer, name: string, tbsName: string): SignedStructure {
  const outer = readWhole(der, Tag.SEQUENCE, name);
  const top = new DerCursor(outer.content, name);
  const tbs = top.next(Tag.SEQUENCE, tbsName);
  const signatureAlgorithm = top.next(Tag.SEQUENCE, 'signatureAlgorithm');
  const sigValue = readBitString(top.next(Tag.BIT_STRING, 'signatureValue'), 'signatureValue');
  top.done();
  if (sigValue.unusedBits !== 0) throw new DerError('signatureValue: not a whole number of octets');
  return { tbs, signatureAlgorithm, signatureValue: sigValue.bytes };
}
