/**
 * Throughput of the IPsec datapaths on this machine, in one run: iperf3 TCP
 * (1 and 4 streams), UDP at a fixed rate, and ping RTT between two network
 * namespaces, for
 *   plain veth                               (the ceiling)
 *   strongSwan 5.9.8 ↔ strongSwan, kernel-libipsec (tunnel, ESP-in-UDP: the baseline)
 *   tunsec ↔ tunsec, transport/raw ESP and tunnel/ESP-in-UDP
 *                                            (recorded as "not available" until the daemon's datapath carries traffic)
 * Scenarios: bench/throughput/scenarios.ts. Every path is checked on the wire
 * (nftables counters on the sender's veth) before it is measured: cleartext
 * where it should be ESP is never reported as an IPsec number.
 *
 *   node --import tsx bench/throughput.ts [--quick] [--only=plain,strongswan-libipsec]
 *        [--duration=SEC] [--reps=N] [--udp-rate=100M | --no-udp] [--ping-count=N] [--warmup=SEC]
 *
 * Root (network namespaces), iperf3, ping, ss, nft, strongSwan's charon/swanctl.
 * Writes bench/results/throughput-<timestamp>.json, throughput-latest.json and
 * throughput-latest.md. Exit code 1 when a required scenario (plain,
 * strongSwan) or a tunsec scenario whose SAs did not come up failed; a tunsec
 * scenario without a working datapath is "not available", exit code 0.
 * Ctrl-C cleans up (namespaces deleted, daemons stopped by PID).
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createCa, issueCertificate } from '../src/pki/issue.js';
import { haveProgram, requireRootAndPrograms } from '../test/support/proc.js';
import type { BenchRow } from './stats.js';
import { Cleanups, codes as signalExitCodes, settle } from './throughput/cleanup.js';
import { checkPath, diffCounters, installWireCounters, iperf3, machineFacts, ping, readWireCounters, type IperfOptions } from './throughput/measure.js';
import { markdown, ratios, scenarioRows, testTitle, type BenchOptions, type Report, type ScenarioResult, type TestKey } from './throughput/report.js';
import { allScenarios, ScenarioUnavailable, TunsecPair, type BenchPki, type Scenario, type ScenarioPath } from './throughput/scenarios.js';

const repo = fileURLToPath(new URL('..', import.meta.url));
const log = (line: string): void => void process.stderr.write(`${line}\n`);
const TARGET_RATIO = 2.5;

function usage(): never {
  const ids = allScenarios().map((s) => s.id);
  process.stdout.write(
    `usage: node --import tsx bench/throughput.ts [--quick] [--only=ID,...] [--duration=SEC] [--reps=N] [--udp-rate=RATE|--no-udp] [--ping-count=N] [--warmup=SEC]\n` +
      `  --quick        3 s runs, 1 repetition, 10 pings, 1 s warm-up\n  scenarios:     ${ids.join(', ')} (--only takes ids or prefixes: --only=plain,tunsec)\n`,
  );
  process.exit(0);
}

function parseOptions(argv: string[]): BenchOptions {
  const quick = argv.includes('--quick');
  const o: BenchOptions = { quick, durationSec: quick ? 3 : 10, reps: quick ? 1 : 3, pingCount: quick ? 10 : 20, udpRate: '100M', udpLength: 1200, warmupSec: quick ? 1 : 3, only: undefined };
  for (const a of argv) {
    const [k, v] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const num = (min: number): number => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < min) throw new Error(`${k} needs an integer ≥ ${min}, got ${v}`);
      return n;
    };
    switch (k) {
      case '--quick':
        break;
      case '--help':
      case '-h':
        usage();
        break;
      case '--duration':
        o.durationSec = num(1);
        break;
      case '--reps':
        o.reps = num(1);
        break;
      case '--warmup':
        o.warmupSec = num(0);
        break;
      case '--ping-count':
        o.pingCount = num(1);
        break;
      case '--udp-rate':
        if (!v || !/^\d+(\.\d+)?[KMG]?$/i.test(v)) throw new Error(`--udp-rate wants an iperf3 rate such as 100M, got ${v}`);
        o.udpRate = v;
        break;
      case '--no-udp':
        o.udpRate = undefined;
        break;
      case '--only':
        o.only = (v ?? '').split(',').filter(Boolean);
        break;
      default:
        throw new Error(`unknown option ${a} (--help)`);
    }
  }
  return o;
}

function selectScenarios(o: BenchOptions): Scenario[] {
  const all = allScenarios();
  if (!o.only) return all;
  const chosen = all.filter((s) => o.only!.some((p) => s.id === p || s.id.startsWith(p)));
  const unknown = o.only.filter((p) => !all.some((s) => s.id === p || s.id.startsWith(p)));
  if (unknown.length || !chosen.length) throw new Error(`--only: no scenario ${unknown.join(', ') || o.only.join(',')} (have ${all.map((s) => s.id).join(', ')})`);
  return chosen;
}

/** Root and every program the chosen scenarios need: a clear error, never a silent skip. */
function requirePrerequisites(scenarios: Scenario[]): void {
  const programs = [...new Set(['ip', 'iperf3', 'ping', 'ss', 'nft', 'getconf', ...scenarios.flatMap((s) => s.programs)])];
  try {
    requireRootAndPrograms('bench/throughput', programs);
  } catch (err) {
    const hint = haveProgram('iperf3') ? '' : ' — iperf3: `apt-get install iperf3` (Debian 12 ships 3.12)';
    throw new Error(`${(err as Error).message}${hint}`);
  }
  if (scenarios.some((s) => s.id !== 'plain') && !existsSync('/dev/net/tun')) {
    throw new Error('bench/throughput: /dev/net/tun is missing (kernel-libipsec and tunsec need TUN devices)');
  }
}

async function makePki(): Promise<BenchPki> {
  const ca = createCa({ subject: 'C=CH, O=tunsec bench, CN=Bench CA', key: 'rsa3072' });
  const host = (cn: string) => issueCertificate(ca, { subject: `C=CH, O=tunsec bench, CN=${cn}`, key: 'rsa2048', subjectAltNames: { dns: [`${cn}.ikev2.test`] } });
  return { caPem: ca.certificatePem, moon: host('moon'), sun: host('sun') };
}

const fmtRun = (key: TestKey, r: Awaited<ReturnType<typeof iperf3>>): string => {
  if (!r.ok) return `${testTitle[key]}: failed: ${r.error}`;
  const extra = key === 'udp' ? `loss ${r.udpLossPct?.toFixed(2)} %, jitter ${r.udpJitterMs?.toFixed(3)} ms` : `retr ${r.retransmits}`;
  const cpu = Object.entries(r.daemonCpuPct).map(([l, v]) => `${l} ${v}%`);
  const drops = r.udpRcvbufErrors && r.udpRcvbufErrors.client + r.udpRcvbufErrors.server > 0 ? `; UDP rcvbuf drops A ${r.udpRcvbufErrors.client}, B ${r.udpRcvbufErrors.server}` : '';
  return `${testTitle[key]}: ${r.recvMbps} Mb/s (${extra}${cpu.length ? `; cpu ${cpu.join(', ')}` : ''}${drops})`;
};

async function runScenario(s: Scenario, o: BenchOptions, pki: BenchPki, cleanups: Cleanups, workDir: string): Promise<ScenarioResult> {
  const res: ScenarioResult = { id: s.id, title: s.title, description: s.description, status: 'ok', warnings: [], runs: { ping: [] }, rows: [] };
  const tag = `[${s.id}]`;
  log(`${tag} setting up: ${s.description}`);
  let pending: Promise<unknown> = Promise.resolve();
  // Registered before setup starts: a signal during setup waits for it to settle, then undoes it.
  const teardown = cleanups.add(`scenario ${s.id}`, async () => {
    await settle(pending, 60_000);
    res.warnings.push(...(await s.teardown()));
  });
  try {
    const t0 = performance.now();
    let path: ScenarioPath;
    try {
      const p = s.setup({ cleanups, pki, log });
      pending = p;
      path = await p;
    } catch (err) {
      const msg = (err as Error).message;
      res.status = err instanceof ScenarioUnavailable ? 'unavailable' : 'failed';
      res.reason = `setup: ${msg.length > 1500 ? `${msg.slice(0, 1500)}…` : msg}`;
      res.short_reason = `setup: ${msg.split('\n')[0]!.slice(0, 160)}`;
      log(`${tag} ${res.status}: ${res.reason}`);
      return res;
    }
    res.setup_sec = Math.round(performance.now() - t0) / 1000;
    res.details = path.details;

    await installWireCounters(path);
    const check = await checkPath(path, s.wire);
    res.path_check = { route: check.route, ...(check.mtu ? { mtu: check.mtu } : {}), ping: check.ping, counters: check.counters };
    if (check.problem) {
      if (s.optional) {
        res.status = 'unavailable';
        const daemonLog = s instanceof TunsecPair ? s.logTail() : '';
        res.reason = `SAs are up, but ${check.problem}: the datapath does not bring traffic through yet${daemonLog ? `; daemon errors: ${daemonLog}` : ''}`;
        res.short_reason =
          check.ping.received === 0 ? 'SAs up, but no ping answer through them' : `SAs up, but traffic ${s.wire === 'esp' ? 'is not raw ESP' : 'is not ESP-in-UDP'} on the wire (cleartext: ${check.counters.clear_icmp} of ${check.ping.transmitted} pings)`;
      } else {
        res.status = 'failed';
        res.reason = `path check: ${check.problem}`;
        res.short_reason = `path check: ${check.problem.split(' (')[0]}`;
      }
      log(`${tag} ${res.status}: ${res.reason}`);
      return res;
    }
    log(`${tag} up in ${res.setup_sec} s; path: ${check.route}; ${s.wire} on the wire confirmed`);

    // Warm-up (not recorded): JIT-compiled datapaths (tunsec) and TCP/socket buffers reach steady state first.
    if (o.warmupSec > 0) {
      const w = await iperf3(path, { durationSec: o.warmupSec, streams: 1 }, [], cleanups, workDir);
      log(`${tag} warm-up ${o.warmupSec} s: ${w.ok ? `${w.recvMbps} Mb/s` : `failed: ${w.error}`}`);
    }
    const before = await readWireCounters(path);
    const tests: Array<[TestKey, IperfOptions]> = [
      ['tcp1', { durationSec: o.durationSec, streams: 1 }],
      ['tcp4', { durationSec: o.durationSec, streams: 4 }],
    ];
    if (o.udpRate) tests.push(['udp', { durationSec: o.durationSec, streams: 1, udpRate: o.udpRate, udpLength: o.udpLength }]);
    for (let rep = 1; rep <= o.reps; rep++) {
      cleanups.checkAborted();
      const p = await ping(path, o.pingCount);
      res.runs.ping.push(p);
      log(`${tag} rep ${rep}/${o.reps} ping: ${p.avgMs !== undefined ? `avg ${p.avgMs} ms (min ${p.minMs}, max ${p.maxMs})` : 'no answer'}, loss ${p.lossPct} %`);
      for (const [key, io] of tests) {
        cleanups.checkAborted();
        const r = await iperf3(path, io, path.daemons, cleanups, workDir);
        (res.runs[key] ??= []).push(r);
        log(`${tag} rep ${rep}/${o.reps} ${fmtRun(key, r)}`);
      }
    }
    res.wire_during_measurements = diffCounters(await readWireCounters(path), before);
    const w = res.wire_during_measurements;
    const leaked = w.clear_icmp + w.clear_tcp + w.clear_udp;
    if (s.wire !== 'cleartext' && leaked > 0) {
      res.status = 'failed';
      res.reason = `${leaked} packets to ${path.target} left ${path.wire} in the CLEAR during the measurements (SA gone?): the numbers are not IPsec numbers`;
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
    if (res.status !== 'ok') log(`${tag} ${res.status}: ${res.reason}`);
    return res;
  } catch (err) {
    res.status = 'failed';
    res.reason = (err as Error).message;
    log(`${tag} failed: ${res.reason}`);
    return res;
  } finally {
    await teardown().catch((err: unknown) => res.warnings.push(`teardown: ${(err as Error).message}`));
    res.rows = scenarioRows(res);
    for (const w of res.warnings) log(`${tag} warning: ${w}`);
  }
}

async function main(): Promise<number> {
  const started = performance.now();
  const o = parseOptions(process.argv.slice(2));
  const scenarios = selectScenarios(o);
  requirePrerequisites(scenarios);
  const cleanups = new Cleanups();
  cleanups.installSignalHandlers(log);
  const workDir = mkdtempSync('/tmp/tpbench-');
  cleanups.add('work directory', async () => rmSync(workDir, { recursive: true, force: true }));
  const date = new Date().toISOString();
  const script = relative(process.cwd(), process.argv[1] ?? 'bench/throughput.ts') || 'bench/throughput.ts';
  const command =
    process.env.npm_lifecycle_event === 'bench' ? 'npm run bench' : ['node', ...process.execArgv, script, ...process.argv.slice(2)].join(' ');
  try {
    const machine = await machineFacts();
    log(
      `throughput bench (${o.quick ? 'quick' : 'full'}: ${o.reps} rep(s) × ${o.durationSec} s; scenarios ${scenarios.map((s) => s.id).join(', ')}) on ${machine.cpus} cores, ${machine.strongswan}`,
    );
    const pki = await makePki();
    const results: ScenarioResult[] = [];
    for (const s of scenarios) {
      if (cleanups.aborted) break;
      results.push(await runScenario(s, o, pki, cleanups, workDir));
    }
    if (cleanups.aborted) {
      log(`interrupted by ${cleanups.aborted}: no results written`);
      return signalExitCodes[cleanups.aborted] ?? 1;
    }
    machine.loadavg_end = loadavg().map((l) => l.toFixed(2)).join(' ');
    // Only scenarios whose path held: a failed scenario keeps its rows in its own entry, for post-mortems.
    const rows: BenchRow[] = results.filter((r) => r.status === 'ok').flatMap((r) => r.rows);
    const report: Report = {
      bench: 'throughput',
      date,
      command,
      options: o,
      machine,
      scenarios: results,
      ratios: ratios(results, 'strongswan-libipsec', 'plain', TARGET_RATIO),
      rows,
      duration_sec: Math.round((performance.now() - started) / 1000),
    };
    const out = join(repo, 'bench/results');
    mkdirSync(out, { recursive: true });
    const json = JSON.stringify(report, null, 2) + '\n';
    writeFileSync(join(out, `throughput-${date.replace(/[:.]/g, '-')}.json`), json);
    writeFileSync(join(out, 'throughput-latest.json'), json);
    const md = markdown(report);
    writeFileSync(join(out, 'throughput-latest.md'), md);
    process.stdout.write(md);
    const bad = results.filter((r) => r.status === 'failed');
    for (const b of bad) log(`FAILED ${b.id}: ${b.reason}`);
    return bad.length ? 1 : 0;
  } finally {
    const errors = await cleanups.runAll();
    for (const e of errors) log(`cleanup: ${e}`);
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    const msg = (err as Error).message;
    log(msg.startsWith('bench/throughput') ? msg : `bench/throughput: ${msg}`);
    process.exit(1);
  },
);
