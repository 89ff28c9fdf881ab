/**
 * The ESP inbound path (PacketEngine.inbound) under arbitrary and mutated
 * packets (fast-check): it never throws, every packet is counted under
 * exactly one inbound counter, an unauthenticated packet moves no replay
 * window and no SA byte/packet counter, and the esp-raw / esp-udp fuzz
 * targets (real SAs, the strongSwan fixture's packets, plaintexts sealed
 * under a valid ICV) hold.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { SaSpec } from '../../src/esp/api.js';
import { PacketEngine, type InboundResult } from '../../src/esp/engine.js';
import { SecurityAssociationDatabase } from '../../src/esp/sadb.js';
import { assertTargetHolds, mutatedCorpus, octets, readyTarget } from './support.js';

const any = (a: string) => ({ protocol: 0, startAddress: a, endAddress: a, startPort: 0, endPort: 0xffff });

function sa(spi: number, mode: 'transport' | 'tunnel', esn: boolean): SaSpec {
  return {
    spi,
    direction: 'in',
    localAddress: '10.1.0.2',
    remoteAddress: '10.1.0.1',
    mode,
    encap: { localPort: 4500, remotePort: 4500 },
    aead: { transformId: 20, keyBits: 128, keyMaterial: randomBytes(20) },
    esn,
    replayWindow: 32,
    lifetimes: { softSeconds: 0, hardSeconds: 0, softBytes: 0, hardBytes: 0, softPackets: 0, hardPackets: 0 },
    reqid: spi,
    localSelectors: [any('10.1.0.2')],
    remoteSelectors: [any('10.1.0.1')],
  };
}

describe('ESP inbound fuzzing properties', () => {
  it('arbitrary octets behind a known SPI are never delivered, count exactly one drop, and leave the replay window and the SA counters as they were', () => {
    const sad = new SecurityAssociationDatabase();
    const dp = new PacketEngine(sad);
    sad.addSa(sa(0x1001, 'transport', false));
    sad.addSa(sa(0x1002, 'tunnel', true));
    const entries = [sad.inboundSa(0x1001)!, sad.inboundSa(0x1002)!];
    const res: InboundResult = { packet: undefined, sa: undefined };
    const scratch = Buffer.alloc(4096);
    fc.assert(
      fc.property(fc.boolean(), fc.nat({ max: 0xffffffff }), octets(300), (second, seq, rest) => {
        const e = entries[second ? 1 : 0]!;
        const esp = Buffer.alloc(8 + rest.length);
        esp.writeUInt32BE(e.esp.spi, 0);
        esp.writeUInt32BE(seq, 4);
        rest.copy(esp, 8);
        const before = { ...dp.counters };
        const sums = entries.map((x) => ({ ...x.counters, top: x.replay!.top }));
        dp.inbound(esp, 0, esp.length, { family: 4, address: Buffer.from([10, 1, 0, 1]), udp: true }, scratch, res);
        expect(res.packet).toBeUndefined();
        const moved = (Object.keys(before) as (keyof typeof before)[]).filter((k) => dp.counters[k] !== before[k]);
        expect(moved.length).toBe(1);
        expect(['inIcv', 'inReplay', 'inMalformed']).toContain(moved[0]);
        entries.forEach((x, i) => {
          expect(x.replay!.top).toBe(sums[i]!.top);
          expect(x.counters.bytes).toBe(sums[i]!.bytes);
          expect(x.counters.packets).toBe(sums[i]!.packets);
        });
      }),
      { numRuns: 3000 },
    );
  });

  for (const name of ['esp-raw', 'esp-udp']) {
    it(`the ${name} target holds for mutated strongSwan packets and sealed plaintexts: one counter per packet, windows move only when authenticated, deliveries are whole IP packets`, async () => {
      const { target, corpus } = await readyTarget(name);
      await assertTargetHolds(target, mutatedCorpus(target, corpus), 5000);
      await assertTargetHolds(target, octets(200), 2000);
      // sealed arbitrary plaintexts under each SA, with and without a flipped octet
      const sealed = fc.tuple(fc.nat({ max: 31 }), octets(200)).map(([ctl, b]) => Buffer.concat([Buffer.from([(ctl << 1) | 1]), b]));
      await assertTargetHolds(target, sealed, 3000);
    });
  }
});
