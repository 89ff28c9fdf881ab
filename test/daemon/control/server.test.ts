/**
 * The control socket's server: the line protocol against misbehaving clients
 * (bad JSON, unknown commands, oversize requests, many clients at once,
 * clients that go away) and the socket file's life cycle (mode 0600, stale
 * files, a live daemon on the path).
 */
import { spawn } from 'node:child_process';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_REQUEST_BYTES } from '../../../src/control/protocol.js';
import { ControlServer, MAX_QUEUED_REQUESTS, type ControlHandler } from '../../../src/daemon/control/server.js';
import { controlRequest } from '../../../src/cli/control-client.js';
import { collectingLogger, sleep, tempDir, type LogLine } from '../support.js';

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

describe('the control socket protocol', () => {
  const dirs: Array<ReturnType<typeof tempDir>> = [];
  const servers: ControlServer[] = [];
  afterEach(() => {
    for (const s of servers.splice(0)) s.stop();
    for (const d of dirs.splice(0)) d.remove();
  });

  async function serve(
    handlers: Record<string, ControlHandler>,
    opts: { maxClients?: number } = {},
  ): Promise<{ server: ControlServer; path: string; lines: LogLine[] }> {
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
    const r = await exchange(path, '{"id":1,"command":"slow","args":{"ms":80}}\n{"id":"two","command":"echo","args":{"x":1}}\n{"command":"echo"}\n', {
      expect: 3,
    });
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
    const r = await exchange(
      path,
      ['{"id":1,"command":', '[1,2]', '{"id":{},"command":"echo"}', '{"id":5}', '{"id":6,"command":"echo","args":[1]}', '{"id":7,"command":"echo"}', ''].join(
        '\n',
      ),
      { expect: 6 },
    );
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
      const child = spawn(process.execPath, [
        '-e',
        `require('node:net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`,
      ]);
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
