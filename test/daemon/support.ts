/**
 * Helpers for the daemon and CLI tests: a throwaway PKI written to a temp
 * directory, free UDP ports on two loopback addresses, and `tunsec` child
 * processes whose JSON log lines can be awaited.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCa, generateKeyPair, issueCertificate, type Issued } from '../../src/pki/issue.js';
import { DaemonLogger } from '../../src/daemon/logger.js';

export const REPO = join(import.meta.dirname, '..', '..');
export const CLI = join(REPO, 'src', 'cli', 'main.ts');

export function tempDir(prefix = 'tunsec-daemon-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export interface PkiFiles {
  dir: string;
  ca: Issued;
  caCert: string;
  host(name: string, ip?: string): { issued: Issued; cert: string; key: string };
  /** A key that belongs to no certificate. */
  strayKey(name: string): string;
}

/** A CA and host certificates (SAN: the DNS name and the IP) as PEM files, keys mode 0600. */
export function writePki(dir: string): PkiFiles {
  mkdirSync(join(dir, 'x509ca'), { recursive: true });
  mkdirSync(join(dir, 'x509'), { recursive: true });
  mkdirSync(join(dir, 'private'), { recursive: true });
  const ca = createCa({ subject: 'C=CH, O=tunsec test, CN=tunsec Test CA', key: 'p256' });
  const caCert = join(dir, 'x509ca', 'caCert.pem');
  writeFileSync(caCert, ca.certificatePem);
  const writeKey = (name: string, pem: string): string => {
    const file = join(dir, 'private', `${name}Key.pem`);
    writeFileSync(file, pem, { mode: 0o600 });
    chmodSync(file, 0o600);
    return file;
  };
  return {
    dir,
    ca,
    caCert,
    host(name, ip) {
      const issued = issueCertificate(ca, {
        subject: `C=CH, O=tunsec test, CN=${name}`,
        key: 'p256',
        subjectAltNames: { dns: [name], ...(ip ? { ip: [ip] } : {}) },
      });
      const cert = join(dir, 'x509', `${name}.pem`);
      writeFileSync(cert, issued.certificatePem);
      return { issued, cert, key: writeKey(name, issued.privateKeyPem!) };
    },
    strayKey(name) {
      const { privateKey } = generateKeyPair('p256');
      return writeKey(name, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
    },
  };
}

function bindable(address: string, port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    s.once('error', () => {
      s.close();
      resolve(undefined);
    });
    s.bind({ address, port, exclusive: true }, () => {
      const bound = s.address().port;
      s.close(() => resolve(bound));
    });
  });
}

/** A UDP port free on every one of `addresses` (a race with other processes remains possible, as always). */
export async function freePort(addresses: string[], avoid: number[] = []): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = await bindable(addresses[0]!, 0);
    if (port === undefined || avoid.includes(port)) continue;
    let ok = true;
    for (const a of addresses.slice(1)) if ((await bindable(a, port)) === undefined) ok = false;
    if (ok) return port;
  }
  throw new Error(`no free UDP port on ${addresses.join(', ')}`);
}

export type LogLine = Record<string, unknown> & { time: string; level: string; subsys: string; msg: string; event?: string };

/** A `tunsec` child process: its JSON lines, stderr, and its exit. */
export class TunsecProcess {
  readonly child: ChildProcess;
  readonly lines: LogLine[] = [];
  /** stdout lines that are not JSON (should stay empty). */
  readonly other: string[] = [];
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private buffer = '';
  private waiters: Array<() => void> = [];

  constructor(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
    this.child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
      cwd: opts.cwd ?? REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_NO_WARNINGS: '1', ...opts.env },
    });
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      this.buffer += chunk;
      let nl: number;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        const line = this.buffer.slice(0, nl);
        this.buffer = this.buffer.slice(nl + 1);
        try {
          this.lines.push(JSON.parse(line) as LogLine);
        } catch {
          this.other.push(line);
        }
      }
      this.notify();
    });
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.notify();
        resolve({ code, signal });
      });
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  private notify(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** The first log line matching `predicate`, waiting up to `timeoutMs`. */
  async waitFor(what: string, predicate: (l: LogLine) => boolean, timeoutMs = 20_000): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.lines.find(predicate);
      if (hit) return hit;
      if (!this.alive) throw new Error(`tunsec exited before ${what}\n${this.transcript()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}\n${this.transcript()}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 500));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  waitForEvent(event: string, timeoutMs?: number): Promise<LogLine> {
    return this.waitFor(`event ${event}`, (l) => l.event === event, timeoutMs);
  }

  transcript(): string {
    return [...this.lines.map((l) => JSON.stringify(l)), ...this.other, this.stderr ? `stderr: ${this.stderr}` : ''].join('\n');
  }

  /** SIGKILL if still running (cleanup after a failed test). */
  async kill(): Promise<void> {
    if (!this.alive) return;
    try {
      process.kill(this.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    await this.exited;
  }
}

/**
 * A one-connection configuration for a daemon in this process on a loopback
 * address (no datapath, no bypass rules: nothing outside the process),
 * written to `dir/<name>.yaml`; returns the file.
 */
export function writeLoopbackConfig(
  dir: string,
  pki: PkiFiles,
  o: { name: string; local: string; remote: string; localPort: number; remotePort: number; start: boolean; keyingtries?: number; daemonExtra?: string[] },
): string {
  const host = pki.host(`${o.name}.tunsec.test`);
  const file = join(dir, `${o.name}.yaml`);
  writeFileSync(
    file,
    [
      'daemon:',
      `  pid_file: ${join(dir, `${o.name}.pid`)}`,
      '  bypass_rules: no',
      '  datapath: none',
      ...(o.daemonExtra ?? []).map((l) => `  ${l}`),
      'authorities:',
      `  cacerts: [${pki.caCert}]`,
      'secrets:',
      `  private-${o.name}:`,
      `    file: ${host.key}`,
      'connections:',
      `  ${o.name}:`,
      `    local_addrs: "${o.local}"`,
      `    remote_addrs: "${o.remote}"`,
      `    local_port: ${o.localPort}`,
      `    remote_port: ${o.remotePort}`,
      `    keyingtries: ${o.keyingtries ?? 1}`,
      '    proposals: aes256gcm16-prfsha256-ecp256!',
      '    local:',
      `      certs: [${host.cert}]`,
      `      id: ${o.name}.tunsec.test`,
      '    children:',
      '      host:',
      '        esp_proposals: aes256gcm16!',
      `        start_action: ${o.start ? 'start' : 'none'}`,
      '',
    ].join('\n'),
  );
  return file;
}

/** A JSON logger whose lines the test reads. */
export function collectingLogger(): { logger: DaemonLogger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  return { lines, logger: new DaemonLogger({ json: true, write: (l) => lines.push(JSON.parse(l) as LogLine) }) };
}

export { sleep } from '../support/proc.js';
