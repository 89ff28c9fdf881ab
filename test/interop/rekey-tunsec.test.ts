/**
 * CHILD_SA rekeying between two tunsec daemons (RFC 7296 §1.3.3) in network
 * namespaces, driven by small rekey_time and rekey_packets, with a 20 Hz ping
 * across the rekeys: the SPIs change again and again, no ping is lost, and
 * nothing of the protected flow ever leaves in the clear.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCa, type Issued } from '../../src/pki/issue.js';
import { Capture } from '../support/capture.js';
import { NetnsPair } from '../support/netns.js';
import { pingSummary, requireRootAndPrograms } from '../support/proc.js';
import { peerCertificates, peerDaemon, type PeerName, type TunsecDaemon } from './tunsec-daemon.js';

requireRootAndPrograms('tunsec ↔ tunsec rekeying', ['ip', 'ping', 'tcpdump']);

const ca = createCa({ subject: 'C=CH, O=tunsec rekey, CN=tunsec Rekey Test CA', key: 'p384' });

describe('CHILD_SA rekeying between two tunsec daemons', () => {
  let pair: NetnsPair;
  let certs: Record<PeerName, Issued>;
  const daemons: TunsecDaemon[] = [];

  beforeEach(async () => {
    pair = await NetnsPair.create('rk');
    certs = peerCertificates(ca, pair, 'tunsec rekey');
  });
  afterEach(async () => {
    for (const d of daemons.splice(0)) await d.stop();
    await pair?.destroy();
  });

  async function run(childExtra: string[], seconds: number, connExtra: string[] = []) {
    const sun = peerDaemon(pair, ca, certs, 'sun', { name: 'host-host', mode: 'transport', startAction: 'none', childExtra });
    const moon = peerDaemon(pair, ca, certs, 'moon', { name: 'host-host', mode: 'transport', startAction: 'start', childExtra, connExtra });
    daemons.push(sun, moon);
    await sun.start();
    await sun.event('daemon_started');
    await moon.start();
    await moon.event('child_established');
    const capture = await Capture.start(pair.b.ns, pair.b.ifname, ['icmp']);
    const ping = await pair.exec(pair.a, 'ping', ['-c', String(seconds * 20), '-i', '0.05', '-W', '1', pair.b.ip4], (seconds + 15) * 1000);
    const clear = (await capture.stop()).filter((p) => p.icmpType === 8 || p.icmpType === 0);
    capture.remove();
    const { sent, received } = pingSummary(ping.stdout);
    const both = moon.text() + '\n' + sun.text();
    const rekeys = (both.match(/CHILD_SA host-host\{\d+\} rekeyed with SPIs .*\(PFS\)/g) ?? []).length / 2;
    const diag = `${ping.stdout.split('\n').slice(-3).join('\n')}\n--- moon\n${moon.text().slice(-5000)}\n--- sun\n${sun.text().slice(-5000)}`;
    const collisions = (both.match(/refused \(TEMPORARY_FAILURE\)/g) ?? []).length;
    console.info(
      `rekey-tunsec ${childExtra.join(' ')}: ${sent} pings, ${sent - received} lost, ${rekeys} CHILD rekeys, ${collisions} collisions answered TEMPORARY_FAILURE`,
    );
    return { moon, sun, sent, received, clear, rekeys, both, diag };
  }

  it('rekey_time of a few seconds on both sides: the CHILD_SA is rekeyed again and again with PFS and a 20 Hz ping loses nothing', async () => {
    const r = await run(['rekey_time: 3s', 'life_time: 6s', 'rand_time: 1s'], 16);
    expect(r.sent, r.diag).toBe(320);
    expect(r.sent - r.received, r.diag).toBeLessThanOrEqual(1);
    expect(r.rekeys, r.diag).toBeGreaterThanOrEqual(4);
    expect(r.clear, r.diag).toEqual([]);
    // rekeyed in time: the hard-lifetime fallback never had to delete the IKE SA
    expect(r.both).not.toMatch(/reached its hard .* lifetime; deleting the IKE_SA/);
    expect(r.moon.lines.filter((l) => l.event === 'ike_destroyed')).toEqual([]);
  }, 90_000);

  it('rekey_packets: the soft packet limit of the SAD starts each rekey and a 20 Hz ping loses nothing', async () => {
    const r = await run(['rekey_packets: 60', 'life_packets: 100'], 12);
    expect(r.sent - r.received, r.diag).toBeLessThanOrEqual(1);
    expect(r.both, r.diag).toMatch(/\(soft packets limit of SA [0-9a-f]{8}_[io]\)/);
    expect(r.rekeys, r.diag).toBeGreaterThanOrEqual(3);
    expect(r.clear, r.diag).toEqual([]);
    expect(r.both).not.toMatch(/reached its hard .* lifetime; deleting the IKE_SA/);
  }, 90_000);

  it("the connection's rekey_time from the configuration drives IKE_SA rekeys while a 20 Hz ping loses nothing and nothing leaves in the clear", async () => {
    const r = await run([], 12, ['rekey_time: 4s', 'over_time: 4s', 'rand_time: 1s']);
    expect(r.sent - r.received, r.diag).toBeLessThanOrEqual(1);
    expect(r.moon.text(), r.diag).toMatch(/rekeying IKE_SA/);
    expect(r.clear, r.diag).toEqual([]);
    expect(r.both).not.toMatch(/reached its hard .* lifetime; deleting the IKE_SA/);
  }, 90_000);
});
