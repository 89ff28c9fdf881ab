/**
 * `npm run fuzz -- [--time SECONDS] [--target NAME[,NAME…]] [--seed N]
 *                  [--hang SECONDS] [--slow-ms MS] [--memory MIB] [--json FILE]`
 * `npm run fuzz -- --target NAME --repro FILE…`
 *
 * Runs the fuzz targets (fuzz/targets/) one after the other, each in a
 * worker thread for its share of --time (default 60 s in all; IKE targets
 * get a larger share, see WEIGHTS), and prints
 * executions, features, corpus size and findings per target. A worker whose
 * heartbeat stops for --hang seconds (default 10) is stopped and its current
 * input saved as a hang; one that runs out of heap (--memory, default
 * 1024 MiB) as an out-of-memory; every crash (an exception other than the
 * target's documented errors, or a broken invariant) is saved too:
 * fuzz/crashes/<target>/<kind>-<hash>.bin (+ .txt with the stack). The exit
 * status is 1 when anything was found.
 *
 * --repro runs saved inputs through a target in this process and prints the
 * outcome (or the stack).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { crashesDir } from './lib/corpus.js';
import { SHARED_HEADER } from './lib/engine.js';
import type { TargetKind } from './lib/target.js';
import { loadTarget, TARGET_NAMES } from './targets/index.js';
import type { WorkerInput, WorkerMessage } from './worker.js';

interface Options {
  time: number;
  targets: string[];
  seed: number;
  hang: number;
  slowMs: number;
  memory: number;
  json?: string;
  repro: string[];
}

function usage(message?: string): never {
  if (message) console.error(`fuzz: ${message}`);
  console.error(`usage: npm run fuzz -- [--time SECONDS] [--target ${TARGET_NAMES.join('|')}[,…]] [--seed N] [--hang SECONDS] [--slow-ms MS] [--memory MIB] [--json FILE]
       npm run fuzz -- --target NAME --repro FILE…`);
  process.exit(2);
}

function parseOptions(argv: string[]): Options {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: true,
      options: {
        time: { type: 'string' },
        target: { type: 'string', multiple: true },
        seed: { type: 'string' },
        hang: { type: 'string' },
        'slow-ms': { type: 'string' },
        memory: { type: 'string' },
        json: { type: 'string' },
        repro: { type: 'string', multiple: true },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    usage((err as Error).message);
  }
  const v = parsed.values;
  if (v.help) usage();
  const num = (name: string, text: string | undefined, dflt: number): number => {
    if (text === undefined) return dflt;
    const n = Number(text);
    if (text === '' || !Number.isFinite(n) || n < 0) usage(`--${name} needs a non-negative number`);
    return n;
  };
  const repro = v.repro ?? [];
  // `--repro FILE…`: the files after the first are positionals
  if (parsed.positionals.length > 0 && repro.length === 0) usage(`unknown argument '${parsed.positionals[0]}'`);
  const o: Options = {
    time: num('time', v.time, 60),
    targets: (v.target ?? []).flatMap((t) => t.split(',')).filter((t) => t !== ''),
    seed: num('seed', v.seed, Date.now() % 0x7fffffff),
    hang: num('hang', v.hang, 10),
    slowMs: num('slow-ms', v['slow-ms'], 2000),
    memory: num('memory', v.memory, 1024),
    ...(v.json === undefined ? {} : { json: v.json }),
    repro: [...repro, ...parsed.positionals],
  };
  for (const t of o.targets) if (!(TARGET_NAMES as readonly string[]).includes(t)) usage(`unknown target '${t}'`);
  if (o.targets.length === 0) o.targets = [...TARGET_NAMES];
  return o;
}

/**
 * Shares of --time: the IKE targets are the slowest per execution and the
 * issue asks for a million IKE messages and a million ESP packets, so they
 * get more; the ESP-in-UDP path is the fastest.
 */
const WEIGHTS: Readonly<Record<string, number>> = {
  'ike-message': 1.5,
  'ike-sk': 1.5,
  'ike-engine': 1.5,
  pki: 0.75,
  'esp-raw': 0.75,
  'esp-udp': 0.5,
  config: 0.75,
  control: 0.75,
};

interface SavedFinding {
  kind: string;
  signature: string;
  message: string;
  file: string;
}

interface TargetReport {
  target: string;
  kind: TargetKind;
  executions: number;
  seconds: number;
  execsPerSecond: number;
  features: number;
  corpus: number;
  initialCorpus: number;
  restarts: number;
  findings: SavedFinding[];
}

function saveFinding(target: string, kind: string, signature: string, message: string, stack: string, input: Buffer): SavedFinding {
  const dir = join(crashesDir(), target);
  mkdirSync(dir, { recursive: true });
  const base = `${kind}-${createHash('sha1').update(input).digest('hex').slice(0, 12)}`;
  writeFileSync(join(dir, `${base}.bin`), input);
  writeFileSync(
    join(dir, `${base}.txt`),
    `target: ${target}\nkind: ${kind}\nsignature: ${signature}\nmessage: ${message}\n\n${stack}\n\nreproduce: npm run fuzz -- --target ${target} --repro fuzz/crashes/${target}/${base}.bin\n`,
  );
  return { kind, signature, message, file: join('fuzz', 'crashes', target, `${base}.bin`) };
}

/** One worker run of `name` for `seconds`; resolves with what it did, even when it hung or died. */
function runWorker(
  name: string,
  seconds: number,
  seed: number,
  o: Options,
): Promise<{
  executions: number;
  seconds: number;
  features: number;
  corpus: number;
  initialCorpus: number;
  findings: SavedFinding[];
  ended: 'done' | 'hang' | 'oom' | 'error';
}> {
  return new Promise((resolve) => {
    const shared = new SharedArrayBuffer(SHARED_HEADER + 1024 * 1024);
    const beat = new Int32Array(shared, 0, 2);
    const workerData: WorkerInput = { entry: new URL('./worker.ts', import.meta.url).href, target: name, seconds, seed, slowMs: o.slowMs, shared };
    const worker = new Worker(new URL('./boot.mjs', import.meta.url), { workerData, resourceLimits: { maxOldGenerationSizeMb: o.memory } });
    const findings: SavedFinding[] = [];
    const started = performance.now();
    let ready = false;
    let last = -1;
    let lastChange = performance.now();
    let result: { executions: number; seconds: number; features: number; corpus: number; initialCorpus: number } | undefined;
    let ended: 'done' | 'hang' | 'oom' | 'error' = 'done';
    const current = (): Buffer => Buffer.from(new Uint8Array(shared, SHARED_HEADER, Atomics.load(beat, 1)));
    const watchdog = setInterval(() => {
      const n = Atomics.load(beat, 0);
      if (n !== last) {
        last = n;
        lastChange = performance.now();
        return;
      }
      if (ready && performance.now() - lastChange > o.hang * 1000) {
        ended = 'hang';
        const f = saveFinding(name, 'hang', 'hang', `no progress for ${o.hang} s`, '', current());
        findings.push(f);
        console.log(`  ${name}: HANG — input saved to ${f.file}`);
        void worker.terminate();
      }
    }, 250);
    worker.on('message', (m: WorkerMessage) => {
      if (m.type === 'ready') {
        ready = true;
        lastChange = performance.now();
      } else if (m.type === 'finding') {
        const f = saveFinding(name, m.finding.kind, m.finding.signature, m.finding.message, m.finding.stack, Buffer.from(m.finding.input, 'base64'));
        findings.push(f);
        console.log(`  ${name}: ${m.finding.kind.toUpperCase()} ${m.finding.signature}: ${m.finding.message.split('\n')[0]} — ${f.file}`);
      } else {
        result = m;
      }
    });
    worker.on('error', (err: Error & { code?: string }) => {
      if (err.code === 'ERR_WORKER_OUT_OF_MEMORY') {
        ended = 'oom';
        const f = saveFinding(name, 'oom', 'oom', err.message, '', current());
        findings.push(f);
        console.log(`  ${name}: OUT OF MEMORY — input saved to ${f.file}`);
      } else {
        ended = 'error';
        const f = saveFinding(name, 'crash', `worker:${err.name}`, err.message, err.stack ?? '', current());
        findings.push(f);
        console.log(`  ${name}: worker died: ${err.message} — ${f.file}`);
      }
    });
    worker.on('exit', () => {
      clearInterval(watchdog);
      const executions = result?.executions ?? Atomics.load(beat, 0);
      resolve({
        executions,
        seconds: result?.seconds ?? (performance.now() - started) / 1000,
        features: result?.features ?? 0,
        corpus: result?.corpus ?? 0,
        initialCorpus: result?.initialCorpus ?? 0,
        findings,
        ended,
      });
    });
  });
}

async function repro(o: Options): Promise<void> {
  if (o.targets.length !== 1) usage('--repro needs exactly one --target');
  const target = await loadTarget(o.targets[0]!);
  await target.setup?.();
  let failed = false;
  for (const file of o.repro) {
    const data = readFileSync(file);
    const t0 = performance.now();
    try {
      const feature = await target.run(Buffer.from(data));
      console.log(`${file}: ok (${(performance.now() - t0).toFixed(1)} ms) ${feature.slice(0, 200)}`);
    } catch (err) {
      failed = true;
      console.log(`${file}: CRASH\n${(err as Error).stack ?? String(err)}`);
    }
  }
  process.exit(failed ? 1 : 0);
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  if (o.repro.length > 0) return repro(o);
  const weights = o.targets.map((t) => WEIGHTS[t] ?? 1);
  const sum = weights.reduce((a, b) => a + b, 0);
  const shares = weights.map((w) => (o.time * w) / sum);
  console.log(
    `fuzz: ${o.targets.length} target${o.targets.length === 1 ? '' : 's'} in ${o.time} s (${o.targets.map((t, i) => `${t} ${shares[i]!.toFixed(0)} s`).join(', ')}), seed ${o.seed}`,
  );
  const reports: TargetReport[] = [];
  for (const [i, name] of o.targets.entries()) {
    const kind = (await loadTarget(name)).kind;
    const report: TargetReport = {
      target: name,
      kind,
      executions: 0,
      seconds: 0,
      execsPerSecond: 0,
      features: 0,
      corpus: 0,
      initialCorpus: 0,
      restarts: 0,
      findings: [],
    };
    let left = shares[i]!;
    let seed = o.seed + i * 7919;
    // a hang or an out-of-memory ends the worker: start another one for the time that is left
    while (left >= 1) {
      const t0 = performance.now();
      const r = await runWorker(name, left, seed++, o);
      left -= (performance.now() - t0) / 1000;
      report.executions += r.executions;
      report.seconds += r.seconds;
      report.features = Math.max(report.features, r.features);
      report.corpus = Math.max(report.corpus, r.corpus);
      report.initialCorpus = r.initialCorpus || report.initialCorpus;
      report.findings.push(...r.findings);
      if (r.ended === 'done') break;
      report.restarts++;
    }
    report.execsPerSecond = report.seconds > 0 ? Math.round(report.executions / report.seconds) : 0;
    reports.push(report);
    console.log(
      `  ${name.padEnd(12)} ${String(report.executions).padStart(10)} executions in ${report.seconds.toFixed(1)} s (${report.execsPerSecond}/s), ${report.features} features, corpus ${report.initialCorpus} → ${report.corpus}, ${report.findings.length} finding${report.findings.length === 1 ? '' : 's'}`,
    );
  }
  const byKind = new Map<string, number>();
  for (const r of reports) byKind.set(r.kind, (byKind.get(r.kind) ?? 0) + r.executions);
  const findings = reports.reduce((n, r) => n + r.findings.length, 0);
  console.log(
    `fuzz: totals — ${[...byKind].map(([k, n]) => `${k} ${n}`).join(', ')}; ${findings} finding${findings === 1 ? '' : 's'}${findings > 0 ? ` (see ${join('fuzz', 'crashes')}/)` : ''}`,
  );
  if (o.json) writeFileSync(o.json, `${JSON.stringify({ seed: o.seed, time: o.time, reports, totals: Object.fromEntries(byKind) }, null, 2)}\n`);
  process.exit(findings > 0 ? 1 : 0);
}

await main();
