/**
 * The README's first command: the demo brings two peers up, shows ESP on the
 * wire, and leaves nothing behind.
 */
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { run, requireRootAndPrograms, waitFor } from '../support/proc.js';

requireRootAndPrograms('tunsec demo', ['ip', 'ping', 'tcpdump']);

describe('npm run demo', () => {
  it('brings up IPv4 and IPv6 transport-mode SAs, pings through ESP with nothing in the clear, and removes every namespace it made', async () => {
    const before = (await run('ip', ['netns', 'list'])).stdout;
    const r = await run(process.execPath, ['--import', 'tsx', 'src/cli/demo.ts'], { timeoutMs: 120_000 });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/host-host-v4: established/);
    expect(r.stdout).toMatch(/host-host-v6: established/);
    expect(r.stdout).toMatch(/→ \d+ ESP packets on the wire, no cleartext ICMP/);
    expect(r.stdout).toMatch(/demo finished/);
    const after = (await run('ip', ['netns', 'list'])).stdout;
    expect(after.split('\n').filter((l) => l.startsWith('tsdemo'))).toEqual(before.split('\n').filter((l) => l.startsWith('tsdemo')));
  }, 150_000);

  it('Ctrl-C while the daemons run stops them and removes the namespaces', async () => {
    const before = (await run('ip', ['netns', 'list'])).stdout.split('\n').filter((l) => l.startsWith('tsdemo'));
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/demo.ts'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    await waitFor('the daemons to be up', () => out.includes('tunsec status (moon)'), 60_000);
    child.kill('SIGINT');
    expect(await exited, out).toBe(130);
    expect(out).toMatch(/daemons stopped \(Deletes sent\), namespaces, TUN devices, routes and files removed/);
    const after = (await run('ip', ['netns', 'list'])).stdout.split('\n').filter((l) => l.startsWith('tsdemo'));
    expect(after).toEqual(before);
  }, 120_000);
});
