/**
 * A unix socket only root and the daemon's user may connect to (the control
 * socket, the VICI socket): created with mode 0600 from the first moment,
 * and removed at stop only if the file is still the one we created (another
 * daemon may have taken the path since). Before listening, a socket file left
 * by a crashed daemon (nobody accepts on it) is removed; one where a server
 * answers, or a file that is not a socket, is refused.
 */
import { chmodSync, lstatSync, mkdirSync, statSync, unlinkSync } from 'node:fs';
import { createConnection, type Server } from 'node:net';
import { dirname } from 'node:path';

/** Which file we created: device and inode. */
export interface SocketFileId {
  dev: number;
  ino: number;
}

/** Listen on `path` (its directory made if missing) with mode 0600; `what` names the socket in errors ("control socket"). */
export async function listenPrivate(server: Server, path: string, what: string): Promise<SocketFileId> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const umask = process.umask(0o177); // 0600 as it is created: no moment where others could connect
    try {
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    } finally {
      process.umask(umask);
    }
  }).catch((err: Error) => {
    throw new Error(`cannot listen on ${what} ${path}: ${err.message}`);
  });
  try {
    chmodSync(path, 0o600); // in case the bind happened after the umask was restored
  } catch (err) {
    server.close();
    throw new Error(`${what} ${path}: ${(err as Error).message}`);
  }
  const st = statSync(path);
  return { dev: st.dev, ino: st.ino };
}

/** Remove the socket file at `path` if it is still the one `created` names. */
export function removeIfOurs(path: string, created: SocketFileId | undefined): void {
  try {
    const st = lstatSync(path);
    if (created && st.dev === created.dev && st.ino === created.ino) unlinkSync(path);
  } catch {
    /* already gone */
  }
}

/** What is at a socket path: nothing, a socket nobody accepts on (left by a crash), or a live server (with what it answered, if asked). */
export type SocketProbe<T> = { kind: 'absent' } | { kind: 'stale' } | { kind: 'live'; answer?: T };

export interface SocketClaim<T> {
  /** Names the socket in errors ("control socket"). */
  what: string;
  /** The setting that chooses the path ("daemon.control_socket"). */
  setting: string;
  /** A request line to send a live server, and what its first answer line tells (a daemon's pid). */
  ask?: { request: string; answer(line: string): T | undefined };
  /** The error when a live server answers at the path. */
  inUse(answer: T | undefined): string;
  log(line: string): void;
}

/** Make `path` free to listen on: a stale socket file is removed (and logged); a live one, or anything but a socket, is refused with an Error. */
export async function claimSocketPath<T>(path: string, claim: SocketClaim<T>): Promise<void> {
  const existing = await probeSocket(path, claim);
  if (existing.kind === 'live') throw new Error(claim.inUse(existing.answer));
  if (existing.kind === 'stale') {
    unlinkSync(path);
    claim.log(`removed stale ${claim.what} ${path} (nobody answered on it)`);
  }
}

/**
 * What is at `path`. Anything but a socket is an error: tunsec does not
 * remove files it did not make. A server that accepts is live whether or not
 * it answers `ask` within a second; one that neither accepts nor refuses
 * within a second is taken as live too (not proven dead).
 */
export async function probeSocket<T>(path: string, claim: Pick<SocketClaim<T>, 'what' | 'setting' | 'ask'>): Promise<SocketProbe<T>> {
  const { what, setting, ask } = claim;
  let st;
  try {
    st = lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'absent' };
    throw new Error(`${what} ${path}: ${(err as Error).message}`);
  }
  if (!st.isSocket()) throw new Error(`${what} ${path} exists and is not a socket; remove it or set another ${setting}`);
  return new Promise<SocketProbe<T>>((resolve, reject) => {
    const socket = createConnection({ path });
    let buf = '';
    let connected = false;
    const done = (p: SocketProbe<T>): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(p);
    };
    const live = (answer?: T): SocketProbe<T> => (answer === undefined ? { kind: 'live' } : { kind: 'live', answer });
    const timer = setTimeout(() => done(live()), 1000);
    socket.on('connect', () => {
      connected = true;
      if (ask) socket.write(ask.request);
      else done(live());
    });
    socket.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      const nl = buf.indexOf('\n');
      if (nl < 0 || !ask) return;
      let answer: T | undefined;
      try {
        answer = ask.answer(buf.slice(0, nl));
      } catch {
        /* live, whatever it said */
      }
      done(live(answer));
    });
    socket.on('end', () => done(connected ? live() : { kind: 'stale' }));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (connected) return done(live());
      clearTimeout(timer);
      socket.destroy();
      if (err.code === 'ECONNREFUSED') resolve({ kind: 'stale' });
      else if (err.code === 'ENOENT') resolve({ kind: 'absent' });
      else reject(new Error(`${what} ${path}: ${err.message}`));
    });
  });
}
