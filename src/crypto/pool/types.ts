/**
 * Public-key work of IKE (key exchange, AUTH signatures) behind one
 * asynchronous interface, so that it can run off the main thread (./pool.ts)
 * or on it (./inline.ts). The IKE engine sees only this interface.
 */
import type { SignAuthRequest, SignedAuth, VerifyAuthRequest } from '../signature.js';

/** Our half of a key exchange: the Key Exchange Data to send; the private value stays where it was made. */
export interface KeyExchangeHandle {
  readonly groupId: number;
  /** Key Exchange Data as carried in the KE payload. */
  readonly publicValue: Buffer;
}

export interface PublicKeyCrypto {
  /**
   * True when the operations run on the calling thread: callers may then use the
   * synchronous functions of ../ke and ../signature directly, as they did before.
   */
  readonly inline: boolean;
  /** A fresh ephemeral key pair of Transform Type 4 group `groupId`. */
  generateKeyExchange(groupId: number): Promise<KeyExchangeHandle>;
  /**
   * g^ir from our `own` value and the peer's Key Exchange Data. Rejects with
   * CryptoError for a bad peer value (as KeyExchangePrivate.computeSharedSecret
   * throws it). `own` is used up: a second call for it rejects.
   */
  computeSharedSecret(own: KeyExchangeHandle, peerPublicValue: Uint8Array): Promise<Buffer>;
  /** The responder's step in one go: a fresh key pair of `groupId` and g^ir with the peer's value. */
  respondKeyExchange(groupId: number, peerPublicValue: Uint8Array): Promise<{ publicValue: Buffer; sharedSecret: Buffer }>;
  /** ../signature.ts signAuth; the private key is handed to the workers once, not per call. */
  signAuth(request: SignAuthRequest): Promise<SignedAuth>;
  /** ../signature.ts verifyAuth. */
  verifyAuth(request: VerifyAuthRequest): Promise<boolean>;
  /** What a worker pool counts; absent inline. */
  readonly counters?: CryptoPoolCounters;
  /** Stop the workers; operations still running reject. */
  close(): Promise<void>;
}

/**
 * A worker of the pool failed (threw something that is no CryptoError, or
 * died): the operation is lost, not the peer's fault. The worker is replaced.
 */
export class CryptoWorkerError extends Error {
  override readonly name = 'CryptoWorkerError';
}

/** What a pool counts (daemon metrics). */
export interface CryptoPoolCounters {
  /** Operations completed (successfully or with a CryptoError). */
  operations: number;
  /** Operations lost to a worker failure (CryptoWorkerError). */
  workerFailures: number;
  /** Workers started to replace one that died. */
  workersReplaced: number;
}
