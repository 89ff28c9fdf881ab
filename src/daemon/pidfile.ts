/**
 * The pid file: written when the daemon starts, removed when it stops. A pid
 * file that names a live process means another daemon runs with this
 * configuration; a stale one (the process is gone, or it names ourselves —
 * a container restarted with the same pid) is replaced.
 */
import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export class PidFileError extends Error {
  override readonly name = 'PidFileError';
}

/** Is a process with this pid alive (EPERM: it exists, owned by someone else)? */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readPid(path: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new PidFileError(`pid file ${path}: cannot read it (${(err as Error).message})`);
  }
  const pid = Number(text.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/**
 * Write our pid to `path`. Throws PidFileError if the file names another
 * live process, or cannot be written. Returns a note when a stale file was replaced.
 */
export function acquirePidFile(path: string, pid = process.pid): { replacedStale?: number } {
  try {
    mkdirSync(dirname(path), { recursive: true });
  } catch (err) {
    throw new PidFileError(`pid file ${path}: cannot create its directory (${(err as Error).message})`);
  }
  let replacedStale: number | undefined;
  // O_EXCL, so that two daemons started at once cannot both win; a stale file is removed and the create retried once.
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(path, `${pid}\n`, { mode: 0o644, flag: 'wx' });
      return replacedStale === undefined ? {} : { replacedStale };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) {
        throw new PidFileError(`pid file ${path}: cannot write it (${(err as Error).message})`);
      }
    }
    const old = readPid(path);
    if (old !== undefined && old !== pid && processAlive(old)) {
      throw new PidFileError(
        `pid file ${path} names process ${old}, which is running: is another tunsec daemon using this configuration? (stop it, or set daemon.pid_file)`,
      );
    }
    if (old !== undefined && old !== pid) replacedStale = old;
    try {
      unlinkSync(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        throw new PidFileError(`pid file ${path}: cannot remove the stale file (${(err as Error).message})`);
    }
  }
}

/** Remove the pid file if it still names `pid`; a file another daemon wrote meanwhile stays. */
export function releasePidFile(path: string, pid = process.pid): void {
  try {
    if (readPid(path) === pid) unlinkSync(path);
  } catch {
    /* already gone or unreadable: nothing to clean up */
  }
}
