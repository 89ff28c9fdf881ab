/**
 * Measurement, not a test: packets/s that TunDevice.readBatch drains from a UDP flood.
 * Run as root:  node --import tsx test/tun/scripts/flood-bench.ts [seconds] [pktBytes] [batch]
 * It creates a private netns, re-executes itself inside it, opens a TUN (10.79.0.1/24) and
 * starts a generator process (native udpSocket + sendmmsg of 64, 10.79.0.1 -> 10.79.0.2:9,
 * routed into the TUN). Prints one JSON line; the netns is deleted at the end.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { TunDevice } from '../../../src/tun/device.js';
import { loadNative } from '../../../src/native/addon.js';

const self = fileURLToPath(import.meta.url);
const argv = process.argv.slice(2);
const mode = argv[0] === 'gen' || argv[0] === 'inner' ? argv[0] : 'outer';
const rest = mode === 'outer' ? argv : argv.slice(1);

if (mode === 'gen') {
  const [secs = '3', size = '1400'] = rest;
  const n = loadNative();
  const fd = n.udpSocket(4);
  const bufs = Array.from({ length: 64 }, () => Buffer.alloc(Number(size) - 28, 0xab));
  const lens = new Int32Array(64).fill(Number(size) - 28);
  const end = performance.now() + Number(secs) * 1000;
  let sent = 0;
  while (performance.now() < end) sent += n.sendBatch(fd, bufs, lens, 64, '10.79.0.2', 9);
  process.stdout.write(`${sent}\n`);
} else if (mode === 'inner') {
  const [secs = '3', size = '1400', batch = '64'] = rest;
  const tun = TunDevice.open({ name: 'fbtun0', mtu: 1500, batchSize: Number(batch) });
  await tun.addAddress('10.79.0.1/24');
  const stat = (k: string): number => Number(readFileSync(`/sys/class/net/${tun.name}/statistics/${k}`, 'utf8'));
  let pkts = 0;
  let calls = 0;
  let first = 0;
  let last = 0;
  tun.onReadable(() => {
    for (;;) {
      const k = tun.readBatch();
      calls++;
      if (k) {
        const t = performance.now();
        if (!pkts) first = t;
        last = t;
        pkts += k;
      }
      if (k < tun.rx.count) break;
    }
  });
  const drop0 = stat('tx_dropped');
  const cpu0 = process.cpuUsage();
  const gen = spawn(process.execPath, ['--import', 'tsx', self, 'gen', secs, size], { stdio: ['ignore', 'pipe', 'inherit'] });
  let genOut = '';
  gen.stdout.on('data', (d: Buffer) => (genOut += d.toString()));
  gen.on('exit', () => {
    setTimeout(() => {
      const cpu = process.cpuUsage(cpu0);
      const secsRun = (last - first) / 1000;
      process.stdout.write(
        JSON.stringify({
          size: Number(size),
          batch: Number(batch),
          generated: Number(genOut.trim()),
          read: pkts,
          secs: Number(secsRun.toFixed(3)),
          pps: Math.round(pkts / secsRun),
          pktsPerCall: Number((pkts / calls).toFixed(1)),
          tunTxDropped: stat('tx_dropped') - drop0,
          readerCpuSec: Number(((cpu.user + cpu.system) / 1e6).toFixed(2)),
        }) + '\n',
      );
      tun.close();
      process.exit(0);
    }, 200);
  });
} else {
  const ns = `tsfb${randomBytes(3).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    const out = execFileSync('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', self, 'inner', ...rest], { encoding: 'utf8' });
    process.stdout.write(out);
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
  }
}
