/**
 * IP prefixes (`10.0.1.0/24`, `2001:db8::/48`, or a bare address as a
 * full-length prefix) for group connections and policy groups: parsed once,
 * matched against addresses without allocating, ordered longest first.
 */
import { type IpFamily, formatIp, parseIp, prefixRange } from './ip.js';
import { type Parsed, bad, ok } from './parsed.js';

export interface IpPrefix {
  family: IpFamily;
  /** The network address (host bits cleared). */
  network: Buffer;
  length: number;
  /** Canonical text: `10.0.1.0/24`. */
  text: string;
}

/** `a.b.c.d/n`, `x::/n` or an address (a /32 or /128). Host bits set after the length are an error, as in `ip route`. */
export function parsePrefix(text: string): Parsed<IpPrefix> {
  const t = text.trim();
  const slash = t.indexOf('/');
  const addressText = slash < 0 ? t : t.slice(0, slash);
  const address = parseIp(addressText);
  if (address === undefined) return bad(`'${t}' is not an IP address or prefix`);
  const bits = address.length * 8;
  const lengthText = slash < 0 ? String(bits) : t.slice(slash + 1);
  if (!/^\d{1,3}$/.test(lengthText) || Number(lengthText) > bits) return bad(`'${t}': the prefix length must be 0-${bits}`);
  const length = Number(lengthText);
  const { start } = prefixRange(address, length);
  if (!start.equals(address)) return bad(`'${t}' has host bits set; the prefix is ${formatIp(start)}/${length}`);
  return ok({ family: address.length === 4 ? 4 : 6, network: start, length, text: `${formatIp(start)}/${length}` });
}

/** Whether `address` (octets, 4 or 16) lies in `prefix`. */
export function prefixContains(prefix: IpPrefix, address: Uint8Array): boolean {
  if (address.length !== prefix.network.length) return false;
  const whole = prefix.length >> 3;
  for (let i = 0; i < whole; i++) if (address[i] !== prefix.network[i]) return false;
  const rest = prefix.length & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return ((address[whole]! ^ prefix.network[whole]!) & mask) === 0;
}

/** The longest of `prefixes` containing `address` (text), or undefined. */
export function longestMatch<T extends { prefix: IpPrefix }>(items: readonly T[], address: string): T | undefined {
  const bytes = parseIp(address);
  if (bytes === undefined) return undefined;
  let best: T | undefined;
  for (const item of items) {
    if (prefixContains(item.prefix, bytes) && (best === undefined || item.prefix.length > best.prefix.length)) best = item;
  }
  return best;
}

/** Whether the text is a prefix written with a length (`/n`), not a bare address. */
export const isPrefixText = (text: string): boolean => text.includes('/');
