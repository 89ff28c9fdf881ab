/**
 * A real Linux kernel IPsec peer for the tests: Debian's User-Mode Linux
 * (`user-mode-linux`, Linux 6.1 as an ordinary process, with the ESP/XFRM
 * modules the host kernel lacks), booted on the host's `/` (hostfs, read-only)
 * with one vector/tap NIC in a network namespace of its own.
 *
 * `UmlLab.create()` builds a NetnsPair: side a is where tunsec runs; side b
 * becomes a bridge namespace (the veth end and the guest's tap are its ports)
 * and its addresses move into the guest. So `lab.pair` can be handed to
 * `peerDaemon`/`peerCertificates` as usual, with the guest as side b.
 *
 * The guest runs `uml/guest-init.sh` as PID 1, which turns into a command
 * agent over a hostfs drop box: `guest.exec(script)` returns exit code and
 * output. Everything is stopped by recorded PID (the guest's own session and
 * process group, created with setsid) and deleted by `destroy()`, which is
 * safe to call after any partial failure. A guest that cannot boot is an
 * error with its console and init log, never a skip.
 *
 * Before it reports ready, the guest checks that its kernel can add (and
 * delete) an rfc4106(gcm(aes)) ESP SA, IPv4 and IPv6; when it cannot, boot
 * throws with the `ip xfrm` error, whether the default RNG (stdrng) is there,
 * and the loaded modules (a kernel without drbg cannot make seqiv's IVs).
 *
 * Traps handled here (see the reference README): the XSAVE shim (LD_PRELOAD,
 * built into the cache directory under a name that is the hash of its source
 * and compiler, so a stale one is never loaded), TSO/GSO off on the guest NIC,
 * modules from /usr/lib/uml/modules (BOOT_MODULES at boot, others on demand),
 * AVX kept off in guest userspace, including the kernel's module loader.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NetnsPair } from './netns.js';
import { haveProgram, must, run, sleep, stopPid, type RunResult } from './proc.js';

export const UML_BIN = '/usr/bin/linux.uml';
export const UML_MODULES = '/usr/lib/uml/modules';
/** Artefacts reused across runs (the XSAVE shim), named by the hash of what they are built from. */
export const UML_CACHE = process.env.TUNSEC_UML_CACHE ?? '/var/cache/tunsec-uml';
export const GUEST_CHARON = '/usr/lib/ipsec/charon';

/**
 * Modules every guest loads at boot: XFRM and ESP, AES-GCM (RFC 4106) and its
 * IV generators, cryptomgr (which builds templates such as `rfc4106(gcm(aes))`)
 * and the default RNG seqiv takes, `stdrng`: drbg. (drbg would also use
 * jitterentropy_rng, but that refuses UML's clock: "host not compliant with
 * requirements: 2"; outside FIPS mode drbg seeds from the kernel's RNG alone.)
 * Others load on demand.
 */
export const BOOT_MODULES: readonly string[] = [
  'ipv6',
  'xfrm_user',
  'xfrm_algo',
  'esp4',
  'esp6',
  'cryptomgr',
  'gcm',
  'ghash_generic',
  'ctr',
  'seqiv',
  'echainiv',
  'authenc',
  'sha512_generic',
  'hmac',
  'drbg',
];

const here = fileURLToPath(new URL('./uml/', import.meta.url));

/** Fails loudly (never skips) when UML cannot be run here. */
export function requireUml(): void {
  const problems: string[] = [];
  if (process.getuid?.() !== 0) problems.push('must run as root');
  for (const p of [UML_BIN, 'ip', 'gcc', 'ethtool', '/sbin/modprobe']) if (!haveProgram(p)) problems.push(`missing ${p}`);
  if (!existsSync(UML_MODULES)) problems.push(`missing ${UML_MODULES}`);
  if (!existsSync('/dev/net/tun')) problems.push('missing /dev/net/tun');
  if (problems.length) throw new Error(`User-Mode Linux kernel peer: ${problems.join('; ')} (run scripts/setup-system.sh as root)`);
}

/**
 * The LD_PRELOAD shim that makes UML 6.1 boot on hosts with a large XSAVE area
 * (uml/xstate-shim.c). Cached as `xstate-shim-<hash>.so`, the hash over its
 * source, the build command and the compiler's version: a changed source or
 * compiler builds a new file, never reuses an old one; a cached file that does
 * not preload cleanly is rebuilt.
 */
export async function xstateShim(cacheDir = UML_CACHE, src = join(here, 'xstate-shim.c')): Promise<string> {
  const flags = ['-O2', '-shared', '-fPIC', '-ldl'];
  const compiler = await must('gcc', ['--version']);
  const key = createHash('sha256').update(readFileSync(src)).update(flags.join(' ')).update(compiler).digest('hex').slice(0, 16);
  const out = join(cacheDir, `xstate-shim-${key}.so`);
  if (existsSync(out) && (await preloads(out))) return out;
  mkdirSync(cacheDir, { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  await must('gcc', ['-o', tmp, src, ...flags]);
  renameSync(tmp, out); // atomic: parallel test files never load a half-written object
  if (!(await preloads(out))) throw new Error(`${out}: freshly built, but does not preload`);
  return out;
}

/** Whether the dynamic loader takes `so` as LD_PRELOAD without complaint (a truncated or foreign file is refused). */
async function preloads(so: string): Promise<boolean> {
  const r = await run('/bin/true', [], { env: { ...process.env, LD_PRELOAD: so } });
  return r.code === 0 && r.stderr === '';
}

export interface GuestOptions {
  /** Network namespace holding `bridge`; the guest's tap is created there. */
  netns: string;
  bridge: string;
  /** Addresses of the guest's vec0, with prefix length (e.g. 10.1.0.2/24, fd01::2/64). */
  ip4?: string;
  ip6?: string;
  mac?: string;
  /** Guest RAM (default 256M). */
  memory?: string;
  bootTimeoutMs?: number;
  /** Modules loaded at boot (default BOOT_MODULES). */
  modules?: readonly string[];
  /** Whether the kernel may load modules on demand (default true). */
  onDemandModules?: boolean;
}

let guestCounter = 0;

export class UmlGuest {
  /** Milliseconds from spawn to the agent's ready mark. */
  bootMs = 0;
  private pid?: number;
  private jobCounter = 0;
  private halted = false;

  private constructor(
    readonly options: GuestOptions,
    /** Host directory of this guest; /mnt/state inside it (read-write). */
    readonly stateDir: string,
    readonly tap: string,
  ) {}

  /** Boot a guest and wait for its agent; on failure everything it made is removed and the error carries the console. */
  static async boot(options: GuestOptions): Promise<UmlGuest> {
    requireUml();
    const shim = await xstateShim();
    // short path: guests' unix sockets live under it
    const stateDir = mkdtempSync('/tmp/tsuml-');
    const tap = `tsu${process.pid % 10000}g${guestCounter++}`.slice(0, 15);
    const guest = new UmlGuest(options, stateDir, tap);
    try {
      await guest.start(shim);
    } catch (err) {
      const diag = guest.diagnostics();
      await guest.halt();
      throw new Error(`User-Mode Linux guest failed to boot: ${(err as Error).message}\n${diag}`);
    }
    return guest;
  }

  private async start(shim: string): Promise<void> {
    const o = this.options;
    const init = join(this.stateDir, 'init.sh');
    copyFileSync(join(here, 'guest-init.sh'), init); // the guest sees the host's /tmp as its root's /tmp until it mounts its own
    await must('chmod', ['755', init]);
    mkdirSync(join(this.stateDir, 'jobs'));
    mkdirSync(join(this.stateDir, 'done'));
    await must('ip', ['netns', 'exec', o.netns, 'ip', 'tuntap', 'add', 'dev', this.tap, 'mode', 'tap']);
    await run('ip', ['netns', 'exec', o.netns, 'sysctl', '-qw', `net.ipv6.conf.${this.tap}.disable_ipv6=1`]);
    await must('ip', ['-n', o.netns, 'link', 'set', this.tap, 'master', o.bridge, 'up']);
    const args = [
      `umid=tsuml${process.pid}x${guestCounter}`,
      `uml_dir=${this.stateDir}`,
      `mem=${o.memory ?? '256M'}`,
      'root=/dev/root',
      'rootfstype=hostfs',
      'rootflags=/',
      'ro',
      `init=${init}`,
      `vec0:transport=tap,ifname=${this.tap}${o.mac ? `,mac=${o.mac}` : ''}`,
      'con=null',
      'con0=null,fd:1',
      'ssl=null',
      `GUEST_STATE=${this.stateDir}`,
      `GUEST_MODULES=${UML_MODULES}`,
      `GUEST_LOAD=${(o.modules ?? BOOT_MODULES).join(',')}`,
      ...(o.onDemandModules === false ? ['GUEST_ON_DEMAND=0'] : []),
      ...(o.ip4 ? [`GUEST_IP4=${o.ip4}`] : []),
      ...(o.ip6 ? [`GUEST_IP6=${o.ip6}`] : []),
    ];
    const console = openSync(join(this.stateDir, 'console.log'), 'w');
    const t0 = performance.now();
    // `ip netns exec` execs the kernel: the PID is the UML main thread's, in a session (and process group) of its own.
    const child = spawn('ip', ['netns', 'exec', o.netns, 'env', `LD_PRELOAD=${shim}`, UML_BIN, ...args], {
      detached: true,
      stdio: ['ignore', console, console],
    });
    closeSync(console);
    child.unref();
    if (child.pid === undefined) throw new Error('spawn failed');
    this.pid = child.pid;
    writeFileSync(join(this.stateDir, 'uml.pid'), `${child.pid}\n`);
    let exited: number | null | undefined;
    child.on('exit', (code) => (exited = code));
    const deadline = Date.now() + (o.bootTimeoutMs ?? 60_000);
    while (!existsSync(join(this.stateDir, 'ready'))) {
      const failed = join(this.stateDir, 'failed');
      if (existsSync(failed)) throw new Error(`the guest's kernel cannot do what the tests need. ${readFileSync(failed, 'utf8').trim()}`);
      if (exited !== undefined) throw new Error(`linux.uml exited (code ${exited}) before the agent was ready`);
      if (Date.now() > deadline) throw new Error(`no agent after ${o.bootTimeoutMs ?? 60_000} ms`);
      await sleep(25);
    }
    this.bootMs = Math.round(performance.now() - t0);
  }

  /** Host PID of the guest's kernel (its process group holds the guest's userspace helpers too); undefined once halted. */
  get processId(): number | undefined {
    return this.halted ? undefined : this.pid;
  }

  /** Console and init log tails, for error messages. */
  diagnostics(): string {
    const tail = (f: string): string => {
      try {
        return readFileSync(join(this.stateDir, f), 'utf8').split('\n').slice(-40).join('\n');
      } catch {
        return '(none)';
      }
    };
    return `--- console.log ---\n${tail('console.log')}\n--- init.log ---\n${tail('init.log')}`;
  }

  /** Path inside the guest of a file in its state directory. */
  guestPath(rel: string): string {
    return `/mnt/state/${rel}`;
  }

  hostPath(rel: string): string {
    return join(this.stateDir, rel);
  }

  /**
   * Run a /bin/sh snippet in the guest (as root, cwd /tmp); resolves with its exit
   * code and output (stdout and stderr together in `stdout`); 124 on timeout.
   * Start daemons with `setsid … >log 2>&1 &` so the snippet returns.
   */
  async exec(script: string, timeoutMs = 30_000): Promise<RunResult> {
    if (this.halted || this.pid === undefined) throw new Error('UML guest is not running');
    const id = `${Date.now()}-${this.jobCounter++}.sh`;
    const jobs = join(this.stateDir, 'jobs');
    writeFileSync(join(jobs, `.${id}`), `${script}\n`);
    renameSync(join(jobs, `.${id}`), join(jobs, id));
    const done = join(this.stateDir, 'done');
    const rcFile = join(done, `${id}.rc`);
    const outFile = join(done, `${id}.out`);
    const deadline = Date.now() + timeoutMs;
    while (!existsSync(rcFile)) {
      if (!existsSync(`/proc/${this.pid}`)) throw new Error(`UML guest died while running: ${script}\n${this.diagnostics()}`);
      if (Date.now() > deadline) {
        const partial = existsSync(outFile) ? readFileSync(outFile, 'utf8') : '';
        return { code: 124, stdout: partial, stderr: `timed out after ${timeoutMs} ms in the guest` };
      }
      await sleep(20);
    }
    const code = Number(readFileSync(rcFile, 'utf8').trim());
    const stdout = readFileSync(outFile, 'utf8');
    for (const f of [rcFile, outFile, join(jobs, id)]) rmSync(f, { force: true });
    return { code, stdout, stderr: '' };
  }

  /** exec, throwing with the output on a non-zero exit. */
  async must(script: string, timeoutMs?: number): Promise<string> {
    const r = await this.exec(script, timeoutMs);
    if (r.code !== 0) throw new Error(`in the UML guest: ${script}\nexit ${r.code}: ${r.stdout}${r.stderr}`);
    return r.stdout;
  }

  /**
   * A one-off iperf3 server (`-s -1`) in the guest, in the background; resolves once it listens
   * (a loaded 2-core host can take a second or more). A previous one is stopped first.
   */
  async startIperf3Server(port = 5201): Promise<void> {
    await this.must(
      [
        `if [ -f /tmp/iperf3-${port}.pid ]; then p=$(cat /tmp/iperf3-${port}.pid); kill $p 2>/dev/null; i=0; while kill -0 $p 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; fi`,
        `setsid iperf3 -s -1 -p ${port} > /tmp/iperf3-${port}.log 2>&1 < /dev/null & echo $! > /tmp/iperf3-${port}.pid`,
        `i=0; while ! ss -Hltn 'sport = :${port}' | grep -q . && [ $i -lt 300 ]; do sleep 0.05; i=$((i+1)); done`,
        `ss -Hltn 'sport = :${port}' | grep -q . || { cat /tmp/iperf3-${port}.log; exit 1; }`,
      ].join('\n'),
      30_000,
    );
  }

  /** Stop the iperf3 server of startIperf3Server (if still running); returns its log. */
  async stopIperf3Server(port = 5201): Promise<string> {
    const r = await this.exec(
      `[ -f /tmp/iperf3-${port}.pid ] && kill $(cat /tmp/iperf3-${port}.pid) 2>/dev/null; rm -f /tmp/iperf3-${port}.pid; cat /tmp/iperf3-${port}.log 2>/dev/null`,
    );
    return r.stdout;
  }

  /** Power the guest off (agent), then SIGTERM/SIGKILL its process group by the recorded PID; delete the tap and the state directory. Idempotent. */
  async halt(): Promise<void> {
    if (this.halted) return;
    this.halted = true;
    const pid = this.pid;
    if (pid !== undefined && existsSync(`/proc/${pid}`)) {
      if (existsSync(join(this.stateDir, 'ready'))) {
        writeFileSync(join(this.stateDir, 'jobs', 'poweroff'), '');
        const deadline = Date.now() + 5000;
        while (existsSync(`/proc/${pid}`) && Date.now() < deadline) await sleep(50);
      }
      // UML's helper processes (one per guest address space) share its process group
      for (const sig of ['SIGTERM', 'SIGKILL'] as const) {
        try {
          process.kill(-pid, sig);
        } catch {
          /* gone */
        }
        const deadline = Date.now() + 2000;
        while (existsSync(`/proc/${pid}`) && Date.now() < deadline) await sleep(50);
      }
    }
    await run('ip', ['-n', this.options.netns, 'link', 'del', this.tap]);
    rmSync(this.stateDir, { recursive: true, force: true });
  }
}

/**
 * tunsec's namespace (pair.a) and one UML guest (pair.b's addresses) on a
 * bridge in pair.b's namespace. Helpers started with `helper()` are recorded
 * and stopped by PID in `destroy()`.
 */
export class UmlLab {
  private readonly helpers = new Set<number>();
  guest?: UmlGuest;

  private constructor(readonly pair: NetnsPair) {}

  static readonly bridge = 'br0';

  static async create(label = 'uk', guest: Partial<GuestOptions> = {}): Promise<UmlLab> {
    requireUml();
    const lab = new UmlLab(await NetnsPair.create(label));
    try {
      const ns = lab.pair.b.ns;
      const port = lab.pair.b.ifname;
      await must('ip', ['-n', ns, 'addr', 'flush', 'dev', port]);
      await must('ip', ['-n', ns, 'link', 'add', UmlLab.bridge, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
      // the bridge namespace is plumbing only: no IPv6 of its own (no RS/MLD in captures)
      for (const dev of [UmlLab.bridge, port]) await run('ip', ['netns', 'exec', ns, 'sysctl', '-qw', `net.ipv6.conf.${dev}.disable_ipv6=1`]);
      await must('ip', ['-n', ns, 'link', 'set', port, 'master', UmlLab.bridge]);
      await must('ip', ['-n', ns, 'link', 'set', UmlLab.bridge, 'up']);
      // tunsec sends ESP-in-UDP batches as UDP_SEGMENT super-packets. A veth passes them on
      // unsegmented, so a capture on the bridge would see one frame holding several ESP packets
      // (tshark cannot split those). With USO off on tunsec's veth the kernel segments before
      // the veth, as a NIC does before the wire: the capture sees the packets the guest receives.
      await must('ip', ['netns', 'exec', lab.pair.a.ns, 'ethtool', '-K', lab.pair.a.ifname, 'tx-udp-segmentation', 'off']);
      lab.guest = await UmlGuest.boot({
        netns: ns,
        bridge: UmlLab.bridge,
        ip4: `${lab.pair.b.ip4}/24`,
        ip6: `${lab.pair.b.ip6}/64`,
        mac: '52:54:00:75:6d:02',
        ...guest,
      });
    } catch (err) {
      await lab.destroy();
      throw err;
    }
    return lab;
  }

  get uml(): UmlGuest {
    if (!this.guest) throw new Error('no guest');
    return this.guest;
  }

  /** Start a helper process in tunsec's namespace; its PID is recorded and stopped in destroy(). */
  helper(cmd: string, args: string[]): { pid: number; output: () => string; stdout: () => string; exited: Promise<number | null>; stop: () => Promise<void> } {
    const child = spawn('ip', ['netns', 'exec', this.pair.a.ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let stdout = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      stdout += d.toString();
    });
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const pid = child.pid!;
    this.helpers.add(pid);
    const exited = new Promise<number | null>((resolve) =>
      child.on('close', (code) => {
        this.helpers.delete(pid);
        resolve(code);
      }),
    );
    return {
      pid,
      output: () => out,
      stdout: () => stdout,
      exited,
      stop: async () => {
        this.helpers.delete(pid);
        await stopPid(pid, 3000);
      },
    };
  }

  /** Static neighbour entries both ways (IPv6 transport policies in the guest swallow cleartext ND). */
  async staticNeighbours(): Promise<void> {
    const { a, b } = this.pair;
    const macA = (await must('ip', ['-n', a.ns, '-j', 'link', 'show', a.ifname])).match(/"address":"([0-9a-f:]{17})"/)?.[1];
    const macB = this.uml.options.mac!;
    if (!macA) throw new Error('no MAC for tunsec side');
    await must('ip', ['-n', a.ns, '-6', 'neigh', 'replace', b.ip6, 'lladdr', macB, 'dev', a.ifname, 'nud', 'permanent']);
    await this.uml.must(`ip -6 neigh replace ${a.ip6} lladdr ${macA} dev vec0 nud permanent`);
  }

  /** Halt the guest, stop recorded helpers, delete both namespaces. Safe after partial failure; returns leftovers. */
  async destroy(): Promise<string[]> {
    for (const pid of this.helpers) await stopPid(pid, 3000);
    this.helpers.clear();
    await this.guest?.halt();
    return this.pair.destroy();
  }
}

export interface GuestChild {
  name: string;
  mode: 'transport' | 'tunnel';
  espProposals: string;
  localTs: string;
  remoteTs: string;
  startAction?: 'none' | 'trap' | 'start';
  /** swanctl durations (e.g. `8s`): CHILD_SA rekeying, hard expiry, and the random part subtracted from rekey_time. */
  rekeyTime?: string;
  lifeTime?: string;
  randTime?: string;
  extra?: string[];
}

export interface GuestConnection {
  name: string;
  local: string;
  remote: string;
  proposals: string;
  localId: string;
  remoteId: string;
  encap?: boolean;
  /** swanctl durations (e.g. `20s`): IKE_SA rekeying, the margin before an unreplaced IKE_SA is closed, the random part subtracted from rekey_time. */
  rekeyTime?: string;
  overTime?: string;
  randTime?: string;
  extra?: string[];
  children: GuestChild[];
}

/** One IKE_SA with its CHILD_SAs as `swanctl --list-sas` prints them. */
export interface SwanctlIkeSa {
  name: string;
  uniqueId: number;
  state: string;
  /** Initiator and responder SPI (16 hex digits each). */
  spiI: string;
  spiR: string;
  /** Whether the local side is the IKE_SA's (original) initiator: the `*` after its SPI. */
  localIsInitiator: boolean;
  children: Array<{ name: string; uniqueId: number; reqid: number; state: string; mode: string; proposal: string; spiIn: string; spiOut: string }>;
}

/** Parse the text of `swanctl --list-sas` (strongSwan 5.9). */
export function parseSwanctlSas(text: string): SwanctlIkeSa[] {
  const out: SwanctlIkeSa[] = [];
  let ike: SwanctlIkeSa | undefined;
  let child: SwanctlIkeSa['children'][number] | undefined;
  for (const line of text.split('\n')) {
    const i = /^(\S+): #(\d+), (\w+), IKEv2, ([0-9a-f]{16})_i(\*?) ([0-9a-f]{16})_r/.exec(line);
    if (i) {
      ike = { name: i[1]!, uniqueId: Number(i[2]), state: i[3]!, spiI: i[4]!, spiR: i[6]!, localIsInitiator: i[5] === '*', children: [] };
      out.push(ike);
      child = undefined;
      continue;
    }
    const c = /^\s+(\S+): #(\d+), reqid (\d+), (\w+), (\w+), (\S+)/.exec(line);
    if (c && ike) {
      child = { name: c[1]!, uniqueId: Number(c[2]), reqid: Number(c[3]), state: c[4]!, mode: c[5]!, proposal: c[6]!, spiIn: '', spiOut: '' };
      ike.children.push(child);
      continue;
    }
    const spi = /^\s+(in|out)\s+([0-9a-f]{8})/.exec(line);
    if (spi && child) child[spi[1] === 'in' ? 'spiIn' : 'spiOut'] = spi[2]!;
  }
  return out;
}

/**
 * strongSwan 5.9.8's charon inside a guest with the kernel-netlink datapath
 * (real XFRM SAs and policies). Config under the guest's state dir (ss/), vici
 * and pid file on the guest's own /run.
 */
export class GuestStrongSwan {
  constructor(
    readonly guest: UmlGuest,
    private readonly o: { caPem: string; certPem: string; keyPem: string; connections: GuestConnection[]; logLevels?: Record<string, number> },
  ) {}

  private readonly env = 'export STRONGSWAN_CONF=/mnt/state/ss/strongswan.conf SWANCTL_DIR=/mnt/state/ss/swanctl';

  private writeConfig(): void {
    const d = this.guest.hostPath('ss');
    rmSync(d, { recursive: true, force: true });
    for (const sub of [
      'x509',
      'x509ca',
      'x509ocsp',
      'x509aa',
      'x509ac',
      'x509crl',
      'pubkey',
      'rsa',
      'ecdsa',
      'bliss',
      'pkcs8',
      'pkcs12',
      'private',
      'conf.d',
    ].map((s) => `swanctl/${s}`))
      mkdirSync(join(d, sub), { recursive: true });
    const lv = { ike: 2, chd: 2, knl: 2, cfg: 1, ...this.o.logLevels };
    writeFileSync(
      join(d, 'strongswan.conf'),
      [
        'charon {',
        '    load_modular = no',
        '    load = random nonce openssl aes gcm sha1 sha2 hmac kdf pem pkcs1 pkcs8 x509 revocation constraints pubkey kernel-netlink socket-default vici',
        '    install_routes = no',
        '    filelog {',
        '        guest {',
        '            path = /mnt/state/ss/charon.log',
        '            time_format = %H:%M:%S',
        '            ike_name = yes',
        '            append = no',
        '            flush_line = yes',
        '            default = 1',
        ...Object.entries(lv).map(([k, v]) => `            ${k} = ${v}`),
        '        }',
        '    }',
        '    syslog {',
        '        daemon {',
        '            default = -1',
        '        }',
        '    }',
        '}',
        'swanctl {',
        '    load = pem pkcs1 pkcs8 x509 revocation constraints pubkey openssl random',
        '}',
        '',
      ].join('\n'),
    );
    writeFileSync(join(d, 'swanctl/x509ca/ca.pem'), this.o.caPem);
    writeFileSync(join(d, 'swanctl/x509/cert.pem'), this.o.certPem);
    writeFileSync(join(d, 'swanctl/private/key.pem'), this.o.keyPem, { mode: 0o600 });
    const conns = this.o.connections.map((c) =>
      [
        `    ${c.name} {`,
        '        version = 2',
        `        local_addrs = ${c.local}`,
        `        remote_addrs = ${c.remote}`,
        `        proposals = ${c.proposals}`,
        ...(c.encap !== undefined ? [`        encap = ${c.encap ? 'yes' : 'no'}`] : []),
        ...(c.rekeyTime !== undefined ? [`        rekey_time = ${c.rekeyTime}`] : []),
        ...(c.overTime !== undefined ? [`        over_time = ${c.overTime}`] : []),
        ...(c.randTime !== undefined ? [`        rand_time = ${c.randTime}`] : []),
        ...(c.extra ?? []).map((l) => `        ${l}`),
        '        local {',
        '            auth = pubkey',
        '            certs = cert.pem',
        `            id = ${c.localId}`,
        '        }',
        '        remote {',
        '            auth = pubkey',
        `            id = ${c.remoteId}`,
        '        }',
        '        children {',
        ...c.children.flatMap((ch) => [
          `            ${ch.name} {`,
          `                mode = ${ch.mode}`,
          `                esp_proposals = ${ch.espProposals}`,
          `                local_ts = ${ch.localTs}`,
          `                remote_ts = ${ch.remoteTs}`,
          `                start_action = ${ch.startAction ?? 'none'}`,
          ...(ch.rekeyTime !== undefined ? [`                rekey_time = ${ch.rekeyTime}`] : []),
          ...(ch.lifeTime !== undefined ? [`                life_time = ${ch.lifeTime}`] : []),
          ...(ch.randTime !== undefined ? [`                rand_time = ${ch.randTime}`] : []),
          ...(ch.extra ?? []).map((l) => `                ${l}`),
          '            }',
        ]),
        '        }',
        '    }',
      ].join('\n'),
    );
    writeFileSync(join(d, 'swanctl/swanctl.conf'), `connections {\n${conns.join('\n')}\n}\n`);
  }

  /** (Re)start charon in the guest with a clean XFRM SAD/SPD and load the configuration. */
  async start(): Promise<void> {
    await this.stop();
    this.writeConfig();
    const r = await this.guest.exec(
      [
        this.env,
        'ip xfrm policy flush; ip xfrm state flush',
        `setsid ${GUEST_CHARON} > /mnt/state/ss/charon.stdout 2>&1 < /dev/null &`,
        'i=0; while [ ! -S /run/charon.vici ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done',
        'swanctl --load-all --noprompt',
      ].join('\n'),
      30_000,
    );
    if (r.code !== 0) throw new Error(`charon in the guest did not start: ${r.stdout}${r.stderr}\n${this.log().slice(-3000)}`);
  }

  /** Stop charon (waits for the old process, removes the stale vici socket) and flush the kernel's SAs and policies. */
  async stop(): Promise<void> {
    await this.guest.exec(
      [
        'if [ -f /run/charon.pid ]; then p=$(cat /run/charon.pid); kill $p 2>/dev/null',
        '  i=0; while kill -0 $p 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; kill -9 $p 2>/dev/null; fi',
        'rm -f /run/charon.vici /run/charon.pid',
        'ip xfrm policy flush; ip xfrm state flush',
      ].join('\n'),
      15_000,
    );
  }

  swanctl(args: string, timeoutMs = 30_000): Promise<RunResult> {
    return this.guest.exec(`${this.env}\nswanctl ${args}`, timeoutMs);
  }

  /** `swanctl --list-sas`, parsed. */
  async listSas(): Promise<SwanctlIkeSa[]> {
    const r = await this.swanctl('--list-sas');
    if (r.code !== 0) throw new Error(`swanctl --list-sas in the guest: exit ${r.code}: ${r.stdout}${r.stderr}`);
    return parseSwanctlSas(r.stdout);
  }

  initiate(child: string, timeoutS = 20): Promise<RunResult> {
    return this.swanctl(`--initiate --child ${child} --timeout ${timeoutS}`, (timeoutS + 10) * 1000);
  }

  log(): string {
    try {
      return readFileSync(this.guest.hostPath('ss/charon.log'), 'utf8');
    } catch {
      return '';
    }
  }
}

/** Kernel SAs as `ip xfrm state` prints them, reduced to what tests compare. */
export interface XfrmState {
  src: string;
  dst: string;
  spi: string;
  mode: string;
  aead?: string;
  icvBits?: number;
  encap: boolean;
  /** From `ip -s xfrm state` only. */
  bytes?: number;
  packets?: number;
}

/** Parse `ip [-s] xfrm state` output (ESP SAs only). */
export function parseXfrmState(text: string): XfrmState[] {
  const out: XfrmState[] = [];
  for (const block of text.split(/^(?=src )/m)) {
    const head = block.match(/^src (\S+) dst (\S+)\s+proto esp spi 0x([0-9a-f]+)[^\n]*mode (\w+)/m);
    if (!head) continue;
    const aead = block.match(/aead (\S+) \S+ (\d+)/);
    const current = block.match(/lifetime current:\s+(\d+)\(bytes\), (\d+)\(packets\)/);
    out.push({
      src: head[1]!,
      dst: head[2]!,
      spi: head[3]!.padStart(8, '0'),
      mode: head[4]!,
      ...(aead ? { aead: aead[1]!, icvBits: Number(aead[2]) } : {}),
      encap: /\bencap type espinudp/.test(block),
      ...(current ? { bytes: Number(current[1]), packets: Number(current[2]) } : {}),
    });
  }
  return out;
}
