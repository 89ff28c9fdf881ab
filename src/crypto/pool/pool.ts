/**
 * PublicKeyCrypto on worker threads: a fixed number of workers (./worker.ts),
 * each operation sent to the one with the fewest in flight, except a shared
 * secret, which goes to the worker holding its private value. AUTH private
 * keys are posted to every worker once (and to a replacement worker), then
 * named by id; they are dropped from the workers when the KeyObject is
 * garbage-collected on this side (a reload replaced it).
 *
 * A worker that throws something other than a CryptoError fails that one
 * operation with CryptoWorkerError; a worker that dies fails the operations
 * it had in flight the same way and is replaced. Nothing here throws into
 * the caller's event loop: every failure is a rejected promise.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { KeyObject } from 'node:crypto';
import { SIGNATURE_ALGORITHMS } from '../rfc7427.js';
import type { SignAuthRequest, SignedAuth, VerifyAuthRequest } from '../signature.js';
import { CryptoError } from '../types.js';
import { CryptoWorkerError, type CryptoPoolCounters, type KeyExchangeHandle, type PublicKeyCrypto } from './types.js';
import type { WorkerNotice, WorkerReply, WorkerRequest } from './protocol.js';

/** WorkerRequest without its id (given when sent). */
type Request = WorkerRequest extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;
type OkReply = Extract<WorkerReply, { ok: true }>;

interface Slot {
  worker: Worker;
  /** Bumped when the slot's worker is replaced: handles of the old one are void. */
  generation: number;
  inFlight: Map<number, { resolve(r: OkReply): void; reject(e: Error): void }>;
}

interface PooledHandle extends KeyExchangeHandle {
  readonly slot: number;
  readonly generation: number;
  readonly handle: number;
}

const handleOf = new WeakMap<KeyExchangeHandle, PooledHandle>();

/** How a worker starts: the compiled worker.js next to this file, or (sources under tsx/vitest) worker.ts through tsx. */
function spawn(): Worker {
  const here = import.meta.url;
  if (here.endsWith('.js')) return new Worker(new URL('./worker.js', here));
  const tsx = pathToFileURL(createRequire(here).resolve('tsx/esm/api')).href;
  const entry = new URL('./worker.ts', here).href;
  const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(boot, { eval: true });
}

export class CryptoWorkerPool implements PublicKeyCrypto {
  readonly inline = false;
  readonly counters: CryptoPoolCounters = { operations: 0, workerFailures: 0, workersReplaced: 0 };
  private readonly slots: Slot[] = [];
  private nextId = 1;
  private nextKeyId = 1;
  private closed = false;
  /** AUTH private keys the workers hold, by id (weakly: a replaced key is dropped). */
  private readonly keyIds = new WeakMap<KeyObject, number>();
  private readonly keys = new Map<number, WeakRef<KeyObject>>();
  private readonly finalizer = new FinalizationRegistry<number>((keyId) => {
    this.keys.delete(keyId);
    this.notifyAll({ op: 'dropKey', keyId });
  });

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`crypto worker pool size must be a positive integer, got ${size}`);
    for (let i = 0; i < size; i++) this.slots.push(this.start(i, 0));
  }

  /** Thread IDs of the workers now (tests). */
  get threadIds(): number[] {
    return this.slots.map((s) => s.worker.threadId);
  }

  /** Terminate worker `index` as if it had died (tests of the recovery). */
  killWorker(index: number): Promise<number> {
    const slot = this.slots[index];
    if (!slot) throw new RangeError(`no worker ${index}`);
    return slot.worker.terminate();
  }

  private start(index: number, generation: number): Slot {
    const worker = spawn();
    worker.unref();
    const slot: Slot = { worker, generation, inFlight: new Map() };
    worker.on('message', (reply: WorkerReply) => {
      const waiting = slot.inFlight.get(reply.id);
      if (!waiting) return;
      slot.inFlight.delete(reply.id);
      if (reply.ok) {
        this.counters.operations++;
        waiting.resolve(reply);
      } else if (reply.crypto) {
        this.counters.operations++;
        waiting.reject(new CryptoError(reply.message));
      } else {
        this.counters.workerFailures++;
        waiting.reject(new CryptoWorkerError(`crypto worker ${index} failed: ${reply.message}`));
      }
    });
    const lost = (why: string): void => {
      if (this.slots[index] !== slot) return;
      for (const w of slot.inFlight.values()) {
        this.counters.workerFailures++;
        w.reject(new CryptoWorkerError(`crypto worker ${index} ${why}; the operation was lost`));
      }
      slot.inFlight.clear();
      if (this.closed) return;
      this.counters.workersReplaced++;
      const next = this.start(index, slot.generation + 1);
      this.slots[index] = next;
      for (const [keyId, ref] of this.keys) {
        const key = ref.deref();
        if (key) next.worker.postMessage({ op: 'addKey', keyId, key } satisfies WorkerNotice);
      }
    };
    worker.on('error', (err) => lost(`threw ${err.message}`));
    worker.on('exit', (code) => lost(`exited (code ${code})`));
    return slot;
  }

  private notifyAll(notice: WorkerNotice): void {
    for (const s of this.slots) s.worker.postMessage(notice);
  }

  private keyId(key: KeyObject): number {
    let id = this.keyIds.get(key);
    if (id === undefined) {
      id = this.nextKeyId++;
      this.keyIds.set(key, id);
      this.keys.set(id, new WeakRef(key));
      this.finalizer.register(key, id);
      this.notifyAll({ op: 'addKey', keyId: id, key });
    }
    return id;
  }

  private leastBusy(): number {
    let best = 0;
    for (let i = 1; i < this.slots.length; i++) if (this.slots[i]!.inFlight.size < this.slots[best]!.inFlight.size) best = i;
    return best;
  }

  private send(request: Request, index = this.leastBusy()): Promise<OkReply> {
    if (this.closed) return Promise.reject(new CryptoWorkerError('crypto worker pool is closed'));
    const slot = this.slots[index]!;
    const id = this.nextId++;
    return new Promise<OkReply>((resolve, reject) => {
      slot.inFlight.set(id, { resolve, reject });
      slot.worker.postMessage({ ...request, id } as WorkerRequest);
    });
  }

  /** Tests: an operation whose worker throws a TypeError. */
  fail(): Promise<void> {
    return this.send({ op: 'fail' }).then(() => undefined);
  }

  async generateKeyExchange(groupId: number): Promise<KeyExchangeHandle> {
    const slot = this.leastBusy();
    const generation = this.slots[slot]!.generation;
    const reply = await this.send({ op: 'generate', groupId }, slot);
    const pooled: PooledHandle = { groupId, publicValue: toBuffer(reply.publicValue), slot, generation, handle: reply.handle! };
    const handle: KeyExchangeHandle = { groupId, publicValue: pooled.publicValue };
    handleOf.set(handle, pooled);
    return handle;
  }

  async computeSharedSecret(own: KeyExchangeHandle, peerPublicValue: Uint8Array): Promise<Buffer> {
    const pooled = handleOf.get(own);
    if (!pooled) throw new CryptoError(`KE group ${own.groupId}: not a key exchange value of this pool, or already used`);
    handleOf.delete(own);
    if (this.slots[pooled.slot]?.generation !== pooled.generation) {
      throw new CryptoWorkerError(`KE group ${own.groupId}: the crypto worker holding our private value was replaced`);
    }
    const reply = await this.send({ op: 'shared', handle: pooled.handle, peer: peerPublicValue }, pooled.slot);
    return toBuffer(reply.sharedSecret);
  }

  async respondKeyExchange(groupId: number, peerPublicValue: Uint8Array): Promise<{ publicValue: Buffer; sharedSecret: Buffer }> {
    const reply = await this.send({ op: 'respond', groupId, peer: peerPublicValue });
    return { publicValue: toBuffer(reply.publicValue), sharedSecret: toBuffer(reply.sharedSecret) };
  }

  async signAuth(request: SignAuthRequest): Promise<SignedAuth> {
    if (request.privateKey.type !== 'private') throw new CryptoError(`AUTH method ${request.method}: signing needs a private key`);
    const reply = await this.send({
      op: 'sign',
      keyId: this.keyId(request.privateKey),
      method: request.method,
      octets: request.octets,
      ...(request.algorithm ? { algorithm: request.algorithm.name } : {}),
      ...(request.hash !== undefined ? { hash: request.hash } : {}),
    });
    const algorithm = reply.algorithm === undefined ? undefined : SIGNATURE_ALGORITHMS.find((a) => a.name === reply.algorithm);
    return { method: reply.method!, authData: toBuffer(reply.authData), ...(algorithm ? { algorithm } : {}) };
  }

  async verifyAuth(request: VerifyAuthRequest): Promise<boolean> {
    const reply = await this.send({
      op: 'verify',
      method: request.method,
      publicKey: request.publicKey,
      octets: request.octets,
      authData: request.authData,
      ...(request.acceptedHashes ? { acceptedHashes: [...request.acceptedHashes] } : {}),
    });
    return reply.valid === true;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}

function toBuffer(u: Uint8Array | undefined): Buffer {
  if (!u) throw new CryptoWorkerError('crypto worker answered without a value');
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}
