/**
 * Issue 9, secrets: the control socket talks to root (and the daemon's own
 * user) only. The peer's credentials come from the kernel (SO_PEERCRED, the
 * native addon's peerCred): even with the socket file opened up to everyone
 * (mode 0666), a process running as nobody is answered with one `forbidden`
 * line and disconnected, and counted.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlServer, socketPeerCredentials } from '../../../src/daemon/control/server.js';
import { DaemonLogger } from '../../../src/daemon/logger.js';
import { loadNative } from '../../../src/native/addon.js';
import { requireRootAndPrograms } from '../../support/proc.js';

requireRootAndPrograms('control socket peer credentials', ['setpriv']);

const NOBODY = 65534;

function ask(path: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const s = createConnection({ path });
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`no answer; got ${buf}`)), 5000);
    s.on('connect', () => s.write('{"id":1,"command":"ping"}\n'));
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      buf += d;
      if (buf.endsWith('\n')) {
        clearTimeout(timer);
        s.destroy();
        resolve(buf.trim().split('\n'));
      }
    });
    s.on('error', reject);
  });
}

/** The same request from a child process running as nobody: its stdout (the answer) and exit code. */
function askAsNobody(path: string): Promise<{ code: number | null; out: string; err: string }> {
  const script = `const s=require('net').createConnection(${JSON.stringify(path)});let b='';s.on('connect',()=>s.write('{"id":1,"command":"ping"}\\n'));s.on('data',d=>b+=d);s.on('close',()=>{process.stdout.write(b);process.exit(0)});s.on('error',e=>{process.stderr.write(e.message);process.exit(3)});setTimeout(()=>{process.stdout.write(b);process.exit(4)},5000);`;
  return new Promise((resolve) => {
    const child = spawn('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, '-e', script], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => resolve({ code, out, err }));
  });
}

describe('the control socket checks its peer with SO_PEERCRED', () => {
  const dir = mkdtempSync('/tmp/tspc-');
  const path = join(dir, 'control.sock');
  const lines: string[] = [];
  const server = new ControlServer({ path, log: new DaemonLogger({ json: true, write: (l) => lines.push(l) }), handlers: { ping: () => 'pong' } });

  beforeAll(async () => {
    await server.start();
    // open the file up as a careless operator might: only the credential check is left
    chmodSync(dir, 0o755);
    chmodSync(path, 0o666);
  });
  afterAll(() => {
    server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the native addon reports the pid, uid and gid of a connected peer', async () => {
    expect(typeof loadNative().peerCred).toBe('function');
    const creds = await new Promise<{ pid: number; uid: number; gid: number }>((resolve, reject) => {
      const s = createConnection({ path });
      s.on('connect', () => {
        try {
          resolve(socketPeerCredentials(s)); // our end sees the server: this very process
        } catch (err) {
          reject(err);
        } finally {
          s.destroy();
        }
      });
      s.on('error', reject);
    });
    expect(creds).toEqual({ pid: process.pid, uid: process.getuid!(), gid: process.getgid!() });
  });

  it('answers root', async () => {
    expect(await ask(path)).toEqual(['{"id":1,"ok":true,"result":"pong"}']);
  });

  it('refuses a process running as nobody with one forbidden line, logs and counts it', async () => {
    const before = server.counters.refusedPeers;
    const r = await askAsNobody(path);
    expect(r.code, r.err).toBe(0);
    const answer = JSON.parse(r.out.trim()) as Record<string, unknown>;
    expect(answer).toMatchObject({ id: null, ok: false, code: 'forbidden' });
    expect(String(answer.error)).toContain(`uid ${NOBODY}`);
    expect(server.counters.refusedPeers).toBe(before + 1);
    expect(lines.some((l) => l.includes(`refused uid ${NOBODY}`))).toBe(true);
  });

  it('refuses a peer whose credentials cannot be read (fail closed)', async () => {
    const d = mkdtempSync('/tmp/tspc-');
    const p = join(d, 'c.sock');
    const s = new ControlServer({
      path: p,
      log: new DaemonLogger({ json: true, write: () => undefined }),
      handlers: { ping: () => 'pong' },
      peerCredentials: () => {
        throw new Error('no descriptor');
      },
    });
    await s.start();
    try {
      const [line] = await ask(p);
      expect(JSON.parse(line!)).toMatchObject({ ok: false, code: 'forbidden' });
      expect(s.counters.refusedPeers).toBe(1);
    } finally {
      s.stop();
      rmSync(d, { recursive: true, force: true });
    }
  });
});
