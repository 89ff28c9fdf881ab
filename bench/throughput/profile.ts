/**
 * `--cpu-prof`: the .cpuprofile files (V8's format, written by `node --cpu-prof`)
 * of both tunsec daemons under iperf3 TCP, reduced to the functions with the most
 * self time, and written into docs/notes/bench.md between markers.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { relative } from 'node:path';

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface CpuProfile {
  nodes: CpuProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface SelfTime {
  fn: string;
  where: string;
  ms: number;
}

const SPECIAL = new Set(['(idle)', '(program)', '(garbage collector)', '(root)']);

/** Self time per function (name + file:line) of one profile, in ms, from the samples and their time deltas. */
export function selfTimes(p: CpuProfile, repo: string): { total_ms: number; idle_ms: number; fns: SelfTime[] } {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  if (p.samples && p.timeDeltas && p.samples.length === p.timeDeltas.length) {
    // timeDeltas[i] is the time since the previous sample: charge it to sample i−1's node.
    for (let i = 1; i < p.samples.length; i++) self.set(p.samples[i - 1]!, (self.get(p.samples[i - 1]!) ?? 0) + p.timeDeltas[i]! / 1000);
  } else {
    const hits = p.nodes.reduce((a, n) => a + (n.hitCount ?? 0), 0) || 1;
    const per = (p.endTime - p.startTime) / 1000 / hits;
    for (const n of p.nodes) self.set(n.id, (n.hitCount ?? 0) * per);
  }
  const agg = new Map<string, SelfTime>();
  let idle = 0;
  for (const [id, ms] of self) {
    const n = byId.get(id);
    if (!n) continue;
    const f = n.callFrame;
    if (f.functionName === '(idle)') idle += ms;
    const url = f.url.replace(/^file:\/\//, '');
    // tsx hands V8 transpiled code without source maps in the profile: a TypeScript file's line is not the source's, so only its path is shown.
    const file = url.startsWith(repo) ? relative(repo, url) : url;
    const where = SPECIAL.has(f.functionName) ? '' : url ? (/\.[cm]?ts$/.test(file) ? file : `${file}:${f.lineNumber + 1}`) : '(native)';
    const fn = f.functionName || '(anonymous)';
    const key = `${fn} ${where}`;
    const e = agg.get(key) ?? { fn, where, ms: 0 };
    e.ms += ms;
    agg.set(key, e);
  }
  return { total_ms: (p.endTime - p.startTime) / 1000, idle_ms: idle, fns: [...agg.values()].sort((a, b) => b.ms - a.ms) };
}

/** Markdown: per profile its busy time, then the top self-time functions over all profiles (idle excluded). */
export function summarizeProfiles(files: Array<{ name: string; profile: unknown }>, repo: string, top = 25): string {
  const all = new Map<string, SelfTime>();
  const lines: string[] = [];
  let busy = 0;
  for (const f of files) {
    const s = selfTimes(f.profile as CpuProfile, repo);
    const b = s.total_ms - s.idle_ms;
    busy += b;
    lines.push(`- \`${f.name}\`: ${(s.total_ms / 1000).toFixed(1)} s profiled, ${(b / 1000).toFixed(1)} s not idle`);
    for (const fn of s.fns) {
      if (fn.fn === '(idle)') continue;
      const k = `${fn.fn} ${fn.where}`;
      const e = all.get(k) ?? { ...fn, ms: 0 };
      e.ms += fn.ms;
      all.set(k, e);
    }
  }
  const rows = [...all.values()].sort((a, b) => b.ms - a.ms).slice(0, top);
  return [
    `Profiles (one per daemon main thread; V8's sampling profiler — what \`node --cpu-prof\` uses — every 1 ms):`,
    '',
    ...lines,
    '',
    `Top ${rows.length} functions by self time over all profiles (% of the non-idle time, ${(busy / 1000).toFixed(1)} s):`,
    '',
    '| # | function | where | self ms | % busy |',
    '| ---: | --- | --- | ---: | ---: |',
    ...rows.map(
      (r, i) => `| ${i + 1} | \`${r.fn}\` | ${r.where ? `\`${r.where}\`` : ''} | ${r.ms.toFixed(0)} | ${busy ? ((r.ms / busy) * 100).toFixed(1) : '–'} |`,
    ),
    '',
  ].join('\n');
}

export const NOTE_START = '<!-- cpu-prof:start (written by `npm run bench -- --cpu-prof`) -->';
export const NOTE_END = '<!-- cpu-prof:end -->';

/** Replace the generated section of the note (or append one). */
export function updateNote(path: string, summary: string, date = new Date().toISOString()): void {
  const text = existsSync(path) ? readFileSync(path, 'utf8') : '# Benchmark notes\n';
  const block = `${NOTE_START}\n\n_Generated ${date}._\n\n${summary}\n${NOTE_END}`;
  const a = text.indexOf(NOTE_START);
  const b = text.indexOf(NOTE_END);
  const next =
    a >= 0 && b > a
      ? text.slice(0, a) + block + text.slice(b + NOTE_END.length)
      : `${text.trimEnd()}\n\n## CPU profile of the tunsec daemons under TCP\n\n${block}\n`;
  writeFileSync(path, next);
}
