/**
 * Preallocated packet slots: `count` Buffers of `slotSize` bytes carved out of one
 * ArrayBuffer, plus an Int32Array of lengths. Batch I/O fills them in place, so the
 * datapath allocates nothing per packet.
 */
export class PacketPool {
  readonly buffers: Buffer[];
  readonly lengths: Int32Array;

  constructor(
    readonly count: number,
    readonly slotSize: number,
  ) {
    if (!Number.isInteger(count) || count < 1) throw new RangeError(`pool count must be a positive integer, got ${count}`);
    if (!Number.isInteger(slotSize) || slotSize < 1) throw new RangeError(`pool slotSize must be a positive integer, got ${slotSize}`);
    const backing = new ArrayBuffer(count * slotSize);
    this.buffers = Array.from({ length: count }, (_, i) => Buffer.from(backing, i * slotSize, slotSize));
    this.lengths = new Int32Array(count);
  }

  /** View of packet i (no copy): valid until the slot is reused by the next batch. */
  packet(i: number): Buffer {
    const b = this.buffers[i];
    if (!b) throw new RangeError(`slot ${i} out of range`);
    return b.subarray(0, this.lengths[i]);
  }
}
