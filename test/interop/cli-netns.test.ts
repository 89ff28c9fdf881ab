/**
 * The operator's commands end to end: two `tunsec daemon` processes in their
 * own network namespaces (moon initiates with start_action start, sun
 * answers), and the `tunsec` CLI run inside moon's namespace against its
 * control socket — status, list-sas, list-conns and check in each state,
 * down/up, and the global off switch with `global: drop` checked on the wire.
 */
import { statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ListSasResult } from '../../src/control/protocol.js';
import { createCa } from '../../src/pki/issue.js';
import { Capture, isNeighborDiscovery } from '../support/capture.js';
import { NetnsPair, type NetnsSide } from '../support/netns.js';
import { requireRootAndPrograms, type RunResult } from '../support/proc.js';
import { TunsecDaemon, credentialFiles, peerCertificates, tunsecYaml } from './tunsec-daemon.js';

requireRootAndPrograms('tunsec CLI end to end', ['ip', 'ping', 'tcpdump']);

const CLI = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const ca = createCa({ subject: 'C=CH, O=tunsec cli, CN=tunsec CLI Root CA', key: 'p384' });
const CONN = 'host-host';

describe('the tunsec command against a daemon in a network namespace', () => {
  let pair: NetnsPair;
  let moon: TunsecDaemon;
  let sun: TunsecDaemon;
  let moonSock: string;
  let sunSock: string;

  /** `tunsec ARGS --socket SOCK` inside `side`'s namespace. */
  const tunsec = (side: NetnsSide, sock: string, ...args: string[]): Promise<RunResult> =>
    pair.exec(side, process.execPath, ['--import', 'tsx', CLI, ...args, '--socket', sock], 90_000);
  const atMoon = (...args: string[]): Promise<RunResult> => tunsec(pair.a, moonSock, ...args);
  const json = async <T>(side: NetnsSide, sock: string, ...args: string[]): Promise<T> => {
    const r = await tunsec(side, sock, ...args, '--json');
    expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    return JSON.parse(r.stdout) as T;
  };
  const logs = (): string => `moon:\n${moon.text()}\nsun:\n${sun.text()}`;

  beforeAll(async () => {
    pair = await NetnsPair.create('cl');
    const certs = peerCertificates(ca, pair, 'tunsec cli');
    const daemon = (name: 'moon' | 'sun'): TunsecDaemon => {
      const [me, other, peer] = name === 'moon' ? [pair.a, pair.b, 'sun'] : [pair.b, pair.a, 'moon'];
      return new TunsecDaemon(
        me.ns,
        tunsecYaml({
          name: CONN,
          local: me.ip4,
          remote: other.ip4,
          localId: `${name}.tunsec.test`,
          remoteId: `${peer}.tunsec.test`,
          mode: 'transport',
          startAction: name === 'moon' ? 'start' : 'none',
          daemonExtra: ['global: drop'],
        }),
        credentialFiles(ca.certificatePem, certs[name]!),
      );
    };
    moon = daemon('moon');
    sun = daemon('sun');
    moonSock = join(moon.dir, 'tunsec.sock');
    sunSock = join(sun.dir, 'tunsec.sock');
    // Only moon for now: its first attempt gets no answer and stays "connecting".
    await moon.start();
    await moon.event('daemon_started');
  }, 60_000);

  afterAll(async () => {
    await moon?.stop();
    await sun?.stop();
    await pair?.destroy();
  });

  it('the control socket is a root-only (0600) socket at daemon.control_socket', () => {
    const st = statSync(moonSock);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
  });

  it('while the peer does not answer, status says connecting, list-sas shows the half-open IKE SA, and check warns (exit 1)', async () => {
    const status = await atMoon('status');
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/^tunsec daemon: pid \d+, running since \S+ \(up \d+[sm].*\), global switch up \(off state: drop\)\n/);
    expect(status.stdout).toMatch(
      new RegExp(
        `\\n${CONN}: connecting since \\S+ \\(\\d+s\\), peer ${pair.b.ip4.replaceAll('.', '\\.')}, moon\\.tunsec\\.test\\.\\.\\.sun\\.tunsec\\.test, 1 IKE_SA, 0 CHILD_SAs\\n`,
      ),
    );
    const sas = await atMoon('list-sas');
    expect(sas.stdout).toMatch(new RegExp(`^${CONN}: CONNECTING, IKEv2, [0-9a-f]{16}_i\\* 0{16}_r\\n`));
    expect(sas.stdout).toContain(`  trap policies: ${CONN}/${CONN}{1}`);
    const conns = await atMoon('list-conns');
    expect(conns.stdout).toBe(
      [
        `${CONN}: IKEv2, proposals aes128gcm16-prfsha384-ecp384bp, fragmentation, keyingtries 1`,
        `  local:  ${pair.a.ip4}`,
        `  remote: ${pair.b.ip4} port 500`,
        '  local public key authentication:',
        '    id: moon.tunsec.test',
        '    certs: C=CH, O=tunsec cli, CN=moon',
        '  remote public key authentication:',
        '    id: sun.tunsec.test',
        `  ${CONN}: TRANSPORT, reqid 1, start_action start, policy private, replay_window 32`,
        '    esp_proposals: aes128gcm16-ecp384bp-noesn',
        '    local:  dynamic',
        '    remote: dynamic',
        '',
      ].join('\n'),
    );
    const check = await atMoon('check');
    expect(check.code, check.stdout).toBe(1);
    expect(check.stdout).toBe(`TUNSEC WARNING - ${CONN} connecting | established=0 connecting=1 not_connected=0 fallback_clear=0c\n`);
  }, 60_000);

  it('down aborts the attempt: status says not connected and check is CRITICAL (exit 2)', async () => {
    const down = await atMoon('down', CONN);
    expect(down.stdout, down.stderr).toBe(`${CONN}: 1 IKE_SA deleted\n`);
    expect((await atMoon('status')).stdout).toMatch(
      new RegExp(`\\n${CONN}: not connected since \\S+ \\(\\d+s\\), peer [\\d.]+, moon\\.tunsec\\.test\\.\\.\\.sun\\.tunsec\\.test\\n$`),
    );
    expect((await atMoon('list-sas')).stdout).toMatch(/^no IKE SAs\n/);
    const check = await atMoon('check');
    expect(check.code).toBe(2);
    expect(check.stdout).toBe(`TUNSEC CRITICAL - ${CONN} not connected | established=0 connecting=0 not_connected=1 fallback_clear=0c\n`);
  }, 60_000);

  it('with the peer running, up establishes the connection; status and list-sas show it and check is OK (exit 0)', async () => {
    await sun.start();
    await sun.event('daemon_started');
    const up = await atMoon('up', CONN);
    expect(up.code, `${up.stderr}\n${logs()}`).toBe(0);
    expect(up.stdout).toMatch(new RegExp(`^${CONN}: established \\(IKE_SA [0-9a-f]{16}_i [0-9a-f]{16}_r, 1 CHILD_SA\\)\\n$`));
    expect((await atMoon('status')).stdout).toMatch(
      new RegExp(
        `\\n${CONN}: established since \\S+ \\(\\d+s\\), peer ${pair.b.ip4.replaceAll('.', '\\.')}, moon\\.tunsec\\.test\\.\\.\\.sun\\.tunsec\\.test, 1 IKE_SA, 1 CHILD_SA\\n`,
      ),
    );
    const sas = await atMoon('list-sas');
    expect(sas.stdout).toContain(
      `  local  'moon.tunsec.test' @ ${pair.a.ip4}[500]\n  remote 'sun.tunsec.test' @ ${pair.b.ip4}[500]\n  aes128gcm16-prfsha384-ecp384bp\n`,
    );
    expect(sas.stdout).toContain(`  ${CONN}: INSTALLED, TRANSPORT, reqid 1, aes128gcm16-noesn\n`);
    expect(sas.stdout).toContain(`    local  ${pair.a.ip4}/32\n    remote ${pair.b.ip4}/32\n`);
    // both ends agree on the SPIs
    const m = await json<ListSasResult>(pair.a, moonSock, 'list-sas');
    const s = await json<ListSasResult>(pair.b, sunSock, 'list-sas');
    expect(m.ike_sas[0]!.spi_i).toBe(s.ike_sas[0]!.spi_i);
    expect(m.ike_sas[0]!.children[0]!.spi_out).toBe(s.ike_sas[0]!.children[0]!.spi_in);
    expect(m.ike_sas[0]!.children[0]!.spi_in).toBe(s.ike_sas[0]!.children[0]!.spi_out);
    const check = await atMoon('check');
    expect(check.code).toBe(0);
    expect(check.stdout).toBe(`TUNSEC OK - ${CONN} established | established=1 connecting=0 not_connected=0 fallback_clear=0c\n`);
  }, 60_000);

  it("a ping makes the CHILD SA's byte and packet counters in list-sas grow each way", async () => {
    const before = (await json<ListSasResult>(pair.a, moonSock, 'list-sas')).ike_sas[0]!.children[0]!;
    const ping = await pair.exec(pair.a, 'ping', ['-c', '3', '-i', '0.2', '-W', '2', pair.b.ip4], 20_000);
    expect(ping.code, `${ping.stdout}\n${logs()}`).toBe(0);
    const after = (await json<ListSasResult>(pair.a, moonSock, 'list-sas')).ike_sas[0]!.children[0]!;
    // 3 echo requests out, 3 replies in. Transport mode counts what ESP protects, as XFRM does:
    // the ICMP message after the IPv4 header, 8 octets of header + ping's 56 of data.
    const protectedOctets = 8 + 56;
    expect(after.packets_out - before.packets_out).toBe(3);
    expect(after.packets_in - before.packets_in).toBe(3);
    expect(after.bytes_out - before.bytes_out).toBe(3 * protectedOctets);
    expect(after.bytes_in - before.bytes_in).toBe(3 * protectedOctets);
    expect(after.last_out).not.toBeNull();
    expect(after.replay_drops + after.icv_failures).toBe(0);
    const text = await atMoon('list-sas');
    expect(text.stdout).toMatch(new RegExp(`\\n    out ${after.spi_out},\\s+${after.bytes_out} bytes,\\s+${after.packets_out} packets`));
  }, 60_000);

  it('down then up: the IKE SA is deleted at both ends, then a new one with new SPIs is established', async () => {
    const old = (await json<ListSasResult>(pair.a, moonSock, 'list-sas')).ike_sas[0]!;
    expect((await atMoon('down', CONN)).stdout).toBe(`${CONN}: 1 IKE_SA deleted\n`);
    expect((await json<ListSasResult>(pair.b, sunSock, 'list-sas')).ike_sas).toEqual([]);
    expect((await atMoon('check')).code).toBe(2);
    const up = await atMoon('up', CONN);
    expect(up.code, up.stderr).toBe(0);
    const fresh = (await json<ListSasResult>(pair.a, moonSock, 'list-sas')).ike_sas[0]!;
    expect(fresh.spi_i).not.toBe(old.spi_i);
    expect(fresh.children[0]!.spi_in).not.toBe(old.children[0]!.spi_in);
    expect((await atMoon('check')).code).toBe(0);
  }, 60_000);

  it('global down (global: drop) deletes every SA and keeps the policy dropping: ping fails, and neither ESP nor cleartext ICMP leaves moon', async () => {
    const down = await atMoon('global', 'down');
    expect(down.code, down.stderr).toBe(0);
    expect(down.stdout).toBe('global switch down: 1 IKE_SA deleted; traffic of tunsec policies is dropped\n');
    expect(await moon.event('global_down')).toMatchObject({ mode: 'drop', deleted_ike_sas: 1 });
    expect((await json<ListSasResult>(pair.b, sunSock, 'list-sas')).ike_sas).toEqual([]);
    expect((await atMoon('global', 'status')).stdout).toMatch(/^global switch down since \S+ \(\d+s\); off state: traffic of tunsec policies dropped\n$/);
    const capture = await Capture.start(pair.b.ns, pair.b.ifname);
    try {
      const ping = await pair.exec(pair.a, 'ping', ['-c', '3', '-i', '0.2', '-W', '1', pair.b.ip4], 20_000);
      expect(ping.code, ping.stdout).not.toBe(0);
      const fromMoon = (await capture.stop()).filter((p) => p.src === pair.a.ip4 && !isNeighborDiscovery(p));
      expect(fromMoon.filter((p) => p.protocol === 'esp' || p.protocol === 'icmp').map((p) => `${p.protocol} ${p.src} → ${p.dst}`)).toEqual([]);
    } finally {
      await capture.stop();
      capture.remove();
    }
    const dp = (await json<ListSasResult>(pair.a, moonSock, 'list-sas')).datapath!;
    expect(dp.global_off).toBe('drop');
    expect(dp.counters.outGlobalDrop).toBeGreaterThanOrEqual(3);
    expect(dp.counters.outFallbackClear).toBe(0);
    const check = await atMoon('check');
    expect(check.code).toBe(2);
    expect(check.stdout).toMatch(new RegExp(`^TUNSEC CRITICAL - ${CONN} not connected; global switch down \\|`));
    const up = await atMoon('up', CONN);
    expect(up.code).toBe(1);
    expect(up.stderr).toContain("the global switch is down: nothing is initiated until 'tunsec global up'");
  }, 60_000);

  it('global up initiates the start connection again and ping works, encrypted', async () => {
    const up = await atMoon('global', 'up');
    expect(up.code, `${up.stderr}\n${logs()}`).toBe(0);
    expect(up.stdout).toBe(`global switch up: 1 of 1 start connection established\n  ${CONN}: established\n`);
    expect(await moon.event('global_up')).toMatchObject({ connections: [{ name: CONN, established: true }] });
    const capture = await Capture.start(pair.b.ns, pair.b.ifname);
    try {
      const ping = await pair.exec(pair.a, 'ping', ['-c', '3', '-i', '0.2', '-W', '2', pair.b.ip4], 20_000);
      expect(ping.code, `${ping.stdout}\n${logs()}`).toBe(0);
      const fromMoon = (await capture.stop()).filter((p) => p.src === pair.a.ip4 && !isNeighborDiscovery(p));
      expect(fromMoon.filter((p) => p.protocol === 'icmp')).toEqual([]);
      expect(fromMoon.filter((p) => p.protocol === 'esp').length).toBeGreaterThanOrEqual(3);
    } finally {
      await capture.stop();
      capture.remove();
    }
    expect((await atMoon('global', 'status')).stdout).toMatch(/^global switch up since /);
    expect((await atMoon('check')).code).toBe(0);
  }, 90_000);

  it('once the daemon has stopped, its control socket is gone and check reports UNKNOWN (exit 3)', async () => {
    const dir = moon.dir;
    expect(await moon.stop()).toBe(0);
    expect(existsSync(moonSock)).toBe(false);
    const check = await atMoon('check');
    expect(check.code).toBe(3);
    expect(check.stdout).toBe(`TUNSEC UNKNOWN - cannot reach the daemon at ${join(dir, 'tunsec.sock')}: ENOENT (is tunsec daemon running?)\n`);
    const status = await atMoon('status');
    expect(status.code).toBe(1);
    expect(status.stderr).toContain('cannot reach the daemon');
  }, 60_000);
});
