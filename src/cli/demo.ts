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
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createCa, issueCertificate, type Issued } from '../pki/issue.js';

/** The tunsec CLI next to this file: built (dist/) or, from a checkout, the TypeScript source through tsx. */
const CLI_JS = fileURLToPath(new URL('./main.js', import.meta.url));
const CLI = existsSync(CLI_JS) ? [CLI_JS] : ['--import', 'tsx', fileURLToPath(new URL('./main.ts', import.meta.url))];

interface Peer {
  name: 'moon' | 'sun';
  ns: string;
  ifname: string;
  ip4: string;
  ip6: string;
  dir: string;
  daemon?: ChildProcess;
  log: string[];
}

const say = (line = ''): void => void process.stdout.write(`${line}\n`);
const step = (what: string): void => say(`\n\x1b[1m== ${what}\x1b[0m`);

function sh(cmd: string, args: string[], opts: { allowFail?: boolean; quiet?: boolean } = {}): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000 });
  const result = { code: r.status ?? 1, stdout: r.stdout ?? '', stderr: r.stderr ?? r.error?.message ?? '' };
  if (result.code !== 0 && !opts.allowFail) throw new Error(`${cmd} ${args.join(' ')}: ${result.stderr.trim() || `exit ${result.code}`}`);
  return result;
}

/** The tunsec CLI inside a peer's namespace. */
function tunsec(peer: Peer, args: string[]): string {
  const r = sh('ip', ['netns', 'exec', peer.ns, process.execPath, ...CLI, ...args, '--socket', join(peer.dir, 'tunsec.sock')], { allowFail: true });
  return (r.stdout + r.stderr).trimEnd();
}

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

/** The daemon logs to a file in the peer's directory (so it can outlive the demo with --keep). */
function startDaemon(peer: Peer): void {
  const logFile = join(peer.dir, 'daemon.log');
  const fd = openSync(logFile, 'a');
  const child = spawn('ip', ['netns', 'exec', peer.ns, process.execPath, ...CLI, 'daemon', '-c', join(peer.dir, 'tunsec.yaml')], {
    stdio: ['ignore', fd, fd],
    detached: true,
  });
  closeSync(fd);
  peer.daemon = child;
}

function logOf(peer: Peer): string[] {
  const file = join(peer.dir, 'daemon.log');
  return existsSync(file)
    ? readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => l.length > 0)
    : [];
}

async function waitForEvents(peer: Peer, event: string, count: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    peer.log = logOf(peer);
    const n = peer.log.filter((l) => l.includes(`"event":"${event}"`)).length;
    if (n >= count) return;
    if (peer.daemon?.exitCode !== null && peer.daemon?.exitCode !== undefined)
      throw new Error(`${peer.name}'s daemon exited:\n${peer.log.slice(-20).join('\n')}`);
    if (Date.now() > deadline) throw new Error(`${peer.name}: no ${count}× ${event} within ${timeoutMs / 1000} s:\n${peer.log.slice(-20).join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function stopDaemon(peer: Peer): Promise<void> {
  const child = peer.daemon;
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 8000);
  await exited;
  clearTimeout(timer);
}

/** `--keep`: leave the namespaces and daemons running; anything else is an error. */
function demoOptions(): { keep: boolean } {
  try {
    return { keep: parseArgs({ options: { keep: { type: 'boolean' } }, strict: true }).values.keep === true };
  } catch (err) {
    process.stderr.write(`tunsec demo: ${(err as Error).message}\nusage: npm run demo [-- --keep]\n`);
    process.exit(2);
  }
}

const options = demoOptions();

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
  let cleaned = false;
  const cleanup = async (): Promise<void> => {
    if (cleaned) return;
    cleaned = true;
    step('cleaning up');
    for (const p of peers) await stopDaemon(p);
    for (const p of peers) sh('ip', ['netns', 'del', p.ns], { allowFail: true });
    for (const p of peers) rmSync(p.dir, { recursive: true, force: true });
    say('daemons stopped (Deletes sent), namespaces, TUN devices, routes and files removed');
  };
  const onSignal = (): void => {
    void cleanup().then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

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
    const cap = spawn('ip', ['netns', 'exec', sun.ns, 'tcpdump', '-i', sun.ifname, '-n', '-U', '--immediate-mode', '-w', capFile, 'esp or icmp or icmp6'], {
      stdio: 'ignore',
    });
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
      for (const p of peers) p.daemon?.unref();
      cleaned = true;
      return 0;
    }
    await cleanup();
    say('\ndemo finished: IKEv2 with certificates, ESP in transport mode over IPv4 and IPv6, nothing in the clear');
    return 0;
  } catch (err) {
    process.stderr.write(`\ntunsec demo failed: ${(err as Error).message}\n`);
    for (const p of peers) {
      const tail = logOf(p).slice(-15).join('\n');
      if (tail) process.stderr.write(`--- ${p.name} daemon log (last lines)\n${tail}\n`);
    }
    await cleanup();
    return 1;
  }
}

process.exitCode = await main();
// daemons left running with --keep must not keep this process alive
if (options.keep) process.exit(process.exitCode);
