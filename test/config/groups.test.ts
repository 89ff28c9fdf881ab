/**
 * Group connections and policy groups in the configuration: CIDR prefixes in
 * remote_addrs, identity patterns for a fleet, `inactivity`, and Libreswan's
 * policy group files (one CIDR per line, bad lines reported with their line
 * numbers, longest prefix wins between groups).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type ConfigProblem, formatProblem, loadConfig } from '../../src/config/index.js';
import { parseIdentity } from '../../src/config/identity.js';
import { groupOf, loadPolicyGroups, parseGroupFile } from '../../src/config/policy-groups.js';
import { type IpPrefix, longestMatch, parsePrefix } from '../../src/util/prefix.js';

const tmp = mkdtempSync('/tmp/tunsec-groups-');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function config({ conn = 'remote_addrs: 10.0.1.0/24', child = 'start_action: trap', top = '' } = {}): string {
  const indent = (s: string, n: number): string =>
    s
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => ' '.repeat(n) + l)
      .join('\n');
  return `${top}
authorities:
  cacerts: x509ca/ca.pem
connections:
  fleet:
    local:
      certs: x509/me.pem
${indent(conn, 4)}
    children:
      fleet:
${indent(child, 8)}
`;
}

function errors(text: string): string[] {
  const r = loadConfig({ text, baseDir: tmp });
  if (r.ok) throw new Error('the configuration loaded');
  return r.error.problems.filter((p: ConfigProblem) => p.severity === 'error').map(formatProblem);
}

function loaded(text: string) {
  const r = loadConfig({ text, baseDir: tmp });
  if (!r.ok) throw new Error(r.error.message);
  return r.config;
}

describe('prefixes', () => {
  it('an address is a full-length prefix, a prefix is canonical, host bits are refused', () => {
    expect(parsePrefix('10.0.1.7')).toMatchObject({ ok: true, value: { text: '10.0.1.7/32', length: 32 } });
    expect(parsePrefix('2001:DB8::/32')).toMatchObject({ ok: true, value: { text: '2001:db8::/32', family: 6 } });
    expect(parsePrefix('10.0.1.1/24')).toEqual({ ok: false, message: "'10.0.1.1/24' has host bits set; the prefix is 10.0.1.0/24" });
    expect(parsePrefix('10.0.1.0/33').ok).toBe(false);
    expect(parsePrefix('eqiad/24').ok).toBe(false);
  });

  it('the longest prefix holding an address wins, whatever the order', () => {
    const items = ['10.0.0.0/8', '10.0.1.0/24', '10.0.0.0/16', '10.0.1.128/25'].map((t, i) => ({
      i,
      prefix: (parsePrefix(t) as { ok: true; value: IpPrefix }).value,
    }));
    expect(longestMatch(items, '10.0.1.7')?.i).toBe(1);
    expect(longestMatch(items, '10.0.1.200')?.i).toBe(3);
    expect(longestMatch(items, '10.0.2.1')?.i).toBe(2);
    expect(longestMatch(items, '10.9.0.1')?.i).toBe(0);
    expect(longestMatch(items, '192.0.2.1')).toBeUndefined();
    expect(longestMatch(items, 'fd00::1')).toBeUndefined();
  });
});

describe('group connections', () => {
  it('remote_addrs takes CIDR prefixes next to addresses; the child takes inactivity', () => {
    const c = loaded(config({ conn: 'remote_addrs: 10.0.1.0/24, 10.0.2.7, 2001:db8::/48', child: 'start_action: trap\ninactivity: 10m' }));
    expect(c.connections.fleet!.remote_addrs).toEqual(['10.0.1.0/24', '10.0.2.7', '2001:db8::/48']);
    expect(c.connections.fleet!.children.fleet!.inactivity).toBe(600);
  });

  it('a prefix with host bits set is refused with the prefix it means', () => {
    expect(errors(config({ conn: 'remote_addrs: 10.0.1.1/24' }))).toEqual([
      expect.stringContaining("'10.0.1.1/24' has host bits set; the prefix is 10.0.1.0/24"),
    ]);
  });

  it('start_action start cannot start a group, %any does not mix with prefixes', () => {
    expect(errors(config({ child: 'start_action: start' }))).toEqual([expect.stringContaining("'start' cannot start a group connection")]);
    expect(errors(config({ conn: 'remote_addrs: 10.0.1.0/24, %any' }))).toEqual([expect.stringContaining('mixes %any with prefixes')]);
  });

  it('remote.id takes *.domain and %fromcert-ip patterns; local.id does not', () => {
    expect(parseIdentity('*.eqiad.example')).toEqual({
      ok: true,
      value: { type: 'ID_ANY', value: '*.eqiad.example', text: '*.eqiad.example', pattern: 'wildcard' },
    });
    expect(parseIdentity('%fromcert-ip')).toEqual({ ok: true, value: { type: 'ID_ANY', value: '%fromcert-ip', text: '%fromcert-ip', pattern: 'fromcert-ip' } });
    expect(parseIdentity('*.bad domain').ok).toBe(false);
    expect(loaded(config({ conn: 'remote_addrs: 10.0.1.0/24\nremote:\n  id: "*.eqiad.example"' })).connections.fleet!.remote.id.pattern).toBe('wildcard');
    expect(
      errors(
        config({ conn: 'remote_addrs: 10.0.1.0/24\nlocal:\n  certs: x509/me.pem\n  id: "*.eqiad.example"' }).replace(
          '    local:\n      certs: x509/me.pem\n',
          '',
        ),
      ),
    ).toEqual([expect.stringContaining("is a pattern for peers' identities")]);
  });
});

describe('policy group files', () => {
  it('one CIDR per line, comments and blank lines ignored; each bad line is reported with its line number', () => {
    const r = parseGroupFile(
      '# eqiad caches\n10.64.0.0/16\n\n10.64.32.0/22  # text\n10.64.1.1/16\nnot-a-prefix\n10.1.0.0/16 10.2.0.0/16\n',
      '/etc/tunsec/policies/private',
      'private',
    );
    expect(r.entries.map((e) => [e.prefix.text, e.source])).toEqual([
      ['10.64.0.0/16', '/etc/tunsec/policies/private:2'],
      ['10.64.32.0/22', '/etc/tunsec/policies/private:4'],
    ]);
    expect(r.problems.map((p) => `${p.line}: ${p.message}`)).toEqual([
      "5: '10.64.1.1/16' has host bits set; the prefix is 10.64.0.0/16",
      "6: 'not-a-prefix' is not an IP address or prefix",
      "7: '10.1.0.0/16 10.2.0.0/16': one CIDR per line",
    ]);
  });

  it('between groups the longest prefix wins; unknown file names and a prefix in two groups are reported', () => {
    const dir = join(tmp, 'policies');
    mkdirSync(dir);
    writeFileSync(join(dir, 'private'), '10.0.0.0/8\n');
    writeFileSync(join(dir, 'clear'), '10.0.5.0/24\n');
    writeFileSync(join(dir, 'block'), '10.0.5.66\n');
    writeFileSync(join(dir, 'private-or-clear'), '192.0.2.0/24\n');
    writeFileSync(join(dir, 'privat'), '');
    const { groups, problems } = loadPolicyGroups(dir);
    expect(groupOf(groups, '10.1.2.3')).toBe('private');
    expect(groupOf(groups, '10.0.5.9')).toBe('clear');
    expect(groupOf(groups, '10.0.5.66')).toBe('block');
    expect(groupOf(groups, '192.0.2.9')).toBe('private-or-clear');
    expect(groupOf(groups, '198.51.100.1')).toBeUndefined();
    expect(problems.map((p) => p.message)).toEqual([expect.stringContaining('not a policy group')]);
    writeFileSync(join(dir, 'clear-or-private'), '10.0.0.0/8\n');
    rmSync(join(dir, 'privat'));
    expect(loadPolicyGroups(dir).problems.map((p) => `${p.file}:${p.line}: ${p.message}`)).toEqual([
      `${join(dir, 'clear-or-private')}:1: 10.0.0.0/8 is in group private too (${join(dir, 'private')}:1)`,
    ]);
  });

  it("a connection naming its policy group takes the group's prefixes, and the group sets its children's policy and start_action", () => {
    const dir = join(tmp, 'pg2');
    mkdirSync(dir);
    writeFileSync(join(dir, 'private-or-clear'), '10.20.0.0/16\n10.30.0.0/16\n');
    const c = loaded(config({ top: `policy_groups:\n  dir: ${dir}`, conn: 'policy_group: private-or-clear', child: 'start_action: none' }));
    expect(c.connections.fleet!.remote_addrs).toEqual(['10.20.0.0/16', '10.30.0.0/16']);
    expect(c.connections.fleet!.children.fleet).toMatchObject({ policy: 'private-or-clear', start_action: 'trap' });
    expect(c.policy_groups?.entries.length).toBe(2);
  });

  it('a bad line in a group file stops the configuration, naming file and line; policy_group needs policy_groups.dir', () => {
    const dir = join(tmp, 'pg3');
    mkdirSync(dir);
    writeFileSync(join(dir, 'private'), '10.0.0.0/8\n\n10.0.0.1/8\n');
    expect(errors(config({ top: `policy_groups:\n  dir: ${dir}`, conn: 'policy_group: private' }))).toEqual([
      expect.stringContaining(`${join(dir, 'private')} line 3: '10.0.0.1/8' has host bits set`),
    ]);
    expect(errors(config({ conn: 'policy_group: private' }))).toEqual([expect.stringContaining('needs the group files: set policy_groups.dir')]);
  });
});
