/**
 * Results of the throughput bench: BenchRows (bench/stats.ts) per scenario,
 * the tunsec/libipsec ratios, and the markdown page.
 */
import { markdownTable, summarize, type BenchRow } from '../stats.js';
import type { IperfRun, PingRun, WireCounters } from './measure.js';
import { row, THROUGHPUT_METRICS, type ResultRow } from './results.js';

export type TestKey = 'tcp1' | 'tcp4' | 'udp1400' | 'udp64';
export const TEST_KEYS: TestKey[] = ['tcp1', 'tcp4', 'udp1400', 'udp64'];

export interface ScenarioResult {
  id: string;
  title: string;
  description: string;
  status: 'ok' | 'unavailable' | 'failed';
  reason?: string;
  /** One line for the summary table. */
  short_reason?: string;
  details?: Record<string, unknown>;
  /** The ping + wire-counter check before measuring. */
  path_check?: { route: string; mtu?: number; ping: PingRun; counters: WireCounters };
  /** Packets on the client's veth during all measurements (cleartext to the target must stay 0 for IPsec). */
  wire_during_measurements?: WireCounters;
  setup_sec?: number;
  warnings: string[];
  runs: { ping: PingRun[]; /** RSS of the IPsec processes (all of them, MiB) after each repetition's TCP runs. */ rss_mb?: number[] } & Partial<
    Record<TestKey, IperfRun[]>
  >;
  rows: BenchRow[];
}

export interface BenchOptions {
  quick: boolean;
  durationSec: number;
  reps: number;
  pingCount: number;
  /** iperf3 -b for the UDP tests; '0' = as fast as the sender can (saturating). */
  udpRate: string | undefined;
  udpLength: number;
  /** An unrecorded TCP run before the measurements of each scenario. */
  warmupSec: number;
  only: string[] | undefined;
  /** Ping interval (s): the RTT percentiles come from every echo reply. */
  pingIntervalSec: number;
  handshakes: { total: number; batch: number; concurrency: number; warmup: number; cases?: string[] } | undefined;
  cpuProf: boolean;
  /** Stop starting new repetitions after this many seconds (the bench stays bounded in time). */
  budgetSec: number;
}

export interface Ratio {
  metric: string;
  numerator: string;
  denominator: string;
  value: number | null;
  note?: string;
}

export const testTitle: Record<TestKey, string> = {
  tcp1: 'TCP 1 stream',
  tcp4: 'TCP 4 streams',
  udp1400: 'UDP 1400-byte packets',
  udp64: 'UDP 64-byte packets',
};

/** IP packet sizes of the UDP tests; the iperf3 payload is 28 octets less (IPv4 + UDP headers). */
export const UDP_PACKET: Record<'udp1400' | 'udp64', number> = { udp1400: 1400, udp64: 64 };

/** Nearest-rank percentile. */
export function percentile(xs: number[], p: number): number | undefined {
  if (!xs.length) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

/** The issue-8 rows of one throughput case (case = scenario id); null rows with the reason when it did not run. */
export function throughputRows(s: ScenarioResult): ResultRow[] {
  if (s.status !== 'ok') {
    const why = { [s.status === 'unavailable' ? 'unavailable' : 'failed']: s.short_reason ?? s.reason ?? s.status };
    return THROUGHPUT_METRICS.map((m) => row(s.id, m, [], why));
  }
  const ok = (k: TestKey): Array<IperfRun | undefined> => (s.runs[k] ?? []).map((r) => (r.ok ? r : undefined));
  const rows: ResultRow[] = [
    row(
      s.id,
      'tcp1_mbps',
      ok('tcp1').map((r) => r?.recvMbps),
    ),
    row(
      s.id,
      'tcp4_mbps',
      ok('tcp4').map((r) => r?.recvMbps),
    ),
    row(
      s.id,
      'udp1400_pps',
      ok('udp1400').map((r) => r?.udpRecvPps),
    ),
    row(
      s.id,
      'udp1400_loss_pct',
      ok('udp1400').map((r) => r?.udpLossPct),
    ),
    row(
      s.id,
      'udp64_pps',
      ok('udp64').map((r) => r?.udpRecvPps),
    ),
    row(
      s.id,
      'udp64_loss_pct',
      ok('udp64').map((r) => r?.udpLossPct),
    ),
    row(
      s.id,
      'ping_p50_ms',
      s.runs.ping.map((p) => percentile(p.rttsMs ?? [], 50)),
    ),
    row(
      s.id,
      'ping_p99_ms',
      s.runs.ping.map((p) => percentile(p.rttsMs ?? [], 99)),
    ),
  ];
  // CPU s per GB: both IPsec processes' utime+stime over the TCP runs of a repetition ÷ the GB (10^9 octets) received.
  const reps = Math.max(s.runs.tcp1?.length ?? 0, s.runs.tcp4?.length ?? 0);
  const cpu: Array<number | undefined> = [];
  for (let i = 0; i < reps; i++) {
    const runs = [s.runs.tcp1?.[i], s.runs.tcp4?.[i]].filter((r): r is IperfRun => !!r?.ok && r.daemonCpuSec !== undefined && !!r.recvBytes);
    const bytes = runs.reduce((a, r) => a + r.recvBytes!, 0);
    cpu.push(runs.length ? runs.reduce((a, r) => a + r.daemonCpuSec!, 0) / (bytes / 1e9) : undefined);
  }
  const noDaemon = { unavailable: 'no IPsec process: the work is done in the kernel (softirq), not attributable per process' };
  rows.push(cpu.some((x) => x !== undefined) ? row(s.id, 'cpu_s_per_gb', cpu) : row(s.id, 'cpu_s_per_gb', [], noDaemon));
  rows.push(s.runs.rss_mb?.length ? row(s.id, 'rss_mb', s.runs.rss_mb) : row(s.id, 'rss_mb', [], noDaemon));
  return rows;
}

/** BenchRows of one scenario: medians/min/max over the repetitions that worked. */
export function scenarioRows(s: ScenarioResult): BenchRow[] {
  const rows: BenchRow[] = [];
  const add = (metric: string, unit: string, samples: Array<number | undefined>): void => {
    const xs = samples.filter((x): x is number => x !== undefined && Number.isFinite(x));
    if (xs.length) rows.push(summarize(s.title, metric, unit, xs));
  };
  for (const key of TEST_KEYS) {
    const ok = (s.runs[key] ?? []).filter((r) => r.ok);
    if (!ok.length) continue;
    add(
      `${key}_recv_mbps`,
      'Mb/s',
      ok.map((r) => r.recvMbps),
    );
    add(
      `${key}_send_mbps`,
      'Mb/s',
      ok.map((r) => r.sendMbps),
    );
    if (key.startsWith('udp')) {
      add(
        'udp_loss_pct',
        '%',
        ok.map((r) => r.udpLossPct),
      );
      add(
        'udp_jitter_ms',
        'ms',
        ok.map((r) => r.udpJitterMs),
      );
    } else {
      add(
        `${key}_retransmits`,
        'segments',
        ok.map((r) => r.retransmits),
      );
    }
    add(
      `${key}_rcvbuf_drops_B`,
      'datagrams',
      ok.map((r) => r.udpRcvbufErrors?.server),
    );
    add(
      `${key}_rcvbuf_drops_A`,
      'datagrams',
      ok.map((r) => r.udpRcvbufErrors?.client),
    );
    const labels = [...new Set(ok.flatMap((r) => Object.keys(r.daemonCpuPct)))];
    for (const label of labels)
      add(
        `${key}_cpu_pct: ${label}`,
        '% of a core',
        ok.map((r) => r.daemonCpuPct[label]),
      );
  }
  const pings = s.runs.ping.filter((p) => p.avgMs !== undefined);
  add(
    'ping_avg_ms',
    'ms',
    pings.map((p) => p.avgMs),
  );
  add(
    'ping_min_ms',
    'ms',
    pings.map((p) => p.minMs),
  );
  add(
    'ping_max_ms',
    'ms',
    pings.map((p) => p.maxMs),
  );
  add(
    'ping_loss_pct',
    '%',
    s.runs.ping.map((p) => p.lossPct),
  );
  return rows;
}

const rowOf = (s: ScenarioResult | undefined, metric: string): BenchRow | undefined =>
  s?.status === 'ok' ? s.rows.find((r) => r.metric === metric) : undefined;

/** tunsec ÷ strongSwan libipsec (the ≥ 2.5× target) and each IPsec path ÷ plain veth. */
export function ratios(results: ScenarioResult[], baselineId: string, plainId: string, target: number): Ratio[] {
  const base = results.find((r) => r.id === baselineId);
  const plain = results.find((r) => r.id === plainId);
  const out: Ratio[] = [];
  for (const s of results.filter((r) => r.id.startsWith('tunsec'))) {
    for (const metric of ['tcp1_recv_mbps', 'tcp4_recv_mbps']) {
      const n = rowOf(s, metric);
      const d = rowOf(base, metric);
      const value = n && d && d.median > 0 ? Math.round((n.median / d.median) * 100) / 100 : null;
      let note: string;
      if (s.status !== 'ok') note = `${s.title} ${s.status === 'unavailable' ? 'not available' : 'failed'}`;
      else if (!d) note = 'no libipsec baseline in this run';
      else note = value !== null && value >= target ? `meets the ≥${target}× target` : `below the ≥${target}× target`;
      out.push({ metric, numerator: s.id, denominator: baselineId, value, note });
    }
  }
  for (const s of results.filter((r) => r.id !== plainId && r.status === 'ok')) {
    const n = rowOf(s, 'tcp1_recv_mbps');
    const d = rowOf(plain, 'tcp1_recv_mbps');
    if (n && d && d.median > 0)
      out.push({ metric: 'tcp1_recv_mbps', numerator: s.id, denominator: plainId, value: Math.round((n.median / d.median) * 1000) / 1000 });
  }
  return out;
}

const fmt = (n: number): string => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toPrecision(3));
const cell = (row: BenchRow | undefined, suffix = ''): string =>
  row ? `**${fmt(row.median)}**${suffix}${row.samples.length > 1 ? ` (${fmt(row.min)}–${fmt(row.max)})` : ''}` : '–';

export interface Report {
  bench: 'throughput';
  date: string;
  command: string;
  options: BenchOptions;
  machine: Record<string, string | number>;
  scenarios: ScenarioResult[];
  ratios: Ratio[];
  rows: BenchRow[];
  duration_sec: number;
}

export function markdown(rep: Report): string {
  const o = rep.options;
  const m = rep.machine;
  const lines: string[] = [];
  lines.push('# Throughput: iperf3 over IPsec between two network namespaces', '');
  lines.push(`\`${rep.command}\` — ${rep.date}, took ${Math.round(rep.duration_sec)} s`, '');
  lines.push(
    `Machine: ${m.cpu_model} × ${m.cpus} cores, ${m.memory_gib} GiB, kernel ${m.kernel}, Node ${m.node}, ${m.strongswan}, ${m.iperf3}, tunsec ${m.tunsec_commit}; load at start ${m.loadavg_start}, at end ${m.loadavg_end}.`,
    '',
  );
  lines.push(
    `Each measurement ${o.reps}× (median, min–max in brackets): iperf3 TCP ${o.durationSec} s with 1 and 4 streams` +
      (o.udpRate
        ? `, UDP ${o.durationSec} s at ${o.udpRate === '0' ? 'the highest rate the sender reaches' : `${o.udpRate}b/s`} with 1400- and 64-byte IP packets`
        : '') +
      `, ping ×${o.pingCount} (0.2 s apart, idle link), after an unrecorded ${o.warmupSec} s TCP warm-up per scenario. Traffic goes namespace A → B (A sends, B receives); Mb/s = what the receiver got. ` +
      'Daemon CPU = utime+stime of the daemon processes (all threads) over the run, in % of one core; the machine has ' +
      `${m.cpus} cores shared by iperf3, both daemons and the kernel. UDP rcvbuf drops = the receiving namespace's \`Udp RcvbufErrors\` over the run ` +
      '(ESP-in-UDP datagrams the receiving daemon did not read in time; with TCP they match the retransmits).',
    '',
  );
  lines.push(
    '| scenario | TCP 1 stream Mb/s | TCP 4 streams Mb/s | ' +
      (o.udpRate ? `UDP 1400 B @${o.udpRate === '0' ? 'max' : o.udpRate} Mb/s, loss % | ` : '') +
      'ping avg ms | daemon CPU, TCP 1 stream (% core) | UDP rcvbuf drops in B, TCP 1 stream |',
  );
  lines.push('| --- | ---: | ---: | ' + (o.udpRate ? '---: | ' : '') + '---: | --- | ---: |');
  for (const s of rep.scenarios) {
    if (s.status !== 'ok') {
      const what = s.status === 'unavailable' ? 'not available' : 'FAILED';
      const why = (s.short_reason ?? s.reason ?? '').replace(/\|/g, '/').replace(/\n/g, ' ').slice(0, 200);
      lines.push(`| ${s.title} | ${what}: ${why} (see below) |` + ' |'.repeat(o.udpRate ? 5 : 4));
      continue;
    }
    const cpu = s.rows
      .filter((r) => r.metric.startsWith('tcp1_cpu_pct: '))
      .map((r) => `${r.metric.slice('tcp1_cpu_pct: '.length)} ${fmt(r.median)}`)
      .join(', ');
    const udp = o.udpRate ? `${cell(rowOf(s, 'udp1400_recv_mbps'))}, ${cell(rowOf(s, 'udp1400_loss_pct'))} | ` : '';
    lines.push(
      `| ${s.title} | ${cell(rowOf(s, 'tcp1_recv_mbps'))} | ${cell(rowOf(s, 'tcp4_recv_mbps'))} | ${udp}${cell(rowOf(s, 'ping_avg_ms'))} | ${cpu || '–'} | ${cell(rowOf(s, 'tcp1_rcvbuf_drops_B'))} |`,
    );
  }
  lines.push('');
  const tunsecRatios = rep.ratios.filter((r) => r.numerator.startsWith('tunsec') && r.denominator !== 'plain');
  if (tunsecRatios.length) {
    lines.push('## tunsec / strongSwan kernel-libipsec (target ≥ 2.5×)', '');
    lines.push('| tunsec scenario | metric | ratio | |', '| --- | --- | ---: | --- |');
    for (const r of tunsecRatios) lines.push(`| ${r.numerator} | ${r.metric} | ${r.value === null ? 'n/a' : `${r.value}×`} | ${r.note ?? ''} |`);
    lines.push('');
  }
  const vsPlain = rep.ratios.filter((r) => r.denominator === 'plain');
  if (vsPlain.length) {
    lines.push(`Fraction of the plain veth (TCP 1 stream): ${vsPlain.map((r) => `${r.numerator} ${r.value}`).join(', ')}.`, '');
  }
  lines.push('## Scenarios', '');
  for (const s of rep.scenarios) {
    lines.push(`- **${s.id}** — ${s.description}. Status: ${s.status}${s.reason ? ` — ${s.reason.replace(/\n/g, ' ').slice(0, 600)}` : ''}.`);
    if (s.details) lines.push(`  Set up in ${s.setup_sec} s: ${JSON.stringify(s.details)}.`);
    if (s.path_check)
      lines.push(
        `  Path check: ${s.path_check.route}${s.path_check.mtu ? ` (device MTU ${s.path_check.mtu})` : ''}; ping ${s.path_check.ping.received}/${s.path_check.ping.transmitted}; on the wire ${JSON.stringify(s.path_check.counters)}.`,
      );
    if (s.wire_during_measurements) lines.push(`  On the client's veth during the measurements: ${JSON.stringify(s.wire_during_measurements)}.`);
    const errs = TEST_KEYS.flatMap((k) => (s.runs[k] ?? []).filter((r) => !r.ok).map((r) => `${k}: ${r.error}`));
    if (errs.length) lines.push(`  Failed runs: ${errs.join('; ')}.`);
    for (const w of s.warnings) lines.push(`  Warning: ${w}`);
  }
  lines.push('', '## All rows', '', markdownTable(rep.rows), '');
  return lines.join('\n');
}
