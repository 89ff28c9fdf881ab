/**
 * The fuzzing loop of one target, run inside a worker thread (fuzz/worker.ts)
 * so that the parent (fuzz/run.ts) can stop it when it hangs or runs out of
 * memory.
 *
 * Feedback: each execution's *feature* (the target's summary of what
 * happened: which payloads decoded, which check rejected the input, which
 * counter moved) is looked up in a table; an input with a new feature joins
 * the in-memory corpus and is mutated further. This is behaviour-guided, not
 * coverage-guided — but every distinct rejection site has its own message,
 * so new features track new code paths closely.
 *
 * Before each execution the input is copied into a SharedArrayBuffer and a
 * heartbeat counter is bumped: the parent reads both to save the input that
 * hung or exhausted the heap.
 */
import { mutate, Random } from './mutate.js';
import type { FuzzTarget } from './target.js';

/** Layout of the shared buffer: Int32 [0] executions (heartbeat), [1] current input length; input octets from SHARED_HEADER. */
export const SHARED_HEADER = 16;

export interface Finding {
  kind: 'crash' | 'slow';
  /** Error name + first source frame: one finding per distinct bug. */
  signature: string;
  message: string;
  stack: string;
  input: Buffer;
  ms?: number;
}

export interface LoopStats {
  executions: number;
  features: number;
  corpus: number;
  initialCorpus: number;
  seconds: number;
  findings: Finding[];
}

export interface LoopOptions {
  seconds: number;
  seed: number;
  corpus: Buffer[];
  shared?: SharedArrayBuffer;
  /** An execution slower than this is reported (a hang-in-the-making). */
  slowMs: number;
  /** Stop after this many executions (tests). */
  maxExecutions?: number;
  onFinding?: (f: Finding) => void;
}

const MAX_CORPUS = 4096;
const MAX_FINDINGS = 32;

/** Error name and the first stack frame inside the project: the same bug hit twice has one signature. */
export function signatureOf(err: unknown): string {
  if (!(err instanceof Error)) return `non-error:${typeof err}`;
  const frame = (err.stack ?? '')
    .split('\n')
    .slice(1)
    .find((l) => /\/(src|fuzz)\//.test(l) && !/fuzz\/(lib\/engine|worker)\.ts/.test(l));
  const where = frame
    ? frame
        .trim()
        .replace(/^at /, '')
        .replace(/:\d+\)?$/, '')
        .replace(/.*\/(src|fuzz)\//, '$1/')
    : '?';
  return `${err.name}@${where}`;
}

export async function fuzzLoop(target: FuzzTarget, opts: LoopOptions): Promise<LoopStats> {
  const rnd = new Random(opts.seed);
  const corpus: Buffer[] = opts.corpus.length > 0 ? [...opts.corpus] : [Buffer.alloc(0)];
  const initialCorpus = corpus.length;
  const features = new Map<string, number>();
  const findings: Finding[] = [];
  const seen = new Set<string>();
  const beat = opts.shared ? new Int32Array(opts.shared, 0, 2) : undefined;
  const inputView = opts.shared ? new Uint8Array(opts.shared, SHARED_HEADER) : undefined;
  const dictionary = target.dictionary ?? [];
  const mutatorOptions = { maxLength: target.maxLength, dictionary, other: () => corpus[rnd.below(corpus.length)] };
  const start = performance.now();
  const deadline = start + opts.seconds * 1000;
  let executions = 0;

  const record = (f: Finding): void => {
    if (seen.has(f.signature) || findings.length >= MAX_FINDINGS) return;
    seen.add(f.signature);
    findings.push(f);
    opts.onFinding?.(f);
  };

  const execute = async (input: Buffer, fresh: boolean): Promise<void> => {
    if (beat && inputView) {
      const n = Math.min(input.length, inputView.length);
      inputView.set(input.subarray(0, n));
      Atomics.store(beat, 1, n);
      Atomics.add(beat, 0, 1);
    }
    const t0 = performance.now();
    let feature: string;
    try {
      const r = target.run(Buffer.from(input));
      feature = typeof r === 'string' ? r : await r;
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      record({ kind: 'crash', signature: signatureOf(err), message: e.message, stack: e.stack ?? e.message, input: Buffer.from(input) });
      feature = `crash:${signatureOf(err)}`;
    }
    const ms = performance.now() - t0;
    if (ms > opts.slowMs) {
      record({
        kind: 'slow',
        signature: `slow@${feature.slice(0, 60)}`,
        message: `one execution took ${ms.toFixed(0)} ms`,
        stack: '',
        input: Buffer.from(input),
        ms,
      });
    }
    executions++;
    const count = features.get(feature);
    if (count === undefined) {
      features.set(feature, 1);
      if (fresh) {
        if (corpus.length < MAX_CORPUS) corpus.push(input);
        else corpus[initialCorpus + rnd.below(MAX_CORPUS - initialCorpus)] = input;
      }
    } else {
      features.set(feature, count + 1);
    }
  };

  // every corpus entry once as it is
  for (const c of opts.corpus) await execute(c, false);
  while (performance.now() < deadline && (opts.maxExecutions === undefined || executions < opts.maxExecutions)) {
    // 256 executions between clock reads
    for (let i = 0; i < 256; i++) {
      // favour recent discoveries a little
      const base =
        rnd.chance(0.2) && corpus.length > initialCorpus
          ? corpus[initialCorpus + rnd.below(corpus.length - initialCorpus)]!
          : corpus[rnd.below(corpus.length)]!;
      let input = mutate(base, rnd, mutatorOptions);
      if (target.postMutate) input = target.postMutate(input, rnd.float);
      await execute(input, true);
    }
  }
  return { executions, features: features.size, corpus: corpus.length, initialCorpus, seconds: (performance.now() - start) / 1000, findings };
}
