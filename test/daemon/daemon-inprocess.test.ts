import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Daemon, DaemonStartError } from '../../src/daemon/daemon.js';
import { DaemonLogger } from '../../src/daemon/logger.js';
import { freePort, tempDir, writeLoopbackConfig, writePki, type LogLine, type PkiFiles } from './support.js';

/** A Daemon in this process whose JSON lines are collected. */
function daemon(options: ConstructorParameters<typeof Daemon>[0] = {}): {
  d: Daemon;
  lines: LogLine[];
  wait(event: string, timeoutMs?: number): Promise<LogLine>;
} {
  const lines: LogLine[] = [];
  const waiters: Array<() => void> = [];
  const logger = new DaemonLogger({
    json: true,
    write: (line) => {
      lines.push(JSON.parse(line) as LogLine);
      for (const w of waiters.splice(0)) w();
    },
  });
  const d = new Daemon({ logger, ...options });
  const wait = async (event: string, timeoutMs = 10_000): Promise<LogLine> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = lines.find((l) => l.event === event);
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${event}:\n${lines.map((l) => JSON.stringify(l)).join('\n')}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 200);
        waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  };
  return { d, lines, wait };
}

function config(
  dir: string,
  pki: PkiFiles,
  o: { name: string; local: string; remote: string; localPort: number; remotePort: number; start: boolean; keyingtries?: number },
): string {
  return writeLoopbackConfig(dir, pki, { ...o, daemonExtra: ['log: { default: 2 }'] });
}

describe('tunsec daemon (in process)', () => {
  const daemons: Daemon[] = [];
  const dirs: Array<ReturnType<typeof tempDir>> = [];
  afterEach(async () => {
    await Promise.all(daemons.splice(0).map((d) => d.stop('test over')));
    for (const d of dirs.splice(0)) d.remove();
  });

  it('listening on %any, answers an initiator with the local address the kernel routes back from', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const pki = writePki(dir.path);
    // Distinct ports: a wildcard socket would cover the other daemon's loopback address.
    const sunPort = await freePort(['0.0.0.0']);
    const sunNatt = await freePort(['0.0.0.0'], [sunPort]);
    const moonPort = await freePort(['127.0.0.2'], [sunPort, sunNatt]);
    const moonNatt = await freePort(['127.0.0.2'], [sunPort, sunNatt, moonPort]);
    const sun = daemon({ nattPort: sunNatt });
    const moon = daemon({ nattPort: moonNatt });
    daemons.push(sun.d, moon.d);

    await sun.d.start(config(dir.path, pki, { name: 'sun', local: '%any', remote: '%any', localPort: sunPort, remotePort: sunPort, start: false }));
    expect(sun.d.endpoints.filter((e) => !e.natt).map((e) => e.address)).toContain('0.0.0.0');
    await moon.d.start(config(dir.path, pki, { name: 'moon', local: '127.0.0.2', remote: '127.0.0.1', localPort: moonPort, remotePort: sunPort, start: true }));

    const [sunIke, moonChild, sunChild] = await Promise.all([sun.wait('ike_established'), moon.wait('child_established'), sun.wait('child_established')]);
    expect(sunIke.local).toEqual({ address: '127.0.0.1', port: sunPort });
    expect(sunIke.remote).toEqual({ address: '127.0.0.2', port: moonPort });
    expect(moonChild.spi_in).toBe(sunChild.spi_out);
    expect(sunChild.local_ts).toEqual(['127.0.0.1/32']);
    expect(sunChild.proposal).toBe('aes256gcm16-noesn');
  });

  it('re-initiates a failed start connection after a delay and gives up after keyingtries attempts', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const pki = writePki(dir.path);
    const port = await freePort(['127.0.0.2']);
    const natt = await freePort(['127.0.0.2'], [port]);
    const deadPort = await freePort(['127.0.0.1'], [port, natt]); // nobody answers there
    const moon = daemon({ nattPort: natt, retransmit: { timeout: 0.05, base: 1, tries: 1 }, retryDelayMs: { initial: 20, max: 40 } });
    daemons.push(moon.d);
    const started = Date.now();
    await moon.d.start(
      config(dir.path, pki, { name: 'moon', local: '127.0.0.2', remote: '127.0.0.1', localPort: port, remotePort: deadPort, start: true, keyingtries: 3 }),
    );
    const gaveUp = await new Promise<LogLine>((resolve, reject) => {
      const t = setInterval(() => {
        const l = moon.lines.find((x) => x.msg.includes('giving up'));
        if (l) {
          clearInterval(t);
          resolve(l);
        } else if (Date.now() - started > 10_000) {
          clearInterval(t);
          reject(new Error(moon.lines.map((x) => x.msg).join('\n')));
        }
      }, 20);
    });
    const failures = moon.lines.filter((l) => l.subsys === 'daemon' && l.msg.startsWith('connection moon: establishing failed'));
    expect(failures.map((l) => l.level)).toEqual(['warn', 'warn', 'error']);
    expect(gaveUp.msg).toMatch(/attempt 3 of 3\): peer 127\.0\.0\.1 did not answer .*; giving up \(keyingtries\)$/);
    // Each failed attempt is one IKE SA destroyed, reported once.
    expect(moon.lines.filter((l) => l.event === 'ike_destroyed')).toHaveLength(3);
    expect(moon.d.running).toBe(true);
  });

  it('keeps running after garbage datagrams and after an exception in a handler, logging it', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const pki = writePki(dir.path);
    const port = await freePort(['127.0.0.2']);
    const natt = await freePort(['127.0.0.2'], [port]);
    const sun = daemon({ nattPort: natt });
    daemons.push(sun.d);
    await sun.d.start(config(dir.path, pki, { name: 'sun', local: '127.0.0.2', remote: '%any', localPort: port, remotePort: port, start: false }));
    const { createSocket } = await import('node:dgram');
    const s = createSocket('udp4');
    try {
      await new Promise<void>((r) => s.send(Buffer.alloc(64, 0xab), port, '127.0.0.2', () => r()));
      await new Promise<void>((r) => s.send(Buffer.concat([Buffer.alloc(4), Buffer.alloc(40, 0xcd)]), natt, '127.0.0.2', () => r()));
    } finally {
      s.close();
    }
    await new Promise((r) => setTimeout(r, 200));
    sun.d.guard('test', () => {
      throw new Error('boom');
    });
    expect(sun.d.running).toBe(true);
    expect(sun.d.manager!.counters.malformed).toBe(2);
    expect(sun.lines.find((l) => l.level === 'error' && l.msg.startsWith('internal error in test handler: Error: boom'))).toBeDefined();
  });

  it('refuses connections that disagree on local_port, and leaves no pid file behind', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const pki = writePki(dir.path);
    const a = pki.host('a.tunsec.test');
    const conn = (name: string, port: number, remote: string): string =>
      `  ${name}:\n    local_addrs: 127.0.0.1\n    remote_addrs: ${remote}\n    local_port: ${port}\n    local:\n      certs: [${a.cert}]\n    children:\n      host: {}\n`;
    const file = join(dir.path, 'both.yaml');
    writeFileSync(
      file,
      `daemon:\n  pid_file: ${join(dir.path, 'a.pid')}\n  bypass_rules: no\n  datapath: none\nauthorities:\n  cacerts: [${pki.caCert}]\nsecrets:\n  private-a:\n    file: ${a.key}\nconnections:\n${conn('a', 40500, '127.0.0.2')}${conn('b', 40501, '127.0.0.3')}`,
    );
    const x = daemon();
    daemons.push(x.d);
    const err = await x.d.start(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DaemonStartError);
    expect((err as DaemonStartError).problems).toEqual(['local_port 40500: a', 'local_port 40501: b']);
    expect(existsSync(join(dir.path, 'a.pid'))).toBe(false);
  });
});
