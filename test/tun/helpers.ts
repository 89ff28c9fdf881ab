/** Spawning helper scripts inside a netns and reading their line protocol. */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export class NsScript {
  readonly lines: string[] = [];
  private waiters: Array<() => void> = [];
  readonly exited: Promise<number>;
  stderr = '';

  constructor(readonly proc: ChildProcess) {
    let buf = '';
    proc.stdout?.setEncoding('utf8');
    proc.stdout?.on('data', (d: string) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        this.lines.push(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
      for (const w of this.waiters.splice(0)) w();
    });
    proc.stderr?.setEncoding('utf8');
    proc.stderr?.on('data', (d: string) => (this.stderr += d));
    this.exited = new Promise((res) =>
      proc.on('exit', (code) => {
        for (const w of this.waiters.splice(0)) w();
        res(code ?? -1);
      }),
    );
  }

  static start(ns: string, script: string, args: string[]): NsScript {
    const proc = spawn('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', join(repoRoot, 'test/tun/scripts', script), ...args], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new NsScript(proc);
  }

  /** Resolve with the first line starting with `prefix` (rejects on exit or timeout). */
  async waitLine(prefix: string, timeoutMs = 15_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.lines.find((l) => l.startsWith(prefix));
      if (hit !== undefined) return hit;
      if (this.proc.exitCode !== null || Date.now() > deadline)
        throw new Error(`no "${prefix}" line (exit ${this.proc.exitCode}); stdout: ${this.lines.join(' | ')}; stderr: ${this.stderr}`);
      await new Promise<void>((res) => {
        const t = setTimeout(res, Math.max(10, Math.min(200, deadline - Date.now())));
        this.waiters.push(() => {
          clearTimeout(t);
          res();
        });
      });
    }
  }

  kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGTERM');
  }
}
