/**
 * What happens when a peer goes away, between two tunsec daemons in network
 * namespaces (RFC 7296 §2.4; swanctl's dpd_delay, dpd_action, close_action):
 * a peer killed without a word is found dead by DPD, its protected flow is
 * never sent in the clear meanwhile (`private` policy, capture on the wire),
 * traffic or dpd_action `restart` negotiates again, and when the peer is back
 * the SAs come back and traffic flows; a peer that closes the IKE_SA is
 * followed by close_action `start`.
 * The daemons retransmit after 0.5 s, ×1.5, 2 times: a silent peer counts as
 * dead ~2.4 s after the liveness check that dpd_delay 2s starts.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCa, type Issued } from '../../src/pki/issue.js';
import { Capture } from '../support/capture.js';
import { NetnsPair } from '../support/netns.js';
import { requireRootAndPrograms, waitFor } from '../support/proc.js';
import { FAST_RETRANSMIT, peerCertificates, peerDaemon, type LogLine, type PeerName, type TunsecDaemon } from './tunsec-daemon.js';

requireRootAndPrograms('tunsec ↔ tunsec dead peer detection', ['ip', 'ping', 'tcpdump']);

const ca = createCa({ subject: 'C=CH, O=tunsec lifecycle, CN=tunsec Lifecycle Test CA', key: 'p384' });

describe('dead peers and closed IKE_SAs between two tunsec daemons', () => {
  let pair: NetnsPair;
  let certs: Record<PeerName, Issued>;
  const daemons: TunsecDaemon[] = [];

  beforeEach(async () => {
    pair = await NetnsPair.create('lc');
    certs = peerCertificates(ca, pair, 'tunsec lifecycle');
  });
  afterEach(async () => {
    for (const d of daemons.splice(0)) await d.stop();
    await pair?.destroy();
  });

  function moonDaemon(childExtra: string[], connExtra: string[] = []): TunsecDaemon {
    const d = peerDaemon(pair, ca, certs, 'moon', {
      name: 'host-host',
      mode: 'transport',
      startAction: 'start',
      policy: 'private',
      childExtra,
      connExtra: ['dpd_delay: 2s', ...connExtra],
      daemonExtra: FAST_RETRANSMIT,
    });
    daemons.push(d);
    return d;
  }
  function sunDaemon(): TunsecDaemon {
    const d = peerDaemon(pair, ca, certs, 'sun', {
      name: 'host-host',
      mode: 'transport',
      startAction: 'none',
      policy: 'private',
      daemonExtra: FAST_RETRANSMIT,
    });
    daemons.push(d);
    return d;
  }
  const events = (d: TunsecDaemon, name: string): LogLine[] => d.lines.filter((l) => l.event === name);

  /** Ping sun from moon at `hz` until `stop()`; resolves with the summary of ping(8). */
  function pinger(hz: number, seconds: number) {
    return pair.exec(pair.a, 'ping', ['-c', String(hz * seconds), '-i', String(1 / hz), '-W', '1', pair.b.ip4], (seconds + 60) * 1000);
  }

  it('peer killed: DPD declares it dead, nothing of the private flow leaves in the clear, traffic renegotiates and flows again once the peer is back', async () => {
    const moon = moonDaemon(['dpd_action: trap']);
    let sun = sunDaemon();
    await sun.start();
    await sun.event('daemon_started');
    await moon.start();
    await moon.event('child_established');
    const capture = await Capture.start(pair.a.ns, pair.a.ifname, ['icmp']);
    try {
      const ping = pinger(5, 30);
      await new Promise((r) => setTimeout(r, 2000));
      await sun.kill();
      const killedAt = Date.now();
      const dead = await waitFor('moon declares sun dead', () => events(moon, 'ike_destroyed').find((l) => l.cause === 'dead-peer'), 20_000);
      const deadAfterMs = Date.now() - killedAt;
      // traffic keeps hitting the trap: on-demand negotiation is attempted (and fails while sun is gone)
      await waitFor('an acquire after the peer died', () => moon.lines.find((l) => /triggers negotiation \(acquire\)/.test(l.msg ?? '')), 15_000);
      await new Promise((r) => setTimeout(r, 3000));
      sun = sunDaemon();
      const restartedAt = Date.now();
      await sun.start();
      await waitFor('CHILD_SA again', () => events(moon, 'child_established').length >= 2 || undefined, 30_000);
      const backAfterMs = Date.now() - restartedAt;
      const summary = await ping;
      // ping's own summary is not relied on: its run may be cut short by the exec timeout under load
      const seqs = [...summary.stdout.matchAll(/icmp_seq=(\d+)/g)].map((m) => Number(m[1]));
      const sent = Math.max(0, ...seqs);
      const received = new Set(seqs).size;
      const clear = (await capture.stop()).filter((p) => p.icmpType === 8 || p.icmpType === 0);
      const diag = `${summary.stdout.split('\n').slice(-3).join('\n')}\n--- moon\n${moon.text().slice(-6000)}\n--- sun\n${sun.text().slice(-3000)}`;
      if (summary.code !== 0) console.info(`ping exit ${summary.code}: ${summary.stderr.slice(-500)}`);
      console.info(
        `dead peer: declared dead ${deadAfterMs} ms after SIGKILL (${String(dead.reason)}); SAs back ${backAfterMs} ms after the restart; ${sent} pings, ${received} answered, ${clear.length} in the clear`,
      );
      expect(String(dead.reason), diag).toMatch(/did not answer INFORMATIONAL request/);
      expect(
        clear.map((p) => `${p.src} → ${p.dst} type ${p.icmpType}`),
        diag,
      ).toEqual([]);
      // the pings of the last seconds, after the SAs came back, were answered
      const tail = await pair.exec(pair.a, 'ping', ['-c', '5', '-i', '0.2', '-W', '1', pair.b.ip4], 15_000);
      expect(tail.code, `${tail.stdout}\n${diag}`).toBe(0);
      expect(received, diag).toBeGreaterThan(0);
      expect(received, diag).toBeLessThan(sent);
      // the restarted sun got INITIAL_CONTACT; moon's new IKE_SA is the only one
      expect(events(moon, 'ike_established')).toHaveLength(2);
    } finally {
      await capture.stop();
      capture.remove();
    }
  }, 120_000);

  it('dpd_action restart: after the peer is declared dead tunsec initiates again by itself (keyingtries 0) and is back up without traffic once the peer returns', async () => {
    const moon = moonDaemon(['dpd_action: restart'], ['keyingtries: 0']);
    let sun = sunDaemon();
    await sun.start();
    await sun.event('daemon_started');
    await moon.start();
    await moon.event('child_established');
    await sun.kill();
    await waitFor('moon declares sun dead', () => events(moon, 'ike_destroyed').find((l) => l.cause === 'dead-peer'), 20_000);
    await waitFor('restart', () => moon.lines.find((l) => /dpd_action restart: initiating again/.test(l.msg ?? '')), 5_000);
    sun = sunDaemon();
    await sun.start();
    await waitFor('CHILD_SA again, no traffic needed', () => events(moon, 'child_established').length >= 2 || undefined, 40_000);
    const ping = await pair.exec(pair.a, 'ping', ['-c', '5', '-i', '0.2', '-W', '1', pair.b.ip4], 15_000);
    expect(ping.code, `${ping.stdout}\n${moon.text().slice(-4000)}`).toBe(0);
  }, 120_000);

  it('close_action start: when the peer closes the IKE_SA (tunsec down on sun) tunsec negotiates it again at once', async () => {
    const moon = moonDaemon(['close_action: start']);
    const sun = sunDaemon();
    await sun.start();
    await sun.event('daemon_started');
    await moon.start();
    await moon.event('child_established');
    const down = await sun.cli('down', 'host-host');
    expect(down.stdout, down.stderr).toBe('host-host: 1 IKE_SA deleted\n');
    const closed = await waitFor('moon sees the peer close', () => events(moon, 'ike_destroyed').find((l) => l.cause === 'peer-deleted'), 10_000);
    expect(closed.reason).toBe('peer deleted the IKE_SA');
    await waitFor('CHILD_SA again', () => events(moon, 'child_established').length >= 2 || undefined, 15_000);
    const ping = await pair.exec(pair.a, 'ping', ['-c', '3', '-i', '0.2', '-W', '1', pair.b.ip4], 15_000);
    expect(ping.code, `${ping.stdout}\n${moon.text().slice(-4000)}`).toBe(0);
  }, 90_000);
});
