/**
 * Configured traffic selectors (`local_ts`, `remote_ts`) → selector ranges.
 *
 * The text syntax is swanctl's and is parsed by src/ike/ts/syntax.ts
 * (`10.0.0.0/24`, `fd00::/64`, `10.0.0.1-10.0.0.9`, `dynamic`, each with an
 * optional `[proto/port]`, `[proto/low-high]`, `[proto/opaque]` suffix); this
 * module adds `%any` (both families, `0.0.0.0/0` and `::/0`), `%any4` and
 * `%any6`, and resolves a parsed list against the SA's addresses:
 *
 * - `dynamic` stands for the address of that side of the IKE SA (or its
 *   virtual IPs, when the caller passes those instead), as a single host;
 * - for ICMP and ICMPv6 a "port" below 256 is an ICMP Type and becomes
 *   Type·256 + Code with every Code (RFC 7296 §3.13.1: Type in the high
 *   octet): `[icmp/8]` is 8·256 … 8·256+255. Values of 256 and up are taken
 *   as Type·256 + Code already. (strongSwan maps `[icmp/8]` to Code 0 only.)
 */
import { parseTrafficSelector, type TrafficSelectorConfig } from './syntax.js';
import type { Parsed } from '../../util/parsed.js';
import { parseIp } from '../../util/ip.js';
import { IPPROTO_ICMP, IPPROTO_ICMPV6, type TsRange, hostRange, isAnyPort, isOpaquePort } from './range.js';

const ANY_NETS: Readonly<Record<string, readonly string[]>> = {
  '%any': ['0.0.0.0/0', '::/0'],
  '%any4': ['0.0.0.0/0'],
  '%any6': ['::/0'],
};

/** One selector as written; `%any` gives two entries (IPv4 and IPv6). */
export function parseTsConfig(text: string): Parsed<TrafficSelectorConfig[]> {
  const trimmed = text.trim();
  const bracket = trimmed.indexOf('[');
  const net = (bracket === -1 ? trimmed : trimmed.slice(0, bracket)).trim();
  const suffix = bracket === -1 ? '' : trimmed.slice(bracket);
  const nets = ANY_NETS[net] ?? [net];
  const out: TrafficSelectorConfig[] = [];
  for (const n of nets) {
    const parsed = parseTrafficSelector(`${n}${suffix}`);
    if (!parsed.ok) {
      return { ok: false, message: nets.length === 1 ? parsed.message : `${parsed.message} (in '${text}')` };
    }
    out.push({ ...parsed.value, text: trimmed });
  }
  return { ok: true, value: out };
}

/** A list of selectors, as an array or as swanctl's comma-separated string. */
export function parseTsConfigList(list: string | readonly string[]): Parsed<TrafficSelectorConfig[]> {
  const items = typeof list === 'string' ? list.split(',') : list;
  const out: TrafficSelectorConfig[] = [];
  for (const item of items) {
    if (item.trim() === '') return { ok: false, message: `empty traffic selector in '${[...items].join(',')}'` };
    const parsed = parseTsConfig(item);
    if (!parsed.ok) return parsed;
    out.push(...parsed.value);
  }
  if (out.length === 0) return { ok: false, message: 'no traffic selectors' };
  return { ok: true, value: out };
}

/** ICMP "ports" of the config: a Type below 256 means all its Codes (see the module comment). */
function portRange(c: TrafficSelectorConfig): { startPort: number; endPort: number } {
  const icmp = c.protocol === IPPROTO_ICMP || c.protocol === IPPROTO_ICMPV6;
  if (!icmp || isAnyPort(c) || isOpaquePort(c)) return { startPort: c.startPort, endPort: c.endPort };
  return {
    startPort: c.startPort < 256 ? c.startPort << 8 : c.startPort,
    endPort: c.endPort < 256 ? (c.endPort << 8) | 0xff : c.endPort,
  };
}

/**
 * The ranges a configured list selects once `dynamic` is known.
 * `dynamicAddresses` are the addresses `dynamic` stands for on this side:
 * the IKE endpoint address, or the virtual IPs when there are some.
 * Throws TypeError for a malformed address (they come from the SA, not the peer).
 */
export function resolveTsConfig(config: readonly TrafficSelectorConfig[], dynamicAddresses: string | readonly string[]): TsRange[] {
  const dynamic = (typeof dynamicAddresses === 'string' ? [dynamicAddresses] : dynamicAddresses).map((a) => {
    const bytes = parseIp(a);
    if (bytes === undefined) throw new TypeError(`'${a}' is not an IP address`);
    return bytes;
  });
  const out: TsRange[] = [];
  for (const c of config) {
    const ports = portRange(c);
    if (c.dynamic) {
      for (const address of dynamic) out.push(hostRange(address, { protocol: c.protocol, ...ports }));
      continue;
    }
    const start = parseIp(c.startAddress ?? '');
    const end = parseIp(c.endAddress ?? '');
    if (start === undefined || end === undefined || start.length !== end.length) {
      throw new TypeError(`traffic selector '${c.text}' has no valid address range`);
    }
    out.push({ protocol: c.protocol, startAddress: start, endAddress: end, ...ports });
  }
  return out;
}
