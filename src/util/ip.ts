/**
 * IP address text ⇄ octets, the one implementation for ID payloads, traffic
 * selectors, iPAddress SANs and the configuration.
 *
 * Text in: a dotted quad ("a.b.c.d", each 0-255 without leading zeros), or
 * RFC 4291 §2.2 IPv6 text ("::" for one or more zero groups, an embedded
 * dotted quad in the last 32 bits); no zone IDs ("%eth0"), no prefixes, no
 * surrounding white space. Text out: a dotted quad, or RFC 5952 IPv6 (lower
 * case, leading zeros dropped, the first longest run of two or more zero
 * groups shortened to "::").
 *
 * Addresses are 4 (IPv4) or 16 (IPv6) octets.
 */

export type IpFamily = 4 | 6;

/** 4 octets for "a.b.c.d", else undefined. */
export function parseIpv4(text: string): Buffer | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const out = Buffer.alloc(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^(0|[1-9]\d{0,2})$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

/** 16 octets for an IPv6 address in text, else undefined. */
export function parseIpv6(text: string): Buffer | undefined {
  if (!/^[0-9A-Fa-f:.]+$/.test(text)) return undefined;
  let tail: Buffer | undefined;
  let hexPart = text;
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.')) {
    tail = parseIpv4(text.slice(lastColon + 1));
    if (!tail) return undefined;
    // The dotted quad stands for the last two groups; parse it as "0:0" and patch it in.
    hexPart = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const halves = hexPart.split('::');
  if (halves.length > 2) return undefined;
  const groupsOf = (s: string): number[] | undefined => {
    if (s === '') return [];
    const out: number[] = [];
    for (const g of s.split(':')) {
      if (!/^[0-9A-Fa-f]{1,4}$/.test(g)) return undefined;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = groupsOf(halves[0]!);
  const rest = halves.length === 2 ? groupsOf(halves[1]!) : [];
  if (!head || !rest) return undefined;
  let groups = head;
  if (halves.length === 2) {
    const missing = 8 - head.length - rest.length;
    if (missing < 1) return undefined;
    groups = [...head, ...new Array<number>(missing).fill(0), ...rest];
  }
  if (groups.length !== 8) return undefined;
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(g, 2 * i));
  if (tail) tail.copy(out, 12);
  return out;
}

/** 4 or 16 octets for IPv4 or IPv6 text, else undefined. */
export function parseIp(text: string): Buffer | undefined {
  return parseIpv4(text) ?? parseIpv6(text);
}

/** 4 or 6 for IPv4 or IPv6 text, else undefined. */
export function ipFamily(text: string): IpFamily | undefined {
  if (parseIpv4(text)) return 4;
  if (parseIpv6(text)) return 6;
  return undefined;
}

/** Dotted quad for 4 octets, RFC 5952 text for 16, "#" and hex for any other length. */
export function formatIp(bytes: Uint8Array): string {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length === 4) return [...b].join('.');
  if (b.length !== 16) return `#${b.toString('hex')}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i));
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestLen < 2) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** Canonical text of an address (`FD77::0001` → `fd77::1`), or undefined if it is not one. */
export function canonicalIp(text: string): string | undefined {
  const bytes = parseIp(text);
  return bytes === undefined ? undefined : formatIp(bytes);
}

/** Order for address texts: IPv4 before IPv6, then numerically; what does not parse sorts last, by text. */
export function compareIp(a: string, b: string): number {
  const x = parseIp(a);
  const y = parseIp(b);
  if (x === undefined || y === undefined) return x !== undefined ? -1 : y !== undefined ? 1 : a < b ? -1 : a > b ? 1 : 0;
  return x.length - y.length || Buffer.compare(x, y);
}

/** The octets as one unsigned big-endian number (address arithmetic). */
export function bytesToBigInt(bytes: Uint8Array): bigint {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  return n;
}

/** The low `length` octets of `n`, big-endian. */
export function bigIntToBytes(n: bigint, length: number): Buffer {
  const out = Buffer.alloc(length);
  let v = n;
  for (let i = length - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/**
 * First and last address of the prefix `address`/`length`: the address with
 * its host bits cleared and set. `length` must be 0 to 8 × the address size.
 */
export function prefixRange(address: Uint8Array, length: number): { start: Buffer; end: Buffer } {
  const bits = address.length * 8;
  if (!Number.isInteger(length) || length < 0 || length > bits) throw new RangeError(`prefix length ${length} is not 0-${bits}`);
  const start = Buffer.from(address);
  const end = Buffer.from(address);
  for (let bit = length; bit < bits; bit++) {
    const mask = 0x80 >> (bit % 8);
    start[bit >> 3]! &= ~mask;
    end[bit >> 3]! |= mask;
  }
  return { start, end };
}

/**
 * The fewest prefixes ("a.b.c.d/n", "x::/n") whose union is exactly the
 * address range `start`-`end`, in address order, e.g. 10.0.0.1-10.0.0.6 →
 * 10.0.0.1/32, 10.0.0.2/31, 10.0.0.4/31, 10.0.0.6/32. Greedy from the start:
 * each step takes the largest aligned block that stays inside the range.
 * Throws a RangeError unless both are addresses of one family with start ≤ end.
 */
export function rangeToPrefixes(start: string, end: string): string[] {
  const first = parseIp(start);
  const last = parseIp(end);
  if (first === undefined || last === undefined || first.length !== last.length) {
    throw new RangeError(`'${start}-${end}' is not an address range of one family`);
  }
  const bits = BigInt(first.length * 8);
  const stop = bytesToBigInt(last);
  let next = bytesToBigInt(first);
  if (next > stop) throw new RangeError(`the range '${start}-${end}' ends before it starts`);
  const prefixes: string[] = [];
  while (next <= stop) {
    let hostBits = 0n;
    for (;;) {
      const size = 1n << (hostBits + 1n);
      if (hostBits === bits || next % size !== 0n || next + size - 1n > stop) break;
      hostBits++;
    }
    prefixes.push(`${formatIp(bigIntToBytes(next, first.length))}/${bits - hostBits}`);
    next += 1n << hostBits;
  }
  return prefixes;
}
