/**
 * The VICI socket's server (src/daemon/vici/server.ts) over a real unix
 * socket with raw VICI clients: event registration, CMD_UNKNOWN, streamed and
 * broadcast events, and what it does with malformed input — an error response
 * when the framing survives, the connection closed when it does not, counted
 * either way, and the server answering the next client all the same.
 */
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { messageString, messageToObject } from '../../../src/control/vici/message.js';
import { ViciFrameReader, ViciPacketType, decodePacket, encodePacket, type ViciPacket } from '../../../src/control/vici/packet.js';
import { DaemonLogger } from '../../../src/daemon/logger.js';
import { ViciCommandError, ViciServer, VICI_MAX_BACKLOG } from '../../../src/daemon/vici/server.js';

/** A raw VICI client: send packets, read packets in order. */
class Client {
  private readonly reader = new ViciFrameReader();
  private readonly packets: ViciPacket[] = [];
  private waiting?: () => void;
  closed = false;
  readonly socket: Socket;
  readonly ready: Promise<void>;

  constructor(path: string) {
    this.socket = createConnection({ path });
    this.ready = new Promise((resolve, reject) => {
      this.socket.once('connect', () => resolve());
      this.socket.once('error', reject);
    });
    this.socket.on('data', (d: Buffer) => {
      for (const s of this.reader.push(d)) this.packets.push(decodePacket(s));
      this.waiting?.();
    });
    this.socket.on('error', () => {});
    this.socket.on('close', () => {
      this.closed = true;
      this.waiting?.();
    });
  }

  send(octets: Buffer): void {
    this.socket.write(octets);
  }

  async next(): Promise<ViciPacket> {
    for (;;) {
      const p = this.packets.shift();
      if (p) return p;
      if (this.closed) throw new Error('connection closed');
      await new Promise<void>((resolve) => (this.waiting = resolve));
    }
  }

  async request(name: string, message: Record<string, string> = {}): Promise<ViciPacket> {
    this.send(encodePacket({ type: ViciPacketType.CMD_REQUEST, name, message }));
    return this.next();
  }

  async register(event: string): Promise<ViciPacketType> {
    this.send(encodePacket({ type: ViciPacketType.EVENT_REGISTER, name: event }));
    return (await this.next()).type;
  }

  async closedByServer(): Promise<boolean> {
    if (!this.closed) await new Promise<void>((resolve) => this.socket.once('close', () => resolve()));
    return true;
  }

  end(): void {
    this.socket.destroy();
  }
}

describe('the VICI server', () => {
  const dir = mkdtempSync('/tmp/tsvici-');
  const path = join(dir, 'vici');
  const lines: string[] = [];
  const log = new DaemonLogger({ json: true, write: (l) => lines.push(l), levels: { daemon: 2 } });
  const server = new ViciServer({
    path,
    log,
    events: ['list-thing', 'news'],
    commands: {
      echo: (request) => ({ success: 'yes', said: messageString(request, 'say') ?? '' }),
      'list-things': (_request, client) => {
        for (const n of ['a', 'b']) client.event('list-thing', { [n]: { n } });
        return {};
      },
      refuse: () => {
        throw new ViciCommandError('not today');
      },
      crash: () => {
        throw new TypeError('bug');
      },
    },
  });

  beforeAll(() => server.start());
  afterAll(() => {
    server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('listens on a socket of mode 0600', () => {
    const st = statSync(path);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
  });

  it('answers a command with CMD_RESPONSE and an unknown one with CMD_UNKNOWN, counted', async () => {
    const c = new Client(path);
    await c.ready;
    const r = await c.request('echo', { say: 'hello' });
    expect(r.type === ViciPacketType.CMD_RESPONSE && messageToObject(r.message)).toEqual({ success: 'yes', said: 'hello' });
    const before = server.counters.unknownCommands;
    expect((await c.request('load-conn')).type).toBe(ViciPacketType.CMD_UNKNOWN);
    expect((await c.request('__proto__')).type).toBe(ViciPacketType.CMD_UNKNOWN);
    expect(server.counters.unknownCommands).toBe(before + 2);
    c.end();
  });

  it('confirms registrations for its events and answers EVENT_UNKNOWN for others', async () => {
    const c = new Client(path);
    await c.ready;
    expect(await c.register('news')).toBe(ViciPacketType.EVENT_CONFIRM);
    expect(await c.register('list-policy')).toBe(ViciPacketType.EVENT_UNKNOWN);
    c.send(encodePacket({ type: ViciPacketType.EVENT_UNREGISTER, name: 'news' }));
    expect((await c.next()).type).toBe(ViciPacketType.EVENT_CONFIRM);
    c.end();
  });

  it('streams events to the client that asked, before the response, only when it registered', async () => {
    const c = new Client(path);
    await c.ready;
    const unregistered = await c.request('list-things'); // not registered: no events, just the answer
    expect(unregistered.type === ViciPacketType.CMD_RESPONSE && messageToObject(unregistered.message)).toEqual({});
    await c.register('list-thing');
    c.send(encodePacket({ type: ViciPacketType.CMD_REQUEST, name: 'list-things', message: {} }));
    const got = [await c.next(), await c.next(), await c.next()];
    expect(got.map((p) => p.type)).toEqual([ViciPacketType.EVENT, ViciPacketType.EVENT, ViciPacketType.CMD_RESPONSE]);
    expect(got[0]!.type === ViciPacketType.EVENT && [got[0]!.name, messageToObject(got[0]!.message)]).toEqual(['list-thing', { a: { n: 'a' } }]);
    c.end();
  });

  it('broadcasts an event to every client registered for it and no other', async () => {
    const a = new Client(path);
    const b = new Client(path);
    await Promise.all([a.ready, b.ready]);
    await a.register('news');
    expect(await b.request('echo')).toMatchObject({ type: ViciPacketType.CMD_RESPONSE });
    expect(server.listening('news')).toBe(true);
    server.broadcast('news', () => ({ headline: 'tunsec speaks VICI' }));
    const ev = await a.next();
    expect(ev.type === ViciPacketType.EVENT && messageToObject(ev.message)).toEqual({ headline: 'tunsec speaks VICI' });
    // b got nothing: its next packet is the answer to its next request
    expect((await b.request('echo')).type).toBe(ViciPacketType.CMD_RESPONSE);
    a.end();
    b.end();
  });

  it('a failing command answers success=no with its message; an unexpected exception is logged and answered as internal', async () => {
    const c = new Client(path);
    await c.ready;
    const r = await c.request('refuse');
    expect(r.type === ViciPacketType.CMD_RESPONSE && messageToObject(r.message)).toEqual({ success: 'no', errmsg: 'not today' });
    const x = await c.request('crash');
    expect(x.type === ViciPacketType.CMD_RESPONSE && messageToObject(x.message)).toEqual({ success: 'no', errmsg: 'internal error: bug' });
    expect(lines.some((l) => l.includes('VICI command crash failed'))).toBe(true);
    c.end();
  });

  it('a request with a malformed message is answered success=no, counted, and the connection goes on', async () => {
    const c = new Client(path);
    await c.ready;
    const before = server.counters.badPackets;
    const body = Buffer.from([0, 4, ...Buffer.from('echo'), 3, 0, 0, 0]); // KEY_VALUE with an empty name
    const bad = Buffer.concat([Buffer.from([0, 0, 0, body.length]), body]);
    c.send(bad);
    const r = await c.next();
    expect(r.type === ViciPacketType.CMD_RESPONSE && messageToObject(r.message).success).toBe('no');
    expect(server.counters.badPackets).toBe(before + 1);
    expect((await c.request('echo', { say: 'still here' })).type).toBe(ViciPacketType.CMD_RESPONSE);
    c.end();
  });

  it('lost framing (a zero or oversized length) and packets only the daemon may send end that connection, counted', async () => {
    for (const octets of [
      Buffer.from([0, 0, 0, 0]),
      Buffer.from([0x7f, 0, 0, 0]),
      encodePacket({ type: ViciPacketType.CMD_RESPONSE, message: {} }),
      encodePacket({ type: ViciPacketType.EVENT, name: 'x', message: {} }),
    ]) {
      const before = server.counters.badPackets;
      const c = new Client(path);
      await c.ready;
      c.send(octets);
      expect(await c.closedByServer()).toBe(true);
      expect(server.counters.badPackets).toBe(before + 1);
    }
    const c = new Client(path);
    await c.ready;
    expect((await c.request('echo')).type).toBe(ViciPacketType.CMD_RESPONSE);
    c.end();
  });

  it('random octet streams never stop it: afterwards a new client is answered', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 6 }), async (chunks) => {
        const c = new Client(path);
        await c.ready;
        // a plausible prefix now and then, so that parsing gets past the length field
        for (const u of chunks) c.send(u.length > 0 && u[0]! % 2 === 0 ? Buffer.concat([Buffer.from([0, 0, 0, u.length]), Buffer.from(u)]) : Buffer.from(u));
        await new Promise((r) => setImmediate(r));
        c.end();
      }),
      { numRuns: 200 },
    );
    const c = new Client(path);
    await c.ready;
    expect((await c.request('echo', { say: 'alive' })).type).toBe(ViciPacketType.CMD_RESPONSE);
    c.end();
  });

  it('a client that does not read its events is disconnected before its backlog passes the limit', async () => {
    const c = new Client(path);
    await c.ready;
    await c.register('news');
    c.socket.pause();
    const before = server.counters.slowClients;
    const big = 'x'.repeat(60_000);
    for (let i = 0; i < Math.ceil((2 * VICI_MAX_BACKLOG) / 60_000) && server.counters.slowClients === before; i++) server.broadcast('news', { big });
    expect(server.counters.slowClients).toBe(before + 1);
    c.socket.resume();
    expect(await c.closedByServer()).toBe(true);
  });
});

describe('the VICI server checks its peer and its path', () => {
  it('refuses a peer whose uid is not allowed (SO_PEERCRED), counted and logged', async () => {
    const dir = mkdtempSync('/tmp/tsvici-');
    const lines: string[] = [];
    const server = new ViciServer({
      path: join(dir, 'vici'),
      log: new DaemonLogger({ json: true, write: (l) => lines.push(l) }),
      events: [],
      commands: { echo: () => ({}) },
      allowedUids: [0],
      peerCredentials: () => ({ pid: 4242, uid: 1000, gid: 1000 }),
    });
    await server.start();
    try {
      const c = new Client(join(dir, 'vici'));
      await c.ready;
      c.send(encodePacket({ type: ViciPacketType.CMD_REQUEST, name: 'echo', message: {} }));
      expect(await c.closedByServer()).toBe(true);
      await expect(c.next()).rejects.toThrow('connection closed');
      expect(server.counters.refusedPeers).toBe(1);
      expect(lines.some((l) => l.includes('VICI socket: refused uid 1000 (pid 4242)'))).toBe(true);
    } finally {
      server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('replaces a stale socket file, refuses a path where a server answers and a path that is not a socket', async () => {
    const dir = mkdtempSync('/tmp/tsvici-');
    const quiet = new DaemonLogger({ json: true, write: () => {} });
    const make = (path: string) => new ViciServer({ path, log: quiet, events: [], commands: {} });
    try {
      // a live listener (charon, or another tunsec) at the path
      const live = join(dir, 'live');
      const other = createServer(() => {});
      await new Promise<void>((r) => other.listen(live, r));
      await expect(make(live).start()).rejects.toThrow('is in use');
      // the same socket file with nobody behind it: stale, replaced
      await new Promise<void>((r) => other.close(() => r()));
      const stale = join(dir, 'stale');
      const s2 = createServer(() => {});
      await new Promise<void>((r) => s2.listen(stale, r));
      chmodSync(stale, 0o600);
      // close without unlinking: what a crashed daemon leaves behind
      (s2 as unknown as { _handle: { close(): void } | null })._handle?.close();
      const v = make(stale);
      await v.start();
      expect(statSync(stale).isSocket()).toBe(true);
      v.stop();
      const file = join(dir, 'file');
      writeFileSync(file, 'not a socket');
      await expect(make(file).start()).rejects.toThrow('exists and is not a socket');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
