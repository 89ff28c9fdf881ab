/**
 * What an established IKE SA keeps (docs/notes/memory.md): the IKE_SA_INIT
 * messages, nonces and CERTREQs are gone once IKE_AUTH is done, the CHILD_SA's
 * octets sit in allocations of their own, and the per-message SK_e contexts
 * refuse use after the keys are destroyed. Rekeys keep working (test/ike/sa/rekey.test.ts).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { loopbackPair, stopPeers, type TestPeer } from '../support/peers.js';
import type { IkeSa } from '../../../src/ike/sa/ike-sa.js';

const peers: TestPeer[] = [];
afterEach(() => stopPeers(peers));

const ownAllocation = (b: Buffer): boolean => b.byteOffset === 0 && b.buffer.byteLength === b.length;

describe('state an established IKE SA retains', () => {
  it('drops IKE_SA_INIT octets, nonces and CERTREQs after IKE_AUTH on both sides and keeps SPIs and CHILD octets out of the Buffer pool', async () => {
    const { moon, sun } = await loopbackPair();
    peers.push(moon, sun);
    const initiator: IkeSa = await moon.manager.initiate('host-host');
    await expect.poll(() => sun.manager.sas.filter((s) => s.state === 'established').length).toBe(1);
    for (const sa of [initiator, sun.manager.sas[0]!]) {
      const { ctx } = sa;
      expect(ctx.initRequest).toBeUndefined();
      expect(ctx.initResponse).toBeUndefined();
      expect(ctx.Ni).toBeUndefined();
      expect(ctx.Nr).toBeUndefined();
      expect(ctx.peerCertReqs).toEqual([]);
      expect(ownAllocation(ctx.spiI) && ownAllocation(ctx.spiR)).toBe(true);
      expect(ctx.children).toHaveLength(1);
      const child = ctx.children[0]!;
      const octets = [child.proposal.spi, ...[...child.localRanges!, ...child.remoteRanges!].flatMap((r) => [r.startAddress, r.endAddress])];
      expect(new Set(octets.map((b) => b.buffer)).size).toBe(1);
      expect(octets[0]!.buffer.byteLength).toBe(octets.reduce((n, b) => n + b.length, 0));
    }
    // both IKE SAs hold the peer certificate each received: one parsed object per side's peer
    expect(initiator.ctx.peerCertificate?.subject.text).toContain('sun');
  });

  it('the SK_e contexts refuse to seal after the keys are destroyed', async () => {
    const { moon, sun } = await loopbackPair();
    peers.push(moon, sun);
    const sa = await moon.manager.initiate('host-host');
    const keys = sa.ctx.keys!;
    const sealer = keys.sealerFor(true);
    const sealed = sealer.seal(Buffer.alloc(8), Buffer.alloc(0), Buffer.from('x'));
    expect(keys.sealerFor(false).open(Buffer.alloc(8), Buffer.alloc(0), sealed)).toBeNull(); // the other direction's key
    expect(keys.sealerFor(true).open(Buffer.alloc(8), Buffer.alloc(0), sealed)?.toString()).toBe('x');
    sa.destroy('test');
    expect(() => sealer.seal(Buffer.alloc(8), Buffer.alloc(0), Buffer.from('x'))).toThrow(/after destroy/);
  });
});
