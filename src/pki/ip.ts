/**
 * IP addresses as identities and iPAddress SANs carry them: 4 or 16 octets.
 * The parsing and printing is src/util/ip.ts; this module keeps pki's
 * convention of answering null for text that is not an address.
 */
import { parseIp as parse, parseIpv4 as parse4, parseIpv6 as parse6 } from '../util/ip.js';

/** 4 octets for "a.b.c.d" (no leading zeros, each 0-255), else null. */
export function parseIpv4(text: string): Buffer | null {
  return parse4(text) ?? null;
}

/** 16 octets for an IPv6 address in text, else null (no zone IDs, no prefixes). */
export function parseIpv6(text: string): Buffer | null {
  return parse6(text) ?? null;
}

/** 4 or 16 octets for IPv4 or IPv6 text, else null. */
export function parseIp(text: string): Buffer | null {
  return parse(text) ?? null;
}
