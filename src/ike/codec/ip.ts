/**
 * IP address text ↔ octets, for ID payloads and traffic selectors.
 * IPv6 text follows RFC 5952 (lower case, longest zero run as "::").
 */
import { isIPv4, isIPv6 } from 'node:net';

/** 4 or 16 octets for an IPv4 / IPv6 address in text form, or undefined if it is neither. */
export function parseIp(text: string): Buffer | undefined {
  if (isIPv4(text)) return Buffer.from(text.split('.').map(Number));
  if (!isIPv6(text) || text.includes('%')) return undefined;
  let s = text;
  let v4: number[] | undefined;
  const lastColon = s.lastIndexOf(':');
  const tail = s.slice(lastColon + 1);
  if (tail.includes('.')) {
    // A trailing dotted quad fills the last 32 bits.
    v4 = tail.split('.').map(Number);
    s = s.slice(0, lastColon + 1);
    if (!s.endsWith('::')) s = s.slice(0, -1);
  }
  const want = v4 ? 6 : 8;
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const groupsOf = (part: string): number[] => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const left = groupsOf(halves[0]!);
  let groups = left;
  if (halves.length === 2) {
    const right = groupsOf(halves[1]!);
    const fill = want - left.length - right.length;
    if (fill < 0) return undefined;
    groups = [...left, ...new Array<number>(fill).fill(0), ...right];
  }
  if (groups.length !== want || groups.some((g) => !(g >= 0 && g <= 0xffff))) return undefined;
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  if (v4) out.set(v4, 12);
  return out;
}

/** Text form of 4 or 16 octets; anything else comes back as hex prefixed with "#". */
export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  if (bytes.length !== 16) return `#${Buffer.from(bytes).toString('hex')}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
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
