/**
 * tunsec without CAP_NET_RAW (podman's default capability set gives a
 * container NET_ADMIN when asked, but not NET_RAW): the daemon cannot open raw
 * IP sockets, says so once, and still carries ESP-in-UDP (RFC 3948), which
 * needs only its UDP sockets — the configuration of the container lab.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCa, type Issued } from '../../src/pki/issue.js';
import { NetnsPair } from '../support/netns.js';
import { requireRootAndPrograms } from '../support/proc.js';
import { peerCertificates, peerDaemon, startResponderThenInitiator, type PeerName, type TunsecDaemon } from './tunsec-daemon.js';

requireRootAndPrograms('tunsec without CAP_NET_RAW', ['ip', 'ping', 'setpriv']);

const ca = createCa({ subject: 'C=CH, O=tunsec caps, CN=tunsec Capabilities Test CA', key: 'p384' });

describe('a daemon without CAP_NET_RAW', () => {
  let pair: NetnsPair;
  let certs: Record<PeerName, Issued>;
  const daemons: TunsecDaemon[] = [];

  beforeEach(async () => {
    pair = await NetnsPair.create('nr');
    certs = peerCertificates(ca, pair, 'tunsec caps');
  });
  afterEach(async () => {
    for (const d of daemons.splice(0)) await d.stop();
    await pair?.destroy();
  });

  it('starts, warns that raw ESP is unavailable, and carries a tunnel over ESP-in-UDP', async () => {
    const sun = peerDaemon(pair, ca, certs, 'sun', { name: 'tun', mode: 'tunnel', startAction: 'none', encap: true });
    const moon = peerDaemon(pair, ca, certs, 'moon', { name: 'tun', mode: 'tunnel', startAction: 'start', encap: true });
    moon.wrapper = ['setpriv', '--bounding-set', '-net_raw', '--'];
    daemons.push(sun, moon);
    await startResponderThenInitiator(sun, moon);
    expect(moon.text()).toMatch(/raw IPv4 sockets unavailable \(.*Operation not permitted\).*ESP-in-UDP works/);
    const ping = await pair.exec(pair.a, 'ping', ['-c', '4', '-i', '0.2', '-W', '2', pair.b.ip4], 20_000);
    expect(ping.code, `${ping.stdout}\n${moon.text().slice(-3000)}`).toBe(0);
  }, 60_000);
});
