/**
 * Scenarios of the throughput bench: one fresh pair of network namespaces
 * each, something that carries the traffic between them, and the address to
 * aim at. A scenario is `setup()` → a TrafficPath (+ the daemons whose CPU
 * time matters) → `teardown()`. Adding a datapath to compare = adding a class.
 *
 *   plain                  veth only, the ceiling
 *   strongswan-libipsec    charon ↔ charon, kernel-libipsec (tunnel, ESP-in-UDP forced)
 *   tunsec-transport       tunsec daemon ↔ tunsec daemon, transport mode, raw ESP
 *   tunsec-tunnel-udp      tunsec daemon ↔ tunsec daemon, tunnel mode, ESP-in-UDP
 *   tunsec-strongswan      tunsec daemon (A, initiator, sender) ↔ charon kernel-libipsec (B), tunnel, ESP-in-UDP
 *   kernel-xfrm            Linux ESP (xfrm), transport mode, rfc4106(gcm(aes)) 128-bit, static SAs;
 *                          support is detected first and the case is `unavailable: <reason>` without it
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Issued } from '../../src/pki/issue.js';
import { NetnsPair } from '../../test/support/netns.js';
import { must, pidFromFile, run, stopPid } from '../../test/support/proc.js';
import { CHARON_BIN, StrongSwan, type StrongSwanConnection, type ViciValue } from '../../test/support/strongswan.js';
import { TunsecDaemon, credentialFiles, tunsecYaml, type LogLine } from '../../test/interop/tunsec-daemon.js';
import type { Cleanups } from './cleanup.js';
import type { TrafficPath, WatchedProcess, WireExpectation } from './measure.js';

export interface BenchPki {
  caPem: string;
  moon: Issued;
  sun: Issued;
}

export interface ScenarioContext {
  cleanups: Cleanups;
  pki: BenchPki;
  log: (line: string) => void;
}

export interface ScenarioPath extends TrafficPath {
  /** Daemons carrying the datapath; their CPU time is sampled around every run. */
  daemons: WatchedProcess[];
  /** What was negotiated / set up, for the JSON results. */
  details: Record<string, unknown>;
}

/** Thrown by setup() when the scenario cannot run yet for a known reason: recorded, not fatal. */
export class ScenarioUnavailable extends Error {}

export interface Scenario {
  readonly id: string;
  readonly title: string;
  readonly description: string;
  /**
   * An optional scenario that cannot bring traffic through is recorded as
   * "not available: <reason>" instead of failing the bench.
   */
  readonly optional: boolean;
  /** Programs it needs besides ip, iperf3, ping, ss, nft (checked before anything starts). */
  readonly programs: readonly string[];
  /** What the traffic must look like on the wire (checked before measuring, and for leaks after). */
  readonly wire: WireExpectation;
  setup(ctx: ScenarioContext): Promise<ScenarioPath>;
  /** Undo everything setup() did, also a half-done setup; safe to call twice. Returns warnings. */
  teardown(): Promise<string[]>;
}

/** A scenario with its own NetnsPair; teardown stops what is left inside by PID, then deletes the namespaces. */
abstract class NetnsScenario implements Scenario {
  abstract readonly id: string;
  abstract readonly title: string;
  abstract readonly description: string;
  abstract readonly optional: boolean;
  abstract readonly programs: readonly string[];
  abstract readonly wire: WireExpectation;
  protected pair: NetnsPair | undefined;
  private creating: Promise<NetnsPair> | undefined;

  protected async createPair(label: string): Promise<NetnsPair> {
    this.creating = NetnsPair.create(label);
    this.pair = await this.creating;
    return this.pair;
  }

  protected path(pair: NetnsPair, daemons: WatchedProcess[], details: Record<string, unknown>): ScenarioPath {
    return { clientNs: pair.a.ns, serverNs: pair.b.ns, target: pair.b.ip4, wire: pair.a.ifname, daemons, details };
  }

  abstract setup(ctx: ScenarioContext): Promise<ScenarioPath>;

  /** Stop the scenario's daemons (by PID file); called before the namespaces go. */
  protected async stopDaemons(): Promise<void> {}

  async teardown(): Promise<string[]> {
    const warnings: string[] = [];
    try {
      await this.stopDaemons();
    } catch (err) {
      warnings.push(`${this.id}: stopping daemons: ${(err as Error).message}`);
    }
    // A create() interrupted half-way cleans up after itself; a finished one is ours to delete.
    if (!this.pair && this.creating) this.pair = await this.creating.catch(() => undefined);
    const pair = this.pair;
    this.pair = undefined;
    this.creating = undefined;
    if (!pair) return warnings;
    // Anything still running inside our own namespaces (a client cut short by a signal): stop it by PID.
    for (const side of [pair.a, pair.b]) {
      const pids = await run('ip', ['netns', 'pids', side.ns]);
      for (const pid of pids.stdout.split(/\s+/).filter(Boolean).map(Number)) {
        if (Number.isInteger(pid) && pid > 1) {
          warnings.push(`${this.id}: process ${pid} still in ${side.ns}, stopped`);
          await stopPid(pid, 3000);
        }
      }
    }
    const leftovers = await pair.destroy();
    for (const l of leftovers) warnings.push(`${this.id}: left in namespace after stop: ${l}`);
    return warnings;
  }
}

// ------------------------------------------------------------------ plain veth

export class PlainVeth extends NetnsScenario {
  readonly id = 'plain';
  readonly title = 'plain veth (no IPsec)';
  readonly description = 'two namespaces joined by a veth pair, no IPsec: the ceiling';
  readonly optional = false;
  readonly programs = [] as const;
  readonly wire = 'cleartext' as const;

  async setup(): Promise<ScenarioPath> {
    const pair = await this.createPair('tpp');
    return this.path(pair, [], { mtu: 1500 });
  }
}

// ------------------------------------------------------------------ strongSwan kernel-libipsec

export class StrongSwanLibipsec extends NetnsScenario {
  readonly id = 'strongswan-libipsec';
  readonly title = 'strongSwan 5.9.8 kernel-libipsec (tunnel, ESP-in-UDP)';
  readonly description =
    "charon ↔ charon, each with strongSwan's userspace ESP datapath (kernel-libipsec, TUN ipsec0 MTU 1400): tunnel mode, ESP-in-UDP forced, IKE aes128gcm16-prfsha384-ecp384bp, ESP aes128gcm16";
  readonly optional = false;
  readonly programs = [CHARON_BIN, 'swanctl', 'unshare'] as const;
  readonly wire = 'esp-in-udp' as const;
  private moon: StrongSwan | undefined;
  private sun: StrongSwan | undefined;

  async setup(ctx: ScenarioContext): Promise<ScenarioPath> {
    const pair = await this.createPair('tps');
    const conn = (me: typeof pair.a, other: typeof pair.a, cert: Issued, id: string, peer: string): StrongSwanConnection => ({
      name: 'host-host',
      localAddrs: [me.ip4],
      remoteAddrs: [other.ip4],
      proposals: 'aes128gcm16-prfsha384-ecp384bp',
      localId: id,
      remoteId: peer,
      certPem: cert.certificatePem,
      keyPem: cert.privateKeyPem!,
      caPem: ctx.pki.caPem,
      children: [{ name: 'host-host', mode: 'tunnel', espProposals: 'aes128gcm16', localTs: ['dynamic'], remoteTs: ['dynamic'] }],
    });
    // Quiet logs: nothing per packet (esp/net 0), so logging is not part of what is measured.
    const logLevels = { ike: 1, chd: 1, knl: 0, enc: 0, net: 0, esp: 0, mgr: 0, cfg: 0 };
    ctx.cleanups.checkAborted();
    this.moon = new StrongSwan({ netns: pair.a.ns, logLevels, connections: [conn(pair.a, pair.b, ctx.pki.moon, 'moon.ikev2.test', 'sun.ikev2.test')] });
    this.sun = new StrongSwan({ netns: pair.b.ns, logLevels, connections: [conn(pair.b, pair.a, ctx.pki.sun, 'sun.ikev2.test', 'moon.ikev2.test')] });
    await this.sun.start();
    ctx.cleanups.checkAborted();
    await this.moon.start();
    ctx.cleanups.checkAborted();
    const r = await ctx.cleanups.race(this.moon.initiate('host-host'));
    if (r.code !== 0) throw new Error(`swanctl --initiate failed (exit ${r.code}): ${(r.stdout + r.stderr).trim().split('\n').slice(-5).join(' | ')}`);
    const ike = (await this.moon.listSas())['host-host'] as Record<string, ViciValue> | undefined;
    const child = ike && Object.values((ike['child-sas'] as Record<string, Record<string, ViciValue>> | undefined) ?? {})[0];
    if (!ike || !child) throw new Error('no CHILD_SA in swanctl --list-sas after --initiate');
    if (child.mode !== 'TUNNEL' || child.encap !== 'yes') throw new Error(`unexpected CHILD_SA: mode ${String(child.mode)}, encap ${String(child.encap)}`);
    const version = await this.moon.swanctl(['--version', '--daemon']);
    const tunMtu = (await run('ip', ['-n', pair.a.ns, '-o', 'link', 'show', 'ipsec0'])).stdout.match(/mtu (\d+)/)?.[1];
    const moon = this.moon;
    const sun = this.sun;
    return this.path(
      pair,
      [
        { label: 'charon A (sender)', pid: () => moon.pid() },
        { label: 'charon B (receiver)', pid: () => sun.pid() },
      ],
      {
        ike: `${String(ike['encr-alg'])}-${String(ike['encr-keysize'])} ${String(ike['prf-alg'])} ${String(ike['dh-group'])}`,
        child: {
          mode: child.mode,
          encap: child.encap,
          esp: `${String(child['encr-alg'])}-${String(child['encr-keysize'])}`,
          spi_in: child['spi-in'],
          spi_out: child['spi-out'],
        },
        tun_mtu: tunMtu === undefined ? undefined : Number(tunMtu),
        daemon_version: version.stdout
          .split('\n')
          .find((l) => /\d+\.\d+/.test(l))
          ?.trim(),
      },
    );
  }

  protected override async stopDaemons(): Promise<void> {
    const [moon, sun] = [this.moon, this.sun];
    this.moon = this.sun = undefined;
    await moon?.stop();
    await sun?.stop();
  }
}

// ------------------------------------------------------------------ tunsec ↔ tunsec

export interface TunsecVariant {
  id: string;
  title: string;
  mode: 'transport' | 'tunnel';
  encap: boolean;
  /** daemon.offload (default: the daemon's, auto). */
  offload?: 'auto' | 'on' | 'off';
  /** Only run when named by --only (comparison rows kept out of the full run). */
  onRequest?: boolean;
}

export const TUNSEC_VARIANTS: TunsecVariant[] = [
  { id: 'tunsec-transport', title: 'tunsec ↔ tunsec (transport, raw ESP)', mode: 'transport', encap: false },
  { id: 'tunsec-tunnel-udp', title: 'tunsec ↔ tunsec (tunnel, ESP-in-UDP)', mode: 'tunnel', encap: true },
  // The same with the TUN offloads off (one packet per TUN read/write), to compare on/off in one interleaved run.
  {
    id: 'tunsec-transport-offload-off',
    title: 'tunsec ↔ tunsec (transport, raw ESP, offload off)',
    mode: 'transport',
    encap: false,
    offload: 'off',
    onRequest: true,
  },
  {
    id: 'tunsec-tunnel-udp-offload-off',
    title: 'tunsec ↔ tunsec (tunnel, ESP-in-UDP, offload off)',
    mode: 'tunnel',
    encap: true,
    offload: 'off',
    onRequest: true,
  },
];

/**
 * Two `tunsec daemon`s (TunsecDaemon: the CLI from source) with the mission's
 * proposals. Until the daemon's ESP datapath carries packets, the path check
 * finds the pings answered in the clear (or not at all) and the scenario is
 * recorded as not available.
 */
export class TunsecPair extends NetnsScenario {
  readonly optional = true;
  readonly programs = [] as const;
  readonly id: string;
  readonly title: string;
  readonly description: string;
  readonly wire: WireExpectation;
  /** Left out of a run without --only naming it. */
  readonly onRequest: boolean;
  private moon: TunsecDaemon | undefined;
  private sun: TunsecDaemon | undefined;

  constructor(
    private readonly v: TunsecVariant,
    /** Profile both daemons (node --cpu-prof through NODE_OPTIONS, which TunsecDaemon's spawn inherits); .cpuprofile files land here at exit. */
    private readonly cpuProfDir?: string,
  ) {
    super();
    this.id = v.id;
    this.title = v.title;
    this.wire = v.encap ? 'esp-in-udp' : 'esp';
    this.onRequest = v.onRequest ?? false;
    this.description = `tunsec daemon ↔ tunsec daemon, ${v.mode} mode, ${v.encap ? 'ESP-in-UDP (encap: yes)' : 'raw ESP (IP protocol 50)'}${v.offload ? `, daemon.offload: ${v.offload}` : ''}, IKE aes128gcm16-prfsha384-ecp384bp!, ESP aes128gcm16-ecp384bp!`;
  }

  async setup(ctx: ScenarioContext): Promise<ScenarioPath> {
    const pair = await this.createPair('tpt');
    const daemon = (me: typeof pair.a, other: typeof pair.a, cert: Issued, id: string, peer: string, start: boolean): TunsecDaemon =>
      new TunsecDaemon(
        me.ns,
        tunsecYaml({
          name: 'host-host',
          local: me.ip4,
          remote: other.ip4,
          localId: id,
          remoteId: peer,
          mode: this.v.mode,
          encap: this.v.encap,
          startAction: start ? 'start' : 'none',
          // Errors/warnings and events only: nothing per packet.
          daemonExtra: ['log: { default: 0 }', ...(this.v.offload ? [`offload: ${this.v.offload}`] : [])],
        }),
        credentialFiles(ctx.pki.caPem, cert),
      );
    ctx.cleanups.checkAborted();
    this.sun = daemon(pair.b, pair.a, ctx.pki.sun, 'sun.ikev2.test', 'moon.ikev2.test', false);
    this.moon = daemon(pair.a, pair.b, ctx.pki.moon, 'moon.ikev2.test', 'sun.ikev2.test', true);
    const [moon, sun] = [this.moon, this.sun];
    await withCpuProf(this.cpuProfDir, () => sun.start());
    await ctx.cleanups.race(sun.event('daemon_started'));
    await withCpuProf(this.cpuProfDir, () => moon.start());
    const mc = await ctx.cleanups.race(moon.event('child_established', 30_000));
    const sc = await ctx.cleanups.race(sun.event('child_established', 10_000));
    if (mc.mode !== this.v.mode || mc.encap !== this.v.encap) throw new Error(`unexpected CHILD_SA: mode ${String(mc.mode)}, encap ${String(mc.encap)}`);
    // The daemon writes its pid to ${DIR}/tunsec.pid (daemon.pid_file in tunsecYaml).
    const pidOf = (d: TunsecDaemon) => (): number | undefined => pidFromFile(join(d.dir, 'tunsec.pid'));
    const brief = (l: LogLine) => ({
      spi_in: l.spi_in,
      spi_out: l.spi_out,
      proposal: l.proposal,
      mode: l.mode,
      encap: l.encap,
      local_ts: l.local_ts,
      remote_ts: l.remote_ts,
    });
    return this.path(
      pair,
      [
        { label: 'tunsec A (sender)', pid: pidOf(moon) },
        { label: 'tunsec B (receiver)', pid: pidOf(sun) },
      ],
      { child_a: brief(mc), child_b: brief(sc) },
    );
  }

  /** The daemon's log, for a "not available" reason. */
  logTail(lines = 5): string {
    const errs = [this.moon, this.sun].flatMap((d) => (d ? d.lines.filter((l) => l.level === 'error' || l.level === 'warn').map((l) => l.msg ?? '') : []));
    return errs.slice(-lines).join(' | ');
  }

  protected override async stopDaemons(): Promise<void> {
    const [moon, sun] = [this.moon, this.sun];
    this.moon = this.sun = undefined;
    for (const d of [moon, sun]) {
      if (!d) continue;
      const pid = pidFromFile(join(d.dir, 'tunsec.pid'));
      // TunsecDaemon.stop(): SIGTERM (graceful: Deletes sent, bypass rules removed), SIGKILL after the grace period.
      await d.stop();
      // The process named by its pid file must be gone too (stop() removes the directory, so it was read
      // first); only if it still is this daemon (its command line names this daemon's config directory).
      if (pid !== undefined && cmdline(pid).includes(d.dir)) await stopPid(pid, 2000);
    }
  }
}

/**
 * Run `start` (which spawns a tunsec daemon synchronously: the child inherits process.env at spawn time)
 * with NODE_OPTIONS=--import=<cpu-prof-preload.mjs> and TUNSEC_BENCH_CPU_PROF_DIR=DIR, then restore the
 * environment. Node 20 does not allow --cpu-prof itself in NODE_OPTIONS; the preload starts the same V8
 * sampling profiler through node:inspector and writes DIR/CPU.<time>.<pid>.cpuprofile when the daemon
 * exits normally (SIGTERM → graceful shutdown), not on SIGKILL.
 */
async function withCpuProf(dir: string | undefined, start: () => Promise<void>): Promise<void> {
  if (!dir) return start();
  mkdirSync(dir, { recursive: true });
  const saved = { NODE_OPTIONS: process.env.NODE_OPTIONS, TUNSEC_BENCH_CPU_PROF_DIR: process.env.TUNSEC_BENCH_CPU_PROF_DIR };
  const restore = (): void => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
  const preload = new URL('./cpu-prof-preload.mjs', import.meta.url).href;
  process.env.NODE_OPTIONS = `${saved.NODE_OPTIONS ? `${saved.NODE_OPTIONS} ` : ''}--import=${preload}`;
  process.env.TUNSEC_BENCH_CPU_PROF_DIR = dir;
  try {
    const p = start();
    // spawn() happened synchronously inside start(); the environment can be restored now.
    restore();
    await p;
  } finally {
    restore();
  }
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}

// ------------------------------------------------------------------ tunsec ↔ strongSwan

/**
 * tunsec daemon in A (initiator, iperf3 client: tunsec encrypts what is measured
 * outbound) ↔ charon with kernel-libipsec in B, tunnel mode, ESP-in-UDP (the only
 * encapsulation libipsec has) — the setup of test/interop/datapath-strongswan.test.ts.
 */
export class TunsecStrongSwan extends NetnsScenario {
  readonly id = 'tunsec-strongswan';
  readonly title = 'tunsec ↔ strongSwan 5.9.8 kernel-libipsec (tunnel, ESP-in-UDP)';
  readonly description =
    'tunsec daemon (A: initiator, sender) ↔ charon with kernel-libipsec (B: receiver), tunnel mode, ESP-in-UDP, IKE aes128gcm16-prfsha384-ecp384bp, ESP aes128gcm16-ecp384bp';
  readonly optional = false;
  readonly programs = [CHARON_BIN, 'swanctl', 'unshare'] as const;
  readonly wire = 'esp-in-udp' as const;
  private tunsec: TunsecDaemon | undefined;
  private charon: StrongSwan | undefined;

  async setup(ctx: ScenarioContext): Promise<ScenarioPath> {
    const pair = await this.createPair('tpx');
    ctx.cleanups.checkAborted();
    const logLevels = { ike: 1, chd: 1, knl: 0, enc: 0, net: 0, esp: 0, mgr: 0, cfg: 0 };
    this.charon = new StrongSwan({
      netns: pair.b.ns,
      logLevels,
      connections: [
        {
          name: 'host-host',
          localAddrs: [pair.b.ip4],
          remoteAddrs: [pair.a.ip4],
          proposals: 'aes128gcm16-prfsha384-ecp384bp',
          localId: 'sun.ikev2.test',
          remoteId: 'moon.ikev2.test',
          certPem: ctx.pki.sun.certificatePem,
          keyPem: ctx.pki.sun.privateKeyPem!,
          caPem: ctx.pki.caPem,
          children: [{ name: 'host-host', mode: 'tunnel', espProposals: 'aes128gcm16-ecp384bp', localTs: ['dynamic'], remoteTs: ['dynamic'] }],
        },
      ],
    });
    this.tunsec = new TunsecDaemon(
      pair.a.ns,
      tunsecYaml({
        name: 'host-host',
        local: pair.a.ip4,
        remote: pair.b.ip4,
        localId: 'moon.ikev2.test',
        remoteId: 'sun.ikev2.test',
        mode: 'tunnel',
        encap: true,
        startAction: 'start',
        daemonExtra: ['log: { default: 0 }'],
      }),
      credentialFiles(ctx.pki.caPem, ctx.pki.moon),
    );
    const [charon, tunsec] = [this.charon, this.tunsec];
    await charon.start();
    ctx.cleanups.checkAborted();
    await tunsec.start();
    const tc = await ctx.cleanups.race(tunsec.event('child_established', 30_000));
    if (tc.mode !== 'tunnel' || tc.encap !== true) throw new Error(`unexpected CHILD_SA: mode ${String(tc.mode)}, encap ${String(tc.encap)}`);
    const tunsecDir = tunsec.dir;
    return this.path(
      pair,
      [
        { label: 'tunsec A (sender)', pid: () => pidFromFile(join(tunsecDir, 'tunsec.pid')) },
        { label: 'charon B (receiver)', pid: () => charon.pid() },
      ],
      { child_a: { spi_in: tc.spi_in, spi_out: tc.spi_out, proposal: tc.proposal, mode: tc.mode, encap: tc.encap } },
    );
  }

  protected override async stopDaemons(): Promise<void> {
    const [tunsec, charon] = [this.tunsec, this.charon];
    this.tunsec = this.charon = undefined;
    if (tunsec) {
      const pid = pidFromFile(join(tunsec.dir, 'tunsec.pid'));
      await tunsec.stop();
      if (pid !== undefined && cmdline(pid).includes(tunsec.dir)) await stopPid(pid, 2000);
    }
    await charon?.stop();
  }
}

// ------------------------------------------------------------------ kernel xfrm

/** The algorithm the mission uses, as the kernel names it (RFC 4106: 16-octet key + 4-octet salt, 128-bit ICV). */
const XFRM_AEAD = 'rfc4106(gcm(aes))';

/**
 * Can this kernel do ESP with rfc4106(gcm(aes))? Installs a throwaway SA in a
 * temporary namespace and reads the error; adds what /proc/crypto, the kernel
 * config and the module tree say. Returns undefined when it can, else the reason.
 */
export async function kernelXfrmSupport(): Promise<string | undefined> {
  const ns = `tpxfrm${process.pid}`;
  const add = await run('ip', ['netns', 'add', ns]);
  if (add.code !== 0) return `cannot create a namespace to probe xfrm: ${add.stderr.trim()}`;
  let err: string | undefined;
  try {
    const key = `0x${randomBytes(20).toString('hex')}`;
    const r = await run('ip', [
      '-n',
      ns,
      'xfrm',
      'state',
      'add',
      'src',
      '192.0.2.1',
      'dst',
      '192.0.2.2',
      'proto',
      'esp',
      'spi',
      '0x1000',
      'mode',
      'transport',
      'aead',
      XFRM_AEAD,
      key,
      '128',
    ]);
    if (r.code !== 0) err = `\`ip xfrm state add … proto esp aead ${XFRM_AEAD}\` fails: ${(r.stderr || r.stdout).trim().replace(/^Error: /, '')}`;
  } finally {
    await run('ip', ['netns', 'del', ns]);
  }
  if (!err) return undefined;
  const facts: string[] = [];
  try {
    const crypto = readFileSync('/proc/crypto', 'utf8');
    const names = new Set([...crypto.matchAll(/^name\s+: (.+)$/gm)].map((m) => m[1]!.trim()));
    const missing = ['gcm(aes)', XFRM_AEAD].filter((n) => !names.has(n));
    if (missing.length) facts.push(`/proc/crypto has no ${missing.join(', ')}`);
  } catch {
    /* no /proc/crypto */
  }
  const config = await run('sh', ['-c', 'zcat /proc/config.gz 2>/dev/null || cat /boot/config-$(uname -r) 2>/dev/null']);
  const unset = ['CONFIG_INET_ESP', 'CONFIG_CRYPTO_GCM', 'CONFIG_XFRM_USER'].filter((k) => config.stdout.includes(`# ${k} is not set`));
  if (unset.length) facts.push(`kernel config: ${unset.map((k) => `${k} is not set`).join(', ')}`);
  const release = (await run('uname', ['-r'])).stdout.trim();
  if (release && !existsSync(`/lib/modules/${release}`)) facts.push(`no /lib/modules/${release} (nothing loadable)`);
  return `${err}${facts.length ? `; ${facts.join('; ')}` : ''}`;
}

/**
 * Linux's own ESP in transport mode with the same AEAD (static SAs and policies
 * through `ip xfrm`, no IKE daemon: the kernel datapath alone). Unavailable —
 * with the probe's reason — where the kernel has no ESP or no GCM.
 */
export class KernelXfrm extends NetnsScenario {
  readonly id = 'kernel-xfrm';
  readonly title = 'Linux kernel ESP (xfrm, transport, rfc4106(gcm(aes)))';
  readonly description = 'kernel xfrm ↔ kernel xfrm, transport mode, raw ESP, AES-128-GCM-16 (rfc4106), static SAs (ip xfrm), no daemon';
  readonly optional = true;
  readonly programs = [] as const;
  readonly wire = 'esp' as const;

  async setup(): Promise<ScenarioPath> {
    const reason = await kernelXfrmSupport();
    if (reason) throw new ScenarioUnavailable(reason);
    const pair = await this.createPair('tpk');
    const [a, b] = [pair.a, pair.b];
    const keyAb = `0x${randomBytes(20).toString('hex')}`;
    const keyBa = `0x${randomBytes(20).toString('hex')}`;
    for (const side of [a, b]) {
      const state = (src: string, dst: string, spi: string, key: string) =>
        must('ip', [
          '-n',
          side.ns,
          'xfrm',
          'state',
          'add',
          'src',
          src,
          'dst',
          dst,
          'proto',
          'esp',
          'spi',
          spi,
          'mode',
          'transport',
          'aead',
          XFRM_AEAD,
          key,
          '128',
          'replay-window',
          '32',
        ]);
      await state(a.ip4, b.ip4, '0x1001', keyAb);
      await state(b.ip4, a.ip4, '0x1002', keyBa);
      const other = side === a ? b : a;
      for (const [dir, src, dst] of [
        ['out', side.ip4, other.ip4],
        ['in', other.ip4, side.ip4],
      ] as const) {
        await must('ip', [
          '-n',
          side.ns,
          'xfrm',
          'policy',
          'add',
          'src',
          `${src}/32`,
          'dst',
          `${dst}/32`,
          'dir',
          dir,
          'tmpl',
          'src',
          src,
          'dst',
          dst,
          'proto',
          'esp',
          'mode',
          'transport',
        ]);
      }
    }
    return this.path(pair, [], { aead: XFRM_AEAD, icv_bits: 128, mode: 'transport', keys: 'static (random per run)' });
  }
}

export function allScenarios(cpuProfDir?: string): Scenario[] {
  return [
    new PlainVeth(),
    new StrongSwanLibipsec(),
    ...TUNSEC_VARIANTS.map((v) => new TunsecPair(v, v.id === 'tunsec-transport' ? cpuProfDir : undefined)),
    new TunsecStrongSwan(),
    new KernelXfrm(),
  ];
}
