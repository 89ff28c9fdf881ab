/**
 * Deleting one CHILD_SA while its IKE SA stays (RFC 7296 §1.4.1; what
 * `swanctl --terminate --child` asks of tunsec): between two in-process tunsec
 * peers, the initiator's INFORMATIONAL Delete removes the pair on both sides
 * and the peer reports the CHILD_SA closed; the IKE SA is untouched.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { waitUntil as waitFor } from '../support/wait.js';
import { freePorts, peerConfig, startPeer, testPki, type TestPeer, stopPeers } from '../support/peers.js';
import type { ChildSaRecord } from '../../../src/ike/sa/context.js';

describe('deleting one CHILD_SA on request (§1.4.1)', () => {
  const peers: TestPeer[] = [];
  afterEach(() => stopPeers(peers));

  async function pair() {
    const pki = testPki();
    const ports = await freePorts();
    const moonCert = pki.host('moon.tunsec.test', { ip: ['127.0.0.1'] });
    const sunCert = pki.host('sun.tunsec.test', { ip: ['127.0.0.2'] });
    const moon = await startPeer('127.0.0.1', ports, [
      {
        config: peerConfig(pki, moonCert, 'moon.tunsec.test', 'sun.tunsec.test'),
        localAddrs: ['127.0.0.1'],
        remoteAddrs: ['127.0.0.2'],
        remotePort: ports.ike,
      },
    ]);
    const sun = await startPeer('127.0.0.2', ports, [
      { config: peerConfig(pki, sunCert, 'sun.tunsec.test', 'moon.tunsec.test'), localAddrs: ['127.0.0.2'], remoteAddrs: ['127.0.0.1'], remotePort: ports.ike },
    ]);
    peers.push(moon, sun);
    const moonSa = await moon.manager.initiate('host-host');
    await waitFor(() => sun.manager.sas.some((s) => s.state === 'established' && s.ctx.children.length === 1), 4000, 'sun established');
    return { moon, sun, moonSa, sunSa: sun.manager.sas.find((s) => s.state === 'established')! };
  }

  it('the Delete removes the CHILD_SA on both sides, the peer reports it closed, the IKE SA stays established', async () => {
    const { moon, sun, moonSa, sunSa } = await pair();
    const child = moonSa.ctx.children[0]!;
    expect(moon.sad.listSas()).toHaveLength(2);
    const closed: ChildSaRecord[] = [];
    sun.manager.on('childClosed', (_sa, c) => closed.push(c));
    expect(await moonSa.deleteChild(child, 'test')).toEqual({ ok: true });
    expect(moonSa.ctx.children).toEqual([]);
    expect(moon.sad.listSas()).toHaveLength(0);
    await waitFor(() => closed.length === 1, 4000, 'sun saw the Delete');
    expect(closed[0]!.outboundSpi).toBe(child.inboundSpi);
    expect(sunSa.ctx.children).toEqual([]);
    expect(sun.sad.listSas()).toHaveLength(0);
    expect(moonSa.state).toBe('established');
    expect(sunSa.state).toBe('established');
    expect(moon.log.text()).toMatch(/CHILD_SA host-host\{\d+\} deleted \([0-9a-f]{8}_i [0-9a-f]{8}_o\)/);
  });

  it('a CHILD_SA that is gone, or being rekeyed, is not deleted and the reason is given', async () => {
    const { moonSa } = await pair();
    const child = moonSa.ctx.children[0]!;
    moonSa.rekeyChild(child, 'test');
    expect(await moonSa.deleteChild(child, 'test')).toEqual({ ok: false, reason: 'the CHILD_SA is being rekeyed; try again' });
    await waitFor(() => moonSa.ctx.children.length === 1 && moonSa.ctx.children[0] !== child, 4000, 'rekeyed');
    expect(await moonSa.deleteChild(child, 'test')).toEqual({ ok: false, reason: 'the CHILD_SA is gone' });
  });
});
