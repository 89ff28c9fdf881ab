/**
 * IP addresses as identities and iPAddress SANs carry them: 4 or 16 octets.
 * Text in: dotted quad, or RFC 4291 §2.2 IPv6 (with "::" and an embedded
 * dotted quad). Text out: dotted quad, or RFC 5952 (lower case, longest run
 * of two or more zero groups shortened to "::").
 */

/** 4 octets for "a.b.c.d" (no leading zeros, each 0-255), else null. */
export function parseIpv4(text: string): Buffer | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  const out = Buffer.alloc(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^(0|[1-9]\d{0,2})$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    out[i] = n;
  }
  return out;
}

/** 16 octets for an IPv6 address in text, else null (no zone IDs, no prefixes). */
export function parseIpv6(text: string): Buffer | null {
  if (!/^[0-9A-Fa-f:.]+$/.test(text)) return null;
  let tail: Buffer | null = null;
  let hexPart = text;
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.')) {
    tail = parseIpv4(text.slice(lastColon + 1));
    if (!tail) return null;
    // The dotted quad stands for the last two groups; parse it as "0:0" and patch it in.
    hexPart = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const halves = hexPart.split('::');
  if (halves.length > 2) return null;
  const group = (s: string): number[] | null => {
    if (s === '') return [];
    const gs = s.split(':');
    const out: number[] = [];
    for (const g of gs) {
      if (!/^[0-9A-Fa-f]{1,4}$/.test(g)) return null;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = group(halves[0]!);
  const rest = halves.length === 2 ? group(halves[1]!) : [];
  if (!head || !rest) return null;
  let groups: number[];
  if (halves.length === 2) {
    const missing = 8 - head.length - rest.length;
    if (missing < 1) return null;
    groups = [...head, ...new Array<number>(missing).fill(0), ...rest];
  } else {
    groups = head;
  }
  if (groups.length !== 8) return null;
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(g, 2 * i));
  if (tail) tail.copy(out, 12);
  return out;
}

/** 4 or 16 octets for IPv4 or IPv6 text, else null. */
export function parseIp(text: string): Buffer | null {
  return parseIpv4(text) ?? parseIpv6(text);
}

/** Dotted quad for 4 octets, RFC 5952 text for 16, hex for anything else. */
export function formatIp(bytes: Uint8Array): string {
  const b = Buffer.from(bytes);
  if (b.length === 4) return [...b].join('.');
  if (b.length !== 16) return `#${b.toString('hex')}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i));
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
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
