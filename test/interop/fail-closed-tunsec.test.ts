/**
 * Fail closed when tunsec itself dies (issue: the daemon's own death leaked
 * cleartext). Two tunsec daemons in network namespaces, moon with a
 * `start_action: trap`, `private` child; ping and a TCP transfer from moon;
 * then `kill -9` of moon's daemon. The TUN device and its routes vanish with
 * the process; the backstop (prohibit routes behind the TUN table, see
 * src/daemon/routes.ts) must keep every packet of the flow off the wire for
 * the next 30 s, checked on a capture of moon's veth. A restarted daemon
 * adopts the backstop and brings the traffic back encrypted; a clean stop
 * removes every rule and route tunsec put in. IPv4 and IPv6 transport mode,
 * and tunnel mode between inner networks that the main table can also reach
 * in the clear (so a leak has somewhere to go).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { createCa } from '../../src/pki/issue.js';
import { Capture, isNeighborDiscovery, type CapturedPacket } from '../support/capture.js';
import { NetnsPair, type NetnsSide } from '../support/netns.js';
import { pidFromFile, requireRootAndPrograms, run, sleep, stopPid, waitFor } from '../support/proc.js';
import { peerCertificates, peerDaemon } from './tunsec-daemon.js';

requireRootAndPrograms('tunsec fail-closed', ['ip', 'ping', 'tcpdump', 'iperf3']);

const ca = createCa({ subject: 'C=CH, O=tunsec fail closed, CN=tunsec Fail-Closed Test CA', key: 'p384' });
/** How long after the kill the wire is watched. */
const WATCH_MS = 30_000;

/** A command inside a namespace, stopped by its own PID (ip netns exec execs it). */
function background(side: NetnsSide, cmd: string, args: string[]): { child: ChildProcess; output: () => string } {
  const child = spawn('ip', ['netns', 'exec', side.ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return { child, output: () => out };
}

/** The rules and table routes of tunsec's two tables (220: into the TUN device, 221: the backstop) in a namespace. */
async function tunsecRouting(side: NetnsSide): Promise<string[]> {
  const lines: string[] = [];
  for (const family of ['-4', '-6']) {
    const rules = await run('ip', ['-n', side.ns, family, 'rule', 'show']);
    lines.push(
      ...rules.stdout
        .split('\n')
        .filter((l) => /lookup 22[01]\b/.test(l))
        .map((l) => `${family} rule ${l.trim()}`),
    );
    for (const table of ['220', '221']) {
      const routes = await run('ip', ['-n', side.ns, family, 'route', 'show', 'table', table]);
      // a table that was never used does not exist: nothing in it
      lines.push(
        ...routes.stdout
          .split('\n')
          .filter((l) => l.trim() !== '')
          .map((l) => `${family} table ${table}: ${l.trim()}`),
      );
    }
  }
  return lines;
}

interface Case {
  family: 'ip4' | 'ip6';
  mode: 'transport' | 'tunnel';
}

const cases: Case[] = [
  { family: 'ip4', mode: 'transport' },
  { family: 'ip6', mode: 'transport' },
  { family: 'ip4', mode: 'tunnel' },
];

describe.concurrent('tunsec killed with kill -9 under load: the private flow never leaves in the clear', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  for (const { family, mode } of cases) {
    const label = `${family === 'ip4' ? 'IPv4' : 'IPv6'} ${mode} mode`;
    it(`${label}: 0 cleartext packets from moon for 30 s after its daemon is SIGKILLed under ping and TCP load; a restarted daemon carries the flow encrypted again; a clean stop removes every backstop rule and route`, async () => {
      const pair = await NetnsPair.create('fc');
      cleanups.push(() => pair.destroy());
      const certs = peerCertificates(ca, pair, 'tunsec fail closed');
      // Tunnel mode protects inner networks (on lo) that moon can also reach in the clear through sun.
      const inner = { moon: '192.168.81.1', sun: '192.168.82.1' };
      if (mode === 'tunnel') {
        await pair.exec(pair.a, 'ip', ['addr', 'add', `${inner.moon}/24`, 'dev', 'lo']);
        await pair.exec(pair.b, 'ip', ['addr', 'add', `${inner.sun}/24`, 'dev', 'lo']);
        await pair.exec(pair.a, 'ip', ['route', 'add', '192.168.82.0/24', 'via', pair.b.ip4]);
        await pair.exec(pair.b, 'ip', ['route', 'add', '192.168.81.0/24', 'via', pair.a.ip4]);
        await pair.exec(pair.b, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
      }
      const selectors = (me: string, them: string) =>
        mode === 'tunnel' ? { localTs: `${me.replace(/\.1$/, '.0')}/24`, remoteTs: `${them.replace(/\.1$/, '.0')}/24` } : {};
      const sun = peerDaemon(pair, ca, certs, 'sun', {
        name: 'flow',
        mode,
        family,
        startAction: 'none',
        policy: 'private',
        ...selectors(inner.sun, inner.moon),
      });
      const moon = peerDaemon(pair, ca, certs, 'moon', {
        name: 'flow',
        mode,
        family,
        startAction: 'trap',
        policy: 'private',
        ...selectors(inner.moon, inner.sun),
      });
      cleanups.push(
        () => moon.stop(),
        () => sun.stop(),
      );
      await sun.start();
      await sun.event('daemon_started');
      await moon.start();
      await moon.event('daemon_started');
      // The trap's routes go in after the start: traffic sent before them would be refused (backstop) or never trapped.
      await waitFor("the trap policy's routes", async () => (await tunsecRouting(pair.a)).some((l) => / table 220: /.test(l)));

      const target = mode === 'tunnel' ? inner.sun : pair.b[family];
      const source = mode === 'tunnel' ? ['-I', inner.moon] : [];
      const moonAddresses = new Set(mode === 'tunnel' ? [pair.a[family], inner.moon] : [pair.a[family]]);
      const iperfPid = `/tmp/iperf3-${pair.b.ns}.pid`;
      cleanups.push(async () => {
        const pid = pidFromFile(iperfPid);
        if (pid !== undefined) await stopPid(pid);
      });
      const server = await pair.exec(pair.b, 'iperf3', ['-s', '-D', '-p', '5201', '-I', iperfPid]);
      expect(server.code, server.stderr).toBe(0);
      const ping = background(pair.a, 'ping', ['-i', '0.1', '-W', '1', ...source, target]);
      cleanups.push(async () => ping.child.kill('SIGKILL'));
      await moon.event('child_established', 30_000);
      const tcp = background(pair.a, 'iperf3', [
        '-c',
        target,
        '-p',
        '5201',
        '-t',
        '120',
        '-b',
        '4M',
        '--forceflush',
        ...(mode === 'tunnel' ? ['-B', inner.moon] : []),
      ]);
      cleanups.push(async () => tcp.child.kill('SIGKILL'));
      await waitFor('the TCP transfer to run', () => /\d+\.\d+-\d+\.\d+\s+sec/.test(tcp.output()), 15_000);

      const capture = await Capture.start(pair.a.ns, pair.a.ifname);
      let packets: CapturedPacket[];
      try {
        await moon.kill();
        await sleep(WATCH_MS);
      } finally {
        packets = await capture.stop();
        capture.remove();
      }
      const tunsecOwn = (p: CapturedPacket): boolean =>
        p.protocol === 'esp' || (p.protocol === 'udp' && [500, 4500].some((port) => p.srcPort === port || p.dstPort === port));
      const leaked = packets.filter((p) => moonAddresses.has(p.src) && !tunsecOwn(p) && !isNeighborDiscovery(p));
      const afterKill = await tunsecRouting(pair.a);
      expect(
        leaked.map((p) => `${p.protocol} ${p.src}${p.srcPort ? `:${p.srcPort}` : ''} → ${p.dst}${p.dstPort ? `:${p.dstPort}` : ''} (${p.ip.length} octets)`),
        `backstop after the kill:\n${afterKill.join('\n')}`,
      ).toEqual([]);
      // the flow did go on trying while moon's daemon was dead: the backstop refused it, the wire stayed clean
      expect(
        afterKill.some((l) => l.includes('lookup 221')),
        afterKill.join('\n'),
      ).toBe(true);
      expect(
        afterKill.some((l) => /table 221: prohibit/.test(l)),
        afterKill.join('\n'),
      ).toBe(true);

      // Restart: the backstop is adopted, the trap negotiates again, ping goes through ESP.
      const established = moon.lines.filter((l) => l.event === 'child_established').length;
      await moon.start();
      await waitFor('a CHILD_SA from the restarted daemon', () => moon.lines.filter((l) => l.event === 'child_established').length > established, 30_000);
      const esp = await Capture.start(pair.a.ns, pair.a.ifname);
      let resumed: CapturedPacket[];
      try {
        const check = await pair.exec(pair.a, 'ping', ['-c', '3', '-i', '0.2', '-W', '2', ...source, target], 20_000);
        expect(check.code, `${check.stdout}\n${moon.text().slice(-4000)}`).toBe(0);
      } finally {
        resumed = await esp.stop();
        esp.remove();
      }
      expect(resumed.filter((p) => moonAddresses.has(p.src) && p.protocol === 'icmp' && !isNeighborDiscovery(p)).length).toBe(0);
      expect(resumed.filter((p) => moonAddresses.has(p.src) && p.protocol === 'esp').length).toBeGreaterThan(0);
      expect(moon.lines.some((l) => /backstop of a previous daemon found/.test(l.msg ?? ''))).toBe(true);

      // A clean stop removes the TUN routes and the backstop: nothing of tunsec's is left.
      ping.child.kill('SIGKILL');
      tcp.child.kill('SIGKILL');
      const code = await moon.stop();
      expect(await tunsecRouting(pair.a), `exit ${code}\n${moon.text().slice(-3000)}`).toEqual([]);
    }, 150_000);
  }
});

describe('the backstop and the global switch', () => {
  it('global down with `global: clear` lifts the backstop (traffic may pass in the clear by configuration) and global up puts it back', async () => {
    const pair = await NetnsPair.create('fg');
    const moon = peerDaemon(pair, ca, peerCertificates(ca, pair, 'tunsec fail closed'), 'moon', {
      name: 'flow',
      mode: 'transport',
      startAction: 'trap',
      policy: 'private',
      daemonExtra: ['global: clear'],
    });
    try {
      await moon.start();
      await moon.event('daemon_started');
      const backstop = async (): Promise<string[]> => (await tunsecRouting(pair.a)).filter((l) => l.includes('221'));
      await waitFor('the backstop of the trap policy', async () => (await backstop()).length === 2);
      expect(await backstop()).toEqual([`-4 rule 221:\tfrom all to ${pair.b.ip4} lookup 221`, `-4 table 221: prohibit ${pair.b.ip4}`]);
      expect((await moon.cli('list-sas')).stdout).toContain('backstop: 1 rule, 1 prohibit route in table 221');
      const down = await moon.cli('global', 'down');
      expect(down.code, down.stdout + down.stderr).toBe(0);
      expect(await backstop()).toEqual([]);
      expect((await moon.cli('list-sas')).stdout).toContain('backstop: lifted (global switch down, clear)');
      const up = await moon.cli('global', 'up');
      expect(up.code, up.stdout + up.stderr).toBe(0);
      await waitFor('the backstop back after global up', async () => (await backstop()).length === 2);
    } finally {
      await moon.stop();
      await pair.destroy();
    }
  }, 60_000);
});
