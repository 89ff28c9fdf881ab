/**
 * One side of the `tunsec-ike-2proc` handshake case (./handshake.ts), in a
 * process of its own: a tunsec IkeSaManager (in-memory SAD) on a loopback
 * address with its public-key work on a crypto worker pool, driven over the
 * IPC channel by the bench: `start` (certificates, addresses, ports, workers),
 * `establish` n SAs with `concurrency` in flight, `count`, `stop`.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { SecurityAssociationDatabase } from '../../src/esp/sadb.js';
import { UdpTransport } from '../../src/ike/net/udp.js';
import { IkeSaManager } from '../../src/ike/manager.js';
import { parseCertificate } from '../../src/pki/certificate.js';
import type { Issued } from '../../src/pki/issue.js';
import { createPublicKeyCrypto, type PublicKeyCrypto } from '../../src/crypto/pool/index.js';
import { child, peerConfig, type TestPki } from '../../test/ike/support/peers.js';

export interface PeerStart {
  cmd: 'start';
  me: string;
  other: string;
  id: string;
  peer: string;
  ports: { ike: number; natt: number };
  caPem: string;
  certPem: string;
  keyPem: string;
  workers: number;
}
export type PeerCommand = PeerStart | { cmd: 'establish'; n: number; concurrency: number } | { cmd: 'count' } | { cmd: 'delay' } | { cmd: 'stop' };
export type PeerReply =
  { ok: true; failed?: number; count?: number; workers?: number; delayMs?: { p50: number; p99: number; max: number } } | { ok: false; error: string };

/** How late this process's event loop ran its callbacks (the thread that would also run the ESP datapath), from `start` on. */
const loopDelay = monitorEventLoopDelay({ resolution: 1 });

const issued = (certPem: string, keyPem?: string): Issued => ({
  certificate: parseCertificate(new X509Certificate(certPem).raw, 'bench'),
  certificatePem: certPem,
  ...(keyPem ? { privateKey: createPrivateKey(keyPem), privateKeyPem: keyPem } : {}),
});

let manager: IkeSaManager | undefined;
let transport: UdpTransport | undefined;
let crypto: PublicKeyCrypto | undefined;

async function start(m: PeerStart): Promise<PeerReply> {
  const pki: TestPki = { ca: issued(m.caPem), host: () => issued(m.certPem, m.keyPem) };
  crypto = createPublicKeyCrypto(m.workers);
  const entry = {
    config: peerConfig(pki, pki.host(m.id), m.id, m.peer, { children: [child({ mode: 'tunnel' })] }),
    localAddrs: [m.me],
    remoteAddrs: [m.other],
    remotePort: m.ports.ike,
  };
  const t = (transport = new UdpTransport({ addresses: [m.me], ikePort: m.ports.ike, nattPort: m.ports.natt }));
  const mgr = (manager = new IkeSaManager({
    connections: [entry],
    backend: new SecurityAssociationDatabase(),
    log: { log: () => undefined },
    ikePort: m.ports.ike,
    crypto,
    io: { nattPort: m.ports.natt, send: (local, remote, datagrams) => datagrams.forEach((d) => t.sendIke(local, remote, d)) },
  }));
  t.on('ike', (d) => mgr.receive(d.message, d.local, d.remote));
  await t.start();
  loopDelay.enable();
  return { ok: true, workers: m.workers };
}

async function establish(n: number, concurrency: number): Promise<number> {
  let next = 0;
  let failed = 0;
  const run = async (): Promise<void> => {
    while (next < n) {
      next++;
      await manager!.initiate('host-host').catch(() => failed++);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, run));
  return failed;
}

process.on('message', (m: PeerCommand) => {
  const answer = async (): Promise<PeerReply> => {
    switch (m.cmd) {
      case 'start':
        return start(m);
      case 'establish':
        return { ok: true, failed: await establish(m.n, m.concurrency) };
      case 'delay': {
        const ms = (ns: number): number => Math.round(ns / 1e4) / 100;
        return { ok: true, delayMs: { p50: ms(loopDelay.percentile(50)), p99: ms(loopDelay.percentile(99)), max: ms(loopDelay.max) } };
      }
      case 'count':
        return { ok: true, count: manager?.sas.filter((s) => s.state === 'established').length ?? 0 };
      case 'stop':
        for (const sa of manager?.sas ?? []) sa.destroy('bench done');
        transport?.stop();
        await crypto?.close();
        return { ok: true };
    }
  };
  answer().then(
    (r) => process.send!(r, () => m.cmd === 'stop' && process.disconnect()),
    (err: unknown) => process.send!({ ok: false, error: err instanceof Error ? err.message : String(err) }),
  );
});
