/**
 * What the demos (`npm run demo`: ./demo.ts, `npm run demo:mesh`:
 * ./demo-mesh.ts) share: hosts in network namespaces, each running a
 * `tunsec daemon` that logs to a file in its directory (so it can outlive the
 * demo with --keep), the tunsec CLI inside a host's namespace, waiting for
 * the daemon's events, stopping it by its own PID.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

/** The tunsec CLI next to this file: built (dist/) or, from a checkout, the TypeScript source through tsx. */
const CLI_JS = fileURLToPath(new URL('./main.js', import.meta.url));
export const CLI = existsSync(CLI_JS) ? [CLI_JS] : ['--import', 'tsx', fileURLToPath(new URL('./main.ts', import.meta.url))];

export interface DemoHost {
  name: string;
  ns: string;
  ifname: string;
  ip4: string;
  ip6: string;
  /** Configuration, credentials, pid file, control socket and log. */
  dir: string;
  daemon?: ChildProcess;
  log: string[];
}

export const say = (line = ''): void => void process.stdout.write(`${line}\n`);
export const step = (what: string): void => say(`\n\x1b[1m== ${what}\x1b[0m`);

export function sh(cmd: string, args: string[], opts: { allowFail?: boolean } = {}): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000 });
  const result = { code: r.status ?? 1, stdout: r.stdout ?? '', stderr: r.stderr ?? r.error?.message ?? '' };
  if (result.code !== 0 && !opts.allowFail) throw new Error(`${cmd} ${args.join(' ')}: ${result.stderr.trim() || `exit ${result.code}`}`);
  return result;
}

/** The tunsec CLI inside a host's namespace, against its daemon. */
export function tunsec(host: DemoHost, args: string[]): string {
  const r = sh('ip', ['netns', 'exec', host.ns, process.execPath, ...CLI, ...args, '--socket', join(host.dir, 'tunsec.sock')], { allowFail: true });
  return (r.stdout + r.stderr).trimEnd();
}

/** `tunsec daemon -c <dir>/tunsec.yaml` in the host's namespace, logging to `<dir>/daemon.log`. */
export function startDaemon(host: DemoHost): void {
  const fd = openSync(join(host.dir, 'daemon.log'), 'a');
  host.daemon = spawn('ip', ['netns', 'exec', host.ns, process.execPath, ...CLI, 'daemon', '-c', join(host.dir, 'tunsec.yaml')], {
    stdio: ['ignore', fd, fd],
    detached: true,
  });
  closeSync(fd);
}

export function logOf(host: DemoHost): string[] {
  const file = join(host.dir, 'daemon.log');
  return existsSync(file)
    ? readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => l.length > 0)
    : [];
}

/** Wait until the host's daemon has logged `event` `count` times; its exit is an error. */
export async function waitForEvents(host: DemoHost, event: string, count: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    host.log = logOf(host);
    const n = host.log.filter((l) => l.includes(`"event":"${event}"`)).length;
    if (n >= count) return;
    if (host.daemon?.exitCode !== null && host.daemon?.exitCode !== undefined)
      throw new Error(`${host.name}'s daemon exited:\n${host.log.slice(-20).join('\n')}`);
    if (Date.now() > deadline) throw new Error(`${host.name}: no ${count}× ${event} within ${timeoutMs / 1000} s:\n${host.log.slice(-20).join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** SIGTERM (Deletes sent), SIGKILL after 8 s. */
export async function stopDaemon(host: DemoHost): Promise<void> {
  const child = host.daemon;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 8000);
  await exited;
  clearTimeout(timer);
}

/**
 * A demo's teardown, run once: stops the daemons (Deletes sent), deletes the hosts' namespaces and
 * `extraNs`, removes the hosts' directories and says `done`. SIGINT/SIGTERM run it and exit 130.
 * `keep()` (--keep) leaves everything running and lets this process exit without the daemons.
 * `track(child)` registers a helper process (a capture, a ping) that the teardown stops first.
 */
export function demoTeardown(
  hosts: DemoHost[],
  extraNs: string[],
  done: string,
): { cleanup: () => Promise<void>; keep: () => void; track: (child: ChildProcess) => ChildProcess } {
  let cleaned = false;
  /** Helpers the demo started inside the namespaces (captures, pings): a namespace lives on while one runs. */
  const helpers = new Set<ChildProcess>();
  const track = (child: ChildProcess): ChildProcess => {
    // started by the demo's steps while Ctrl-C's teardown already runs: stopped at once
    if (cleaned) void stopHelper(child);
    helpers.add(child);
    child.once('exit', () => helpers.delete(child));
    return child;
  };
  const cleanup = async (): Promise<void> => {
    if (cleaned) return;
    cleaned = true;
    step('cleaning up');
    await Promise.all([...[...helpers].map(stopHelper), ...hosts.map((h) => stopDaemon(h))]);
    for (const ns of [...hosts.map((h) => h.ns), ...extraNs]) sh('ip', ['netns', 'del', ns], { allowFail: true });
    for (const h of hosts) rmSync(h.dir, { recursive: true, force: true });
    say(done);
  };
  const onSignal = (): void => {
    void cleanup().then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const keep = (): void => {
    cleaned = true;
    for (const h of hosts) h.daemon?.unref();
  };
  return { cleanup, keep, track };
}

/** A demo step failed: say so with the last lines of each daemon's log, tear down, exit code 1. */
export async function demoFailed(command: string, err: unknown, hosts: DemoHost[], cleanup: () => Promise<void>): Promise<number> {
  process.stderr.write(`\ntunsec ${command} failed: ${(err as Error).message}\n`);
  for (const h of hosts) {
    const tail = logOf(h).slice(-15).join('\n');
    if (tail) process.stderr.write(`--- ${h.name} daemon log (last lines)\n${tail}\n`);
  }
  await cleanup();
  return 1;
}

/** SIGTERM, SIGKILL after 2 s; resolves when the process is gone. */
async function stopHelper(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
  await exited;
  clearTimeout(timer);
}

/** `--keep`: leave the namespaces and daemons running; anything else is an error (exit 2). */
export function keepOption(command: string): { keep: boolean } {
  try {
    return { keep: parseArgs({ options: { keep: { type: 'boolean' } }, strict: true }).values.keep === true };
  } catch (err) {
    process.stderr.write(`tunsec ${command}: ${(err as Error).message}\nusage: npm run ${command} [-- --keep]\n`);
    process.exit(2);
  }
}
