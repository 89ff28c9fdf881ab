/**
 * `npm run bench` (issue 8): the IPsec datapaths on this machine side by side in
 * one run — iperf3 TCP (1 and 4 streams), UDP packet rates (1400- and 64-byte IP
 * packets, saturating), ping RTT p50/p99, CPU seconds per GB and RSS of the IPsec
 * processes — between two network namespaces, for
 *   plain                 veth, no IPsec (the ceiling)
 *   strongswan-libipsec   strongSwan 5.9.8 ↔ strongSwan, kernel-libipsec (tunnel, ESP-in-UDP: the baseline)
 *   tunsec-transport      tunsec ↔ tunsec, transport, raw ESP
 *   tunsec-tunnel-udp     tunsec ↔ tunsec, tunnel, ESP-in-UDP
 *   tunsec-strongswan     tunsec ↔ strongSwan libipsec, tunnel, ESP-in-UDP
 *   kernel-xfrm           Linux ESP, transport (support detected first; `unavailable: <reason>` without it)
 * plus the kernel rows under User-Mode Linux (bench/uml.ts; "Linux 6.1 XFRM under User-Mode Linux (generic C
 * AES-GCM, no AES-NI)", TCP 1 stream and host CPU per GB per side), measured after the cases above:
 *   uml-plain             UML guest ↔ UML guest, no IPsec
 *   uml-kernel-xfrm       UML guest ↔ UML guest, kernel ESP transport AES-128-GCM-16, static SAs (ip xfrm)
 *   tunsec-uml-kernel     tunsec (manual SAs, transport) in its namespace ↔ kernel ESP in a UML guest
 * plus the handshake cases (bench/throughput/handshake.ts): IKE+CHILD SAs per second with concurrent
 * initiations and memory per SA at 1 000 SAs, tunsec ↔ tunsec and strongSwan ↔ strongSwan.
 * Every case is set up first; then the repetitions go round all cases, each round
 * starting one case later, so that drift on this shared machine hits every case alike.
 * Every path is checked on the wire (nftables counters on the sender's veth) before
 * and after it is measured: cleartext where it should be ESP is never reported as an IPsec number.
 *
 *   node --import tsx bench/throughput.ts [--quick] [--only=plain,strongswan-libipsec | --only uml-plain,uml-kernel-xfrm,tunsec-uml-kernel]
 *        [--duration=SEC] [--reps=N] [--udp-rate=0|100M | --no-udp] [--ping-count=N] [--warmup=SEC]
 *        [--handshake-sas=N | --no-handshake] [--cpu-prof] [--budget=SEC]
 *
 * Root (network namespaces), iperf3, ping, ss, nft, strongSwan's charon/swanctl.
 * Writes bench/results/<timestamp>.json, latest.json, latest.md, latest.svg (bench/throughput/results.ts)
 * and the detailed throughput-latest.{json,md} page; a run of only the UML rows writes bench/results/uml-<timestamp>.{json,md} alone. Exit code 1 when a required case failed; an optional
 * case that cannot run here (kernel-xfrm) is "unavailable", exit code 0.
 * Ctrl-C cleans up (namespaces deleted, daemons stopped by PID).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createCa, issueCertificate } from '../src/pki/issue.js';
import { haveProgram, requireRootAndPrograms } from '../test/support/proc.js';
import type { BenchRow } from './stats.js';
import { Cleanups, codes as signalExitCodes, settle } from './throughput/cleanup.js';
import {
  checkPath,
  diffCounters,
  installWireCounters,
  iperf3,
  machineBusyPct,
  machineFacts,
  ping,
  readWireCounters,
  rssMb,
  type IperfOptions,
} from './throughput/measure.js';
import {
  markdown,
  ratios,
  scenarioRows,
  testTitle,
  throughputRows,
  UDP_PACKET,
  type BenchOptions,
  type Report,
  type ScenarioResult,
  type TestKey,
} from './throughput/report.js';
import { runHandshakes, type HandshakeCaseResult } from './throughput/handshake.js';
import { summarizeProfiles, updateNote } from './throughput/profile.js';
import {
  computeRatios,
  defaultRatioSpecs,
  markdownTables,
  quietVerdict,
  row,
  stamp,
  writeResults,
  type BenchReport,
  type CaseStatus,
  type ResultRow,
} from './throughput/results.js';
import { allScenarios, ScenarioUnavailable, TunsecPair, TUNSEC_VARIANTS, type BenchPki, type Scenario, type ScenarioPath } from './throughput/scenarios.js';
import { requireUml } from '../test/support/uml.js';
import { UML_CASE_IDS, UML_LABEL, runUmlCases, umlCaseStatus, umlCases, umlMarkdown, umlRatioSpecs, umlRows, type UmlCase, type UmlCaseResult } from './uml.js';

const repo = fileURLToPath(new URL('..', import.meta.url));
const log = (line: string): void => void process.stderr.write(`${line}\n`);
const TARGET_RATIO = 2.5;

function usage(): never {
  const ids = [...allScenarios().map((s) => s.id), ...UML_CASE_IDS];
  process.stdout.write(
    `usage: node --import tsx bench/throughput.ts [--quick] [--only=ID,...] [--duration=SEC] [--reps=N] [--udp-rate=RATE|--no-udp] [--ping-count=N] [--warmup=SEC]\n` +
      `       [--handshake-sas=N|--no-handshake] [--handshake-cases=tunsec-ike,tunsec-ike-2proc,strongswan-ike] [--cpu-prof] [--budget=SEC]\n` +
      `  --quick        2 s runs, 2 repetitions, 50 pings, 1 s warm-up (under 7 minutes with the UML rows); default: 8 s runs, 3 repetitions, 200 pings (under 21)\n` +
      `  --cpu-prof     after the measurements, profile both tunsec daemons (node --cpu-prof) under iperf3 TCP on tunsec-transport; top self time → docs/notes/bench.md\n` +
      `  scenarios:     ${ids.join(', ')} (--only takes ids or prefixes: --only=plain,tunsec or --only uml-plain,uml-kernel-xfrm,tunsec-uml-kernel)\n` +
      `  uml-*, tunsec-uml-kernel: ${UML_LABEL}; TCP 1 stream + host CPU per GB per side, after the other cases; a run of only these writes bench/results/uml-<timestamp>.{json,md}\n`,
  );
  process.exit(0);
}

function parseOptions(argv: string[]): BenchOptions {
  let parsed;
  try {
    // node's parseArgs: `--only=a,b` and `--only a,b` alike; an unknown option is an error
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        quick: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        duration: { type: 'string' },
        reps: { type: 'string' },
        warmup: { type: 'string' },
        'ping-count': { type: 'string' },
        'udp-rate': { type: 'string' },
        'no-udp': { type: 'boolean' },
        only: { type: 'string' },
        'handshake-sas': { type: 'string' },
        'handshake-cases': { type: 'string' },
        'no-handshake': { type: 'boolean' },
        'cpu-prof': { type: 'boolean' },
        budget: { type: 'string' },
      },
    }).values;
  } catch (err) {
    throw new Error(`${(err as Error).message} (--help)`);
  }
  if (parsed.help) usage();
  const quick = parsed.quick === true;
  const o: BenchOptions = {
    quick,
    durationSec: quick ? 2 : 8,
    reps: quick ? 2 : 3,
    pingCount: quick ? 50 : 200,
    pingIntervalSec: 0.02,
    udpRate: '0',
    udpLength: 1372,
    warmupSec: quick ? 1 : 3,
    only: undefined,
    handshakes: { total: 1000, batch: quick ? 500 : 250, concurrency: 4, warmup: 10 },
    cpuProf: parsed['cpu-prof'] === true,
    budgetSec: quick ? 270 : 1080,
  };
  const num = (name: string, v: string, min: number): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} needs an integer ≥ ${min}, got ${v}`);
    return n;
  };
  if (parsed.duration !== undefined) o.durationSec = num('duration', parsed.duration, 1);
  if (parsed.reps !== undefined) o.reps = num('reps', parsed.reps, 1);
  if (parsed.warmup !== undefined) o.warmupSec = num('warmup', parsed.warmup, 0);
  if (parsed['ping-count'] !== undefined) o.pingCount = num('ping-count', parsed['ping-count'], 1);
  const rate = parsed['udp-rate'];
  if (rate !== undefined) {
    if (!/^\d+(\.\d+)?[KMG]?$/i.test(rate)) throw new Error(`--udp-rate wants an iperf3 rate such as 100M (0 = as fast as possible), got ${rate}`);
    o.udpRate = rate;
  }
  if (parsed['no-udp']) o.udpRate = undefined;
  if (parsed.only !== undefined) o.only = parsed.only.split(',').filter(Boolean);
  const sas = parsed['handshake-sas'];
  if (sas !== undefined)
    o.handshakes = { ...o.handshakes!, total: num('handshake-sas', sas, 1), batch: Math.min(o.handshakes?.batch ?? 250, num('handshake-sas', sas, 1)) };
  if (parsed['handshake-cases'] !== undefined && o.handshakes) o.handshakes = { ...o.handshakes, cases: parsed['handshake-cases'].split(',').filter(Boolean) };
  if (parsed['no-handshake']) o.handshakes = undefined;
  if (parsed.budget !== undefined) o.budgetSec = num('budget', parsed.budget, 60);
  return o;
}

function selectScenarios(o: BenchOptions): { scenarios: Scenario[]; uml: UmlCase[] } {
  const all = allScenarios();
  const uml = umlCases(o.only);
  // Comparison cases (tunsec with offload off) run only when --only names them, in full or by a prefix.
  const onRequest = (s: Scenario): boolean => s instanceof TunsecPair && s.onRequest;
  if (!o.only) return { scenarios: all.filter((s) => !onRequest(s)), uml };
  const ids = [...all.map((s) => s.id), ...UML_CASE_IDS];
  const chosen = all.filter((s) => o.only!.some((p) => s.id === p || s.id.startsWith(p)));
  const unknown = o.only.filter((p) => !ids.some((id) => id === p || id.startsWith(p)));
  if (unknown.length || !(chosen.length + uml.length))
    throw new Error(`--only: no scenario ${unknown.join(', ') || o.only.join(',')} (have ${ids.join(', ')})`);
  return { scenarios: chosen, uml };
}

/** Root and every program the chosen scenarios need: a clear error, never a silent skip. */
function requirePrerequisites(scenarios: Scenario[], uml: UmlCase[]): void {
  // User-Mode Linux (linux.uml, its modules, gcc for the XSAVE shim, ethtool): a clear error, never a skip
  if (uml.length) requireUml();
  const programs = [...new Set(['ip', 'iperf3', 'ping', 'ss', 'nft', 'getconf', ...scenarios.flatMap((s) => s.programs)])];
  try {
    requireRootAndPrograms('bench/throughput', programs);
  } catch (err) {
    const hint = haveProgram('iperf3') ? '' : ' — iperf3: `apt-get install iperf3` (Debian 12 ships 3.12)';
    throw new Error(`${(err as Error).message}${hint}`);
  }
  if ((scenarios.some((s) => s.id !== 'plain') || uml.length) && !existsSync('/dev/net/tun')) {
    throw new Error('bench/throughput: /dev/net/tun is missing (kernel-libipsec and tunsec need TUN devices)');
  }
}

async function makePki(): Promise<BenchPki> {
  const ca = createCa({ subject: 'C=CH, O=tunsec bench, CN=Bench CA', key: 'rsa3072' });
  const host = (cn: string) =>
    issueCertificate(ca, { subject: `C=CH, O=tunsec bench, CN=${cn}`, key: 'rsa2048', subjectAltNames: { dns: [`${cn}.ikev2.test`] } });
  return { caPem: ca.certificatePem, moon: host('moon'), sun: host('sun') };
}

const fmtRun = (key: TestKey, r: Awaited<ReturnType<typeof iperf3>>): string => {
  if (!r.ok) return `${testTitle[key]}: failed: ${r.error}`;
  const extra = key.startsWith('udp') ? `${r.udpRecvPps} packets/s, loss ${r.udpLossPct?.toFixed(2)} %` : `retr ${r.retransmits}`;
  const cpu = Object.entries(r.daemonCpuPct).map(([l, v]) => `${l} ${v}%`);
  const drops =
    r.udpRcvbufErrors && r.udpRcvbufErrors.client + r.udpRcvbufErrors.server > 0
      ? `; UDP rcvbuf drops A ${r.udpRcvbufErrors.client}, B ${r.udpRcvbufErrors.server}`
      : '';
  return `${testTitle[key]}: ${r.recvMbps} Mb/s (${extra}${cpu.length ? `; cpu ${cpu.join(', ')}` : ''}${drops})`;
};

interface LiveCase {
  s: Scenario;
  res: ScenarioResult;
  path: ScenarioPath;
  teardown: () => Promise<void>;
  before?: Awaited<ReturnType<typeof readWireCounters>>;
}

/** Set up one case and check its path on the wire; a case that cannot run comes back with status and reason, torn down. */
async function setupScenario(s: Scenario, pki: BenchPki, cleanups: Cleanups): Promise<{ res: ScenarioResult; live?: LiveCase }> {
  const res: ScenarioResult = { id: s.id, title: s.title, description: s.description, status: 'ok', warnings: [], runs: { ping: [] }, rows: [] };
  const tag = `[${s.id}]`;
  log(`${tag} setting up: ${s.description}`);
  let pending: Promise<unknown> = Promise.resolve();
  // Registered before setup starts: a signal during setup waits for it to settle, then undoes it.
  const teardown = cleanups.add(`scenario ${s.id}`, async () => {
    await settle(pending, 60_000);
    res.warnings.push(...(await s.teardown()));
  });
  const fail = async (status: 'unavailable' | 'failed', reason: string, short?: string): Promise<{ res: ScenarioResult }> => {
    res.status = status;
    res.reason = reason;
    res.short_reason = short ?? reason.split('\n')[0]!.slice(0, 300);
    log(`${tag} ${res.status}: ${res.reason}`);
    await teardown().catch((err: unknown) => res.warnings.push(`teardown: ${(err as Error).message}`));
    return { res };
  };
  try {
    const t0 = performance.now();
    let path: ScenarioPath;
    try {
      const p = s.setup({ cleanups, pki, log });
      pending = p;
      path = await p;
    } catch (err) {
      const msg = (err as Error).message;
      if (err instanceof ScenarioUnavailable) return await fail('unavailable', msg, msg);
      return await fail('failed', `setup: ${msg.length > 1500 ? `${msg.slice(0, 1500)}…` : msg}`, `setup: ${msg.split('\n')[0]!.slice(0, 160)}`);
    }
    res.setup_sec = Math.round(performance.now() - t0) / 1000;
    res.details = path.details;
    await installWireCounters(path);
    const check = await checkPath(path, s.wire);
    res.path_check = { route: check.route, ...(check.mtu ? { mtu: check.mtu } : {}), ping: check.ping, counters: check.counters };
    if (check.problem) {
      const daemonLog = s instanceof TunsecPair ? s.logTail() : '';
      return await fail(
        s.optional ? 'unavailable' : 'failed',
        `path check: ${check.problem}${daemonLog ? `; daemon errors: ${daemonLog}` : ''}`,
        `path check: ${check.problem.split(' (')[0]}`,
      );
    }
    log(`${tag} up in ${res.setup_sec} s; path: ${check.route}; ${s.wire} on the wire confirmed`);
    return { res, live: { s, res, path, teardown } };
  } catch (err) {
    return await fail('failed', (err as Error).message);
  }
}

/** The iperf3 tests of one repetition. */
function tests(o: BenchOptions): Array<[TestKey, IperfOptions]> {
  const t: Array<[TestKey, IperfOptions]> = [
    ['tcp1', { durationSec: o.durationSec, streams: 1 }],
    ['tcp4', { durationSec: o.durationSec, streams: 4 }],
  ];
  if (o.udpRate) {
    for (const k of ['udp1400', 'udp64'] as const) t.push([k, { durationSec: o.durationSec, streams: 1, udpRate: o.udpRate, udpLength: UDP_PACKET[k] - 28 }]);
  }
  return t;
}

/** One repetition of one case: ping (every reply's RTT), TCP 1 and 4 streams, RSS of the IPsec processes, UDP 1400 and 64. */
async function measureRound(l: LiveCase, o: BenchOptions, rep: number, cleanups: Cleanups, workDir: string): Promise<void> {
  const { res, path } = l;
  const tag = `[${res.id}]`;
  cleanups.checkAborted();
  const p = await ping(path, o.pingCount, o.pingIntervalSec, true);
  res.runs.ping.push(p);
  log(
    `${tag} rep ${rep}/${o.reps} ping ×${p.transmitted}: ${p.avgMs !== undefined ? `avg ${p.avgMs} ms (min ${p.minMs}, max ${p.maxMs})` : 'no answer'}, loss ${p.lossPct} %`,
  );
  for (const [key, io] of tests(o)) {
    cleanups.checkAborted();
    const r = await iperf3(path, io, path.daemons, cleanups, workDir);
    (res.runs[key] ??= []).push(r);
    log(`${tag} rep ${rep}/${o.reps} ${fmtRun(key, r)}`);
    if (key === 'tcp4' && path.daemons.length) {
      // Right after the heaviest run: the IPsec processes' resident memory under load.
      const rss = path.daemons.map((d) => rssMb(d.pid()));
      if (rss.every((x) => x !== undefined)) (res.runs.rss_mb ??= []).push(Math.round(rss.reduce((a, x) => a + x!, 0) * 10) / 10);
    }
  }
}

/** After the last repetition: no cleartext leaked, the path still holds; then tear down. */
async function finishScenario(l: LiveCase): Promise<void> {
  const { s, res, path } = l;
  const tag = `[${s.id}]`;
  try {
    if (l.before) {
      res.wire_during_measurements = diffCounters(await readWireCounters(path), l.before);
      const w = res.wire_during_measurements;
      const leaked = w.clear_icmp + w.clear_tcp + w.clear_udp;
      if (s.wire !== 'cleartext' && leaked > 0) {
        res.status = 'failed';
        res.reason = `${leaked} packets to ${path.target} left ${path.wire} in the CLEAR during the measurements (SA gone?): the numbers are not IPsec numbers`;
      }
    }
    const after = await checkPath(path, s.wire, 3);
    if (after.problem && res.status === 'ok') {
      res.status = 'failed';
      res.reason = `path check after the measurements: ${after.problem}`;
    }
    const allFailed = (['tcp1', 'tcp4'] as const).every((k) => !(res.runs[k] ?? []).some((r) => r.ok));
    if (allFailed && res.status === 'ok') {
      res.status = s.optional ? 'unavailable' : 'failed';
      res.reason = `every iperf3 TCP run failed: ${res.runs.tcp1?.[0]?.error ?? ''}`;
    }
    if (res.status !== 'ok') {
      res.short_reason ??= res.reason?.slice(0, 300);
      log(`${tag} ${res.status}: ${res.reason}`);
    }
  } catch (err) {
    res.status = 'failed';
    res.reason = (err as Error).message;
  } finally {
    await l.teardown().catch((err: unknown) => res.warnings.push(`teardown: ${(err as Error).message}`));
    for (const w of res.warnings) log(`${tag} warning: ${w}`);
  }
}

/** `--cpu-prof`: a separate tunsec-transport pair whose daemons run under node --cpu-prof, loaded with iperf3 TCP. */
async function cpuProfile(o: BenchOptions, pki: BenchPki, cleanups: Cleanups, workDir: string): Promise<string | undefined> {
  const dir = join(workDir, 'cpu-prof');
  const variant = TUNSEC_VARIANTS.find((v) => v.id === 'tunsec-transport')!;
  const s = new TunsecPair(variant, dir);
  const { res, live } = await setupScenario(s, pki, cleanups);
  if (!live) {
    log(`[cpu-prof] tunsec-transport did not come up: ${res.reason}`);
    return undefined;
  }
  try {
    const sec = Math.max(o.durationSec, 10);
    log(`[cpu-prof] profiling both tunsec daemons: ${o.warmupSec} s warm-up, then iperf3 TCP 1 stream ${sec} s and 4 streams ${sec} s`);
    if (o.warmupSec) await iperf3(live.path, { durationSec: o.warmupSec, streams: 1 }, [], cleanups, workDir);
    for (const streams of [1, 4]) {
      const r = await iperf3(live.path, { durationSec: sec, streams }, live.path.daemons, cleanups, workDir);
      log(`[cpu-prof] TCP ${streams} stream(s) under the profiler: ${r.ok ? `${r.recvMbps} Mb/s` : r.error}`);
    }
  } finally {
    await live.teardown(); // SIGTERM: the daemons exit normally and write their .cpuprofile files
  }
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')) : [];
  if (!files.length) {
    log('[cpu-prof] no .cpuprofile written (did the daemons exit by SIGKILL?)');
    return undefined;
  }
  const summary = summarizeProfiles(
    files.map((f) => ({ name: f, profile: JSON.parse(readFileSync(join(dir, f), 'utf8')) as unknown })),
    repo,
  );
  // The raw profiles (open in Chrome DevTools or speedscope), replacing the previous run's.
  const keep = join(repo, 'bench/results/cpu-prof');
  rmSync(keep, { recursive: true, force: true });
  mkdirSync(keep, { recursive: true });
  for (const f of files) writeFileSync(join(keep, f), readFileSync(join(dir, f)));
  return `${summary}\nRaw profiles: \`bench/results/cpu-prof/*.cpuprofile\` (Chrome DevTools → Performance → Load profile, or speedscope).\n`;
}

function handshakeCases(hs: HandshakeCaseResult[]): { cases: CaseStatus[]; rows: ResultRow[] } {
  const cases: CaseStatus[] = [];
  const rows: ResultRow[] = [];
  for (const h of hs) {
    cases.push({ case: h.id, kind: 'handshake', title: h.title, status: h.status, ...(h.reason ? { reason: h.reason } : {}) });
    const miss = h.status === 'ok' ? undefined : { failed: h.reason ?? 'failed' };
    rows.push(row(h.id, 'handshakes_per_s', h.rates, miss));
    rows.push(row(h.id, 'kb_per_sa', [h.kb_per_sa], miss));
    rows.push(row(h.id, 'kb_per_sa_slope', [h.kb_per_sa_slope], miss));
  }
  return { cases, rows };
}

async function main(): Promise<number> {
  const started = performance.now();
  const o = parseOptions(process.argv.slice(2));
  const { scenarios, uml } = selectScenarios(o);
  // The UML rows come on top of the others: their share of the time budget, unless --budget was given.
  if (uml.length && scenarios.length && !process.argv.some((a) => a.startsWith('--budget'))) o.budgetSec += o.quick ? 120 : 180;
  requirePrerequisites(scenarios, uml);
  const umlOnly = scenarios.length === 0;
  const cleanups = new Cleanups();
  cleanups.installSignalHandlers(log);
  const workDir = mkdtempSync('/tmp/tpbench-');
  cleanups.add('work directory', async () => rmSync(workDir, { recursive: true, force: true }));
  const date = new Date().toISOString();
  const script = relative(process.cwd(), process.argv[1] ?? 'bench/throughput.ts') || 'bench/throughput.ts';
  const command =
    process.env.npm_lifecycle_event === 'bench'
      ? `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`
      : ['node', ...process.execArgv, script, ...process.argv.slice(2)].join(' ');
  const elapsed = (): number => (performance.now() - started) / 1000;
  try {
    const machine = await machineFacts();
    const loadBefore = loadavg();
    const busyBefore = await machineBusyPct(3);
    log(
      `bench (${o.quick ? 'quick' : 'full'}: ${o.reps} rep(s) × ${o.durationSec} s; cases ${[...scenarios.map((s) => s.id), ...uml.map((c) => c.id)].join(', ')}${o.handshakes ? `; handshakes ×${o.handshakes.total}` : ''}) on ${machine.cpus} cores, ${machine.strongswan}; ` +
        `load ${loadBefore.map((l) => l.toFixed(2)).join(' ')}, machine ${busyBefore} % busy before starting`,
    );
    const pki = await makePki();
    const results: ScenarioResult[] = [];
    const live: LiveCase[] = [];
    // 1. Every case up (and checked on the wire) before anything is measured.
    for (const s of scenarios) {
      if (cleanups.aborted) break;
      const r = await setupScenario(s, pki, cleanups);
      results.push(r.res);
      if (r.live) live.push(r.live);
    }
    // 2. Warm-up (not recorded): JIT-compiled datapaths (tunsec) and TCP/socket buffers reach steady state.
    for (const l of live) {
      if (cleanups.aborted) break;
      if (o.warmupSec > 0) {
        const w = await iperf3(l.path, { durationSec: o.warmupSec, streams: 1 }, [], cleanups, workDir);
        log(`[${l.s.id}] warm-up ${o.warmupSec} s: ${w.ok ? `${w.recvMbps} Mb/s` : `failed: ${w.error}`}`);
      }
      l.before = await readWireCounters(l.path);
    }
    // 3. Interleaved repetitions: round r measures every case, starting with case r (rotation).
    let repsDone = 0;
    for (let rep = 1; rep <= o.reps && !cleanups.aborted && live.length; rep++) {
      if (rep > 1 && elapsed() > o.budgetSec * 0.7) {
        log(`time budget: ${Math.round(elapsed())} s used of ${o.budgetSec} s, no repetition ${rep}`);
        break;
      }
      const order = live.map((_, i) => live[(i + rep - 1) % live.length]!);
      log(`— repetition ${rep}/${o.reps}: ${order.map((l) => l.s.id).join(' → ')}`);
      for (const l of order) await measureRound(l, o, rep, cleanups, workDir);
      repsDone = rep;
    }
    for (const l of live) await finishScenario(l);
    for (const r of results) r.rows = scenarioRows(r);
    // 3b. The kernel rows under User-Mode Linux, with the cases above torn down (their own interleaved rounds).
    let umlResults: UmlCaseResult[] = [];
    if (uml.length && !cleanups.aborted) {
      log(`UML rows (${UML_LABEL}): ${uml.map((c) => c.id).join(', ')}`);
      umlResults = await runUmlCases(
        uml,
        { reps: o.reps, durationSec: o.durationSec, warmupSec: o.warmupSec, outOfTime: () => elapsed() > o.budgetSec * 0.7 },
        cleanups,
        log,
      );
    }
    // 4. Handshakes, with the datapath cases gone.
    let hs: HandshakeCaseResult[] = [];
    if (o.handshakes && !cleanups.aborted) {
      log(`handshakes: ${o.handshakes.total} IKE+CHILD SAs per case, ${o.handshakes.concurrency} in flight, batches of ${o.handshakes.batch}, kept up`);
      hs = await runHandshakes(o.handshakes, cleanups, log);
    }
    // 5. The profile (separate daemons: the profiler's overhead stays out of the numbers above).
    let profile: string | undefined;
    if (o.cpuProf && !cleanups.aborted) profile = await cpuProfile(o, pki, cleanups, workDir);
    if (cleanups.aborted) {
      log(`interrupted by ${cleanups.aborted}: no results written`);
      return signalExitCodes[cleanups.aborted] ?? 1;
    }
    const busyAfter = await machineBusyPct(3);
    const loadAfter = loadavg();
    machine.loadavg_end = loadAfter.map((l) => l.toFixed(2)).join(' ');
    const quiet = quietVerdict({
      loadavg_before: loadBefore.map((x) => +x.toFixed(2)),
      loadavg_after: loadAfter.map((x) => +x.toFixed(2)),
      busy_pct_before: busyBefore,
      busy_pct_after: busyAfter,
      cpus: Number(machine.cpus),
    });
    log(`machine: ${quiet.verdict} (load ${machine.loadavg_start} → ${machine.loadavg_end}; busy ${busyBefore} % → ${busyAfter} %)`);

    // Legacy detailed page (per-run numbers, path checks): throughput-latest.{json,md}.
    const legacyRows: BenchRow[] = results.filter((r) => r.status === 'ok').flatMap((r) => r.rows);
    const legacy: Report = {
      bench: 'throughput',
      date,
      command,
      options: o,
      machine,
      scenarios: results,
      ratios: ratios(results, 'strongswan-libipsec', 'plain', TARGET_RATIO),
      rows: legacyRows,
      duration_sec: Math.round(elapsed()),
    };
    const out = join(repo, 'bench/results');
    mkdirSync(out, { recursive: true });
    // A partial run (--only, or without the handshake cases) never replaces the full run's latest files.
    const partial = o.only !== undefined || !o.handshakes;
    const prefix = partial ? 'partial-' : '';
    if (!umlOnly) {
      writeFileSync(join(out, `${prefix}throughput-latest.json`), JSON.stringify(legacy, null, 2) + '\n');
      writeFileSync(join(out, `${prefix}throughput-latest.md`), markdown(legacy));
    }

    // The issue-8 result files.
    const hsOut = handshakeCases(hs);
    const cases: CaseStatus[] = [
      ...results.map((r): CaseStatus => ({
        case: r.id,
        kind: 'throughput',
        title: r.title,
        status: r.status,
        ...(r.status !== 'ok' ? { reason: r.short_reason ?? r.reason ?? r.status } : {}),
      })),
      ...umlResults.map(umlCaseStatus),
      ...hsOut.cases,
    ];
    const rows: ResultRow[] = [...results.flatMap((r) => throughputRows(r)), ...umlResults.flatMap(umlRows), ...hsOut.rows];
    // Only the ratios between cases of this run (an unavailable case still shows, with its reason).
    const present = new Set(cases.map((c) => c.case));
    const ratioSpecs = [...defaultRatioSpecs(), ...umlRatioSpecs()].filter((s) => present.has(s.numerator) && present.has(s.denominator));
    const report: BenchReport = {
      bench: 'tunsec',
      date,
      command,
      options: { ...o, reps_done: repsDone, ...(umlResults.length ? { uml_reps_done: Math.max(0, ...umlResults.map((r) => r.runs.length)) } : {}) },
      machine,
      quiet,
      cases,
      rows,
      ratios: computeRatios(rows, ratioSpecs),
      duration_sec: Math.round(elapsed()),
      details: {
        throughput: results.map((r) => ({
          id: r.id,
          status: r.status,
          reason: r.reason,
          details: r.details,
          path_check: r.path_check,
          wire_during_measurements: r.wire_during_measurements,
          warnings: r.warnings,
          setup_sec: r.setup_sec,
        })),
        handshakes: hs,
        ...(umlResults.length ? { uml: { label: UML_LABEL, cases: umlResults } } : {}),
      },
    };
    const page = resultsPage(report, o, profile, umlResults);
    if (umlOnly) {
      // Only the UML rows: files of their own, never latest.* nor partial-latest.*.
      const base = join(out, `uml-${stamp(report.date)}`);
      writeFileSync(`${base}.json`, JSON.stringify(report, null, 2) + '\n');
      writeFileSync(`${base}.md`, page);
      process.stdout.write(page);
      log(`wrote ${relative(repo, base)}.json and .md in ${report.duration_sec} s`);
      const bad = cases.filter((c) => c.status === 'failed');
      for (const b of bad) log(`FAILED ${b.case}: ${b.reason}`);
      return bad.length ? 1 : 0;
    }
    const paths = writeResults(out, report, page, `${prefix}latest`);
    if (profile) updateNote(join(repo, 'docs/notes/bench.md'), profile);
    process.stdout.write(page);
    log(
      `wrote ${relative(repo, paths.json)}, ${relative(repo, paths.latest)}, ${relative(repo, paths.md)}, ${relative(repo, paths.svg)} in ${report.duration_sec} s`,
    );
    const bad = cases.filter((c) => c.status === 'failed');
    for (const b of bad) log(`FAILED ${b.case}: ${b.reason}`);
    return bad.length ? 1 : 0;
  } finally {
    const errors = await cleanups.runAll();
    for (const e of errors) log(`cleanup: ${e}`);
  }
}

/** bench/results/latest.md: machine, method, quietness, the tables, the chart, the profile. */
function resultsPage(r: BenchReport, o: BenchOptions, profile: string | undefined, uml: UmlCaseResult[] = []): string {
  const m = r.machine;
  const hs = o.handshakes;
  return [
    '# tunsec benchmark',
    '',
    `\`${r.command}\` — ${r.date}, took ${r.duration_sec} s. Machine: ${m.cpu_model} × ${m.cpus} cores, ${m.memory_gib} GiB, kernel ${m.kernel}, Node ${m.node}, ${m.strongswan}, ${m.iperf3}, tunsec ${m.tunsec_commit}.`,
    '',
    `Quiet? ${r.quiet.verdict}. Load average ${r.quiet.loadavg_before.join(' ')} before, ${r.quiet.loadavg_after.join(' ')} after; whole machine ${r.quiet.busy_pct_before ?? '?'} % busy before, ${r.quiet.busy_pct_after ?? '?'} % after (3 s samples of /proc/stat, the bench idle).`,
    '',
    ...(r.cases.some((c) => c.kind === 'throughput')
      ? []
      : [
          `Only the UML rows (${UML_LABEL}): ${o.reps} interleaved repetition(s) of iperf3 TCP ${o.durationSec} s, 1 stream, after an unrecorded ${o.warmupSec} s warm-up each; see the table below and docs/notes/bench.md.`,
          '',
        ]),
    ...(r.cases.some((c) => c.kind !== 'uml')
      ? [
          `Method: every case set up first and checked on the wire (ESP / ESP-in-UDP, no cleartext), ${o.warmupSec} s TCP warm-up each, then ${r.options.reps_done as number} interleaved repetition(s) (each round starts one case later) of: ping ×${o.pingCount} every ${o.pingIntervalSec} s (p50/p99 over every reply), iperf3 TCP ${o.durationSec} s with 1 and 4 streams, UDP ${o.durationSec} s at ${o.udpRate === '0' ? 'the highest rate the sender reaches (-b 0)' : o.udpRate} with 1400- and 64-byte IP packets (packets/s that arrived, loss as iperf3 counts it). Median (min–max). cpu_s_per_gb = utime+stime of both IPsec processes over the TCP runs ÷ GB received; rss_mb = both IPsec processes' VmRSS after the 4-stream run.` +
            (hs
              ? ` Handshakes: ${hs.total} IKE_SA+CHILD_SA per case kept up, ${hs.concurrency} initiations in flight, one rate sample per ${hs.batch}, tunsec and strongSwan batches alternating; kb_per_sa = (ΔRSS initiator + ΔRSS responder) ÷ (2 × SAs); kb_per_sa_slope the same over the second half only (without what grows once, such as V8's young generation). tunsec-ike runs both IKE managers in the bench's own thread; tunsec-ike-2proc runs each in a process of its own with its key exchanges and signatures on crypto worker threads (daemon.crypto_workers' default). See docs/notes/bench.md.`
              : ''),
          '',
        ]
      : []),
    markdownTables(r),
    umlMarkdown(r.rows, r.cases, uml),
    ...(r.cases.some((c) => c.kind === 'throughput') ? [`![throughput](${o.only !== undefined || !o.handshakes ? 'partial-' : ''}latest.svg)`, ''] : []),
    ...(profile ? ['## CPU profile (tunsec-transport, TCP)', '', profile, ''] : []),
  ].join('\n');
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    const msg = (err as Error).message;
    log(msg.startsWith('bench/throughput') ? msg : `bench/throughput: ${msg}`);
    process.exit(1);
  },
);
