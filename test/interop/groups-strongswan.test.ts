/**
 * tunsec's group connection templates against real strongSwan 5.9.8 peers, in
 * both roles, on one Ethernet segment (test/support/netns-lan.ts): a tunsec hub
 * with one template over the segment's /24 (tunnel mode with ESP-in-UDP,
 * since charon's kernel-libipsec datapath does only that; start_action trap)
 * and three charons, each with an ordinary per-peer connection to the hub.
 * The hub's traffic to two of them makes two instances `fleet[addr]` on
 * demand; the third charon initiates to the template and the hub accepts it
 * as an instance. The setup is shared by the cases (each daemon start costs
 * seconds on this machine).
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ListSasResult, StatusResult } from '../../src/control/protocol.js';
import { controlRequest } from '../../src/cli/control-client.js';
import { createCa, issueCertificate, type Issued } from '../../src/pki/issue.js';
import { Capture } from '../support/capture.js';
import { NetnsLan } from '../support/netns-lan.js';
import type { NetnsSide } from '../support/netns.js';
import { requireRootAndPrograms, waitFor } from '../support/proc.js';
import { StrongSwan, requireStrongSwan } from '../support/strongswan.js';
import { FAST_RETRANSMIT, TunsecDaemon, credentialFiles, daemonAndCredentials } from './tunsec-daemon.js';

requireRootAndPrograms('tunsec group connections with strongSwan', ['ip', 'ping', 'tcpdump']);
requireStrongSwan();

const ca = createCa({ subject: 'C=CH, O=tunsec fleet, CN=tunsec Fleet strongSwan CA', key: 'p384' });

function certificate(name: string, side: NetnsSide): Issued {
  return issueCertificate(ca, {
    subject: `C=CH, O=tunsec fleet, CN=${name}.fleet.test`,
    key: 'p384',
    subjectAltNames: { dns: [`${name}.fleet.test`], ip: [side.ip4] },
  });
}

function hubYaml(hub: NetnsSide, prefix: string): string {
  return [
    ...daemonAndCredentials(FAST_RETRANSMIT),
    'connections:',
    '  fleet:',
    `    local_addrs: ${hub.ip4}`,
    `    remote_addrs: ${prefix}`,
    '    proposals: aes128gcm16-prfsha384-ecp384bp!',
    '    encap: yes',
    '    local:',
    '      certs: [${DIR}/cert.pem]',
    '      id: hub.fleet.test',
    '    remote:',
    '      id: "*.fleet.test"',
    '    children:',
    '      fleet:',
    '        mode: tunnel',
    '        esp_proposals: aes128gcm16-ecp384bp!',
    '        start_action: trap',
    '',
  ].join('\n');
}

function charon(name: string, side: NetnsSide, hub: NetnsSide): StrongSwan {
  const cert = certificate(name, side);
  return new StrongSwan({
    netns: side.ns,
    connections: [
      {
        name: 'hub',
        localAddrs: [side.ip4],
        remoteAddrs: [hub.ip4],
        proposals: 'aes128gcm16-prfsha384-ecp384bp',
        localId: `${name}.fleet.test`,
        remoteId: 'hub.fleet.test',
        certPem: cert.certificatePem,
        keyPem: cert.privateKeyPem!,
        caPem: ca.certificatePem,
        children: [{ name: 'hub', mode: 'tunnel', espProposals: 'aes128gcm16-ecp384bp', localTs: ['dynamic'], remoteTs: ['dynamic'] }],
      },
    ],
  });
}

describe('group connection templates against strongSwan 5.9.8 peers', () => {
  let lan: NetnsLan;
  let hub: NetnsSide;
  let peers: [NetnsSide, NetnsSide, NetnsSide];
  let hubDaemon: TunsecDaemon;
  const charons: StrongSwan[] = [];
  const hubSas = async (): Promise<ListSasResult> => (await controlRequest(join(hubDaemon.dir, 'tunsec.sock'), 'list-sas')) as ListSasResult;
  const instances = async (): Promise<string[]> =>
    (await hubSas()).ike_sas
      .filter((sa) => sa.state === 'established')
      .map((sa) => sa.instance ?? sa.name)
      .sort();

  beforeAll(async () => {
    lan = await NetnsLan.create(4, 'gss');
    const [h, ...rest] = lan.hosts as [NetnsSide, NetnsSide, NetnsSide, NetnsSide];
    hub = h;
    peers = rest as [NetnsSide, NetnsSide, NetnsSide];
    hubDaemon = new TunsecDaemon(hub.ns, hubYaml(hub, lan.prefix), credentialFiles(ca.certificatePem, certificate('hub', hub)));
    await hubDaemon.start();
    charons.push(...peers.map((p, i) => charon(`p${i + 1}`, p, hub)));
    for (const c of charons) await c.start();
    await hubDaemon.event('daemon_started', 60_000);
  }, 120_000);

  afterAll(async () => {
    await hubDaemon?.stop().catch(() => undefined);
    for (const c of charons) await c.stop().catch(() => undefined);
    await lan?.destroy();
  }, 60_000);

  it('tunsec hub initiates on demand to two strongSwan peers: the traffic triggers each instance, listed as fleet[addr], and ping passes through ESP', async () => {
    const [p1, p2] = peers;
    // Cleartext ICMP on the hub's wire would mean a ping bypassed ESP; ESP-in-UDP (4500, no non-ESP marker) must be there.
    const clear = await Capture.start(hub.ns, hub.ifname, ['icmp']);
    const esp = await Capture.start(hub.ns, hub.ifname, ['-c', '8', 'udp', 'port', '4500', 'and', 'udp[8:4]', '!=', '0']);
    try {
      for (const p of [p1, p2]) {
        // The first packet is held while the instance is negotiated; the next ones go through it.
        const ping = await lan.exec(hub, 'ping', ['-c', '4', '-i', '0.5', '-W', '3', p.ip4], 30_000);
        expect(ping.code, `${ping.stdout}\n${ping.stderr}\nhub:\n${hubDaemon.text()}`).toBe(0);
      }
      expect((await clear.stop()).filter((pk) => pk.protocol === 'icmp')).toEqual([]);
      expect((await esp.stop()).length).toBeGreaterThan(0);
    } finally {
      await clear.stop();
      await esp.stop();
    }
    expect(await instances()).toEqual([`fleet[${p1.ip4}]`, `fleet[${p2.ip4}]`].sort());
    const status = (await controlRequest(join(hubDaemon.dir, 'tunsec.sock'), 'status')) as StatusResult;
    expect(status.connections.find((c) => c.name === 'fleet')?.instances?.sort()).toEqual([p1.ip4, p2.ip4].sort());
    for (const c of charons.slice(0, 2)) {
      const sas = await c.listSas();
      expect(Object.keys(sas)).toEqual(['hub']);
    }
    const sa = (await hubSas()).ike_sas.find((s) => s.instance === `fleet[${p1.ip4}]`)!;
    expect(sa.children[0]?.mode).toBe('tunnel');
    expect(sa.nat_local || sa.nat_remote).toBe(true);
  }, 90_000);

  it('a strongSwan peer initiates to the group template and tunsec accepts it as an instance fleet[addr]', async () => {
    const p3 = peers[2];
    const r = await charons[2]!.initiate('hub');
    expect(r.code, `${r.stdout}\n${r.stderr}\nhub:\n${hubDaemon.text()}`).toBe(0);
    await waitFor('the hub to list the instance', async () => (await instances()).includes(`fleet[${p3.ip4}]`), 15_000);
    const ping = await lan.exec(p3, 'ping', ['-c', '3', '-i', '0.3', '-W', '3', hub.ip4], 20_000);
    expect(ping.code, `${ping.stdout}\n${ping.stderr}`).toBe(0);
    expect(Object.keys(await charons[2]!.listSas())).toEqual(['hub']);
  }, 60_000);
});
