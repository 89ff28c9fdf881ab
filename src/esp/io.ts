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
import { UdpGroReader } from '../tun/udp-gro.js';
import { loadNative, type NativeAddon, type NativePoller } from '../native/addon.js';
import { formatIp, parseIp } from '../util/ip.js';
import {
  PacketEngine,
  OpenStage,
  IN_FLUSH,
  IN_JS,
  OUT_CLEAR,
  OUT_SEND,
  type DatapathLogger,
  type InboundResult,
  type InboundSource,
  type OutboundResult,
  type SealStage,
} from './engine.js';
import { ESP_DESC_SLOTS, EspSealStat } from '../native/addon.js';
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
  /**
   * `native` (default when the addon has it): ESP sealed and sent, and opened, a batch per native
   * call (native/tunsec_esp.cc); `js`: one AEAD call per packet from JS (./packet.ts).
   */
  crypto?: 'native' | 'js';
  /** ESP-in-UDP batches as UDP GSO datagrams (UDP_SEGMENT) with the native crypto; default on. */
  udpGso?: boolean;
  /** ESP-in-UDP received as UDP GRO datagrams (UDP_GRO), split into their packets natively; default on. */
  udpGro?: boolean;
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
  /** ESP-in-UDP: UDP GSO datagrams sent (UDP_SEGMENT), and the ESP packets inside them. */
  udpGsoSends: number;
  udpGsoPackets: number;
  /** Sockets whose route refused UDP GSO (EIO): their packets were resent one by one, GSO is off for them. */
  udpGsoRefused: number;
  /** ESP-in-UDP received with UDP GRO: coalesced datagrams, and the datagrams (segments) inside them (those count in udpReceived). */
  udpGroDatagrams: number;
  udpGroSegments: number;
  /** NAT-T sockets on which the kernel refused UDP_GRO (read one datagram per slot instead). */
  udpGroRefused: number;
  /** Packets the native seal could not seal (a key destroyed under a staged packet: a bug). */
  sealFailures: number;
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
  udpGsoSends: 0,
  udpGsoPackets: 0,
  udpGsoRefused: 0,
  udpGroDatagrams: 0,
  udpGroSegments: 0,
  udpGroRefused: 0,
  sealFailures: 0,
});

/** A TUN callback this long (ms) after the last one that read a lone packet reads one packet (no EAGAIN probe). */
const LONE_GAP_MS = 0.2;

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
  private readonly inRes: InboundResult = { packet: undefined, length: 0, sa: undefined };
  /** The batched native crypto (undefined: the JS path). */
  private readonly sealStage: SealStage | undefined;
  private readonly openStage: OpenStage | undefined;
  private readonly sealStats = new Int32Array(4);
  /** UDP sockets (fd) on which GSO was refused. */
  private readonly gsoRefused = new Set<number>();
  private readonly udpGso: boolean;
  /** Whether the last TUN callback read at most one packet, and when it ended (performance.now()). */
  private tunLone = false;
  private tunIdleSince = 0;
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
    const native = (opts.crypto ?? 'native') === 'native' && nativeEspAvailable(this.addon);
    if (native) {
      this.sealStage = { index: 0, src: new Array<Uint8Array>(this.batch).fill(this.txBufs[0]!), desc: new Uint32Array(this.batch * ESP_DESC_SLOTS) };
      this.openStage = new OpenStage(this.batch);
    }
    this.udpGso = native && opts.udpGso !== false;
  }

  /** Which crypto path runs: `native` (batched, native/tunsec_esp.cc) or `js`. */
  get crypto(): 'native' | 'js' {
    return this.sealStage ? 'native' : 'js';
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
    this.engine.sealStage = this.sealStage;
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
    this.engine.sealStage = undefined;
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
    // A lone packet after a pause (a ping, a request) is read with one read(): the read that would
    // only say EAGAIN is spared, and the descriptor (level-triggered) calls again if more is
    // queued. Callbacks back to back (a burst) read until EAGAIN.
    const lone = this.tunLone && performance.now() - this.tunIdleSince > LONE_GAP_MS;
    let total = 0;
    for (;;) {
      let n: number;
      try {
        n = tun.readBatch(rx.buffers, rx.lengths, lone ? 1 : 0);
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
      total += n;
      if (lone || n < rx.count) break;
    }
    this.tunLone = total <= 1;
    this.tunIdleSince = performance.now();
  }

  private outboundOne(pkt: Buffer, length: number): void {
    const res = this.outRes;
    if (this.txCount === this.batch) this.flushTx();
    const slot = this.txBufs[this.txCount]!;
    const stage = this.sealStage;
    if (stage) stage.index = this.txCount;
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
        if (stage) {
          // its seal description moves along (the header in front of ESP is in the buffer)
          stage.desc.copyWithin(0, at * ESP_DESC_SLOTS, (at + 1) * ESP_DESC_SLOTS);
          stage.src[0] = stage.src[at]!;
        }
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
      if (this.sealStage) {
        sent = this.sealAndSend(sa, count);
      } else if (sa.spec.encap !== undefined) {
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

  /** The batched native path: seal the staged packets and send them, in one native call. */
  private sealAndSend(sa: SadEntry, count: number): number {
    const stage = this.sealStage!;
    const stats = this.sealStats;
    let fd = -1;
    let address = sa.spec.remoteAddress;
    let port = 0;
    let gso = 0;
    if (sa.spec.encap !== undefined) {
      const route = this.udpRoute(sa);
      if (route) {
        fd = route.fd;
        address = route.address;
        port = route.port;
        gso = this.udpGso && !this.gsoRefused.has(fd) ? 1 : 0;
      }
    } else {
      fd = this.senders[sa.family]?.fd ?? -1;
    }
    // Without a socket the packets are still sealed: sequence numbers and lifetimes were spent on them.
    const n = this.addon.espSealBatch!(stage.src, this.txBufs, this.txLens, stage.desc, count, fd, address, port, gso, stats);
    this.io.udpGsoSends += stats[EspSealStat.GsoSends]!;
    this.io.udpGsoPackets += stats[EspSealStat.GsoPackets]!;
    this.io.sealFailures += stats[EspSealStat.SealFailures]!;
    if (stats[EspSealStat.GsoRefused] !== 0) {
      this.gsoRefused.add(fd);
      this.io.udpGsoRefused++;
      this.opts.log?.log(
        'info',
        `UDP GSO refused towards ${address}:${port} (EIO: the route's device cannot segment UDP); ESP-in-UDP on this socket goes one datagram per packet`,
      );
    }
    stats.fill(0);
    return fd < 0 ? 0 : n;
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
  private groRefusalLogged = false;

  /**
   * Read the NAT-T socket `fd` (a dup of the socket IKE uses, whose own reads
   * were stopped) with recvmmsg: ESP goes straight into the datapath, the
   * rest (IKE behind the non-ESP marker, keepalives, runts) is copied and
   * handed to `deliver` — IKE's demultiplexer (RFC 3948 §2.2).
   *
   * `enableGro()` of the result (call it only when no other reader of the socket
   * is left: UDP_GRO is the socket's, not the descriptor's) lets the kernel hand
   * over coalesced datagrams, split here into the datagrams they were before the
   * demultiplexing (../tun/udp-gro.ts); where the kernel refuses UDP_GRO (logged
   * once) the socket stays read one datagram per slot. Returns whether GRO is on.
   */
  adoptUdpSocket(fd: number, deliver: (msg: Buffer, address: string, port: number) => void): { enableGro(): boolean } {
    const pool = new PacketPool(this.batch, slotFor(this.opts.mtu));
    const addrs = new Uint8Array(this.batch * ADDR_SLOT);
    const src: InboundSource = { family: 4, address: new Uint8Array(4), udp: true };
    let reader: UdpGroReader | undefined;
    const enableGro = (): boolean => {
      if (reader || this.opts.udpGro === false) return reader !== undefined;
      try {
        reader = UdpGroReader.enable(fd);
      } catch (err) {
        this.io.udpGroRefused++;
        if (!this.groRefusalLogged)
          this.opts.log?.log('info', `UDP GRO refused on a NAT-T socket (${errorMessage(err)}); ESP-in-UDP is read one datagram per packet`);
        this.groRefusalLogged = true;
      }
      return reader !== undefined;
    };
    const io = this.io;
    const poller = new this.addon.Poller(fd, (err) => {
      if (err) {
        this.ioError('udp-poll', err);
        return;
      }
      let total = 0;
      for (;;) {
        let n: number;
        try {
          if (reader) {
            const c = reader.counters;
            const co = c.coalesced;
            const se = c.segments;
            n = reader.read(pool, addrs);
            io.udpGroDatagrams += c.coalesced - co;
            io.udpGroSegments += c.segments - se;
          } else {
            n = this.addon.recvBatch(fd, pool.buffers, pool.lengths, addrs);
          }
        } catch (e) {
          this.ioError('udp-recv', e);
          return;
        }
        if (n <= 0) break;
        total += n;
        this.udpSegments(pool, addrs, n, src, deliver);
        if (n < pool.count) break;
      }
      if (total === 1) this.answerAfterLone();
    });
    poller.start();
    this.udpReaders.push({ fd, poller });
    return { enableGro };
  }

  /** Received datagrams (segments of GRO datagrams, each on its own): ESP to the datapath, the rest to `deliver`. */
  private udpSegments(pool: PacketPool, addrs: Uint8Array, n: number, src: InboundSource, deliver: (msg: Buffer, address: string, port: number) => void): void {
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
          this.inboundBatched(buf, 0, len, src);
        } else {
          // IKE or a keepalive between ESP packets: what is staged is opened first (order kept)
          this.finishOpen();
          this.flushTun();
          deliver(Buffer.from(buf.subarray(0, len)), formatAddr(addrs.subarray(slot, slot + ADDR_SLOT)), (addrs[slot + 2]! << 8) | addrs[slot + 3]!);
        }
      } catch (e) {
        this.internalError('udp', e);
      }
    }
    this.finishOpen();
    this.flushTun();
  }

  // -----------------------------------------------------------------------
  // Inbound

  private readonly rawSource: InboundSource = { family: 4, address: new Uint8Array(4), udp: false };

  private onEspReadable(sock: RawEspSocket): void {
    const src = this.rawSource;
    let total = 0;
    for (;;) {
      let n: number;
      try {
        n = sock.recvBatch();
      } catch (err) {
        this.ioError('esp-recv', err);
        return;
      }
      if (n <= 0) break;
      total += n;
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
          this.inboundBatched(buf, off, len, src);
        } catch (err) {
          this.internalError('inbound', err);
        }
      }
      this.finishOpen();
      this.flushTun();
      if (n < sock.rx.count) break;
    }
    if (total === 1) this.answerAfterLone();
  }

  /**
   * A lone packet was written to the TUN device: the host's answer to it (an ICMP echo reply, a TCP
   * ACK) is often queued on the device before the write returns (the kernel handles the packet in
   * the writer's context). Read it now rather than after two more trips through the event loop.
   */
  private answerAfterLone(): void {
    if (this.tun && this.tunLone) this.onTunReadable();
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

  /** One received ESP packet: staged for the batched native open, or through `inboundOne`. */
  private inboundBatched(buf: Buffer, espOff: number, espEnd: number, src: InboundSource): void {
    const stage = this.openStage;
    if (!stage) {
      this.inboundOne(buf, espOff, espEnd, src);
      return;
    }
    let r = this.engine.inboundStage(buf, espOff, espEnd, src, stage);
    if (r === IN_FLUSH) {
      this.finishOpen();
      r = this.engine.inboundStage(buf, espOff, espEnd, src, stage);
    }
    if (r === IN_JS) this.inboundOne(buf, espOff, espEnd, src);
  }

  /** Open the staged packets (one native call) and queue what passes for the TUN device. */
  private finishOpen(): void {
    const stage = this.openStage;
    if (!stage || stage.count === 0) return;
    const count = stage.count;
    stage.count = 0;
    stage.esnTop.clear();
    try {
      this.addon.espOpenBatch!(stage.bufs, stage.desc, count);
    } catch (err) {
      // not reachable with the engine's descriptions; the staged packets are lost, counted
      for (let i = 0; i < count; i++) stage.sas[i] = undefined;
      this.internalError('open', err);
      return;
    }
    const res = this.inRes;
    for (let i = 0; i < count; i++) {
      if (this.wCount === this.batch) this.flushTun();
      try {
        this.engine.inboundFinish(stage, i, res);
      } catch (err) {
        this.internalError('inbound', err);
        continue;
      }
      const p = res.packet;
      if (p === undefined) continue;
      if (this.engine.keepInbound(res.sa!.spec.reqid, p, res.length)) continue;
      this.wBufs[this.wCount] = p;
      this.wLens[this.wCount++] = res.length!;
    }
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

/** Whether this addon build has the batched ESP calls and AeadKey handles. */
export function nativeEspAvailable(addon: NativeAddon): boolean {
  return typeof addon.espSealBatch === 'function' && typeof addon.espOpenBatch === 'function' && addon.AeadKey !== undefined;
}

/** EPERM/EACCES from socket(2): the process lacks the capability. */
function isPermissionError(err: unknown): boolean {
  const m = errorMessage(err);
  return /Operation not permitted|Permission denied|EPERM|EACCES/.test(m);
}
