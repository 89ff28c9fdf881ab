/**
 * IPv4/IPv6 address text ⇄ octets, for address checks and traffic selector
 * ranges in the configuration (RFC 4291 §2.2 input, RFC 5952 output).
 */
import { isIPv4, isIPv6 } from 'node:net';

export type Family = 4 | 6;

export function ipFamily(text: string): Family | undefined {
  if (isIPv4(text)) return 4;
  if (isIPv6(text) && !text.includes('%')) return 6;
  return undefined;
}

/** 4 or 16 octets, or undefined if `text` is not an IP address (no zone IDs). */
export function ipToBytes(text: string): Uint8Array | undefined {
  const family = ipFamily(text);
  if (family === 4) return Uint8Array.from(text.split('.').map(Number));
  if (family !== 6) return undefined;
  let head = text;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  const tailWords: number[] = [];
  if (v4 !== null && v4[1] !== undefined) {
    const b = v4[1].split('.').map(Number);
    tailWords.push(((b[0] ?? 0) << 8) | (b[1] ?? 0), ((b[2] ?? 0) << 8) | (b[3] ?? 0));
    head = text.slice(0, -v4[1].length);
    if (head.endsWith(':') && !head.endsWith('::')) head = head.slice(0, -1);
  }
  const [left = '', right] = head.split('::');
  const parse = (s: string): number[] => (s === '' ? [] : s.split(':').map((h) => parseInt(h, 16)));
  const l = parse(left);
  const r = [...(right === undefined ? [] : parse(right)), ...tailWords];
  const words = right === undefined ? [...l, ...tailWords] : [...l, ...new Array<number>(8 - l.length - r.length).fill(0), ...r];
  const out = new Uint8Array(16);
  words.forEach((w, i) => {
    out[2 * i] = w >> 8;
    out[2 * i + 1] = w & 0xff;
  });
  return out;
}

/** Canonical text: dotted quad, or RFC 5952 IPv6 (lower case, longest zero run compressed). */
export function bytesToIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return [...bytes].join('.');
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push(((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0));
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (bestStart === -1) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

export function bytesToBigInt(bytes: Uint8Array): bigint {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  return n;
}

export function bigIntToBytes(n: bigint, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let v = n;
  for (let i = length - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** Canonical text of an address (`FD77::0001` → `fd77::1`), or undefined if it is not one. */
export function canonicalIp(text: string): string | undefined {
  const bytes = ipToBytes(text);
  return bytes === undefined ? undefined : bytesToIp(bytes);
}
