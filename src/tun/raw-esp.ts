/**
 * Raw ESP sockets (IP protocol 50), which Node cannot open: `socket(AF_INET|AF_INET6,
 * SOCK_RAW, IPPROTO_ESP)` in the native addon, non-blocking, with uv_poll readiness and
 * batched recvmmsg/sendmmsg.
 *
 * Framing differs by family (kernel behaviour, not ours):
 *  - IPv4: received packets START WITH THE IPv4 HEADER; the ESP header begins at
 *    `payloadOffset(i)` = IHL*4. Sends take the bare ESP packet (no IP_HDRINCL; the
 *    kernel writes the IPv4 header).
 *  - IPv6: received packets are the bare ESP packet (offset 0); sends likewise.
 * A raw socket sees every inbound ESP packet of its netns (no port demux): dispatch on SPI.
 * This kernel has no ESP handler (CONFIG_INET_ESP unset), so nothing else consumes them.
 *
 * Routing bypass: `mark` (SO_MARK, needs CAP_NET_ADMIN) for `ip rule ... not fwmark M`,
 * or `bindDevice` (SO_BINDTODEVICE) to force the underlay interface.
 *
 * UDP (IKE 500/4500, ESP-in-UDP): Node's dgram sockets keep working; `dgramFd(socket)`
 * exposes a bound dgram socket's fd so `setsockoptInt(fd, SOL_SOCKET, SO_MARK, m)` etc.
 * can be applied to it (it reads Node's internal handle; if a future Node hides it,
 * dgramFd throws, and the fallback is the `ip rule ... ipproto udp sport 500/4500` recipe).
 */
import type { Socket as DgramSocket } from 'node:dgram';
import { loadNative, type NativeAddon, type NativeConstants, type NativePoller } from '../native/addon.js';
import { PacketPool } from './pool.js';

export interface RawEspOptions {
  family: 4 | 6;
  /** Bind to a local address (filters received packets by destination address). */
  bindAddress?: string;
  /** SO_MARK for policy routing (bypass the TUN route). */
  mark?: number;
  /** SO_BINDTODEVICE. */
  bindDevice?: string;
  /** Receive/send buffer sizes in bytes; uses SO_*BUFFORCE (root) and falls back to SO_*BUF. */
  recvBufferSize?: number;
  sendBufferSize?: number;
  /** Packets per recvBatch (default 64) and slot size (default 2048; IPv4 includes the IP header). */
  batchSize?: number;
  slotSize?: number;
}

export const ADDR_SLOT = 20;

export function constants(): NativeConstants {
  return loadNative().constants;
}

/** setsockopt(fd, level, opt, &int) on any socket fd (e.g. from `dgramFd`). Throws with errno text. */
export function setsockoptInt(fd: number, level: number, opt: number, value: number): void {
  loadNative().setsockoptInt(fd, level, opt, value);
}

export function getsockoptInt(fd: number, level: number, opt: number): number {
  return loadNative().getsockoptInt(fd, level, opt);
}

/** The OS fd of a *bound* Node dgram socket (reads Node's internal handle; Linux only). */
export function dgramFd(sock: DgramSocket): number {
  const sym = Object.getOwnPropertySymbols(sock).find((s) => s.description === 'state symbol');
  const state = sym ? (sock as unknown as Record<symbol, { handle?: { fd?: unknown } } | undefined>)[sym] : undefined;
  const fd = state?.handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('dgramFd: no fd (socket not bound yet, or this Node version hides it)');
  return fd;
}

/**
 * Stop Node reading a bound dgram socket (its internal handle's recvStop), so
 * that batched native reads on a dup of its fd get every datagram. Node keeps
 * sending on it. Returns false (nothing changed) if this Node version hides
 * the handle.
 */
export function stopDgramReceive(sock: DgramSocket): boolean {
  const sym = Object.getOwnPropertySymbols(sock).find((s) => s.description === 'state symbol');
  const state = sym ? (sock as unknown as Record<symbol, { handle?: { recvStop?: () => number } } | undefined>)[sym] : undefined;
  const stop = state?.handle?.recvStop;
  if (typeof stop !== 'function') return false;
  return stop.call(state!.handle) === 0;
}

/** Set a socket buffer size, trying the FORCE variant first (ignores rmem_max; needs CAP_NET_ADMIN). */
export function setBufferSize(fd: number, which: 'recv' | 'send', bytes: number): void {
  const n = loadNative();
  const c = n.constants;
  try {
    n.setsockoptInt(fd, c.SOL_SOCKET, which === 'recv' ? c.SO_RCVBUFFORCE : c.SO_SNDBUFFORCE, bytes);
  } catch {
    n.setsockoptInt(fd, c.SOL_SOCKET, which === 'recv' ? c.SO_RCVBUF : c.SO_SNDBUF, bytes);
  }
}

/** Format a 20-byte address slot written by recvBatch. */
export function formatAddr(slot: Uint8Array): string {
  if (slot[0] === 4) return `${slot[4]}.${slot[5]}.${slot[6]}.${slot[7]}`;
  if (slot[0] === 6) {
    const words: string[] = [];
    for (let i = 0; i < 8; i++) words.push((((slot[4 + 2 * i] ?? 0) << 8) | (slot[5 + 2 * i] ?? 0)).toString(16));
    // compress the longest run of zero words (RFC 5952)
    let best = -1;
    let bestLen = 1;
    for (let i = 0; i < 8;) {
      if (words[i] !== '0') {
        i++;
        continue;
      }
      let j = i;
      while (j < 8 && words[j] === '0') j++;
      if (j - i > bestLen) {
        best = i;
        bestLen = j - i;
      }
      i = j;
    }
    if (best < 0) return words.join(':');
    return `${words.slice(0, best).join(':')}::${words.slice(best + bestLen).join(':')}`;
  }
  return '';
}

export class RawEspSocket {
  readonly rx: PacketPool;
  /** 20 bytes per rx slot: source address of packet i (see `source(i)`). */
  readonly rxAddrs: Uint8Array;
  readonly tx: PacketPool;
  private poller: NativePoller | undefined;
  private closed = false;

  private constructor(
    private readonly addon: NativeAddon,
    readonly fd: number,
    readonly family: 4 | 6,
    batchSize: number,
    slotSize: number,
  ) {
    this.rx = new PacketPool(batchSize, slotSize);
    this.tx = new PacketPool(batchSize, slotSize);
    this.rxAddrs = new Uint8Array(batchSize * ADDR_SLOT);
  }

  static open(opts: RawEspOptions): RawEspSocket {
    const addon = loadNative();
    const c = addon.constants;
    const fd = addon.rawSocket(opts.family, c.IPPROTO_ESP);
    try {
      if (opts.mark !== undefined) addon.setsockoptInt(fd, c.SOL_SOCKET, c.SO_MARK, opts.mark);
      if (opts.bindDevice !== undefined) addon.bindToDevice(fd, opts.bindDevice);
      if (opts.recvBufferSize !== undefined) setBufferSize(fd, 'recv', opts.recvBufferSize);
      if (opts.sendBufferSize !== undefined) setBufferSize(fd, 'send', opts.sendBufferSize);
      if (opts.bindAddress !== undefined) addon.bind(fd, opts.bindAddress, 0);
    } catch (err) {
      addon.closeFd(fd);
      throw err;
    }
    return new RawEspSocket(addon, fd, opts.family, opts.batchSize ?? 64, opts.slotSize ?? 2048);
  }

  setMark(mark: number): void {
    this.addon.setsockoptInt(this.fd, this.addon.constants.SOL_SOCKET, this.addon.constants.SO_MARK, mark);
  }

  bindToDevice(ifname: string): void {
    this.addon.bindToDevice(this.fd, ifname);
  }

  /** Readable callback via uv_poll; call recvBatch() until it returns less than the pool size. */
  onReadable(cb: () => void, onError?: (err: Error) => void): void {
    this.assertOpen();
    if (!this.poller) {
      this.poller = new this.addon.Poller(this.fd, (err) => {
        if (err) {
          if (onError) onError(err);
          else throw err;
          return;
        }
        cb();
      });
    }
    this.poller.start();
  }

  pause(): void {
    this.poller?.stop();
  }

  resume(): void {
    if (this.poller && !this.closed) this.poller.start();
  }

  /** recvmmsg into the rx pool; returns the count (0 when nothing is pending). */
  recvBatch(): number {
    this.assertOpen();
    return this.addon.recvBatch(this.fd, this.rx.buffers, this.rx.lengths, this.rxAddrs);
  }

  /** Source address of received packet i (string formatting: not for the per-packet fast path). */
  source(i: number): string {
    return formatAddr(this.rxAddrs.subarray(i * ADDR_SLOT, (i + 1) * ADDR_SLOT));
  }

  /** Where the ESP header starts in received packet i: IHL*4 for IPv4, 0 for IPv6. */
  payloadOffset(i: number): number {
    if (this.family === 6) return 0;
    const b = this.rx.buffers[i];
    return b ? ((b[0] ?? 0) & 0x0f) * 4 : 0;
  }

  /** The ESP packet (SPI onwards) of received packet i, as a view. */
  payload(i: number): Buffer {
    return this.rx.packet(i).subarray(this.payloadOffset(i));
  }

  /** Send one ESP packet (starting at the SPI) to `address`; false if the socket buffer is full. */
  send(packet: Uint8Array, address: string, length = packet.byteLength): boolean {
    this.assertOpen();
    return this.addon.sendTo(this.fd, packet, length, address, 0) >= 0;
  }

  /** sendmmsg `count` packets to one peer (defaults to the tx pool). Returns packets sent. */
  sendBatch(address: string, count: number, buffers: Uint8Array[] = this.tx.buffers, lengths: Int32Array = this.tx.lengths): number {
    this.assertOpen();
    return this.addon.sendBatch(this.fd, buffers, lengths, count, address, 0);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.poller?.close();
    this.poller = undefined;
    this.addon.closeFd(this.fd);
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('raw ESP socket is closed');
  }
}
