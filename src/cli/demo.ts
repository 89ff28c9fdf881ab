#!/usr/bin/env node
/**
 * `npm run demo`: two peers in network namespaces joined by a veth pair, a
 * throwaway CA and certificates, two `tunsec daemon`s protecting their
 * traffic in transport mode (`private` policies, IPv4 and IPv6), the
 * status, pings in both families, and a capture showing the packets are ESP.
 * Everything it creates is removed at the end — also on failure and Ctrl-C —
 * unless `--keep` is given (then it prints how to look around and how to
 * clean up).
 *
 *   node dist/src/cli/demo.js [--keep]
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCa, issueCertificate, type Issued } from '../pki/issue.js';
import { CLI, demoFailed, demoTeardown, keepOption, say, sh, startDaemon, step, tunsec, waitForEvents, type DemoHost } from './demo-hosts.js';

type Peer = DemoHost & { name: 'moon' | 'sun' };

function yaml(me: Peer, other: Peer): string {
  const peerName = other.name;
  const conn = (name: string, local: string, remote: string): string[] => [
    `  ${name}:`,
    `    local_addrs: "${local}"`,
    `    remote_addrs: "${remote}"`,
    '    proposals: aes128gcm16-prfsha384-ecp384bp!',
    '    local:',
    `      certs: [${join(me.dir, 'cert.pem')}]`,
    `      id: ${me.name}.tunsec.demo`,
    '    remote:',
    `      id: ${peerName}.tunsec.demo`,
    '    children:',
    `      ${name}:`,
    '        mode: transport',
    '        esp_proposals: aes128gcm16-ecp384bp!',
    '        policy: private',
    `        start_action: ${me.name === 'moon' ? 'start' : 'none'}`,
  ];
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
    ...conn('host-host-v4', me.ip4, other.ip4),
    ...conn('host-host-v6', me.ip6, other.ip6),
    '',
  ].join('\n');
}

const options = keepOption('demo');

async function main(): Promise<number> {
  const keep = options.keep;
  if (process.getuid?.() !== 0) {
    process.stderr.write('tunsec demo: must run as root (it creates network namespaces, TUN devices and routes)\n');
    return 1;
  }
  const id = randomBytes(2).toString('hex');
  const n = 100 + (randomBytes(1)[0]! % 100);
  const peers: Peer[] = (['moon', 'sun'] as const).map((name, i) => ({
    name,
    ns: `tsdemo${id}${name}`,
    ifname: `tsd${id}${name[0]}`,
    ip4: `10.${n}.0.${i + 1}`,
    ip6: `fd${n.toString(16)}::${i + 1}`,
    dir: mkdtempSync(`/tmp/tunsec-demo-${name}-`),
    log: [],
  }));
  const [moon, sun] = peers as [Peer, Peer];
  const { cleanup, keep: keepRunning, track } = demoTeardown(peers, [], 'daemons stopped (Deletes sent), namespaces, TUN devices, routes and files removed');

  try {
    step('two hosts: network namespaces joined by a veth pair');
    for (const p of peers) sh('ip', ['netns', 'add', p.ns]);
    sh('ip', ['link', 'add', moon.ifname, 'netns', moon.ns, 'type', 'veth', 'peer', 'name', sun.ifname, 'netns', sun.ns]);
    for (const p of peers) {
      sh('ip', ['-n', p.ns, 'link', 'set', 'lo', 'up']);
      sh('ip', ['-n', p.ns, 'addr', 'add', `${p.ip4}/24`, 'dev', p.ifname]);
      sh('ip', ['-n', p.ns, '-6', 'addr', 'add', `${p.ip6}/64`, 'dev', p.ifname, 'nodad']);
      sh('ip', ['-n', p.ns, 'link', 'set', p.ifname, 'up']);
      say(`${p.name}: netns ${p.ns}, ${p.ip4} and ${p.ip6} on ${p.ifname}`);
    }

    step('a throwaway CA and one certificate per host (ECDSA P-384)');
    const ca = createCa({ subject: 'C=CH, O=tunsec demo, CN=tunsec Demo Root CA', key: 'p384' });
    for (const p of peers) {
      const other = p === moon ? sun : moon;
      const cert: Issued = issueCertificate(ca, {
        subject: `C=CH, O=tunsec demo, CN=${p.name}`,
        key: 'p384',
        subjectAltNames: { dns: [`${p.name}.tunsec.demo`], ip: [p.ip4, p.ip6] },
      });
      writeFileSync(join(p.dir, 'ca.pem'), ca.certificatePem);
      writeFileSync(join(p.dir, 'cert.pem'), cert.certificatePem);
      writeFileSync(join(p.dir, 'key.pem'), cert.privateKeyPem!, { mode: 0o600 });
      writeFileSync(join(p.dir, 'tunsec.yaml'), yaml(p, other));
      say(`${p.name}: ${cert.certificate.subject.text}, configuration ${join(p.dir, 'tunsec.yaml')}`);
    }

    step('two tunsec daemons: moon initiates, transport mode, private policies, IPv4 and IPv6');
    startDaemon(sun);
    await waitForEvents(sun, 'daemon_started', 1);
    startDaemon(moon);
    await waitForEvents(moon, 'child_established', 2);
    await waitForEvents(sun, 'child_established', 2);
    for (const l of moon.log.filter((x) => x.includes('"event":"child_established"'))) say(`moon: ${(JSON.parse(l) as { msg: string }).msg}`);

    step('tunsec status (moon)');
    say(tunsec(moon, ['status']));

    step('pings through ESP, with a capture on the veth');
    const capFile = join(sun.dir, 'capture.pcap');
    const cap = track(
      spawn('ip', ['netns', 'exec', sun.ns, 'tcpdump', '-i', sun.ifname, '-n', '-U', '--immediate-mode', '-w', capFile, 'esp or icmp or icmp6'], {
        stdio: 'ignore',
      }),
    );
    await new Promise((r) => setTimeout(r, 1000));
    for (const target of [sun.ip4, sun.ip6]) {
      const ping = sh('ip', ['netns', 'exec', moon.ns, 'ping', '-c', '3', '-i', '0.2', '-W', '2', target], { allowFail: true });
      say(
        ping.stdout
          .trim()
          .split('\n')
          .filter((l) => /bytes from|packets transmitted/.test(l))
          .join('\n'),
      );
      if (ping.code !== 0) throw new Error(`ping ${target} failed:\n${ping.stdout}${ping.stderr}`);
    }
    await new Promise((r) => setTimeout(r, 300));
    cap.kill('SIGINT');
    await new Promise((r) => cap.once('exit', r));
    // Neighbor Discovery is link-local plumbing, never protected: left out of the listing
    const shown = sh('tcpdump', ['-r', capFile, '-n', '-t'], { allowFail: true })
      .stdout.trim()
      .split('\n')
      .filter((l) => l.length > 0 && !/neighbor (solicitation|advertisement)|router solicitation|multicast listener/i.test(l));
    say(shown.join('\n'));
    const clear = shown.filter((l) => /ICMP/.test(l) && !/ESP/.test(l));
    say(
      clear.length === 0
        ? `→ ${shown.filter((l) => /ESP/.test(l)).length} ESP packets on the wire, no cleartext ICMP`
        : `→ CLEARTEXT SEEN: ${clear.length} packets`,
    );
    if (clear.length !== 0) throw new Error('cleartext ICMP crossed the wire');

    step('tunsec list-sas (moon): SPIs, algorithms, counters');
    say(tunsec(moon, ['list-sas']));

    if (keep) {
      step('left running (--keep)');
      say(`look around:  ip netns exec ${moon.ns} ping ${sun.ip4}`);
      say(`              ip netns exec ${moon.ns} ${process.execPath} ${CLI.join(' ')} status --socket ${join(moon.dir, 'tunsec.sock')}`);
      say(`clean up:     kill ${moon.daemon?.pid} ${sun.daemon?.pid}; ip netns del ${moon.ns}; ip netns del ${sun.ns}; rm -r ${moon.dir} ${sun.dir}`);
      keepRunning();
      return 0;
    }
    await cleanup();
    say('\ndemo finished: IKEv2 with certificates, ESP in transport mode over IPv4 and IPv6, nothing in the clear');
    return 0;
  } catch (err) {
    return demoFailed('demo', err, peers, cleanup);
  }
}

process.exitCode = await main();
// daemons left running with --keep must not keep this process alive
if (options.keep) process.exit(process.exitCode);
