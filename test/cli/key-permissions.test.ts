/**
 * Issue 9, secrets: a private key file that group or others may read is
 * warned about by `tunsec config check` (with and without --creds, which
 * loads the keys) — the daemon logs the same warning at start through
 * resolveCredentials (test/daemon/credentials.test.ts).
 */
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { configCheck } from '../../src/cli/main.js';
import { tempDir, writePki } from '../daemon/support.js';

describe('key files with loose permissions', () => {
  const dirs: Array<ReturnType<typeof tempDir>> = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) d.remove();
  });

  it('config check warns about a key file readable by group or others, and is quiet at mode 0600', () => {
    const dir = tempDir('tunsec-keyperm-');
    dirs.push(dir);
    const pki = writePki(dir.path);
    const moon = pki.host('moon.tunsec.test');
    const file = join(dir.path, 'c.yaml');
    writeFileSync(
      file,
      `authorities:\n  cacerts: [x509ca]\nsecrets:\n  private-moon:\n    file: ${moon.key}\nconnections:\n  dc1:\n    remote_addrs: 192.0.2.1\n    local:\n      certs: [${moon.cert}]\n    children:\n      host: {}\n`,
    );
    const check = (args: string[]): { code: number; out: string } => {
      let out = '';
      const code = configCheck([...args, file], { out: (s: string) => (out += s), err: (s: string) => (out += s) } as Parameters<typeof configCheck>[1]);
      return { code, out };
    };
    chmodSync(moon.key, 0o640);
    for (const args of [[], ['--creds']]) {
      const r = check(args);
      expect(r.code, r.out).toBe(0);
      expect(r.out).toContain(`warning: secrets.private-moon: ${moon.key}: private key file is accessible by group (mode 0640); chmod 600 recommended`);
      expect(r.out).toMatch(/OK \(1 warning\)/);
    }
    chmodSync(moon.key, 0o600);
    for (const args of [[], ['--creds']]) {
      const r = check(args);
      expect(r.out).not.toContain('accessible by');
      expect(r.out).toMatch(/: OK: 1 connection/);
    }
  });
});
