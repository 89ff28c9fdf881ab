import { describe, expect, it } from 'vitest';
import type { TrafficSelector } from '../../src/esp/api.js';
import { type OutboundPolicy, type RunIp, type Sysctl, TunRoutes, routingRulesFor } from '../../src/daemon/routes.js';

const ts = (startAddress: string, endAddress = startAddress, protocol = 0, startPort = 0, endPort = 0xffff): TrafficSelector => ({
  protocol,
  startAddress,
  endAddress,
  startPort,
  endPort,
});
const anyV4 = ts('0.0.0.0', '255.255.255.255');
const anyV6 = ts('::', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff');
const place = { tunName: 'tunsec0' };
const rulesOf = (policy: OutboundPolicy) => routingRulesFor(policy, place).rules.map((r) => r.add.join(' '));
const routesOf = (policy: OutboundPolicy) => routingRulesFor(policy, place).routes.map((r) => r.replace.join(' '));

describe('routingRulesFor', () => {
  it('a TCP port-80 selector becomes a rule with ipproto 6 (TCP) dport 80', () => {
    expect(rulesOf({ local: [anyV4], remote: [ts('10.1.0.0', '10.1.0.255', 6, 80, 80)] })).toEqual([
      '-4 rule add pref 220 to 10.1.0.0/24 ipproto 6 dport 80 lookup 220',
    ]);
  });

  it('an any-protocol, any-port selector becomes a rule on the destination prefix alone', () => {
    expect(rulesOf({ local: [anyV4], remote: [ts('10.1.0.7')] })).toEqual(['-4 rule add pref 220 to 10.1.0.7/32 lookup 220']);
  });

  it('an address range becomes one rule and one route per prefix of its cover', () => {
    const policy = { local: [anyV4], remote: [ts('10.0.0.1', '10.0.0.6', 17)] };
    expect(rulesOf(policy)).toEqual(
      ['10.0.0.1/32', '10.0.0.2/31', '10.0.0.4/31', '10.0.0.6/32'].map((p) => `-4 rule add pref 220 to ${p} ipproto 17 lookup 220`),
    );
    expect(routesOf(policy)).toEqual(['10.0.0.1/32', '10.0.0.2/31', '10.0.0.4/31', '10.0.0.6/32'].map((p) => `-4 route replace ${p} dev tunsec0 table 220`));
  });

  it('a local selector that narrows ports adds sport, and a port range is written a-b', () => {
    expect(rulesOf({ local: [ts('10.0.0.1', '10.0.0.1', 6, 1024, 2048)], remote: [ts('10.1.0.0', '10.1.0.255', 0, 443, 443)] })).toEqual([
      '-4 rule add pref 220 to 10.1.0.0/24 ipproto 6 dport 443 sport 1024-2048 lookup 220',
    ]);
  });

  it('a protocol named on either side applies to the pair, and no rule pairs two different protocols', () => {
    const policy = { local: [ts('10.0.0.1', '10.0.0.1', 17, 53, 53), ts('10.0.0.1', '10.0.0.1', 6)], remote: [ts('10.1.0.1', '10.1.0.1', 6, 80, 80)] };
    expect(rulesOf(policy)).toEqual(['-4 rule add pref 220 to 10.1.0.1/32 ipproto 6 dport 80 lookup 220']);
    expect(rulesOf({ local: [ts('10.0.0.1', '10.0.0.1', 17, 53, 53)], remote: [ts('10.1.0.1')] })).toEqual([
      '-4 rule add pref 220 to 10.1.0.1/32 ipproto 17 sport 53 lookup 220',
    ]);
  });

  it('ICMP and ICMPv6 selectors leave out their type/code "ports", which ip rule cannot match', () => {
    expect(rulesOf({ local: [anyV4], remote: [ts('10.1.0.1', '10.1.0.1', 1, 0x0800, 0x08ff)] })).toEqual([
      '-4 rule add pref 220 to 10.1.0.1/32 ipproto 1 lookup 220',
    ]);
    expect(rulesOf({ local: [ts('fd00::1', 'fd00::1', 58, 0x8000, 0x8000)], remote: [ts('fd01::1')] })).toEqual([
      '-6 rule add pref 220 to fd01::1/128 ipproto 58 lookup 220',
    ]);
  });

  it('OPAQUE ports leave the rule without ports (the SPD refines)', () => {
    expect(rulesOf({ local: [anyV4], remote: [ts('10.1.0.1', '10.1.0.1', 6, 0xffff, 0)] })).toEqual([
      '-4 rule add pref 220 to 10.1.0.1/32 ipproto 6 lookup 220',
    ]);
  });

  it('IPv6 rules and routes carry -6, and only selectors of one family are paired', () => {
    const policy = { local: [anyV4, anyV6], remote: [ts('fd01::', 'fd01::ffff:ffff:ffff:ffff', 6, 22, 22), ts('10.1.0.1')], localAddress: 'fd00::1' };
    expect(rulesOf(policy)).toEqual(['-6 rule add pref 220 to fd01::/64 ipproto 6 dport 22 lookup 220', '-4 rule add pref 220 to 10.1.0.1/32 lookup 220']);
    expect(routesOf(policy)).toEqual(['-6 route replace fd01::/64 dev tunsec0 src fd00::1 table 220', '-4 route replace 10.1.0.1/32 dev tunsec0 table 220']);
  });

  it('a local address becomes the src of routes of its family, in canonical text', () => {
    expect(routesOf({ local: [anyV4], remote: [ts('10.1.0.1')], localAddress: '10.0.0.1' })).toEqual([
      '-4 route replace 10.1.0.1/32 dev tunsec0 src 10.0.0.1 table 220',
    ]);
    expect(routesOf({ local: [anyV6], remote: [ts('fd01::1')], localAddress: 'FD00::0001' })).toEqual([
      '-6 route replace fd01::1/128 dev tunsec0 src fd00::1 table 220',
    ]);
  });

  it('never uses from: the rules select on the destination only', () => {
    const all = rulesOf({ local: [ts('10.0.0.1', '10.0.0.9', 6, 1, 1000)], remote: [ts('10.1.0.0', '10.1.3.255')] });
    expect(all.length).toBe(1);
    for (const rule of all) expect(rule.split(' ')).not.toContain('from');
  });

  it('takes another table and preference, and lists each rule and route once', () => {
    const r = routingRulesFor({ local: [anyV4, anyV4], remote: [ts('10.1.0.1'), ts('10.1.0.1')] }, { tunName: 'ts1', table: 300, rulePref: 301 });
    expect(r.rules.map((x) => x.add.join(' '))).toEqual(['-4 rule add pref 301 to 10.1.0.1/32 lookup 300']);
    expect(r.routes.map((x) => x.replace.join(' '))).toEqual(['-4 route replace 10.1.0.1/32 dev ts1 table 300']);
  });
});

/**
 * A fake `ip` that records every command, answers `rule show` with the given
 * lists, and keeps the rules added through it: deleting one that is not there
 * fails, as does any command `fail` names.
 */
function fakeIp(opts: { rules4?: object[]; rules6?: object[]; fail?: (cmd: string) => string | undefined } = {}) {
  const commands: string[] = [];
  const rules: string[] = [];
  const ip: RunIp = async (args) => {
    const cmd = args.join(' ');
    commands.push(cmd);
    const failure = opts.fail?.(cmd);
    if (failure !== undefined) return { code: 2, stdout: '', stderr: failure };
    if (cmd === '-4 -j rule show') return { code: 0, stdout: JSON.stringify(opts.rules4 ?? []), stderr: '' };
    if (cmd === '-6 -j rule show') return { code: 0, stdout: JSON.stringify(opts.rules6 ?? []), stderr: '' };
    const rule = [args[0], ...args.slice(3)].join(' ');
    if (args[1] === 'rule' && args[2] === 'add') rules.push(rule);
    if (args[1] === 'rule' && args[2] === 'del' && args.includes('fwmark')) {
      const at = rules.indexOf(rule);
      if (at === -1) return { code: 2, stdout: '', stderr: 'RTNETLINK answers: No such file or directory' };
      rules.splice(at, 1);
    }
    return { code: 0, stdout: '', stderr: '' };
  };
  return { ip, commands };
}

function fakeSysctl(all = '0') {
  const writes: string[] = [];
  const sysctl: Sysctl = async (path, value) => {
    if (value !== undefined) {
      writes.push(`${path}=${value}`);
      return value;
    }
    return path === 'net/ipv4/conf/all/rp_filter' ? all : new Error('no such sysctl');
  };
  return { sysctl, writes };
}

const tcp80 = { local: [anyV4], remote: [ts('10.1.0.0', '10.1.0.255', 6, 80, 80)] };
const anyTo10_1 = { local: [anyV4], remote: [ts('10.1.0.0', '10.1.0.255')] };

describe('TunRoutes', () => {
  it('start removes a crashed daemon’s rules at its preference and table, flushes the table, adds mark rules and turns rp_filter off', async () => {
    const { ip, commands } = fakeIp({
      rules4: [
        { priority: 0, src: 'all', table: 'local' },
        { priority: 220, src: 'all', dst: '10.1.0.0', dstlen: 24, table: '220' },
        { priority: 220, src: 'all', dst: '10.2.0.0', dstlen: 24, ipproto: 'tcp', dport: 80, table: '220' },
        { priority: 220, src: 'all', table: 'main' },
        { priority: 32766, src: 'all', table: 'main' },
      ],
      rules6: [{ priority: 220, src: 'all', dst: 'fd01::', dstlen: 64, table: '220' }],
    });
    const { sysctl, writes } = fakeSysctl('0');
    const routes = new TunRoutes({ tunName: 'tunsec0', fwmark: 0x100, ip, sysctl });
    expect(await routes.start()).toEqual([]);
    expect(commands).toEqual([
      '-4 -j rule show',
      '-4 rule del pref 220 lookup 220',
      '-4 rule del pref 220 lookup 220',
      '-4 route flush table 220',
      '-6 -j rule show',
      '-6 rule del pref 220 lookup 220',
      '-6 route flush table 220',
      '-4 rule del pref 210 fwmark 0x100/0x100 lookup main',
      '-4 rule add pref 210 fwmark 0x100/0x100 lookup main',
      '-6 rule del pref 210 fwmark 0x100/0x100 lookup main',
      '-6 rule add pref 210 fwmark 0x100/0x100 lookup main',
    ]);
    expect(writes).toEqual(['net/ipv4/conf/tunsec0/rp_filter=0']);
    expect(routes.installed().markRules.map((a) => a.join(' '))).toEqual([
      '-4 rule add pref 210 fwmark 0x100/0x100 lookup main',
      '-6 rule add pref 210 fwmark 0x100/0x100 lookup main',
    ]);
  });

  it('start adds no mark rules without a fwmark, and an IPv4 table that does not exist yet is no problem', async () => {
    const { ip, commands } = fakeIp({ fail: (cmd) => (cmd === '-4 route flush table 220' ? 'Error: ipv4: FIB table does not exist.' : undefined) });
    const routes = new TunRoutes({ tunName: 'tunsec0', ip, sysctl: fakeSysctl().sysctl });
    expect(await routes.start()).toEqual([]);
    expect(commands.filter((c) => c.includes('fwmark'))).toEqual([]);
  });

  it('start warns when net.ipv4.conf.all.rp_filter is strict, and reports ip failures instead of throwing', async () => {
    const { ip } = fakeIp({ fail: (cmd) => (cmd.startsWith('-6') ? 'RTNETLINK answers: Operation not permitted' : undefined) });
    const problems = await new TunRoutes({ tunName: 'tunsec0', fwmark: 1, ip, sysctl: fakeSysctl('1').sysctl }).start();
    expect(problems).toEqual([
      'ip -6 -j rule show: RTNETLINK answers: Operation not permitted',
      'ip -6 route flush table 220: RTNETLINK answers: Operation not permitted',
      'ip -6 rule add pref 210 fwmark 0x1/0x1 lookup main: RTNETLINK answers: Operation not permitted',
      expect.stringMatching(/^net\.ipv4\.conf\.all\.rp_filter is 1 \(strict\).*decrypted packets .* could be dropped/),
    ]);
  });

  it('addPolicy adds the table routes before the rules, and removePolicy deletes the rules before the routes', async () => {
    const { ip, commands } = fakeIp();
    const routes = new TunRoutes({ tunName: 'tunsec0', ip, sysctl: fakeSysctl().sysctl });
    expect(await routes.addPolicy('host-1', { ...tcp80, localAddress: '10.0.0.1' })).toEqual([]);
    expect(await routes.removePolicy('host-1')).toEqual([]);
    expect(commands).toEqual([
      '-4 route replace 10.1.0.0/24 dev tunsec0 src 10.0.0.1 table 220',
      '-4 rule add pref 220 to 10.1.0.0/24 ipproto 6 dport 80 lookup 220',
      '-4 rule del pref 220 to 10.1.0.0/24 ipproto 6 dport 80 lookup 220',
      '-4 route del 10.1.0.0/24 dev tunsec0 table 220',
    ]);
    expect(routes.installed()).toEqual({ policies: [], rules: [], routes: [], markRules: [] });
  });

  it('two policies sharing a rule and a route keep them until the last one is removed', async () => {
    const { ip, commands } = fakeIp();
    const routes = new TunRoutes({ tunName: 'tunsec0', ip, sysctl: fakeSysctl().sysctl });
    await routes.addPolicy('a', tcp80);
    await routes.addPolicy('b', tcp80);
    expect(commands.length).toBe(2);
    expect(routes.installed().rules).toEqual([
      { args: ['-4', 'rule', 'add', 'pref', '220', 'to', '10.1.0.0/24', 'ipproto', '6', 'dport', '80', 'lookup', '220'], refs: 2 },
    ]);
    await routes.removePolicy('a');
    expect(commands.length).toBe(2);
    await routes.removePolicy('b');
    expect(commands.slice(2)).toEqual(['-4 rule del pref 220 to 10.1.0.0/24 ipproto 6 dport 80 lookup 220', '-4 route del 10.1.0.0/24 dev tunsec0 table 220']);
  });

  it('deleting a broad rule first moves the narrower rules added before it (which its delete would match first) behind it', async () => {
    const { ip, commands } = fakeIp();
    const routes = new TunRoutes({ tunName: 'tunsec0', ip, sysctl: fakeSysctl().sysctl });
    await routes.addPolicy('web', tcp80);
    await routes.addPolicy('web-sport', { local: [ts('10.0.0.1', '10.0.0.1', 6, 5000, 5000)], remote: tcp80.remote });
    await routes.addPolicy('all', anyTo10_1);
    await routes.addPolicy('udp', { local: [anyV4], remote: [ts('10.1.0.0', '10.1.0.255', 17)] });
    commands.length = 0;
    await routes.removePolicy('all');
    expect(commands).toEqual([
      '-4 rule del pref 220 to 10.1.0.0/24 ipproto 6 dport 80 lookup 220',
      '-4 rule add pref 220 to 10.1.0.0/24 ipproto 6 dport 80 lookup 220',
      '-4 rule del pref 220 to 10.1.0.0/24 ipproto 6 dport 80 sport 5000 lookup 220',
      '-4 rule add pref 220 to 10.1.0.0/24 ipproto 6 dport 80 sport 5000 lookup 220',
      '-4 rule del pref 220 to 10.1.0.0/24 lookup 220',
    ]);
    expect(routes.installed().rules.map((r) => r.args.slice(6).join(' '))).toEqual([
      '10.1.0.0/24 ipproto 17 lookup 220',
      '10.1.0.0/24 ipproto 6 dport 80 lookup 220',
      '10.1.0.0/24 ipproto 6 dport 80 sport 5000 lookup 220',
    ]);
    commands.length = 0;
    await routes.removePolicy('udp');
    expect(commands).toEqual(['-4 rule del pref 220 to 10.1.0.0/24 ipproto 17 lookup 220']);
  });

  it('deleting a broad rule added before the narrower ones deletes just it', async () => {
    const { ip, commands } = fakeIp();
    const routes = new TunRoutes({ tunName: 'tunsec0', ip, sysctl: fakeSysctl().sysctl });
    await routes.addPolicy('all', anyTo10_1);
    await routes.addPolicy('web', tcp80);
    commands.length = 0;
    await routes.removePolicy('all');
    expect(commands).toEqual(['-4 rule del pref 220 to 10.1.0.0/24 lookup 220']);
    expect(routes.installed().rules.map((r) => r.args.join(' '))).toEqual(['-4 rule add pref 220 to 10.1.0.0/24 ipproto 6 dport 80 lookup 220']);
    expect(routes.installed().routes.map((r) => r.refs)).toEqual([1]);
  });

  it('replacing a policy under the same key adds the new rules before removing the old ones', async () => {
    const { ip, commands } = fakeIp();
    const routes = new TunRoutes({ tunName: 'tunsec0', ip, sysctl: fakeSysctl().sysctl });
    await routes.addPolicy('p', tcp80);
    commands.length = 0;
    await routes.addPolicy('p', { local: [anyV4], remote: [ts('10.1.0.0', '10.1.0.255', 6, 443, 443)] });
    expect(commands).toEqual([
      '-4 rule add pref 220 to 10.1.0.0/24 ipproto 6 dport 443 lookup 220',
      '-4 rule del pref 220 to 10.1.0.0/24 ipproto 6 dport 80 lookup 220',
    ]);
    expect(routes.installed().policies).toEqual(['p']);
  });

  it('a rule that failed to go in is reported and holds no reference', async () => {
    let refuse = true;
    const { ip } = fakeIp({ fail: (cmd) => (cmd.includes('rule add') && refuse ? 'RTNETLINK answers: File exists' : undefined) });
    const routes = new TunRoutes({ tunName: 'tunsec0', ip, sysctl: fakeSysctl().sysctl });
    expect(await routes.addPolicy('a', tcp80)).toEqual([
      'ip -4 rule add pref 220 to 10.1.0.0/24 ipproto 6 dport 80 lookup 220: RTNETLINK answers: File exists',
    ]);
    expect(routes.installed().rules).toEqual([]);
    refuse = false;
    await routes.addPolicy('b', tcp80);
    expect(routes.installed().rules.map((r) => r.refs)).toEqual([1]);
  });

  it('operations run one at a time, in the order they were called', async () => {
    const log: string[] = [];
    const ip: RunIp = async (args) => {
      log.push(`start ${args[2]}`);
      await new Promise((r) => setTimeout(r, 5));
      log.push(`end ${args[2]}`);
      return { code: 0, stdout: '', stderr: '' };
    };
    const routes = new TunRoutes({ tunName: 'tunsec0', ip, sysctl: fakeSysctl().sysctl });
    await Promise.all([routes.addPolicy('a', tcp80), routes.removePolicy('a')]);
    expect(log).toEqual(['start replace', 'end replace', 'start add', 'end add', 'start del', 'end del', 'start del', 'end del']);
  });

  it('stop deletes the narrowest rules first, then the routes and the mark rules', async () => {
    const { ip, commands } = fakeIp();
    const routes = new TunRoutes({ tunName: 'tunsec0', fwmark: 0x10, ip, sysctl: fakeSysctl().sysctl });
    await routes.start();
    await routes.addPolicy('all', anyTo10_1);
    await routes.addPolicy('web', tcp80);
    commands.length = 0;
    expect(await routes.stop()).toEqual([]);
    expect(commands).toEqual([
      '-4 rule del pref 220 to 10.1.0.0/24 ipproto 6 dport 80 lookup 220',
      '-4 rule del pref 220 to 10.1.0.0/24 lookup 220',
      '-4 route del 10.1.0.0/24 dev tunsec0 table 220',
      '-4 rule del pref 210 fwmark 0x10/0x10 lookup main',
      '-6 rule del pref 210 fwmark 0x10/0x10 lookup main',
    ]);
    expect(routes.installed()).toEqual({ policies: [], rules: [], routes: [], markRules: [] });
  });
});

describe('TunRoutes as the backstop (prohibit routes that outlive the daemon)', () => {
  /** `ip` answering the backstop's listings with what a killed daemon left (the shapes `ip -N -j` prints), recording every call. */
  function leftoverIp(left: { rules4?: object[]; routes4?: object[]; rules6?: object[]; routes6?: object[] } = {}) {
    const commands: string[] = [];
    const ip: RunIp = async (args) => {
      const cmd = args.join(' ');
      commands.push(cmd);
      const listing: Record<string, object[] | undefined> = {
        '-4 -N -j rule show': left.rules4,
        '-6 -N -j rule show': left.rules6,
        '-4 -N -j route show table 221': left.routes4,
        '-6 -N -j route show table 221': left.routes6,
      };
      if (cmd in listing) return { code: 0, stdout: JSON.stringify(listing[cmd] ?? []), stderr: '' };
      return { code: 0, stdout: '', stderr: '' };
    };
    return { ip, commands };
  }
  const backstop = (ip: RunIp) => new TunRoutes({ tunName: 'tunsec0', table: 221, rulePref: 221, backstop: true, ip, sysctl: fakeSysctl().sysctl });

  it('routes a policy to prohibit routes in its own table, and its start touches no mark rule and no sysctl', async () => {
    const { ip, commands } = leftoverIp();
    const b = backstop(ip);
    expect(await b.start()).toEqual([]);
    await b.addPolicy('k', { ...tcp80, localAddress: '10.0.0.1' });
    expect(commands).toEqual([
      '-4 -N -j rule show',
      '-4 -N -j route show table 221',
      '-6 -N -j rule show',
      '-6 -N -j route show table 221',
      '-4 route replace prohibit 10.1.0.0/24 table 221',
      '-4 rule add pref 221 to 10.1.0.0/24 ipproto 6 dport 80 lookup 221',
    ]);
  });

  it('start adopts what a killed daemon left; a policy needing a leftover takes it without an ip call; dropLeftovers removes only the unclaimed', async () => {
    const { ip, commands } = leftoverIp({
      rules4: [
        { priority: 220, src: 'all', dst: '10.1.0.0', dstlen: 24, table: '220' },
        { priority: 221, src: 'all', dst: '10.1.0.0', dstlen: 24, ipproto: 'ipproto-6', dport: 80, table: '221' },
        { priority: 221, src: 'all', dst: '10.9.0.7', ipproto: 'ipproto-17', sport_start: 1000, sport_end: 2000, table: '221' },
        { priority: 221, src: 'all', table: '300' },
      ],
      routes4: [
        { type: '8', dst: '10.1.0.0/24', flags: [] },
        { type: '8', dst: '10.9.0.7', flags: [] },
        { type: '1', dst: '10.5.0.0/16', dev: 'eth0', flags: [] },
      ],
      rules6: [{ priority: 221, src: 'all', dst: 'fd01:0:0::', dstlen: 64, table: '221' }],
      routes6: [{ type: '8', dst: 'fd01::/64', dev: 'lo', metric: 1024, flags: [] }],
    });
    const b = backstop(ip);
    expect(await b.start()).toEqual([]);
    expect(b.leftovers).toEqual({ rules: 3, routes: 3 });
    commands.length = 0;
    await b.addPolicy('web', tcp80);
    expect(commands).toEqual([]);
    expect(b.leftovers).toEqual({ rules: 2, routes: 2 });
    expect(await b.dropLeftovers()).toEqual([]);
    expect(commands).toEqual([
      '-4 rule del pref 221 to 10.9.0.7/32 ipproto 17 sport 1000-2000 lookup 221',
      '-6 rule del pref 221 to fd01::/64 lookup 221',
      '-4 route del prohibit 10.9.0.7/32 table 221',
      '-6 route del prohibit fd01::/64 table 221',
    ]);
    expect(b.installed().rules).toEqual([{ args: '-4 rule add pref 221 to 10.1.0.0/24 ipproto 6 dport 80 lookup 221'.split(' '), refs: 1 }]);
    expect(b.leftovers).toEqual({ rules: 0, routes: 0 });
  });

  it('a leftover rule naming more than tunsec writes is reported and left alone', async () => {
    const { ip } = leftoverIp({ rules4: [{ priority: 221, src: '10.0.0.0', srclen: 8, table: '221' }] });
    const b = backstop(ip);
    expect(await b.start()).toEqual([expect.stringMatching(/^a rule at preference 221 to table 221 cannot be read back .*; left alone$/)]);
    expect(b.leftovers).toEqual({ rules: 0, routes: 0 });
  });

  it('stop removes every backstop rule, narrowest first, then its prohibit routes', async () => {
    const { ip, commands } = leftoverIp();
    const b = backstop(ip);
    await b.start();
    await b.addPolicy('all', anyTo10_1);
    await b.addPolicy('web', tcp80);
    commands.length = 0;
    expect(await b.stop()).toEqual([]);
    expect(commands).toEqual([
      '-4 rule del pref 221 to 10.1.0.0/24 ipproto 6 dport 80 lookup 221',
      '-4 rule del pref 221 to 10.1.0.0/24 lookup 221',
      '-4 route del prohibit 10.1.0.0/24 table 221',
    ]);
  });
});
