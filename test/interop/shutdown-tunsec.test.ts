/**
 * Shutdown races with a peer that redials (issue 17): two `tunsec daemon`
 * processes in network namespaces. moon keeps the connection up
 * (`start_action: start`, `close_action: start`, `keyingtries: 0`): when sun's
 * Delete arrives it initiates again at once, while sun is still sending its
 * Deletes. sun, stopping, must complete no new IKE SA (strongSwan ignores
 * IKE_SA_INIT while it shuts down), so moon keeps no IKE SA towards a daemon
 * that is gone, and once sun is back the flow is back as soon as moon redials.
 * Before, sun answered the redial, established an IKE SA and a CHILD_SA
 * during its shutdown, installed routes into a TUN device already removed,
 * and left the IKE SA behind on moon: moon's traffic went into an SA sun
 * no longer had until moon's DPD gave up on it.
 * The daemons retransmit after 0.5 s, ×1.5, 2 times.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCa, type Issued } from '../../src/pki/issue.js';
import type { ListSasResult } from '../../src/control/protocol.js';
import { NetnsPair } from '../support/netns.js';
import { requireRootAndPrograms, waitFor } from '../support/proc.js';
import { FAST_RETRANSMIT, peerCertificates, peerDaemon, type LogLine, type PeerName, type TunsecDaemon } from './tunsec-daemon.js';

requireRootAndPrograms('tunsec ↔ tunsec shutdown with a redialing peer', ['ip', 'ping']);

const ca = createCa({ subject: 'C=CH, O=tunsec shutdown, CN=tunsec Shutdown Test CA', key: 'p384' });

describe('a stopping tunsec daemon and a peer that redials at once', () => {
  let pair: NetnsPair;
  let certs: Record<PeerName, Issued>;
  const daemons: TunsecDaemon[] = [];

  beforeEach(async () => {
    pair = await NetnsPair.create('sd');
    certs = peerCertificates(ca, pair, 'tunsec shutdown');
  });
  afterEach(async () => {
    for (const d of daemons.splice(0)) await d.stop();
    await pair?.destroy();
  });

  function moonDaemon(): TunsecDaemon {
    const d = peerDaemon(pair, ca, certs, 'moon', {
      name: 'host-host',
      mode: 'transport',
      startAction: 'start',
      policy: 'private',
      childExtra: ['close_action: start', 'dpd_action: restart'],
      connExtra: ['keyingtries: 0', 'dpd_delay: 30s'],
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
  /** Ping sun from moon once a try until one is answered: the flow is back. */
  const pingAnswered = (timeoutMs: number): Promise<true> =>
    waitFor(
      'a ping answered through the new SAs',
      async () => (await pair.exec(pair.a, 'ping', ['-c', '1', '-W', '1', pair.b.ip4], 10_000)).code === 0 || undefined,
      timeoutMs,
      200,
    );

  it('SIGTERM while the peer redials: no IKE SA completes on the stopping side, no route is installed after teardown began, the peer keeps no IKE SA, and the flow is back once the daemon restarts', async () => {
    const moon = moonDaemon();
    let sun = sunDaemon();
    await sun.start();
    await sun.event('daemon_started');
    await moon.start();
    await moon.event('child_established');
    await sun.event('child_established');

    const sigtermAt = Date.now();
    expect(await sun.stop()).toBe(0);
    const stoppedAfterMs = Date.now() - sigtermAt;
    const stopped = sun.lines;
    const sigterm = stopped.findIndex((l) => /SIGTERM received: deleting 1 IKE SA/.test(l.msg ?? ''));
    const diag = (): string =>
      `--- sun (stopped)\n${stopped.map((l) => (l.event ? JSON.stringify(l) : `${l.level ?? ''} ${l.msg ?? ''}`)).join('\n')}\n--- moon\n${moon.text().slice(-6000)}`;
    expect(sigterm, diag()).toBeGreaterThanOrEqual(0);
    // moon did redial while sun was stopping (the race this test is about)
    await waitFor('moon re-initiates on the Delete', () => moon.lines.find((l) => /close_action start: initiating again/.test(l.msg ?? '')), 10_000);
    // …and the stopping sun completed nothing and installed nothing
    const afterSigterm = stopped.slice(sigterm);
    const moonSas = JSON.parse((await moon.cli('list-sas', '--json')).stdout) as ListSasResult;
    const redials = stopped.filter((l) => /IKE_SA_INIT from .* dropped: shutting down/.test(l.msg ?? '')).length;
    console.info(
      `shutdown: sun stopped ${stoppedAfterMs} ms after SIGTERM; ${redials} logged IKE_SA_INIT drop(s) while stopping; moon's IKE SAs then: ${moonSas.ike_sas.map((s) => s.state).join(', ') || 'none'}`,
    );
    expect(
      afterSigterm.filter((l) => l.event === 'ike_established' || l.event === 'child_established'),
      diag(),
    ).toEqual([]);
    expect(
      afterSigterm.filter((l) => /Cannot find device|installing routes/.test(l.msg ?? '')),
      diag(),
    ).toEqual([]);
    expect(afterSigterm.at(-1)?.event, diag()).toBe('daemon_stopped');
    // the peer holds no IKE SA towards the daemon that is gone (at most its redial, not established)
    expect(
      moonSas.ike_sas.filter((s) => s.state === 'established'),
      diag(),
    ).toEqual([]);

    sun = sunDaemon();
    const restartedAt = Date.now();
    await sun.start();
    await sun.event('daemon_started');
    const startedAfterMs = Date.now() - restartedAt;
    // traffic from moon: the flow is back once moon's redial (or its acquire) reaches the new sun
    await pingAnswered(90_000);
    const backAfterMs = Date.now() - restartedAt;
    console.info(
      `shutdown: after the restart sun was listening after ${startedAfterMs} ms, the first ping was answered ${backAfterMs} ms after the restart began`,
    );
    const ping = await pair.exec(pair.a, 'ping', ['-c', '5', '-i', '0.2', '-W', '1', pair.b.ip4], 15_000);
    expect(ping.code, `${ping.stdout}\n${diag()}\n--- sun (restarted)\n${sun.text().slice(-4000)}`).toBe(0);
    expect(events(sun, 'ike_established')).toHaveLength(1);
  }, 180_000);

  it("a restarted daemon answers the first request of the IKE SA the peer still holds by initiating: INITIAL_CONTACT replaces the stale IKE SA before the peer's DPD gives up on it", async () => {
    // moon retransmits as strongSwan does, a little faster: a silent peer counts as dead ~24 s after the check
    const moon = peerDaemon(pair, ca, certs, 'moon', {
      name: 'host-host',
      mode: 'transport',
      startAction: 'start',
      policy: 'private',
      childExtra: ['dpd_action: restart'],
      connExtra: ['keyingtries: 0', 'dpd_delay: 3s'],
      daemonExtra: ['retransmit_timeout: 2', 'retransmit_base: 1.8', 'retransmit_tries: 3'],
    });
    daemons.push(moon);
    const sunTrap = (): TunsecDaemon => {
      const d = peerDaemon(pair, ca, certs, 'sun', {
        name: 'host-host',
        mode: 'transport',
        startAction: 'trap',
        policy: 'private',
        daemonExtra: FAST_RETRANSMIT,
      });
      daemons.push(d);
      return d;
    };
    let sun = sunTrap();
    await sun.start();
    await sun.event('daemon_started');
    await moon.start();
    await moon.event('child_established');
    // sun crashes: no Delete, moon keeps its IKE SA and sends its liveness checks into the void
    await sun.kill();
    await waitFor('moon checks liveness', () => moon.lines.find((l) => /retransmit 1 of INFORMATIONAL/.test(l.msg ?? '')), 20_000);
    sun = sunTrap();
    const restartedAt = Date.now();
    await sun.start();
    const replaced = await waitFor('moon drops the stale IKE SA', () => events(moon, 'ike_destroyed')[0], 60_000);
    const replacedAfterMs = Date.now() - restartedAt;
    await pingAnswered(60_000);
    const backAfterMs = Date.now() - restartedAt;
    const diag = `--- moon\n${moon.text().slice(-6000)}\n--- sun\n${sun.text().slice(-4000)}`;
    console.info(
      `lost peer: moon's stale IKE SA ended (${String(replaced.cause)}) ${replacedAfterMs} ms and the first ping was answered ${backAfterMs} ms after sun's restart began`,
    );
    expect(
      sun.lines.some((l) => /sent an IKE request for an IKE_SA we do not have/.test(l.msg ?? '')),
      diag,
    ).toBe(true);
    expect(replaced.cause, diag).toBe('replaced');
    expect(String(replaced.reason), diag).toMatch(/INITIAL_CONTACT/);
    expect(
      events(sun, 'ike_established').map((l) => l.initiator),
      diag,
    ).toEqual([true]);
  }, 180_000);
});
