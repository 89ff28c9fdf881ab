/**
 * The control commands over two in-process daemons on loopback (datapath
 * none, so no root is needed), including the CLI's output.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CheckResult, ListConnsResult, ListSasResult, StatusResult } from '../../../src/control/protocol.js';
import { Daemon, DaemonStartError } from '../../../src/daemon/daemon.js';
import { ControlRequestFailed, controlRequest } from '../../../src/cli/control-client.js';
import { main } from '../../../src/cli/main.js';
import { collectingLogger, freePort, sleep, tempDir, writePki, type LogLine, type PkiFiles } from '../support.js';

function daemonConfig(
  dir: string,
  pki: PkiFiles,
  o: { name: string; peer: string; local: string; remote: string; port: number; peerPort: number; startAction: string; global?: string },
): string {
  const host = pki.host(`${o.name}.tunsec.test`);
  const file = join(dir, `${o.name}.yaml`);
  writeFileSync(
    file,
    `daemon:
  pid_file: ${join(dir, `${o.name}.pid`)}
  control_socket: ${join(dir, `${o.name}.sock`)}
  bypass_rules: no
  datapath: none
  global: ${o.global ?? 'drop'}
authorities:
  cacerts: [${pki.caCert}]
secrets:
  private-${o.name}:
    file: ${host.key}
connections:
  ${o.name}:
    local_addrs: "${o.local}"
    remote_addrs: "${o.remote}"
    local_port: ${o.port}
    remote_port: ${o.peerPort}
    proposals: aes128gcm16-prfsha384-ecp384bp!
    local:
      certs: [${host.cert}]
      id: ${o.name}.tunsec.test
    remote:
      id: ${o.peer}.tunsec.test
    children:
      host:
        esp_proposals: aes128gcm16-ecp384bp!
        start_action: ${o.startAction}
`,
  );
  return file;
}

describe('control commands on two in-process daemons (moon initiates, sun answers)', () => {
  let dir: ReturnType<typeof tempDir>;
  let moon: Daemon;
  let sun: Daemon;
  let moonLog: LogLine[];
  let moonSock: string;
  let sunSock: string;
  let sunConfig: string;

  const ask = <T>(path: string, command: string, args: Record<string, unknown> = {}): Promise<T> =>
    controlRequest(path, command, args, { timeoutMs: 30_000 }) as Promise<T>;
  async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
    let out = '';
    let err = '';
    const code = await main(argv, { out: (t) => (out += t), err: (t) => (err += t) });
    return { code, out, err };
  }

  beforeAll(async () => {
    dir = tempDir();
    const pki = writePki(dir.path);
    const sunPort = await freePort(['127.0.0.1']);
    const sunNatt = await freePort(['127.0.0.1'], [sunPort]);
    const moonPort = await freePort(['127.0.0.2'], [sunPort, sunNatt]);
    const moonNatt = await freePort(['127.0.0.2'], [sunPort, sunNatt, moonPort]);
    moonSock = join(dir.path, 'moon.sock');
    sunSock = join(dir.path, 'sun.sock');
    const moonLogger = collectingLogger();
    moonLog = moonLogger.lines;
    // Fast retransmits: moon's first attempt, with sun not running yet, fails within a second.
    moon = new Daemon({ logger: moonLogger.logger, nattPort: moonNatt, control: true, retransmit: { timeout: 0.2, base: 1, tries: 2 } });
    sun = new Daemon({ logger: collectingLogger().logger, nattPort: sunNatt, control: true });
    sunConfig = daemonConfig(dir.path, pki, {
      name: 'sun',
      peer: 'moon',
      local: '127.0.0.1',
      remote: '127.0.0.2',
      port: sunPort,
      peerPort: moonPort,
      startAction: 'none',
    });
    await moon.start(
      daemonConfig(dir.path, pki, {
        name: 'moon',
        peer: 'sun',
        local: '127.0.0.2',
        remote: '127.0.0.1',
        port: moonPort,
        peerPort: sunPort,
        startAction: 'start',
      }),
    );
  });

  afterAll(async () => {
    await moon?.stop('test over');
    await sun?.stop('test over');
    dir?.remove();
  });

  it('reports a start connection whose peer does not answer as connecting, then as not connected (check CRITICAL)', async () => {
    const first = await ask<StatusResult>(moonSock, 'status');
    expect(first.daemon).toMatchObject({
      pid: process.pid,
      state: 'running',
      control_socket: moonSock,
      datapath: 'none',
      global: { state: 'up', mode: 'drop' },
    });
    expect(first.connections[0]).toMatchObject({
      name: 'moon',
      state: 'connecting',
      peer: '127.0.0.1',
      local_id: 'moon.tunsec.test',
      remote_id: 'sun.tunsec.test',
      start_action: 'start',
    });
    expect((await ask<CheckResult>(moonSock, 'check')).code).toBe(1);
    for (let i = 0; i < 100 && (await ask<StatusResult>(moonSock, 'status')).connections[0]!.state !== 'not connected'; i++) await sleep(50);
    const s = await ask<StatusResult>(moonSock, 'status');
    expect(s.connections[0]).toMatchObject({ state: 'not connected', ike_sas: 0, children: 0 });
    expect(Date.parse(s.connections[0]!.since)).toBeGreaterThanOrEqual(Date.parse(first.daemon.started!));
    const c = await ask<CheckResult>(moonSock, 'check');
    expect(c).toMatchObject({
      code: 2,
      status: 'CRITICAL',
      summary: 'moon not connected',
      perfdata: 'established=0 connecting=0 not_connected=1 fallback_clear=0c',
    });
  });

  it('check counts only connections meant to be up, unless one is named; an unknown name is not_found', async () => {
    await sun.start(sunConfig);
    expect(await ask<CheckResult>(sunSock, 'check')).toMatchObject({
      code: 0,
      summary: 'no connection is meant to be up (none with start_action start or trap)',
    });
    expect(await ask<CheckResult>(sunSock, 'check', { name: 'sun' })).toMatchObject({ code: 2, summary: 'sun not connected' });
    await expect(ask(sunSock, 'check', { name: 'nope' })).rejects.toMatchObject({ code: 'not_found', message: "no connection named 'nope'" });
    await expect(ask(sunSock, 'up', { name: 42 })).rejects.toMatchObject({ code: 'bad_request' });
    await expect(ask(sunSock, 'up', { name: 'sun', timeout: -1 })).rejects.toMatchObject({ code: 'bad_request' });
  });

  it('list-conns shows the configured connection with its identities, proposals and child', async () => {
    const r = await ask<ListConnsResult>(moonSock, 'list-conns');
    expect(r.connections).toEqual([
      {
        name: 'moon',
        local_addrs: ['127.0.0.2'],
        remote_addrs: ['127.0.0.1'],
        remote_port: expect.any(Number),
        local_id: 'moon.tunsec.test',
        remote_id: 'sun.tunsec.test',
        local_auth: 'pubkey',
        remote_auth: 'pubkey',
        certificate: 'C=CH, O=tunsec test, CN=moon.tunsec.test',
        proposals: ['aes128gcm16-prfsha384-ecp384bp'],
        encap: false,
        fragmentation: true,
        keyingtries: 1,
        children: [
          {
            name: 'host',
            reqid: 1,
            mode: 'transport',
            esp_proposals: ['aes128gcm16-ecp384bp-noesn'],
            local_ts: ['dynamic'],
            remote_ts: ['dynamic'],
            start_action: 'start',
            policy: 'private',
            replay_window: 32,
          },
        ],
      },
    ]);
  });

  it('up establishes the connection and waits for it; status, list-sas and check then show it established', async () => {
    const up = await ask<{ name: string; state: string; already: boolean; spi_i: string; children: number }>(moonSock, 'up', { name: 'moon', timeout: 20 });
    expect(up).toMatchObject({ name: 'moon', state: 'established', already: false, children: 1 });
    const s = await ask<StatusResult>(moonSock, 'status');
    expect(s.connections[0]).toMatchObject({ state: 'established', ike_sas: 1, children: 1, remote_id: 'sun.tunsec.test' });
    const sas = await ask<ListSasResult>(moonSock, 'list-sas');
    expect(sas.ike_sas).toHaveLength(1);
    const ike = sas.ike_sas[0]!;
    expect(ike).toMatchObject({
      name: 'moon',
      spi_i: up.spi_i,
      initiator: true,
      state: 'established',
      local: { address: '127.0.0.2' },
      remote: { address: '127.0.0.1' },
      proposal: 'aes128gcm16-prfsha384-ecp384bp',
      nat_local: false,
      nat_remote: false,
    });
    expect(ike.children[0]).toMatchObject({
      name: 'host',
      reqid: 1,
      mode: 'transport',
      encap: false,
      proposal: 'aes128gcm16-noesn',
      local_ts: ['127.0.0.2/32'],
      remote_ts: ['127.0.0.1/32'],
      bytes_in: 0,
      packets_out: 0,
      replay_window: 32,
      replay_drops: 0,
      icv_failures: 0,
    });
    expect(sas.datapath).toBeNull();
    // the peer sees the same CHILD SA from its side
    const sunSas = await ask<ListSasResult>(sunSock, 'list-sas');
    expect(sunSas.ike_sas[0]!.children[0]!.spi_in).toBe(ike.children[0]!.spi_out);
    expect(await ask<CheckResult>(moonSock, 'check')).toMatchObject({ code: 0, status: 'OK', summary: 'moon established' });
  });

  it('up on an established connection says so without negotiating another IKE SA', async () => {
    const again = await ask<{ already: boolean }>(moonSock, 'up', { name: 'moon' });
    expect(again.already).toBe(true);
    expect((await ask<ListSasResult>(moonSock, 'list-sas')).ike_sas).toHaveLength(1);
  });

  it('the CLI prints status, list-sas, list-conns and check for people, and the result objects with --json', async () => {
    const status = await cli('status', '--socket', moonSock);
    expect(status.code).toBe(0);
    expect(status.out).toMatch(
      /^tunsec daemon: pid \d+, running since \S+ \(up \d+s\), global switch up \(off state: drop\)\nmoon: established since \S+ \(\d+s\), peer 127\.0\.0\.1, moon\.tunsec\.test\.\.\.sun\.tunsec\.test, 1 IKE_SA, 1 CHILD_SA\n$/,
    );
    const sas = await cli('list-sas', '--socket', moonSock);
    expect(sas.out).toMatch(
      /^moon: ESTABLISHED \d+s ago, IKEv2, [0-9a-f]{16}_i\* [0-9a-f]{16}_r\n  local  'moon\.tunsec\.test' @ 127\.0\.0\.2\[\d+\]\n  remote 'sun\.tunsec\.test' @ 127\.0\.0\.1\[\d+\]\n  aes128gcm16-prfsha384-ecp384bp\n/,
    );
    expect(sas.out).toMatch(/\n  host: INSTALLED, TRANSPORT, reqid 1, aes128gcm16-noesn\n/);
    expect(sas.out).toMatch(/\n    in  [0-9a-f]{8},\s+0 bytes,\s+0 packets, replay window 32, 0 replay drops, 0 ICV failures\n/);
    expect(sas.out).toContain('datapath: none (daemon.datapath: none)');
    const conns = await cli('list-conns', '--socket', moonSock);
    expect(conns.out).toContain('moon: IKEv2, proposals aes128gcm16-prfsha384-ecp384bp, fragmentation, keyingtries 1\n  local:  127.0.0.2\n');
    expect(conns.out).toContain('  host: TRANSPORT, reqid 1, start_action start, policy private, replay_window 32\n');
    const json = await cli('status', '--json', '--socket', moonSock);
    expect((JSON.parse(json.out) as StatusResult).connections[0]!.state).toBe('established');
    const check = await cli('check', '--socket', moonSock);
    expect(check).toEqual({ code: 0, out: 'TUNSEC OK - moon established | established=1 connecting=0 not_connected=0 fallback_clear=0c\n', err: '' });
  });

  it('the CLI reports an unreachable daemon: exit 1, and UNKNOWN (3) for check', async () => {
    const missing = join(dir.path, 'nobody.sock');
    const status = await cli('status', '--socket', missing);
    expect(status).toEqual({ code: 1, out: '', err: `tunsec: cannot reach the daemon at ${missing}: ENOENT (is tunsec daemon running?)\n` });
    const check = await cli('check', '--socket', missing);
    expect(check.code).toBe(3);
    expect(check.out).toBe(`TUNSEC UNKNOWN - cannot reach the daemon at ${missing}: ENOENT (is tunsec daemon running?)\n`);
    const unknown = await cli('check', 'nope', '--socket', moonSock);
    expect(unknown).toMatchObject({ code: 3, out: "TUNSEC UNKNOWN - no connection named 'nope'\n" });
    const usage = await cli('up', '--socket', moonSock);
    expect(usage.code).toBe(2);
    expect(usage.err).toContain('tunsec: up needs one connection NAME');
  });

  it('down deletes the IKE SA at both ends and waits for it; check is CRITICAL again', async () => {
    const r = await cli('down', 'moon', '--socket', moonSock);
    expect(r).toEqual({ code: 0, out: 'moon: 1 IKE_SA deleted\n', err: '' });
    expect((await ask<ListSasResult>(moonSock, 'list-sas')).ike_sas).toEqual([]);
    expect((await ask<ListSasResult>(sunSock, 'list-sas')).ike_sas).toEqual([]);
    expect(moonLog.some((l) => l.event === 'ike_destroyed' && l.reason === 'deleted by the operator (tunsec down)')).toBe(true);
    expect((await ask<CheckResult>(moonSock, 'check')).code).toBe(2);
    expect(await cli('down', 'moon', '--socket', moonSock)).toMatchObject({ code: 0, out: 'moon: no IKE_SA was up\n' });
  });

  it('global down deletes every IKE SA, refuses up, and ignores a peer that initiates; global up brings the start connection back', async () => {
    await ask(moonSock, 'up', { name: 'moon' });
    const down = await cli('global', 'down', '--socket', moonSock);
    expect(down).toEqual({ code: 0, out: 'global switch down: 1 IKE_SA deleted; traffic of tunsec policies is dropped\n', err: '' });
    expect(moonLog.find((l) => l.event === 'global_down')).toMatchObject({ mode: 'drop', deleted_ike_sas: 1 });
    expect((await ask<ListSasResult>(sunSock, 'list-sas')).ike_sas).toEqual([]);
    expect(await ask(moonSock, 'global-status')).toMatchObject({ state: 'down', mode: 'drop' });
    expect((await ask<StatusResult>(moonSock, 'status')).daemon.global.state).toBe('down');
    await expect(ask(moonSock, 'up', { name: 'moon' })).rejects.toMatchObject({
      code: 'failed',
      message: "moon: establishing failed: the global switch is down: nothing is initiated until 'tunsec global up'",
    });
    expect((await ask<CheckResult>(moonSock, 'check')).summary).toBe('moon not connected; global switch down');
    // sun tries: moon does not answer while its switch is down
    await expect(ask(sunSock, 'up', { name: 'sun', timeout: 1 })).rejects.toMatchObject({ code: 'timeout' });
    await ask(sunSock, 'down', { name: 'sun' });
    expect((await ask<ListSasResult>(moonSock, 'list-sas')).ike_sas).toEqual([]);
    expect((await cli('global', 'down', '--socket', moonSock)).out).toBe('global switch was down already\n');

    const up = await cli('global', 'up', '--socket', moonSock);
    expect(up).toEqual({ code: 0, out: 'global switch up: 1 of 1 start connection established\n  moon: established\n', err: '' });
    expect(moonLog.find((l) => l.event === 'global_up')).toMatchObject({ connections: [{ name: 'moon', established: true }] });
    expect((await ask<CheckResult>(moonSock, 'check')).code).toBe(0);
  });

  it('a second daemon on the same control socket refuses to start and leaves the first one serving', async () => {
    const other = new Daemon({ logger: collectingLogger().logger, control: true });
    const file = join(dir.path, 'other.yaml');
    writeFileSync(file, `daemon:\n  pid_file: ${join(dir.path, 'other.pid')}\n  control_socket: ${moonSock}\n  datapath: none\n  bypass_rules: no\n`);
    await expect(other.start(file)).rejects.toThrow(DaemonStartError);
    await expect(other.start(file)).rejects.toThrow(/daemon already stopped/);
    expect(existsSync(join(dir.path, 'other.pid'))).toBe(false);
    expect((await ask<StatusResult>(moonSock, 'status')).daemon.state).toBe('running');
  });

  it('stopping the daemon removes its control socket', async () => {
    await sun.stop('test');
    expect(existsSync(sunSock)).toBe(false);
    await expect(controlRequest(sunSock, 'status')).rejects.not.toBeInstanceOf(ControlRequestFailed);
  });
});
