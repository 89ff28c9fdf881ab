/**
 * `npm run demo:mesh`: four hosts, one group connection each; the status
 * before the pings shows no instances, after them an instance per other host
 * on every host; nothing crosses the bridge in the clear; nothing is left
 * behind, also after Ctrl-C.
 */
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { run, requireRootAndPrograms, waitFor } from '../support/proc.js';

requireRootAndPrograms('tunsec demo:mesh', ['ip', 'ping', 'tcpdump']);

const meshNamespaces = async (): Promise<string[]> =>
  (await run('ip', ['netns', 'list'])).stdout
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((l) => l.startsWith('tsmesh'));

/** PIDs of processes working in a mesh demo's directories (its capture writes there): none may outlive the demo. */
const demoHelpers = async (): Promise<string[]> =>
  (await run('ps', ['-eo', 'pid=,args='])).stdout
    .split('\n')
    .filter((l) => l.includes('/tmp/tunsec-mesh-'))
    .map((l) => l.trim().split(' ')[0]!);

/** The status section of the demo's output headed `when`: host → its `mesh:` line. */
function statusSection(out: string, when: string): Map<string, string> {
  const start = out.indexOf(`tunsec status on every host, ${when}`);
  expect(start, out).toBeGreaterThan(0);
  // up to the next step's heading (bold: `ESC[1m== …`)
  const section = out.slice(start).split(/\n(?:\x1b\[1m)?== /)[0]!;
  return new Map(
    section
      .split('\n')
      .map((l) => /^(alpha|bravo|charlie|delta): (mesh: .*)$/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [m[1]!, m[2]!]),
  );
}

describe('npm run demo:mesh', () => {
  it('shows the group without instances before traffic, an instance per other host on every host after one ping per pair, ESP only, and removes what it made', async () => {
    const before = await meshNamespaces();
    const r = await run(process.execPath, ['--import', 'tsx', 'src/cli/demo-mesh.ts'], { timeoutMs: 240_000 });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const idle = statusSection(r.stdout, 'before any traffic');
    expect([...idle.keys()]).toEqual(['alpha', 'bravo', 'charlie', 'delta']);
    for (const line of idle.values()) expect(line).not.toMatch(/instances:/);
    const after = statusSection(r.stdout, 'after the pings');
    expect([...after.keys()]).toEqual(['alpha', 'bravo', 'charlie', 'delta']);
    const addresses = [...after.values()].map((l) => /peer (\d+\.\d+\.\d+)\.0\/24/.exec(l)?.[1]);
    const net = addresses[0]!;
    expect(addresses.every((a) => a === net)).toBe(true);
    for (const [i, line] of [...after.values()].entries()) {
      const others = [1, 2, 3, 4].filter((h) => h !== i + 1).map((h) => `${net}.${h}`);
      expect(line).toMatch(/^mesh: established/);
      expect(line).toContain(`(instances: ${others.join(', ')})`);
      expect(line).toMatch(/3 IKE_SAs, 3 CHILD_SAs/);
    }
    expect(r.stdout).toMatch(/→ capture on the bridge: \d+ IKE and \d+ ESP packets, no cleartext ICMP/);
    expect(r.stdout).toMatch(/mesh demo finished/);
    expect(await meshNamespaces()).toEqual(before);
  }, 300_000);

  it('Ctrl-C while the daemons run stops them and removes the namespaces and the bridge', async () => {
    const before = await meshNamespaces();
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/demo-mesh.ts'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    await waitFor('the daemons to be up', () => out.includes('before any traffic'), 120_000);
    child.kill('SIGINT');
    expect(await exited, out).toBe(130);
    expect(out).toMatch(/daemons stopped \(Deletes sent\), namespaces, bridge, TUN devices, routes and files removed/);
    expect(await meshNamespaces()).toEqual(before);
    // a capture the demo started while the teardown ran is stopped too (it once outlived the demo)
    await waitFor('no demo helper process left', async () => ((await demoHelpers()).length === 0 ? true : undefined), 10_000, 200).catch(() => undefined);
    expect(await demoHelpers()).toEqual([]);
  }, 180_000);
});
