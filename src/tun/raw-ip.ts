/**
 * Sending whole IP packets that tunsec built itself: `socket(AF_INET|AF_INET6,
 * SOCK_RAW, IPPROTO_RAW)`, which implies IP_HDRINCL (IPv4) / IPV6_HDRINCL
 * (IPv6, Linux ≥ 4.5): the packet's own header goes on the wire — transport
 * mode ESP keeps the original header (TOS, TTL, DF, IPv4 options, IPv6
 * extension headers before ESP), tunnel mode sends the outer header tunsec
 * wrote, and a cleartext fallback sends the original packet unchanged. The
 * kernel still fills in the IPv4 checksum and total length (and the ID when
 * it is 0).
 *
 * These sockets send only; received ESP comes through RawEspSocket. Mark
 * them (SO_MARK) so that policy routing keeps them out of the TUN device.
 */
import { loadNative, type NativeAddon } from '../native/addon.js';
import { setBufferSize } from './raw-esp.js';

const IPPROTO_RAW = 255;

export interface RawIpOptions {
  family: 4 | 6;
  mark?: number;
  bindDevice?: string;
  sendBufferSize?: number;
}

export class RawIpSender {
  private closed = false;

  private constructor(
    private readonly addon: NativeAddon,
    readonly fd: number,
    readonly family: 4 | 6,
  ) {}

  static open(opts: RawIpOptions): RawIpSender {
    const addon = loadNative();
    const c = addon.constants;
    const fd = addon.rawSocket(opts.family, IPPROTO_RAW);
    try {
      if (opts.mark !== undefined) addon.setsockoptInt(fd, c.SOL_SOCKET, c.SO_MARK, opts.mark);
      if (opts.bindDevice !== undefined) addon.bindToDevice(fd, opts.bindDevice);
      if (opts.sendBufferSize !== undefined) setBufferSize(fd, 'send', opts.sendBufferSize);
    } catch (err) {
      addon.closeFd(fd);
      throw err;
    }
    return new RawIpSender(addon, fd, opts.family);
  }

  /** Send one IP packet (header included) towards `address`; false if the socket buffer is full. */
  send(packet: Uint8Array, address: string, length = packet.byteLength): boolean {
    if (this.closed) throw new Error('raw IP socket is closed');
    return this.addon.sendTo(this.fd, packet, length, address, 0) >= 0;
  }

  /** sendmmsg `count` packets to one next destination; returns packets sent. */
  sendBatch(address: string, count: number, buffers: Uint8Array[], lengths: Int32Array): number {
    if (this.closed) throw new Error('raw IP socket is closed');
    return this.addon.sendBatch(this.fd, buffers, lengths, count, address, 0);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.addon.closeFd(this.fd);
  }
}
