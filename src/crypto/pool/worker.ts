/**
 * A worker of the public-key pool (./pool.ts): answers WorkerRequests with
 * the synchronous functions of ../ke and ../signature. Private keys of AUTH
 * arrive once (addKey) and are used by id; our ephemeral key exchange values
 * stay here under a handle until their shared secret is computed (or they
 * are older than KE_HANDLE_TTL_MS: an exchange that never got its answer).
 */
import { parentPort } from 'node:worker_threads';
import type { KeyObject } from 'node:crypto';
import { keyExchangeGroup } from '../ke/index.js';
import { SIGNATURE_ALGORITHMS } from '../rfc7427.js';
import { signAuth, verifyAuth, type SignatureAuthMethod } from '../signature.js';
import { CryptoError, type KeyExchangePrivate } from '../types.js';
import type { WorkerNotice, WorkerReply, WorkerRequest } from './protocol.js';

const KE_HANDLE_TTL_MS = 120_000;

const keys = new Map<number, KeyObject>();
/** Insertion order is age order. */
const ke = new Map<number, { own: KeyExchangePrivate; at: number }>();
let nextHandle = 1;

function group(groupId: number) {
  const g = keyExchangeGroup(groupId);
  if (!g) throw new CryptoError(`key exchange group ${groupId} is not implemented`);
  return g;
}

function expireHandles(now: number): void {
  for (const [handle, entry] of ke) {
    if (now - entry.at < KE_HANDLE_TTL_MS) break;
    ke.delete(handle);
  }
}

function answer(req: WorkerRequest): WorkerReply {
  switch (req.op) {
    case 'generate': {
      const own = group(req.groupId).generate();
      const now = Date.now();
      expireHandles(now);
      const handle = nextHandle++;
      ke.set(handle, { own, at: now });
      return { id: req.id, ok: true, handle, publicValue: own.publicValue };
    }
    case 'shared': {
      const entry = ke.get(req.handle);
      if (!entry) throw new CryptoError('key exchange private value unknown, expired or already used');
      ke.delete(req.handle);
      return { id: req.id, ok: true, sharedSecret: entry.own.computeSharedSecret(req.peer) };
    }
    case 'respond': {
      const own = group(req.groupId).generate();
      return { id: req.id, ok: true, publicValue: own.publicValue, sharedSecret: own.computeSharedSecret(req.peer) };
    }
    case 'sign': {
      const privateKey = keys.get(req.keyId);
      if (!privateKey) throw new CryptoError(`private key ${req.keyId} unknown to the crypto worker`);
      const algorithm = req.algorithm === undefined ? undefined : SIGNATURE_ALGORITHMS.find((a) => a.name === req.algorithm);
      if (req.algorithm !== undefined && !algorithm) throw new CryptoError(`signature algorithm ${req.algorithm} unknown`);
      const signed = signAuth({
        method: req.method as SignatureAuthMethod,
        privateKey,
        octets: req.octets,
        ...(algorithm ? { algorithm } : {}),
        ...(req.hash !== undefined ? { hash: req.hash } : {}),
      });
      return { id: req.id, ok: true, method: signed.method, authData: signed.authData, ...(signed.algorithm ? { algorithm: signed.algorithm.name } : {}) };
    }
    case 'verify': {
      const valid = verifyAuth({
        method: req.method,
        publicKey: req.publicKey,
        octets: req.octets,
        authData: req.authData,
        ...(req.acceptedHashes ? { acceptedHashes: req.acceptedHashes } : {}),
      });
      return { id: req.id, ok: true, valid };
    }
    case 'fail':
      throw new TypeError('crypto worker asked to fail');
  }
}

const port = parentPort;
if (!port) throw new Error('crypto pool worker started outside a worker thread');
port.on('message', (msg: WorkerRequest | WorkerNotice) => {
  if (msg.op === 'addKey') return void keys.set(msg.keyId, msg.key);
  if (msg.op === 'dropKey') return void keys.delete(msg.keyId);
  let reply: WorkerReply;
  try {
    reply = answer(msg);
  } catch (err) {
    reply = { id: msg.id, ok: false, crypto: err instanceof CryptoError, message: err instanceof Error ? err.message : String(err) };
  }
  port.postMessage(reply);
});
