/**
 * Runs inside a netns (spawned by raw-esp.test.ts).
 *  recv <seconds> <expect>: opens raw ESP sockets (v4 + v6), prints "READY", then one
 *        "PKT <json>" line per received ESP packet; exits after <expect> packets or the timeout.
 *  send <v4dst> <v6dst> <mark>: sends ESP packets with SPI 0x1000+i (one v4 via send(),
 *        three v4 via sendBatch, one v6) with SO_MARK set.
 */
import { RawEspSocket } from '../../../src/tun/raw-esp.js';

const [mode, ...args] = process.argv.slice(2);

function esp(spi: number, seq: number, len = 64): Buffer {
  const b = Buffer.alloc(len, 0xa5);
  b.writeUInt32BE(spi, 0);
  b.writeUInt32BE(seq, 4);
  return b;
}

if (mode === 'recv') {
  const secs = Number(args[0] ?? 10);
  const expect = Number(args[1] ?? 1);
  let got = 0;
  const socks = ([4, 6] as const).map((family) => RawEspSocket.open({ family, recvBufferSize: 4 << 20 }));
  const finish = (): void => {
    for (const s of socks) s.close();
    process.stdout.write('DONE\n');
    process.exit(0);
  };
  for (const s of socks) {
    s.onReadable(() => {
      for (;;) {
        const n = s.recvBatch();
        for (let i = 0; i < n; i++) {
          const p = s.payload(i);
          const line = {
            family: s.family,
            src: s.source(i),
            len: s.rx.lengths[i],
            offset: s.payloadOffset(i),
            spi: p.readUInt32BE(0),
            seq: p.readUInt32BE(4),
            espLen: p.length,
          };
          process.stdout.write(`PKT ${JSON.stringify(line)}\n`);
          if (++got >= expect) finish();
        }
        if (n < s.rx.count) break;
      }
    });
  }
  setTimeout(finish, secs * 1000);
  process.stdout.write('READY\n');
} else if (mode === 'send') {
  const [v4 = '', v6 = '', markArg = '0'] = args;
  const s4 = RawEspSocket.open({ family: 4, mark: Number(markArg), sendBufferSize: 1 << 20 });
  const s6 = RawEspSocket.open({ family: 6, mark: Number(markArg) });
  if (!s4.send(esp(0x1000, 1), v4)) throw new Error('v4 send would block');
  for (let i = 0; i < 3; i++) {
    esp(0x1001, 10 + i, 100).copy(s4.tx.buffers[i]!);
    s4.tx.lengths[i] = 100;
  }
  const sent = s4.sendBatch(v4, 3);
  if (!s6.send(esp(0x2000, 7, 80), v6)) throw new Error('v6 send would block');
  s4.close();
  s6.close();
  process.stdout.write(`SENT ${1 + sent + 1}\n`);
} else {
  throw new Error(`unknown mode ${mode}`);
}
