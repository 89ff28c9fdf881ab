/**
 * The measuring instruments of the throughput bench: iperf3 (TCP, UDP; one
 * one-off server per run), ping, per-process CPU time from /proc, and nftables
 * counters on the client's veth that tell cleartext from ESP on the wire.
 * All commands run inside the bench's own namespaces.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { must, pidFromFile, run, stopPid, waitFor } from '../../test/support/proc.js';
import type { Cleanups } from './cleanup.js';

/** Where traffic goes: client namespace → target address in the server namespace. */
export interface TrafficPath {
  clientNs: string;
  serverNs: string;
  /** The address iperf3 and ping target (the server side's address). */
  target: string;
  /** The client namespace's veth: the wire the counters watch. */
  wire: string;
}

/** A process whose CPU time is worth recording (a daemon carrying the datapath). */
export interface WatchedProcess {
  label: string;
  pid: () => number | undefined;
}

// ---------------------------------------------------------------- CPU time

let clockTicks: number | undefined;
async function ticksPerSecond(): Promise<number> {
  if (clockTicks === undefined) {
    const r = await run('getconf', ['CLK_TCK']);
    const n = Number(r.stdout.trim());
    clockTicks = r.code === 0 && n > 0 ? n : 100;
  }
  return clockTicks;
}

/** utime + stime of all threads of `pid`, in seconds; undefined if the process is gone. */
export async function cpuSeconds(pid: number | undefined): Promise<number | undefined> {
  if (pid === undefined) return undefined;
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // Fields after "(comm)": state is field 3, utime 14, stime 15.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(rest[14 - 3]);
  const stime = Number(rest[15 - 3]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return undefined;
  return (utime + stime) / (await ticksPerSecond());
}

/** Resident set size of `pid` (VmRSS from /proc/<pid>/status), in MiB; undefined if the process is gone. */
export function rssMb(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const kb = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb === undefined ? undefined : Number(kb) / 1024;
  } catch {
    return undefined;
  }
}

/** CPU use of the watched processes while `body` runs, in % of one core (and in seconds, all of them together). */
export async function withCpu<T>(procs: WatchedProcess[], body: () => Promise<T>): Promise<{ result: T; cpuPct: Record<string, number>; cpuSec?: number }> {
  const pids = procs.map((p) => p.pid());
  const before = await Promise.all(pids.map((pid) => cpuSeconds(pid)));
  const t0 = performance.now();
  const result = await body();
  const wall = (performance.now() - t0) / 1000;
  const after = await Promise.all(pids.map((pid) => cpuSeconds(pid)));
  const cpuPct: Record<string, number> = {};
  let cpuSec: number | undefined = procs.length ? 0 : undefined;
  procs.forEach((p, i) => {
    const [b, a] = [before[i], after[i]];
    if (b !== undefined && a !== undefined && wall > 0) cpuPct[p.label] = Math.round(((a - b) / wall) * 1000) / 10;
    cpuSec = b !== undefined && a !== undefined && cpuSec !== undefined ? cpuSec + (a - b) : undefined;
  });
  return { result, cpuPct, ...(cpuSec !== undefined ? { cpuSec } : {}) };
}

// ---------------------------------------------------------------- UDP socket drops

/** The namespace's UDP receive-buffer overflows and input errors (/proc/net/snmp read inside it). */
export async function udpErrors(ns: string): Promise<{ RcvbufErrors: number; InErrors: number } | undefined> {
  const r = await run('ip', ['netns', 'exec', ns, 'cat', '/proc/net/snmp']);
  const [head, vals] = r.stdout.split('\n').filter((l) => l.startsWith('Udp:'));
  if (!head || !vals) return undefined;
  const h = head.trim().split(/\s+/);
  const v = vals.trim().split(/\s+/).map(Number);
  const get = (k: string): number => v[h.indexOf(k)] ?? NaN;
  return { RcvbufErrors: get('RcvbufErrors'), InErrors: get('InErrors') };
}

// ---------------------------------------------------------------- iperf3

export interface IperfOptions {
  durationSec: number;
  streams: number;
  /** UDP at this rate (iperf3 -b syntax, e.g. "100M"); TCP when absent. */
  udpRate?: string;
  /** UDP payload size: below every tunnel's MTU so nothing is fragmented. */
  udpLength?: number;
  port?: number;
}

export interface IperfRun {
  ok: boolean;
  error?: string;
  /** Goodput seen by the receiver / pushed by the sender, Mb/s. */
  recvMbps?: number;
  sendMbps?: number;
  retransmits?: number;
  udpLossPct?: number;
  udpJitterMs?: number;
  /** iperf3's own CPU figures (client = host, server = remote), % of one core. */
  iperfCpu?: { client: number; server: number };
  /** CPU of the watched daemons during the run, % of one core. */
  daemonCpuPct: Record<string, number>;
  /** CPU seconds (utime+stime) of all watched daemons together over the run; absent without daemons. */
  daemonCpuSec?: number;
  /** Payload octets the receiver got, and the test's length in seconds (receiver side). */
  recvBytes?: number;
  seconds?: number;
  /** UDP: datagrams that arrived (sent − lost) per second at the receiver. */
  udpRecvPps?: number;
  /**
   * UDP datagrams dropped for a full receive buffer during the run, per namespace (client A, server B):
   * ESP-in-UDP daemons that do not keep up show here (and so does iperf3's own UDP test socket).
   */
  udpRcvbufErrors?: { client: number; server: number };
  wallSec: number;
}

interface IperfSum {
  bits_per_second?: number;
  bytes?: number;
  seconds?: number;
  packets?: number;
  lost_packets?: number;
  retransmits?: number;
  lost_percent?: number;
  jitter_ms?: number;
}
interface IperfJson {
  error?: string;
  end?: {
    sum?: IperfSum;
    sum_sent?: IperfSum;
    sum_received?: IperfSum;
    cpu_utilization_percent?: { host_total?: number; remote_total?: number };
  };
}

const mbps = (bps: number | undefined): number | undefined => (bps === undefined ? undefined : Math.round(bps / 1e4) / 100);

/** Parse `iperf3 -J` output (client side) into the numbers the bench reports. */
export function parseIperf(json: string, udp: boolean): Omit<IperfRun, 'daemonCpuPct' | 'wallSec'> {
  let j: IperfJson;
  try {
    j = JSON.parse(json) as IperfJson;
  } catch {
    return { ok: false, error: `iperf3 printed no JSON: ${json.trim().slice(0, 200) || '(nothing)'}` };
  }
  if (j.error) return { ok: false, error: `iperf3: ${j.error}` };
  const end = j.end;
  if (!end?.sum_received || !end.sum_sent) return { ok: false, error: 'iperf3 JSON has no end.sum_sent/sum_received' };
  const cpu = end.cpu_utilization_percent;
  const out: Omit<IperfRun, 'daemonCpuPct' | 'wallSec'> = {
    ok: true,
    recvMbps: mbps(end.sum_received.bits_per_second),
    sendMbps: mbps(end.sum_sent.bits_per_second),
    ...(end.sum_received.bytes !== undefined ? { recvBytes: end.sum_received.bytes } : {}),
    ...(end.sum_received.seconds !== undefined ? { seconds: end.sum_received.seconds } : {}),
    ...(cpu?.host_total !== undefined && cpu.remote_total !== undefined
      ? { iperfCpu: { client: Math.round(cpu.host_total * 10) / 10, server: Math.round(cpu.remote_total * 10) / 10 } }
      : {}),
  };
  if (udp) {
    out.udpLossPct = end.sum_received.lost_percent ?? end.sum?.lost_percent;
    out.udpJitterMs = end.sum_received.jitter_ms ?? end.sum?.jitter_ms;
    const r = end.sum_received.packets !== undefined ? end.sum_received : end.sum;
    if (r?.packets !== undefined && r.seconds) out.udpRecvPps = Math.round((r.packets - (r.lost_packets ?? 0)) / r.seconds);
  } else {
    out.retransmits = end.sum_sent.retransmits ?? 0;
  }
  return out;
}

/**
 * One iperf3 measurement: a one-off server (`-s -1`) in the server namespace,
 * the client in the client namespace, both time-boxed; the server is stopped by
 * its PID file afterwards whatever happened.
 */
export async function iperf3(path: TrafficPath, o: IperfOptions, procs: WatchedProcess[], cleanups: Cleanups, workDir: string): Promise<IperfRun> {
  cleanups.checkAborted();
  const port = o.port ?? 5201;
  const pidFile = join(workDir, `iperf3-server-${port}.pid`);
  rmSync(pidFile, { force: true });
  const server = spawn('ip', ['netns', 'exec', path.serverNs, 'iperf3', '-s', '-1', '-B', path.target, '-p', String(port), '-I', pidFile], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let serverErr = '';
  server.stderr!.on('data', (c: Buffer) => (serverErr += c.toString()));
  const exited = new Promise<void>((r) => server.once('exit', () => r()));
  const stopServer = cleanups.add(`iperf3 server in ${path.serverNs}`, async () => {
    if (server.exitCode === null && server.signalCode === null) {
      await Promise.race([exited, new Promise((r) => setTimeout(r, 2000))]);
    }
    const pid = pidFromFile(pidFile) ?? (server.exitCode === null && server.signalCode === null ? server.pid : undefined);
    if (pid !== undefined) await stopPid(pid, 2000);
    rmSync(pidFile, { force: true });
  });
  try {
    await waitFor(
      `iperf3 server listening on ${path.target}:${port}`,
      async () => {
        if (server.exitCode !== null) throw new Error(`iperf3 server exited (${server.exitCode}): ${serverErr.trim()}`);
        const ss = await run('ip', ['netns', 'exec', path.serverNs, 'ss', '-Hltn', `sport = :${port}`]);
        return ss.stdout.includes(`:${port}`);
      },
      10_000,
      50,
    );
    const udp = o.udpRate !== undefined;
    const args = ['-c', path.target, '-p', String(port), '-t', String(o.durationSec), '-P', String(o.streams), '-J', '--connect-timeout', '5000'];
    if (udp) args.push('-u', '-b', o.udpRate!, '-l', String(o.udpLength ?? 1200));
    const udpBefore = await Promise.all([udpErrors(path.clientNs), udpErrors(path.serverNs)]);
    const t0 = performance.now();
    // Time box: the test itself, plus connection setup and the result exchange.
    const {
      result: r,
      cpuPct,
      cpuSec,
    } = await withCpu(procs, () => run('ip', ['netns', 'exec', path.clientNs, 'iperf3', ...args], { timeoutMs: (o.durationSec + 20) * 1000 }));
    const wallSec = Math.round(performance.now() - t0) / 1000;
    const udpAfter = await Promise.all([udpErrors(path.clientNs), udpErrors(path.serverNs)]);
    const parsed = parseIperf(r.stdout, udp);
    if (!parsed.ok && r.code !== 0 && !r.stdout.trim()) parsed.error = `iperf3 client exit ${r.code}: ${r.stderr.trim().slice(0, 300)}`;
    const [cb, sb] = udpBefore;
    const [ca, sa] = udpAfter;
    const rcvbuf = cb && sb && ca && sa ? { udpRcvbufErrors: { client: ca.RcvbufErrors - cb.RcvbufErrors, server: sa.RcvbufErrors - sb.RcvbufErrors } } : {};
    return { ...parsed, daemonCpuPct: cpuPct, ...(cpuSec !== undefined ? { daemonCpuSec: cpuSec } : {}), wallSec, ...rcvbuf };
  } catch (err) {
    return { ok: false, error: (err as Error).message, daemonCpuPct: {}, wallSec: 0 };
  } finally {
    await stopServer();
  }
}

// ---------------------------------------------------------------- ping

export interface PingRun {
  transmitted: number;
  received: number;
  lossPct: number;
  minMs?: number;
  avgMs?: number;
  maxMs?: number;
  mdevMs?: number;
  /** Every echo reply's RTT (when the run was not quiet, `-q`). */
  rttsMs?: number[];
  error?: string;
}

export function parsePing(out: string): PingRun {
  const counts = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(out);
  const rtt = /= ([\d.]+)\/([\d.]+)\/([\d.]+)\/([\d.]+) ms/.exec(out);
  const transmitted = counts ? Number(counts[1]) : 0;
  const received = counts ? Number(counts[2]) : 0;
  const res: PingRun = { transmitted, received, lossPct: transmitted ? Math.round((1 - received / transmitted) * 1000) / 10 : 100 };
  if (rtt) Object.assign(res, { minMs: Number(rtt[1]), avgMs: Number(rtt[2]), maxMs: Number(rtt[3]), mdevMs: Number(rtt[4]) });
  const rtts = [...out.matchAll(/ time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  if (rtts.length) res.rttsMs = rtts;
  if (!counts) res.error = `unparsable ping output: ${out.trim().slice(-200)}`;
  return res;
}

/** `count` echo requests every `intervalSec`, each waiting at most 1 s; time-boxed. */
export async function ping(path: TrafficPath, count: number, intervalSec = 0.2, perPacket = false): Promise<PingRun> {
  const deadline = Math.ceil(count * intervalSec) + 3;
  const r = await run(
    'ip',
    [
      'netns',
      'exec',
      path.clientNs,
      'ping',
      '-n',
      ...(perPacket ? [] : ['-q']),
      '-c',
      String(count),
      '-i',
      String(intervalSec),
      '-W',
      '1',
      '-w',
      String(deadline),
      path.target,
    ],
    {
      timeoutMs: (deadline + 5) * 1000,
    },
  );
  const p = parsePing(r.stdout);
  if (r.code !== 0 && p.received === 0) p.error ??= `ping exit ${r.code}: ${(r.stderr || r.stdout).trim().slice(0, 200)}`;
  return p;
}

// ---------------------------------------------------------------- what is on the wire

/** Packet counters on the client's veth, outbound (client → target). */
export interface WireCounters {
  /** ICMP / TCP / UDP (other than 500/4500) to the target in the clear. */
  clear_icmp: number;
  clear_tcp: number;
  clear_udp: number;
  /** IP protocol 50 (raw ESP). */
  esp: number;
  /** UDP to port 4500: ESP-in-UDP (RFC 3948) and floated IKE. */
  udp4500: number;
}
export const counterNames: Array<keyof WireCounters> = ['clear_icmp', 'clear_tcp', 'clear_udp', 'esp', 'udp4500'];

const TABLE = 'tpbench';

/** Install the counters (an nftables table in the client namespace; it goes with the namespace). */
export async function installWireCounters(path: TrafficPath): Promise<void> {
  const w = JSON.stringify(path.wire);
  const t = path.target;
  const ruleset = `table ip ${TABLE} {
  chain out {
    type filter hook output priority 0; policy accept;
    oifname ${w} ip daddr ${t} ip protocol icmp counter comment "clear_icmp"
    oifname ${w} ip daddr ${t} ip protocol tcp counter comment "clear_tcp"
    oifname ${w} ip daddr ${t} udp dport != { 500, 4500 } counter comment "clear_udp"
    oifname ${w} ip protocol esp counter comment "esp"
    oifname ${w} udp dport 4500 counter comment "udp4500"
  }
}
`;
  await run('ip', ['netns', 'exec', path.clientNs, 'nft', 'delete', 'table', 'ip', TABLE]);
  const r = await run('ip', ['netns', 'exec', path.clientNs, 'nft', '-f', '-'], { input: ruleset });
  if (r.code !== 0) throw new Error(`nft: cannot install the wire counters: ${r.stderr.trim()}`);
}

export async function readWireCounters(path: TrafficPath): Promise<WireCounters> {
  const out = await must('ip', ['netns', 'exec', path.clientNs, 'nft', 'list', 'table', 'ip', TABLE]);
  const c: WireCounters = { clear_icmp: 0, clear_tcp: 0, clear_udp: 0, esp: 0, udp4500: 0 };
  for (const m of out.matchAll(/counter packets (\d+) bytes \d+ comment "(\w+)"/g)) {
    const name = m[2] as keyof WireCounters;
    if (name in c) c[name] = Number(m[1]);
  }
  return c;
}

export function diffCounters(after: WireCounters, before: WireCounters): WireCounters {
  const d = { ...after };
  for (const k of counterNames) d[k] = after[k] - before[k];
  return d;
}

export type WireExpectation = 'cleartext' | 'esp' | 'esp-in-udp';

/**
 * Is the path what the scenario claims? Pings the target and looks at what left
 * on the veth: `cleartext` wants the ICMP itself, `esp` raw ESP and no
 * cleartext, `esp-in-udp` UDP 4500 and no cleartext. Returns a problem or undefined.
 */
export async function checkPath(
  path: TrafficPath,
  expect: WireExpectation,
  count = 5,
): Promise<{ problem?: string; ping: PingRun; counters: WireCounters; route: string; mtu?: number }> {
  const route = (await run('ip', ['-n', path.clientNs, 'route', 'get', path.target])).stdout.trim().split('\n')[0]?.trim() ?? '';
  const dev = / dev (\S+)/.exec(route)?.[1];
  const mtuText = dev ? /mtu (\d+)/.exec((await run('ip', ['-n', path.clientNs, '-o', 'link', 'show', 'dev', dev])).stdout)?.[1] : undefined;
  const before = await readWireCounters(path);
  const p = await ping(path, count, 0.2);
  const counters = diffCounters(await readWireCounters(path), before);
  const seen = `on ${path.wire}: ${counterNames.map((k) => `${k} ${counters[k]}`).join(', ')}; route: ${route}`;
  let problem: string | undefined;
  if (p.received === 0) problem = `ping ${path.target} gets no answer (${p.transmitted} sent${p.error ? `, ${p.error}` : ''}; ${seen})`;
  else if (expect === 'cleartext' && counters.clear_icmp < count) problem = `the pings did not leave in the clear on ${path.wire} (${seen})`;
  else if (expect !== 'cleartext' && counters.clear_icmp > 0) problem = `the pings to ${path.target} left in CLEARTEXT over ${path.wire}, not as ESP (${seen})`;
  else if (expect === 'esp' && counters.esp < p.received) problem = `the pings were answered but no raw ESP (IP protocol 50) left on ${path.wire} (${seen})`;
  else if (expect === 'esp-in-udp' && counters.udp4500 < p.received)
    problem = `the pings were answered but no ESP-in-UDP (port 4500) left on ${path.wire} (${seen})`;
  return { ...(problem ? { problem } : {}), ping: p, counters, route, ...(mtuText ? { mtu: Number(mtuText) } : {}) };
}

// ---------------------------------------------------------------- machine facts

export async function machineFacts(): Promise<Record<string, string | number>> {
  const { cpus, loadavg, release, totalmem } = await import('node:os');
  const pkg = async (name: string): Promise<string> => {
    const r = await run('dpkg-query', ['-W', '-f', '${Version}', name]);
    return r.code === 0 && r.stdout.trim() ? r.stdout.trim() : 'unknown';
  };
  // `swanctl --help` names the version without talking to a daemon (`--version` connects to the host's vici socket).
  const swanctl = await run('swanctl', ['--help']);
  const iperf = await run('iperf3', ['--version']);
  const repo = fileURLToPath(new URL('../..', import.meta.url));
  const git = await run('git', ['-C', repo, 'rev-parse', '--short', 'HEAD']);
  // Read-only: whether tracked files differ from that commit (the measured code is then the work tree).
  const dirty = (await run('git', ['-C', repo, 'status', '--porcelain', '--untracked-files=no'])).stdout.trim() !== '';
  return {
    cpus: cpus().length,
    cpu_model: cpus()[0]?.model ?? 'unknown',
    kernel: release(),
    node: process.version,
    memory_gib: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    strongswan: `${/strongSwan [\d.]+/.exec(swanctl.stdout + swanctl.stderr)?.[0] ?? 'strongSwan ?'} (${await pkg('strongswan-charon')})`,
    iperf3: `${/iperf [\d.]+/.exec(iperf.stdout)?.[0] ?? 'iperf3 ?'} (${await pkg('iperf3')})`,
    tunsec_commit: git.code === 0 ? `${git.stdout.trim()}${dirty ? ' + uncommitted changes' : ''}` : 'unknown',
    loadavg_start: loadavg()
      .map((l) => l.toFixed(2))
      .join(' '),
    ...(existsSync('/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor')
      ? { governor: readFileSync('/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor', 'utf8').trim() }
      : {}),
  };
}

// ---------------------------------------------------------------- how busy the machine is

/** Whole-machine CPU busy % (all cores, from /proc/stat) over `sec` seconds: the other users' load as seen now. */
export async function machineBusyPct(sec = 2): Promise<number | undefined> {
  const read = (): number[] | undefined => {
    try {
      const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
      return cpu;
    } catch {
      return undefined;
    }
  };
  const a = read();
  await new Promise((r) => setTimeout(r, sec * 1000));
  const b = read();
  if (!a || !b) return undefined;
  const d = b.map((x, i) => x - (a[i] ?? 0));
  const total = d.reduce((s, x) => s + x, 0);
  const idle = (d[3] ?? 0) + (d[4] ?? 0); // idle + iowait
  return total > 0 ? Math.round((1 - idle / total) * 1000) / 10 : undefined;
}
