/**
 * Runs inside a netns (spawned by device.test.ts): opens a TUN, gives it `cidr`, and answers
 * every ICMP echo request that the kernel routes into it with an echo reply injected by
 * writeBatch. Prints "READY <ifname>" then, on exit, "STATS <json>".
 * usage: tun-echo.ts <ifname> <cidr> <seconds>
 */
import { TunDevice } from '../../../src/tun/device.js';

const [name = '', cidr = '10.77.0.1/24', secsArg = '10'] = process.argv.slice(2);
const tun = TunDevice.open({ name, mtu: 1400 });
await tun.addAddress(cidr);

let seen = 0;
let echoes = 0;
let replies = 0;
let batches = 0;
const sources = new Set<string>();

function csum(b: Buffer, start: number, end: number): number {
  let s = 0;
  for (let i = start; i + 1 < end; i += 2) s += b.readUInt16BE(i);
  if ((end - start) & 1) s += (b[end - 1] ?? 0) << 8;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return ~s & 0xffff;
}

tun.onReadable(() => {
  for (;;) {
    const n = tun.readBatch();
    if (n > 0) batches++;
    let out = 0;
    for (let i = 0; i < n; i++) {
      seen++;
      const p = tun.rx.packet(i);
      if (p.length < 28 || p[0] !== 0x45 || p[9] !== 1 || p[20] !== 8) continue; // IPv4, no options, ICMP echo request
      echoes++;
      sources.add(`${p[12]}.${p[13]}.${p[14]}.${p[15]}`);
      const r = tun.tx.buffers[out]!;
      p.copy(r);
      p.copy(r, 12, 16, 20); // swap addresses
      p.copy(r, 16, 12, 16);
      r[8] = 64;
      r[20] = 0; // echo reply
      r.writeUInt16BE(0, 10);
      r.writeUInt16BE(csum(r, 0, 20), 10);
      r.writeUInt16BE(0, 22);
      r.writeUInt16BE(csum(r, 20, p.length), 22);
      tun.tx.lengths[out++] = p.length;
    }
    if (out) replies += tun.writeBatch(tun.tx.buffers, tun.tx.lengths, out);
    if (n < tun.rx.count) break;
  }
});

function finish(): void {
  tun.close();
  process.stdout.write(`STATS ${JSON.stringify({ seen, echoes, replies, batches, sources: [...sources] })}\n`);
  process.exit(0);
}
process.on('SIGTERM', finish);
setTimeout(finish, Number(secsArg) * 1000);
process.stdout.write(`READY ${tun.name}\n`);
