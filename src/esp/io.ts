/**
 * The datapath's I/O loop: the TUN device on one side, raw ESP sockets and
 * ESP-in-UDP on the other, ./engine.ts deciding about every packet.
 *
 *   TUN readable → readBatch (up to `batchSize` packets, one native call) →
 *     PacketEngine.outbound per packet, sealed into a transmit slot → consecutive
 *     packets for one SA leave in one sendmmsg (raw IP with IP_HDRINCL, or the
 *     NAT-T UDP socket for ESP-in-UDP).
 *   raw ESP readable → recvmmsg batch → PacketEngine.inbound → one batched
 *     write of the decrypted packets to the TUN device.
 *   ESP-in-UDP arrives on IKE's NAT-T socket (port sharing, RFC 3948 §2.2):
 *     the daemon hands those datagrams to `receiveUdp`.
 *
 * Every socket tunsec sends on is marked (SO_MARK) so that the policy
 * routing which sends protected flows into the TUN device never captures
 * tunsec's own packets. Errors of one send are counted and logged (rate
 * limited), never thrown out of the loop.
 */
import type { HoldKey } from './engine.js';
import { TunDevice, type TunOffloadMode } from '../tun/device.js';
import { RawEspSocket, ADDR_SLOT, formatAddr } from '../tun/raw-esp.js';
import { PacketPool } from '../tun/pool.js';
import { RawIpSender } from '../tun/raw-ip.js';
import { loadNative, type NativeAddon, type NativePoller } from '../native/addon.js';
import { formatIp, parseIp } from '../util/ip.js';
import { PacketEngine, OUT_CLEAR, OUT_SEND, type DatapathLogger, type InboundResult, type InboundSource, type OutboundResult } from './engine.js';
import type { SadEntry } from './sadb.js';
import { errorMessage } from '../util/format.js';

/** Where ESP-in-UDP leaves: the fd of the NAT-T socket bound to (address, port). */
export interface UdpEspSockets {
  fdFor(localAddress: string, localPort: number): number | undefined;
}

export interface IoLoopOptions {
  engine: PacketEngine;
  tunName: string;
  /** TUN MTU: the outer MTU minus the worst-case ESP overhead (see docs/datapath.md). */
  mtu: number;
  /** SO_MARK on every socket tunsec sends with. */
  mark: number;
  udp: UdpEspSockets;
  /** Packets per batch (default 64). */
  batchSize?: number;
  /** Socket buffers (default 4 MiB). */
  socketBufferSize?: number;
  /** TUN offloads (TSO/GRO through IFF_VNET_HDR, see src/tun/device.ts); default `off`. */
  offload?: TunOffloadMode;
  log?: DatapathLogger;
}

/** I/O counters (the datapath's own counters say what happened to packets). */
export interface IoCounters {
  tunReads: number;
  tunWrites: number;
  /** TUN write refused (queue full): decrypted packets lost. */
  tunWriteDrops: number;
  espReceived: number;
  udpReceived: number;
  /** Send failures: socket buffer full or a routing error (EHOSTUNREACH, EMSGSIZE, …). */
  sendDrops: number;
  clearSent: number;
  /** Packets dropped because processing them hit a bug (logged with its stack). */
  internalErrors: number;
  /** TUN offloads: TSO/USO super-packets read and split (their segments count in tunReads). */
  tunGsoPackets: number;
  /** Packets read from the TUN that could not be segmented (IPv6 extension headers, IPv4 source routes, malformed): dropped. */
  tunGsoRefused: number;
  /** TUN offloads: coalesced TCP super-packets written (their segments count in tunWrites). */
  tunGroWrites: number;
  /** Segments inside those coalesced writes. */
  tunGroSegments: number;
}

/** All I/O counters at zero (a new I/O loop, or none running). */
export const zeroIoCounters = (): IoCounters => ({
  tunReads: 0,
  tunWrites: 0,
  tunWriteDrops: 0,
  espReceived: 0,
  udpReceived: 0,
  sendDrops: 0,
  clearSent: 0,
  internalErrors: 0,
  tunGsoPackets: 0,
  tunGsoRefused: 0,
  tunGroWrites: 0,
  tunGroSegments: 0,
});

/** Transmit/scratch slot: the largest TUN packet plus ESP, UDP and outer-header overhead. */
const slotFor = (mtu: number): number => Math.max(2048, mtu + 256);

interface UdpRoute {
  fd: number;
  address: string;
  port: number;
}

export class IoLoop {
  readonly io: IoCounters = zeroIoCounters();
  private readonly addon: NativeAddon;
  private readonly engine: PacketEngine;
  private readonly batch: number;
  private tun?: TunDevice;
  private readonly espSockets: RawEspSocket[] = [];
  private readonly senders: { 4?: RawIpSender; 6?: RawIpSender } = {};
  private timer?: NodeJS.Timeout;
  // transmit staging: packets for one destination, flushed with one sendmmsg
  private readonly txBufs: Buffer[];
  private readonly txLens: Int32Array;
  private txCount = 0;
  private txSa: SadEntry | undefined;
  // TUN write staging
  private readonly wBufs: Buffer[];
  private readonly wLens: Int32Array;
  private wCount = 0;
  private readonly scratch: Buffer[];
  private readonly outRes: OutboundResult = { verdict: 0, length: 0, sa: undefined };
  private readonly inRes: InboundResult = { packet: undefined, sa: undefined };
  private readonly udpRoutes = new WeakMap<SadEntry, UdpRoute>();
  private readonly lastError = new Map<string, number>();

  constructor(private readonly opts: IoLoopOptions) {
    this.addon = loadNative();
    this.engine = opts.engine;
    this.batch = opts.batchSize ?? 64;
    const slot = slotFor(opts.mtu);
    this.txBufs = Array.from({ length: this.batch }, () => Buffer.alloc(slot));
    this.txLens = new Int32Array(this.batch);
    this.wBufs = new Array<Buffer>(this.batch).fill(Buffer.alloc(0));
    this.wLens = new Int32Array(this.batch);
    this.scratch = Array.from({ length: this.batch }, () => Buffer.alloc(slot));
  }

  get tunName(): string | undefined {
    return this.tun?.name;
  }

  /** Open the TUN device and the sockets and start the loops. Throws (after closing what it opened) on failure. */
  start(): void {
    const o = this.opts;
    const buffer = o.socketBufferSize ?? 4 * 1024 * 1024;
    try {
      this.tun = TunDevice.open({ name: o.tunName, mtu: o.mtu, batchSize: this.batch, slotSize: Math.max(2048, o.mtu + 64), offload: o.offload ?? 'off' });
      if (this.tun.offloads !== 0)
        o.log?.log('info', `TUN ${this.tun.name}: offloads ${this.tun.offloadNames.join(', ')} (segments split before sealing, coalesced after opening)`);
      else if ((o.offload ?? 'off') === 'auto') o.log?.log('info', `TUN ${this.tun.name}: the kernel refused the offloads; one packet per read and write`);
      for (const family of [4, 6] as const) {
        try {
          this.senders[family] = RawIpSender.open({ family, mark: o.mark, sendBufferSize: buffer });
        } catch (err) {
          // Without CAP_NET_RAW (podman's default capability set) only ESP-in-UDP can work: say so, go on.
          if (!isPermissionError(err)) throw err;
          this.rawUnavailable(family, err);
          continue;
        }
        const rx = RawEspSocket.open({ family, mark: o.mark, recvBufferSize: buffer, batchSize: this.batch, slotSize: slotFor(o.mtu) });
        this.espSockets.push(rx);
        rx.onReadable(
          () => this.onEspReadable(rx),
          (err) => this.ioError('esp-poll', err),
        );
      }
      this.tun.onReadable(
        () => this.onTunReadable(),
        (err) => this.ioError('tun-poll', err),
      );
    } catch (err) {
      this.stop();
      throw err;
    }
    this.engine.tick();
    this.timer = setInterval(() => {
      this.engine.tick();
      this.engine.sad.checkLifetimes();
      this.engine.expirePendingSpis();
    }, 1000);
    this.timer.unref();
  }

  /** Raw IP sockets for `family` could not be opened (no CAP_NET_RAW). */
  private rawUnavailable(family: 4 | 6, err: unknown): void {
    this.opts.log?.log(
      'warn',
      `raw IPv${family} sockets unavailable (${errorMessage(err)}): no CAP_NET_RAW? ESP-in-UDP works; raw ESP (protocol 50) and cleartext passthrough over IPv${family} are dropped and counted as send drops`,
    );
  }

  stop(): void {
    for (const r of this.udpReaders.splice(0)) {
      r.poller.close();
      this.addon.closeFd(r.fd);
    }
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const s of this.espSockets.splice(0)) s.close();
    this.senders[4]?.close();
    this.senders[6]?.close();
    delete this.senders[4];
    delete this.senders[6];
    this.tun?.close();
    this.tun = undefined;
  }

  // -----------------------------------------------------------------------
  // Outbound

  private onTunReadable(): void {
    const tun = this.tun;
    if (!tun) return;
    const rx = tun.rx;
    for (;;) {
      let n: number;
      try {
        n = tun.readBatch();
      } catch (err) {
        this.ioError('tun-read', err);
        return;
      }
      if (tun.offloads !== 0) this.syncOffloadCounters(tun);
      if (n <= 0) break;
      this.io.tunReads += n;
      this.engine.tick();
      for (let i = 0; i < n; i++) {
        try {
          this.outboundOne(rx.buffers[i] as Buffer, rx.lengths[i]!);
        } catch (err) {
          this.internalError('outbound', err);
        }
      }
      this.flushTx();
      if (n < rx.count) break;
    }
  }

  private outboundOne(pkt: Buffer, length: number): void {
    const res = this.outRes;
    if (this.txCount === this.batch) this.flushTx();
    const slot = this.txBufs[this.txCount]!;
    this.engine.outbound(pkt, length, slot, res);
    if (res.verdict === OUT_SEND) {
      const sa = res.sa!;
      if (this.txSa !== sa && this.txCount > 0) {
        // a different destination: send what is staged first, then move this packet to slot 0
        const at = this.txCount;
        this.flushTx();
        const staged = this.txBufs[at]!;
        this.txBufs[at] = this.txBufs[0]!;
        this.txBufs[0] = staged;
      }
      this.txSa = sa;
      this.txLens[this.txCount++] = res.length;
    } else if (res.verdict === OUT_CLEAR) {
      this.sendClear(pkt, length);
    }
  }

  private flushTx(): void {
    const count = this.txCount;
    const sa = this.txSa;
    this.txCount = 0;
    this.txSa = undefined;
    if (count === 0 || sa === undefined) return;
    let sent = 0;
    try {
      if (sa.spec.encap !== undefined) {
        const route = this.udpRoute(sa);
        if (route) sent = this.addon.sendBatch(route.fd, this.txBufs, this.txLens, count, route.address, route.port);
      } else {
        const sender = this.senders[sa.family];
        if (sender) sent = sender.sendBatch(sa.spec.remoteAddress, count, this.txBufs, this.txLens);
      }
    } catch (err) {
      this.ioError(`send-${sa.spec.remoteAddress}`, err);
    }
    if (sent < count) this.io.sendDrops += count - sent;
  }

  private udpRoute(sa: SadEntry): UdpRoute | undefined {
    let r = this.udpRoutes.get(sa);
    if (!r) {
      const encap = sa.spec.encap!;
      const fd = this.opts.udp.fdFor(sa.spec.localAddress, encap.localPort);
      if (fd === undefined) {
        this.ioError(`udp-${sa.spec.localAddress}`, new Error(`no NAT-T socket bound to ${sa.spec.localAddress}:${encap.localPort}`));
        return undefined;
      }
      r = { fd, address: sa.spec.remoteAddress, port: encap.remotePort };
      this.udpRoutes.set(sa, r);
    }
    return r;
  }

  /** Send the original packet unprotected (bypass, private-or-clear fallback, global off switch). */
  private sendClear(pkt: Buffer, length: number): void {
    const v = pkt[0]! >> 4;
    const sender = v === 4 ? this.senders[4] : this.senders[6];
    if (!sender) {
      this.io.sendDrops++;
      return;
    }
    const dst = v === 4 ? formatIp(pkt.subarray(16, 20)) : formatIp(pkt.subarray(24, 40));
    try {
      if (sender.send(pkt, dst, length)) this.io.clearSent++;
      else this.io.sendDrops++;
    } catch (err) {
      this.io.sendDrops++;
      this.ioError(`clear-${dst}`, err);
    }
  }

  /** Write the decrypted packets kept back for `reqid` while its routes were installed (PacketEngine.waitInbound). */
  releaseInbound(reqid: number): void {
    const packets = this.engine.releaseInbound(reqid);
    if (packets.length === 0 || !this.tun) return;
    this.flushTun();
    for (const p of packets) {
      if (this.wCount === this.batch) this.flushTun();
      this.wBufs[this.wCount] = p;
      this.wLens[this.wCount++] = p.length;
    }
    this.flushTun();
  }

  /** Run packets held for `reqid` (or a per-destination hold key) while its SA was negotiated (the SA is now installed). */
  releaseHeld(reqid: HoldKey): void {
    // After the current IKE exchange step: a responder's IKE_AUTH response leaves before these packets.
    setImmediate(() => {
      for (const pkt of this.engine.takeHeld(reqid)) {
        try {
          this.outboundOne(pkt, pkt.length);
        } catch (err) {
          this.internalError('held', err);
        }
      }
      this.flushTx();
    });
  }

  /** Open the ESP packets that arrived for `spi` before its inbound SA was installed (PacketEngine.takePendingSpi). */
  releasePendingSpi(spi: number): void {
    // After the current IKE exchange step: a new CHILD_SA's policies (and its wait for routes) are in place first.
    setImmediate(() => {
      this.engine.tick();
      for (const h of this.engine.takePendingSpi(spi)) {
        try {
          this.inboundOne(h.buf, h.espOff, h.buf.length, h.src);
        } catch (err) {
          this.internalError('held-inbound', err);
        }
      }
      this.flushTun();
    });
  }

  // -----------------------------------------------------------------------
  // ESP-in-UDP read in batches from a NAT-T socket

  private readonly udpReaders: Array<{ fd: number; poller: NativePoller }> = [];

  /**
   * Read the NAT-T socket `fd` (a dup of the socket IKE uses, whose own reads
   * were stopped) with recvmmsg: ESP goes straight into the datapath, the
   * rest (IKE behind the non-ESP marker, keepalives, runts) is copied and
   * handed to `deliver` — IKE's demultiplexer (RFC 3948 §2.2).
   */
  adoptUdpSocket(fd: number, deliver: (msg: Buffer, address: string, port: number) => void): void {
    const pool = new PacketPool(this.batch, slotFor(this.opts.mtu));
    const addrs = new Uint8Array(this.batch * ADDR_SLOT);
    const src: InboundSource = { family: 4, address: new Uint8Array(4), udp: true };
    const poller = new this.addon.Poller(fd, (err) => {
      if (err) {
        this.ioError('udp-poll', err);
        return;
      }
      for (;;) {
        let n: number;
        try {
          n = this.addon.recvBatch(fd, pool.buffers, pool.lengths, addrs);
        } catch (e) {
          this.ioError('udp-recv', e);
          return;
        }
        if (n <= 0) break;
        this.io.udpReceived += n;
        this.engine.tick();
        for (let i = 0; i < n; i++) {
          const buf = pool.buffers[i] as Buffer;
          const len = pool.lengths[i]!;
          const slot = i * ADDR_SLOT;
          const isEsp = len >= 8 && (buf[0]! | buf[1]! | buf[2]! | buf[3]!) !== 0;
          try {
            if (isEsp) {
              src.family = addrs[slot] === 6 ? 6 : 4;
              src.address = addrs.subarray(slot + 4, slot + 4 + (src.family === 4 ? 4 : 16));
              this.inboundOne(buf, 0, len, src);
            } else {
              deliver(Buffer.from(buf.subarray(0, len)), formatAddr(addrs.subarray(slot, slot + ADDR_SLOT)), (addrs[slot + 2]! << 8) | addrs[slot + 3]!);
            }
          } catch (e) {
            this.internalError('udp', e);
          }
        }
        this.flushTun();
        if (n < pool.count) break;
      }
    });
    poller.start();
    this.udpReaders.push({ fd, poller });
  }

  // -----------------------------------------------------------------------
  // Inbound

  private readonly rawSource: InboundSource = { family: 4, address: new Uint8Array(4), udp: false };

  private onEspReadable(sock: RawEspSocket): void {
    const src = this.rawSource;
    for (;;) {
      let n: number;
      try {
        n = sock.recvBatch();
      } catch (err) {
        this.ioError('esp-recv', err);
        return;
      }
      if (n <= 0) break;
      this.io.espReceived += n;
      this.engine.tick();
      src.family = sock.family;
      for (let i = 0; i < n; i++) {
        const buf = sock.rx.buffers[i] as Buffer;
        const len = sock.rx.lengths[i]!;
        const slot = i * ADDR_SLOT;
        src.address = sock.rxAddrs.subarray(slot + 4, slot + 4 + (sock.family === 4 ? 4 : 16));
        const off = sock.family === 4 ? (buf[0]! & 0x0f) << 2 : 0;
        if (off > len) {
          this.engine.counters.inMalformed++;
          continue;
        }
        try {
          this.inboundOne(buf, off, len, src);
        } catch (err) {
          this.internalError('inbound', err);
        }
      }
      this.flushTun();
      if (n < sock.rx.count) break;
    }
  }

  private readonly udpSource: InboundSource = { family: 4, address: new Uint8Array(4), udp: true };

  /** An ESP-in-UDP datagram from IKE's NAT-T socket (after the non-ESP-marker demux). */
  receiveUdp(packet: Buffer, remoteAddress: string): void {
    const address = parseIp(remoteAddress);
    if (!address) return;
    this.io.udpReceived++;
    this.engine.tick();
    const src = this.udpSource;
    src.family = address.length === 4 ? 4 : 6;
    src.address = address;
    try {
      this.inboundOne(packet, 0, packet.length, src);
    } catch (err) {
      this.internalError('inbound', err);
    }
    this.flushTun();
  }

  private inboundOne(buf: Buffer, espOff: number, espEnd: number, src: InboundSource): void {
    if (this.wCount === this.batch) this.flushTun();
    const res = this.inRes;
    this.engine.inbound(buf, espOff, espEnd, src, this.scratch[this.wCount]!, res);
    if (res.packet !== undefined && res.sa !== undefined && this.engine.keepInbound(res.sa.spec.reqid, res.packet)) return;
    if (res.packet !== undefined) {
      this.wBufs[this.wCount] = res.packet;
      this.wLens[this.wCount++] = res.packet.length;
    }
  }

  private flushTun(): void {
    const count = this.wCount;
    this.wCount = 0;
    if (count === 0 || !this.tun) return;
    let written = 0;
    try {
      written = this.tun.writeBatch(this.wBufs, this.wLens, count);
    } catch (err) {
      this.ioError('tun-write', err);
    }
    this.io.tunWrites += written;
    if (written < count) this.io.tunWriteDrops += count - written;
    if (this.tun.offloads !== 0) this.syncOffloadCounters(this.tun);
  }

  private syncOffloadCounters(tun: TunDevice): void {
    const c = tun.offloadCounters;
    this.io.tunGsoPackets = c.gsoPackets;
    this.io.tunGsoRefused = c.gsoRefused;
    this.io.tunGroWrites = c.groWrites;
    this.io.tunGroSegments = c.groSegments;
  }

  // -----------------------------------------------------------------------

  /** A bug met by one packet: counted and logged, the loop goes on with the next packet. */
  private internalError(where: string, err: unknown): void {
    this.io.internalErrors++;
    this.ioError(`internal-${where}`, err instanceof Error ? new Error(`internal error (${where} packet dropped): ${err.stack ?? err.message}`) : err);
  }

  private ioError(key: string, err: unknown): void {
    const now = Date.now();
    if (now - (this.lastError.get(key) ?? -Infinity) < 10_000) return;
    this.lastError.set(key, now);
    this.opts.log?.log('warn', `datapath I/O: ${key}: ${errorMessage(err)}`);
  }
}

/** EPERM/EACCES from socket(2): the process lacks the capability. */
function isPermissionError(err: unknown): boolean {
  const m = errorMessage(err);
  return /Operation not permitted|Permission denied|EPERM|EACCES/.test(m);
}
