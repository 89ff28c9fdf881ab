import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { ESP_DESC_SLOTS, EspSealDesc, EspSealStat, loadNative, nativeAvailable } from '../../src/native/addon.js';
import { PacketPool } from '../../src/tun/pool.js';
import { ADDR_SLOT, dgramFd, formatAddr, stopDgramReceive } from '../../src/tun/raw-esp.js';
import { UdpGroReader } from '../../src/tun/udp-gro.js';

if (!nativeAvailable()) throw new Error('UDP GRO tests: the native addon is not built (npm ci builds it)');

const addon = loadNative();

/** A datagram whose octets say which one it is (`id` in the first 4 octets, as an ESP SPI would be, then `id` repeated). */
function datagram(id: number, length: number): Buffer {
  const b = Buffer.alloc(length, id & 0xff);
  if (length >= 4) b.writeUInt32BE(0x1000 + id, 0);
  return b;
}

describe('udpGroSplit: a coalesced datagram back into the datagrams it was', () => {
  const pool = new PacketPool(8, 2048);

  it('cuts at gso_size, the last segment the rest (shorter)', () => {
    const parts = [datagram(1, 1000), datagram(2, 1000), datagram(3, 1000), datagram(4, 377)];
    const whole = Buffer.concat(parts);
    expect(addon.udpGroSplit!(whole, whole.length, 1000, pool.buffers, pool.lengths)).toBe(4);
    for (let i = 0; i < 4; i++) expect(pool.packet(i).equals(parts[i]!)).toBe(true);
  });

  it('segments of exactly gso_size: no empty tail', () => {
    const whole = Buffer.concat([datagram(1, 500), datagram(2, 500)]);
    expect(addon.udpGroSplit!(whole, whole.length, 500, pool.buffers, pool.lengths)).toBe(2);
    expect([...pool.lengths.subarray(0, 2)]).toEqual([500, 500]);
  });

  it('without gso_size (or gso_size >= the length) the datagram is one segment; an empty datagram stays one', () => {
    const d = datagram(9, 1400);
    expect(addon.udpGroSplit!(d, d.length, 0, pool.buffers, pool.lengths)).toBe(1);
    expect(pool.lengths[0]).toBe(1400);
    expect(addon.udpGroSplit!(d, d.length, 1400, pool.buffers, pool.lengths)).toBe(1);
    expect(addon.udpGroSplit!(d, 0, 100, pool.buffers, pool.lengths)).toBe(1);
    expect(pool.lengths[0]).toBe(0);
  });

  it('refuses a split that does not fit the slots', () => {
    const whole = Buffer.alloc(9 * 100);
    expect(() => addon.udpGroSplit!(whole, whole.length, 100, pool.buffers, pool.lengths)).toThrow(/not enough room/);
  });
});

describe('UdpGroReader on loopback: a UDP GSO batch arrives as one datagram and leaves as its packets', () => {
  const sockets: dgram.Socket[] = [];
  const fds: number[] = [];
  afterEach(() => {
    for (const s of sockets.splice(0)) s.close();
    for (const fd of fds.splice(0)) addon.closeFd(fd);
  });

  /** A receiver bound on 127.0.0.1 whose Node reads are stopped, read through a dup (as the daemon does). */
  async function receiver(): Promise<{ port: number; fd: number }> {
    const s = dgram.createSocket('udp4');
    sockets.push(s);
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    const fd = addon.dupFd(dgramFd(s));
    fds.push(fd);
    expect(stopDgramReceive(s)).toBe(true);
    return { port: s.address().port, fd };
  }

  /** Send `packets` to `port` as UDP GSO datagrams (runs of equal size), through espSealBatch's "already sealed" path. */
  function sendGso(fd: number, port: number, packets: Buffer[]): number[] {
    const n = packets.length;
    const dst = packets.map((p) => Buffer.from(p));
    const lengths = Int32Array.from(packets.map((p) => p.length));
    const desc = new Uint32Array(n * ESP_DESC_SLOTS);
    for (let i = 0; i < n; i++) desc[i * ESP_DESC_SLOTS + EspSealDesc.Flags] = 2;
    const stats = new Int32Array(4);
    expect(addon.espSealBatch!(dst, dst, lengths, desc, n, fd, '127.0.0.1', port, 1, stats)).toBe(n);
    return [...stats];
  }

  async function readAll(reader: UdpGroReader, pool: PacketPool, addrs: Uint8Array, want: number): Promise<Buffer[]> {
    const got: Buffer[] = [];
    for (let tries = 0; got.length < want && tries < 200; tries++) {
      const n = reader.read(pool, addrs);
      for (let i = 0; i < n; i++) {
        got.push(Buffer.from(pool.packet(i)));
        expect(formatAddr(addrs.subarray(i * ADDR_SLOT, (i + 1) * ADDR_SLOT))).toBe('127.0.0.1');
      }
      if (n === 0) await new Promise((r) => setTimeout(r, 5));
    }
    return got;
  }

  it('every packet once, in order, the last of a run shorter; an IKE message and a keepalive between batches in their place', async () => {
    const rx = await receiver();
    const reader = UdpGroReader.enable(rx.fd);
    const tx = addon.udpSocket(4);
    fds.push(tx);
    const batch1 = [...Array.from({ length: 20 }, (_, i) => datagram(i, 1200)), datagram(20, 333)];
    const ike = Buffer.concat([Buffer.alloc(4), datagram(100, 300)]); // non-ESP marker (RFC 3948 §2.2)
    const keepalive = Buffer.from([0xff]); // NAT-T keepalive (RFC 3948 §2.3)
    const batch2 = [...Array.from({ length: 9 }, (_, i) => datagram(200 + i, 1400)), datagram(209, 60)];
    const stats1 = sendGso(tx, rx.port, batch1);
    expect(addon.sendTo(tx, ike, ike.length, '127.0.0.1', rx.port)).toBe(ike.length);
    expect(addon.sendTo(tx, keepalive, 1, '127.0.0.1', rx.port)).toBe(1);
    const stats2 = sendGso(tx, rx.port, batch2);
    expect(stats1[EspSealStat.GsoSends]! + stats2[EspSealStat.GsoSends]!).toBe(2);
    const want = [...batch1, ike, keepalive, ...batch2];
    // slots fewer than one coalesced datagram's packets: the rest is carried to the next read
    const pool = new PacketPool(8, 2048);
    const addrs = new Uint8Array(8 * ADDR_SLOT);
    const got = await readAll(reader, pool, addrs, want.length);
    expect(got.length).toBe(want.length);
    for (let i = 0; i < want.length; i++) expect(got[i]!.equals(want[i]!), `packet ${i}`).toBe(true);
    expect(reader.counters).toEqual({ datagrams: 4, coalesced: 2, segments: batch1.length + batch2.length, dropped: 0 });
    expect(reader.read(pool, addrs)).toBe(0);
  });

  it('a segment longer than its slot is dropped and counted, the others delivered', async () => {
    const rx = await receiver();
    const reader = UdpGroReader.enable(rx.fd);
    const tx = addon.udpSocket(4);
    fds.push(tx);
    const batch = [datagram(1, 1500), datagram(2, 1500), datagram(3, 100)];
    sendGso(tx, rx.port, batch);
    const small = Buffer.from([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    addon.sendTo(tx, small, small.length, '127.0.0.1', rx.port);
    const pool = new PacketPool(4, 1024);
    const addrs = new Uint8Array(4 * ADDR_SLOT);
    const got = await readAll(reader, pool, addrs, 2);
    expect(got.map((b) => b.length)).toEqual([100, 9]);
    expect(reader.counters.dropped).toBe(2);
  });
});
