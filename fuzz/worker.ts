/**
 * One target's fuzzing run inside a worker thread (started by fuzz/run.ts
 * through fuzz/boot.mjs). Findings are posted as they happen, the
 * statistics at the end.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadCorpus } from './lib/corpus.js';
import { fuzzLoop, type Finding } from './lib/engine.js';
import { loadTarget } from './targets/index.js';

export interface WorkerInput {
  entry: string;
  target: string;
  seconds: number;
  seed: number;
  slowMs: number;
  shared: SharedArrayBuffer;
}

export type WorkerMessage =
  | { type: 'ready'; corpus: number }
  | { type: 'finding'; finding: Omit<Finding, 'input'> & { input: string } }
  | { type: 'done'; executions: number; features: number; corpus: number; initialCorpus: number; seconds: number };

Error.stackTraceLimit = 40;
// The yaml library warns (process.emitWarning) about collections used as map keys: expected under fuzzing, noise in the output.
process.emitWarning = () => {};
const input = workerData as WorkerInput;
const post = (m: WorkerMessage): void => parentPort!.postMessage(m);

const target = await loadTarget(input.target);
await target.setup?.();
const corpus = loadCorpus(target);
post({ type: 'ready', corpus: corpus.length });
const stats = await fuzzLoop(target, {
  seconds: input.seconds,
  seed: input.seed,
  corpus,
  shared: input.shared,
  slowMs: input.slowMs,
  onFinding: (f) => post({ type: 'finding', finding: { ...f, input: f.input.toString('base64') } }),
});
post({
  type: 'done',
  executions: stats.executions,
  features: stats.features,
  corpus: stats.corpus,
  initialCorpus: stats.initialCorpus,
  seconds: stats.seconds,
});
// timers a target left behind (IKE SA lifetimes, retransmits) must not keep the worker alive
process.exit(0);
