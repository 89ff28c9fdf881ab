/**
 * The kernel rows of `npm run bench` that run on any host: Linux 6.1's own ESP
 * (XFRM) inside User-Mode Linux guests (test/support/uml.ts). The host kernel
 * here has no ESP and no GCM, so the native `kernel-xfrm` row is unavailable;
 * these rows measure the real kernel datapath — but under UML, with the
 * kernel's generic C AES-GCM (no AES-NI in a UML kernel), so they are labelled
 * everywhere as UML_LABEL and are never the native kernel's speed.
 *
 *   uml-plain           guest A ↔ guest B on a bridge, no IPsec: the UML ceiling
 *   uml-kernel-xfrm     guest A ↔ guest B, kernel ESP transport, rfc4106(gcm(aes)) 128-bit ICV, static SAs (ip xfrm)
 *   tunsec-uml-kernel   tunsec daemon in its namespace (manual SAs, transport, raw ESP) ↔ kernel ESP in a guest (ip xfrm)
 *
 * The two guest↔guest rows share one pair of guests: before each run the
 * guests' SAD/SPD is flushed (plain) or set up with fresh random keys (xfrm).
 * Measured: iperf3 TCP 1 stream, sender A → receiver B (tunsec → kernel for
 * tunsec-uml-kernel), and the host CPU time of each side over the run:
 * a guest's side = the whole UML process group (its kernel — TCP/IP and ESP —
 * plus the guest's iperf3: a guest is one set of host processes); tunsec's side
 * = the tunsec daemon alone (its host kernel's TCP and the iperf3 client are
 * not in it). Each run is checked: the receiver's inbound ESP SA counted at
 * least the bytes iperf3 delivered (xfrm rows), no XFRM SAs at all (plain), and
 * /proc/net/xfrm_stat in the guests all zero.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { must, pidFromFile, run, stopPid } from '../test/support/proc.js';
import { UmlGuest, UmlLab, parseXfrmState, requireUml } from '../test/support/uml.js';
import { TunsecDaemon } from '../test/interop/tunsec-daemon.js';
import type { Cleanups } from './throughput/cleanup.js';
import { cpuSeconds, checkPath, installWireCounters, parseIperf } from './throughput/measure.js';
import { row, fmt, type CaseStatus, type ResultRow, type RatioSpec, type Metric } from './throughput/results.js';

/** How every UML row is labelled (JSON, tables, docs). */
export const UML_LABEL = 'Linux 6.1 XFRM under User-Mode Linux (generic C AES-GCM, no AES-NI)';
export const UML_CASE_IDS = ['uml-plain', 'uml-kernel-xfrm', 'tunsec-uml-kernel'] as const;
export type UmlCaseId = (typeof UML_CASE_IDS)[number];
/** The metrics of a UML row. */
export const UML_METRICS: Metric[] = ['tcp1_mbps', 'cpu_s_per_gb', 'cpu_a_s_per_gb', 'cpu_b_s_per_gb'];

const AEAD = 'rfc4106(gcm(aes))';
const REPLAY_WINDOW = 128;
const hex8 = (n: number): string => n.toString(16).padStart(8, '0');

/** One TCP run of a UML case. */
export interface UmlRun {
  ok: boolean;
  error?: string;
  recvMbps?: number;
  recvBytes?: number;
  retransmits?: number;
  /** Host CPU seconds over the run: side A (sender), side B (receiver). */
  cpuSecA?: number;
  cpuSecB?: number;
  /** What the per-run check saw (SA byte counters, xfrm_stat). */
  check?: string;
}

/** A successful run: iperf3's figures, each side's CPU seconds between its two readings (when both exist), the check. */
function okRun(
  p: { recvMbps?: number; recvBytes?: number; retransmits?: number },
  cpuA: [number | undefined, number | undefined],
  cpuB: [number | undefined, number | undefined],
  check: string,
): UmlRun {
  const spent = ([before, after]: [number | undefined, number | undefined]): number | undefined =>
    before !== undefined && after !== undefined ? after - before : undefined;
  const a = spent(cpuA);
  const b = spent(cpuB);
  return {
    ok: true,
    ...(p.recvMbps !== undefined ? { recvMbps: p.recvMbps } : {}),
    ...(p.recvBytes !== undefined ? { recvBytes: p.recvBytes } : {}),
    ...(p.retransmits !== undefined ? { retransmits: p.retransmits } : {}),
    ...(a !== undefined ? { cpuSecA: a } : {}),
    ...(b !== undefined ? { cpuSecB: b } : {}),
    check,
  };
}

export interface UmlCaseResult {
  id: UmlCaseId;
  title: string;
  description: string;
  /** Who side A / side B are, for the CPU columns. */
  sides: { a: string; b: string };
  status: 'ok' | 'failed';
  reason?: string;
  setup_sec?: number;
  details?: Record<string, unknown>;
  runs: UmlRun[];
  warnings: string[];
}

// ---------------------------------------------------------------- host CPU of a guest

/** utime+stime of every process in the guest's process group (the UML kernel and its userspace helpers), plus the reaped children of its main process, in seconds. */
export function guestCpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  const hz = 100; // USER_HZ on Linux x86 (getconf CLK_TCK); measure.ts's cpuSeconds asks getconf
  let ticks = 0;
  let found = false;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // after "(comm)": state=3, ppid=4, pgrp=5, …, utime=14, stime=15, cutime=16, cstime=17
    if (Number(f[5 - 3]) !== pid) continue;
    found = true;
    ticks += Number(f[14 - 3]) + Number(f[15 - 3]);
    if (Number(entry) === pid) ticks += Number(f[16 - 3]) + Number(f[17 - 3]);
  }
  return found ? ticks / hz : undefined;
}

// ---------------------------------------------------------------- guests

/** Two guests on a bridge in a namespace of their own (no host side): A 10.99.0.1, B 10.99.0.2. */
class GuestPair {
  readonly ns = `tpu${process.pid}`;
  readonly ipA = '10.99.0.1';
  readonly ipB = '10.99.0.2';
  a?: UmlGuest;
  b?: UmlGuest;
  private up?: Promise<void>;
  private users = 0;

  acquire(): Promise<void> {
    this.users++;
    this.up ??= this.boot();
    return this.up;
  }

  private async boot(): Promise<void> {
    await must('ip', ['netns', 'add', this.ns]);
    await must('ip', ['-n', this.ns, 'link', 'add', 'br0', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
    await run('ip', ['netns', 'exec', this.ns, 'sysctl', '-qw', 'net.ipv6.conf.br0.disable_ipv6=1']);
    await must('ip', ['-n', this.ns, 'link', 'set', 'br0', 'up']);
    this.a = await UmlGuest.boot({ netns: this.ns, bridge: 'br0', ip4: `${this.ipA}/24`, mac: '52:54:00:75:6d:11' });
    this.b = await UmlGuest.boot({ netns: this.ns, bridge: 'br0', ip4: `${this.ipB}/24`, mac: '52:54:00:75:6d:12' });
  }

  /** Halt both guests and delete the namespace once the last user is gone (or at once with force). */
  async release(force = false): Promise<void> {
    this.users = Math.max(0, this.users - 1);
    if (this.users > 0 && !force) return;
    await this.up?.catch(() => undefined);
    await this.a?.halt();
    await this.b?.halt();
    this.a = this.b = undefined;
    this.up = undefined;
    await run('ip', ['netns', 'del', this.ns]);
  }
}

/** The kernel's half of a transport-mode SA pair between `local` and `remote` (the other side gets the mirror image). */
function xfrmScript(local: string, remote: string, spiOut: number, spiIn: number, keyOut: string, keyIn: string): string {
  const state = (src: string, dst: string, spi: number, key: string): string =>
    `ip xfrm state add src ${src} dst ${dst} proto esp spi 0x${hex8(spi)} reqid 1 mode transport replay-window ${REPLAY_WINDOW} aead '${AEAD}' 0x${key} 128`;
  return [
    'ip xfrm policy flush; ip xfrm state flush',
    'set -e',
    state(local, remote, spiOut, keyOut),
    state(remote, local, spiIn, keyIn),
    `ip xfrm policy add src ${local}/32 dst ${remote}/32 dir out tmpl src ${local} dst ${remote} proto esp reqid 1 mode transport`,
    `ip xfrm policy add src ${remote}/32 dst ${local}/32 dir in tmpl src ${remote} dst ${local} proto esp reqid 1 mode transport`,
  ].join('\n');
}

const xfrmStatErrors = async (g: UmlGuest): Promise<string[]> =>
  (await g.must('cat /proc/net/xfrm_stat'))
    .split('\n')
    .filter((l) => /\s[1-9]\d*\s*$/.test(l))
    .map((l) => l.trim());

const guestServer = (g: UmlGuest): Promise<void> => g.startIperf3Server(5201);
const stopGuestServer = (g: UmlGuest): Promise<string> => g.stopIperf3Server(5201);

/** The JSON part of what a guest printed (stdout and stderr arrive together). */
const jsonOf = (text: string): string => {
  const s = text.indexOf('{');
  const e = text.lastIndexOf('}');
  return s >= 0 && e > s ? text.slice(s, e + 1) : text;
};

// ---------------------------------------------------------------- cases

export interface UmlCase {
  readonly id: UmlCaseId;
  readonly title: string;
  readonly description: string;
  readonly sides: { a: string; b: string };
  setup(log: (line: string) => void): Promise<Record<string, unknown>>;
  /** One iperf3 TCP 1-stream run of `sec` seconds with CPU sampling and the path check. */
  tcp1(sec: number, record: boolean): Promise<UmlRun>;
  teardown(): Promise<string[]>;
}

/** uml-plain and uml-kernel-xfrm: guest A (iperf3 client) → guest B (server). */
class GuestToGuest implements UmlCase {
  readonly sides = { a: 'guest A (UML: kernel + iperf3 client)', b: 'guest B (UML: kernel + iperf3 server)' };
  readonly title: string;
  readonly description: string;
  private spi = 0x2000;
  constructor(
    readonly id: 'uml-plain' | 'uml-kernel-xfrm',
    private readonly guests: GuestPair,
  ) {
    this.title = id === 'uml-plain' ? `UML ↔ UML, no IPsec — ${UML_LABEL}` : `UML ↔ UML, kernel ESP transport AES-128-GCM-16 — ${UML_LABEL}`;
    this.description =
      id === 'uml-plain'
        ? 'two User-Mode Linux 6.1 guests on a bridge, iperf3 between them, no IPsec: the ceiling of the UML rows'
        : `two User-Mode Linux 6.1 guests, Linux ESP (XFRM) in transport mode, ${AEAD} 128-bit ICV, replay window ${REPLAY_WINDOW}, static SAs and policies through ip xfrm (fresh random keys per run), no IKE daemon`;
  }

  async setup(): Promise<Record<string, unknown>> {
    await this.guests.acquire();
    await this.prepare();
    return {
      guests: 2,
      boot_ms: [this.guests.a!.bootMs, this.guests.b!.bootMs],
      ...(this.id === 'uml-kernel-xfrm' ? { aead: AEAD, icv_bits: 128, mode: 'transport', replay_window: REPLAY_WINDOW } : {}),
    };
  }

  /** Plain: no SAs, no policies. XFRM: a fresh SA pair and policies on both guests. */
  private async prepare(): Promise<{ spiAB?: number }> {
    const { a, b, ipA, ipB } = { a: this.guests.a!, b: this.guests.b!, ipA: this.guests.ipA, ipB: this.guests.ipB };
    if (this.id === 'uml-plain') {
      for (const g of [a, b]) await g.must('ip xfrm policy flush; ip xfrm state flush');
      return {};
    }
    const spiAB = this.spi++;
    const spiBA = this.spi++;
    const kAB = randomBytes(20).toString('hex');
    const kBA = randomBytes(20).toString('hex');
    await a.must(xfrmScript(ipA, ipB, spiAB, spiBA, kAB, kBA));
    await b.must(xfrmScript(ipB, ipA, spiBA, spiAB, kBA, kAB));
    return { spiAB };
  }

  async tcp1(sec: number): Promise<UmlRun> {
    const { a, b } = { a: this.guests.a!, b: this.guests.b! };
    try {
      const { spiAB } = await this.prepare();
      await guestServer(b);
      const [ca, cb] = [guestCpuSeconds(a.processId), guestCpuSeconds(b.processId)];
      const r = await a.exec(`iperf3 -c ${this.guests.ipB} -p 5201 -t ${sec} -J --connect-timeout 5000`, (sec + 25) * 1000);
      const [ca2, cb2] = [guestCpuSeconds(a.processId), guestCpuSeconds(b.processId)];
      await stopGuestServer(b);
      const p = parseIperf(jsonOf(r.stdout), false);
      if (!p.ok) return { ok: false, error: `${p.error ?? 'iperf3 failed'} (exit ${r.code})` };
      // the path: plain has no SA anywhere; xfrm carried at least what iperf3 delivered, through B's inbound SA
      const statesB = parseXfrmState(await b.must('ip -s xfrm state'));
      const errors = [...(await xfrmStatErrors(a)), ...(await xfrmStatErrors(b))];
      let check: string;
      if (this.id === 'uml-plain') {
        const statesA = parseXfrmState(await a.must('ip xfrm state'));
        if (statesA.length + statesB.length) return { ok: false, error: `plain run with XFRM SAs present: ${JSON.stringify([...statesA, ...statesB])}` };
        check = 'no XFRM SAs on either guest';
      } else {
        const inbound = statesB.find((s) => s.spi === hex8(spiAB!));
        if (!inbound?.bytes || inbound.bytes < (p.recvBytes ?? 0))
          return {
            ok: false,
            error: `guest B's inbound SA ${hex8(spiAB!)} counted ${inbound?.bytes ?? 'no'} bytes, iperf3 delivered ${p.recvBytes}: not through ESP`,
          };
        check = `B's inbound ESP SA: ${inbound.packets} packets, ${inbound.bytes} bytes ≥ ${p.recvBytes} delivered`;
      }
      if (errors.length) return { ok: false, error: `/proc/net/xfrm_stat errors: ${errors.join(', ')}` };
      return okRun(p, [ca, ca2], [cb, cb2], check);
    } catch (err) {
      return { ok: false, error: (err as Error).message.slice(0, 500) };
    }
  }

  async teardown(): Promise<string[]> {
    await this.guests.release();
    return [];
  }
}

/** tunsec-uml-kernel: tunsec daemon (manual SAs) in its namespace → kernel ESP in one guest. */
class TunsecToGuest implements UmlCase {
  readonly id = 'tunsec-uml-kernel' as const;
  readonly title = `tunsec (userspace) ↔ kernel ESP in UML, transport AES-128-GCM-16 — ${UML_LABEL}`;
  readonly description = `tunsec daemon in a network namespace (manual SAs from its configuration: transport, raw ESP, aes128gcm16, replay window ${REPLAY_WINDOW}) ↔ Linux ESP (XFRM) in a User-Mode Linux 6.1 guest with the mirror-image SAs and policies through ip xfrm; no IKE`;
  readonly sides = { a: 'tunsec daemon (sender side; not its iperf3 client nor the host kernel)', b: 'guest (UML: kernel ESP + iperf3 server)' };
  private lab?: UmlLab;
  private tunsec?: TunsecDaemon;
  private readonly spiAB = 0x3001;
  private readonly spiBA = 0x3002;

  async setup(): Promise<Record<string, unknown>> {
    this.lab = await UmlLab.create('tpk');
    const { a, b } = this.lab.pair;
    const kAB = randomBytes(20).toString('hex');
    const kBA = randomBytes(20).toString('hex');
    await this.lab.uml.must(xfrmScript(b.ip4, a.ip4, this.spiBA, this.spiAB, kBA, kAB));
    const yaml = [
      'daemon:',
      '  pid_file: ${DIR}/tunsec.pid',
      '  control_socket: ${DIR}/tunsec.sock',
      '  log: { default: 0 }',
      'connections: {}',
      'manual:',
      '  sas:',
      '    bench:',
      `      local_addr: "${a.ip4}"`,
      `      remote_addr: "${b.ip4}"`,
      `      spi_in: "0x${hex8(this.spiBA)}"`,
      `      spi_out: "0x${hex8(this.spiAB)}"`,
      '      mode: transport',
      '      encap: "no"',
      '      esp_proposal: aes128gcm16',
      `      key_in: "0x${kBA}"`,
      `      key_out: "0x${kAB}"`,
      `      replay_window: ${REPLAY_WINDOW}`,
      '',
    ].join('\n');
    this.tunsec = new TunsecDaemon(a.ns, yaml);
    await this.tunsec.start();
    await this.tunsec.event('daemon_started', 30_000);
    const path = { clientNs: a.ns, serverNs: b.ns, target: b.ip4, wire: a.ifname };
    await installWireCounters(path);
    const check = await checkPath(path, 'esp');
    if (check.problem) throw new Error(`path check: ${check.problem}; tunsec: ${this.tunsec.text().slice(-1500)}`);
    return {
      boot_ms: this.lab.uml.bootMs,
      aead: AEAD,
      icv_bits: 128,
      mode: 'transport',
      keys: 'manual (random per run)',
      spi_tunsec_to_kernel: hex8(this.spiAB),
      spi_kernel_to_tunsec: hex8(this.spiBA),
      path_check: { route: check.route, ping: `${check.ping.received}/${check.ping.transmitted}`, counters: check.counters },
    };
  }

  async tcp1(sec: number): Promise<UmlRun> {
    const lab = this.lab!;
    const { a, b } = lab.pair;
    const pid = pidFromFile(join(this.tunsec!.dir, 'tunsec.pid'));
    try {
      const before = parseXfrmState(await lab.uml.must('ip -s xfrm state')).find((s) => s.spi === hex8(this.spiAB));
      await guestServer(lab.uml);
      const [ca, cb] = [await cpuSeconds(pid), guestCpuSeconds(lab.uml.processId)];
      const r = await run('ip', ['netns', 'exec', a.ns, 'iperf3', '-c', b.ip4, '-p', '5201', '-t', String(sec), '-J', '--connect-timeout', '5000'], {
        timeoutMs: (sec + 25) * 1000,
      });
      const [ca2, cb2] = [await cpuSeconds(pid), guestCpuSeconds(lab.uml.processId)];
      await stopGuestServer(lab.uml);
      const p = parseIperf(r.stdout, false);
      if (!p.ok) return { ok: false, error: `${p.error ?? 'iperf3 failed'} (exit ${r.code}: ${r.stderr.slice(0, 200)})` };
      const after = parseXfrmState(await lab.uml.must('ip -s xfrm state')).find((s) => s.spi === hex8(this.spiAB));
      const bytes = (after?.bytes ?? 0) - (before?.bytes ?? 0);
      if (bytes < (p.recvBytes ?? 0))
        return { ok: false, error: `the guest's inbound SA counted ${bytes} bytes during the run, iperf3 delivered ${p.recvBytes}: not through ESP` };
      const errors = await xfrmStatErrors(lab.uml);
      if (errors.length) return { ok: false, error: `/proc/net/xfrm_stat errors: ${errors.join(', ')}` };
      return okRun(
        p,
        [ca, ca2],
        [cb, cb2],
        `the guest's inbound ESP SA: +${(after?.packets ?? 0) - (before?.packets ?? 0)} packets, +${bytes} bytes ≥ ${p.recvBytes} delivered`,
      );
    } catch (err) {
      return { ok: false, error: (err as Error).message.slice(0, 500) };
    }
  }

  async teardown(): Promise<string[]> {
    const warnings: string[] = [];
    const d = this.tunsec;
    this.tunsec = undefined;
    if (d) {
      const pid = pidFromFile(join(d.dir, 'tunsec.pid'));
      await d.stop();
      if (pid !== undefined && existsPid(pid, d.dir)) await stopPid(pid, 2000);
    }
    const lab = this.lab;
    this.lab = undefined;
    if (lab) for (const l of await lab.destroy()) warnings.push(`tunsec-uml-kernel: left in namespace: ${l}`);
    return warnings;
  }
}

function existsPid(pid: number, dir: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir);
  } catch {
    return false;
  }
}

/**
 * The UML cases whose ids `only` selects (all without a filter): an id, or a prefix that names UML
 * (`uml`, `tunsec-uml`) — `--only=tunsec` keeps meaning the native tunsec cases.
 */
export function umlCases(only: string[] | undefined): UmlCase[] {
  const guests = new GuestPair();
  const all: UmlCase[] = [new GuestToGuest('uml-plain', guests), new GuestToGuest('uml-kernel-xfrm', guests), new TunsecToGuest()];
  return only ? all.filter((c) => only.some((p) => c.id === p || (p.includes('uml') && c.id.startsWith(p)))) : all;
}

export const isUmlId = (id: string): boolean => (UML_CASE_IDS as readonly string[]).includes(id);

// ---------------------------------------------------------------- running

export interface UmlRunOptions {
  reps: number;
  durationSec: number;
  warmupSec: number;
  /** True when no new repetition should start (the bench's time budget). */
  outOfTime: () => boolean;
}

/**
 * Boot and set up every case, an unrecorded warm-up each, then `reps`
 * interleaved rounds (round r starts with case r), then tear down. A case
 * whose setup fails is recorded as failed with the reason.
 */
export async function runUmlCases(cases: UmlCase[], o: UmlRunOptions, cleanups: Cleanups, log: (line: string) => void): Promise<UmlCaseResult[]> {
  requireUml();
  const results: UmlCaseResult[] = [];
  const live: Array<{ c: UmlCase; res: UmlCaseResult; undo: () => Promise<void> }> = [];
  for (const c of cases) {
    cleanups.checkAborted();
    const res: UmlCaseResult = { id: c.id, title: c.title, description: c.description, sides: c.sides, status: 'ok', runs: [], warnings: [] };
    results.push(res);
    const undo = cleanups.add(`UML case ${c.id}`, async () => {
      res.warnings.push(...(await c.teardown()));
    });
    log(`[${c.id}] setting up: ${c.description}`);
    const t0 = performance.now();
    try {
      res.details = await c.setup(log);
      res.setup_sec = Math.round(performance.now() - t0) / 1000;
      log(`[${c.id}] up in ${res.setup_sec} s`);
      live.push({ c, res, undo });
    } catch (err) {
      res.status = 'failed';
      res.reason = `setup: ${(err as Error).message.slice(0, 1500)}`;
      log(`[${c.id}] failed: ${res.reason}`);
      await undo().catch((e: unknown) => res.warnings.push(`teardown: ${(e as Error).message}`));
    }
  }
  try {
    for (const l of live) {
      if (cleanups.aborted || o.warmupSec <= 0) break;
      const w = await l.c.tcp1(o.warmupSec, false);
      log(`[${l.c.id}] warm-up ${o.warmupSec} s: ${w.ok ? `${w.recvMbps} Mb/s` : `failed: ${w.error}`}`);
    }
    for (let rep = 1; rep <= o.reps && !cleanups.aborted && live.length; rep++) {
      if (rep > 1 && o.outOfTime()) {
        log(`time budget: no UML repetition ${rep}`);
        break;
      }
      const order = live.map((_, i) => live[(i + rep - 1) % live.length]!);
      log(`— UML repetition ${rep}/${o.reps}: ${order.map((l) => l.c.id).join(' → ')}`);
      for (const l of order) {
        cleanups.checkAborted();
        const r = await l.c.tcp1(o.durationSec, true);
        l.res.runs.push(r);
        const gb = (r.recvBytes ?? 0) / 1e9;
        log(
          `[${l.c.id}] rep ${rep}/${o.reps} TCP 1 stream: ${r.ok ? `${r.recvMbps} Mb/s (retr ${r.retransmits}); host CPU A ${r.cpuSecA?.toFixed(2)} s, B ${r.cpuSecB?.toFixed(2)} s = ${gb ? (((r.cpuSecA ?? 0) + (r.cpuSecB ?? 0)) / gb).toFixed(1) : '?'} s/GB; ${r.check}` : `failed: ${r.error}`}`,
        );
      }
    }
  } finally {
    for (const l of live) {
      if (!l.res.runs.some((r) => r.ok) && l.res.status === 'ok') {
        l.res.status = 'failed';
        l.res.reason = `every iperf3 run failed: ${l.res.runs[0]?.error ?? 'none ran'}`;
      }
      await l.undo().catch((e: unknown) => l.res.warnings.push(`teardown: ${(e as Error).message}`));
    }
  }
  return results;
}

// ---------------------------------------------------------------- results

/** The result rows of a UML case: tcp1_mbps and CPU s per GB (both sides, and each side). */
export function umlRows(r: UmlCaseResult): ResultRow[] {
  if (r.status !== 'ok') return UML_METRICS.map((m) => row(r.id, m, [], { failed: r.reason ?? 'failed' }));
  const ok = r.runs.filter((x) => x.ok && x.recvBytes);
  const perGb = (f: (x: UmlRun) => number | undefined): Array<number | undefined> =>
    ok.map((x) => (f(x) === undefined ? undefined : f(x)! / (x.recvBytes! / 1e9)));
  return [
    row(
      r.id,
      'tcp1_mbps',
      ok.map((x) => x.recvMbps),
    ),
    row(
      r.id,
      'cpu_s_per_gb',
      perGb((x) => (x.cpuSecA === undefined || x.cpuSecB === undefined ? undefined : x.cpuSecA + x.cpuSecB)),
    ),
    row(
      r.id,
      'cpu_a_s_per_gb',
      perGb((x) => x.cpuSecA),
    ),
    row(
      r.id,
      'cpu_b_s_per_gb',
      perGb((x) => x.cpuSecB),
    ),
  ];
}

export function umlCaseStatus(r: UmlCaseResult): CaseStatus {
  return { case: r.id, kind: 'uml', title: r.title, status: r.status, ...(r.reason ? { reason: r.reason.split('\n')[0]!.slice(0, 300) } : {}) };
}

/** Ratios among the UML rows (same run, interleaved). */
export function umlRatioSpecs(): RatioSpec[] {
  return [
    { metric: 'tcp1_mbps', numerator: 'tunsec-uml-kernel', denominator: 'uml-kernel-xfrm' },
    { metric: 'tcp1_mbps', numerator: 'uml-kernel-xfrm', denominator: 'uml-plain' },
    { metric: 'tcp1_mbps', numerator: 'tunsec-uml-kernel', denominator: 'uml-plain' },
  ];
}

/** The UML table of the results page. */
export function umlMarkdown(rows: ResultRow[], cases: CaseStatus[], results: UmlCaseResult[]): string {
  const ucases = cases.filter((c) => c.kind === 'uml');
  if (!ucases.length) return '';
  const get = (c: string, m: string): ResultRow | undefined => rows.find((r) => r.case === c && r.metric === m);
  const cell = (r: ResultRow | undefined): string =>
    !r ? '' : r.median === null ? 'failed' : r.samples.length > 1 ? `**${fmt(r.median)}** (${fmt(r.min)}–${fmt(r.max)})` : `**${fmt(r.median)}**`;
  const out = [
    `## Kernel rows: ${UML_LABEL}`,
    '',
    "Not the native kernel path (that is `kernel-xfrm`, unavailable on a host kernel without ESP/GCM): Linux 6.1 as User-Mode Linux guests, whose ESP uses the kernel's generic C AES-GCM. iperf3 TCP 1 stream, A → B. Host CPU s per GB received: A = sender side, B = receiver side; a guest's side is its whole UML process group (kernel TCP/IP + ESP + the guest's iperf3), tunsec's side is the tunsec daemon alone.",
    '',
    `| case | tcp1_mbps (Mbit/s) | cpu_s_per_gb, A + B (CPU s/GB) | cpu_a_s_per_gb (CPU s/GB) | cpu_b_s_per_gb (CPU s/GB) | A / B |`,
    '| --- | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const c of ucases) {
    const res = results.find((r) => r.id === c.case);
    const sides = res ? `${res.sides.a} / ${res.sides.b}` : '';
    if (c.status !== 'ok') out.push(`| ${c.case} | ${c.status}: ${(c.reason ?? '').replace(/\|/g, '\\|').slice(0, 300)} | | | | ${sides} |`);
    else out.push(`| ${c.case} | ${UML_METRICS.map((m) => cell(get(c.case, m))).join(' | ')} | ${sides} |`);
  }
  out.push('');
  return out.join('\n');
}
