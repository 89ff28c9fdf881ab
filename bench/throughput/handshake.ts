/**
 * Handshake cases of `npm run bench`: IKE_SA + CHILD_SA establishments per
 * second with several initiations in flight at once, and the memory an
 * established SA costs once `total` (default 1 000) of them are up.
 *
 *   tunsec-ike       tunsec IKE manager ↔ tunsec IKE manager (src/ike/manager.ts with an in-memory
 *                    SAD, the daemon's IKE engine without TUN/datapath), both in the bench's own
 *                    Node process on loopback (127.0.0.1 ↔ 127.0.0.2): one thread does both roles
 *   tunsec-ike-2proc tunsec IKE manager ↔ tunsec IKE manager, each in a Node process of its own
 *                    (./ike-peer.ts, driven over IPC) with its public-key work on a crypto worker pool
 *                    of daemon.crypto_workers' default size: the two roles no longer share a thread,
 *                    and key exchange and signatures leave the thread that runs the exchanges
 *   strongswan-ike   charon ↔ charon (kernel-libipsec: every CHILD_SA is installed in libipsec), each in
 *                    its own namespace; initiations are `swanctl --initiate --child` processes
 *
 * Both: aes128gcm16-prfsha384-ecp384bp IKE (brainpoolP384r1 DH), ESP aes128gcm16, RSA-2048 certificates
 * (signatures with RSA, verified against the CA), tunnel/transport child with dynamic selectors. Every SA
 * stays up: SA number k is established while k−1 are alive, so the memory figure is the slope at 1 000.
 * Memory per SA = (ΔRSS initiator + ΔRSS responder) ÷ (2 × SAs): both sides hold each SA, the figure is
 * per side. The batches of the two cases alternate (tunsec batch 1, strongSwan batch 1, …) so that
 * machine drift hits both.
 */
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { createCa, issueCertificate, type Issued } from '../../src/pki/issue.js';
import { SecurityAssociationDatabase } from '../../src/esp/sadb.js';
import { UdpTransport } from '../../src/ike/net/udp.js';
import { IkeSaManager, type ConnectionEntry } from '../../src/ike/manager.js';
import type { Logger } from '../../src/ike/log.js';
import { child, freePorts, peerConfig, type TestPki } from '../../test/ike/support/peers.js';
import { NetnsPair } from '../../test/support/netns.js';
import { StrongSwan, type StrongSwanConnection } from '../../test/support/strongswan.js';
import type { Cleanups } from './cleanup.js';
import { rssMb } from './measure.js';
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { defaultCryptoWorkers } from '../../src/crypto/pool/defaults.js';
import type { PeerCommand, PeerReply } from './ike-peer.js';

export interface HandshakeOptions {
  /** SAs established per case (and kept up): the memory figure is taken at this count. */
  total: number;
  /** SAs per timed batch (one handshakes_per_s sample per batch). */
  batch: number;
  /** Initiations in flight at once. */
  concurrency: number;
  /** Unrecorded handshakes first (they stay up and are in the memory baseline). */
  warmup: number;
  /** Only these case ids (default: all). */
  cases?: string[];
}

export interface HandshakeCaseResult {
  id: string;
  title: string;
  description: string;
  status: 'ok' | 'failed';
  reason?: string;
  /** handshakes/s of each batch. */
  rates: number[];
  established: number;
  failed_initiations: number;
  rss_mb?: { before: number; after: number; per_process?: Record<string, { before: number; after: number }> };
  kb_per_sa?: number;
  /**
   * The slope over the second half: (RSS at `total` − RSS at `total`/2) ÷ (2 × SAs made in between).
   * Leaves out what grows once (V8's young generation, charon's thread pools) and is not per SA.
   */
  kb_per_sa_slope?: number;
  details: Record<string, unknown>;
}

interface HandshakeCase {
  readonly id: string;
  readonly title: string;
  readonly description: string;
  setup(): Promise<void>;
  /** Establish n SAs, `concurrency` at a time; returns how many failed. */
  establish(n: number, concurrency: number): Promise<number>;
  /** RSS of the processes holding the SAs, MiB, by label. */
  rss(): Record<string, number | undefined>;
  /** SAs the responder reports established. */
  count(): Promise<number>;
  teardown(): Promise<void>;
  details(): Record<string, unknown>;
}

/** `n` jobs, at most `concurrency` running; resolves with the number of failures. */
async function pool(n: number, concurrency: number, job: () => Promise<unknown>): Promise<number> {
  let next = 0;
  let failed = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      next++;
      try {
        await job();
      } catch {
        failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return failed;
}

/** A real garbage collection before reading RSS (the bench runs without --expose-gc). */
function collectGarbage(): void {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as (() => void) | undefined;
  gc?.();
}

const quietLogger: Logger = { log: () => undefined };

// ---------------------------------------------------------------- tunsec ↔ tunsec, in process

class TunsecIke implements HandshakeCase {
  readonly id = 'tunsec-ike';
  readonly title = 'tunsec ↔ tunsec IKE (in one process, loopback)';
  readonly description =
    "two tunsec IkeSaManagers (the daemon's IKE engine, in-memory SAD) on 127.0.0.1 ↔ 127.0.0.2 inside the bench process: one Node thread plays both roles";
  private peers: Array<{ manager: IkeSaManager; transport: UdpTransport; sad: SecurityAssociationDatabase }> = [];

  async setup(): Promise<void> {
    const ca = createCa({ subject: 'C=CH, O=tunsec bench, CN=Bench IKE CA', key: 'rsa2048' });
    const pki: TestPki = {
      ca,
      host: (name) => issueCertificate(ca, { subject: `C=CH, O=tunsec bench, CN=${name}`, key: 'rsa2048', subjectAltNames: { dns: [name] } }),
    };
    const ports = await freePorts();
    const mk = async (me: string, other: string, id: string, peer: string): Promise<void> => {
      const entry: ConnectionEntry = {
        config: peerConfig(pki, pki.host(id), id, peer, { children: [child({ mode: 'tunnel' })] }),
        localAddrs: [me],
        remoteAddrs: [other],
        remotePort: ports.ike,
      };
      const sad = new SecurityAssociationDatabase();
      const transport = new UdpTransport({ addresses: [me], ikePort: ports.ike, nattPort: ports.natt });
      const manager = new IkeSaManager({
        connections: [entry],
        backend: sad,
        log: quietLogger,
        ikePort: ports.ike,
        io: { nattPort: ports.natt, send: (local, remote, datagrams) => datagrams.forEach((d) => transport.sendIke(local, remote, d)) },
      });
      transport.on('ike', (d) => manager.receive(d.message, d.local, d.remote));
      await transport.start();
      this.peers.push({ manager, transport, sad });
    };
    await mk('127.0.0.1', '127.0.0.2', 'moon.tunsec.test', 'sun.tunsec.test');
    await mk('127.0.0.2', '127.0.0.1', 'sun.tunsec.test', 'moon.tunsec.test');
  }

  establish(n: number, concurrency: number): Promise<number> {
    const initiator = this.peers[0]!.manager;
    return pool(n, concurrency, () => initiator.initiate('host-host'));
  }

  rss(): Record<string, number | undefined> {
    collectGarbage();
    return { 'bench process (both tunsec peers)': rssMb(process.pid) };
  }

  async count(): Promise<number> {
    return this.peers[1]!.manager.sas.filter((s) => s.state === 'established').length;
  }

  details(): Record<string, unknown> {
    return {
      ike_sas: this.peers.map((p) => p.manager.sas.filter((s) => s.state === 'established').length),
      child_sas_in_sad: this.peers.map((p) => p.sad.listSas().length),
      heap_used_mb: Math.round(process.memoryUsage().heapUsed / 2 ** 20),
    };
  }

  async teardown(): Promise<void> {
    for (const p of this.peers) {
      for (const sa of [...p.manager.sas]) sa.destroy('bench done');
      p.transport.stop();
    }
    this.peers = [];
  }
}

// ---------------------------------------------------------------- tunsec ↔ tunsec, two processes, crypto workers

/** One ./ike-peer.ts process and its IPC channel (one command at a time). */
class PeerProcess {
  private readonly proc: ChildProcess;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(readonly label: string) {
    this.proc = fork(fileURLToPath(new URL('./ike-peer.ts', import.meta.url)), [], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  ask(cmd: PeerCommand): Promise<PeerReply & { ok: true }> {
    const next = this.queue.then(
      () =>
        new Promise<PeerReply & { ok: true }>((resolve, reject) => {
          const onExit = (code: number | null): void => reject(new Error(`${this.label} exited (${code}) during ${cmd.cmd}`));
          this.proc.once('exit', onExit);
          this.proc.once('message', (r: PeerReply) => {
            this.proc.off('exit', onExit);
            if (r.ok) resolve(r);
            else reject(new Error(`${this.label}: ${r.error}`));
          });
          this.proc.send(cmd);
        }),
    );
    this.queue = next.catch(() => undefined);
    return next;
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || !this.proc.connected) return;
    const exited = new Promise((r) => this.proc.once('exit', r));
    await Promise.race([this.ask({ cmd: 'stop' }).catch(() => undefined), new Promise((r) => setTimeout(r, 5000))]);
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}

class TunsecIkeTwoProcesses implements HandshakeCase {
  readonly id = 'tunsec-ike-2proc';
  /** TUNSEC_BENCH_CRYPTO_WORKERS=0 runs the same case with the public-key work inline, for comparison. */
  readonly workers = Number(process.env.TUNSEC_BENCH_CRYPTO_WORKERS ?? defaultCryptoWorkers());
  readonly title = 'tunsec ↔ tunsec IKE (two processes, crypto workers, loopback)';
  readonly description = `two tunsec IkeSaManagers (the daemon's IKE engine, in-memory SAD) on 127.0.0.1 ↔ 127.0.0.2, each in its own Node process with daemon.crypto_workers' default of ${this.workers} worker thread(s) for key exchange and signatures`;
  private peers: PeerProcess[] = [];
  private delays: Record<string, unknown> = {};

  async setup(): Promise<void> {
    const ca = createCa({ subject: 'C=CH, O=tunsec bench, CN=Bench IKE CA', key: 'rsa2048' });
    const host = (name: string): Issued =>
      issueCertificate(ca, { subject: `C=CH, O=tunsec bench, CN=${name}`, key: 'rsa2048', subjectAltNames: { dns: [name] } });
    const ports = await freePorts();
    const sides = [
      { label: 'tunsec A (initiator)', me: '127.0.0.1', other: '127.0.0.2', id: 'moon.tunsec.test', peer: 'sun.tunsec.test' },
      { label: 'tunsec B (responder)', me: '127.0.0.2', other: '127.0.0.1', id: 'sun.tunsec.test', peer: 'moon.tunsec.test' },
    ];
    for (const side of sides) {
      const cert = host(side.id);
      const proc = new PeerProcess(side.label);
      this.peers.push(proc);
      await proc.ask({
        cmd: 'start',
        me: side.me,
        other: side.other,
        id: side.id,
        peer: side.peer,
        ports,
        caPem: ca.certificatePem,
        certPem: cert.certificatePem,
        keyPem: cert.privateKeyPem!,
        workers: this.workers,
      });
    }
  }

  async establish(n: number, concurrency: number): Promise<number> {
    return (await this.peers[0]!.ask({ cmd: 'establish', n, concurrency })).failed ?? n;
  }

  rss(): Record<string, number | undefined> {
    return Object.fromEntries(this.peers.map((p) => [p.label, rssMb(p.pid)]));
  }

  async count(): Promise<number> {
    for (const p of this.peers) this.delays[p.label] = (await p.ask({ cmd: 'delay' })).delayMs;
    return (await this.peers[1]!.ask({ cmd: 'count' })).count ?? 0;
  }

  details(): Record<string, unknown> {
    return { crypto_workers_per_process: this.workers, event_loop_delay_ms_during_handshakes: this.delays };
  }

  async teardown(): Promise<void> {
    const peers = this.peers;
    this.peers = [];
    await Promise.all(peers.map((p) => p.stop()));
  }
}

// ---------------------------------------------------------------- strongSwan ↔ strongSwan

class StrongSwanIke implements HandshakeCase {
  readonly id = 'strongswan-ike';
  readonly title = 'strongSwan 5.9.8 ↔ strongSwan IKE (charon, kernel-libipsec)';
  readonly description =
    'charon ↔ charon in two namespaces, each CHILD_SA installed in kernel-libipsec; initiated by concurrent `swanctl --initiate --child` processes';
  private pair: NetnsPair | undefined;
  private moon: StrongSwan | undefined;
  private sun: StrongSwan | undefined;

  async setup(): Promise<void> {
    const pair = (this.pair = await NetnsPair.create('tph'));
    const ca = createCa({ subject: 'C=CH, O=tunsec bench, CN=Bench IKE CA', key: 'rsa2048' });
    const host = (cn: string): Issued =>
      issueCertificate(ca, { subject: `C=CH, O=tunsec bench, CN=${cn}`, key: 'rsa2048', subjectAltNames: { dns: [`${cn}.ikev2.test`] } });
    const conn = (me: string, other: string, cert: Issued, id: string, peer: string): StrongSwanConnection => ({
      name: 'host-host',
      localAddrs: [me],
      remoteAddrs: [other],
      proposals: 'aes128gcm16-prfsha384-ecp384bp',
      localId: id,
      remoteId: peer,
      certPem: cert.certificatePem,
      keyPem: cert.privateKeyPem!,
      caPem: ca.certificatePem,
      children: [{ name: 'host-host', mode: 'tunnel', espProposals: 'aes128gcm16-ecp384bp', localTs: ['dynamic'], remoteTs: ['dynamic'] }],
    });
    const logLevels = { ike: 0, chd: 0, knl: 0, enc: 0, net: 0, esp: 0, mgr: 0, cfg: 0 };
    this.moon = new StrongSwan({ netns: pair.a.ns, logLevels, connections: [conn(pair.a.ip4, pair.b.ip4, host('moon'), 'moon.ikev2.test', 'sun.ikev2.test')] });
    this.sun = new StrongSwan({ netns: pair.b.ns, logLevels, connections: [conn(pair.b.ip4, pair.a.ip4, host('sun'), 'sun.ikev2.test', 'moon.ikev2.test')] });
    // Every initiation must be a new IKE_SA (charon would otherwise add CHILD_SAs to the first one), and the
    // responder must not treat 4 in-flight handshakes from one address as a DoS (block_threshold 5, cookies at 10).
    for (const ss of [this.moon, this.sun])
      appendCharonSettings(ss, ['reuse_ikesa = no', 'block_threshold = 10000', 'cookie_threshold = 10000', 'init_limit_half_open = 0']);
    await this.sun.start();
    await this.moon.start();
  }

  lastError: string | undefined;

  establish(n: number, concurrency: number): Promise<number> {
    const moon = this.moon!;
    return pool(n, concurrency, async () => {
      const r = await moon.initiate('host-host', 20);
      if (r.code !== 0) {
        this.lastError = (r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ');
        throw new Error(this.lastError);
      }
    });
  }

  rss(): Record<string, number | undefined> {
    return { 'charon A (initiator)': rssMb(this.moon?.pid()), 'charon B (responder)': rssMb(this.sun?.pid()) };
  }

  async count(): Promise<number> {
    const r = await this.sun!.swanctl(['--stats']);
    return Number(/IKE_SAs: (\d+) total/.exec(r.stdout)?.[1] ?? NaN);
  }

  details(): Record<string, unknown> {
    return this.lastError ? { last_error: this.lastError } : {};
  }

  async teardown(): Promise<void> {
    const [moon, sun, pair] = [this.moon, this.sun, this.pair];
    this.moon = this.sun = this.pair = undefined;
    await moon?.stop();
    await sun?.stop();
    await pair?.destroy();
  }
}

/**
 * test/support/strongswan.ts writes a fixed strongswan.conf; the handshake case needs a few more charon
 * settings. strongSwan merges repeated sections, so a second `charon { … }` block appended after the
 * helper wrote its file adds them (the helper itself is not changed).
 */
function appendCharonSettings(ss: StrongSwan, settings: string[]): void {
  const target = ss as unknown as { writeConfig: () => void };
  const original = target.writeConfig.bind(ss);
  target.writeConfig = () => {
    original();
    appendFileSync(join(ss.dir, 'strongswan.conf'), `charon {\n${settings.map((l) => `    ${l}`).join('\n')}\n}\n`);
  };
}

const sum = (r: Record<string, number | undefined>): number | undefined => {
  const v = Object.values(r);
  return v.every((x) => x !== undefined) ? v.reduce<number>((s, x) => s + x!, 0) : undefined;
};

/** Run both handshake cases with interleaved batches. */
export async function runHandshakes(o: HandshakeOptions, cleanups: Cleanups, log: (l: string) => void): Promise<HandshakeCaseResult[]> {
  const all: HandshakeCase[] = [new TunsecIke(), new TunsecIkeTwoProcesses(), new StrongSwanIke()];
  const cases = o.cases ? all.filter((c) => o.cases!.includes(c.id)) : all;
  if (o.cases && cases.length !== o.cases.length)
    throw new Error(`--handshake-cases: no case ${o.cases.filter((id) => !all.some((c) => c.id === id)).join(', ')} (have ${all.map((c) => c.id).join(', ')})`);
  const results = new Map<HandshakeCase, HandshakeCaseResult>();
  const before = new Map<HandshakeCase, Record<string, number | undefined>>();
  const undo = cases.map((c) => cleanups.add(`handshake case ${c.id}`, () => c.teardown()));
  try {
    for (const c of cases) {
      const res: HandshakeCaseResult = {
        id: c.id,
        title: c.title,
        description: c.description,
        status: 'ok',
        rates: [],
        established: 0,
        failed_initiations: 0,
        details: {},
      };
      results.set(c, res);
      try {
        cleanups.checkAborted();
        await c.setup();
        if (o.warmup) res.failed_initiations += await c.establish(o.warmup, o.concurrency);
        before.set(c, c.rss());
        log(`[${c.id}] up; ${o.warmup} warm-up handshakes done`);
      } catch (err) {
        res.status = 'failed';
        res.reason = `setup: ${(err as Error).message.slice(0, 500)}`;
        log(`[${c.id}] failed: ${res.reason}`);
      }
    }
    const live = () => cases.filter((c) => results.get(c)!.status === 'ok');
    /** RSS and failed initiations once half the SAs are up (for kb_per_sa_slope). */
    const half = new Map<HandshakeCase, { rss: Record<string, number | undefined>; done: number; failed: number }>();
    for (let done = 0; done < o.total;) {
      const n = Math.min(o.batch, o.total - done);
      for (const c of live()) {
        cleanups.checkAborted();
        const res = results.get(c)!;
        const t0 = performance.now();
        const failed = await c.establish(n, o.concurrency);
        const sec = (performance.now() - t0) / 1000;
        res.failed_initiations += failed;
        res.rates.push(Math.round(((n - failed) / sec) * 10) / 10);
        log(
          `[${c.id}] ${done + n}/${o.total}: ${n - failed} IKE+CHILD SAs in ${sec.toFixed(2)} s = ${res.rates.at(-1)}/s${failed ? ` (${failed} failed)` : ''}`,
        );
      }
      done += n;
      if (done >= o.total / 2 && done < o.total)
        for (const c of live()) if (!half.has(c)) half.set(c, { rss: c.rss(), done, failed: results.get(c)!.failed_initiations });
    }
    for (const c of live()) {
      const res = results.get(c)!;
      res.established = await c.count();
      const b = before.get(c)!;
      const a = c.rss();
      const [sb, sa] = [sum(b), sum(a)];
      if (sb !== undefined && sa !== undefined) {
        const round = (x: number): number => Math.round(x * 10) / 10;
        res.rss_mb = {
          before: round(sb),
          after: round(sa),
          per_process: Object.fromEntries(Object.keys(a).map((k) => [k, { before: round(b[k] ?? NaN), after: round(a[k]!) }])),
        };
        // Per side: both the initiator and the responder hold every SA.
        const sas = o.total - res.failed_initiations;
        if (sas > 0) res.kb_per_sa = Math.round((((sa - sb) * 1024) / (2 * sas)) * 10) / 10;
        const h = half.get(c);
        const sh = h ? sum(h.rss) : undefined;
        const secondHalf = h ? o.total - h.done - (res.failed_initiations - h.failed) : 0;
        if (sh !== undefined && secondHalf > 0) res.kb_per_sa_slope = round(((sa - sh) * 1024) / (2 * secondHalf));
      }
      res.details = c.details();
      if (res.established < (o.total + o.warmup) * 0.95) {
        res.status = 'failed';
        res.reason = `the responder has ${res.established} IKE_SAs, ${o.total + o.warmup} were initiated (${res.failed_initiations} initiations failed)`;
      }
      log(
        `[${c.id}] ${res.established} IKE_SAs up at the responder; RSS ${res.rss_mb?.before} → ${res.rss_mb?.after} MiB: ${res.kb_per_sa} KiB per SA and side (second half: ${res.kb_per_sa_slope ?? '–'})`,
      );
    }
  } finally {
    for (const u of undo) await u().catch((err: unknown) => log(`handshake teardown: ${(err as Error).message}`));
  }
  return [...results.values()];
}
