/**
 * IP address text ↔ octets for ID payloads and traffic selectors: the
 * codec's name for src/util/ip.ts (RFC 5952 output; undefined for text that
 * is not an address).
 */
export { formatIp, parseIp } from '../../util/ip.js';
