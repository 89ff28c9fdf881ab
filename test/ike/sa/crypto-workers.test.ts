/**
 * Two in-process IKE managers whose public-key work runs on crypto workers
 * (daemon.crypto_workers, src/crypto/pool): the handshake completes, the IKE
 * SA waits in order while its work runs — a retransmitted request that
 * arrives meanwhile is answered from the response cache afterwards, never
 * processed a second time (RFC 7296 §2.1) — and a worker failure fails that
 * one exchange, not the manager.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CryptoWorkerError, CryptoWorkerPool, type PublicKeyCrypto } from '../../../src/crypto/pool/index.js';
import { ExchangeType, decodeMessage } from '../../../src/ike/codec/index.js';
import { formatProposal } from '../../../src/ike/proposal/index.js';
import { loopbackPair, stopPeers, type TestPeer } from '../support/peers.js';

const pool = new CryptoWorkerPool(2);
afterAll(() => pool.close());

/** `inner`, with every result held back `ms` (longer than the test peers' 0.3 s retransmit timeout). */
function slow(inner: PublicKeyCrypto, ms: number): PublicKeyCrypto {
  const later = <T>(p: Promise<T>): Promise<T> => p.then((v) => new Promise<T>((resolve) => setTimeout(() => resolve(v), ms)));
  return {
    inline: false,
    generateKeyExchange: (g) => later(inner.generateKeyExchange(g)),
    computeSharedSecret: (own, peer) => later(inner.computeSharedSecret(own, peer)),
    respondKeyExchange: (g, peer) => later(inner.respondKeyExchange(g, peer)),
    signAuth: (r) => later(inner.signAuth(r)),
    verifyAuth: (r) => later(inner.verifyAuth(r)),
    close: () => Promise.resolve(),
  };
}

/** `inner`, whose first responder key exchange is lost as if its worker had died. */
function failingOnce(inner: PublicKeyCrypto): PublicKeyCrypto {
  let failed = false;
  return {
    ...slow(inner, 0),
    respondKeyExchange: (g, peer) => {
      if (failed) return inner.respondKeyExchange(g, peer);
      failed = true;
      return Promise.reject(new CryptoWorkerError('crypto worker 0 exited (code 1); the operation was lost'));
    },
  };
}

const responses = (peer: TestPeer, exchangeType: ExchangeType): Buffer[] =>
  peer.sent.map((s) => s.bytes).filter((b) => decodeMessage(b).header.exchangeType === exchangeType && decodeMessage(b).header.response);

describe('IKE_SA_INIT and IKE_AUTH with crypto workers (daemon.crypto_workers)', () => {
  const peers: TestPeer[] = [];
  afterEach(() => stopPeers(peers));

  it('moon and sun establish the IKE SA and its CHILD_SA over brainpoolP384r1 (group 29) with every key exchange and signature on the workers', async () => {
    const { moon, sun } = await loopbackPair({ crypto: { moon: pool, sun: pool } });
    peers.push(moon, sun);
    const before = pool.counters.operations;
    const sa = await moon.manager.initiate('host-host');
    expect(formatProposal(sa.ctx.selected!)).toBe('aes128gcm16-prfsha384-ecp384bp');
    const sunSa = sun.manager.sas[0]!;
    expect(sunSa.state).toBe('established');
    expect(sunSa.ctx.children[0]!.inboundSpi).toBe(sa.ctx.children[0]!.outboundSpi);
    // moon: generate, shared secret, sign, verify; sun: respond, verify, sign
    expect(pool.counters.operations - before).toBe(7);
    expect(sun.manager.halfOpenCount).toBe(0);
  });

  it('requests retransmitted while the responder waits for its workers are answered from the cache afterwards, never processed twice (§2.1)', async () => {
    const { moon, sun } = await loopbackPair({ crypto: { moon: pool, sun: slow(pool, 450) } });
    peers.push(moon, sun);
    await moon.manager.initiate('host-host');
    expect(sun.manager.sas.filter((s) => s.state === 'established')).toHaveLength(1);
    for (const type of [ExchangeType.IKE_SA_INIT, ExchangeType.IKE_AUTH]) {
      const sent = responses(sun, type);
      // moon retransmitted (0.3 s timeout < 0.45 s of work): the same octets again, so one processing
      expect(sent.length).toBeGreaterThan(1);
      for (const r of sent) expect(r.equals(sent[0]!)).toBe(true);
    }
    expect(sun.manager.counters.internalErrors + moon.manager.counters.internalErrors).toBe(0);
  });

  it('a worker lost during the responder key exchange fails that IKE_SA_INIT (TEMPORARY_FAILURE) only; the next attempt is established', async () => {
    const { moon, sun } = await loopbackPair({ crypto: { moon: pool, sun: failingOnce(pool) } });
    peers.push(moon, sun);
    await expect(moon.manager.initiate('host-host')).rejects.toThrow(/TEMPORARY_FAILURE/);
    expect(sun.log.text()).toContain('key exchange failed: crypto worker 0 exited');
    expect(sun.manager.sas).toHaveLength(0);
    const sa = await moon.manager.initiate('host-host');
    expect(sa.state).toBe('established');
    expect(sun.manager.counters.internalErrors).toBe(0);
  });
});
