/**
 * Group connections in a small fleet: four tunsec daemons on one Ethernet
 * segment (test/support/netns-lan.ts). The hub has one group template over
 * the segment's /24 (remote.id `*.fleet.test`, transport mode, start_action
 * trap, `private`, a short `inactivity`); peer 1 has an ordinary per-peer
 * connection to the hub (a responder), peers 2 and 3 group templates of their
 * own (remote.id `%fromcert-ip`; peer 2 only responds, peer 3 traps). The hub pings peers 1 and 2 and peer 3
 * pings the hub: three per-peer instances appear on demand, shown as
 * `fleet[address]`; a capture on the hub's interface holds no cleartext ICMP;
 * once the traffic stops, the idle instances are closed, and the next packet
 * negotiates one again.
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
import { FAST_RETRANSMIT, TunsecDaemon, credentialFiles, daemonAndCredentials } from './tunsec-daemon.js';

requireRootAndPrograms('tunsec group connections', ['ip', 'ping', 'tcpdump']);

const ca = createCa({ subject: 'C=CH, O=tunsec fleet, CN=tunsec Fleet Test CA', key: 'p384' });
/** Long enough for the pings and the CLI calls of the first test on a loaded machine. */
const INACTIVITY_S = 30;

function certificate(name: string, side: NetnsSide): Issued {
  return issueCertificate(ca, {
    subject: `C=CH, O=tunsec fleet, CN=${name}.fleet.test`,
    key: 'p384',
    subjectAltNames: { dns: [`${name}.fleet.test`], ip: [side.ip4] },
  });
}

/** One connection: `remote` an address or the fleet's prefix; the child's extra lines (eight-space indented). */
function yaml(o: { name: string; side: NetnsSide; remote: string; remoteId: string; startAction: 'trap' | 'none'; childExtra?: string[] }): string {
  return [
    ...daemonAndCredentials(FAST_RETRANSMIT),
    'connections:',
    '  fleet:',
    `    local_addrs: ${o.side.ip4}`,
    `    remote_addrs: ${o.remote}`,
    '    proposals: aes128gcm16-prfsha384-ecp384bp!',
    '    local:',
    '      certs: [${DIR}/cert.pem]',
    `      id: ${o.name}.fleet.test`,
    '    remote:',
    `      id: "${o.remoteId}"`,
    '    children:',
    '      fleet:',
    '        mode: transport',
    '        esp_proposals: aes128gcm16-ecp384bp!',
    `        start_action: ${o.startAction}`,
    ...(o.childExtra ?? []).map((l) => `        ${l}`),
    '',
  ].join('\n');
}

describe('a group connection over a /24 negotiates per-peer instances on demand', () => {
  let lan: NetnsLan;
  let hub: NetnsSide;
  let peers: NetnsSide[];
  const daemons: TunsecDaemon[] = [];
  let hubDaemon: TunsecDaemon;

  // The control socket straight from the test process: the CLI's start-up would eat into the inactivity time.
  const hubSas = async (): Promise<ListSasResult> => (await controlRequest(join(hubDaemon.dir, 'tunsec.sock'), 'list-sas')) as ListSasResult;
  const instances = async (): Promise<string[]> =>
    (await hubSas()).ike_sas
      .filter((sa) => sa.state === 'established')
      .map((sa) => sa.instance ?? sa.name)
      .sort();

  beforeAll(async () => {
    lan = await NetnsLan.create(4, 'grp');
    [hub, ...peers] = lan.hosts as [NetnsSide, ...NetnsSide[]];
    const [p1, p2, p3] = peers as [NetnsSide, NetnsSide, NetnsSide];
    hubDaemon = new TunsecDaemon(
      hub.ns,
      yaml({ name: 'hub', side: hub, remote: lan.prefix, remoteId: '*.fleet.test', startAction: 'trap', childExtra: [`inactivity: ${INACTIVITY_S}s`] }),
      credentialFiles(ca.certificatePem, certificate('hub', hub)),
    );
    daemons.push(
      hubDaemon,
      new TunsecDaemon(
        p1.ns,
        yaml({ name: 'p1', side: p1, remote: hub.ip4, remoteId: 'hub.fleet.test', startAction: 'none' }),
        credentialFiles(ca.certificatePem, certificate('p1', p1)),
      ),
      // p2 only answers for its group (its private traps drop, never negotiate); p3 negotiates on demand
      ...[p2, p3].map(
        (p, i) =>
          new TunsecDaemon(
            p.ns,
            yaml({ name: `p${i + 2}`, side: p, remote: lan.prefix, remoteId: '%fromcert-ip', startAction: i === 0 ? 'none' : 'trap' }),
            credentialFiles(ca.certificatePem, certificate(`p${i + 2}`, p)),
          ),
      ),
    );
    for (const d of daemons) await d.start();
    for (const d of daemons) await d.event('daemon_started', 60_000);
  }, 120_000);

  afterAll(async () => {
    for (const d of daemons) await d.stop().catch(() => undefined);
    await lan?.destroy();
  }, 60_000);

  it("pinging two peers from the hub and the hub from a third makes three instances of the one template, listed as fleet[peer], with no cleartext ICMP on the hub's wire", async () => {
    const [p1, p2, p3] = peers as [NetnsSide, NetnsSide, NetnsSide];
    const clear = await Capture.start(hub.ns, hub.ifname, ['icmp']);
    try {
      const flows = [
        [hub, p1],
        [hub, p2],
        [p3, hub],
      ] as const;
      const pings = await Promise.all(flows.map(([from, to]) => lan.exec(from, 'ping', ['-c', '3', '-i', '0.3', '-w', '30', to.ip4], 40_000)));
      for (const [i, ping] of pings.entries())
        expect(ping.code, `${flows[i]![0].ip4} → ${flows[i]![1].ip4}: ${ping.stdout}\n${ping.stderr}\nhub:\n${hubDaemon.text()}`).toBe(0);
      const status = (await controlRequest(join(hubDaemon.dir, 'tunsec.sock'), 'status')) as StatusResult;
      const group = status.connections.find((c) => c.name === 'fleet');
      expect(group?.state).toBe('established');
      expect(group?.instances?.sort()).toEqual([p1.ip4, p2.ip4, p3.ip4].sort());
      // fail closed without the process too: the backstop prohibits the whole group prefix
      const backstop = await lan.exec(hub, 'ip', ['route', 'show', 'table', '221']);
      expect(backstop.stdout).toContain(`prohibit ${lan.prefix}`);
      expect(await instances(), `hub:\n${hubDaemon.text()}\np3:\n${daemons[3]!.text()}`).toEqual(
        [`fleet[${p1.ip4}]`, `fleet[${p2.ip4}]`, `fleet[${p3.ip4}]`].sort(),
      );
      const sas = (await hubSas()).ike_sas;
      expect(sas.every((sa) => sa.name === 'fleet' && sa.children.length === 1 && sa.children[0]!.mode === 'transport')).toBe(true);
      expect(sas.find((sa) => sa.remote.address === p3.ip4)?.initiator).toBe(false);
      // host to host: each CHILD_SA's selectors are the two addresses
      for (const sa of sas) expect([sa.children[0]!.local_ts, sa.children[0]!.remote_ts]).toEqual([[`${hub.ip4}/32`], [`${sa.remote.address}/32`]]);
    } finally {
      const packets = await clear.stop();
      clear.remove();
      expect(packets.map((p) => `${p.protocol} ${p.src} → ${p.dst}`)).toEqual([]);
    }
  }, 120_000);

  it(`idle instances are closed after inactivity (${INACTIVITY_S} s), and the next packet negotiates the peer's instance again`, async () => {
    const [p1] = peers as [NetnsSide];
    await waitFor('the idle instances to be closed', async () => ((await hubSas()).ike_sas.length === 0 ? true : undefined), 90_000, 1000);
    expect(hubDaemon.lines.filter((l) => /\(inactivity\): deleting the IKE_SA/.test(l.msg ?? '')).length).toBeGreaterThanOrEqual(3);
    const ping = await lan.exec(hub, 'ping', ['-c', '3', '-i', '0.3', '-w', '30', p1.ip4], 40_000);
    expect(ping.code, ping.stdout).toBe(0);
    expect(await instances()).toEqual([`fleet[${p1.ip4}]`]);
  }, 150_000);
});
