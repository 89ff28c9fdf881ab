import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { retryDelay } from '../../src/daemon/initiation.js';
import { spiHex } from '../../src/util/format.js';
import { DaemonLogger } from '../../src/daemon/logger.js';
import { SourceAddressCache, bindAddresses, sourceAddressFor } from '../../src/daemon/net.js';
import { PidFileError, acquirePidFile, releasePidFile } from '../../src/daemon/pidfile.js';
import { tempDir } from './support.js';

describe('the daemon logger', () => {
  const capture = (json: boolean) => {
    const out: string[] = [];
    const log = new DaemonLogger({ json, write: (l) => out.push(l), now: () => new Date('2025-01-02T03:04:05.678Z') });
    return { log, out };
  };

  it('writes one JSON object per line with time, level, subsys and msg first, and event fields after', () => {
    const { log, out } = capture(true);
    log.log('net', 'warn', 'cannot send "x"\nsecond line');
    log.event('ike', 'child_established', 'CHILD_SA up', { name: 'host', spi_in: spiHex(0xab) });
    expect(out).toEqual([
      '{"time":"2025-01-02T03:04:05.678Z","level":"warn","subsys":"net","msg":"cannot send \\"x\\"\\nsecond line"}\n',
      '{"time":"2025-01-02T03:04:05.678Z","level":"info","subsys":"ike","msg":"CHILD_SA up","event":"child_established","name":"host","spi_in":"000000ab"}\n',
    ]);
  });

  it('writes human text on a terminal', () => {
    const { log, out } = capture(false);
    log.log('daemon', 'info', 'started');
    expect(out).toEqual(['2025-01-02T03:04:05.678Z info  daemon started\n']);
  });

  it("filters by the configured charon level of each subsystem, the daemon's under dmn", () => {
    const { log, out } = capture(true);
    const levels = { dmn: 0, mgr: 1, ike: 2, chd: 1, job: 1, cfg: -1, knl: 1, net: 1, asn: 1, enc: 1, lib: 1, esp: 1, tun: 1 };
    log.setLevels(levels);
    log.log('daemon', 'info', 'hidden at 0');
    log.log('daemon', 'warn', 'shown at 0');
    log.log('ike', 'debug', 'shown at 2');
    log.log('net', 'debug', 'hidden at 1');
    log.log('cfg', 'error', 'hidden at -1');
    log.event('cfg', 'x', 'events hidden at -1', {});
    log.event('daemon', 'daemon_started', 'events shown at 0', {});
    expect(out.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(['shown at 0', 'shown at 2', 'events shown at 0']);
  });

  it('sends IKE messages about a configured connection to ike and the rest to mgr', () => {
    const { log, out } = capture(true);
    const ike = log.ikeLogger(['moon-sun']);
    ike.log('info', 'moon-sun[0011223344556677_i 0000000000000000_r]: IKE_SA_INIT done');
    ike.log('info', 'moon-sun: initiating IKE_SA to 10.0.0.2');
    ike.log('info', 'no connection configured for IKE_SA_INIT from 10.0.0.9 to 10.0.0.1; ignored');
    expect(out.map((l) => (JSON.parse(l) as { subsys: string }).subsys)).toEqual(['ike', 'ike', 'mgr']);
  });
});

describe('the pid file', () => {
  let dir: ReturnType<typeof tempDir>;
  afterEach(() => dir.remove());

  it('is written with our pid and removed again, creating its directory', () => {
    dir = tempDir();
    const file = join(dir.path, 'run', 'tunsec.pid');
    expect(acquirePidFile(file)).toEqual({});
    expect(readFileSync(file, 'utf8')).toBe(`${process.pid}\n`);
    releasePidFile(file);
    expect(existsSync(file)).toBe(false);
  });

  it('refuses to replace a file that names a running process', () => {
    dir = tempDir();
    const file = join(dir.path, 'tunsec.pid');
    writeFileSync(file, `${process.ppid}\n`);
    expect(() => acquirePidFile(file)).toThrow(PidFileError);
    expect(() => acquirePidFile(file)).toThrow(`names process ${process.ppid}, which is running`);
    expect(readFileSync(file, 'utf8')).toBe(`${process.ppid}\n`);
  });

  it('replaces a stale file whose process is gone, and one that names ourselves', () => {
    dir = tempDir();
    const file = join(dir.path, 'tunsec.pid');
    const gone = spawnSync(process.execPath, ['-e', '0']).pid;
    writeFileSync(file, `${gone}\n`);
    expect(acquirePidFile(file)).toEqual({ replacedStale: gone });
    writeFileSync(file, `${process.pid}\n`);
    expect(acquirePidFile(file)).toEqual({});
    expect(readFileSync(file, 'utf8')).toBe(`${process.pid}\n`);
  });

  it('is left in place on stop when another daemon has written it meanwhile', () => {
    dir = tempDir();
    const file = join(dir.path, 'tunsec.pid');
    writeFileSync(file, `${process.ppid}\n`);
    releasePidFile(file);
    expect(existsSync(file)).toBe(true);
  });
});

describe('socket addresses', () => {
  it('binds concrete local addresses, or the wildcards that cover them', () => {
    expect(bindAddresses(['10.0.0.1', 'fd00::1', '10.0.0.1'])).toEqual({ addresses: ['10.0.0.1', 'fd00::1'], optionalV6Wildcard: false });
    expect(bindAddresses(['%any', '10.0.0.1', 'fd00::1'])).toEqual({ addresses: ['0.0.0.0', '::'], optionalV6Wildcard: true });
    expect(bindAddresses(['%any4', 'fd00::1', '10.0.0.1'])).toEqual({ addresses: ['0.0.0.0', 'fd00::1'], optionalV6Wildcard: false });
    expect(bindAddresses(['%any6', '%any'])).toEqual({ addresses: ['0.0.0.0', '::'], optionalV6Wildcard: false });
  });

  it('finds the source address towards a peer without sending anything, and remembers it', async () => {
    expect(await sourceAddressFor('127.0.0.1')).toBe('127.0.0.1');
    let lookups = 0;
    const cache = new SourceAddressCache(60_000, async (r) => {
      lookups++;
      return `src-for-${r}`;
    });
    expect(await cache.get('192.0.2.1')).toBe('src-for-192.0.2.1');
    expect(await cache.get('192.0.2.1')).toBe('src-for-192.0.2.1');
    expect(lookups).toBe(1);
  });

  it('waits longer after each failed initiation, up to the cap', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8].map((n) => retryDelay(n, { initial: 1000, max: 60_000 }))).toEqual([1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000]);
    expect(retryDelay(5000, { initial: 1000, max: 60_000 })).toBe(60_000);
  });
});
