/**
 * Certificate renewal without an operator: the files the credentials come
 * from (our certificates and keys, CA certificates, CRLs, pinned peer
 * certificates; files or directories) are polled, and a change is reported
 * once it has settled, so the daemon reloads its credentials (./reload.ts,
 * `credentialsOnly`): the next IKE SA authenticates with the renewed ones and
 * no SA is dropped.
 *
 * Polling by stat, not inotify: an ACME client (certbot, lego, Puppet's agent)
 * replaces files by rename or swaps the symlinks of a `live/` directory; a stat
 * of the path follows those, where a watch on the old inode would go silent.
 * A directory is read at each poll, so a file added, removed or rewritten in
 * it counts.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export interface CredentialWatchOptions {
  /** The paths to watch; asked again after each reported change (the configuration may name others then). */
  paths: () => readonly string[];
  /** The changed paths, once nothing changed for `settleMs`. */
  changed: (paths: string[]) => void;
  /** Poll period. */
  intervalMs: number;
  /** Quiet time after the last change before it is reported (a renewal writes the certificate and the key one after the other). */
  settleMs?: number;
}

export class CredentialWatch {
  private timer?: NodeJS.Timeout;
  private seen = new Map<string, string>();
  private pending = new Set<string>();
  private lastChange = 0;

  constructor(private readonly options: CredentialWatchOptions) {}

  start(): void {
    this.seen = this.snapshot();
    this.timer = setInterval(() => this.poll(), this.options.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One poll (the timer calls it; tests call it directly). */
  poll(now = Date.now()): void {
    const current = this.snapshot();
    for (const [path, stamp] of current) if (this.seen.get(path) !== stamp) this.pending.add(path);
    for (const path of this.seen.keys()) if (!current.has(path)) this.pending.add(path);
    if (current.size !== this.seen.size || [...current].some(([p, s]) => this.seen.get(p) !== s)) this.lastChange = now;
    this.seen = current;
    if (this.pending.size === 0 || now - this.lastChange < (this.options.settleMs ?? 0)) return;
    const paths = [...this.pending].sort();
    this.pending.clear();
    this.options.changed(paths);
    this.seen = this.snapshot();
  }

  /** path → what identifies its content: size, mtime and inode of every file (a directory's files are listed one by one). */
  private snapshot(): Map<string, string> {
    const out = new Map<string, string>();
    for (const path of new Set(this.options.paths())) {
      const st = stamp(path);
      if (st.dir) {
        let names: string[] = [];
        try {
          names = readdirSync(path).sort();
        } catch {
          /* unreadable: counts as its stamp */
        }
        out.set(path, `dir:${names.length}`);
        for (const name of names) out.set(join(path, name), stamp(join(path, name)).text);
      } else {
        out.set(path, st.text);
      }
    }
    return out;
  }
}

function stamp(path: string): { text: string; dir: boolean } {
  try {
    const st = statSync(path);
    return { text: `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`, dir: st.isDirectory() };
  } catch (err) {
    return { text: `missing:${(err as NodeJS.ErrnoException).code ?? 'error'}`, dir: false };
  }
}

/** The files and directories the credentials of a configuration come from. */
export function credentialPaths(config: {
  authorities: { cacerts: readonly string[]; crls: readonly string[] };
  secrets: Readonly<Record<string, { file: string }>>;
  connections: Readonly<Record<string, { local: { certs: readonly string[] }; remote: { certs: readonly string[]; cacerts: readonly string[] } }>>;
}): string[] {
  const paths = [...config.authorities.cacerts, ...config.authorities.crls, ...Object.values(config.secrets).map((s) => s.file)];
  for (const c of Object.values(config.connections)) paths.push(...c.local.certs, ...c.remote.certs, ...c.remote.cacerts);
  return [...new Set(paths)];
}
