import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { must, run, requireRootAndPrograms } from '../support/proc.js';
import { TunDevice } from '../../src/tun/device.js';
import { loadNative, nativeAvailable } from '../../src/native/addon.js';
import { PacketPool } from '../../src/tun/pool.js';
import { join } from 'node:path';
import { NsScript, repoRoot } from './helpers.js';

requireRootAndPrograms('TUN device tests', ['ip', 'ping', 'setpriv']);
if (!existsSync('/dev/net/tun')) throw new Error('TUN device tests: /dev/net/tun is missing');
if (!nativeAvailable()) throw new Error('TUN device tests: the native addon is not built (npm ci builds it)');

describe('native addon errors', () => {
  it('turns errno into JS exceptions with strerror text and code', () => {
    const n = loadNative();
    const lens = new Int32Array(1);
    expect(() => n.readBatch(-1, [Buffer.alloc(64)], lens)).toThrow(/^read: Bad file descriptor$/);
    try {
      n.setMtu('tsnosuch0', 1400);
      expect.unreachable();
    } catch (e) {
      expect((e as Error).message).toBe('ioctl SIOCSIFMTU tsnosuch0: No such device');
      expect((e as NodeJS.ErrnoException).code).toBe('ENODEV');
    }
    expect(() => n.rawSocket(5 as 4, 50)).toThrow(TypeError);
    expect(() => TunDevice.open({ name: 'x'.repeat(16) })).toThrow(/interface name too long/);
    expect(() => n.readBatch(0, ['nope' as unknown as Buffer], lens)).toThrow(TypeError);
    expect(() => n.writeBatch(1, [Buffer.alloc(4)], new Int32Array([99]), 1)).toThrow(/length out of range/);
  });

  it('unprivileged: EACCES/EPERM become exceptions, not crashes', async () => {
    const addonPath = join(repoRoot, 'native/build/Release/tunsec_native.node');
    const code = `const m = require(${JSON.stringify(addonPath)}); for (const f of [() => m.tunOpen('tsnp0', false), () => m.rawSocket(4, 50), () => m.rawSocket(6, 50)]) { try { f(); console.log('ok'); } catch (e) { console.log(e.code + ' ' + e.message); } }`;
    const r = await run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', code]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^(EACCES open \/dev\/net\/tun: Permission denied|EPERM ioctl TUNSETIFF: Operation not permitted)$/);
    expect(lines[1]).toBe('EPERM socket AF_INET SOCK_RAW: Operation not permitted');
    expect(lines[2]).toBe('EPERM socket AF_INET6 SOCK_RAW: Operation not permitted');
  });

  it('pool slots share one backing store and packet() is a view', () => {
    const p = new PacketPool(4, 128);
    expect(p.buffers[3]!.buffer).toBe(p.buffers[0]!.buffer);
    p.buffers[1]![0] = 7;
    p.lengths[1] = 10;
    expect(p.packet(1).length).toBe(10);
    expect(p.packet(1)[0]).toBe(7);
  });
});

describe('TUN device in a netns', () => {
  const ns = `tstun${randomBytes(3).toString('hex')}`;
  const scripts: NsScript[] = [];

  beforeAll(async () => {
    await must('ip', ['netns', 'add', ns]);
    await must('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  });
  afterAll(async () => {
    for (const s of scripts) s.kill();
    await Promise.all(scripts.map((s) => s.exited));
    await run('ip', ['netns', 'del', ns]);
  });

  it('ping through the TUN: readBatch sees the requests, writeBatch injects the replies', async () => {
    const s = NsScript.start(ns, 'tun-echo.ts', ['tsecho0', '10.77.0.1/24', '20']);
    scripts.push(s);
    expect(await s.waitLine('READY')).toBe('READY tsecho0');
    const link = await must('ip', ['-n', ns, '-d', 'link', 'show', 'tsecho0']);
    expect(link).toMatch(/mtu 1400/);
    expect(link).toMatch(/state UNKNOWN|,UP/);
    expect(link).toMatch(/tun type tun pi off/);
    const ping = await run('ip', ['netns', 'exec', ns, 'ping', '-n', '-c', '5', '-i', '0.2', '-W', '2', '10.77.0.2'], { timeoutMs: 20_000 });
    expect(ping.stdout).toMatch(/5 packets transmitted, 5 received/);
    s.kill();
    const stats = JSON.parse((await s.waitLine('STATS')).slice(6)) as { echoes: number; replies: number; sources: string[] };
    expect(stats.echoes).toBeGreaterThanOrEqual(5);
    expect(stats.replies).toBe(stats.echoes);
    expect(stats.sources).toEqual(['10.77.0.1']);
    expect(await s.exited).toBe(0);
    // the device goes away with its fd
    expect((await run('ip', ['-n', ns, 'link', 'show', 'tsecho0'])).code).not.toBe(0);
  });

  it('kernel-chosen name', async () => {
    const s = NsScript.start(ns, 'tun-echo.ts', ['', '10.78.0.1/24', '1']);
    scripts.push(s);
    expect(await s.waitLine('READY')).toMatch(/^READY tun\d+$/);
    await s.waitLine('STATS');
  });
});
