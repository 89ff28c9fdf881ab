/**
 * The result files of `npm run bench` (issue 8): rows `{case, metric, unit, median, min, max, samples}`,
 * ratios between cases measured in the same run, a markdown page and an SVG bar chart of the
 * throughput cases. Pure functions (no measuring) so that test/bench/ can check them on a fixture;
 * `writeResults` is the only one that touches the disk.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { summarize } from '../stats.js';

export type Metric =
  | 'tcp1_mbps'
  | 'tcp4_mbps'
  | 'udp1400_pps'
  | 'udp1400_loss_pct'
  | 'udp64_pps'
  | 'udp64_loss_pct'
  | 'ping_p50_ms'
  | 'ping_p99_ms'
  | 'cpu_s_per_gb'
  | 'cpu_a_s_per_gb'
  | 'cpu_b_s_per_gb'
  | 'rss_mb'
  | 'handshakes_per_s'
  | 'kb_per_sa'
  | 'kb_per_sa_slope';

export const UNITS: Record<Metric, string> = {
  tcp1_mbps: 'Mbit/s',
  tcp4_mbps: 'Mbit/s',
  udp1400_pps: 'packets/s',
  udp1400_loss_pct: '%',
  udp64_pps: 'packets/s',
  udp64_loss_pct: '%',
  ping_p50_ms: 'ms',
  ping_p99_ms: 'ms',
  cpu_s_per_gb: 'CPU s/GB',
  /** UML rows (bench/uml.ts): host CPU of side A (sender) / side B (receiver) alone. */
  cpu_a_s_per_gb: 'CPU s/GB',
  cpu_b_s_per_gb: 'CPU s/GB',
  rss_mb: 'MiB',
  handshakes_per_s: 'SAs/s',
  kb_per_sa: 'KiB/SA',
  kb_per_sa_slope: 'KiB/SA',
};

export const THROUGHPUT_METRICS: Metric[] = [
  'tcp1_mbps',
  'tcp4_mbps',
  'udp1400_pps',
  'udp1400_loss_pct',
  'udp64_pps',
  'udp64_loss_pct',
  'ping_p50_ms',
  'ping_p99_ms',
  'cpu_s_per_gb',
  'rss_mb',
];
export const HANDSHAKE_METRICS: Metric[] = ['handshakes_per_s', 'kb_per_sa', 'kb_per_sa_slope'];

/** One result row. A case that could not run has null numbers, no samples and `unavailable`/`failed`: never a made-up number. */
export interface ResultRow {
  case: string;
  metric: string;
  unit: string;
  median: number | null;
  min: number | null;
  max: number | null;
  samples: number[];
  unavailable?: string;
  failed?: string;
}

export interface CaseStatus {
  case: string;
  /** `uml`: the kernel rows under User-Mode Linux (bench/uml.ts), tabled apart from the native throughput cases. */
  kind: 'throughput' | 'handshake' | 'uml';
  title: string;
  status: 'ok' | 'unavailable' | 'failed';
  reason?: string;
}

export interface RatioSpec {
  metric: Metric;
  numerator: string;
  denominator: string;
  /** Goal for the ratio: at least this (or, with `atMost`, at most this), e.g. issue 19's ≥ 3.5× for tcp1 tunsec-transport / strongswan-libipsec. */
  target?: number;
  /** The goal is an upper bound (CPU per GB, latency). */
  atMost?: boolean;
}

export interface RatioResult extends RatioSpec {
  name: string;
  /** median(numerator) / median(denominator); null when either side has no number. */
  value: number | null;
  /** Per-repetition ratios (rep i of the numerator ÷ rep i of the denominator: the same interleaved round). */
  paired: number[];
  meets_target?: boolean;
  note?: string;
}

const round = (x: number, digits = 3): number => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};

/** A row from samples (rounded), or null numbers with the reason when there are none. */
export function row(caseName: string, metric: Metric, samples: Array<number | undefined>, missing?: { unavailable?: string; failed?: string }): ResultRow {
  const xs = samples.filter((x): x is number => x !== undefined && Number.isFinite(x)).map((x) => round(x, 4));
  if (!xs.length || missing)
    return { case: caseName, metric, unit: UNITS[metric], median: null, min: null, max: null, samples: [], ...(missing ?? { failed: 'no sample' }) };
  const s = summarize(caseName, metric, UNITS[metric], xs);
  return { ...s, median: round(s.median, 4) };
}

export function ratioName(s: RatioSpec): string {
  return `${s.metric.replace(/_(mbps|pps|ms|mb|per_s)$/, '')} ${s.numerator} / ${s.denominator}`;
}

/** The ratios of `specs` over `rows`. */
export function computeRatios(rows: ResultRow[], specs: RatioSpec[]): RatioResult[] {
  const find = (c: string, m: string): ResultRow | undefined => rows.find((r) => r.case === c && r.metric === m);
  return specs.map((s) => {
    const n = find(s.numerator, s.metric);
    const d = find(s.denominator, s.metric);
    const base = { ...s, name: ratioName(s) };
    const why = (r: ResultRow | undefined, c: string): string | undefined =>
      !r
        ? `${c}: not measured`
        : r.median === null
          ? `${c}: ${r.unavailable ? `unavailable: ${r.unavailable}` : `failed: ${r.failed ?? 'no number'}`}`
          : r.median === 0 && r === d
            ? `${c}: median is 0`
            : undefined;
    const note = why(n, s.numerator) ?? why(d, s.denominator);
    if (note || !n || !d || n.median === null || d.median === null) return { ...base, value: null, paired: [], note: note ?? 'no number' };
    const value = round(n.median / d.median);
    const paired = n.samples.length === d.samples.length ? n.samples.map((x, i) => round(x / d.samples[i]!)).filter(Number.isFinite) : [];
    return { ...base, value, paired, ...(s.target !== undefined ? { meets_target: s.atMost ? value <= s.target : value >= s.target } : {}) };
  });
}

/** Issue 19's goals, as ratios of one run: TCP 1 stream against strongSwan libipsec, CPU per GB, ping p50, handshakes. */
export const GOALS = {
  tcp1Transport: 3.5,
  tcp1TunnelUdp: 5,
  cpuPerGb: 0.2,
  pingP50: 1,
  handshakesTwoProcesses: 2.5,
} as const;

/** The ratios the report shows (issue 8): tunsec vs libipsec, everything vs plain and vs the kernel, handshakes. */
export function defaultRatioSpecs(): RatioSpec[] {
  const tunsec = ['tunsec-transport', 'tunsec-tunnel-udp', 'tunsec-strongswan'];
  const tcp1Goal: Record<string, number> = { 'tunsec-transport': GOALS.tcp1Transport, 'tunsec-tunnel-udp': GOALS.tcp1TunnelUdp };
  const specs: RatioSpec[] = [];
  for (const m of ['tcp1_mbps', 'tcp4_mbps'] as const) {
    for (const t of tunsec)
      specs.push({
        metric: m,
        numerator: t,
        denominator: 'strongswan-libipsec',
        ...(m === 'tcp1_mbps' && tcp1Goal[t] !== undefined ? { target: tcp1Goal[t] } : {}),
      });
  }
  for (const m of ['udp1400_pps', 'udp64_pps', 'rss_mb'] as const) specs.push({ metric: m, numerator: 'tunsec-transport', denominator: 'strongswan-libipsec' });
  for (const t of ['tunsec-transport', 'tunsec-tunnel-udp']) {
    specs.push({ metric: 'cpu_s_per_gb', numerator: t, denominator: 'strongswan-libipsec', target: GOALS.cpuPerGb, atMost: true });
    specs.push({ metric: 'ping_p50_ms', numerator: t, denominator: 'strongswan-libipsec', target: GOALS.pingP50, atMost: true });
  }
  for (const c of ['strongswan-libipsec', ...tunsec, 'kernel-xfrm']) specs.push({ metric: 'tcp1_mbps', numerator: c, denominator: 'plain' });
  specs.push({ metric: 'tcp1_mbps', numerator: 'tunsec-transport', denominator: 'kernel-xfrm' });
  specs.push({ metric: 'handshakes_per_s', numerator: 'tunsec-ike', denominator: 'strongswan-ike' });
  specs.push({ metric: 'kb_per_sa', numerator: 'tunsec-ike', denominator: 'strongswan-ike' });
  specs.push({ metric: 'kb_per_sa_slope', numerator: 'tunsec-ike', denominator: 'strongswan-ike' });
  specs.push({ metric: 'handshakes_per_s', numerator: 'tunsec-ike-2proc', denominator: 'strongswan-ike', target: GOALS.handshakesTwoProcesses });
  specs.push({ metric: 'handshakes_per_s', numerator: 'tunsec-ike-2proc', denominator: 'tunsec-ike' });
  return specs;
}

export interface QuietReport {
  loadavg_before: number[];
  loadavg_after: number[];
  /** Whole-machine CPU busy % over a few seconds before starting / after finishing (our own processes idle). */
  busy_pct_before?: number;
  busy_pct_after?: number;
  cpus: number;
  quiet_enough: boolean;
  verdict: string;
}

/** Quiet enough = before and after, the 1-minute load stays under half the cores and the machine is < 25 % busy without us. */
export function quietVerdict(q: Omit<QuietReport, 'quiet_enough' | 'verdict'>): QuietReport {
  const problems: string[] = [];
  const half = q.cpus / 2;
  for (const [when, l, b] of [
    ['before', q.loadavg_before, q.busy_pct_before],
    ['after', q.loadavg_after, q.busy_pct_after],
  ] as const) {
    if ((l[0] ?? 0) > half) problems.push(`load ${when} ${l[0]!.toFixed(2)} > ${half} (half the cores)`);
    if (b !== undefined && b > 25) problems.push(`machine ${b} % busy ${when} (others)`);
  }
  return {
    ...q,
    quiet_enough: problems.length === 0,
    verdict: problems.length ? `NOT quiet: ${problems.join('; ')} — compare the ratios (same run, interleaved), not the absolute numbers` : 'quiet enough',
  };
}

export interface BenchReport {
  bench: 'tunsec';
  date: string;
  command: string;
  options: Record<string, unknown>;
  machine: Record<string, string | number>;
  quiet: QuietReport;
  cases: CaseStatus[];
  rows: ResultRow[];
  ratios: RatioResult[];
  duration_sec: number;
  /** Raw per-case details (path checks, per-run numbers), for post-mortems. */
  details?: Record<string, unknown>;
}

// ---------------------------------------------------------------- markdown

export function fmt(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  const a = Math.abs(n);
  if (a >= 1000) return Math.round(n).toLocaleString('en-US').replace(/,/g, ' ');
  if (a >= 100) return n.toFixed(0);
  if (a >= 10) return n.toFixed(1);
  if (a === 0) return '0';
  return n.toPrecision(3);
}

const cell = (r: ResultRow | undefined): string =>
  !r
    ? ''
    : r.median === null
      ? r.unavailable
        ? 'unavailable'
        : 'failed'
      : r.samples.length > 1
        ? `**${fmt(r.median)}** (${fmt(r.min)}–${fmt(r.max)})`
        : `**${fmt(r.median)}**`;

/** The case × metric tables, the ratios, and the unavailable/failed reasons. */
export function markdownTables(report: Pick<BenchReport, 'rows' | 'ratios' | 'cases'>): string {
  const out: string[] = [];
  const tcases = report.cases.filter((c) => c.kind === 'throughput');
  const hcases = report.cases.filter((c) => c.kind === 'handshake');
  const get = (c: string, m: string): ResultRow | undefined => report.rows.find((r) => r.case === c && r.metric === m);
  const table = (cases: CaseStatus[], metrics: Metric[]): void => {
    out.push(`| case | ${metrics.map((m) => `${m} (${UNITS[m]})`).join(' | ')} |`);
    out.push(`| --- | ${metrics.map(() => '---:').join(' | ')} |`);
    for (const c of cases) {
      if (c.status !== 'ok')
        out.push(
          `| ${c.case} | ${c.status}: ${(c.reason ?? '').replace(/\|/g, '\\|').replace(/\n/g, ' ').slice(0, 300)} |${metrics
            .slice(1)
            .map(() => ' |')
            .join('')}`,
        );
      else out.push(`| ${c.case} | ${metrics.map((m) => cell(get(c.case, m))).join(' | ')} |`);
    }
  };
  if (tcases.length) {
    table(tcases, ['tcp1_mbps', 'tcp4_mbps', 'udp1400_pps', 'udp1400_loss_pct', 'udp64_pps', 'udp64_loss_pct']);
    out.push('');
    table(tcases, ['ping_p50_ms', 'ping_p99_ms', 'cpu_s_per_gb', 'rss_mb']);
    out.push('');
  }
  if (hcases.length) {
    table(hcases, HANDSHAKE_METRICS);
    out.push('');
  }
  if (report.ratios.length) {
    out.push('| ratio (same run) | value | per repetition | |', '| --- | ---: | --- | --- |');
    for (const r of report.ratios) {
      const goal =
        r.target !== undefined && r.value !== null ? `${r.meets_target ? 'meets' : 'MISSES'} the ${r.atMost ? '≤' : '≥'} ${r.target}× goal` : (r.note ?? '');
      out.push(
        `| ${r.name} | ${r.value === null ? '–' : `**${r.value < 0.1 ? r.value.toPrecision(2) : r.value.toFixed(2)}×**`} | ${r.paired.map((x) => x.toFixed(2)).join(', ')} | ${goal.replace(/\|/g, '\\|').slice(0, 200)} |`,
      );
    }
    out.push('');
  }
  return out.join('\n');
}

// ---------------------------------------------------------------- SVG

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * Horizontal bars of tcp1_mbps and tcp4_mbps per throughput case (median, min–max whisker).
 * The scale is linear up to the fastest IPsec case; a case beyond it (plain veth, ~100× faster)
 * gets a broken bar with its number. Unavailable/failed cases are named, with no bar.
 */
export function svgChart(rows: ResultRow[], cases: CaseStatus[], title = 'TCP throughput (iperf3, Mbit/s, median and min–max)'): string {
  const tcases = cases.filter((c) => c.kind === 'throughput');
  const metrics = [
    { m: 'tcp1_mbps', label: '1 stream', color: '#3b6ea5' },
    { m: 'tcp4_mbps', label: '4 streams', color: '#e0913a' },
  ];
  const get = (c: string, m: string): ResultRow | undefined => rows.find((r) => r.case === c && r.metric === m);
  const ipsecMax = Math.max(1, ...tcases.filter((c) => c.case !== 'plain').flatMap((c) => metrics.map((x) => get(c.case, x.m)?.max ?? 0)));
  const scaleMax = ipsecMax * 1.15;
  const [left, width, barH, gap, top] = [190, 520, 14, 14, 48];
  const groupH = metrics.length * barH + gap;
  const height = top + tcases.length * groupH + 40;
  const x = (v: number): number => left + (Math.min(v, scaleMax) / scaleMax) * width;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${left + width + 110}" height="${height}" viewBox="0 0 ${left + width + 110} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">${esc(title)}</text>`,
  ];
  metrics.forEach((mm, i) =>
    parts.push(`<rect x="${left + i * 110}" y="30" width="10" height="10" fill="${mm.color}"/><text x="${left + i * 110 + 14}" y="39">${esc(mm.label)}</text>`),
  );
  // Round tick steps (1, 2, 5 × 10^k), about five of them.
  const raw = scaleMax / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((k) => k * mag).find((k) => k >= raw) ?? raw;
  for (let v = 0; v <= scaleMax; v += step) {
    const tx = x(v);
    parts.push(`<line x1="${tx.toFixed(1)}" y1="${top - 4}" x2="${tx.toFixed(1)}" y2="${height - 30}" stroke="#ddd"/>`);
    parts.push(`<text x="${tx.toFixed(1)}" y="${height - 16}" text-anchor="middle" fill="#555">${fmt(v)}</text>`);
  }
  tcases.forEach((c, gi) => {
    const gy = top + gi * groupH;
    parts.push(`<text x="${left - 8}" y="${gy + barH + 4}" text-anchor="end">${esc(c.case)}</text>`);
    if (c.status !== 'ok') {
      parts.push(`<text x="${left + 6}" y="${gy + barH + 4}" fill="#a00">${esc(`${c.status}: ${(c.reason ?? '').split(/[;:\n]/)[0]!.slice(0, 70)}`)}</text>`);
      return;
    }
    metrics.forEach((mm, i) => {
      const r = get(c.case, mm.m);
      const y = gy + i * barH;
      if (!r || r.median === null) return;
      const broken = r.median > scaleMax;
      parts.push(`<rect x="${left}" y="${y}" width="${(x(r.median) - left).toFixed(1)}" height="${barH - 2}" fill="${mm.color}"/>`);
      if (broken) parts.push(`<path d="M${left + width - 30} ${y - 1} l6 ${barH} M${left + width - 24} ${y - 1} l6 ${barH}" stroke="#fff" stroke-width="3"/>`);
      if (!broken && r.min !== null && r.max !== null && r.max > r.min) {
        const yy = y + (barH - 2) / 2;
        parts.push(`<line x1="${x(r.min).toFixed(1)}" y1="${yy}" x2="${x(r.max).toFixed(1)}" y2="${yy}" stroke="#222"/>`);
      }
      parts.push(
        `<text x="${(x(broken ? scaleMax : (r.max ?? r.median)) + 4).toFixed(1)}" y="${y + barH - 3}" fill="#222">${fmt(r.median)}${broken ? ' (off scale)' : ''}</text>`,
      );
    });
  });
  parts.push(`<text x="${left + width}" y="${height - 2}" text-anchor="end" fill="#555">Mbit/s</text>`);
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

// ---------------------------------------------------------------- files

/** File-name-safe ISO timestamp. */
export const stamp = (iso: string): string => iso.replace(/[:.]/g, '-');

/**
 * Write `<dir>/<timestamp>.json`, `latest.json`, `latest.md` and `latest.svg`. Returns the paths.
 * `markdownPage` is the page around the tables (the caller knows the machine and the method).
 * A partial run (`--only`) passes `latest = 'partial-latest'` so that it does not replace the full run's files.
 */
export function writeResults(
  dir: string,
  report: BenchReport,
  markdownPage: string,
  latest = 'latest',
): { json: string; latest: string; md: string; svg: string } {
  mkdirSync(dir, { recursive: true });
  const json = JSON.stringify(report, null, 2) + '\n';
  const paths = {
    json: join(dir, `${stamp(report.date)}.json`),
    latest: join(dir, `${latest}.json`),
    md: join(dir, `${latest}.md`),
    svg: join(dir, `${latest}.svg`),
  };
  writeFileSync(paths.json, json);
  writeFileSync(paths.latest, json);
  writeFileSync(paths.md, markdownPage);
  writeFileSync(paths.svg, svgChart(report.rows, report.cases));
  return paths;
}
