/**
 * The control socket: the line protocol against misbehaving clients (bad
 * JSON, unknown commands, oversize requests, many clients at once, clients
 * that go away), the socket file's life cycle (mode 0600, stale files, a live
 * daemon on the path), and the commands over two in-process daemons on
 * loopback (datapath none, so no root is needed), including the CLI's output.
 */
import { spawn } from 'node:child_process';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ControlServer, MAX_QUEUED_REQUESTS, MAX_REQUEST_BYTES, type CheckResult, type ControlHandler, type ListConnsResult, type ListSasResult, type StatusResult } from '../../src/daemon/control.js';
import { Daemon, DaemonStartError } from '../../src/daemon/daemon.js';
import { DaemonLogger } from '../../src/daemon/logger.js';
import { ControlRequestFailed, controlRequest } from '../../src/cli/control-client.js';
import { main } from '../../src/cli/main.js';
import { freePort, tempDir, writePki, type LogLine, type PkiFiles } from './support.js';

function collectingLogger(): { logger: DaemonLogger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  return { lines, logger: new DaemonLogger({ json: true, write: (l) => lines.push(JSON.parse(l) as LogLine) }) };
}

interface Exchange {
  lines: string[];
  responses: Array<Record<string, unknown>>;
  closed: boolean;
}

/**
 * Connect, send `payload` (in `chunks` pieces), optionally shut down our side,
 * and collect lines until `expect` lines arrived or the server closed.
 */
function exchange(path: string, payload: string | Buffer, opts: { expect: number; end?: boolean; timeoutMs?: number }): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ path });
    let buf = '';
    const lines: string[] = [];
    const finish = (closed: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ lines, responses: lines.map((l) => JSON.parse(l) as Record<string, unknown>), closed });
    };
    const timer = setTimeout(() => reject(new Error(`no ${opts.expect} answers within the time; got ${JSON.stringify(lines)}`)), opts.timeoutMs ?? 5000);
    socket.on('connect', () => {
      socket.write(payload);
      if (opts.end) socket.end();
    });
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        lines.push(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
      if (lines.length >= opts.expect && !opts.end) finish(false);
    });
    socket.on('close', () => finish(true));
    socket.on('error', () => {});
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('the control socket protocol', () => {
  const dirs: Array<ReturnType<typeof tempDir>> = [];
  const servers: ControlServer[] = [];
  afterEach(() => {
    for (const s of servers.splice(0)) s.stop();
    for (const d of dirs.splice(0)) d.remove();
  });

  async function serve(handlers: Record<string, ControlHandler>, opts: { maxClients?: number } = {}): Promise<{ server: ControlServer; path: string; lines: LogLine[] }> {
    const dir = tempDir('tunsec-control-');
    dirs.push(dir);
    const path = join(dir.path, 'run', 'tunsec.sock');
    const { logger, lines } = collectingLogger();
    const server = new ControlServer({ path, log: logger, handlers, ...opts });
    servers.push(server);
    await server.start();
    return { server, path, lines };
  }

  const echo: Record<string, ControlHandler> = {
    echo: (args) => ({ args }),
    slow: async (args) => {
      await sleep(typeof args.ms === 'number' ? args.ms : 50);
      return { slept: args.ms };
    },
    boom: () => {
      throw new Error('handler bug');
    },
    status: () => ({ daemon: { pid: 4242 } }),
  };

  it('answers one JSON line per request line, echoing the id, in request order on one connection', async () => {
    const { path } = await serve(echo);
    const r = await exchange(path, '{"id":1,"command":"slow","args":{"ms":80}}\n{"id":"two","command":"echo","args":{"x":1}}\n{"command":"echo"}\n', { expect: 3 });
    expect(r.responses).toEqual([
      { id: 1, ok: true, result: { slept: 80 } },
      { id: 'two', ok: true, result: { args: { x: 1 } } },
      { id: null, ok: true, result: { args: {} } },
    ]);
  });

  it('creates the socket file with mode 0600 (and its directory), and removes it at stop', async () => {
    const { server, path } = await serve(echo);
    const st = statSync(path);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
    server.stop();
    expect(existsSync(path)).toBe(false);
  });

  it('answers bad JSON, a non-object, a bad id, a missing command and bad args with errors, counts them, and keeps the connection usable', async () => {
    const { server, path, lines } = await serve(echo);
    const r = await exchange(path, ['{"id":1,"command":', '[1,2]', '{"id":{},"command":"echo"}', '{"id":5}', '{"id":6,"command":"echo","args":[1]}', '{"id":7,"command":"echo"}', ''].join('\n'), { expect: 6 });
    expect(r.responses.map((x) => [x.id, x.ok, x.code])).toEqual([
      [null, false, 'bad_json'],
      [null, false, 'bad_request'],
      [null, false, 'bad_request'],
      [5, false, 'bad_request'],
      [6, false, 'bad_request'],
      [7, true, undefined],
    ]);
    expect(String(r.responses[0]!.error)).toMatch(/^request is not JSON/);
    expect(server.counters.badRequests).toBe(5);
    expect(server.counters.requests).toBe(6);
    expect(lines.filter((l) => l.msg.startsWith('control socket: bad request')).length).toBe(5);
  });

  it('answers an unknown command with the list of commands', async () => {
    const { path } = await serve(echo);
    const r = await exchange(path, '{"id":9,"command":"reboot"}\n{"id":10,"command":"__proto__"}\n{"id":11,"command":"toString"}\n', { expect: 3 });
    expect(r.responses[0]).toEqual({ id: 9, ok: false, code: 'unknown_command', error: "unknown command 'reboot'; commands: echo, slow, boom, status" });
    expect(r.responses.slice(1).map((x) => x.code)).toEqual(['unknown_command', 'unknown_command']);
  });

  it('turns an exception in a handler into an internal error response and logs it, serving on', async () => {
    const { path, lines } = await serve(echo);
    const r = await exchange(path, '{"id":1,"command":"boom"}\n{"id":2,"command":"echo"}\n', { expect: 2 });
    expect(r.responses[0]).toEqual({ id: 1, ok: false, code: 'internal', error: 'internal error: handler bug' });
    expect(r.responses[1]!.ok).toBe(true);
    expect(lines.some((l) => l.level === 'error' && l.msg.includes('control command boom failed'))).toBe(true);
  });

  it('refuses a request longer than the limit: a too_large answer, then the connection is closed', async () => {
    const { server, path } = await serve(echo);
    const big = `{"id":1,"command":"echo","args":{"pad":"${'x'.repeat(MAX_REQUEST_BYTES + 10)}"}}`;
    const r = await exchange(path, big, { expect: 1, end: false, timeoutMs: 5000 }).catch(() => undefined);
    expect(r?.responses[0]).toMatchObject({ id: null, ok: false, code: 'too_large' });
    // the server still serves others
    expect(await controlRequest(path, 'echo', { after: true })).toEqual({ args: { after: true } });
    expect(server.counters.badRequests).toBe(1);
  });

  it('disconnects a client that piles up more requests than it reads answers, after telling it so', async () => {
    const { path } = await serve(echo);
    const requests = Array.from({ length: 200 }, (_, i) => `{"id":${i},"command":"slow","args":{"ms":5}}\n`).join('');
    const r = await exchange(path, requests, { expect: 1000, timeoutMs: 10_000 });
    expect(r.closed).toBe(true);
    const last = r.responses.at(-1)!;
    expect(last).toMatchObject({ ok: false, code: 'busy' });
    const answered = r.responses.slice(0, -1);
    expect(answered.length).toBeLessThanOrEqual(MAX_QUEUED_REQUESTS);
    expect(answered.every((x, i) => x.ok === true && x.id === i)).toBe(true);
    expect(await controlRequest(path, 'echo', {})).toEqual({ args: {} });
  });

  it('answers a last request sent without a newline before the client shuts down its side', async () => {
    const { path } = await serve(echo);
    const r = await exchange(path, '{"id":3,"command":"echo","args":{"a":1}}', { expect: 1, end: true });
    expect(r.responses).toEqual([{ id: 3, ok: true, result: { args: { a: 1 } } }]);
    expect(r.closed).toBe(true);
  });

  it('serves many clients at once, each getting its own answers', async () => {
    const { path } = await serve(echo);
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => controlRequest(path, 'slow', { ms: 100 - i * 3 })));
    expect(results).toEqual(Array.from({ length: 20 }, (_, i) => ({ slept: 100 - i * 3 })));
  });

  it('tells a client over the limit that it is busy, and forgets clients that disconnect mid-request', async () => {
    const { server, path } = await serve(echo, { maxClients: 2 });
    const a = createConnection({ path });
    const b = createConnection({ path });
    await Promise.all([a, b].map((s) => new Promise((r) => s.on('connect', r))));
    a.write('{"id":1,"command":"slow","args":{"ms":200}}\n');
    await sleep(30);
    const c = await exchange(path, '{"id":1,"command":"echo"}\n', { expect: 1 });
    expect(c.responses[0]).toMatchObject({ ok: false, code: 'busy' });
    expect(server.counters.rejectedClients).toBe(1);
    // a goes away before its answer; b too
    a.destroy();
    b.destroy();
    await sleep(300);
    expect(server.clientCount).toBe(0);
    expect(await controlRequest(path, 'echo', {})).toEqual({ args: {} });
  });

  it('removes a stale socket file left by a crashed daemon', async () => {
    const dir = tempDir('tunsec-control-');
    dirs.push(dir);
    const path = join(dir.path, 'tunsec.sock');
    // A process that listens and dies by SIGKILL leaves its socket file behind.
    await new Promise<void>((resolve) => {
      const child = spawn(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`]);
      child.on('exit', () => resolve());
    });
    expect(statSync(path).isSocket()).toBe(true);
    const { logger, lines } = collectingLogger();
    const server = new ControlServer({ path, log: logger, handlers: echo });
    servers.push(server);
    await server.start();
    expect(lines.map((l) => l.msg)).toContain(`removed stale control socket ${path} (nobody answered on it)`);
    expect(await controlRequest(path, 'echo', {})).toEqual({ args: {} });
  });

  it('refuses to start on a path where a live daemon answers, naming its pid, and leaves that socket alone', async () => {
    const { path } = await serve(echo);
    const second = new ControlServer({ path, log: collectingLogger().logger, handlers: echo });
    await expect(second.start()).rejects.toThrow(`control socket ${path} is in use by a running daemon (pid 4242)`);
    second.stop();
    expect(await controlRequest(path, 'echo', {})).toEqual({ args: {} });
  });

  it('refuses a path that is not a socket', async () => {
    const dir = tempDir('tunsec-control-');
    dirs.push(dir);
    const path = join(dir.path, 'tunsec.sock');
    writeFileSync(path, 'not a socket');
    const server = new ControlServer({ path, log: collectingLogger().logger, handlers: echo });
    await expect(server.start()).rejects.toThrow(/exists and is not a socket/);
    expect(existsSync(path)).toBe(true);
  });
});

// ---------------------------------------------------------------------------

function daemonConfig(dir: string, pki: PkiFiles, o: { name: string; peer: string; local: string; remote: string; port: number; peerPort: number; startAction: string; global?: string }): string {
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

  const ask = <T>(path: string, command: string, args: Record<string, unknown> = {}): Promise<T> => controlRequest(path, command, args, { timeoutMs: 30_000 }) as Promise<T>;
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
    sunConfig = daemonConfig(dir.path, pki, { name: 'sun', peer: 'moon', local: '127.0.0.1', remote: '127.0.0.2', port: sunPort, peerPort: moonPort, startAction: 'none' });
    await moon.start(daemonConfig(dir.path, pki, { name: 'moon', peer: 'sun', local: '127.0.0.2', remote: '127.0.0.1', port: moonPort, peerPort: sunPort, startAction: 'start' }));
  });

  afterAll(async () => {
    await moon?.stop('test over');
    await sun?.stop('test over');
    dir?.remove();
  });

  it('reports a start connection whose peer does not answer as connecting, then as not connected (check CRITICAL)', async () => {
    const first = await ask<StatusResult>(moonSock, 'status');
    expect(first.daemon).toMatchObject({ pid: process.pid, state: 'running', control_socket: moonSock, datapath: 'none', global: { state: 'up', mode: 'drop' } });
    expect(first.connections[0]).toMatchObject({ name: 'moon', state: 'connecting', peer: '127.0.0.1', local_id: 'moon.tunsec.test', remote_id: 'sun.tunsec.test', start_action: 'start' });
    expect((await ask<CheckResult>(moonSock, 'check')).code).toBe(1);
    for (let i = 0; i < 100 && (await ask<StatusResult>(moonSock, 'status')).connections[0]!.state !== 'not connected'; i++) await sleep(50);
    const s = await ask<StatusResult>(moonSock, 'status');
    expect(s.connections[0]).toMatchObject({ state: 'not connected', ike_sas: 0, children: 0 });
    expect(Date.parse(s.connections[0]!.since)).toBeGreaterThanOrEqual(Date.parse(first.daemon.started!));
    const c = await ask<CheckResult>(moonSock, 'check');
    expect(c).toMatchObject({ code: 2, status: 'CRITICAL', summary: 'moon not connected', perfdata: 'established=0 connecting=0 not_connected=1 fallback_clear=0c' });
  });

  it('check counts only connections meant to be up, unless one is named; an unknown name is not_found', async () => {
    await sun.start(sunConfig);
    expect(await ask<CheckResult>(sunSock, 'check')).toMatchObject({ code: 0, summary: 'no connection is meant to be up (none with start_action start or trap)' });
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
        certificate: 'C=CH, O=tunsec test, CN=moon.tunsec.test',
        proposals: ['aes128gcm16-prfsha384-ecp384bp'],
        encap: false,
        fragmentation: true,
        keyingtries: 1,
        children: [{ name: 'host', reqid: 1, mode: 'transport', esp_proposals: ['aes128gcm16-ecp384bp-noesn'], local_ts: ['dynamic'], remote_ts: ['dynamic'], start_action: 'start', policy: 'private', replay_window: 32 }],
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
    expect(ike).toMatchObject({ name: 'moon', spi_i: up.spi_i, initiator: true, state: 'established', local: { address: '127.0.0.2' }, remote: { address: '127.0.0.1' }, proposal: 'aes128gcm16-prfsha384-ecp384bp', nat_local: false, nat_remote: false });
    expect(ike.children[0]).toMatchObject({ name: 'host', reqid: 1, mode: 'transport', encap: false, proposal: 'aes128gcm16-noesn', local_ts: ['127.0.0.2/32'], remote_ts: ['127.0.0.1/32'], bytes_in: 0, packets_out: 0, replay_window: 32, replay_drops: 0, icv_failures: 0 });
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
    expect(status.out).toMatch(/^tunsec daemon: pid \d+, running since \S+ \(up \d+s\), global switch up \(off state: drop\)\nmoon: established since \S+ \(\d+s\), peer 127\.0\.0\.1, moon\.tunsec\.test\.\.\.sun\.tunsec\.test, 1 IKE_SA, 1 CHILD_SA\n$/);
    const sas = await cli('list-sas', '--socket', moonSock);
    expect(sas.out).toMatch(/^moon: ESTABLISHED \d+s ago, IKEv2, [0-9a-f]{16}_i\* [0-9a-f]{16}_r\n  local  'moon\.tunsec\.test' @ 127\.0\.0\.2\[\d+\]\n  remote 'sun\.tunsec\.test' @ 127\.0\.0\.1\[\d+\]\n  aes128gcm16-prfsha384-ecp384bp\n/);
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
    expect(down).toEqual({ code: 0, out: "global switch down: 1 IKE_SA deleted; traffic of tunsec policies is dropped\n", err: '' });
    expect(moonLog.find((l) => l.event === 'global_down')).toMatchObject({ mode: 'drop', deleted_ike_sas: 1 });
    expect((await ask<ListSasResult>(sunSock, 'list-sas')).ike_sas).toEqual([]);
    expect(await ask(moonSock, 'global-status')).toMatchObject({ state: 'down', mode: 'drop' });
    expect((await ask<StatusResult>(moonSock, 'status')).daemon.global.state).toBe('down');
    await expect(ask(moonSock, 'up', { name: 'moon' })).rejects.toMatchObject({ code: 'failed', message: "moon: establishing failed: the global switch is down: nothing is initiated until 'tunsec global up'" });
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
