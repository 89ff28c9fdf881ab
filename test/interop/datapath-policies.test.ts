/**
 * What the datapath does without an SA (RFC 4301 §5.1.1): a `private` policy
 * holds the first packets, negotiates on demand and sends them once the SA is
 * up, and never lets its traffic out in the clear — not before the first SA,
 * not after the peer is gone; `private-or-clear` passes traffic in the clear
 * while negotiation fails, and says so in its log.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCa, type Issued } from '../../src/pki/issue.js';
import { Capture, isNeighborDiscovery } from '../support/capture.js';
import { NetnsPair } from '../support/netns.js';
import { requireRootAndPrograms, waitFor } from '../support/proc.js';
import { peerCertificates, peerDaemon, type PeerName, type TunsecDaemon } from './tunsec-daemon.js';

requireRootAndPrograms('tunsec datapath policies', ['ip', 'ping', 'tcpdump']);

const ca = createCa({ subject: 'C=CH, O=tunsec datapath, CN=tunsec Policy Test CA', key: 'p384' });

describe('policies without an SA', () => {
  let pair: NetnsPair;
  let certs: Record<PeerName, Issued>;
  const daemons: TunsecDaemon[] = [];

  beforeEach(async () => {
    pair = await NetnsPair.create('dt');
    certs = peerCertificates(ca, pair, 'tunsec datapath');
  });
  afterEach(async () => {
    for (const d of daemons.splice(0)) await d.stop();
    await pair?.destroy();
  });

  const daemon = (
    name: PeerName,
    startAction: 'trap' | 'start' | 'none',
    policy: 'private' | 'private-or-clear' = 'private',
    childExtra: string[] = [],
  ): TunsecDaemon => {
    const d = peerDaemon(pair, ca, certs, name, { name: 'host-host', mode: 'transport', startAction, policy, childExtra });
    daemons.push(d);
    return d;
  };

  it('trap: the first ping is held while the SA is negotiated on demand, then delivered encrypted', async () => {
    const sun = daemon('sun', 'none');
    const moon = daemon('moon', 'trap');
    await sun.start();
    await sun.event('daemon_started');
    await moon.start();
    await moon.event('daemon_started');
    await waitFor('trap policy', () => moon.lines.some((l) => /trap policy for host-host\/host-host\{\d+\} installed/.test(String(l.msg))));
    expect(moon.lines.some((l) => l.event === 'ike_established')).toBe(false);
    const capture = await Capture.start(pair.b.ns, pair.b.ifname, ['icmp']);
    // one echo request, and 10 s for the negotiation: it can only succeed if the held packet went out after it
    const ping = await pair.exec(pair.a, 'ping', ['-c', '1', '-W', '10', pair.b.ip4], 20_000);
    const clear = (await capture.stop()).filter((p) => !isNeighborDiscovery(p));
    capture.remove();
    expect(ping.code, `${ping.stdout}\n${moon.text()}`).toBe(0);
    expect(moon.text()).toMatch(/triggers negotiation \(acquire\)/);
    await moon.event('child_established');
    expect(clear).toEqual([]);
  }, 60_000);

  it('private: with the peer gone, traffic is dropped and never sent in the clear; it flows encrypted again once the peer is back', async () => {
    let sun = daemon('sun', 'none');
    const moon = daemon('moon', 'start');
    await sun.start();
    await sun.event('daemon_started');
    await moon.start();
    await moon.event('child_established');
    await sun.stop(); // sends its Deletes: moon's CHILD_SA and IKE SA are gone
    await waitFor('IKE SA deleted', () => moon.lines.some((l) => l.event === 'ike_destroyed'), 10_000);
    const capture = await Capture.start(pair.b.ns, pair.b.ifname, ['icmp']);
    const ping = await pair.exec(pair.a, 'ping', ['-c', '3', '-i', '0.3', '-W', '1', pair.b.ip4], 20_000);
    // echo requests/replies only: the peer's host answers tunsec's IKE retries with ICMP port unreachable, which is fine
    const clear = (await capture.stop()).filter((p) => p.icmpType === 8 || p.icmpType === 0);
    capture.remove();
    expect(ping.code).not.toBe(0);
    expect(clear.map((p) => `${p.protocol} ${p.src} → ${p.dst}`)).toEqual([]);
    // the trap asked for a new SA; with the peer back, traffic flows again
    sun = daemon('sun', 'none');
    await sun.start();
    await sun.event('daemon_started');
    await waitFor(
      'ping through a renegotiated SA',
      async () => (await pair.exec(pair.a, 'ping', ['-c', '1', '-W', '2', pair.b.ip4], 10_000)).code === 0,
      30_000,
      500,
    );
    await sun.event('child_established');
  }, 90_000);

  it('private-or-clear: while the peer does not answer, traffic passes in the clear and the fallback is logged', async () => {
    const moon = daemon('moon', 'trap', 'private-or-clear');
    await moon.start();
    await moon.event('daemon_started');
    const capture = await Capture.start(pair.b.ns, pair.b.ifname, ['icmp']);
    const ping = await pair.exec(pair.a, 'ping', ['-c', '2', '-i', '0.3', '-W', '2', pair.b.ip4], 20_000);
    const clear = (await capture.stop()).filter((p) => p.protocol === 'icmp' && p.src === pair.a.ip4);
    capture.remove();
    expect(ping.code, ping.stdout).toBe(0);
    expect(clear.length).toBe(2);
    expect(moon.text()).toMatch(/passing traffic in the clear \(private-or-clear fallback/);
  }, 60_000);

  it('hard lifetime without rekeying (rekey_packets: 0): after life_packets the SAs go, the IKE SA is deleted and a new one negotiated on demand; traffic resumes, never in the clear', async () => {
    const sun = daemon('sun', 'none');
    const moon = daemon('moon', 'start', 'private', ['life_packets: 6', 'rekey_packets: 0']);
    await sun.start();
    await sun.event('daemon_started');
    await moon.start();
    await moon.event('child_established');
    const capture = await Capture.start(pair.b.ns, pair.b.ifname, ['icmp']);
    const ping = await pair.exec(pair.a, 'ping', ['-c', '16', '-i', '0.3', '-W', '2', pair.b.ip4], 30_000);
    const clear = (await capture.stop()).filter((p) => p.icmpType === 8 || p.icmpType === 0);
    capture.remove();
    expect(moon.text()).toMatch(/reached its hard packets lifetime; deleting the IKE_SA to renegotiate/);
    expect(moon.lines.filter((l) => l.event === 'child_established').length).toBeGreaterThanOrEqual(2);
    const received = Number(/(\d+) received/.exec(ping.stdout)?.[1] ?? 0);
    expect(received, ping.stdout).toBeGreaterThanOrEqual(12);
    expect(
      clear.map((p) => `icmp type ${p.icmpType} ${p.src} → ${p.dst}`),
      `${moon.text()}\n--- sun\n${sun.text()}`,
    ).toEqual([]);
  }, 90_000);

  it('shunts: a pass child sends its flow in the clear past a protecting policy, a drop child discards its flow, the rest is ESP', async () => {
    const shunts = [
      'ping-pass:',
      '  mode: pass',
      '  local_ts: dynamic[icmp]',
      '  remote_ts: dynamic[icmp]',
      'discard-drop:',
      '  mode: drop',
      '  remote_ts: dynamic[udp/9]',
    ];
    const both = (name: PeerName, startAction: 'start' | 'none'): TunsecDaemon => {
      const d = peerDaemon(pair, ca, certs, name, {
        name: 'host-host',
        mode: 'transport',
        startAction,
        extraChildren: shunts,
        daemonExtra: ['log: { esp: 2 }'],
      });
      daemons.push(d);
      return d;
    };
    const sun = both('sun', 'none');
    const moon = both('moon', 'start');
    await sun.start();
    await sun.event('daemon_started');
    await moon.start();
    await moon.event('child_established');
    expect(moon.text()).toMatch(/shunt policy host-host\/ping-pass\{\d+\} installed: bypass/);
    const capture = await Capture.start(pair.b.ns, pair.b.ifname, ['icmp or esp or udp port 9 or udp port 10']);
    const ping = await pair.exec(pair.a, 'ping', ['-c', '2', '-i', '0.3', '-W', '2', pair.b.ip4], 20_000);
    for (const port of [9, 10]) {
      const probe = `const s = require('node:dgram').createSocket('udp4'); s.send('probe', ${port}, '${pair.b.ip4}', () => s.close());`;
      await pair.exec(pair.a, process.execPath, ['-e', probe]);
    }
    const packets = (await capture.stop()).filter((p) => p.src === pair.a.ip4);
    capture.remove();
    expect(ping.code, ping.stdout).toBe(0);
    expect(packets.filter((p) => p.icmpType === 8)).toHaveLength(2); // echo requests in the clear: the pass shunt
    expect(packets.some((p) => p.protocol === 'udp')).toBe(false); // port 9 discarded, port 10 protected
    expect(packets.filter((p) => p.protocol === 'esp')).toHaveLength(1); // the port-10 probe
  }, 60_000);
});
