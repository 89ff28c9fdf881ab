#!/usr/bin/env node
/**
 * `npm run demo:mesh`: four hosts in network namespaces on one bridge, each a
 * `tunsec daemon` with ONE group connection over the segment's prefix
 * (transport mode, `private`, start_action trap, remote.id `*.mesh.demo`,
 * certificates from one throwaway CA). Nothing is negotiated at start: the
 * status shows the group with no instances; the first ping between two hosts
 * negotiates their IKE SA on demand, and the status afterwards lists an
 * instance per other host on every host. A capture on the bridge shows ESP
 * only. Everything it creates is removed at the end — also on failure and
 * Ctrl-C — unless `--keep` is given.
 *
 *   node dist/src/cli/demo-mesh.js [--keep]
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCa, issueCertificate } from '../pki/issue.js';
import { CLI, demoFailed, demoTeardown, keepOption, say, sh, startDaemon, step, tunsec, waitForEvents, type DemoHost } from './demo-hosts.js';

const NAMES = ['alpha', 'bravo', 'charlie', 'delta'] as const;

/** One group connection: every host of the prefix, on demand, never in the clear. */
function yaml(me: DemoHost, prefix: string): string {
  return [
    'daemon:',
    `  pid_file: ${join(me.dir, 'tunsec.pid')}`,
    `  control_socket: ${join(me.dir, 'tunsec.sock')}`,
    'authorities:',
    `  cacerts: [${join(me.dir, 'ca.pem')}]`,
    'secrets:',
    '  private-key:',
    `    file: ${join(me.dir, 'key.pem')}`,
    'connections:',
    '  mesh:',
    `    local_addrs: ${me.ip4}`,
    `    remote_addrs: ${prefix}`,
    '    proposals: aes128gcm16-prfsha384-ecp384bp!',
    '    local:',
    `      certs: [${join(me.dir, 'cert.pem')}]`,
    `      id: ${me.name}.mesh.demo`,
    '    remote:',
    '      id: "*.mesh.demo"',
    '    children:',
    '      mesh:',
    '        mode: transport',
    '        esp_proposals: aes128gcm16-ecp384bp!',
    '        start_action: trap',
    '        policy: private',
    '        inactivity: 10m',
    '',
  ].join('\n');
}

const options = keepOption('demo:mesh');

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('tunsec demo:mesh: must run as root (it creates network namespaces, a bridge, TUN devices and routes)\n');
    return 1;
  }
  const id = randomBytes(2).toString('hex');
  const n = 100 + (randomBytes(1)[0]! % 100);
  const prefix = `10.${n}.0.0/24`;
  const bridgeNs = `tsmesh${id}br`;
  const hosts: DemoHost[] = NAMES.map((name, i) => ({
    name,
    ns: `tsmesh${id}${name}`,
    ifname: `tsm${id}${name[0]}`,
    ip4: `10.${n}.0.${i + 1}`,
    ip6: `fd${n.toString(16)}::${i + 1}`,
    dir: mkdtempSync(`/tmp/tunsec-mesh-${name}-`),
    log: [],
  }));
  const {
    cleanup,
    keep: keepRunning,
    track,
  } = demoTeardown(hosts, [bridgeNs], 'daemons stopped (Deletes sent), namespaces, bridge, TUN devices, routes and files removed');
  const status = (when: string): void => {
    step(`tunsec status on every host, ${when}`);
    for (const h of hosts) {
      const lines = tunsec(h, ['status']).split('\n');
      // the connection line; the daemon line above it says only pid and uptime
      say(`${h.name}: ${lines.filter((l) => l.startsWith('mesh:')).join(' ') || lines.join(' ')}`);
    }
  };

  try {
    step(`four hosts on one bridge: ${prefix}`);
    sh('ip', ['netns', 'add', bridgeNs]);
    sh('ip', ['-n', bridgeNs, 'link', 'add', 'br0', 'type', 'bridge']);
    sh('ip', ['-n', bridgeNs, 'link', 'set', 'br0', 'up']);
    for (const [i, h] of hosts.entries()) {
      sh('ip', ['netns', 'add', h.ns]);
      sh('ip', ['link', 'add', h.ifname, 'netns', h.ns, 'type', 'veth', 'peer', 'name', `port${i}`, 'netns', bridgeNs]);
      sh('ip', ['-n', bridgeNs, 'link', 'set', `port${i}`, 'master', 'br0', 'up']);
      sh('ip', ['-n', h.ns, 'link', 'set', 'lo', 'up']);
      sh('ip', ['-n', h.ns, 'addr', 'add', `${h.ip4}/24`, 'dev', h.ifname]);
      sh('ip', ['-n', h.ns, 'link', 'set', h.ifname, 'up']);
      say(`${h.name}: netns ${h.ns}, ${h.ip4} on ${h.ifname}`);
    }

    step('a throwaway CA and one certificate per host (ECDSA P-384, *.mesh.demo)');
    const ca = createCa({ subject: 'C=CH, O=tunsec demo, CN=tunsec Mesh Demo Root CA', key: 'p384' });
    for (const h of hosts) {
      const cert = issueCertificate(ca, {
        subject: `C=CH, O=tunsec demo, CN=${h.name}.mesh.demo`,
        key: 'p384',
        subjectAltNames: { dns: [`${h.name}.mesh.demo`], ip: [h.ip4] },
      });
      writeFileSync(join(h.dir, 'ca.pem'), ca.certificatePem);
      writeFileSync(join(h.dir, 'cert.pem'), cert.certificatePem);
      writeFileSync(join(h.dir, 'key.pem'), cert.privateKeyPem!, { mode: 0o600 });
      writeFileSync(join(h.dir, 'tunsec.yaml'), yaml(h, prefix));
    }
    say(`every host: one connection "mesh", remote_addrs ${prefix}, remote.id "*.mesh.demo", transport, private, start_action trap`);
    say(`(${join(hosts[0]!.dir, 'tunsec.yaml')} is alpha's)`);

    step('four tunsec daemons: nothing negotiated yet, traffic will trigger it');
    for (const h of hosts) startDaemon(h);
    for (const h of hosts) await waitForEvents(h, 'daemon_started', 1, 60_000);
    status('before any traffic (no instances)');

    step('pings: every host to every other; the first packet of each pair negotiates its IKE SA');
    const capFile = join(hosts[0]!.dir, 'capture.pcap');
    const cap = track(
      spawn('ip', ['netns', 'exec', bridgeNs, 'tcpdump', '-i', 'br0', '-n', '-U', '--immediate-mode', '-w', capFile, 'ip'], { stdio: 'ignore' }),
    );
    await new Promise((r) => setTimeout(r, 1000));
    // First the lower-named host of each pair, so that one side initiates; then every host to every other.
    const pairs = hosts.flatMap((a, i) => hosts.slice(i + 1).map((b) => [a, b] as const));
    const pingFrom = (from: DemoHost, to: DemoHost, count: number): Promise<{ code: number; line: string }> =>
      new Promise((resolve) => {
        const child = track(
          spawn('ip', ['netns', 'exec', from.ns, 'ping', '-c', String(count), '-i', '0.2', '-w', '30', to.ip4], {
            stdio: ['ignore', 'pipe', 'pipe'],
          }),
        );
        let out = '';
        child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
        child.on('exit', (code) =>
          resolve({ code: code ?? 1, line: `${from.name} → ${to.name}: ${/\d+ packets transmitted.*/.exec(out)?.[0] ?? out.trim()}` }),
        );
      });
    for (const round of [pairs, pairs.map(([a, b]) => [b, a] as const)]) {
      const results = await Promise.all(round.map(([a, b]) => pingFrom(a, b, 3)));
      for (const r of results) say(r.line);
      const failed = results.filter((r) => r.code !== 0);
      if (failed.length) throw new Error(`ping failed: ${failed.map((r) => r.line).join('; ')}`);
    }
    await new Promise((r) => setTimeout(r, 300));
    cap.kill('SIGINT');
    await new Promise((r) => cap.once('exit', r));
    const summary = sh('tcpdump', ['-r', capFile, '-n', '-t', '-q'], { allowFail: true })
      .stdout.trim()
      .split('\n')
      .filter((l) => l.length > 0);
    const esp = summary.filter((l) => /ESP/.test(l)).length;
    const ike = summary.filter((l) => /\.(500|4500)[ :>]/.test(l)).length;
    const clear = summary.filter((l) => /ICMP/i.test(l) && !/ESP/.test(l));
    say(
      clear.length === 0
        ? `→ capture on the bridge: ${ike} IKE and ${esp} ESP packets, no cleartext ICMP`
        : `→ CLEARTEXT SEEN: ${clear.length} packets:\n${clear.slice(0, 5).join('\n')}`,
    );
    if (clear.length !== 0) throw new Error('cleartext ICMP crossed the bridge');

    status('after the pings (an instance per other host)');
    step('tunsec list-sas (alpha): one IKE SA per peer, each mesh[peer]');
    say(tunsec(hosts[0]!, ['list-sas']));

    if (options.keep) {
      step('left running (--keep)');
      const [a, b] = hosts as [DemoHost, DemoHost];
      say(`look around:  ip netns exec ${a.ns} ping ${b.ip4}`);
      say(`              ip netns exec ${a.ns} ${process.execPath} ${CLI.join(' ')} status --socket ${join(a.dir, 'tunsec.sock')}`);
      say(
        `clean up:     kill ${hosts.map((h) => h.daemon?.pid).join(' ')}; ${[...hosts.map((h) => h.ns), bridgeNs].map((ns) => `ip netns del ${ns}`).join('; ')}; rm -r ${hosts.map((h) => h.dir).join(' ')}`,
      );
      keepRunning();
      return 0;
    }
    await cleanup();
    say('\nmesh demo finished: one group connection per host, IKE SAs negotiated per peer on first packet, nothing in the clear');
    return 0;
  } catch (err) {
    return demoFailed('demo:mesh', err, hosts, cleanup);
  }
}

process.exitCode = await main();
// daemons left running with --keep must not keep this process alive
if (options.keep) process.exit(process.exitCode);
