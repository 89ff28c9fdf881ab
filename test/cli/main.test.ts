import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, REPO, tempDir, writePki } from '../daemon/support.js';

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

const running = new Set<number>();

/** `tunsec ARGS` as a child process (tsx), killed if it outlives the test. */
function tunsec(args: string[]): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_NO_WARNINGS: '1' },
    });
    running.add(child.pid!);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      running.delete(child.pid!);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('the tunsec command', () => {
  const dirs: Array<ReturnType<typeof tempDir>> = [];
  afterEach(() => {
    for (const pid of running) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    running.clear();
    for (const d of dirs.splice(0)) d.remove();
  });

  it('config check accepts examples/tunsec.yaml and summarizes its connections in one line', async () => {
    const r = await tunsec(['config', 'check', 'examples/tunsec.yaml']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('examples/tunsec.yaml: OK: 2 connections: moon-sun (10.77.0.1 → 10.77.0.2, 1 child), moon-sun-v6 (fd77::1 → fd77::2, 1 child)\n');
  });

  it('config check prints every problem of a broken file with its line and key path, and exits 1', async () => {
    const dir = tempDir('tunsec-cli-');
    dirs.push(dir);
    const file = join(dir.path, 'broken.yaml');
    writeFileSync(
      file,
      'authorities:\n  cacerts: ca.pem\nconnections:\n  dc1:\n    remote_adrs: 192.0.2.1\n    local:\n      certs: me.pem\n    children:\n      cache:\n        esp_proposals: aes128gcm17-ecp384bp\n',
    );
    const r = await tunsec(['config', 'check', file]);
    expect(r.code).toBe(1);
    expect(r.stdout.split('\n')).toEqual([
      `${file}: line 4: connections.dc1.remote_addrs: required`,
      `${file}: line 5: connections.dc1.remote_adrs: unknown key (did you mean 'remote_addrs'?)`,
      `${file}: line 10: connections.dc1.children.cache.esp_proposals: unknown algorithm 'aes128gcm17' in proposal 'aes128gcm17-ecp384bp'`,
      `${file}: invalid: 3 errors, 0 warnings`,
      '',
    ]);
  });

  it('config check --json prints one object with every problem, its line and path, and exits 1 when invalid', async () => {
    const dir = tempDir('tunsec-cli-');
    dirs.push(dir);
    const file = join(dir.path, 'broken.yaml');
    writeFileSync(file, 'authorities:\n  cacerts: ca.pem\nconnections:\n  dc1:\n    remote_adrs: 192.0.2.1\n    local:\n      certs: me.pem\n');
    const bad = await tunsec(['config', 'check', file, '--json']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe('');
    const r = JSON.parse(bad.stdout) as { valid: boolean; errors: number; problems: Array<{ severity: string; path: string; message: string; line?: number }> };
    expect(r).toMatchObject({ file, valid: false, errors: 2, connections: [] });
    expect(r.problems).toContainEqual(
      expect.objectContaining({ severity: 'error', path: 'connections.dc1.remote_adrs', line: 5, message: "unknown key (did you mean 'remote_addrs'?)" }),
    );
    const good = await tunsec(['config', 'check', '--json', 'examples/tunsec.yaml']);
    expect(good.code).toBe(0);
    expect(JSON.parse(good.stdout)).toMatchObject({
      valid: true,
      errors: 0,
      warnings: 0,
      problems: [],
      connections: [{ name: 'moon-sun', children: ['host'] }, { name: 'moon-sun-v6' }],
    });
  });

  it('config check prints warnings and still succeeds', async () => {
    const dir = tempDir('tunsec-cli-');
    dirs.push(dir);
    const file = join(dir.path, 'warn.yaml');
    writeFileSync(
      file,
      'authorities:\n  cacerts: ca.pem\nconnections:\n  dc1:\n    remote_addrs: 192.0.2.1\n    dpd_timeout: 30s\n    local:\n      certs: me.pem\n',
    );
    const r = await tunsec(['config', 'check', file]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`${file}: line 6: warning: connections.dc1.dpd_timeout: has no effect with IKEv2`);
    expect(r.stdout).toMatch(/: line \d+: warning: connections\.dc1\.children: no children: the IKE SA will protect no traffic\n/);
    expect(r.stdout.trimEnd().split('\n').at(-1)).toBe(`${file}: OK (2 warnings): 1 connection: dc1 (%any → 192.0.2.1, 0 children)`);
  });

  it('config check --creds also loads certificates and keys and reports what is missing', async () => {
    const dir = tempDir('tunsec-cli-');
    dirs.push(dir);
    const pki = writePki(dir.path);
    const moon = pki.host('moon.tunsec.test');
    const file = join(dir.path, 'creds.yaml');
    const yaml = `authorities:\n  cacerts: [x509ca]\nconnections:\n  dc1:\n    remote_addrs: 192.0.2.1\n    local:\n      certs: [${moon.cert}]\n    children:\n      host: {}\n`;
    writeFileSync(file, yaml);
    const bad = await tunsec(['config', 'check', '--creds', file]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain(`${file}: connection dc1: local.certs: ${moon.cert}: no private key for certificate`);
    writeFileSync(file, `secrets:\n  private-moon:\n    file: ${moon.key}\n${yaml}`);
    const good = await tunsec(['config', 'check', file, '--creds']);
    expect(good.stdout).toMatch(/: OK: 1 connection: dc1/);
    expect(good.code).toBe(0);
  });

  it('an unknown command prints the usage on stderr and exits 2', async () => {
    const r = await tunsec(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^tunsec: unknown command 'frobnicate'\n\nusage: tunsec <command>/);
    const noArgs = await tunsec([]);
    expect(noArgs.code).toBe(2);
    expect(noArgs.stderr).toContain('usage: tunsec');
    const badOption = await tunsec(['config', 'check', '--bogus', 'x.yaml']);
    expect(badOption.code).toBe(2);
    expect(badOption.stderr).toContain("unknown option '--bogus'");
  });

  it('version prints the package version and help the usage, both exiting 0', async () => {
    const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };
    const v = await tunsec(['version']);
    expect(v).toEqual({ code: 0, stdout: `tunsec ${pkg.version}\n`, stderr: '' });
    const h = await tunsec(['help']);
    expect(h.code).toBe(0);
    expect(h.stdout).toContain('config check FILE');
    expect(h.stdout).toContain('daemon [-c FILE]');
  });

  it('the entry point starts with a node shebang so that the built file runs as the tunsec binary', () => {
    expect(readFileSync(CLI, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
  });
});
