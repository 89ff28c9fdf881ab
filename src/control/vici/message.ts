/**
 * VICI messages (strongSwan's Versatile IKE Control Interface, the protocol
 * swanctl speaks; src/libcharon/plugins/vici/README.md, "Message format"):
 * a sequence of elements forming a tree of sections, key/values and lists.
 *
 *   SECTION_START (1) name          SECTION_END (2)
 *   KEY_VALUE     (3) name value    LIST_START  (4) name
 *   LIST_ITEM     (5) value         LIST_END    (6)
 *
 * A name is an 8-bit length and that many ASCII octets; a value a 16-bit
 * big-endian length and that many octets (strongSwan puts text there, numbers
 * as decimal strings). Sections nest, lists do not, key/values and sections
 * never sit inside a list, names are unique within a section.
 *
 * The parser is strict and bounded: any violation is a ViciParseError naming
 * the octet offset, never an exception of another kind.
 */

export enum ViciElementType {
  SECTION_START = 1,
  SECTION_END = 2,
  KEY_VALUE = 3,
  LIST_START = 4,
  LIST_ITEM = 5,
  LIST_END = 6,
}

/** One element of a decoded message, in the order it arrived. */
export type ViciElement =
  | { readonly kind: 'value'; readonly name: string; readonly value: Buffer }
  | { readonly kind: 'list'; readonly name: string; readonly items: readonly Buffer[] }
  | { readonly kind: 'section'; readonly name: string; readonly elements: readonly ViciElement[] };

/** A decoded message: the elements of its implicit root section. */
export type ViciMessage = readonly ViciElement[];

/**
 * What a message is built from: a section is a Map (any key order kept) or a
 * plain object (string keys in insertion order); a list is an array; a value
 * is a string, a number, a bigint or raw octets. `undefined` entries are left
 * out, so optional keys can be written inline.
 */
export type ViciInputValue = string | number | bigint | Buffer | readonly (string | Buffer)[] | ViciInput | undefined;
export type ViciInput = ReadonlyMap<string, ViciInputValue> | { readonly [key: string]: ViciInputValue };

export class ViciParseError extends Error {
  override readonly name = 'ViciParseError';
}

export class ViciEncodeError extends Error {
  override readonly name = 'ViciEncodeError';
}

/** Bounds the parser enforces; the defaults are far above anything swanctl sends. */
export interface ViciParseLimits {
  /** Sections open at once. */
  maxDepth: number;
  /** Elements in one message. */
  maxElements: number;
}

export const DEFAULT_PARSE_LIMITS: ViciParseLimits = { maxDepth: 16, maxElements: 65536 };

const MAX_NAME = 255;
const MAX_VALUE = 65535;

/** Printable ASCII: what the README calls an ASCII name, minus control characters (they only mislead logs). */
function validName(octets: Buffer): boolean {
  for (const o of octets) if (o < 0x20 || o > 0x7e) return false;
  return true;
}

/** Decode a whole message (`data` is exactly the message: its length comes from the packet). */
export function decodeMessage(data: Buffer, limits: ViciParseLimits = DEFAULT_PARSE_LIMITS): ViciMessage {
  let pos = 0;
  let count = 0;
  const root: ViciElement[] = [];
  // The sections open now (innermost last), each with the names already used in it.
  const stack: Array<{ name: string; elements: ViciElement[]; names: Set<string> }> = [{ name: '', elements: root, names: new Set() }];
  let list: { name: string; items: Buffer[] } | undefined;

  const fail = (at: number, why: string): never => {
    throw new ViciParseError(`VICI message: ${why} (at octet ${at} of ${data.length})`);
  };
  const readName = (): string => {
    const at = pos;
    if (pos + 1 > data.length) fail(at, 'truncated before a name length');
    const len = data[pos]!;
    pos += 1;
    if (len === 0) fail(at, 'empty name');
    if (pos + len > data.length) fail(at, `name of ${len} octets runs past the end`);
    const octets = data.subarray(pos, pos + len);
    if (!validName(octets)) fail(at, 'name is not printable ASCII');
    pos += len;
    return octets.toString('latin1');
  };
  const readValue = (): Buffer => {
    const at = pos;
    if (pos + 2 > data.length) fail(at, 'truncated before a value length');
    const len = data.readUInt16BE(pos);
    pos += 2;
    if (pos + len > data.length) fail(at, `value of ${len} octets runs past the end`);
    const v = Buffer.from(data.subarray(pos, pos + len)); // a copy: the caller's buffer may be reused
    pos += len;
    return v;
  };
  const claim = (at: number, name: string): void => {
    const current = stack[stack.length - 1]!;
    if (current.names.has(name)) fail(at, `duplicate key '${name}' in ${current.name === '' ? 'the root section' : `section '${current.name}'`}`);
    current.names.add(name);
  };

  while (pos < data.length) {
    const at = pos;
    if (++count > limits.maxElements) fail(at, `more than ${limits.maxElements} elements`);
    const type = data[pos]!;
    pos += 1;
    const current = stack[stack.length - 1]!;
    switch (type) {
      case ViciElementType.SECTION_START: {
        if (list) fail(at, `section inside list '${list.name}'`);
        const name = readName();
        claim(at, name);
        if (stack.length > limits.maxDepth) fail(at, `sections nested deeper than ${limits.maxDepth}`);
        const elements: ViciElement[] = [];
        current.elements.push({ kind: 'section', name, elements });
        stack.push({ name, elements, names: new Set() });
        break;
      }
      case ViciElementType.SECTION_END:
        if (list) fail(at, `section end inside list '${list.name}'`);
        if (stack.length === 1) fail(at, 'section end without a section');
        stack.pop();
        break;
      case ViciElementType.KEY_VALUE: {
        if (list) fail(at, `key/value inside list '${list.name}'`);
        const name = readName();
        claim(at, name);
        current.elements.push({ kind: 'value', name, value: readValue() });
        break;
      }
      case ViciElementType.LIST_START: {
        if (list) fail(at, `list inside list '${list.name}'`);
        const name = readName();
        claim(at, name);
        const items: Buffer[] = [];
        current.elements.push({ kind: 'list', name, items });
        list = { name, items };
        break;
      }
      case ViciElementType.LIST_ITEM:
        if (!list) fail(at, 'list item outside a list');
        list!.items.push(readValue());
        break;
      case ViciElementType.LIST_END:
        if (!list) fail(at, 'list end without a list');
        list = undefined;
        break;
      default:
        fail(at, `unknown element type ${type}`);
    }
  }
  if (list) fail(pos, `list '${list.name}' not closed`);
  if (stack.length > 1) fail(pos, `section '${stack[stack.length - 1]!.name}' not closed`);
  return root;
}

/** Encode a message; a name or value that cannot be represented is a ViciEncodeError. */
export function encodeMessage(input: ViciInput): Buffer {
  const parts: Buffer[] = [];
  const name = (type: ViciElementType, n: string): void => {
    const octets = Buffer.from(n, 'latin1');
    if (octets.length === 0 || octets.length > MAX_NAME || !validName(octets) || octets.toString('latin1') !== n) {
      throw new ViciEncodeError(`VICI name ${JSON.stringify(n.slice(0, 40))} is not 1–255 printable ASCII characters`);
    }
    parts.push(Buffer.from([type, octets.length]), octets);
  };
  const value = (v: string | Buffer, what: string): void => {
    const octets = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
    if (octets.length > MAX_VALUE) throw new ViciEncodeError(`VICI value of ${what} is ${octets.length} octets, more than ${MAX_VALUE}`);
    const len = Buffer.alloc(2);
    len.writeUInt16BE(octets.length);
    parts.push(len, octets);
  };
  const section = (s: ViciInput, depth: number): void => {
    if (depth > DEFAULT_PARSE_LIMITS.maxDepth) throw new ViciEncodeError('VICI sections nested too deep');
    const entries = s instanceof Map ? [...(s as ReadonlyMap<string, ViciInputValue>).entries()] : Object.entries(s as Record<string, ViciInputValue>);
    for (const [key, v] of entries) {
      if (v === undefined) continue;
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'bigint' || Buffer.isBuffer(v)) {
        name(ViciElementType.KEY_VALUE, key);
        value(Buffer.isBuffer(v) ? v : String(v), `'${key}'`);
      } else if (Array.isArray(v)) {
        name(ViciElementType.LIST_START, key);
        for (const item of v as readonly (string | Buffer)[]) {
          parts.push(Buffer.from([ViciElementType.LIST_ITEM]));
          value(item, `an item of '${key}'`);
        }
        parts.push(Buffer.from([ViciElementType.LIST_END]));
      } else {
        name(ViciElementType.SECTION_START, key);
        section(v as ViciInput, depth + 1);
        parts.push(Buffer.from([ViciElementType.SECTION_END]));
      }
    }
  };
  section(input, 1);
  return Buffer.concat(parts);
}

/** The value of `key` in a message's root section as text; undefined when absent or not a key/value. */
export function messageString(message: ViciMessage, key: string): string | undefined {
  const e = message.find((x) => x.name === key);
  return e?.kind === 'value' ? e.value.toString('utf8') : undefined;
}

/** A message as a plain object for logs and tests: values as text, lists as arrays, sections as objects. */
export function messageToObject(message: ViciMessage): Record<string, unknown> {
  const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const e of message) {
    if (e.kind === 'value') out[e.name] = e.value.toString('utf8');
    else if (e.kind === 'list') out[e.name] = e.items.map((i) => i.toString('utf8'));
    else out[e.name] = messageToObject(e.elements);
  }
  return out;
}
