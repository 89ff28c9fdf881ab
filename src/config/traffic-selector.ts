/**
 * Traffic selectors as swanctl.conf writes them (`local_ts`, `remote_ts`):
 * a subnet in CIDR notation, a single address, an address range `a-b`, or
 * `dynamic` (the IKE address of that side), optionally followed by
 * `[protocol/port]`: `10.0.0.0/24[tcp/80]`, `dynamic[udp]`, `fd00::/64[/443]`,
 * `10.1.0.1[tcp/1024-2048]`, `0.0.0.0/0[icmp/8]`. The protocol is a name, a
 * number or `any`; the port a number, a range, a service name, `any` or
 * `opaque` (RFC 4301 OPAQUE). For icmp/ipv6-icmp the "port" is the ICMP type
 * (below 256) or type·256+code, as in strongSwan.
 */
import type { Family } from './ip.js';
import { bigIntToBytes, bytesToBigInt, bytesToIp, ipFamily, ipToBytes } from './ip.js';
import { type Parsed, bad, ok } from './result.js';

export interface TrafficSelectorConfig {
  /** Replaced by the IKE address of that side (or a virtual IP) when the CHILD_SA is set up. */
  dynamic: boolean;
  /** Address family; undefined for `dynamic`. */
  family?: Family;
  /** First and last address of the range (canonical text); undefined for `dynamic`. */
  startAddress?: string;
  endAddress?: string;
  /** IP protocol number, 0 = any. */
  protocol: number;
  /** 0..65535; 0-65535 is any port, 65535-0 is OPAQUE. */
  startPort: number;
  endPort: number;
  /** As written. */
  text: string;
}

const PROTOCOLS: Readonly<Record<string, number>> = {
  any: 0,
  icmp: 1,
  igmp: 2,
  ipencap: 4,
  tcp: 6,
  udp: 17,
  ipv6: 41,
  gre: 47,
  esp: 50,
  ah: 51,
  'ipv6-icmp': 58,
  icmpv6: 58,
  ospf: 89,
  sctp: 132,
  udplite: 136,
};

/** A few services by name (getservent(3) is not available); anything else by number. */
const SERVICES: Readonly<Record<string, number>> = {
  ftp: 21,
  ssh: 22,
  smtp: 25,
  domain: 53,
  http: 80,
  ntp: 123,
  snmp: 161,
  bgp: 179,
  ldap: 389,
  https: 443,
  isakmp: 500,
  syslog: 514,
  ldaps: 636,
  'ipsec-nat-t': 4500,
};

export function parseTrafficSelector(text: string): Parsed<TrafficSelectorConfig> {
  const m = /^([^[\]]*)(?:\[([^[\]]*)\])?$/.exec(text.trim());
  if (m === null) return bad(`invalid traffic selector '${text}': expected e.g. 10.0.0.0/24, dynamic, or 10.0.0.0/24[tcp/80]`);
  const net = (m[1] ?? '').trim();
  const protoPort = m[2];

  let protocol = 0;
  let startPort = 0;
  let endPort = 0xffff;
  if (protoPort !== undefined) {
    const slash = protoPort.indexOf('/');
    const protoText = (slash === -1 ? protoPort : protoPort.slice(0, slash)).trim();
    const portText = slash === -1 ? '' : protoPort.slice(slash + 1).trim();
    if (protoText !== '') {
      const p = PROTOCOLS[protoText] ?? (/^\d+$/.test(protoText) ? Number(protoText) : undefined);
      if (p === undefined || p > 255) {
        return bad(`invalid protocol '${protoText}' in traffic selector '${text}': use a number 0-255 or a name such as tcp, udp, icmp`);
      }
      protocol = p;
    }
    if (portText === 'opaque') {
      startPort = 0xffff;
      endPort = 0;
    } else if (portText !== '' && portText !== 'any') {
      const range = /^(\d+)(?:\s*-\s*(\d+))?$/.exec(portText);
      const single = SERVICES[portText];
      if (single !== undefined) {
        startPort = endPort = single;
      } else if (range !== null) {
        startPort = Number(range[1]);
        endPort = range[2] === undefined ? startPort : Number(range[2]);
        if (startPort > 0xffff || endPort > 0xffff || startPort > endPort) {
          return bad(`invalid port '${portText}' in traffic selector '${text}': ports are 0-65535, ranges low-high`);
        }
      } else {
        return bad(`invalid port '${portText}' in traffic selector '${text}': use a number, a range such as 1024-2048, any or opaque`);
      }
    }
  }
  const common = { protocol, startPort, endPort, text };
  if (net === 'dynamic') return ok({ dynamic: true, ...common });

  const range = addressRange(net);
  if (typeof range === 'string') return bad(`invalid traffic selector '${text}': ${range}`);
  return ok({ dynamic: false, family: range.family, startAddress: range.start, endAddress: range.end, ...common });
}

function addressRange(net: string): { family: Family; start: string; end: string } | string {
  if (net === '') return 'no subnet or address';
  const dash = net.indexOf('-');
  if (dash !== -1) {
    const a = net.slice(0, dash).trim();
    const b = net.slice(dash + 1).trim();
    const fa = ipFamily(a);
    const fb = ipFamily(b);
    const ba = ipToBytes(a);
    const bb = ipToBytes(b);
    if (fa === undefined || fb === undefined || ba === undefined || bb === undefined) return `'${net}' is not an address range a-b`;
    if (fa !== fb) return `the range '${net}' mixes IPv4 and IPv6`;
    if (bytesToBigInt(ba) > bytesToBigInt(bb)) return `the range '${net}' ends before it starts`;
    return { family: fa, start: bytesToIp(ba), end: bytesToIp(bb) };
  }
  const slash = net.indexOf('/');
  const address = slash === -1 ? net : net.slice(0, slash);
  const family = ipFamily(address);
  const bytes = ipToBytes(address);
  if (family === undefined || bytes === undefined) return `'${address}' is not an IP address`;
  const bits = family === 4 ? 32 : 128;
  const prefixText = slash === -1 ? String(bits) : net.slice(slash + 1);
  if (!/^\d+$/.test(prefixText) || Number(prefixText) > bits) return `invalid prefix length '/${prefixText}' (0-${bits} for IPv${family})`;
  const prefix = Number(prefixText);
  const hostMask = (1n << BigInt(bits - prefix)) - 1n;
  const value = bytesToBigInt(bytes);
  const length = bits / 8;
  if ((value & hostMask) !== 0n) {
    const network = `${bytesToIp(bigIntToBytes(value & ~hostMask, length))}/${prefix}`;
    return `host bits are set (did you mean ${network}?)`;
  }
  return { family, start: bytesToIp(bytes), end: bytesToIp(bigIntToBytes(value | hostMask, length)) };
}
