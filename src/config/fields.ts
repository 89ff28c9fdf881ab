/**
 * zod field types for the YAML configuration. Each accepts what an operator
 * would write (YAML numbers or strings, `yes`/`no` or booleans, a list or a
 * comma-separated string, as in swanctl.conf) and turns it into a typed value,
 * with one message per problem. A required field reports `required`.
 */
import { z } from 'zod';
import { parseProposalList } from '../ike/proposal/parse.js';
import type { ProposalList } from '../ike/proposal/parse.js';
import type { ProposalProtocol } from '../ike/proposal/types.js';
import { canonicalIp, ipFamily } from '../util/ip.js';
import { parsePrefix } from '../util/prefix.js';
import { type Identity, parseIdentity } from './identity.js';
import { type Parsed, bad, ok } from '../util/parsed.js';
import { describeValue } from './problems.js';
import { type TrafficSelectorConfig, parseTrafficSelector } from '../ike/ts/syntax.js';
import { parseByteCount, parseDuration, parsePacketCount } from './units.js';

/** A field whose value `parse` checks and converts. */
export function field<T>(parse: (v: unknown) => Parsed<T>) {
  return z.unknown().transform((v, ctx): T => {
    if (v === undefined) {
      ctx.addIssue({ code: 'custom', message: 'required' });
      return z.NEVER;
    }
    const r = parse(v);
    if (!r.ok) {
      ctx.addIssue({ code: 'custom', message: r.message });
      return z.NEVER;
    }
    return r.value;
  });
}

/** A list field: a YAML list, or one string of comma-separated items. One message per bad item. */
export function listField<T>(parseItem: (item: string) => Parsed<T>, what: string) {
  return z.unknown().transform((v, ctx): T[] => {
    if (v === undefined) {
      ctx.addIssue({ code: 'custom', message: 'required' });
      return z.NEVER;
    }
    const items: string[] = [];
    const raw: unknown[] = Array.isArray(v) ? v : [v];
    for (const element of raw) {
      if (typeof element !== 'string' && typeof element !== 'number') {
        ctx.addIssue({ code: 'custom', message: `expected ${what} or a list of them, got ${describeValue(element)}` });
        return z.NEVER;
      }
      items.push(
        ...String(element)
          .split(',')
          .map((s) => s.trim()),
      );
    }
    if (items.length === 0 || items.every((s) => s === '')) {
      ctx.addIssue({ code: 'custom', message: `expected at least one ${what}` });
      return z.NEVER;
    }
    const out: T[] = [];
    let failed = false;
    for (const item of items) {
      const r = item === '' ? bad<T>(`empty item in ${describeValue(Array.isArray(v) ? v.join(', ') : v)}`) : parseItem(item);
      if (r.ok) out.push(r.value);
      else {
        ctx.addIssue({ code: 'custom', message: r.message });
        failed = true;
      }
    }
    return failed ? z.NEVER : out;
  });
}

export function parseText(v: unknown): Parsed<string> {
  if (typeof v !== 'string') return bad(`expected a string, got ${describeValue(v)}`);
  if (v.trim() === '') return bad('must not be empty');
  return ok(v.trim());
}

export const text = () => field(parseText);

/** A file or socket path (relative paths are resolved later against the configuration's directory). */
export const path = () => field(parseText);

/**
 * One of a few words; YAML booleans count as yes/no where those are among the
 * words, and YAML's null as 'null' (`auth: null` reads as swanctl's `auth = null`).
 */
export function choice<const T extends string>(values: readonly T[]) {
  return field((v): Parsed<T> => {
    if (v === null && (values as readonly string[]).includes('null')) return ok('null' as T);
    const word = typeof v === 'boolean' && values.includes((v ? 'yes' : 'no') as T) ? (v ? 'yes' : 'no') : v;
    if (typeof word === 'string' && (values as readonly string[]).includes(word)) return ok(word as T);
    return bad(`must be ${values.length === 1 ? '' : 'one of '}${values.map((s) => `'${s}'`).join(', ')}, got ${describeValue(v)}`);
  });
}

/** `yes`/`no` (swanctl) or `true`/`false` (YAML). */
export const yesNo = () =>
  field((v): Parsed<boolean> => {
    if (v === true || v === 'yes') return ok(true);
    if (v === false || v === 'no') return ok(false);
    return bad(`must be 'yes' or 'no', got ${describeValue(v)}`);
  });

export function integer(min: number, max: number) {
  return field((v): Parsed<number> => {
    const n = typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isInteger(n)) return bad(`expected a whole number, got ${describeValue(v)}`);
    if (n < min || n > max) return bad(`must be between ${min} and ${max}, got ${n}`);
    return ok(n);
  });
}

export const port = () => integer(1, 65535);
export const duration = () => field(parseDuration);
export const byteCount = () => field(parseByteCount);
export const packetCount = () => field(parsePacketCount);

/** A proposal list for IKE or ESP: a string (`a-b-c,d-e-f!`) or a YAML list of proposals. */
export function proposals(protocol: ProposalProtocol) {
  return z.unknown().transform((v, ctx): ProposalList => {
    const input = typeof v === 'string' ? v : Array.isArray(v) && v.every((s) => typeof s === 'string') ? (v as string[]) : undefined;
    if (input === undefined) {
      ctx.addIssue({ code: 'custom', message: v === undefined ? 'required' : `expected a proposal string or a list of proposals, got ${describeValue(v)}` });
      return z.NEVER;
    }
    const r = parseProposalList(input, protocol);
    if (!r.ok) {
      for (const message of r.errors) ctx.addIssue({ code: 'custom', message });
      return z.NEVER;
    }
    return r.value;
  });
}

/** The list `default` parses to, for a field's default value. */
export function defaultProposalList(protocol: ProposalProtocol): ProposalList {
  const r = parseProposalList('default', protocol);
  if (!r.ok) throw new Error(r.errors.join('; '));
  return r.value;
}

export const identity = () => field((v) => (typeof v === 'string' ? parseIdentity(v) : bad<Identity>(`expected an identity string, got ${describeValue(v)}`)));

/** IKE addresses: IPv4/IPv6 literals, `%any`, `%any4`, `%any6`. */
export function parseHostAddress(item: string): Parsed<string> {
  if (item === '%any' || item === '%any4' || item === '%any6') return ok(item);
  const canonical = canonicalIp(item);
  if (canonical !== undefined) return ok(canonical);
  return bad(`'${item}' is not an IP address or %any (tunsec does not resolve host names, ranges or subnets here)`);
}

export const hostAddresses = () => listField(parseHostAddress, 'an address');

/**
 * remote_addrs: host addresses and `%any` as for local_addrs, or CIDR prefixes
 * (`10.0.1.0/24`): a group connection, a template whose per-peer instances are
 * negotiated with each host of the prefixes on demand.
 */
export function parseRemoteAddress(item: string): Parsed<string> {
  if (!item.includes('/')) return parseHostAddress(item);
  const r = parsePrefix(item);
  return r.ok ? ok(r.value.text) : bad(`${r.message} (remote_addrs takes addresses, %any or CIDR prefixes)`);
}

export const remoteAddresses = () => listField(parseRemoteAddress, 'an address or prefix');
export const trafficSelectors = () => listField<TrafficSelectorConfig>(parseTrafficSelector, 'a traffic selector');
export const paths = () => listField((item) => ok(item), 'a path');

export interface ListenAddress {
  host: string;
  port: number;
}

/** `127.0.0.1:9810`, `[::1]:9810` or `:9810` (all addresses). */
export const listenAddress = () =>
  field((v): Parsed<ListenAddress> => {
    const s = typeof v === 'string' ? v.trim() : '';
    const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d+)$/.exec(s);
    const host = m?.[1] ?? m?.[2] ?? '';
    const portNumber = Number(m?.[3]);
    if (m === null || !(portNumber >= 1 && portNumber <= 65535)) {
      return bad(`expected address:port (e.g. 127.0.0.1:9810 or [::1]:9810), got ${describeValue(v)}`);
    }
    if (host === '') return ok({ host: '::', port: portNumber });
    if (ipFamily(host) === undefined) return bad(`'${host}' is not an IP address`);
    return ok({ host: canonicalIp(host) ?? host, port: portNumber });
  });
