/**
 * The result files of `npm run bench` (bench/throughput/results.ts) on a fixed
 * fixture: rows, ratios, the writer's files, the markdown and the SVG. No timings.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { percentile, throughputRows, type ScenarioResult } from '../../bench/throughput/report.js';
import { selfTimes, updateNote, NOTE_END, NOTE_START } from '../../bench/throughput/profile.js';
import {
  computeRatios,
  defaultRatioSpecs,
  markdownTables,
  quietVerdict,
  row,
  svgChart,
  writeResults,
  type BenchReport,
  type CaseStatus,
  type ResultRow,
} from '../../bench/throughput/results.js';

const cases: CaseStatus[] = [
  { case: 'plain', kind: 'throughput', title: 'plain', status: 'ok' },
  { case: 'strongswan-libipsec', kind: 'throughput', title: 'libipsec', status: 'ok' },
  { case: 'tunsec-transport', kind: 'throughput', title: 'tunsec', status: 'ok' },
  { case: 'kernel-xfrm', kind: 'throughput', title: 'kernel', status: 'unavailable', reason: 'Requested AEAD algorithm not found' },
  { case: 'tunsec-ike', kind: 'handshake', title: 'tunsec ike', status: 'ok' },
  { case: 'strongswan-ike', kind: 'handshake', title: 'strongSwan ike', status: 'ok' },
];

const rows: ResultRow[] = [
  row('plain', 'tcp1_mbps', [20000, 22000, 21000]),
  row('strongswan-libipsec', 'tcp1_mbps', [200, 250, 240]),
  row('tunsec-transport', 'tcp1_mbps', [600, 500, 720]),
  row('strongswan-libipsec', 'tcp4_mbps', [250, 260, 0]),
  row('tunsec-transport', 'tcp4_mbps', [700, 650]),
  row('kernel-xfrm', 'tcp1_mbps', [], { unavailable: 'Requested AEAD algorithm not found' }),
  row('tunsec-ike', 'handshakes_per_s', [60, 80]),
  row('strongswan-ike', 'handshakes_per_s', [40, 40]),
];

function report(): BenchReport {
  return {
    bench: 'tunsec',
    date: '2026-11-23T12:00:00.000Z',
    command: 'npm run bench -- --quick',
    options: { quick: true },
    machine: { cpus: 2 },
    quiet: quietVerdict({ loadavg_before: [0.2, 0.3, 0.4], loadavg_after: [0.3, 0.3, 0.4], busy_pct_before: 3, busy_pct_after: 4, cpus: 2 }),
    cases,
    rows,
    ratios: computeRatios(rows, defaultRatioSpecs()),
    duration_sec: 200,
  };
}

describe('result rows', () => {
  it('summarises samples into median, min, max and keeps the samples', () => {
    expect(row('x', 'tcp1_mbps', [3, 1, 2, undefined, Number.NaN])).toEqual({
      case: 'x',
      metric: 'tcp1_mbps',
      unit: 'Mbit/s',
      median: 2,
      min: 1,
      max: 3,
      samples: [3, 1, 2],
    });
    expect(row('x', 'tcp4_mbps', [4, 1]).median).toBe(2.5);
  });

  it('never invents a number for a case that could not run', () => {
    const r = row('kernel-xfrm', 'tcp1_mbps', [123], { unavailable: 'no ESP in this kernel' });
    expect(r).toMatchObject({ median: null, min: null, max: null, samples: [], unavailable: 'no ESP in this kernel' });
    expect(row('x', 'rss_mb', [])).toMatchObject({ median: null, failed: 'no sample' });
  });

  it('turns a scenario into the issue-8 metrics (pps, loss, ping percentiles, CPU s per GB, RSS)', () => {
    const iperf = (o: object) => ({ ok: true, daemonCpuPct: {}, wallSec: 1, ...o });
    const s: ScenarioResult = {
      id: 'tunsec-transport',
      title: 't',
      description: 'd',
      status: 'ok',
      warnings: [],
      rows: [],
      runs: {
        ping: [{ transmitted: 4, received: 4, lossPct: 0, rttsMs: [1, 2, 3, 10] }],
        tcp1: [iperf({ recvMbps: 500, recvBytes: 1e9, daemonCpuSec: 3 })],
        tcp4: [iperf({ recvMbps: 600, recvBytes: 1e9, daemonCpuSec: 5 })],
        udp1400: [iperf({ udpRecvPps: 40000, udpLossPct: 1.5 })],
        udp64: [iperf({ udpRecvPps: 90000, udpLossPct: 20 })],
        rss_mb: [150.5],
      },
    };
    const byMetric = Object.fromEntries(throughputRows(s).map((r) => [r.metric, r.median]));
    expect(byMetric).toEqual({
      tcp1_mbps: 500,
      tcp4_mbps: 600,
      udp1400_pps: 40000,
      udp1400_loss_pct: 1.5,
      udp64_pps: 90000,
      udp64_loss_pct: 20,
      ping_p50_ms: 2,
      ping_p99_ms: 10,
      cpu_s_per_gb: 4, // (3 + 5) CPU s ÷ 2 GB
      rss_mb: 150.5,
    });
    const down = throughputRows({ ...s, id: 'kernel-xfrm', status: 'unavailable', short_reason: 'no ESP' });
    expect(down.every((r) => r.median === null && r.unavailable === 'no ESP')).toBe(true);
    expect(percentile([5, 1, 4, 2, 3], 50)).toBe(3);
    expect(percentile([], 99)).toBeUndefined();
  });
});

describe('ratios', () => {
  const ratios = computeRatios(rows, defaultRatioSpecs());
  const get = (name: string) => ratios.find((r) => r.name === name)!;

  it('divides the medians and pairs the repetitions of the same round', () => {
    const r = get('tcp1 tunsec-transport / strongswan-libipsec');
    expect(r.value).toBe(2.5); // 600 / 240
    expect(r.paired).toEqual([3, 2, 3]);
    expect(r.target).toBe(3.5); // issue 19's goal for raw ESP transport
    expect(r.meets_target).toBe(false);
    expect(get('tcp1 strongswan-libipsec / plain').value).toBe(0.011);
    expect(get('handshakes tunsec-ike / strongswan-ike').value).toBe(1.75);
  });

  it('has no paired ratios when the sample counts differ, and no value without a number', () => {
    expect(get('tcp4 tunsec-transport / strongswan-libipsec')).toMatchObject({ value: 2.7, paired: [] });
    expect(get('tcp1 tunsec-transport / kernel-xfrm')).toMatchObject({ value: null, note: 'kernel-xfrm: unavailable: Requested AEAD algorithm not found' });
    expect(get('tcp1 tunsec-tunnel-udp / strongswan-libipsec')).toMatchObject({ value: null, note: 'tunsec-tunnel-udp: not measured' });
  });

  it('reports a miss of the target', () => {
    const low = computeRatios(
      [row('a', 'tcp1_mbps', [200]), row('b', 'tcp1_mbps', [100])],
      [{ metric: 'tcp1_mbps', numerator: 'a', denominator: 'b', target: 2.5 }],
    );
    expect(low[0]).toMatchObject({ value: 2, meets_target: false });
  });

  it('an at-most goal (CPU per GB, latency) is met at or below its target', () => {
    const [cheap, dear] = computeRatios(
      [row('a', 'cpu_s_per_gb', [10]), row('b', 'cpu_s_per_gb', [100]), row('c', 'cpu_s_per_gb', [30])],
      [
        { metric: 'cpu_s_per_gb', numerator: 'a', denominator: 'b', target: 0.2, atMost: true },
        { metric: 'cpu_s_per_gb', numerator: 'c', denominator: 'b', target: 0.2, atMost: true },
      ],
    );
    expect(cheap).toMatchObject({ value: 0.1, meets_target: true });
    expect(dear).toMatchObject({ value: 0.3, meets_target: false });
  });
});

describe('quiet verdict', () => {
  it('flags load above half the cores or a busy machine', () => {
    expect(quietVerdict({ loadavg_before: [0.5, 0, 0], loadavg_after: [0.9, 0, 0], busy_pct_before: 5, busy_pct_after: 10, cpus: 2 }).quiet_enough).toBe(true);
    const q = quietVerdict({ loadavg_before: [3.1, 0, 0], loadavg_after: [0.2, 0, 0], busy_pct_before: 40, cpus: 2 });
    expect(q.quiet_enough).toBe(false);
    expect(q.verdict).toContain('load before 3.10 > 1');
    expect(q.verdict).toContain('40 % busy before');
  });
});

describe('writeResults', () => {
  let dir: string | undefined;
  afterEach(() => dir && rmSync(dir, { recursive: true, force: true }));

  it('writes <timestamp>.json, latest.json, latest.md and latest.svg', () => {
    dir = mkdtempSync(join(tmpdir(), 'bench-results-'));
    const rep = report();
    const page = `# page\n\n${markdownTables(rep)}`;
    const paths = writeResults(dir, rep, page);
    expect(readdirSync(dir).sort()).toEqual(['2026-11-23T12-00-00-000Z.json', 'latest.json', 'latest.md', 'latest.svg']);
    const json = JSON.parse(readFileSync(paths.json, 'utf8')) as BenchReport;
    expect(readFileSync(paths.latest, 'utf8')).toBe(readFileSync(paths.json, 'utf8'));
    expect(json.rows).toHaveLength(rows.length);
    for (const r of json.rows) expect(Object.keys(r).slice(0, 7)).toEqual(['case', 'metric', 'unit', 'median', 'min', 'max', 'samples']);
    expect(json.ratios.find((r) => r.name === 'tcp1 tunsec-transport / strongswan-libipsec')?.value).toBe(2.5);
    expect(json.quiet.quiet_enough).toBe(true);
    const md = readFileSync(paths.md, 'utf8');
    expect(md).toContain('| tunsec-transport | **600** (500–720) | **675** (650–700) |');
    expect(md).toContain('| kernel-xfrm | unavailable: Requested AEAD algorithm not found |');
    expect(md).toContain('| tcp1 tunsec-transport / strongswan-libipsec | **2.50×** | 3.00, 2.00, 3.00 | MISSES the ≥ 3.5× goal |');
    const svg = readFileSync(paths.svg, 'utf8');
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
  });

  it('draws one bar per throughput case and metric, plain off scale, unavailable cases without a bar', () => {
    const svg = svgChart(rows, cases);
    expect(svg.match(/<rect x="190" y="\d+" width="[\d.]+" height="12"/g)).toHaveLength(5); // plain ×1, libipsec ×2, tunsec ×2
    expect(svg).toContain('21 000 (off scale)');
    expect(svg).toContain('unavailable: Requested AEAD algorithm not found');
    expect(svg).not.toContain('tunsec-ike');
  });
});

describe('cpu profile summary', () => {
  it('charges each sample interval to the sampled function and writes the note section once', () => {
    const profile = {
      startTime: 0,
      endTime: 4000,
      nodes: [
        { id: 1, callFrame: { functionName: '(root)', url: '', lineNumber: -1 } },
        { id: 2, callFrame: { functionName: 'seal', url: 'file:///repo/src/esp/esp.ts', lineNumber: 9 } },
        { id: 3, callFrame: { functionName: '(idle)', url: '', lineNumber: -1 } },
      ],
      samples: [2, 2, 3, 2],
      timeDeltas: [0, 1000, 1000, 1000],
    };
    const s = selfTimes(profile, '/repo');
    expect(s.idle_ms).toBe(1);
    expect(s.fns[0]).toEqual({ fn: 'seal', where: 'src/esp/esp.ts', ms: 2 }); // TypeScript: no line (transpiled by tsx)
    const noteDir = mkdtempSync(join(tmpdir(), 'bench-note-'));
    const note = join(noteDir, 'bench.md');
    updateNote(note, 'first');
    updateNote(note, 'second');
    const text = readFileSync(note, 'utf8');
    expect(text.split(NOTE_START)).toHaveLength(2);
    expect(text).toContain('second');
    expect(text).not.toContain('first');
    expect(text.indexOf(NOTE_END)).toBeGreaterThan(text.indexOf('second'));
    rmSync(noteDir, { recursive: true, force: true });
  });
});
