/** Result rows shared by every tunsec benchmark (see bench/README.md). */
export interface BenchRow {
  case: string;
  metric: string;
  unit: string;
  median: number;
  min: number;
  max: number;
  samples: number[];
}

export function summarize(caseName: string, metric: string, unit: string, samples: number[]): BenchRow {
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { case: caseName, metric, unit, median, min: sorted[0]!, max: sorted[sorted.length - 1]!, samples };
}

const fmt = (n: number): string => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toPrecision(3));

export function markdownTable(rows: BenchRow[]): string {
  const lines = ['| case | metric | median | min | max | unit |', '| --- | --- | ---: | ---: | ---: | --- |'];
  for (const r of rows) lines.push(`| ${r.case} | ${r.metric} | ${fmt(r.median)} | ${fmt(r.min)} | ${fmt(r.max)} | ${r.unit} |`);
  return lines.join('\n');
}
