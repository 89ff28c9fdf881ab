/**
 * The I/O loop's part of holding ESP for pending SPIs (issue 17), with a real
 * TUN device in a network namespace: ./pending-spi-helper.ts runs
 * IoLoop wired as the daemon wires it; ESP-in-UDP for a reserved SPI
 * arrives before the SA is installed and must come out of the TUN device,
 * decrypted and in order, once it is (IoLoop.releasePendingSpi).
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatapathCounters } from '../../src/esp/engine.js';
import type { IoCounters } from '../../src/esp/io.js';
import { NetnsPair } from '../support/netns.js';
import { requireRootAndPrograms } from '../support/proc.js';

requireRootAndPrograms('held ESP for pending SPIs through a TUN device', ['ip', 'sysctl']);

const helper = fileURLToPath(new URL('./pending-spi-helper.ts', import.meta.url));

interface HelperResult {
  beforeInstall: { received: string[]; counters: DatapathCounters; tunWrites: number };
  received: string[];
  counters: DatapathCounters;
  io: IoCounters;
}

let pair: NetnsPair;

beforeAll(async () => {
  pair = await NetnsPair.create('tp');
}, 30_000);

afterAll(async () => {
  const leftovers = await pair?.destroy();
  expect(leftovers ?? []).toEqual([]);
}, 30_000);

describe('ESP-in-UDP for a reserved SPI, through IoLoop and a TUN device', () => {
  it('is held until the inbound SA is installed, then written to the TUN device in arrival order and delivered to the socket behind it', async () => {
    const r = await pair.exec(pair.a, process.execPath, ['--import', 'tsx', helper], 30_000);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as HelperResult;
    expect(out.beforeInstall).toMatchObject({ received: [], tunWrites: 0, counters: { inHeldPendingSpi: 3, inUnknownSpi: 0, inPackets: 0 } });
    expect(out.received).toEqual(['held 0', 'held 1', 'held 2']);
    expect(out.counters).toMatchObject({ inHeldPendingSpi: 3, inHeldPendingSpiDropped: 0, inPackets: 3, inUnknownSpi: 0, inIcv: 0, inReplay: 0 });
    expect(out.io).toMatchObject({ tunWrites: 3, tunWriteDrops: 0, udpReceived: 3, internalErrors: 0 });
  }, 60_000);
});
