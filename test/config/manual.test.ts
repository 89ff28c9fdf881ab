/**
 * `manual.sas`: static SAs in the configuration — defaults, every check with
 * its key path, the SPI and key formats, and the same checks for
 * `tunsec sa add` (parseManualSa). Keys never appear in messages.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type ConfigProblem, type TunsecConfig, formatProblem, loadConfig } from '../../src/config/index.js';
import { parseManualSa } from '../../src/config/manual.js';

const KEY128 = '0x' + '11'.repeat(20);
const KEY128B = '0x' + '22'.repeat(20);
const KEY256 = '0x' + 'ab'.repeat(36);

function yaml(sa: string, extra = ''): string {
  const body = sa
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => `      ${l}`)
    .join('\n');
  return `connections: {}
${extra}
manual:
  sas:
    to-sun:
${body}
`;
}

const BASE = `local_addr: 10.1.0.1
remote_addr: 10.1.0.2
spi_in: 0x1001
spi_out: 0x1002
key_in: "${KEY128}"
key_out: "${KEY128B}"`;

function load(text: string): { config: TunsecConfig; warnings: string[] } {
  const r = loadConfig({ text, baseDir: '/etc/tunsec' });
  if (!r.ok) throw new Error(r.error.message);
  return { config: r.config, warnings: r.warnings.map(formatProblem) };
}

function problems(text: string): ConfigProblem[] {
  const r = loadConfig({ text, baseDir: '/etc/tunsec' });
  if (r.ok) throw new Error('the configuration loaded');
  return [...r.error.problems];
}

const errors = (text: string): string[] =>
  problems(text)
    .filter((p) => p.severity === 'error')
    .map(formatProblem);

describe('manual SAs in the configuration', () => {
  it('a minimal SA gets the defaults; no connections needed and no warning about it', () => {
    const { config, warnings } = load(yaml(BASE));
    expect(warnings).toEqual([]);
    expect(config.manual.sas['to-sun']).toEqual({
      name: 'to-sun',
      local_addr: '10.1.0.1',
      remote_addr: '10.1.0.2',
      spi_in: 0x1001,
      spi_out: 0x1002,
      mode: 'transport',
      esp_proposal: 'aes128gcm16',
      key_bits: 128,
      esn: false,
      key_in: '11'.repeat(20),
      key_out: '22'.repeat(20),
      replay_window: 32,
      local_ts: [],
      remote_ts: [],
      policy: 'private',
    });
  });

  it('no manual section: an empty one', () => {
    const r = loadConfig({ text: 'connections: {}\n', baseDir: '/' });
    expect(r.ok && r.config.manual).toEqual({ sas: {} });
  });

  it('tunnel mode, encap with default and explicit ports, AES-256 with ESN, decimal SPIs, selectors, private-or-clear', () => {
    const { config } = load(
      yaml(`local_addr: fd00::1
remote_addr: fd00::2
spi_in: 4097
spi_out: "0xFFFFFFFF"
mode: tunnel
encap: yes
remote_port: 4501
esp_proposal: aes256gcm16-esn
key_in: "${KEY256}"
key_out: "${'cd:'.repeat(35)}cd"
replay_window: 1024
local_ts: 192.168.71.0/24, fd71::/64
remote_ts: 192.168.72.0/24[tcp]
policy: private-or-clear`),
    );
    const sa = config.manual.sas['to-sun']!;
    expect(sa.spi_in).toBe(4097);
    expect(sa.spi_out).toBe(0xffffffff);
    expect(sa.encap).toEqual({ local_port: 4500, remote_port: 4501 });
    expect([sa.esp_proposal, sa.key_bits, sa.esn]).toEqual(['aes256gcm16-esn', 256, true]);
    expect(sa.key_out).toBe('cd'.repeat(36));
    expect(sa.local_ts.map((t) => t.text)).toEqual(['192.168.71.0/24', 'fd71::/64']);
    expect(sa.remote_ts.map((t) => t.text)).toEqual(['192.168.72.0/24[tcp]']);
    expect(sa.policy).toBe('private-or-clear');
  });

  it('each mistake is reported with its key path and line, and keys are never echoed', () => {
    const ps = problems(
      yaml(`local_addr: "%any"
remote_addr: moon.example
spi_in: 255
spi_out: 0x1x
mode: beet
esp_proposal: aes128gcm16-prfsha256
key_in: "0xzz${'1'.repeat(38)}"
key_out: 0x${'3'.repeat(40)}
replay_window: 70000
policy: clear
reqid: 5`),
    );
    const text = ps.map(formatProblem);
    expect(text).toEqual([
      "manual.sas.to-sun.local_addr: expected an IP address, got '%any'",
      "manual.sas.to-sun.remote_addr: expected an IP address, got 'moon.example'",
      'manual.sas.to-sun.spi_in: must be between 256 (0x100) and 4294967295 (0xffffffff); 1–255 are reserved (RFC 4303 §2.1), got 255',
      "manual.sas.to-sun.spi_out: expected an SPI in hex (0x1000) or decimal, got '0x1x'",
      "manual.sas.to-sun.mode: must be one of 'transport', 'tunnel', got 'beet'",
      "manual.sas.to-sun.esp_proposal: manual SAs take one of aes128gcm16, aes192gcm16, aes256gcm16 (optionally -esn), got 'aes128gcm16-prfsha256'",
      'manual.sas.to-sun.key_in: expected hex digits (optionally 0x-prefixed or separated by colons)',
      'manual.sas.to-sun.key_out: expected hex text, got a number: quote the key (YAML reads an unquoted 0x… as a number)',
      'manual.sas.to-sun.replay_window: must be between 0 and 65536, got 70000',
      "manual.sas.to-sun.policy: must be one of 'private', 'private-or-clear', got 'clear'",
      "manual.sas.to-sun.reqid: unknown key: tunsec does not support the swanctl.conf setting 'reqid'",
    ]);
    expect(ps[0]?.line).toBe(6);
    expect(text.join('\n')).not.toContain('1'.repeat(38));
  });

  it('required keys', () => {
    expect(errors(yaml('mode: tunnel'))).toEqual([
      'manual.sas.to-sun.local_addr: required',
      'manual.sas.to-sun.remote_addr: required',
      'manual.sas.to-sun.spi_in: required',
      'manual.sas.to-sun.spi_out: required',
      'manual.sas.to-sun.key_in: required',
      'manual.sas.to-sun.key_out: required',
    ]);
  });

  it('key lengths are checked against the proposal (key ‖ 4-octet salt)', () => {
    expect(errors(yaml(`${BASE}\nesp_proposal: aes256gcm16`))).toEqual([
      'manual.sas.to-sun.key_in: aes256gcm16 needs 36 octets (32-octet key ‖ 4-octet salt, 72 hex digits), got 20',
      'manual.sas.to-sun.key_out: aes256gcm16 needs 36 octets (32-octet key ‖ 4-octet salt, 72 hex digits), got 20',
    ]);
    expect(errors(yaml(BASE.replace(KEY128, `0x${'11'.repeat(16)}`)))).toEqual([
      'manual.sas.to-sun.key_in: aes128gcm16 needs 20 octets (16-octet key ‖ 4-octet salt, 40 hex digits), got 16',
    ]);
    expect(errors(yaml(BASE.replace(KEY128, `0x${'1'.repeat(39)}`)))).toEqual(['manual.sas.to-sun.key_in: expected whole octets, got 39 hex digits']);
  });

  it('cross-key checks: families, ports without encap, SPIs used twice, datapath none', () => {
    expect(errors(yaml(BASE.replace('10.1.0.2', 'fd00::2')))).toEqual([
      'manual.sas.to-sun.remote_addr: fd00::2 and local_addr 10.1.0.1 are of different address families',
    ]);
    expect(errors(yaml(`${BASE}\nlocal_port: 4500`))).toEqual(['manual.sas.to-sun.local_port: only with encap: yes (the UDP ports of ESP-in-UDP)']);
    const two = `connections: {}
manual:
  sas:
    a:
${BASE.split('\n')
  .map((l) => `      ${l}`)
  .join('\n')}
    b:
${BASE.replace('0x1002', '0x2002')
  .split('\n')
  .map((l) => `      ${l}`)
  .join('\n')}
`;
    expect(errors(two)).toEqual(["manual.sas.b.spi_in: the same spi_in as manual SA 'a'"]);
    expect(errors(yaml(BASE, 'daemon:\n  datapath: none'))).toEqual(['manual: manual SAs need the userspace datapath (daemon.datapath: userspace)']);
    expect(errors('connections: {}\nmanual:\n  sas:\n    "bad name": {}\n  other: 1\n')).toEqual([
      "manual.sas.bad name: 'bad name' is not a valid SA name (letters, digits, '.', '_' and '-', starting with a letter or digit)",
      'manual.other: unknown key',
    ]);
  });

  it('warns when the file holding the keys is readable by group or others', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tunsec-manual-'));
    try {
      const file = join(dir, 'tunsec.yaml');
      writeFileSync(file, yaml(BASE));
      chmodSync(file, 0o644);
      const r = loadConfig({ path: file });
      expect(r.ok).toBe(true);
      expect(r.warnings.map(formatProblem)).toEqual([
        `manual: ${file} holds manual SA keys and is accessible by group and others (mode 0644); chmod 600 recommended`,
      ]);
      chmodSync(file, 0o600);
      expect(loadConfig({ path: file }).warnings).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('parseManualSa (tunsec sa add): the same checks on key=value strings', () => {
  const settings = { local_addr: '10.1.0.1', remote_addr: '10.1.0.2', spi_in: '0x1001', spi_out: '4098', key_in: KEY128, key_out: KEY128B };

  it('accepts what the file accepts', () => {
    const r = parseManualSa('x', { ...settings, encap: 'yes', replay_window: '64', local_ts: '10.1.0.1/32[icmp],10.1.0.1/32[tcp]' });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.sa).toMatchObject({ name: 'x', spi_in: 0x1001, spi_out: 4098, encap: { local_port: 4500, remote_port: 4500 }, replay_window: 64 });
    expect(r.sa.local_ts.map((t) => t.text)).toEqual(['10.1.0.1/32[icmp]', '10.1.0.1/32[tcp]']);
  });

  it('reports every problem under manual.sas.NAME', () => {
    const r = parseManualSa('x', { ...settings, spi_in: '12', key_out: '0x1234', bogus: '1' });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems).toEqual([
      'manual.sas.x.spi_in: must be between 256 (0x100) and 4294967295 (0xffffffff); 1–255 are reserved (RFC 4303 §2.1), got 12',
      'manual.sas.x.bogus: unknown key (keys: local_addr, remote_addr, spi_in, spi_out, mode, encap, local_port, remote_port, esp_proposal, key_in, key_out, replay_window, local_ts, remote_ts, policy)',
    ]);
    const r2 = parseManualSa('x', { ...settings, key_out: '0x1234' });
    expect(r2.ok ? [] : r2.problems).toEqual(['manual.sas.x.key_out: aes128gcm16 needs 20 octets (16-octet key ‖ 4-octet salt, 40 hex digits), got 2']);
    expect(parseManualSa('-x', settings)).toEqual({
      ok: false,
      problems: ["manual.sas.-x: '-x' is not a valid SA name (letters, digits, '.', '_' and '-', starting with a letter or digit)"],
    });
  });
});
