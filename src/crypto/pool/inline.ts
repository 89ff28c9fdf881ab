/**
 * PublicKeyCrypto on the calling thread: the synchronous functions of ../ke
 * and ../signature, answered as settled promises (crypto_workers 0).
 */
import { keyExchangeGroup } from '../ke/index.js';
import { signAuth, verifyAuth } from '../signature.js';
import { CryptoError, type KeyExchangePrivate } from '../types.js';
import type { KeyExchangeHandle, PublicKeyCrypto } from './types.js';

interface InlineHandle extends KeyExchangeHandle {
  own?: KeyExchangePrivate;
}

function group(groupId: number) {
  const g = keyExchangeGroup(groupId);
  if (!g) throw new CryptoError(`key exchange group ${groupId} is not implemented`);
  return g;
}

/** Run `fn` now; its result or exception as a promise. */
function settled<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
}

export class InlinePublicKeyCrypto implements PublicKeyCrypto {
  readonly inline = true;

  generateKeyExchange(groupId: number): Promise<KeyExchangeHandle> {
    return settled(() => {
      const own = group(groupId).generate();
      const handle: InlineHandle = { groupId, publicValue: own.publicValue, own };
      return handle;
    });
  }

  computeSharedSecret(own: KeyExchangeHandle, peerPublicValue: Uint8Array): Promise<Buffer> {
    return settled(() => {
      const h = own as InlineHandle;
      const priv = h.own;
      if (!priv) throw new CryptoError(`KE group ${own.groupId}: private value unknown or already used`);
      h.own = undefined;
      return priv.computeSharedSecret(peerPublicValue);
    });
  }

  respondKeyExchange(groupId: number, peerPublicValue: Uint8Array): Promise<{ publicValue: Buffer; sharedSecret: Buffer }> {
    return settled(() => {
      const own = group(groupId).generate();
      return { publicValue: own.publicValue, sharedSecret: own.computeSharedSecret(peerPublicValue) };
    });
  }

  signAuth(request: Parameters<PublicKeyCrypto['signAuth']>[0]): ReturnType<PublicKeyCrypto['signAuth']> {
    return settled(() => signAuth(request));
  }

  verifyAuth(request: Parameters<PublicKeyCrypto['verifyAuth']>[0]): Promise<boolean> {
    return settled(() => verifyAuth(request));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** The shared inline instance (the default of every IKE SA). */
export const INLINE_PUBLIC_KEY_CRYPTO: PublicKeyCrypto = new InlinePublicKeyCrypto();
