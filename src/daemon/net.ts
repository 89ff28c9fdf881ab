/**
 * Which addresses the daemon's IKE sockets bind, and which local address
 * stands behind a wildcard socket.
 *
 * Concrete `local_addrs` are bound one by one. `%any` binds the wildcards
 * `0.0.0.0` and `::` (`%any4` / `%any6` one of them); a wildcard of a family
 * covers the concrete addresses of that family, which are then not bound
 * separately (the kernel refuses both without SO_REUSEADDR).
 *
 * Node's dgram cannot tell on which address a datagram to a wildcard socket
 * arrived (no IP_PKTINFO), yet IKE needs it (NAT detection hashes, `dynamic`
 * traffic selectors, the address we answer from). The daemon uses the
 * address the kernel picks as source towards the peer — for a host answering
 * on the address it was reached at, the same one. `SourceAddressCache` finds
 * it with a connected UDP socket (no packet is sent).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';

export const WILDCARD_V4 = '0.0.0.0';
export const WILDCARD_V6 = '::';

export function isWildcard(address: string): boolean {
  return address === WILDCARD_V4 || address === WILDCARD_V6;
}

export interface BindPlan {
  addresses: string[];
  /** `::` came from `%any` (not `%any6`): if IPv6 is unavailable the daemon may go on without it. */
  optionalV6Wildcard: boolean;
}

/** The addresses to bind for all connections' `local_addrs`, wildcards first. */
export function bindAddresses(localAddrs: Iterable<string>): BindPlan {
  let v4Any = false;
  let v6Any = false;
  let v6AnyExplicit = false;
  const concrete: string[] = [];
  for (const a of localAddrs) {
    if (a === '%any') {
      v4Any = true;
      v6Any = true;
    } else if (a === '%any4') {
      v4Any = true;
    } else if (a === '%any6') {
      v6Any = true;
      v6AnyExplicit = true;
    } else if (!concrete.includes(a)) {
      concrete.push(a);
    }
  }
  const addresses = [...(v4Any ? [WILDCARD_V4] : []), ...(v6Any ? [WILDCARD_V6] : [])];
  for (const a of concrete) if (isIPv6(a) ? !v6Any : !v4Any) addresses.push(a);
  return { addresses, optionalV6Wildcard: v6Any && !v6AnyExplicit };
}

/** The source address the kernel would use towards `remote` (routing table lookup, nothing sent). */
export function sourceAddressFor(remote: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createSocket(isIPv6(remote) ? 'udp6' : 'udp4');
    const done = (err: Error | null, address?: string): void => {
      try {
        socket.close();
      } catch {
        /* closed */
      }
      if (err) reject(err);
      else resolve(address!);
    };
    socket.once('error', (err) => done(err));
    // Port 9 (discard) only completes the connect(); no datagram leaves the host.
    socket.connect(9, remote, () => {
      try {
        done(null, socket.address().address);
      } catch (err) {
        done(err as Error);
      }
    });
  });
}

/** `sourceAddressFor`, remembered per peer for a while (routes rarely change mid-exchange). */
export class SourceAddressCache {
  private readonly entries = new Map<string, { at: number; address: Promise<string> }>();

  constructor(
    private readonly ttlMs = 30_000,
    private readonly lookup: (remote: string) => Promise<string> = sourceAddressFor,
  ) {}

  get(remote: string): Promise<string> {
    const now = Date.now();
    const hit = this.entries.get(remote);
    if (hit && now - hit.at < this.ttlMs) return hit.address;
    const address = this.lookup(remote);
    this.entries.set(remote, { at: now, address });
    address.catch(() => this.entries.delete(remote));
    if (this.entries.size > 4096) {
      for (const [k, v] of this.entries) if (now - v.at >= this.ttlMs) this.entries.delete(k);
    }
    return address;
  }
}

/**
 * The MTU of the path towards `remote` as the routing table says it: the
 * route's own `mtu` metric, else the MTU of its outgoing device; undefined
 * when there is no route.
 */
export async function routeMtuFor(remote: string): Promise<number | undefined> {
  const out = await new Promise<string | undefined>((resolve) => {
    execFile('ip', ['-j', '-d', 'route', 'get', remote], { timeout: 5000 }, (err, stdout) => resolve(err ? undefined : String(stdout)));
  });
  if (out === undefined) return undefined;
  let route: { dev?: string; metrics?: Array<{ mtu?: number }> } | undefined;
  try {
    route = (JSON.parse(out) as Array<typeof route>)[0];
  } catch {
    return undefined;
  }
  const metric = route?.metrics?.find((m) => typeof m.mtu === 'number')?.mtu;
  if (metric !== undefined) return metric;
  if (!route?.dev || !/^[^/]+$/.test(route.dev)) return undefined;
  try {
    const mtu = Number(readFileSync(`/sys/class/net/${route.dev}/mtu`, 'utf8').trim());
    return Number.isInteger(mtu) && mtu > 0 ? mtu : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Worst-case octets ESP adds to a packet that leaves through the TUN device:
 * an IPv6 outer header (tunnel mode; transport mode adds none but is covered),
 * UDP encapsulation (RFC 3948), ESP header, 8-octet IV, up to 3 octets of
 * padding, pad length and next header, 16-octet ICV (RFC 4303, RFC 4106).
 */
export const ESP_WORST_OVERHEAD = 40 + 8 + 8 + 8 + 3 + 2 + 16;

/** TUN MTU for a path MTU: what is left after the worst-case ESP overhead, at least the IPv6 minimum of 1280. */
export function tunMtuFor(pathMtu: number): number {
  return Math.max(1280, pathMtu - ESP_WORST_OVERHEAD);
}
