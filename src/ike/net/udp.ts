/**
 * IKE's UDP transport: port 500 and the NAT-T port 4500 (RFC 7296 §2.23,
 * RFC 3948 §2.2), IPv4 and IPv6, one socket per local address and port so
 * that every received datagram knows the local address it arrived on (needed
 * for NAT detection hashes and for answering from the right address).
 *
 * On port 4500 three things share the socket (RFC 3948 §2.2, §2.3):
 *   - IKE messages behind the 4-octet non-ESP marker (zero)
 *   - NAT-keepalive packets: the single octet 0xFF
 *   - ESP-in-UDP: anything else (the first four octets are the non-zero SPI)
 */
import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';

export interface Endpoint {
  address: string;
  port: number;
}

export interface ReceivedIke {
  local: Endpoint;
  remote: Endpoint;
  /** The IKE message, without the non-ESP marker. */
  message: Buffer;
  /** Arrived on the NAT-T port (behind the non-ESP marker). */
  natt: boolean;
}

export interface ReceivedEspInUdp {
  local: Endpoint;
  remote: Endpoint;
  /** The ESP packet (SPI first), RFC 3948 §2.1. */
  packet: Buffer;
}

export interface UdpTransportOptions {
  /** Local addresses to bind (IPv4 and/or IPv6 literals; '0.0.0.0' / '::' for any). */
  addresses: string[];
  ikePort?: number;
  nattPort?: number;
  /** SO_RCVBUF for every socket, octets (the 4500 socket also carries ESP). */
  receiveBufferSize?: number;
  sendBufferSize?: number;
}

export interface UdpTransportEvents {
  ike(d: ReceivedIke): void;
  esp(d: ReceivedEspInUdp): void;
  /** A NAT-keepalive arrived (RFC 3948 §2.3); it carries nothing and is only counted. */
  keepalive(from: Endpoint, local: Endpoint): void;
  /** Datagrams that are none of the above (too short, marker-only): counted, not processed. */
  dropped(reason: string, from: Endpoint, local: Endpoint): void;
}

/** RFC 3948 §2.2: the non-ESP marker is four zero octets. */
export const NON_ESP_MARKER_LENGTH = 4;
/** RFC 3948 §2.3: a NAT-keepalive packet is a single 0xFF octet. */
export const NAT_KEEPALIVE = Buffer.from([0xff]);

/** IKE header is 28 octets (RFC 7296 §3.1); anything shorter can't be IKE. */
const IKE_HEADER_LENGTH = 28;

interface BoundSocket {
  socket: Socket;
  local: Endpoint;
  natt: boolean;
}

export class UdpTransport {
  private readonly sockets: BoundSocket[] = [];
  private readonly ikePort: number;
  private readonly nattPort: number;
  private handlers: Partial<UdpTransportEvents> = {};

  constructor(private readonly options: UdpTransportOptions) {
    this.ikePort = options.ikePort ?? 500;
    this.nattPort = options.nattPort ?? 4500;
  }

  on<K extends keyof UdpTransportEvents>(event: K, handler: UdpTransportEvents[K]): this {
    this.handlers[event] = handler;
    return this;
  }

  /** Bind every (address, port) pair. Rejects, closing what was bound, if any bind fails. */
  async start(): Promise<void> {
    try {
      for (const address of this.options.addresses) {
        for (const natt of [false, true]) {
          this.sockets.push(await this.bind(address, natt ? this.nattPort : this.ikePort, natt));
        }
      }
    } catch (err) {
      this.stop();
      throw err;
    }
  }

  private bind(address: string, port: number, natt: boolean): Promise<BoundSocket> {
    const v6 = isIPv6(address);
    const socket = createSocket({
      type: v6 ? 'udp6' : 'udp4',
      ipv6Only: v6,
      reuseAddr: false,
      ...(this.options.receiveBufferSize ? { recvBufferSize: this.options.receiveBufferSize } : {}),
      ...(this.options.sendBufferSize ? { sendBufferSize: this.options.sendBufferSize } : {}),
    });
    const bound: BoundSocket = { socket, local: { address, port }, natt };
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => {
        socket.close();
        reject(new Error(`cannot bind UDP ${v6 ? `[${address}]` : address}:${port}: ${err.message}`));
      };
      socket.once('error', onError);
      socket.bind({ address, port, exclusive: true }, () => {
        socket.off('error', onError);
        bound.local.port = socket.address().port;
        socket.on('error', () => {
          /* ICMP errors on unconnected UDP sockets surface here; retransmission handles loss. */
        });
        socket.on('message', (msg, rinfo) => this.receive(bound, msg, { address: rinfo.address, port: rinfo.port }));
        resolve(bound);
      });
    });
  }

  private receive(bound: BoundSocket, msg: Buffer, remote: Endpoint): void {
    const local = bound.local;
    if (!bound.natt) {
      if (msg.length < IKE_HEADER_LENGTH) return this.handlers.dropped?.('short datagram on IKE port', remote, local);
      this.handlers.ike?.({ local, remote, message: msg, natt: false });
      return;
    }
    if (msg.length === 1 && msg[0] === 0xff) return this.handlers.keepalive?.(remote, local); // RFC 3948 §2.3
    if (msg.length >= NON_ESP_MARKER_LENGTH && msg.readUInt32BE(0) === 0) {
      if (msg.length < NON_ESP_MARKER_LENGTH + IKE_HEADER_LENGTH) {
        return this.handlers.dropped?.('short IKE message behind non-ESP marker', remote, local);
      }
      this.handlers.ike?.({ local, remote, message: msg.subarray(NON_ESP_MARKER_LENGTH), natt: true });
      return;
    }
    // RFC 3948 §2.1: SPI (4) + sequence (4) + at least the IV/ICV follow.
    if (msg.length < 8) return this.handlers.dropped?.('short ESP-in-UDP packet', remote, local);
    this.handlers.esp?.({ local, remote, packet: msg });
  }

  private socketFor(local: Endpoint): BoundSocket | undefined {
    return (
      this.sockets.find((s) => s.local.port === local.port && s.local.address === local.address) ??
      // Bound to a wildcard address: any socket of the right family and port will do.
      this.sockets.find(
        (s) => s.local.port === local.port && isIPv6(s.local.address) === isIPv6(local.address) && (s.local.address === '0.0.0.0' || s.local.address === '::'),
      )
    );
  }

  /**
   * Send an IKE message from `local` to `remote`. On the NAT-T port the
   * non-ESP marker is prepended.
   */
  sendIke(local: Endpoint, remote: Endpoint, message: Buffer): void {
    const s = this.socketFor(local);
    if (!s) throw new Error(`no socket bound to ${local.address}:${local.port}`);
    const data = s.natt ? Buffer.concat([Buffer.alloc(NON_ESP_MARKER_LENGTH), message]) : message;
    s.socket.send(data, remote.port, remote.address);
  }

  /** Send an ESP-in-UDP packet (RFC 3948) from the NAT-T socket of `local`. */
  sendEsp(local: Endpoint, remote: Endpoint, packet: Buffer): void {
    const s = this.socketFor(local);
    if (!s || !s.natt) throw new Error(`no NAT-T socket bound to ${local.address}:${local.port}`);
    s.socket.send(packet, remote.port, remote.address);
  }

  /** RFC 3948 §2.3 NAT-keepalive from the NAT-T socket of `local`. */
  sendKeepalive(local: Endpoint, remote: Endpoint): void {
    const s = this.socketFor(local);
    if (s?.natt) s.socket.send(NAT_KEEPALIVE, remote.port, remote.address);
  }

  /**
   * The NAT-T socket that sends from `local` (the ESP datapath sends
   * ESP-in-UDP on it directly, RFC 3948 §2.2 port sharing), or undefined.
   */
  nattSocket(local: Endpoint): Socket | undefined {
    const s = this.socketFor(local);
    return s?.natt ? s.socket : undefined;
  }

  /**
   * The NAT-T sockets with the entry point of their demultiplexer (non-ESP
   * marker → IKE, 0xFF → keepalive, else ESP): the ESP datapath may read
   * these sockets itself, in batches, and hand back what is not ESP.
   */
  nattSockets(): Array<{ local: Endpoint; socket: Socket; deliver: (msg: Buffer, remote: Endpoint) => void }> {
    return this.sockets
      .filter((s) => s.natt)
      .map((s) => ({ local: s.local, socket: s.socket, deliver: (msg: Buffer, remote: Endpoint) => this.receive(s, msg, remote) }));
  }

  /** Every bound socket (to set socket options such as SO_MARK on them). */
  allSockets(): Socket[] {
    return this.sockets.map((s) => s.socket);
  }

  /** The endpoints actually bound (port 0 in the options resolves to a real port here). */
  boundEndpoints(): Array<Endpoint & { natt: boolean }> {
    return this.sockets.map((s) => ({ ...s.local, natt: s.natt }));
  }

  stop(): void {
    for (const s of this.sockets.splice(0)) {
      try {
        s.socket.close();
      } catch {
        /* already closed */
      }
    }
  }
}
