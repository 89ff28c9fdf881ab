/**
 * Linux TUN device (IFF_TUN | IFF_NO_PI: every read/write is one bare IP packet).
 *
 * Readiness comes from a libuv poll handle in the addon; on each readable event the
 * `onReadable` callback runs and should call `readBatch()` until it returns less than the
 * pool size (the fd is non-blocking; a batch stops at EAGAIN). One JS↔C crossing moves a
 * whole batch. Never use async fs.read on a TUN fd (see notes/perf-baselines.md).
 *
 * Addresses and routes are left to `ip` (see `addAddress`); MTU and link state are set
 * by ioctl in the addon.
 *
 * Offloads (`offload: 'on' | 'auto'`): the device is opened with IFF_VNET_HDR and TUNSETOFFLOAD
 * (TSO4/6, checksum, USO where the kernel has it), so the kernel hands over TCP/UDP super-packets
 * of up to 64 KiB and accepts coalesced ones. The addon splits what it reads into MTU-sized
 * segments and coalesces what it writes (native/tunsec_offload.cc): callers of readBatch and
 * writeBatch still see one IP packet of at most MTU octets per slot.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { loadNative, OffloadStat, type NativeAddon, type NativePoller } from '../native/addon.js';
import { PacketPool } from './pool.js';

const execFileP = promisify(execFile);
const EMPTY = Buffer.alloc(0);

export interface TunOpenOptions {
  /** Interface name (max 15 bytes); may contain %d; kernel picks "tunN" when absent. */
  name?: string;
  /** MTU to set (default: leave the kernel's 1500). */
  mtu?: number;
  /** Bring the link up (default true). */
  up?: boolean;
  /** IFF_MULTI_QUEUE: open the same name again for more queues. */
  multiQueue?: boolean;
  /** Packets per readBatch (default 64). */
  batchSize?: number;
  /** Bytes per pool slot; must be ≥ MTU or reads truncate (default max(mtu, 1500) + 64, at least 2048). */
  slotSize?: number;
  /**
   * TUN offloads (IFF_VNET_HDR + TUNSETOFFLOAD): `on` fails when the kernel (or the addon build)
   * refuses them, `auto` falls back to a plain device, `off` (default) never asks.
   */
  offload?: TunOffloadMode;
}

export type TunOffloadMode = 'auto' | 'on' | 'off';

/** What the offloads did, counted since the device was opened. */
export interface TunOffloadCounters {
  /** TSO/USO super-packets read and split into segments. */
  gsoPackets: number;
  /** Segments they made (also counted as packets read). */
  gsoSegments: number;
  /** Packets read that could not be segmented (IPv6 extension headers, IPv4 source routes, malformed): dropped. */
  gsoRefused: number;
  /** Coalesced super-packets written. */
  groWrites: number;
  /** Segments inside them (also counted as packets written). */
  groSegments: number;
}

/** Largest IP packet plus the virtio_net_hdr in front of it. */
const VNET_SCRATCH = 65535 + 10;

export class TunDevice {
  /** Receive pool used by `readBatch()` with no arguments. */
  readonly rx: PacketPool;
  /** Transmit pool for callers building packets in place; `writeBatch()` with no buffers writes it. */
  readonly tx: PacketPool;
  private poller: NativePoller | undefined;
  private readableCb: (() => void) | undefined;
  private errorCb: ((err: Error) => void) | undefined;
  private paused = false;
  private closed = false;
  private readonly oneBuf: Uint8Array[] = [EMPTY];
  private readonly oneLen = new Int32Array(1);
  /** Offload counters (all zero on a device without offloads). */
  readonly offloadCounters: TunOffloadCounters = { gsoPackets: 0, gsoSegments: 0, gsoRefused: 0, groWrites: 0, groSegments: 0 };
  private readonly scratch: Uint8Array | undefined;
  private readonly stats = new Int32Array(8);

  private constructor(
    private readonly addon: NativeAddon,
    readonly fd: number,
    readonly name: string,
    readonly mtu: number,
    batchSize: number,
    slotSize: number,
    /** TUNSETOFFLOAD flags the kernel accepted; 0 = a plain device (one bare IP packet per read/write). */
    readonly offloads: number,
  ) {
    this.rx = new PacketPool(batchSize, slotSize);
    this.tx = new PacketPool(batchSize, slotSize);
    if (offloads !== 0) this.scratch = new Uint8Array(VNET_SCRATCH);
  }

  /** Offloads the kernel accepted, by name ("tso4", "tso6", "csum", "uso4", "uso6"); empty without. */
  get offloadNames(): string[] {
    const c = this.addon.constants;
    const names: Array<[string, number | undefined]> = [
      ['csum', c.TUN_F_CSUM],
      ['tso4', c.TUN_F_TSO4],
      ['tso6', c.TUN_F_TSO6],
      ['uso4', c.TUN_F_USO4],
      ['uso6', c.TUN_F_USO6],
    ];
    return names.filter(([, bit]) => bit !== undefined && (this.offloads & bit) !== 0).map(([n]) => n);
  }

  static open(opts: TunOpenOptions = {}): TunDevice {
    const addon = loadNative();
    const mode = opts.offload ?? 'off';
    const supported = addon.readBatchVnet !== undefined && addon.writeBatchVnet !== undefined;
    if (mode === 'on' && !supported) throw new Error('TUN offloads requested but the native addon was built without them: rebuild it (npm ci)');
    let opened: { fd: number; name: string; offloads?: number };
    if (mode !== 'off' && supported) {
      try {
        opened = addon.tunOpen(opts.name ?? '', opts.multiQueue ?? false, true);
      } catch (err) {
        if (mode === 'on') throw err;
        opened = addon.tunOpen(opts.name ?? '', opts.multiQueue ?? false);
      }
    } else {
      opened = addon.tunOpen(opts.name ?? '', opts.multiQueue ?? false);
    }
    const { fd, name } = opened;
    try {
      if (opts.mtu !== undefined) addon.setMtu(name, opts.mtu);
      if (opts.up ?? true) addon.setUp(name, true);
    } catch (err) {
      addon.closeFd(fd);
      throw err;
    }
    const mtu = opts.mtu ?? 1500;
    const slot = opts.slotSize ?? Math.max(2048, Math.max(mtu, 1500) + 64);
    return new TunDevice(addon, fd, name, mtu, opts.batchSize ?? 64, slot, opened.offloads ?? 0);
  }

  /** Add an address with `ip addr add <cidr> dev <name>` (IPv6 with nodad). */
  async addAddress(cidr: string): Promise<void> {
    const args = cidr.includes(':') ? ['-6', 'addr', 'add', cidr, 'dev', this.name, 'nodad'] : ['addr', 'add', cidr, 'dev', this.name];
    await execFileP('ip', args);
  }

  /** Set the callback run (on the JS thread) whenever the device is readable, and start polling. */
  onReadable(cb: () => void, onError?: (err: Error) => void): void {
    this.assertOpen();
    this.readableCb = cb;
    this.errorCb = onError;
    if (!this.poller) {
      this.poller = new this.addon.Poller(this.fd, (err) => {
        if (err) {
          if (this.errorCb) this.errorCb(err);
          else throw err;
          return;
        }
        this.readableCb?.();
      });
    }
    if (!this.paused) this.poller.start();
  }

  /** Stop readable callbacks (packets queue in the kernel, up to txqueuelen, then drop). */
  pause(): void {
    this.paused = true;
    this.poller?.stop();
  }

  resume(): void {
    this.paused = false;
    if (this.poller && !this.closed) this.poller.start();
  }

  /**
   * Read up to one batch. Without arguments fills `this.rx` (packet i is `rx.packet(i)`);
   * otherwise fills the given buffers, lengths[i] = bytes of packet i. Returns the count
   * (0 when nothing is pending). `maxReads` (> 0) bounds the read()s: a caller expecting a lone
   * packet passes 1 and spares the read that would only say EAGAIN (a super-packet read is still
   * split whole; the device stays readable if more is queued).
   */
  readBatch(buffers: Uint8Array[] = this.rx.buffers, lengths: Int32Array = this.rx.lengths, maxReads = 0): number {
    this.assertOpen();
    if (this.scratch === undefined) return this.addon.readBatch(this.fd, buffers, lengths, maxReads);
    const n = this.addon.readBatchVnet!(this.fd, buffers, lengths, this.scratch, this.stats, maxReads);
    this.collectStats();
    return n;
  }

  /**
   * Write `count` packets (buffers[i] up to lengths[i]); defaults to the tx pool. Returns packets
   * written. With offloads, TCP segments of one flow leave as one coalesced write (their headers
   * are rewritten in place).
   */
  writeBatch(buffers: Uint8Array[] = this.tx.buffers, lengths: Int32Array = this.tx.lengths, count = Math.min(buffers.length, lengths.length)): number {
    this.assertOpen();
    if (this.scratch === undefined) return this.addon.writeBatch(this.fd, buffers, lengths, count);
    const n = this.addon.writeBatchVnet!(this.fd, buffers, lengths, count, this.stats);
    this.collectStats();
    return n;
  }

  /** Write one packet; false if the kernel would block. */
  write(packet: Uint8Array): boolean {
    this.assertOpen();
    this.oneBuf[0] = packet;
    this.oneLen[0] = packet.byteLength;
    const n = this.writeBatch(this.oneBuf, this.oneLen, 1);
    this.oneBuf[0] = EMPTY;
    return n === 1;
  }

  private collectStats(): void {
    const s = this.stats;
    const c = this.offloadCounters;
    c.gsoPackets += s[OffloadStat.GsoPackets]!;
    c.gsoSegments += s[OffloadStat.GsoSegments]!;
    c.gsoRefused += s[OffloadStat.Refused]!;
    c.groWrites += s[OffloadStat.GroWrites]!;
    c.groSegments += s[OffloadStat.GroSegments]!;
    s.fill(0, OffloadStat.GsoPackets);
  }

  /** Stop polling and close the fd (the interface disappears unless persistent). Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.poller?.close();
    this.poller = undefined;
    this.readableCb = undefined;
    this.addon.closeFd(this.fd);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private assertOpen(): void {
    if (this.closed) throw new Error(`TUN ${this.name} is closed`);
  }
}
