import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { TunsecProcess, freePort, tempDir, writePki, type LogLine } from './support.js';

const MOON = '127.0.0.1';
const SUN = '127.0.0.2';

interface Side {
  name: string;
  address: string;
  peerAddress: string;
  peerName: string;
  start: boolean;
}

function daemonConfig(dir: string, side: Side, ports: { ike: number }, cert: string, key: string, caCert: string): string {
  return `daemon:
  pid_file: ${join(dir, `${side.name}.pid`)}
  bypass_rules: no
  datapath: none
  control_socket: ${join(dir, `${side.name}.sock`)}
authorities:
  cacerts: [${caCert}]
secrets:
  private-${side.name}:
    file: ${key}
connections:
  ${side.name}-${side.peerName}:
    local_addrs: ${side.address}
    remote_addrs: ${side.peerAddress}
    local_port: ${ports.ike}
    remote_port: ${ports.ike}
    proposals: aes128gcm16-prfsha384-ecp384bp!
    local:
      certs: [${cert}]
      id: ${side.name}.tunsec.test
    remote:
      id: ${side.peerName}.tunsec.test
    children:
      host:
        esp_proposals: aes128gcm16-ecp384bp!
        mode: transport
        start_action: ${side.start ? 'start' : 'none'}
`;
}

describe('tunsec daemon', () => {
  const processes: TunsecProcess[] = [];
  const dirs: Array<ReturnType<typeof tempDir>> = [];

  const spawnDaemon = (args: string[]): TunsecProcess => {
    const p = new TunsecProcess(['daemon', ...args]);
    processes.push(p);
    return p;
  };

  afterEach(async () => {
    await Promise.all(processes.splice(0).map((p) => p.kill()));
    for (const d of dirs.splice(0)) d.remove();
  });
  afterAll(async () => {
    await Promise.all(processes.splice(0).map((p) => p.kill()));
  });

  it('two daemons on loopback establish an IKE SA and a CHILD SA whose SPIs match, then stop cleanly on SIGTERM', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const pki = writePki(dir.path);
    const ike = await freePort([MOON, SUN]);
    const natt = await freePort([MOON, SUN], [ike]);
    const files: Record<string, string> = {};
    for (const side of [
      { name: 'moon', address: MOON, peerAddress: SUN, peerName: 'sun', start: true },
      { name: 'sun', address: SUN, peerAddress: MOON, peerName: 'moon', start: false },
    ]) {
      const host = pki.host(`${side.name}.tunsec.test`, side.address);
      files[side.name] = join(dir.path, `${side.name}.yaml`);
      writeFileSync(files[side.name]!, daemonConfig(dir.path, side, { ike }, host.cert, host.key, pki.caCert));
    }

    // The responder first, so the initiator's first IKE_SA_INIT is not lost.
    const sun = spawnDaemon(['-c', files.sun!, '--port-nat-t', String(natt)]);
    const sunStarted = await sun.waitForEvent('daemon_started');
    expect(sunStarted.endpoints).toEqual([
      { address: SUN, port: ike, natt: false },
      { address: SUN, port: natt, natt: true },
    ]);
    expect(existsSync(join(dir.path, 'sun.pid'))).toBe(true);
    const moon = spawnDaemon(['-c', files.moon!, '--port-nat-t', String(natt)]);

    const [moonIke, sunIke] = await Promise.all([moon.waitForEvent('ike_established'), sun.waitForEvent('ike_established')]);
    const [moonChild, sunChild] = await Promise.all([moon.waitForEvent('child_established'), sun.waitForEvent('child_established')]);

    expect(moonIke).toMatchObject({
      level: 'info',
      subsys: 'ike',
      name: 'moon-sun',
      initiator: true,
      local: { address: MOON, port: ike },
      remote: { address: SUN, port: ike },
      local_id: 'moon.tunsec.test',
      remote_id: 'sun.tunsec.test',
      proposal: 'aes128gcm16-prfsha384-ecp384bp',
    });
    expect(sunIke).toMatchObject({ name: 'sun-moon', initiator: false, remote_id: 'moon.tunsec.test', proposal: 'aes128gcm16-prfsha384-ecp384bp' });
    expect(sunIke.spi_i).toBe(moonIke.spi_i);
    expect(sunIke.spi_r).toBe(moonIke.spi_r);
    expect(moonIke.spi_i).toMatch(/^[0-9a-f]{16}$/);

    for (const c of [moonChild, sunChild]) {
      expect(c).toMatchObject({ name: 'host', mode: 'transport', encap: false, proposal: 'aes128gcm16-noesn' });
      expect(c.spi_in).toMatch(/^[0-9a-f]{8}$/);
      expect(c.spi_out).toMatch(/^[0-9a-f]{8}$/);
      expect(typeof c.reqid).toBe('number');
    }
    expect(moonChild.conn).toBe('moon-sun');
    expect(sunChild.conn).toBe('sun-moon');
    expect(moonChild.spi_in).toBe(sunChild.spi_out);
    expect(moonChild.spi_out).toBe(sunChild.spi_in);
    expect(moonChild.local_ts).toEqual(sunChild.remote_ts);
    expect(moonChild.remote_ts).toEqual(sunChild.local_ts);

    // Every stdout line is one JSON object with the four common fields.
    for (const p of [moon, sun]) {
      expect(p.other).toEqual([]);
      for (const l of p.lines) expect(Object.keys(l).slice(0, 4)).toEqual(['time', 'level', 'subsys', 'msg']);
    }

    // SIGHUP reloads the (unchanged) configuration; the connection and the daemon stay.
    sun.child.kill('SIGHUP');
    const reloaded = await sun.waitFor('the SIGHUP reload', (l) => l.event === 'config_reloaded');
    expect(reloaded).toMatchObject({ kept: ['sun-moon'], added: [], removed: [], replaced: [] });
    expect(sun.alive).toBe(true);

    moon.child.kill('SIGTERM');
    const moonExit = await moon.exited;
    expect(moonExit).toEqual({ code: 0, signal: null });
    // moon deleted its IKE SA on the way out; sun heard it.
    const moonDestroyed = moon.lines.find((l: LogLine) => l.event === 'ike_destroyed')!;
    expect(moonDestroyed).toMatchObject({ name: 'moon-sun', spi_i: moonIke.spi_i, was_established: true });
    const sunDestroyed = await sun.waitForEvent('ike_destroyed');
    expect(sunDestroyed).toMatchObject({ name: 'sun-moon', spi_i: moonIke.spi_i, reason: 'peer deleted the IKE_SA', was_established: true });

    sun.child.kill('SIGTERM');
    expect(await sun.exited).toEqual({ code: 0, signal: null });
    for (const p of [moon, sun]) {
      expect(p.lines.filter((l) => l.event === 'ike_destroyed')).toHaveLength(1);
      expect(p.lines.at(-1)).toMatchObject({ event: 'daemon_stopped' });
    }
    expect(existsSync(join(dir.path, 'moon.pid'))).toBe(false);
    expect(existsSync(join(dir.path, 'sun.pid'))).toBe(false);
  });

  it('refuses to start with an invalid configuration, listing every problem, and exits 1', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const file = join(dir.path, 'broken.yaml');
    writeFileSync(
      file,
      `daemon:\n  pid_file: ${join(dir.path, 'x.pid')}\nconnections:\n  dc1:\n    remote_adrs: 192.0.2.1\n    local:\n      certs: me.pem\n    children:\n      cache:\n        esp_proposals: aes128gcm17-ecp384bp\n`,
    );
    const p = spawnDaemon(['-c', file]);
    const exit = await p.exited;
    expect(exit.code).toBe(1);
    const errors = p.lines.filter((l) => l.level === 'error' && l.subsys === 'cfg').map((l) => l.msg);
    expect(errors).toEqual(
      expect.arrayContaining([
        expect.stringContaining('connections.dc1.remote_addrs: required'),
        expect.stringContaining("connections.dc1.remote_adrs: unknown key (did you mean 'remote_addrs'?)"),
        expect.stringContaining("connections.dc1.children.cache.esp_proposals: unknown algorithm 'aes128gcm17'"),
      ]),
    );
    expect(p.stderr).toContain('daemon not started');
    expect(p.stderr).toContain('connections.dc1.remote_addrs: required');
    expect(existsSync(join(dir.path, 'x.pid'))).toBe(false);
  });

  it('refuses to start while its pid file names a running process, and leaves that file alone', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const pki = writePki(dir.path);
    const host = pki.host('moon.tunsec.test', MOON);
    const ike = await freePort([MOON]);
    const file = join(dir.path, 'moon.yaml');
    writeFileSync(
      file,
      daemonConfig(dir.path, { name: 'moon', address: MOON, peerAddress: SUN, peerName: 'sun', start: false }, { ike }, host.cert, host.key, pki.caCert),
    );
    const pidFile = join(dir.path, 'moon.pid');
    writeFileSync(pidFile, `${process.pid}\n`); // this test runner: certainly alive
    const p = spawnDaemon(['-c', file, '--port-nat-t', String(await freePort([MOON], [ike]))]);
    expect((await p.exited).code).toBe(1);
    expect(p.stderr).toContain(`pid file ${pidFile} names process ${process.pid}, which is running`);
    expect(existsSync(pidFile)).toBe(true);
  });
});
