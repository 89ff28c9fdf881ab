/**
 * The daemon under a service manager: systemd's notify protocol (sd_notify(3))
 * through the native addon, received by a minimal listener of our own
 * (test/support/notify-listener.py binds the datagram socket systemd would),
 * and journald's priority prefixes when stdout is the journal stream.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isJournalStream } from '../../src/daemon/logger.js';
import { SystemdNotifier, systemdNotifierFromEnv } from '../../src/daemon/systemd.js';
import { waitFor } from '../support/proc.js';
import { CLI, REPO, TunsecProcess, tempDir } from './support.js';

const LISTENER = join(REPO, 'test', 'support', 'notify-listener.py');

interface Datagram {
  msg: string;
  control?: { ok?: boolean; state?: string; error?: string };
}

/** The listener process and the datagrams it reported, in order. */
class NotifyListener {
  readonly child: ChildProcess;
  readonly datagrams: Datagram[] = [];
  private out = '';
  private listening = false;

  constructor(socket: string, controlSocket?: string) {
    this.child = spawn('python3', [LISTENER, socket, ...(controlSocket ? [controlSocket] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      this.out += chunk;
      let nl: number;
      while ((nl = this.out.indexOf('\n')) >= 0) {
        const line = this.out.slice(0, nl);
        this.out = this.out.slice(nl + 1);
        if (line === 'listening') this.listening = true;
        else this.datagrams.push(JSON.parse(line) as Datagram);
      }
    });
  }

  ready(): Promise<boolean> {
    return waitFor('the notify listener to bind its socket', () => this.listening);
  }

  /** Index of the first datagram at or after `from` with the assignment `assignment`. */
  async next(assignment: string, from = 0, timeoutMs = 20_000): Promise<number> {
    return waitFor(
      `${assignment} from the daemon (got ${JSON.stringify(this.datagrams.map((d) => d.msg))})`,
      () => {
        const i = this.datagrams.findIndex((d, k) => k >= from && d.msg.split('\n').includes(assignment));
        return i >= 0 ? i + 1 : undefined;
      },
      timeoutMs,
      20,
    ).then((i) => i - 1);
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

function minimalConfig(dir: string): string {
  const file = join(dir, 'tunsec.yaml');
  writeFileSync(
    file,
    [
      'daemon:',
      `  pid_file: ${join(dir, 'tunsec.pid')}`,
      `  control_socket: ${join(dir, 'tunsec.sock')}`,
      '  bypass_rules: no',
      '  datapath: none',
      'connections: {}',
      '',
    ].join('\n'),
  );
  return file;
}

describe('systemd notify protocol', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('the daemon sends READY=1 only once its control socket answers, WATCHDOG=1 at half WATCHDOG_USEC, RELOADING=1 and READY=1 around a reload, STOPPING=1 on SIGTERM', async () => {
    const dir = tempDir('tunsec-notify-');
    cleanups.push(() => dir.remove());
    const config = minimalConfig(dir.path);
    const control = join(dir.path, 'tunsec.sock');
    const listener = new NotifyListener(join(dir.path, 'notify.sock'), control);
    cleanups.push(() => listener.kill());
    await listener.ready();

    const daemon = new TunsecProcess(['daemon', '-c', config], { env: { NOTIFY_SOCKET: join(dir.path, 'notify.sock'), WATCHDOG_USEC: '400000' } });
    cleanups.push(() => daemon.kill());

    const ready = await listener.next('READY=1');
    // the listener asked the control socket the moment READY=1 arrived
    expect(listener.datagrams[ready]!.control).toEqual({ ok: true, state: 'running' });
    expect(listener.datagrams[ready]!.msg).toMatch(/^READY=1\nSTATUS=running, 0 connection\(s\)/);
    expect(daemon.lines.some((l) => l.event === 'daemon_started')).toBe(true);

    // WATCHDOG_USEC=400000: pings every 200 ms; two after READY=1 show the timer runs on
    await listener.next('WATCHDOG=1', (await listener.next('WATCHDOG=1', ready + 1)) + 1);

    // `tunsec reload` over the control socket: RELOADING=1 with the monotonic clock, then READY=1
    const reload = spawn(process.execPath, ['--import', 'tsx', CLI, 'reload', '--socket', control], { cwd: REPO, stdio: 'ignore' });
    const reloadExit = new Promise<number | null>((r) => reload.on('exit', (code) => r(code)));
    const reloading = await listener.next('RELOADING=1', ready + 1);
    expect(listener.datagrams[reloading]!.msg).toMatch(/\nMONOTONIC_USEC=\d+\n/);
    const monotonic = BigInt(/MONOTONIC_USEC=(\d+)/.exec(listener.datagrams[reloading]!.msg)![1]!);
    // CLOCK_MONOTONIC of this machine, the clock systemd compares it with
    expect(monotonic).toBeLessThanOrEqual(process.hrtime.bigint() / 1000n);
    const readyAgain = await listener.next('READY=1', reloading + 1);
    expect(listener.datagrams[readyAgain]!.control?.ok).toBe(true);
    expect(await reloadExit).toBe(0);

    process.kill(daemon.pid, 'SIGTERM');
    const stopping = await listener.next('STOPPING=1', readyAgain + 1);
    expect(listener.datagrams[stopping]!.msg).toMatch(/^STOPPING=1\n/);
    expect((await daemon.exited).code).toBe(0);
    // nothing claims readiness after STOPPING=1
    expect(listener.datagrams.slice(stopping).some((d) => d.msg.split('\n').includes('READY=1'))).toBe(false);
  }, 60_000);

  it("sd_notify through the addon reaches a listener in the abstract namespace (NOTIFY_SOCKET='@name')", async () => {
    const name = `@tunsec-test-notify-${process.pid}-${Date.now()}`;
    const listener = new NotifyListener(name);
    cleanups.push(() => listener.kill());
    await listener.ready();
    const warnings: string[] = [];
    const notifier = new SystemdNotifier({ socket: name, warn: (m) => warnings.push(m) });
    notifier.ready('abstract works');
    notifier.stopping();
    await listener.next('STOPPING=1');
    expect(listener.datagrams.map((d) => d.msg)).toEqual(['READY=1\nSTATUS=abstract works', 'STOPPING=1\nSTATUS=stopping: deleting the SAs']);
    expect(warnings).toEqual([]);
  });

  it('a NOTIFY_SOCKET nobody listens on is reported once and never thrown', () => {
    const dir = tempDir('tunsec-notify-');
    cleanups.push(() => dir.remove());
    const warnings: string[] = [];
    const notifier = new SystemdNotifier({ socket: join(dir.path, 'nobody.sock'), warn: (m) => warnings.push(m) });
    notifier.ready('x');
    notifier.reloading();
    notifier.stopping();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/cannot notify the service manager at NOTIFY_SOCKET=.*nobody\.sock: sendto .*No such file or directory/);
    const bad = new SystemdNotifier({ socket: 'relative.sock', warn: (m) => warnings.push(m) });
    bad.ready('x');
    expect(warnings[1]).toMatch(/absolute path or start with '@'/);
  });

  it('the environment decides: no NOTIFY_SOCKET, no notifier; a watchdog for another pid is not ours; the variables are taken out for the programs the daemon runs', () => {
    expect(systemdNotifierFromEnv(() => {}, {})).toBeUndefined();
    const env: NodeJS.ProcessEnv = { NOTIFY_SOCKET: '/run/systemd/notify', WATCHDOG_USEC: '10000000', WATCHDOG_PID: '1' };
    const theirs = systemdNotifierFromEnv(() => {}, env, 4242);
    expect(theirs?.watchdogIntervalMs).toBeUndefined();
    expect(env).toEqual({});
    const ours = systemdNotifierFromEnv(() => {}, { NOTIFY_SOCKET: '/run/systemd/notify', WATCHDOG_USEC: '10000000', WATCHDOG_PID: '4242' }, 4242);
    expect(ours?.watchdogIntervalMs).toBe(5000);
    ours?.close();
    const warnings: string[] = [];
    systemdNotifierFromEnv((m) => warnings.push(m), { NOTIFY_SOCKET: '/run/systemd/notify', WATCHDOG_USEC: 'soon' });
    expect(warnings).toEqual(["WATCHDOG_USEC='soon' is not a positive number of microseconds: no watchdog pings"]);
  });
});

describe('journald priorities', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  /** Run the daemon with stdout on `out` and JOURNAL_STREAM naming `journal`'s dev:inode; stop it once started. */
  async function runWithStdout(config: string, out: string, journal: string): Promise<{ code: number | null; lines: string[] }> {
    const fd = openSync(out, 'w');
    const st = statSync(journal, { bigint: true });
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'daemon', '-c', config], {
      cwd: REPO,
      stdio: ['ignore', fd, 'ignore'],
      env: { ...process.env, NODE_NO_WARNINGS: '1', JOURNAL_STREAM: `${st.dev}:${st.ino}` },
    });
    closeSync(fd);
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    cleanups.push(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    const text = (): string => readFileSync(out, 'utf8');
    const started = await Promise.race([
      waitFor('daemon_started or exit', () => text().includes('"daemon_started"'), 20_000).then(() => true),
      exited.then(() => false),
    ]);
    if (started) child.kill('SIGTERM');
    const code = await exited;
    return {
      code,
      lines: text()
        .split('\n')
        .filter((l) => l !== ''),
    };
  }

  it('with JOURNAL_STREAM naming its stdout, every log line starts with its syslog priority: <6> info and events, <4> warn, <3> error', async () => {
    const dir = tempDir('tunsec-journal-');
    cleanups.push(() => dir.remove());
    const out = join(dir.path, 'stdout');
    writeFileSync(out, '');
    const ok = await runWithStdout(minimalConfig(dir.path), out, out);
    expect(ok.code).toBe(0);
    for (const l of ok.lines) expect(l).toMatch(/^<[3467]>\{/);
    const parsed = ok.lines.map((l) => ({ priority: Number(l.slice(1, 2)), entry: JSON.parse(l.slice(3)) as { level: string; event?: string; msg: string } }));
    const priority = { error: 3, warn: 4, info: 6, debug: 7 } as Record<string, number>;
    for (const p of parsed) expect(p.priority).toBe(priority[p.entry.level]);
    expect(parsed.find((p) => p.entry.event === 'daemon_started')?.priority).toBe(6);
    expect(parsed.find((p) => p.entry.msg.startsWith('no connections are configured'))?.priority).toBe(4);

    const broken = join(dir.path, 'broken.yaml');
    writeFileSync(broken, 'daemon:\n  datapath: sideways\n');
    const failed = await runWithStdout(broken, out, out);
    expect(failed.code).toBe(1);
    expect(failed.lines.filter((l) => l.startsWith('<3>')).length).toBeGreaterThan(0);
    expect(failed.lines.some((l) => l.startsWith('<3>') && l.includes('not started'))).toBe(true);
  }, 60_000);

  it('JOURNAL_STREAM naming another file (stdout redirected in the unit) gets plain JSON lines', async () => {
    const dir = tempDir('tunsec-journal-');
    cleanups.push(() => dir.remove());
    const out = join(dir.path, 'stdout');
    const other = join(dir.path, 'journal');
    writeFileSync(other, '');
    const r = await runWithStdout(minimalConfig(dir.path), out, other);
    expect(r.code).toBe(0);
    for (const l of r.lines) expect(() => JSON.parse(l) as unknown).not.toThrow();
    expect(isJournalStream(1, {})).toBe(false);
    expect(isJournalStream(1, { JOURNAL_STREAM: 'garbage' })).toBe(false);
  }, 60_000);
});
