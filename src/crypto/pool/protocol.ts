/**
 * The messages between the pool (./pool.ts) and its workers (./worker.ts).
 * Buffers arrive as Uint8Array (structured clone); KeyObjects are cloned
 * by postMessage (node:crypto) and travel as they are.
 */
import type { KeyObject } from 'node:crypto';

export type WorkerRequest =
  | { id: number; op: 'generate'; groupId: number }
  | { id: number; op: 'shared'; handle: number; peer: Uint8Array }
  | { id: number; op: 'respond'; groupId: number; peer: Uint8Array }
  | { id: number; op: 'sign'; keyId: number; method: number; octets: Uint8Array; algorithm?: string; hash?: number }
  | { id: number; op: 'verify'; method: number; publicKey: KeyObject; octets: Uint8Array; authData: Uint8Array; acceptedHashes?: number[] }
  /** The error path of the worker itself (tests): throws a TypeError. */
  | { id: number; op: 'fail' };

/** Not answered: a private key kept under `keyId` until dropped. */
export type WorkerNotice = { op: 'addKey'; keyId: number; key: KeyObject } | { op: 'dropKey'; keyId: number };

export type WorkerReply =
  | {
      id: number;
      ok: true;
      handle?: number;
      publicValue?: Uint8Array;
      sharedSecret?: Uint8Array;
      method?: number;
      authData?: Uint8Array;
      algorithm?: string;
      valid?: boolean;
    }
  | { id: number; ok: false; crypto: boolean; message: string };
