/**
 * Issue 21, VICI: Debian's real `swanctl` talks to a running tunsec daemon
 * over `daemon.vici`. Two `tunsec daemon` processes in a NetnsPair (moon
 * initiates, sun answers); swanctl runs against moon's VICI socket and what
 * it prints is checked against tunsec's own view (`tunsec list-sas --json`):
 * SPIs, states, algorithms, traffic selectors. Then swanctl acts — initiate a
 * second CHILD_SA, rekey a CHILD_SA, terminate the IKE_SA — while
 * `swanctl --monitor-sa` and `swanctl --log` watch. A process that is not
 * root is refused as on the control socket.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ListSasResult } from '../../src/control/protocol.js';
import { createCa } from '../../src/pki/issue.js';
import { NetnsPair } from '../support/netns.js';
import { requireRootAndPrograms, run, waitFor, type RunResult } from '../support/proc.js';
import { peerCertificates, peerDaemon, startResponderThenInitiator, type TunsecDaemon } from './tunsec-daemon.js';

requireRootAndPrograms('swanctl against tunsec over VICI', ['ip', 'swanctl', 'setpriv', 'stdbuf']);

const CONN = 'host-host';
const NOBODY = 65534;

/** A long-running swanctl (--monitor-sa, --log): its output so far; stopped with SIGINT as a user would. */
class Watcher {
  out = '';
  err = '';
  private readonly child: ChildProcess;
  private readonly exit: Promise<number | null>;

  constructor(args: string[]) {
    // line-buffered stdout (stdbuf): what swanctl printed can be read while it runs
    this.child = spawn('stdbuf', ['-oL', 'swanctl', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (d: Buffer) => (this.out += d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.err += d.toString()));
    this.exit = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
  }

  async stop(): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGINT');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    const code = await this.exit;
    clearTimeout(timer);
    return code;
  }
}

describe('swanctl from Debian against a tunsec daemon over VICI', () => {
  const ca = createCa({ subject: 'C=CH, O=tunsec vici, CN=tunsec VICI Root CA', key: 'p384' });
  let pair: NetnsPair;
  let moon: TunsecDaemon;
  let sun: TunsecDaemon;
  let uri: string;
  const watchers: Watcher[] = [];
  const swanctl = (...args: string[]): Promise<RunResult> => run('swanctl', [...args, '--uri', uri], { timeoutMs: 60_000 });
  const ok = async (...args: string[]): Promise<string> => {
    const r = await swanctl(...args);
    expect(r.code, `swanctl ${args.join(' ')}: ${r.stdout}\n${r.stderr}\nmoon:\n${moon.text()}`).toBe(0);
    return r.stdout;
  };
  const tunsecSas = async (): Promise<ListSasResult> => {
    const r = await moon.cli('list-sas', '--json');
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as ListSasResult;
  };

  beforeAll(async () => {
    pair = await NetnsPair.create('vc');
    const certs = peerCertificates(ca, pair, 'tunsec vici');
    // a second child, not started: swanctl --initiate --child brings it up
    const extra = [
      'extra:',
      '  mode: transport',
      '  local_ts: dynamic[udp]',
      '  remote_ts: dynamic[udp]',
      '  esp_proposals: aes128gcm16-ecp384bp!',
      '  start_action: none',
    ];
    moon = peerDaemon(pair, ca, certs, 'moon', {
      name: CONN,
      mode: 'transport',
      startAction: 'start',
      extraChildren: extra,
      daemonExtra: ['vici: ${DIR}/vici', 'log: { dmn: 2 }'],
    });
    sun = peerDaemon(pair, ca, certs, 'sun', { name: CONN, mode: 'transport', startAction: 'none', extraChildren: extra });
    uri = `unix://${join(moon.dir, 'vici')}`;
    await startResponderThenInitiator(sun, moon);
  }, 60_000);

  afterAll(async () => {
    for (const w of watchers) await w.stop();
    await moon?.stop();
    await sun?.stop();
    await pair?.destroy();
  });

  it('the VICI socket is a unix socket of mode 0600, as the control socket', () => {
    const st = statSync(join(moon.dir, 'vici'));
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
  });

  it('swanctl --version --daemon names tunsec, its version and the system', async () => {
    const out = await ok('--version', '--daemon');
    expect(out).toMatch(/^strongSwan \d+\.\d+\.\d+\S* tunsec \(Linux, \S+, \S+\)$/m);
  });

  it('swanctl --stats counts the IKE SA', async () => {
    const out = await ok('--stats');
    expect(out).toMatch(/^uptime: \d+ seconds?, since \w{3} \d\d \d\d:\d\d:\d\d \d{4}$/m);
    expect(out).toContain('IKE_SAs: 1 total, 0 half-open');
  });

  it('swanctl --list-sas shows the IKE SA and its CHILD_SA with the SPIs, algorithms and selectors tunsec has', async () => {
    const out = await ok('--list-sas');
    const sas = await tunsecSas();
    const ike = sas.ike_sas[0]!;
    const child = ike.children[0]!;
    expect(out).toMatch(new RegExp(`^${CONN}: #\\d+, ESTABLISHED, IKEv2, ${ike.spi_i}_i\\* ${ike.spi_r}_r$`, 'm'));
    expect(out).toContain(`  local  'moon.tunsec.test' @ ${pair.a.ip4}[500]`);
    expect(out).toContain(`  remote 'sun.tunsec.test' @ ${pair.b.ip4}[500]`);
    expect(out).toContain('  AES_GCM_16-128/PRF_HMAC_SHA2_384/ECP_384_BP\n');
    expect(out).toMatch(/^ {2}established \d+s ago, rekeying in \d+s, expires in \d+s$/m);
    expect(out).toMatch(new RegExp(`^  ${CONN}: #\\d+, reqid ${child.reqid}, INSTALLED, TRANSPORT, ESP:AES_GCM_16-128$`, 'm'));
    expect(out).toMatch(/^ {4}installed \d+s ago, rekeying in \d+s, expires in \d+s$/m);
    expect(out).toMatch(new RegExp(`^    in  ${child.spi_in}, +\\d+ bytes, +\\d+ packets`, 'm'));
    expect(out).toMatch(new RegExp(`^    out ${child.spi_out}, +\\d+ bytes, +\\d+ packets`, 'm'));
    expect(out).toContain(`    local  ${pair.a.ip4}/32\n`);
    expect(out).toContain(`    remote ${pair.b.ip4}/32\n`);
    // filters: another connection's name lists nothing
    expect(await ok('--list-sas', '--ike', 'nonesuch')).toBe('');
  });

  it('swanctl --list-conns shows the connection, its authentication rounds and both children', async () => {
    const out = await ok('--list-conns');
    expect(out).toMatch(new RegExp(`^${CONN}: IKEv2, no reauthentication, rekeying every \\d+s`, 'm'));
    expect(out).toContain(`  local:  ${pair.a.ip4}\n`);
    expect(out).toContain(`  remote: ${pair.b.ip4}\n`);
    expect(out).toContain('  local public key authentication:\n    id: moon.tunsec.test\n    certs: C=CH, O=tunsec vici, CN=moon\n');
    expect(out).toContain('  remote public key authentication:\n    id: sun.tunsec.test\n');
    expect(out).toMatch(new RegExp(`^  ${CONN}: TRANSPORT, rekeying every \\d+s`, 'm'));
    expect(out).toMatch(/^ {2}extra: TRANSPORT, rekeying every \d+s/m);
    expect(out).toContain('    local:  dynamic[udp]\n');
  });

  it('swanctl --list-certs parses the certificates tunsec holds: its own with the private key, and the CA', async () => {
    const out = await ok('--list-certs');
    expect(out).toContain('List of X.509 End Entity Certificates');
    expect(out).toContain('subject:  "C=CH, O=tunsec vici, CN=moon"');
    expect(out).toMatch(/has private key/);
    expect(out).toContain('List of X.509 CA Certificates');
    expect(out).toContain('subject:  "C=CH, O=tunsec vici, CN=tunsec VICI Root CA"');
    const onlyCa = await ok('--list-certs', '--flag', 'ca');
    expect(onlyCa).not.toContain('CN=moon"');
    expect(onlyCa).toContain('CN=tunsec VICI Root CA');
  });

  it('swanctl --initiate --child starts the second CHILD_SA, seen by --monitor-sa, and --list-sas shows it', async () => {
    const monitor = new Watcher(['--monitor-sa', '--raw', '--uri', uri]);
    watchers.push(monitor);
    const log = new Watcher(['--log', '--uri', uri]);
    watchers.push(log);
    // both registered before anything happens (moon logs registrations at dmn level 2)
    const registered = (event: string): boolean => moon.lines.some((l) => l.msg === `VICI client registered for ${event}`);
    await waitFor('the watchers registered', () => registered('child-updown') && registered('log'), 10_000);
    const out = await ok('--initiate', '--child', 'extra');
    expect(out).toContain('initiate completed successfully');
    const list = await ok('--list-sas', '--child', 'extra');
    expect(list).toMatch(/^ {2}extra: #\d+, reqid \d+, INSTALLED, TRANSPORT, ESP:AES_GCM_16-128\/ECP_384_BP$/m); // CREATE_CHILD_SA with PFS
    expect(list).toContain(`    local  ${pair.a.ip4}/32[udp]\n`);
    expect(list).not.toMatch(new RegExp(`^  ${CONN}: #`, 'm'));
    await waitFor('child-updown of extra', () => /child-updown event \{up=yes/.test(monitor.out) && /extra-\d+ \{/.test(monitor.out), 10_000).catch(
      () => undefined,
    );
    expect(monitor.out).toMatch(/child-updown event \{up=yes host-host \{uniqueid=\d+ version=2 state=ESTABLISHED/);
    expect(monitor.out).toMatch(/extra-\d+ \{name=extra uniqueid=\d+ reqid=\d+ state=INSTALLED mode=TRANSPORT protocol=ESP/);
  });

  it('swanctl --terminate --child deletes that CHILD_SA alone: the IKE SA and the other CHILD_SA stay, the peer saw the Delete', async () => {
    const extra = (await tunsecSas()).ike_sas[0]!.children.find((c) => c.name === 'extra')!;
    const r = await swanctl('--terminate', '--child', 'extra');
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toContain('terminate completed successfully');
    expect(r.stdout).toMatch(/^\[IKE\] .*deleting CHILD_SA extra\{\d+\} \(terminated over VICI \(swanctl --terminate --child\)\)$/m);
    await sun.event('child_closed');
    const list = await ok('--list-sas');
    expect(list).toMatch(new RegExp(`^${CONN}: #\\d+, ESTABLISHED, IKEv2`, 'm'));
    expect(list).toMatch(new RegExp(`^  ${CONN}: #\\d+, reqid \\d+, INSTALLED`, 'm'));
    expect(list).not.toContain('extra');
    const monitor = watchers[0]!;
    const down = new RegExp(`child-updown event \\{host-host \\{[^\\n]*extra-\\d+ \\{name=extra [^\\n]*state=DELETING[^\\n]*spi-in=${extra.spi_in}`);
    await waitFor('child-updown down of extra', () => down.test(monitor.out), 10_000).catch(() => undefined);
    expect(monitor.out).toMatch(down);
  });

  it('swanctl --rekey --child replaces the CHILD_SA: new SPIs in --list-sas, the rekey in --log', async () => {
    const before = (await tunsecSas()).ike_sas[0]!.children.find((c) => c.name === CONN)!;
    const out = await ok('--rekey', '--child', CONN);
    expect(out).toContain('rekey completed successfully');
    await moon.event('child_rekeyed');
    const after = (await tunsecSas()).ike_sas[0]!.children.find((c) => c.name === CONN)!;
    expect(after.spi_in).not.toBe(before.spi_in);
    const list = await ok('--list-sas', '--child', CONN);
    expect(list).toMatch(new RegExp(`^    in  ${after.spi_in},`, 'm'));
    const log = watchers[1]!;
    const line = new RegExp(
      `^00\\[IKE\\] CHILD_SA ${CONN}\\{\\d+\\} rekeyed: ${before.spi_in}_i ${before.spi_out}_o -> ${after.spi_in}_i ${after.spi_out}_o$`,
      'm',
    );
    await waitFor('the rekey in swanctl --log', () => line.test(log.out), 10_000).catch(() => undefined);
    expect(log.out).toMatch(line);
    expect(log.out).toMatch(
      new RegExp(
        `^00\\[IKE\\] ${CONN}\\[[0-9a-f]{16}_i [0-9a-f]{16}_r\\]: rekeying CHILD_SA ${CONN}\\{\\d+\\} ${before.spi_in}_i ${before.spi_out}_o \\(swanctl --rekey\\)$`,
        'm',
      ),
    );
    // rekeying something that is not there fails as with charon
    const none = await swanctl('--rekey', '--child', 'nonesuch');
    expect(none.code).not.toBe(0);
    expect(none.stderr).toContain('rekey failed: no matching SAs to rekey found');
  });

  it('swanctl --terminate --ike deletes the IKE SA; --monitor-sa sees its CHILD_SAs and the IKE SA go down', async () => {
    const r = await swanctl('--terminate', '--ike', CONN);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toContain('terminate completed successfully');
    expect(r.stdout).toMatch(/^\[IKE\] .*host-host/m); // control-log lines streamed while it ran
    await moon.event('ike_destroyed');
    expect(await ok('--list-sas')).toBe('');
    const monitor = watchers[0]!;
    await waitFor('ike-updown down', () => /ike-updown event \{host-host \{/.test(monitor.out), 10_000).catch(() => undefined);
    expect(monitor.out).toMatch(/child-updown event \{host-host \{[^\n]*state=DELETING/);
    expect(monitor.out).toMatch(/ike-updown event \{host-host \{uniqueid=\d+ version=2 state=/);
    expect(await monitor.stop()).toBe(0);
    expect(monitor.err).toContain('disconnecting...');
  });

  it('swanctl --initiate --ike brings the connection back up', async () => {
    const out = await ok('--initiate', '--ike', CONN, '--timeout', '30');
    expect(out).toContain('initiate completed successfully');
    expect(await ok('--list-sas')).toMatch(new RegExp(`^${CONN}: #\\d+, ESTABLISHED, IKEv2`, 'm'));
  });

  it('swanctl --rekey --ike rekeys the IKE SA: --list-sas shows the new SPIs, the CHILD_SAs moved along', async () => {
    const before = (await tunsecSas()).ike_sas[0]!;
    const out = await ok('--rekey', '--ike', CONN);
    expect(out).toContain('rekey completed successfully');
    const ev = await waitFor('ike_rekeyed', () => moon.lines.find((l) => l.event === 'ike_rekeyed' && l.old_spi_i === before.spi_i), 20_000);
    await waitFor('the old IKE SA gone', async () => (await tunsecSas()).ike_sas.length === 1 || undefined, 20_000);
    const list = await ok('--list-sas');
    expect(list).toMatch(new RegExp(`^${CONN}: #\\d+, ESTABLISHED, IKEv2, ${String(ev.spi_i)}_i\\* ${String(ev.spi_r)}_r$`, 'm'));
    expect(list).toMatch(new RegExp(`^  ${CONN}: #\\d+, reqid \\d+, INSTALLED, TRANSPORT`, 'm'));
  });

  it('what tunsec cannot do is refused with the reason: reauthentication on request, a CHILD_SA that is not there', async () => {
    const none = await swanctl('--terminate', '--child', 'extra');
    expect(none.code).not.toBe(0);
    expect(none.stderr).toContain('terminate failed: no matching SAs to terminate found');
    const reauth = await swanctl('--rekey', '--ike', CONN, '--reauth');
    expect(reauth.code).not.toBe(0);
    expect(reauth.stderr).toContain('rekey failed: reauthentication on request is not supported by tunsec');
  });

  it('commands tunsec does not offer are answered as unknown, and the daemon goes on', async () => {
    // an event tunsec does not have (list-policy) is refused at registration, a command (get-pools) at the request
    const pols = await swanctl('--list-pols');
    expect(pols.code).not.toBe(0);
    expect(pols.stderr).toContain('registering for policies failed: No such file or directory');
    const pools = await swanctl('--list-pools');
    expect(pools.code).not.toBe(0);
    expect(pools.stderr).toContain('get-pools request failed: No such file or directory');
    expect(await ok('--stats')).toContain('IKE_SAs: 1 total');
  });

  it('a process that is not root is refused, as on the control socket', async () => {
    const sock = join(moon.dir, 'vici');
    // open the path up as a careless operator might: only the credential check is left
    chmodSync(moon.dir, 0o755);
    chmodSync(sock, 0o666);
    const r = await run('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'swanctl', '--list-sas', '--uri', uri], { timeoutMs: 30_000 });
    expect(r.code).not.toBe(0);
    expect(r.stdout).not.toContain(CONN);
    await waitFor('the refusal in the log', () => moon.lines.find((l) => (l.msg ?? '').includes(`VICI socket: refused uid ${NOBODY}`)), 5000);
    chmodSync(sock, 0o600);
    chmodSync(moon.dir, 0o700);
  });
});
