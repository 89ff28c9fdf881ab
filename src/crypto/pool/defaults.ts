/** The default size of the public-key worker pool (daemon.crypto_workers). */
import { availableParallelism } from 'node:os';

/** One core left to the datapath, at most 4 workers, at least 1. */
export function defaultCryptoWorkers(cpus = availableParallelism()): number {
  return Math.max(1, Math.min(4, cpus - 1));
}
