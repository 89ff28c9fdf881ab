/**
 * TunRoutes against the real kernel, in a network namespace of its own: the
 * flows a policy selects are routed into the device, the others and tunsec's
 * own marked packets follow the main table, and nothing is left behind.
 *
 * The "TUN device" is one end of a veth pair: a TUN device nobody has opened
 * has no carrier, and IPv6 then ignores the routes through it. The kernel's
 * routing decision is what is under test, asked with `ip route get`.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TrafficSelector } from '../../src/esp/api.js';
import { type RunIp, type Sysctl, TunRoutes } from '../../src/daemon/routes.js';
import { must, requireRootAndPrograms, run } from '../support/proc.js';

const ns = `tsroutes-${randomBytes(3).toString('hex')}`;
const MARK = 0x100;

const ip: RunIp = (args) => run('ip', ['-n', ns, ...args]);
const sysctl: Sysctl = async (path, value) => {
  const r = await run('ip', ['netns', 'exec', ns, 'sysctl', ...(value === undefined ? ['-n', path] : ['-w', `${path}=${value}`])]);
  return r.code === 0 ? (value ?? r.stdout.trim()) : new Error(r.stderr.trim());
};
const newRoutes = () => new TunRoutes({ tunName: 'tunsec0', fwmark: MARK, ip, sysctl });

const ts = (startAddress: string, endAddress = startAddress, protocol = 0, startPort = 0, endPort = 0xffff): TrafficSelector => ({
  protocol,
  startAddress,
  endAddress,
  startPort,
  endPort,
});
const hostV4 = ts('192.0.2.1');
const hostV6 = ts('2001:db8::1');

/** The device `ip route get` picks for a destination and flow keys (`ipproto tcp dport 80`, `mark 0x100`). */
async function deviceFor(address: string, ...keys: string[]): Promise<string> {
  const r = await ip(['route', 'get', address, ...keys]);
  if (r.code !== 0) throw new Error(`ip route get ${address} ${keys.join(' ')}: ${r.stderr}`);
  return / dev (\S+)/.exec(r.stdout)?.[1] ?? r.stdout;
}

/** Our rules (at the mark and TUN preferences) and the routes of table 220, both families, as text. */
async function leftovers(): Promise<string[]> {
  const found: string[] = [];
  for (const family of ['-4', '-6']) {
    const rules = JSON.parse(await must('ip', ['-n', ns, family, '-j', 'rule', 'show'])) as { priority: number; table: string }[];
    for (const r of rules) if ((r.priority === 220 && r.table === '220') || r.priority === 210) found.push(`${family} rule ${JSON.stringify(r)}`);
    const table = await ip([family, 'route', 'show', 'table', '220']);
    if (table.code !== 0 && !/does not exist/.test(table.stderr)) throw new Error(table.stderr);
    if (table.stdout.trim()) found.push(`${family} table 220: ${table.stdout.trim()}`);
  }
  return found;
}

describe('TunRoutes in a network namespace', () => {
  beforeAll(async () => {
    requireRootAndPrograms('routes-netns', ['ip', 'sysctl']);
    await must('ip', ['netns', 'add', ns]);
    const setup = [
      ['link', 'set', 'lo', 'up'],
      ['link', 'add', 'tunsec0', 'type', 'veth', 'peer', 'name', 'tunsec0p'],
      ['link', 'add', 'wan0', 'type', 'veth', 'peer', 'name', 'wan0p'],
      ...['tunsec0', 'tunsec0p', 'wan0', 'wan0p'].map((dev) => ['link', 'set', dev, 'up']),
      ['addr', 'add', '192.0.2.1/24', 'dev', 'wan0'],
      ['-6', 'addr', 'add', '2001:db8::1/64', 'dev', 'wan0', 'nodad'],
      ['route', 'add', 'default', 'via', '192.0.2.254'],
      ['-6', 'route', 'add', 'default', 'via', '2001:db8::fe'],
    ];
    for (const args of setup) await must('ip', ['-n', ns, ...args]);
  });

  afterAll(async () => {
    await run('ip', ['netns', 'del', ns]);
  });

  it('sends the selected flows into the device and the others, and marked packets, through the main table', async () => {
    const routes = newRoutes();
    try {
      expect(await routes.start()).toEqual([]);
      const problems = [
        ...(await routes.addPolicy('web', {
          local: [hostV4, hostV6],
          remote: [ts('10.1.0.0', '10.1.0.255', 6, 80, 80), ts('fd01::', 'fd01::ffff:ffff:ffff:ffff', 17, 53, 53)],
          localAddress: '192.0.2.1',
        })),
        ...(await routes.addPolicy('range', { local: [hostV4], remote: [ts('10.1.1.1', '10.1.1.6')] })),
        ...(await routes.addPolicy('sport', { local: [ts('192.0.2.1', '192.0.2.1', 6, 5000, 5001)], remote: [ts('10.3.0.0', '10.3.0.255')] })),
      ];
      expect(problems).toEqual([]);

      expect(await deviceFor('10.1.0.5', 'ipproto', 'tcp', 'dport', '80')).toBe('tunsec0');
      expect((await ip(['route', 'get', '10.1.0.5', 'ipproto', 'tcp', 'dport', '80'])).stdout).toContain('src 192.0.2.1');
      expect(await deviceFor('10.1.0.5', 'ipproto', 'tcp', 'dport', '81')).toBe('wan0');
      expect(await deviceFor('10.1.0.5', 'ipproto', 'udp', 'dport', '80')).toBe('wan0');
      expect(await deviceFor('10.2.0.5', 'ipproto', 'tcp', 'dport', '80')).toBe('wan0');

      expect(await deviceFor('fd01::5', 'ipproto', 'udp', 'dport', '53')).toBe('tunsec0');
      expect(await deviceFor('fd01::5', 'ipproto', 'tcp', 'dport', '53')).toBe('wan0');
      expect(await deviceFor('fd02::5', 'ipproto', 'udp', 'dport', '53')).toBe('wan0');

      for (const inside of ['10.1.1.1', '10.1.1.2', '10.1.1.5', '10.1.1.6']) expect(await deviceFor(inside), inside).toBe('tunsec0');
      for (const outside of ['10.1.1.0', '10.1.1.7']) expect(await deviceFor(outside), outside).toBe('wan0');

      expect(await deviceFor('10.3.0.1', 'ipproto', 'tcp', 'sport', '5001', 'dport', '9')).toBe('tunsec0');
      expect(await deviceFor('10.3.0.1', 'ipproto', 'tcp', 'sport', '5002', 'dport', '9')).toBe('wan0');
      expect(await deviceFor('10.3.0.1', 'ipproto', 'udp', 'sport', '5001', 'dport', '9')).toBe('wan0');

      expect(await deviceFor('10.1.0.5', 'ipproto', 'tcp', 'dport', '80', 'mark', '0x100')).toBe('wan0');
      expect(await deviceFor('10.1.0.5', 'ipproto', 'tcp', 'dport', '80', 'mark', '0x300')).toBe('wan0');
      expect(await deviceFor('10.1.0.5', 'ipproto', 'tcp', 'dport', '80', 'mark', '0x200')).toBe('tunsec0');
      expect(await deviceFor('fd01::5', 'ipproto', 'udp', 'dport', '53', 'mark', '0x100')).toBe('wan0');

      expect(await sysctl('net/ipv4/conf/tunsec0/rp_filter')).toBe('0');
    } finally {
      expect(await routes.stop()).toEqual([]);
    }
    expect(await leftovers()).toEqual([]);
    expect(await deviceFor('10.1.0.5', 'ipproto', 'tcp', 'dport', '80')).toBe('wan0');
    expect(await deviceFor('fd01::5', 'ipproto', 'udp', 'dport', '53')).toBe('wan0');
  });

  it("keeps a rule two policies share until both are gone, and removing a broad rule leaves another policy's narrower one", async () => {
    const routes = newRoutes();
    const web = { local: [hostV4], remote: [ts('10.1.0.0', '10.1.0.255', 6, 80, 80)] };
    const all = { local: [hostV4], remote: [ts('10.1.0.0', '10.1.0.255')] };
    try {
      expect(await routes.start()).toEqual([]);
      expect([...(await routes.addPolicy('web', web)), ...(await routes.addPolicy('all', all)), ...(await routes.addPolicy('web-again', web))]).toEqual([]);
      expect(await deviceFor('10.1.0.5', 'ipproto', 'udp', 'dport', '80')).toBe('tunsec0');

      expect(await routes.removePolicy('all')).toEqual([]);
      expect(await deviceFor('10.1.0.5', 'ipproto', 'tcp', 'dport', '80')).toBe('tunsec0');
      expect(await deviceFor('10.1.0.5', 'ipproto', 'udp', 'dport', '80')).toBe('wan0');

      expect(await routes.removePolicy('web')).toEqual([]);
      expect(await deviceFor('10.1.0.5', 'ipproto', 'tcp', 'dport', '80')).toBe('tunsec0');

      expect(await routes.removePolicy('web-again')).toEqual([]);
      expect(await deviceFor('10.1.0.5', 'ipproto', 'tcp', 'dport', '80')).toBe('wan0');
      expect(routes.installed().rules).toEqual([]);
    } finally {
      expect(await routes.stop()).toEqual([]);
    }
    expect(await leftovers()).toEqual([]);
  });

  it("a second start after a crash (no stop) removes the stale rules and routes, keeps one mark rule, and leaves others' rules alone", async () => {
    await must('ip', ['-n', ns, 'rule', 'add', 'pref', '220', 'to', '10.9.0.0/24', 'lookup', 'main']);
    const crashed = newRoutes();
    expect(await crashed.start()).toEqual([]);
    expect(
      await crashed.addPolicy('p', {
        local: [hostV4, hostV6],
        remote: [ts('10.1.0.0', '10.1.0.255', 6, 80, 80), ts('10.1.2.0', '10.1.2.255'), ts('fd01::1', 'fd01::8')],
      }),
    ).toEqual([]);
    expect((await leftovers()).length).toBeGreaterThan(5);

    const restarted = newRoutes();
    try {
      expect(await restarted.start()).toEqual([]);
      expect(await leftovers()).toEqual([
        '-4 rule {"priority":210,"src":"all","fwmark":"0x100","fwmask":"0x100","table":"main"}',
        '-6 rule {"priority":210,"src":"all","fwmark":"0x100","fwmask":"0x100","table":"main"}',
      ]);
      expect(await deviceFor('10.1.0.5', 'ipproto', 'tcp', 'dport', '80')).toBe('wan0');
      expect(await deviceFor('10.1.2.5')).toBe('wan0');
      expect(await deviceFor('fd01::1')).toBe('wan0');
      const others = JSON.parse(await must('ip', ['-n', ns, '-j', 'rule', 'show'])) as { priority: number; dst?: string; table: string }[];
      expect(others).toContainEqual(expect.objectContaining({ priority: 220, dst: '10.9.0.0', table: 'main' }));
    } finally {
      expect(await restarted.stop()).toEqual([]);
      await run('ip', ['-n', ns, 'rule', 'del', 'pref', '220', 'to', '10.9.0.0/24', 'lookup', 'main']);
    }
    expect(await leftovers()).toEqual([]);
  });

  it('the backstop refuses the selected flows once the TUN routes are gone (EACCES, never the main table), a restart adopts every rule and route of it as the kernel prints them, and stop leaves nothing', async () => {
    const backstop = () => new TunRoutes({ tunName: 'tunsec0', table: 221, rulePref: 221, backstop: true, ip, sysctl });
    const policies = {
      hosts: { local: [hostV4, hostV6], remote: [ts('10.1.0.0', '10.1.0.255', 6, 80, 80), ts('10.1.3.0', '10.1.3.255'), ts('fd01::1', 'fd01::8')] },
      udp: { local: [ts('192.0.2.1', '192.0.2.1', 17, 1000, 2000)], remote: [ts('10.1.2.7')] },
    };
    const tun = newRoutes();
    const first = backstop();
    expect(await tun.start()).toEqual([]);
    expect(await first.start()).toEqual([]);
    for (const [key, policy] of Object.entries(policies)) {
      expect(await first.addPolicy(key, policy)).toEqual([]);
      expect(await tun.addPolicy(key, policy)).toEqual([]);
    }
    // While the TUN routes exist they answer first.
    expect(await deviceFor('10.1.3.5')).toBe('tunsec0');
    expect(await deviceFor('fd01::2')).toBe('tunsec0');
    // The device's routes are gone (the daemon died): the backstop refuses what the main table would send.
    await must('ip', ['-n', ns, 'route', 'flush', 'table', '220']);
    await must('ip', ['-n', ns, '-6', 'route', 'flush', 'table', '220']);
    for (const [address, keys] of [
      ['10.1.3.5', []],
      ['10.1.0.9', ['ipproto', 'tcp', 'dport', '80']],
      ['10.1.2.7', ['ipproto', 'udp', 'sport', '1500']],
      ['fd01::2', []],
    ] as const) {
      const r = await ip(['route', 'get', address, ...keys]);
      expect(`${address} ${r.code} ${r.stderr}`).toMatch(/ 2 .*Permission denied/);
    }
    expect(await deviceFor('10.1.0.9', 'ipproto', 'tcp', 'dport', '443')).toBe('wan0');
    expect(await deviceFor('10.1.2.7', 'ipproto', 'udp', 'sport', '3000')).toBe('wan0');
    const installed = first.installed();

    const second = backstop();
    expect(await second.start()).toEqual([]);
    expect(second.leftovers).toEqual({ rules: installed.rules.length, routes: installed.routes.length });
    for (const [key, policy] of Object.entries(policies)) expect(await second.addPolicy(key, policy)).toEqual([]);
    expect(second.leftovers).toEqual({ rules: 0, routes: 0 });
    // the same rules, in the kernel's order (IPv4 before IPv6) rather than the order they were added
    const text = (rules: { args: string[] }[]) => rules.map((r) => r.args.join(' ')).sort();
    expect(text(second.installed().rules)).toEqual(text(installed.rules));
    expect(await second.stop()).toEqual([]);
    await tun.stop(); // its rules; its routes were flushed above (reported as missing)
    for (const family of ['-4', '-6']) {
      expect((await ip([family, 'rule', 'show', 'pref', '221'])).stdout.trim()).toBe('');
      expect((await ip([family, 'route', 'show', 'table', '221'])).stdout.trim()).toBe('');
    }
    expect(await leftovers()).toEqual([]);
  });

  it('warns that decrypted packets could be dropped when net.ipv4.conf.all.rp_filter is strict', async () => {
    await sysctl('net/ipv4/conf/tunsec0/rp_filter', '1');
    await sysctl('net/ipv4/conf/all/rp_filter', '1');
    const routes = newRoutes();
    try {
      const problems = await routes.start();
      expect(problems).toEqual([expect.stringMatching(/all\.rp_filter is 1 .*decrypted packets/)]);
      expect(await sysctl('net/ipv4/conf/tunsec0/rp_filter')).toBe('0');
    } finally {
      await routes.stop();
      await sysctl('net/ipv4/conf/all/rp_filter', '0');
    }
  });
});
