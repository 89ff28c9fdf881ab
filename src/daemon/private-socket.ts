/**
 * A unix socket only root and the daemon's user may connect to (the control
 * socket, the VICI socket): created with mode 0600 from the first moment,
 * and removed at stop only if the file is still the one we created (another
 * daemon may have taken the path since).
 */
import { chmodSync, lstatSync, mkdirSync, statSync, unlinkSync } from 'node:fs';
import type { Server } from 'node:net';
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
