/**
 * One template for a fleet (issue 20): a hub and eight peers, each a tunsec
 * daemon in a namespace of its own on one segment (test/support/fleet.ts).
 * The hub's single group template (`private`, trap, remote.id `*.fleet.test`)
 * negotiates an SA with each peer on the first packet sent to it; `status`
 * lists the eight instances under the template's name. A peer whose daemon
 * is killed loses its instance on the hub by DPD, and gets a new SA when it
 * is back and traffic flows again. A capture on the hub's interface over the
 * whole run holds no packet to a peer that is neither ESP nor IKE.
 * `npm run bench:fleet` (bench/fleet.ts) is the same with 64 peers, timed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Capture } from '../support/capture.js';
import { FLEET_TEMPLATE, Fleet, type FleetPeer } from '../support/fleet.js';
import { requireRootAndPrograms } from '../support/proc.js';

requireRootAndPrograms('tunsec fleet', ['ip', 'ping', 'tcpdump', 'curl']);

const PEERS = 8;

describe(`one group template reaches ${PEERS} peers on demand, in private`, () => {
  let fleet: Fleet;
  let capture: Capture;

  beforeAll(async () => {
    fleet = await Fleet.create({ peers: PEERS, label: 'flt', inactivityS: 120, dpdDelayS: 2, startConcurrency: 3 });
    try {
      await fleet.start();
      capture = await Capture.start(fleet.hub.ns, fleet.hub.ifname, ['ip']);
    } catch (err) {
      await fleet.destroy();
      throw err;
    }
  }, 180_000);

  afterAll(async () => {
    await capture?.stop();
    capture?.remove();
    await fleet?.destroy();
  }, 60_000);

  it(`one ping to each peer gives every peer an SA, and status lists the ${PEERS} instances under the template's name`, async () => {
    expect(await fleet.establishedPeers()).toEqual([]);
    const pings = await fleet.ping(fleet.peers, { deadlineS: 20 });
    for (const p of pings) expect(p.ok, `${p.peer.side.ip4}: ${p.output}\nhub:\n${fleet.hubDaemon.text()}`).toBe(true);
    await fleet.waitForInstances(fleet.peers, 20_000);
    const status = await fleet.hubStatus();
    expect(status.connections.map((c) => c.name)).toEqual([FLEET_TEMPLATE]);
    const group = status.connections[0]!;
    expect(group.state).toBe('established');
    expect([...(group.instances ?? [])].sort()).toEqual(fleet.peers.map((p) => p.side.ip4).sort());
    const sas = (await fleet.hubSas()).ike_sas;
    expect(sas).toHaveLength(PEERS);
    for (const sa of sas) {
      expect(sa.instance).toBe(`${FLEET_TEMPLATE}[${sa.remote.address}]`);
      expect(sa.initiator).toBe(true);
      expect(sa.children.map((c) => [c.mode, c.local_ts, c.remote_ts])).toEqual([['transport', [`${fleet.hub.ip4}/32`], [`${sa.remote.address}/32`]]]);
    }
  }, 60_000);

  it('a peer whose daemon dies loses its instance by DPD, and gets a new SA on the next packet once it is back', async () => {
    const peer = fleet.peers[0] as FleetPeer;
    const before = (await fleet.hubSas()).ike_sas.find((sa) => sa.remote.address === peer.side.ip4);
    expect(before).toBeDefined();
    await fleet.kill(peer);
    // traffic to the dead peer: ESP on the old SA, then held and dropped by the trap, never clear
    const lost = await fleet.ping([peer], { deadlineS: 3 });
    expect(lost[0]!.ok).toBe(false);
    await fleet.waitForNoInstances([peer], 30_000);
    const destroyed = fleet.hubDaemon.lines.filter(
      (l) => l.event === 'ike_destroyed' && (l.remote as { address?: string } | undefined)?.address === peer.side.ip4,
    );
    expect(destroyed.map((l) => l.cause)).toEqual(['dead-peer']);
    // the others keep theirs
    const others = fleet.peers.filter((p) => p !== peer);
    expect(await fleet.establishedPeers()).toEqual(others.map((p) => p.side.ip4).sort());
    await fleet.restart(peer);
    const back = await fleet.ping([peer], { deadlineS: 20, untilReply: true });
    expect(back[0]!.ok, `${back[0]!.output}\nhub:\n${fleet.hubDaemon.text()}`).toBe(true);
    await fleet.waitForInstances(fleet.peers, 20_000);
    const after = (await fleet.hubSas()).ike_sas.find((sa) => sa.remote.address === peer.side.ip4);
    expect(after?.spi_i).not.toBe(before?.spi_i);
    expect(after?.instance).toBe(`${FLEET_TEMPLATE}[${peer.side.ip4}]`);
  }, 90_000);

  it("the capture on the hub's interface holds ESP to every peer and not one packet to a peer in the clear", async () => {
    const packets = await capture.stop();
    expect(fleet.cleartextToPeers(packets).map((p) => `${p.protocol} ${p.src} → ${p.dst}`)).toEqual([]);
    const esp = new Set(packets.filter((p) => p.protocol === 'esp' && p.src === fleet.hub.ip4).map((p) => p.dst));
    expect([...esp].sort()).toEqual(fleet.peers.map((p) => p.side.ip4).sort());
  }, 30_000);
});
