/**
 * Run inside a network namespace by pending-spi-netns.test.ts (as root):
 * tunsec's I/O loop (IoLoop) with a real TUN device, wired as the
 * daemon wires it (onPendingSpiReady → releasePendingSpi). ESP-in-UDP for an
 * SPI reserved with allocateSpi arrives before the SA is installed — sealed
 * here by a second, in-process SAD playing the peer; then the inbound SA is
 * installed. The decrypted UDP datagrams must reach a socket bound behind
 * the TUN device, in order. Prints one JSON line with what it saw.
 */
import { createSocket } from 'node:dgram';
import type { SaSpec } from '../../src/esp/api.js';
import { PacketEngine, OUT_SEND } from '../../src/esp/engine.js';
import { IoLoop } from '../../src/esp/io.js';
import { SecurityAssociationDatabase } from '../../src/esp/sadb.js';
import { must, sleep } from '../support/proc.js';
import { ipv4, KEY_A, NO_LIFETIMES, policySpec, ts, udp } from '../esp/support.js';

const TUN = 'tsp0';
const LOCAL = '10.77.0.1'; // behind the TUN device, here
const REMOTE = '10.77.0.2'; // the peer's inner address
const OUTER_LOCAL = '192.0.2.1';
const OUTER_REMOTE = '192.0.2.2';
const PORT = 5555;
const COUNT = 3;

async function main(): Promise<void> {
  const sad = new SecurityAssociationDatabase();
  let plane: IoLoop | undefined;
  const dp = new PacketEngine(sad, { onPendingSpiReady: (spi) => plane?.releasePendingSpi(spi) });
  plane = new IoLoop({ engine: dp, tunName: TUN, mtu: 1400, mark: 0x7473, udp: { fdFor: () => undefined } });
  plane.start();
  const received: string[] = [];
  const sock = createSocket('udp4');
  try {
    await must('ip', ['addr', 'add', `${LOCAL}/24`, 'dev', TUN]);
    await must('ip', ['link', 'set', TUN, 'up']);
    await must('sysctl', ['-q', '-w', `net.ipv4.conf.${TUN}.rp_filter=0`, 'net.ipv4.conf.all.rp_filter=0']);
    sock.on('message', (m) => received.push(m.toString()));
    await new Promise<void>((resolve) => sock.bind(PORT, LOCAL, resolve));

    // the peer's outbound SA, tunnel mode over UDP encapsulation, on the SPI we reserved
    const spi = sad.allocateSpi();
    const common = {
      spi,
      mode: 'tunnel' as const,
      encap: { localPort: 4500, remotePort: 4500 },
      aead: { transformId: 20, keyBits: 128, keyMaterial: KEY_A },
      esn: false,
      replayWindow: 64,
      lifetimes: NO_LIFETIMES,
      reqid: 1,
    };
    const inbound: SaSpec = {
      ...common,
      direction: 'in',
      localAddress: OUTER_LOCAL,
      remoteAddress: OUTER_REMOTE,
      localSelectors: [ts(LOCAL)],
      remoteSelectors: [ts(REMOTE)],
    };
    const peer = new SecurityAssociationDatabase();
    peer.addSa({
      ...common,
      direction: 'out',
      localAddress: OUTER_REMOTE,
      remoteAddress: OUTER_LOCAL,
      localSelectors: [ts(REMOTE)],
      remoteSelectors: [ts(LOCAL)],
    });
    peer.addPolicy(policySpec({ reqid: 1, local: [ts(REMOTE)], remote: [ts(LOCAL)], mode: 'tunnel', localAddress: OUTER_REMOTE, remoteAddress: OUTER_LOCAL }));
    peer.setOutboundSa(1, spi);
    const peerDp = new PacketEngine(peer);

    // the peer sends before our exchange completed: held
    for (let i = 0; i < COUNT; i++) {
      const inner = ipv4({ src: REMOTE, dst: LOCAL }, udp(4444, PORT, Buffer.from(`held ${i}`)));
      const out = Buffer.alloc(inner.length + 128);
      const res = { verdict: 0, length: 0, sa: undefined };
      peerDp.outbound(inner, inner.length, out, res);
      if (res.verdict !== OUT_SEND) throw new Error(`the peer could not seal packet ${i}`);
      plane.receiveUdp(Buffer.from(out.subarray(0, res.length)), OUTER_REMOTE);
    }
    await sleep(300);
    const beforeInstall = { received: [...received], counters: { ...dp.counters }, tunWrites: plane.io.tunWrites };

    // our exchange completes: the inbound SA is installed
    sad.addSa(inbound);
    for (let i = 0; i < 100 && received.length < COUNT; i++) await sleep(30);
    console.log(JSON.stringify({ beforeInstall, received, counters: dp.counters, io: plane.io }));
  } finally {
    sock.close();
    plane.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});
