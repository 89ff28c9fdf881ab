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
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { loadNative, type NativeAddon, type NativePoller } from '../native/addon.js';
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
}

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

  private constructor(
    private readonly addon: NativeAddon,
    readonly fd: number,
    readonly name: string,
    readonly mtu: number,
    batchSize: number,
    slotSize: number,
  ) {
    this.rx = new PacketPool(batchSize, slotSize);
    this.tx = new PacketPool(batchSize, slotSize);
  }

  static open(opts: TunOpenOptions = {}): TunDevice {
    const addon = loadNative();
    const { fd, name } = addon.tunOpen(opts.name ?? '', opts.multiQueue ?? false);
    try {
      if (opts.mtu !== undefined) addon.setMtu(name, opts.mtu);
      if (opts.up ?? true) addon.setUp(name, true);
    } catch (err) {
      addon.closeFd(fd);
      throw err;
    }
    const mtu = opts.mtu ?? 1500;
    const slot = opts.slotSize ?? Math.max(2048, Math.max(mtu, 1500) + 64);
    return new TunDevice(addon, fd, name, mtu, opts.batchSize ?? 64, slot);
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
   * (0 when nothing is pending).
   */
  readBatch(buffers: Uint8Array[] = this.rx.buffers, lengths: Int32Array = this.rx.lengths): number {
    this.assertOpen();
    return this.addon.readBatch(this.fd, buffers, lengths);
  }

  /** Write `count` packets (buffers[i] up to lengths[i]); defaults to the tx pool. Returns packets written. */
  writeBatch(buffers: Uint8Array[] = this.tx.buffers, lengths: Int32Array = this.tx.lengths, count = Math.min(buffers.length, lengths.length)): number {
    this.assertOpen();
    return this.addon.writeBatch(this.fd, buffers, lengths, count);
  }

  /** Write one packet; false if the kernel would block. */
  write(packet: Uint8Array): boolean {
    this.assertOpen();
    this.oneBuf[0] = packet;
    this.oneLen[0] = packet.byteLength;
    const n = this.addon.writeBatch(this.fd, this.oneBuf, this.oneLen, 1);
    this.oneBuf[0] = EMPTY;
    return n === 1;
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
