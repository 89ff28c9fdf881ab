/**
 * Bounds-checked reading of a wire structure. Every read either returns
 * octets that exist or raises IkeParseError (INVALID_SYNTAX) naming the
 * structure and field, so no decoder can read out of bounds or loop on a
 * zero-length element.
 */
import { IkeEncodeError, IkeParseError } from './errors.js';
import { plural } from '../../util/format.js';

export class Reader {
  /**
   * @param buf    the whole buffer being decoded (offsets in errors are into it)
   * @param pos    first octet of this structure
   * @param end    one past its last octet
   * @param where  name used in error messages, e.g. "TSi" or "SA proposal 2"
   * @param payloadType payload being decoded, carried into errors
   */
  constructor(
    readonly buf: Buffer,
    public pos: number,
    readonly end: number,
    readonly where: string,
    readonly payloadType?: number,
  ) {}

  get remaining(): number {
    return this.end - this.pos;
  }

  atEnd(): boolean {
    return this.pos >= this.end;
  }

  fail(message: string, at: number = this.pos): never {
    throw new IkeParseError(`${this.where}: ${message}`, {
      offset: at,
      ...(this.payloadType === undefined ? {} : { payloadType: this.payloadType }),
    });
  }

  private need(n: number, field: string): void {
    if (n > this.remaining) {
      this.fail(`${field} needs ${plural(n, 'octet')}, only ${Math.max(0, this.remaining)} left`);
    }
  }

  u8(field: string): number {
    this.need(1, field);
    return this.buf[this.pos++]!;
  }

  u16(field: string): number {
    this.need(2, field);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  u32(field: string): number {
    this.need(4, field);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  /** A copy of the next `n` octets (decoded payloads never alias the datagram). */
  bytes(n: number, field: string): Buffer {
    this.need(n, field);
    const out = Buffer.from(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return out;
  }

  /** A copy of everything up to the end of this structure. */
  rest(): Buffer {
    return this.bytes(this.remaining, 'rest');
  }

  /** A reader for the next `length` octets (a substructure), advancing past them. */
  sub(length: number, where: string, field: string): Reader {
    this.need(length, field);
    const r = new Reader(this.buf, this.pos, this.pos + length, where, this.payloadType);
    this.pos += length;
    return r;
  }

  /** Fail unless every octet has been consumed. */
  expectEnd(what: string): void {
    if (this.pos !== this.end) this.fail(`${plural(this.remaining, 'unexpected octet')} after ${what}`);
  }
}

/** Collects encoded pieces; tiny helpers so encoders read like the wire layout. */
export class Writer {
  private readonly parts: Buffer[] = [];
  private length = 0;

  u8(v: number): this {
    return this.push(Buffer.from([v]));
  }

  u16(v: number): this {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(v);
    return this.push(b);
  }

  u24(v: number): this {
    return this.push(Buffer.from([(v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff]));
  }

  u32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v >>> 0);
    return this.push(b);
  }

  bytes(b: Uint8Array): this {
    return this.push(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
  }

  get size(): number {
    return this.length;
  }

  finish(): Buffer {
    return Buffer.concat(this.parts, this.length);
  }

  private push(b: Buffer): this {
    this.parts.push(b);
    this.length += b.length;
    return this;
  }
}

/** `value` if it is an integer that fits in `bits` unsigned bits; IkeEncodeError otherwise. */
export function checkUint(value: number, bits: number, what: string): number {
  if (!Number.isInteger(value) || value < 0 || value >= 2 ** bits) {
    throw new IkeEncodeError(`${what}: ${value} does not fit in ${bits} unsigned bits`);
  }
  return value;
}

/** `b` if its length is within [min, max]; IkeEncodeError otherwise. */
export function checkLength(b: Uint8Array, min: number, max: number, what: string): Uint8Array {
  if (b.length < min || b.length > max) {
    throw new IkeEncodeError(`${what}: length ${b.length} outside ${min}..${max}`);
  }
  return b;
}
