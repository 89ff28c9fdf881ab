/**
 * Configuration reload end to end (issue 7): two `tunsec daemon` processes in
 * their own network namespaces, moon initiating a transport-mode `private`
 * policy. moon's certificate is renewed in place and SIGHUP sent: the
 * connection and its SAs stay (same SPIs, traffic flows), the renewed
 * certificate is loaded and authenticates the next IKE SA. A bad
 * configuration is rejected by `tunsec reload` with its problems and the
 * running one keeps working; an added connection shows up, a removed one
 * takes its SAs with it.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ListConnsResult, ListSasResult } from '../../src/control/protocol.js';
import type { ReloadResult } from '../../src/control/protocol.js';
import { createCa, issueCertificate, type Issued } from '../../src/pki/issue.js';
import { NetnsPair } from '../support/netns.js';
import { requireRootAndPrograms, waitFor, type RunResult } from '../support/proc.js';
import { peerCertificates, peerDaemon, type PeerName, type TunsecDaemon } from './tunsec-daemon.js';

requireRootAndPrograms('tunsec reload end to end', ['ip', 'ping']);

const CLI = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const ca = createCa({ subject: 'C=CH, O=tunsec reload, CN=tunsec Reload Test CA', key: 'p384' });
const CONN = 'host-host';

describe('reload: SIGHUP and tunsec reload between two daemons in netns', () => {
  let pair: NetnsPair;
  let certs: Record<PeerName, Issued>;
  let moon: TunsecDaemon;
  let sun: TunsecDaemon;

  const tunsec = (...args: string[]): Promise<RunResult> =>
    pair.exec(pair.a, process.execPath, ['--import', 'tsx', CLI, ...args, '--socket', join(moon.dir, 'tunsec.sock')], 90_000);
  const json = async <T>(...args: string[]): Promise<T> => {
    const r = await tunsec(...args, '--json');
    expect(r.code, `${args.join(' ')}: ${r.stderr}\n${moon.text()}`).toBe(0);
    return JSON.parse(r.stdout) as T;
  };
  const spis = async (): Promise<string[]> =>
    (await json<ListSasResult>('list-sas')).ike_sas.map((sa) => [sa.spi_i, sa.spi_r, ...sa.children.map((c) => `${c.spi_in}/${c.spi_out}`)].join(' '));
  const ping = async (): Promise<void> => {
    const r = await pair.exec(pair.a, 'ping', ['-c', '2', '-i', '0.3', '-W', '3', pair.b.ip4], 20_000);
    expect(r.code, `${r.stdout}\n${moon.text()}`).toBe(0);
  };
  const configFile = (): string => join(moon.dir, 'tunsec.yaml');
  const events = (name: string): number => moon.lines.filter((l) => l.event === name).length;

  beforeAll(async () => {
    pair = await NetnsPair.create('rl');
    certs = peerCertificates(ca, pair, 'tunsec reload');
    sun = peerDaemon(pair, ca, certs, 'sun', { name: CONN, mode: 'transport', startAction: 'none' });
    moon = peerDaemon(pair, ca, certs, 'moon', { name: CONN, mode: 'transport', startAction: 'start' });
    await sun.start();
    await sun.event('daemon_started');
    await moon.start();
    await moon.event('child_established');
  }, 60_000);

  afterAll(async () => {
    await moon?.stop();
    await sun?.stop();
    await pair?.destroy();
  });

  it('SIGHUP with a renewed certificate: the unchanged connection keeps its SAs (same SPIs), the new certificate is loaded and used from the next authentication', async () => {
    await ping();
    const before = await spis();
    expect(before).toHaveLength(1);
    const bytesBefore = (await json<ListSasResult>('list-sas')).ike_sas[0]!.children[0]!.bytes_out;

    // Renew moon's certificate and key in place (a new key, a new subject DN, the same identity).
    const renewed = issueCertificate(ca, {
      subject: 'C=CH, O=tunsec reload, CN=moon renewed',
      key: 'p384',
      subjectAltNames: { dns: ['moon.tunsec.test'], ip: [pair.a.ip4, pair.a.ip6] },
    });
    writeFileSync(join(moon.dir, 'cert.pem'), renewed.certificatePem);
    writeFileSync(join(moon.dir, 'key.pem'), renewed.privateKeyPem!, { mode: 0o600 });
    const pid = Number(readFileSync(join(moon.dir, 'tunsec.pid'), 'utf8').trim());
    process.kill(pid, 'SIGHUP');
    const ev = await moon.event('config_reloaded');
    expect(ev).toMatchObject({ kept: [CONN], renewed: [CONN], added: [], removed: [], replaced: [] });

    expect(await spis()).toEqual(before);
    await ping();
    const after = (await json<ListSasResult>('list-sas')).ike_sas[0]!;
    expect(after.children[0]!.bytes_out).toBeGreaterThan(bytesBefore);
    const conns = await json<ListConnsResult>('list-conns');
    expect(conns.connections[0]!.certificate).toBe('C=CH, O=tunsec reload, CN=moon renewed');

    // The next authentication uses it: sun accepts the renewed certificate.
    expect((await tunsec('down', CONN)).code).toBe(0);
    const up = await tunsec('up', CONN, '--timeout', '20');
    expect(up.code, `${up.stderr}\n${moon.text()}\n${sun.text()}`).toBe(0);
    const fresh = await spis();
    expect(fresh).toHaveLength(1);
    expect(fresh).not.toEqual(before);
    await ping();
  }, 90_000);

  it('tunsec reload rejects an invalid configuration with every problem; the running configuration and SAs stay', async () => {
    const before = await spis();
    const good = readFileSync(configFile(), 'utf8');
    writeFileSync(
      configFile(),
      good.replace(/certs: \[[^\]]*cert\.pem\]/, `certs: [${moon.dir}/missing.pem]`).replace('    remote_addrs:', '    remote_addrz:'),
    );
    const failedBefore = events('config_reload_failed');
    const r = await tunsec('reload');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/configuration not reloaded: \d+ problems?; the running configuration stays/);
    expect(r.stderr).toMatch(/remote_addrz/);
    await waitFor('config_reload_failed', () => events('config_reload_failed') > failedBefore, 5000);
    expect(await spis()).toEqual(before);
    await ping();

    // The credentials are checked too.
    writeFileSync(configFile(), good.replace(/certs: \[[^\]]*cert\.pem\]/, `certs: [${moon.dir}/missing.pem]`));
    const r2 = await tunsec('reload');
    expect(r2.code).toBe(1);
    expect(r2.stderr).toMatch(/connection host-host: local\.certs: .*missing\.pem/);
    expect(await spis()).toEqual(before);
    writeFileSync(configFile(), good);
  }, 90_000);

  it('tunsec reload adds a connection, keeps the unchanged one, reports daemon settings that need a restart, and removes a connection with its SAs', async () => {
    const before = await spis();
    const good = readFileSync(configFile(), 'utf8');
    const extra = [
      '  extra:',
      `    local_addrs: "${pair.a.ip4}"`,
      `    remote_addrs: "${pair.b.ip4}"`,
      '    proposals: aes128gcm16-prfsha384-ecp384bp!',
      '    local:',
      `      certs: [${moon.dir}/cert.pem]`,
      '      id: moon.tunsec.test',
      '    children:',
      '      extra:',
      '        mode: transport',
      '        local_ts: dynamic[tcp/7777]',
      '        esp_proposals: aes128gcm16-ecp384bp!',
      '',
    ].join('\n');
    writeFileSync(configFile(), `${good.replace('daemon:\n', 'daemon:\n  tun_name: other0\n')}${extra}`);
    const added = await json<ReloadResult>('reload');
    expect(added).toMatchObject({ ok: true, kept: [CONN], added: ['extra'], removed: [], replaced: [] });
    expect(added.restart.join('\n')).toMatch(/daemon\.tun_name: .*needs a restart/);
    const text = await tunsec('list-conns');
    expect(text.stdout).toMatch(/^extra: IKEv2/m);
    expect(await spis()).toEqual(before);
    await ping();

    // Remove host-host: its SAs are deleted (the peer hears of it).
    writeFileSync(configFile(), `${good.replace(new RegExp(`  ${CONN}:[\\s\\S]*$`), '')}${extra}`);
    const removed = await json<ReloadResult>('reload');
    expect(removed).toMatchObject({ ok: true, kept: ['extra'], removed: [CONN] });
    expect(await spis()).toEqual([]);
    await waitFor('sun sees the Delete', () => sun.lines.some((l) => l.event === 'ike_destroyed'), 10_000);
  }, 90_000);
});
