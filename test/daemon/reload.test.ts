/**
 * Configuration reload (SIGHUP, `tunsec reload`): the pure plan, and two
 * daemons in this process on loopback (`datapath: none`): an unchanged
 * connection keeps its SAs through a reload with a renewed certificate, an
 * invalid configuration is rejected with every problem and the running one
 * stays, removed / changed / added connections, daemon settings that need a
 * restart, and the `tunsec reload` command over the control socket.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfigOrThrow } from '../../src/config/index.js';
import { resolveCredentials } from '../../src/daemon/credentials.js';
import { Daemon } from '../../src/daemon/daemon.js';
import { DaemonLogger } from '../../src/daemon/logger.js';
import { carryReqids, planReload, stableKey } from '../../src/daemon/reload.js';
import { summarizeReload } from '../../src/control/reload-summary.js';
import type { IkeSa } from '../../src/ike/sa/ike-sa.js';
import { main } from '../../src/cli/main.js';
import { freePort, tempDir, writePki, type LogLine, type PkiFiles } from './support.js';

function daemon(options: ConstructorParameters<typeof Daemon>[0] = {}): {
  d: Daemon;
  lines: LogLine[];
  wait(pred: (l: LogLine) => boolean, what: string, timeoutMs?: number): Promise<LogLine>;
} {
  const lines: LogLine[] = [];
  const logger = new DaemonLogger({ json: true, write: (line) => void lines.push(JSON.parse(line) as LogLine) });
  const d = new Daemon({ logger, ...options });
  const wait = async (pred: (l: LogLine) => boolean, what: string, timeoutMs = 10_000): Promise<LogLine> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = lines.find(pred);
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${lines.map((l) => JSON.stringify(l)).join('\n')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return { d, lines, wait };
}

interface ConnOpts {
  name: string;
  local: string;
  remote: string;
  localPort: number;
  remotePort: number;
  start: boolean;
  keyingtries?: number;
  cert: string;
  id: string;
}

/** `daemonExtra` lines (`key: value`) replace the defaults of the same key. */
function yaml(dir: string, pki: PkiFiles, keys: string | string[], conns: ConnOpts[], daemonExtra: string[] = [], pidName = 'd'): string {
  const defaults = [`pid_file: ${join(dir, `${pidName}.pid`)}`, `control_socket: ${join(dir, `${pidName}.sock`)}`, 'bypass_rules: no', 'datapath: none'];
  const keyOf = (l: string): string => l.slice(0, l.indexOf(':'));
  const daemonLines = [...defaults.filter((d) => !daemonExtra.some((e) => keyOf(e) === keyOf(d))), ...daemonExtra];
  return [
    'daemon:',
    ...daemonLines.map((l) => `  ${l}`),
    'authorities:',
    `  cacerts: [${pki.caCert}]`,
    'secrets:',
    ...[keys].flat().flatMap((key, i) => [`  private-key${i}:`, `    file: ${key}`]),
    'connections:',
    ...conns.flatMap((o) => [
      `  ${o.name}:`,
      `    local_addrs: "${o.local}"`,
      `    remote_addrs: "${o.remote}"`,
      `    local_port: ${o.localPort}`,
      `    remote_port: ${o.remotePort}`,
      `    keyingtries: ${o.keyingtries ?? 1}`,
      '    proposals: aes256gcm16-prfsha256-ecp256!',
      '    local:',
      `      certs: [${o.cert}]`,
      `      id: ${o.id}`,
      '    children:',
      '      host:',
      '        esp_proposals: aes256gcm16!',
      `        start_action: ${o.start ? 'start' : 'none'}`,
    ]),
    '',
  ].join('\n');
}

/** The SPIs of an IKE SA and its CHILD_SAs. */
function spis(sa: IkeSa): string {
  return [sa.ctx.spiI.toString('hex'), sa.ctx.spiR.toString('hex'), ...sa.ctx.children.map((c) => `${c.inboundSpi}/${c.outboundSpi}`)].join(' ');
}

function established(d: Daemon, name: string): IkeSa[] {
  return (d.manager?.sas ?? []).filter((sa) => sa.ctx.config.name === name && sa.state === 'established');
}

describe('reload plan (pure)', () => {
  const dirs: Array<ReturnType<typeof tempDir>> = [];
  afterEach(() => dirs.splice(0).forEach((d) => d.remove()));

  it('sorts connections into kept, renewed, added, removed and replaced, keeps reqids of kept ones, and reports daemon settings', () => {
    const dir = tempDir();
    dirs.push(dir);
    const pki = writePki(dir.path);
    const a = pki.host('a.tunsec.test');
    const conn = (name: string, extra: Partial<ConnOpts> = {}): ConnOpts => ({
      name,
      local: '127.0.0.1',
      remote: '127.0.0.2',
      localPort: 500,
      remotePort: 500,
      start: false,
      cert: a.cert,
      id: 'a.tunsec.test',
      ...extra,
    });
    const load = (text: string) => {
      const file = join(dir.path, `c${Math.random()}.yaml`);
      writeFileSync(file, text);
      const config = loadConfigOrThrow({ path: file });
      const creds = resolveCredentials(config);
      expect(creds.errors).toEqual([]);
      return { config, connections: creds.connections };
    };
    const before = load(yaml(dir.path, pki, a.key, [conn('keep'), conn('gone'), conn('change'), conn('renew')]));
    // A renewed certificate and key at the same paths, for `renew` only.
    const b = pki.host('b.tunsec.test');
    const after = load(
      yaml(
        dir.path,
        pki,
        [a.key, b.key],
        [conn('new'), conn('change', { keyingtries: 3 }), conn('keep'), conn('renew', { cert: b.cert, id: 'b.tunsec.test' })],
        ['log: { default: 2 }', 'tun_name: other0'],
      ),
    );
    const plan = planReload(before, after);
    expect(plan.kept).toEqual(['keep']);
    expect(plan.added).toEqual(['new']);
    expect(plan.removed).toEqual(['gone']);
    expect(plan.replaced.sort()).toEqual(['change', 'renew']);
    expect(plan.applied).toEqual(['daemon.log']);
    expect(plan.restart).toHaveLength(1);
    expect(plan.restart[0]).toMatch(/^daemon\.tun_name: changed from tunsec0 to other0; needs a restart/);

    const keepBefore = before.connections.find((c) => c.name === 'keep')!.entry.config.children[0]!.reqid;
    carryReqids(before.connections, after.connections, plan.kept);
    const reqid = (name: string): number => after.connections.find((c) => c.name === name)!.entry.config.children[0]!.reqid!;
    expect(reqid('keep')).toBe(keepBefore);
    const old = before.connections.map((c) => c.entry.config.children[0]!.reqid!);
    expect(old).not.toContain(reqid('new'));
    expect(old).not.toContain(reqid('change'));
    expect(new Set([reqid('new'), reqid('change'), reqid('renew'), reqid('keep')]).size).toBe(4);
  });

  it('marks a kept connection renewed when its certificate file holds a new certificate', () => {
    const dir = tempDir();
    dirs.push(dir);
    const pki = writePki(dir.path);
    const a = pki.host('a.tunsec.test');
    const file = join(dir.path, 'c.yaml');
    const text = yaml(dir.path, pki, a.key, [
      { name: 'x', local: '127.0.0.1', remote: '127.0.0.2', localPort: 500, remotePort: 500, start: false, cert: a.cert, id: 'a.tunsec.test' },
    ]);
    writeFileSync(file, text);
    const load = () => {
      const config = loadConfigOrThrow({ path: file });
      return { config, connections: resolveCredentials(config).connections };
    };
    const before = load();
    expect(planReload(before, load())).toMatchObject({ kept: ['x'], renewed: [], restart: [], applied: [] });
    pki.host('a.tunsec.test'); // same paths, new key and certificate
    const plan = planReload(before, load());
    expect(plan).toMatchObject({ kept: ['x'], renewed: ['x'], replaced: [], added: [], removed: [] });
    expect(summarizeReload({ ok: true, errors: [], warnings: [], ...plan })).toBe('configuration reloaded: kept x (credentials renewed)');
  });

  it('stableKey ignores key order and handles buffers and bigints', () => {
    expect(stableKey({ a: 1, b: [Buffer.from([1, 2])], c: 5n })).toBe(stableKey({ c: 5n, b: [Buffer.from([1, 2])], a: 1 }));
    expect(stableKey({ a: Buffer.from([1]) })).not.toBe(stableKey({ a: Buffer.from([2]) }));
  });
});

describe('reload (two daemons in process)', () => {
  const daemons: Daemon[] = [];
  const dirs: Array<ReturnType<typeof tempDir>> = [];
  afterEach(async () => {
    await Promise.all(daemons.splice(0).map((d) => d.stop('test over')));
    for (const d of dirs.splice(0)) d.remove();
  });

  async function pairUp(control = false, moonExtra: string[] = []) {
    const dir = tempDir();
    dirs.push(dir);
    const pki = writePki(dir.path);
    const sunPort = await freePort(['127.0.0.1']);
    const sunNatt = await freePort(['127.0.0.1'], [sunPort]);
    const moonPort = await freePort(['127.0.0.2'], [sunPort, sunNatt]);
    const moonNatt = await freePort(['127.0.0.2'], [sunPort, sunNatt, moonPort]);
    const sunHost = pki.host('sun.tunsec.test');
    const moonHost = pki.host('moon.tunsec.test');
    const sun = daemon({ nattPort: sunNatt });
    const moon = daemon({ nattPort: moonNatt, control, retryDelayMs: { initial: 50, max: 100 } });
    daemons.push(sun.d, moon.d);
    const sunConn: ConnOpts = {
      name: 'sun',
      local: '127.0.0.1',
      remote: '%any',
      localPort: sunPort,
      remotePort: moonPort,
      start: false,
      cert: sunHost.cert,
      id: 'sun.tunsec.test',
    };
    const moonConn: ConnOpts = {
      name: 'moon',
      local: '127.0.0.2',
      remote: '127.0.0.1',
      localPort: moonPort,
      remotePort: sunPort,
      start: true,
      cert: moonHost.cert,
      id: 'moon.tunsec.test',
    };
    const sunFile = join(dir.path, 'sun.yaml');
    const moonFile = join(dir.path, 'moon.yaml');
    writeFileSync(sunFile, yaml(dir.path, pki, sunHost.key, [sunConn], [], 'sun'));
    const moonYaml = (conns: ConnOpts[], extra: string[] = []): string => yaml(dir.path, pki, moonHost.key, conns, extra, 'moon');
    writeFileSync(moonFile, moonYaml([moonConn], moonExtra));
    await sun.d.start(sunFile);
    await moon.d.start(moonFile);
    await moon.wait((l) => l.event === 'child_established', 'child_established');
    await sun.wait((l) => l.event === 'child_established', 'child_established');
    return { dir, pki, sun, moon, moonFile, moonYaml, moonConn, moonHost, sunPort, moonPort };
  }

  it('keeps an unchanged connection SAs (same SPIs) through a reload with a renewed certificate, used from the next authentication', async () => {
    const { pki, sun, moon, moonFile, moonYaml, moonConn, moonHost } = await pairUp();
    const [sa] = established(moon.d, 'moon');
    expect(sa).toBeDefined();
    const before = spis(sa!);
    const sunBefore = spis(established(sun.d, 'sun')[0]!);
    const oldCert = sa!.ctx.config.certificate!.fingerprint;

    // Renew moon's certificate and key in place, and add a connection.
    const renewed = pki.host('moon.tunsec.test');
    expect(renewed.cert).toBe(moonHost.cert);
    writeFileSync(moonFile, moonYaml([moonConn, { ...moonConn, name: 'extra', start: false }]));
    const r = await moon.d.reload();
    expect(r).toMatchObject({ ok: true, kept: ['moon'], renewed: ['moon'], added: ['extra'], removed: [], replaced: [], restart: [] });
    const ev = await moon.wait((l) => l.event === 'config_reloaded', 'config_reloaded');
    expect(ev).toMatchObject({ kept: ['moon'], added: ['extra'], renewed: ['moon'] });

    // The SAs stay: same SPIs on both sides, same config object on the SA; new SAs get the new one.
    expect(established(moon.d, 'moon').map(spis)).toEqual([before]);
    expect(established(sun.d, 'sun').map(spis)).toEqual([sunBefore]);
    expect(established(moon.d, 'moon')[0]!.ctx.config.certificate!.fingerprint).toBe(oldCert);
    expect(moon.d.connectionList.map((c) => c.name)).toEqual(['moon', 'extra']);
    const newCert = moon.d.connectionList[0]!.entry.config.certificate!.fingerprint;
    expect(newCert).not.toBe(oldCert);
    // reqids of the kept connection are unchanged; the added one gets a fresh one
    expect(moon.d.connectionList[0]!.entry.config.children[0]!.reqid).toBe(sa!.ctx.children[0]!.reqid);
    expect(moon.d.connectionList[1]!.entry.config.children[0]!.reqid).not.toBe(sa!.ctx.children[0]!.reqid);

    // The next authentication uses the renewed certificate (and sun accepts it).
    await moon.d.down('moon', 3000);
    const { sa: fresh } = await moon.d.up('moon', 10_000);
    expect(fresh.ctx.config.certificate!.fingerprint).toBe(newCert);
    const sunSa = established(sun.d, 'sun').find((s) => s.ctx.spiI.equals(fresh.ctx.spiI));
    expect(sunSa?.ctx.peerCertificate?.fingerprint).toBe(newCert);
  });

  it('watch_credentials: a certificate and key renewed in place are reloaded without an operator, the SAs stay, the next authentication uses them, and an edit of the configuration file is not applied with them', async () => {
    const { pki, sun, moon, moonFile, moonYaml, moonConn } = await pairUp(false, ['watch_credentials: 1']);
    const [sa] = established(moon.d, 'moon');
    const before = spis(sa!);
    const oldCert = sa!.ctx.config.certificate!.fingerprint;

    // An edit the operator has not asked to apply yet, then the renewal (as an ACME client would write it).
    writeFileSync(moonFile, moonYaml([moonConn, { ...moonConn, name: 'extra', start: false }], ['watch_credentials: 1']));
    pki.host('moon.tunsec.test');
    const ev = await moon.wait((l) => l.event === 'config_reloaded', 'config_reloaded after the renewal', 15_000);
    expect(ev).toMatchObject({ kept: ['moon'], renewed: ['moon'], added: [], removed: [], replaced: [] });
    expect(moon.lines.some((l) => /credential files changed \(.*moon.*\): reloading the credentials/.test(l.msg))).toBe(true);
    expect(moon.d.connectionList.map((c) => c.name)).toEqual(['moon']);
    expect(established(moon.d, 'moon').map(spis)).toEqual([before]);
    const newCert = moon.d.connectionList[0]!.entry.config.certificate!.fingerprint;
    expect(newCert).not.toBe(oldCert);

    await moon.d.down('moon', 3000);
    const { sa: fresh } = await moon.d.up('moon', 10_000);
    expect(fresh.ctx.config.certificate!.fingerprint).toBe(newCert);
    expect(established(sun.d, 'sun').find((s) => s.ctx.spiI.equals(fresh.ctx.spiI))?.ctx.peerCertificate?.fingerprint).toBe(newCert);
  });

  it('rejects an invalid configuration with every problem, logs it, and keeps running with the old one', async () => {
    const { dir, moon, moonFile, moonYaml, moonConn } = await pairUp();
    const before = established(moon.d, 'moon').map(spis);
    const good = moonYaml([moonConn]);
    // A missing certificate file, a second connection without remote_addrs.
    writeFileSync(moonFile, moonYaml([{ ...moonConn, cert: join(dir.path, 'nope.pem') }]));
    let r = await moon.d.reload();
    expect(r.ok).toBe(false);
    expect(r.errors.join('\n')).toMatch(/connection moon: local\.certs: .*nope\.pem/);
    writeFileSync(moonFile, `${good.replace('    remote_addrs: "127.0.0.1"\n', '')}  other:\n    remote_addrs: 1.2.3.4\n    local_port: 77777\n`);
    r = await moon.d.reload();
    expect(r.ok).toBe(false);
    expect(r.errors.length).toBeGreaterThanOrEqual(2);
    expect(r.errors.join('\n')).toMatch(/moon\.yaml: line \d+: connections\.moon\.remote_addrs/);
    expect(r.errors.join('\n')).toMatch(/local_port/);
    const failed = moon.lines.filter((l) => l.event === 'config_reload_failed');
    expect(failed).toHaveLength(2);
    expect(moon.lines.some((l) => l.level === 'error' && l.subsys === 'cfg' && /nope\.pem/.test(l.msg))).toBe(true);
    // Still running with the old configuration and SAs.
    expect(moon.d.running).toBe(true);
    expect(moon.d.connectionList.map((c) => c.name)).toEqual(['moon']);
    expect(established(moon.d, 'moon').map(spis)).toEqual(before);
    // And a good configuration afterwards reloads fine, keeping the SAs.
    writeFileSync(moonFile, good);
    r = await moon.d.reload();
    expect(r).toMatchObject({ ok: true, kept: ['moon'], renewed: [] });
    expect(established(moon.d, 'moon').map(spis)).toEqual(before);
  });

  it('replaces a changed connection (its SAs deleted, initiated again), removes a dropped one, and reports settings needing a restart', async () => {
    const { dir, moon, sun, moonFile, moonYaml, moonConn } = await pairUp();
    const before = established(moon.d, 'moon').map(spis);
    writeFileSync(moonFile, moonYaml([{ ...moonConn, keyingtries: 3 }], ['pid_file: /tmp/elsewhere.pid', 'log: { ike: 2 }']));
    const r = await moon.d.reload();
    expect(r).toMatchObject({ ok: true, kept: [], replaced: ['moon'], applied: ['daemon.log'] });
    expect(r.restart.join('\n')).toMatch(/daemon\.pid_file: changed from .*moon\.pid to \/tmp\/elsewhere\.pid; needs a restart/);
    expect(moon.d.settings?.pid_file).toBe(join(dir.path, 'moon.pid'));
    expect(moon.lines.some((l) => l.event === 'ike_destroyed' && /connection changed \(reload\)/.test(String(l.reason ?? l.msg)))).toBe(true);
    // start_action start: initiated again with new SPIs
    const deadline = Date.now() + 10_000;
    while (established(moon.d, 'moon').length === 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
    const after = established(moon.d, 'moon').map(spis);
    expect(after).toHaveLength(1);
    expect(after).not.toEqual(before);
    expect(moon.d.connectionList[0]!.keyingtries).toBe(3);

    // Remove it: its SA is deleted, the peer hears of it.
    writeFileSync(moonFile, moonYaml([{ ...moonConn, name: 'other', start: false }], ['pid_file: /tmp/elsewhere.pid', 'log: { ike: 2 }']));
    const r2 = await moon.d.reload();
    expect(r2).toMatchObject({ ok: true, removed: ['moon'], added: ['other'], applied: [] });
    expect((moon.d.manager?.sas ?? []).filter((s) => s.state !== 'destroyed')).toHaveLength(0);
    await sun.wait((l) => l.event === 'ike_destroyed', 'sun ike_destroyed');
    expect(moon.d.connectionList.map((c) => c.name)).toEqual(['other']);
  });

  it('tunsec reload over the control socket lists kept/added/removed/replaced; a bad configuration exits 1 with the problems', async () => {
    const { dir, moon, moonFile, moonYaml, moonConn } = await pairUp(true);
    const sock = join(dir.path, 'moon.sock');
    const before = established(moon.d, 'moon').map(spis);
    writeFileSync(moonFile, moonYaml([moonConn, { ...moonConn, name: 'extra', start: false }]));
    const out: string[] = [];
    const err: string[] = [];
    const io = { out: (t: string) => void out.push(t), err: (t: string) => void err.push(t) };
    expect(await main(['reload', '--socket', sock], io)).toBe(0);
    expect(out.join('')).toMatch(/^configuration reloaded: kept moon; added extra\n {2}kept: moon\n {2}added: extra\n/);
    expect(established(moon.d, 'moon').map(spis)).toEqual(before);

    out.length = 0;
    expect(await main(['reload', '--socket', sock, '--json'], io)).toBe(0);
    expect(JSON.parse(out.join(''))).toMatchObject({ ok: true, kept: ['moon', 'extra'], added: [] });

    writeFileSync(moonFile, moonYaml([{ ...moonConn, cert: join(dir.path, 'missing.pem') }]));
    expect(await main(['reload', '--socket', sock], io)).toBe(1);
    expect(err.join('')).toMatch(/configuration not reloaded: 1 problem; the running configuration stays\n {2}connection moon: local\.certs: .*missing\.pem/);
    expect(moon.d.connectionList.map((c) => c.name)).toEqual(['moon', 'extra']);
    expect(established(moon.d, 'moon').map(spis)).toEqual(before);
  });
});
