/**
 * UDP GRO receive on a UDP socket (Linux 5.0 `UDP_GRO`): the kernel hands over coalesced
 * datagrams of one flow (up to 64 KiB, all of `gso_size` octets but the last, which may be
 * shorter) and native/tunsec_udp_gro.cc splits them back into the datagrams they were, one per
 * slot of a PacketPool, with the sender's address. Callers see what a socket without GRO would
 * have delivered, in order; every segment is demultiplexed on its own (RFC 3948 §2.2: GRO may
 * join an IKE message or a NAT-T keepalive to ESP packets of the same flow).
 *
 * UDP_GRO is a property of the socket, not of one descriptor: every reader of the socket must
 * split (Node's dgram reads must be stopped first).
 */
import { GRO_DATAGRAM_ROOM, GroState, loadNative, type NativeAddon } from '../native/addon.js';
import type { PacketPool } from './pool.js';

/** What GRO receive did, counted since the reader was made. */
export interface UdpGroCounters {
  /** Datagrams received (coalesced or not). */
  datagrams: number;
  /** Coalesced datagrams (more than one segment) and the segments inside them. */
  coalesced: number;
  segments: number;
  /** Truncated datagrams and segments longer than their slot: dropped. */
  dropped: number;
}

/** Datagrams per recvmmsg (each gets a 64 KiB slot of the receive area: 1 MiB). */
const DATAGRAMS_PER_READ = 16;

export class UdpGroReader {
  readonly counters: UdpGroCounters = { datagrams: 0, coalesced: 0, segments: 0, dropped: 0 };
  private readonly area: Uint8Array;
  private readonly state: Int32Array;

  private constructor(
    private readonly addon: NativeAddon,
    readonly fd: number,
    datagramsPerRead: number,
  ) {
    this.area = new Uint8Array(datagramsPerRead * GRO_DATAGRAM_ROOM);
    this.state = new Int32Array(GroState.Header + datagramsPerRead * GroState.PerMsg);
  }

  /**
   * Turn UDP_GRO on for the socket `fd` and return its reader; throws when the addon lacks GRO
   * or the kernel refuses it (setsockopt's error): the caller reads the plain way.
   */
  static enable(fd: number, datagramsPerRead = DATAGRAMS_PER_READ): UdpGroReader {
    const addon = loadNative();
    const c = addon.constants;
    if (typeof addon.udpRecvGro !== 'function' || c.SOL_UDP === undefined || c.UDP_GRO === undefined)
      throw new Error('the native addon was built without UDP GRO: rebuild it (npm ci)');
    addon.setsockoptInt(fd, c.SOL_UDP, c.UDP_GRO, 1);
    return new UdpGroReader(addon, fd, datagramsPerRead);
  }

  /** Segments into `pool` (their addresses into `addrs`, 20 octets each, as recvBatch); 0 when nothing is queued. */
  read(pool: PacketPool, addrs: Uint8Array): number {
    const s = this.state;
    const n = this.addon.udpRecvGro!(this.fd, this.area, s, pool.buffers, pool.lengths, addrs);
    if ((s[GroState.Datagrams]! | s[GroState.Dropped]!) !== 0) {
      const c = this.counters;
      c.datagrams += s[GroState.Datagrams]!;
      c.coalesced += s[GroState.Coalesced]!;
      c.segments += s[GroState.Segments]!;
      c.dropped += s[GroState.Dropped]!;
      s[GroState.Datagrams] = s[GroState.Coalesced] = s[GroState.Segments] = s[GroState.Dropped] = 0;
    }
    return n;
  }
}
