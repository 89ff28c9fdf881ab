/** Running commands from tests: exit code and output, never a shell string. */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a command; resolves with its exit code and output (does not reject on non-zero exit). */
export function run(cmd: string, args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; input?: string; cwd?: string } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(
      cmd,
      args,
      { timeout: opts.timeoutMs ?? 30_000, env: opts.env ?? process.env, maxBuffer: 64 * 1024 * 1024, ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }) },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) + (err && typeof err.code !== 'number' ? String(err.message) : '') });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Run a command and throw with its output if it fails. */
export async function must(cmd: string, args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

/** Whether a program is on PATH (or an absolute path that exists). */
export function haveProgram(name: string): boolean {
  if (name.startsWith('/')) return existsSync(name);
  return (process.env.PATH ?? '').split(':').some((d) => d && existsSync(`${d}/${name}`));
}

/**
 * Fail (never skip) when a test's prerequisites are missing: CI must not pass
 * with a suite silently left out. Checks root and programs on PATH.
 */
export function requireRootAndPrograms(suite: string, programs: readonly string[]): void {
  const problems: string[] = [];
  if (process.getuid?.() !== 0) problems.push('must run as root');
  const missing = programs.filter((p) => !haveProgram(p));
  if (missing.length) problems.push(`missing ${missing.join(', ')}`);
  if (problems.length) throw new Error(`${suite}: ${problems.join('; ')} (run scripts/setup-system.sh as root)`);
}

/** Read a PID file; undefined when absent or the process is gone. */
export function pidFromFile(path: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8'); // the owner may remove it at any moment (iperf3 -1 on exit)
  } catch {
    return undefined;
  }
  const pid = Number(text.trim());
  if (!Number.isInteger(pid) || pid <= 1) return undefined;
  return existsSync(`/proc/${pid}`) ? pid : undefined;
}

/** SIGTERM, wait up to `graceMs`, then SIGKILL. */
export async function stopPid(pid: number, graceMs = 5000): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!existsSync(`/proc/${pid}`) || readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[2] === 'Z') return;
    await new Promise((r) => setTimeout(r, 50));
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

export function spawnLogged(cmd: string, args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: false });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll `check` every `intervalMs` until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 10_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** The totals of ping(8)'s summary line ("N packets transmitted, M received"); 0 when it is missing. */
export function pingSummary(output: string): { sent: number; received: number } {
  return {
    sent: Number(/(\d+) packets transmitted/.exec(output)?.[1] ?? 0),
    received: Number(/(\d+) received/.exec(output)?.[1] ?? 0),
  };
}
