/**
 * The daemon's IKE sockets (src/ike/net/udp.ts): the one IKE port of all
 * connections, binding (IPv4 only when `%any` finds IPv6 unavailable), the
 * IkeSaIo the IKE SAs send through, received IKE datagrams handed to the
 * manager, and the debug log of what arrives besides IKE. Which addresses
 * are bound: ./net.ts.
 */
import type { TunsecConfig } from '../config/index.js';
import type { IkeSaManager } from '../ike/manager.js';
import type { IkeSaIo } from '../ike/sa/ike-sa.js';
import { UdpTransport, type Endpoint, type ReceivedIke } from '../ike/net/udp.js';
import type { DaemonLogger } from './logger.js';
import { SourceAddressCache, bindAddresses, isWildcard, WILDCARD_V6 } from './net.js';

/** The IKE port when no connection sets `local_port` (RFC 7296 §2). */
export const IKE_PORT = 500;
/** The NAT-T port (RFC 3948); strongSwan's charon.port_nat_t. */
export const NATT_PORT = 4500;

/** One IKE port for all connections (their `local_port`), or why there is none; the NAT-T port is the daemon's. */
export function ikePortOf(config: TunsecConfig, nattPort: number): { port: number } | { error: string; problems: string[] } {
  const ports = new Map<number, string[]>();
  for (const c of Object.values(config.connections)) ports.set(c.local_port, [...(ports.get(c.local_port) ?? []), c.name]);
  if (ports.size > 1) {
    return {
      error: 'connections use different local_port values; tunsec listens on one IKE port',
      problems: [...ports].map(([port, names]) => `local_port ${port}: ${names.join(', ')}`),
    };
  }
  const port = ports.keys().next().value ?? IKE_PORT;
  if (port === nattPort) return { error: `local_port ${port} is the NAT-T port; choose another IKE port`, problems: [] };
  return { port };
}

/** Bind the IKE and NAT-T sockets of `localAddrs`; rejects with the first failure. */
export async function bindIkeSockets(localAddrs: string[], ikePort: number, nattPort: number, log: DaemonLogger): Promise<UdpTransport> {
  const plan = bindAddresses(localAddrs);
  const attempt = async (addresses: string[]): Promise<UdpTransport> => {
    const t = new UdpTransport({ addresses, ikePort, nattPort });
    await t.start();
    return t;
  };
  try {
    return await attempt(plan.addresses);
  } catch (err) {
    if (plan.optionalV6Wildcard && plan.addresses.length > 1) {
      try {
        const t = await attempt(plan.addresses.filter((a) => a !== WILDCARD_V6));
        log.log('net', 'warn', `IPv6 unavailable (${(err as Error).message}); listening on IPv4 only`);
        return t;
      } catch {
        /* report the first failure */
      }
    }
    throw err;
  }
}

/** What the IKE SAs send through: `transport` (none without connections), failures logged. */
export function ikeIo(transport: UdpTransport | undefined, nattPort: number, keepaliveMs: number, log: DaemonLogger): IkeSaIo {
  return {
    nattPort,
    keepaliveMs,
    sendKeepalive: (local, remote) => {
      try {
        transport?.sendKeepalive(local, remote);
      } catch (err) {
        log.log('net', 'warn', `cannot send NAT-T keepalive to ${fmt(remote)}: ${(err as Error).message}`);
      }
    },
    send: (local, remote, datagrams) => {
      for (const d of datagrams) {
        try {
          transport?.sendIke(local, remote, d);
        } catch (err) {
          log.log('net', 'error', `cannot send IKE datagram from ${fmt(local)} to ${fmt(remote)}: ${(err as Error).message}`);
        }
      }
    },
  };
}

export interface IkeReceiverHost {
  readonly log: DaemonLogger;
  manager(): IkeSaManager | undefined;
  /** IKE datagrams are ignored while the global switch is down. */
  globalDown(): boolean;
  /** A datagram whose local address had to be looked up is still handed over: the daemon runs or stops. */
  delivering(): boolean;
  /** Run a handler; an exception is logged, never thrown into the event loop. */
  guard(what: string, f: () => void): void;
}

/**
 * Hands received IKE datagrams to the manager. A wildcard socket does not
 * tell the address a datagram was sent to, yet IKE needs it: the address the
 * kernel routes back to the sender from stands in (./net.ts).
 */
export class IkeReceiver {
  private readonly sourceAddresses = new SourceAddressCache();

  constructor(private readonly host: IkeReceiverHost) {}

  receive(d: ReceivedIke): void {
    const host = this.host;
    if (host.globalDown()) return host.log.log('net', 'debug', `IKE datagram from ${fmt(d.remote)} ignored: the global switch is down`);
    host.guard('IKE datagram', () => {
      if (!isWildcard(d.local.address)) {
        host.manager()?.receive(d.message, d.local, d.remote);
        return;
      }
      this.sourceAddresses.get(d.remote.address).then(
        (address) =>
          host.guard('IKE datagram', () => {
            if (!host.delivering()) return;
            host.manager()?.receive(d.message, { address, port: d.local.port }, d.remote);
          }),
        (err: Error) => host.log.log('net', 'warn', `IKE datagram from ${fmt(d.remote)} dropped: no route back (${err.message})`),
      );
    });
  }
}

/** Debug lines for NAT-T keepalives and dropped datagrams, and for ESP-in-UDP when there is no datapath to take it. */
export function logOtherDatagrams(transport: UdpTransport, log: DaemonLogger, espHandled: boolean): void {
  if (!espHandled) transport.on('esp', (d) => log.log('net', 'debug', `ESP-in-UDP packet from ${fmt(d.remote)} dropped: datapath none`));
  transport.on('keepalive', (from, local) => log.log('net', 'debug', `NAT-T keepalive from ${fmt(from)} to ${fmt(local)}`));
  transport.on('dropped', (reason, from, local) => log.log('net', 'debug', `datagram from ${fmt(from)} to ${fmt(local)} dropped: ${reason}`));
}

/** `192.0.2.1:500`, `[2001:db8::1]:500` */
export function fmt(e: Endpoint): string {
  return e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}
