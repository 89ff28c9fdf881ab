// Worker entry: TypeScript (tsx) is registered per thread, then fuzz/worker.ts runs.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.entry);
