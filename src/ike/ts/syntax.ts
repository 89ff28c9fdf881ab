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
import { type IpFamily, bytesToBigInt, formatIp, parseIp, prefixRange } from '../../util/ip.js';
import { type Parsed, bad, ok } from '../../util/parsed.js';

export interface TrafficSelectorConfig {
  /** Replaced by the IKE address of that side (or a virtual IP) when the CHILD_SA is set up. */
  dynamic: boolean;
  /** Address family; undefined for `dynamic`. */
  family?: IpFamily;
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

function addressRange(net: string): { family: IpFamily; start: string; end: string } | string {
  if (net === '') return 'no subnet or address';
  const familyOf = (bytes: Buffer): IpFamily => (bytes.length === 4 ? 4 : 6);
  const dash = net.indexOf('-');
  if (dash !== -1) {
    const a = parseIp(net.slice(0, dash).trim());
    const b = parseIp(net.slice(dash + 1).trim());
    if (a === undefined || b === undefined) return `'${net}' is not an address range a-b`;
    if (a.length !== b.length) return `the range '${net}' mixes IPv4 and IPv6`;
    if (bytesToBigInt(a) > bytesToBigInt(b)) return `the range '${net}' ends before it starts`;
    return { family: familyOf(a), start: formatIp(a), end: formatIp(b) };
  }
  const slash = net.indexOf('/');
  const address = slash === -1 ? net : net.slice(0, slash);
  const bytes = parseIp(address);
  if (bytes === undefined) return `'${address}' is not an IP address`;
  const family = familyOf(bytes);
  const bits = bytes.length * 8;
  const prefixText = slash === -1 ? String(bits) : net.slice(slash + 1);
  if (!/^\d+$/.test(prefixText) || Number(prefixText) > bits) return `invalid prefix length '/${prefixText}' (0-${bits} for IPv${family})`;
  const prefix = Number(prefixText);
  const { start, end } = prefixRange(bytes, prefix);
  if (!start.equals(bytes)) return `host bits are set (did you mean ${formatIp(start)}/${prefix}?)`;
  return { family, start: formatIp(start), end: formatIp(end) };
}
