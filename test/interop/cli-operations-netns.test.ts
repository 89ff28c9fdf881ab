/**
 * The operator's CLI against two tunsec daemons in network namespaces (moon
 * initiates, sun answers): `up --child` creates a second CHILD_SA on the
 * established IKE SA and `down --child` deletes it again (the IKE SA stays, at
 * both ends); `rekey` rekeys the IKE SA and a CHILD_SA and list-sas shows the
 * new SPIs; `monitor --json` run meanwhile sees the updown and rekey events;
 * `list-certs` shows own, CA and peer certificates; failures under --json are
 * `{"error":{code,message}}` with their exit codes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ControlEvent, ListCertsResult, ListSasResult, RekeyResult, UpResult } from '../../src/control/protocol.js';
import { createCa, type Issued } from '../../src/pki/issue.js';
import { NetnsPair } from '../support/netns.js';
import { requireRootAndPrograms, waitFor } from '../support/proc.js';
import { peerCertificates, peerDaemon, type TunsecDaemon } from './tunsec-daemon.js';

requireRootAndPrograms('tunsec CLI operations between two daemons', ['ip', 'ping']);

const REPO = join(import.meta.dirname, '../..');
const CONN = 'host-host';
const ca = createCa({ subject: 'C=CH, O=tunsec cli, CN=tunsec CLI Test CA', key: 'p384' });
// a second child for up/down --child: UDP only, not started with the connection
const UDP_CHILD = [
  'udp:',
  '  mode: transport',
  '  local_ts: dynamic[udp]',
  '  remote_ts: dynamic[udp]',
  '  esp_proposals: aes128gcm16-ecp384bp!',
  '  start_action: none',
];

/** `tunsec monitor --json` inside moon's namespace, its event lines collected; stopped by PID. */
class Monitor {
  readonly events: ControlEvent[] = [];
  stderr = '';
  private readonly child: ChildProcess;
  readonly exit: Promise<number | null>;

  constructor(netns: string, socket: string) {
    this.child = spawn(
      'ip',
      ['netns', 'exec', netns, process.execPath, '--import', 'tsx', join(REPO, 'src/cli/main.ts'), 'monitor', '--json', '--socket', socket],
      { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.exit = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
    let buf = '';
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        this.events.push(JSON.parse(buf.slice(0, nl)) as ControlEvent);
        buf = buf.slice(nl + 1);
      }
    });
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
  }

  subscribed(): Promise<boolean> {
    return waitFor('tunsec monitor subscribed', () => this.stderr.includes('monitoring all events'), 20_000);
  }

  event(name: string, match: (e: ControlEvent) => boolean = () => true): Promise<ControlEvent> {
    return waitFor(`monitor event ${name}`, () => this.events.find((e) => e.event === name && match(e)), 20_000);
  }

  /** Ctrl-C, as an operator ends it; resolves with its exit code. */
  async interrupt(): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGINT');
    return this.exit;
  }
}

describe('tunsec up/down --child, rekey, list-certs and monitor between two tunsec daemons', () => {
  let pair: NetnsPair;
  let certs: Record<'moon' | 'sun', Issued>;
  let moon: TunsecDaemon;
  let sun: TunsecDaemon;
  let monitor: Monitor | undefined;

  const json = async <T>(d: TunsecDaemon, ...args: string[]): Promise<T> => {
    const r = await d.cli(...args, '--json');
    expect(r.code, `${args.join(' ')}: ${r.stdout}${r.stderr}`).toBe(0);
    return JSON.parse(r.stdout) as T;
  };
  const sas = (d: TunsecDaemon): Promise<ListSasResult> => json<ListSasResult>(d, 'list-sas');
  const logs = (): string => `--- moon\n${moon.text().slice(-4000)}\n--- sun\n${sun.text().slice(-4000)}`;

  beforeAll(async () => {
    pair = await NetnsPair.create('co');
    certs = peerCertificates(ca, pair, 'tunsec cli');
    sun = peerDaemon(pair, ca, certs, 'sun', { name: CONN, mode: 'transport', startAction: 'none', extraChildren: UDP_CHILD });
    moon = peerDaemon(pair, ca, certs, 'moon', { name: CONN, mode: 'transport', startAction: 'start', extraChildren: UDP_CHILD });
    await sun.start();
    await sun.event('daemon_started');
    await moon.start();
    await moon.event('child_established');
    await sun.event('child_established');
    monitor = new Monitor(pair.a.ns, join(moon.dir, 'tunsec.sock'));
    await monitor.subscribed();
  }, 90_000);

  afterAll(async () => {
    await monitor?.interrupt();
    await moon?.stop();
    await sun?.stop();
    await pair?.destroy();
  });

  it('up --child creates the second CHILD_SA on the established IKE_SA, seen at both ends and by monitor', async () => {
    const before = (await sas(moon)).ike_sas;
    expect(before).toHaveLength(1);
    const up = await moon.cli('up', CONN, '--child', 'udp');
    expect(up.code, `${up.stderr}\n${logs()}`).toBe(0);
    expect(up.stdout).toMatch(
      new RegExp(`^${CONN}/udp: established \\(CHILD_SA \\{\\d+\\} [0-9a-f]{8}_i [0-9a-f]{8}_o on IKE_SA ${before[0]!.spi_i}_i ${before[0]!.spi_r}_r\\)\\n$`),
    );
    const after = (await sas(moon)).ike_sas;
    expect(after.map((s) => s.spi_i)).toEqual([before[0]!.spi_i]);
    expect(after[0]!.children.map((c) => c.name).sort()).toEqual([CONN, 'udp']);
    expect((await sas(sun)).ike_sas[0]!.children.map((c) => c.name).sort()).toEqual([CONN, 'udp']);
    const udp = after[0]!.children.find((c) => c.name === 'udp')!;
    expect(udp.local_ts).toEqual([`${pair.a.ip4}/32[udp]`]);
    expect(await monitor!.event('child_established', (e) => e.name === 'udp')).toMatchObject({ conn: CONN, spi_in: udp.spi_in, spi_out: udp.spi_out });
    // again: it is there already
    const again = await json<UpResult>(moon, 'up', CONN, '--child', 'udp');
    expect(again).toMatchObject({ already: true, child: { name: 'udp', spi_in: udp.spi_in } });
  }, 90_000);

  it('rekey --child gives the CHILD_SA new SPIs at both ends; monitor sees child_rekeyed with the old and new SPIs', async () => {
    const old = (await sas(moon)).ike_sas[0]!.children.find((c) => c.name === CONN)!;
    const r = await json<RekeyResult>(moon, 'rekey', CONN, '--child', CONN);
    expect(r.child_sas).toHaveLength(1);
    const c = r.child_sas[0]!;
    expect(c).toMatchObject({ name: CONN, old_spi_in: old.spi_in, old_spi_out: old.spi_out });
    expect([c.spi_in, c.spi_out]).not.toContain(old.spi_in);
    const now = (await sas(moon)).ike_sas[0]!.children.find((x) => x.name === CONN)!;
    expect([now.spi_in, now.spi_out]).toEqual([c.spi_in, c.spi_out]);
    // sun's inbound is moon's outbound
    await waitFor(
      'sun shows the new CHILD_SA',
      async () => (await sas(sun)).ike_sas[0]?.children.some((x) => x.name === CONN && x.spi_in === c.spi_out && x.spi_out === c.spi_in),
      10_000,
    );
    expect(await monitor!.event('child_rekeyed', (e) => e.spi_in === c.spi_in)).toMatchObject({
      name: CONN,
      conn: CONN,
      old_spi_in: old.spi_in,
      old_spi_out: old.spi_out,
      spi_out: c.spi_out,
    });
    const ping = await pair.exec(pair.a, 'ping', ['-c', '3', '-i', '0.2', '-W', '2', pair.b.ip4], 20_000);
    expect(ping.code, `${ping.stdout}\n${logs()}`).toBe(0);
  }, 90_000);

  it('rekey of the IKE_SA: new IKE SPIs in list-sas, the CHILD_SAs move over, monitor sees ike_rekeyed; the text output names old and new SPIs', async () => {
    const old = (await sas(moon)).ike_sas[0]!;
    const r = await moon.cli('rekey', CONN);
    expect(r.code, `${r.stderr}\n${logs()}`).toBe(0);
    const m = new RegExp(`^${CONN}: IKE_SA rekeyed: ${old.spi_i}_i ${old.spi_r}_r → ([0-9a-f]{16})_i ([0-9a-f]{16})_r\\n$`).exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    const [, spiI, spiR] = m!;
    await waitFor('the old IKE_SA is deleted', async () => (await sas(moon)).ike_sas.length === 1, 10_000);
    const now = (await sas(moon)).ike_sas[0]!;
    expect([now.spi_i, now.spi_r]).toEqual([spiI, spiR]);
    expect(now.children.map((c) => c.name).sort()).toEqual([CONN, 'udp']);
    expect(await monitor!.event('ike_rekeyed')).toMatchObject({ name: CONN, old_spi_i: old.spi_i, spi_i: spiI, spi_r: spiR });
  }, 90_000);

  it('down --child deletes that CHILD_SA at both ends and keeps the IKE_SA; monitor sees child_deleted', async () => {
    const ike = (await sas(moon)).ike_sas[0]!;
    const udp = ike.children.find((c) => c.name === 'udp')!;
    const r = await moon.cli('down', CONN, '--child', 'udp');
    expect(r.code, `${r.stderr}\n${logs()}`).toBe(0);
    expect(r.stdout).toBe(`${CONN}/udp: 1 CHILD_SA deleted\n`);
    const now = (await sas(moon)).ike_sas;
    expect(now.map((s) => s.spi_i)).toEqual([ike.spi_i]);
    expect(now[0]!.children.map((c) => c.name)).toEqual([CONN]);
    await waitFor('sun deleted its half', async () => (await sas(sun)).ike_sas[0]?.children.every((c) => c.name !== 'udp'), 10_000);
    expect(await monitor!.event('child_deleted')).toMatchObject({ name: 'udp', conn: CONN, spi_in: udp.spi_in, spi_out: udp.spi_out });
    expect(await sun.event('child_closed')).toMatchObject({ name: 'udp', conn: CONN });
    const again = await moon.cli('down', CONN, '--child', 'udp');
    expect(again).toMatchObject({ code: 0, stdout: `${CONN}/udp: no CHILD_SA was up\n` });
  }, 90_000);

  it('list-certs shows the own, CA and peer certificates with subject, SANs, validity, key type and fingerprint', async () => {
    const r = await json<ListCertsResult>(moon, 'list-certs');
    const own = r.certificates.find((c) => c.kind === 'own')!;
    expect(own).toMatchObject({
      subject: 'C=CH, O=tunsec cli, CN=moon',
      issuer: 'C=CH, O=tunsec cli, CN=tunsec CLI Test CA',
      validity: 'valid',
      key: 'ECDSA P-384',
      ca: false,
      connections: [CONN],
    });
    expect(own.sans).toEqual(expect.arrayContaining(['DNS:moon.tunsec.test', `IP:${pair.a.ip4}`]));
    expect(own.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(r.certificates.find((c) => c.kind === 'ca')).toMatchObject({ subject: 'C=CH, O=tunsec cli, CN=tunsec CLI Test CA', ca: true });
    const ike = (await sas(moon)).ike_sas[0]!;
    expect(r.certificates.find((c) => c.kind === 'peer')).toMatchObject({ subject: 'C=CH, O=tunsec cli, CN=sun', ike_sas: [`${ike.spi_i}_i ${ike.spi_r}_r`] });
    const text = await moon.cli('list-certs');
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`own certificate, used by ${CONN}:\n  subject:  "C=CH, O=tunsec cli, CN=moon"\n`);
    expect(text.stdout).toMatch(/ {2}pubkey: {3}ECDSA P-384\n {2}sha256: {3}([0-9a-f]{2}:){31}[0-9a-f]{2}\n/);
  }, 90_000);

  it('--json failures are {"error":{code,message}} with exit 3 for what does not exist and 2 for a usage error', async () => {
    const missing = await moon.cli('rekey', 'nope', '--json');
    expect(missing.code).toBe(3);
    expect(JSON.parse(missing.stdout)).toEqual({ error: { code: 'not_found', message: "no connection named 'nope'" } });
    const child = await moon.cli('up', CONN, '--child', 'nope', '--json');
    expect(child.code).toBe(3);
    expect(JSON.parse(child.stdout)).toEqual({ error: { code: 'not_found', message: `connection ${CONN} has no child named 'nope'` } });
    const noChildSa = await moon.cli('rekey', CONN, '--child', 'udp', '--json');
    expect(noChildSa.code).toBe(3);
    expect(JSON.parse(noChildSa.stdout)).toEqual({ error: { code: 'not_found', message: `${CONN}: no CHILD_SA udp to rekey` } });
    const bad = await moon.cli('rekey', CONN, '--frobnicate', '--json');
    expect(bad.code).toBe(2);
    expect(JSON.parse(bad.stdout)).toEqual({ error: { code: 'usage', message: "unknown option '--frobnicate'" } });
    const text = await moon.cli('rekey', 'nope');
    expect(text).toMatchObject({ code: 3, stdout: '', stderr: "tunsec: no connection named 'nope'\n" });
  }, 90_000);

  it('monitor ends with exit 0 on Ctrl-C, and printed only event lines', async () => {
    const m = monitor!;
    monitor = undefined;
    expect(await m.interrupt()).toBe(0);
    expect(m.events.length).toBeGreaterThan(0);
    expect(m.events.every((e) => typeof e.event === 'string' && typeof e.time === 'string' && typeof e.msg === 'string')).toBe(true);
  }, 90_000);
});
