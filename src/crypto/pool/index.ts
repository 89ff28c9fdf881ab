/**
 * IKE's public-key work, inline or on a worker pool (daemon.crypto_workers).
 */
import { INLINE_PUBLIC_KEY_CRYPTO } from './inline.js';
import { CryptoWorkerPool } from './pool.js';
import type { PublicKeyCrypto } from './types.js';

export { CryptoWorkerError, type CryptoPoolCounters, type KeyExchangeHandle, type PublicKeyCrypto } from './types.js';
export { INLINE_PUBLIC_KEY_CRYPTO, InlinePublicKeyCrypto } from './inline.js';
export { CryptoWorkerPool } from './pool.js';

export { defaultCryptoWorkers } from './defaults.js';

/** `workers` 0: inline on the calling thread; otherwise a pool of that many workers. */
export function createPublicKeyCrypto(workers: number): PublicKeyCrypto {
  return workers === 0 ? INLINE_PUBLIC_KEY_CRYPTO : new CryptoWorkerPool(workers);
}
