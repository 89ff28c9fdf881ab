/**
 * tunsec as users get it: the npm tarball (`npm pack`) installed into an empty
 * directory, and the Debian package (scripts/build-deb.sh, dpkg-deb) installed
 * by dpkg into a throwaway root, each running `tunsec --version` and a daemon;
 * the systemd unit checked by the real `systemd-analyze verify`.
 *
 * systemd itself is not running here (PID 1 is not systemd, and there is no
 * user manager for systemd-run): the unit's notify protocol is tested against
 * a listener of our own in test/daemon/systemd.test.ts.
 */
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { must, requireRootAndPrograms, run, waitFor } from '../support/proc.js';

const REPO = join(import.meta.dirname, '..', '..');
const VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;

let work: string;
let tarball: string;
/** What `npm pack` reads: package.json's `files`, what prepare compiles them from, and the package metadata. */
const PACKED_SOURCES = [
  'package.json',
  'package-lock.json',
  'tsconfig.json',
  'tsconfig.build.json',
  'src',
  'native',
  'man',
  'examples',
  'docs',
  'LICENSE',
  'README.md',
];

beforeAll(async () => {
  requireRootAndPrograms('packaging', ['npm', 'dpkg', 'dpkg-deb', 'systemd-analyze', 'man', 'python3', 'make', 'g++', 'tar']);
  work = mkdtempSync(join(tmpdir(), 'tunsec-pkg-'));
  // prepare (tsc) runs first: the tarball holds what the sources compile to now. It runs in a copy of
  // the sources, so that the repository's own dist/ (which other test files run at the same time) is
  // never rewritten under them.
  const tree = join(work, 'tree');
  mkdirSync(tree);
  for (const f of PACKED_SOURCES) cpSync(join(REPO, f), join(tree, f), { recursive: true, filter: (p) => !p.startsWith(join(REPO, 'native', 'build')) });
  symlinkSync(join(REPO, 'node_modules'), join(tree, 'node_modules'));
  await must('npm', ['pack', '--silent', '--pack-destination', work], { timeoutMs: 300_000, cwd: tree });
  tarball = join(work, `tunsec-${VERSION}.tgz`);
}, 320_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/** A configuration with no connections that starts without privileges beyond the files in `dir`. */
function minimalConfig(dir: string): string {
  const file = join(dir, 'tunsec.yaml');
  writeFileSync(
    file,
    [
      'daemon:',
      `  pid_file: ${join(dir, 'tunsec.pid')}`,
      `  control_socket: ${join(dir, 'tunsec.sock')}`,
      '  bypass_rules: no',
      '  datapath: none',
      'connections: {}',
      '',
    ].join('\n'),
  );
  return file;
}

/** Start `tunsec daemon` (the program at `bin`), ask its status over the control socket, stop it with SIGTERM. */
async function daemonStartsAndStops(bin: string, dir: string): Promise<void> {
  const config = minimalConfig(dir);
  const child = spawn(bin, ['daemon', '-c', config], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_NO_WARNINGS: '1' } });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (out += c));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  try {
    await waitFor(`daemon_started from ${bin}`, () => out.includes('"event":"daemon_started"') || child.exitCode !== null, 60_000);
    expect(out).toContain('"event":"daemon_started"');
    const status = await run(bin, ['status', '--json', '--socket', join(dir, 'tunsec.sock')]);
    expect(status.code, status.stderr).toBe(0);
    expect((JSON.parse(status.stdout) as { daemon: { state: string } }).daemon.state).toBe('running');
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(out).toContain('"event":"daemon_stopped"');
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

describe('npm package', () => {
  it('npm pack holds the compiled program, the native sources, binding.gyp, man page, unit, examples and LICENSE, and no tests, TypeScript sources or system scripts', async () => {
    const files = (await must('tar', ['-tzf', tarball])).split('\n').filter(Boolean);
    for (const f of [
      'package/package.json',
      'package/LICENSE',
      'package/README.md',
      'package/dist/src/cli/main.js',
      'package/dist/src/daemon/systemd.js',
      'package/native/binding.gyp',
      'package/native/tunsec_native.cc',
      'package/native/tunsec_aead.cc',
      'package/native/tunsec_notify.cc',
      'package/man/tunsec.8',
      'package/examples/tunsec.service',
      'package/examples/tunsec.yaml',
      'package/docs/daemon.md',
    ]) {
      expect(files).toContain(f);
    }
    expect(files.filter((f) => /^package\/(src|test|bench|fuzz|scripts|containers)\//.test(f) || f.endsWith('.d.ts'))).toEqual([]);
    const pkg = JSON.parse(await must('tar', ['-xzOf', tarball, 'package/package.json'])) as {
      scripts: Record<string, string>;
      dependencies: Record<string, string>;
      engines: { node: string };
    };
    expect(pkg.scripts.install).not.toContain('setup-system');
    expect(Object.keys(pkg.dependencies).filter((d) => d.startsWith('@noble/'))).toEqual([]);
    expect(pkg.engines.node).toBe('>=22');
  });

  it('the tarball installs into an empty directory (the addon built by node-gyp, no apt), and its tunsec prints the version and runs a daemon', async () => {
    const app = join(work, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), '{"name":"app","private":true}\n');
    await must('npm', ['install', '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', tarball], { timeoutMs: 300_000, cwd: app });
    expect(existsSync(join(app, 'node_modules', 'tunsec', 'native', 'build', 'Release', 'tunsec_native.node'))).toBe(true);
    expect(existsSync(join(app, 'node_modules', 'tunsec', 'scripts'))).toBe(false);
    const bin = join(app, 'node_modules', '.bin', 'tunsec');
    const v = await must(bin, ['--version']);
    expect(v).toBe(`tunsec ${VERSION}\n`);
    const dir = join(work, 'app-run');
    mkdirSync(dir);
    await daemonStartsAndStops(bin, dir);
  }, 360_000);
});

describe('Debian package', () => {
  let deb: string;
  let root: string;

  beforeAll(async () => {
    deb = (await must('bash', [join(REPO, 'scripts', 'build-deb.sh'), '--tarball', tarball, '--out', work], { timeoutMs: 600_000 })).trim();
    root = join(work, 'root');
  }, 620_000);

  it('dpkg-deb shows the control fields, the conffile and every installed path: wrapper, program, bundled Node 22, unit, man page, configuration, docs', async () => {
    expect(deb).toBe(join(work, `tunsec_${VERSION}_${(await must('dpkg', ['--print-architecture'])).trim()}.deb`));
    const info = await must('dpkg-deb', ['--info', deb]);
    expect(info).toMatch(/^ Package: tunsec$/m);
    expect(info).toMatch(new RegExp(`^ Version: ${VERSION.replace(/\./g, '\\.')}$`, 'm'));
    expect(info).toMatch(/^ Depends: iproute2, netbase, /m);
    expect(info).toMatch(/ conffiles /);
    expect(await must('dpkg-deb', ['--field', deb, 'Section'])).toBe('net\n');
    const contents = (await must('dpkg-deb', ['--contents', deb])).split('\n').map((l) => l.split(/\s+/).slice(5).join(' '));
    for (const p of [
      './usr/bin/tunsec',
      './usr/lib/tunsec/package.json',
      './usr/lib/tunsec/dist/src/cli/main.js',
      './usr/lib/tunsec/native/build/Release/tunsec_native.node',
      './usr/lib/tunsec/node/bin/node',
      './usr/lib/tunsec/node_modules/yaml/package.json',
      './lib/systemd/system/tunsec.service',
      './usr/share/man/man8/tunsec.8.gz',
      './etc/tunsec/tunsec.yaml',
      './usr/share/doc/tunsec/copyright',
      './usr/share/doc/tunsec/examples/tunsec.yaml',
    ]) {
      expect(contents).toContain(p);
    }
    // build-only and test-only packages stay out
    expect(contents.filter((p) => /node_modules\/(node-addon-api|vitest|typescript|tsx|fast-check)\//.test(p))).toEqual([]);
    const ctl = join(work, 'control');
    await must('dpkg-deb', ['--control', deb, ctl]);
    expect(readFileSync(join(ctl, 'conffiles'), 'utf8')).toBe('/etc/tunsec/tunsec.yaml\n');
  });

  it('dpkg installs it into a throwaway root; /usr/bin/tunsec there runs on the bundled Node 22, accepts the shipped /etc/tunsec/tunsec.yaml, shows its man page and runs a daemon', async () => {
    mkdirSync(join(root, 'var', 'lib', 'dpkg', 'info'), { recursive: true });
    mkdirSync(join(root, 'var', 'lib', 'dpkg', 'updates'), { recursive: true });
    writeFileSync(join(root, 'var', 'lib', 'dpkg', 'status'), '');
    // the root holds no libc or iproute2 (--force-depends); the maintainer scripts see DPKG_ROOT and leave this system's systemd alone
    await must('dpkg', [`--root=${root}`, '--force-depends', '--force-script-chrootless', '-i', deb], { timeoutMs: 120_000 });
    const status = await must('dpkg-query', [`--admindir=${join(root, 'var', 'lib', 'dpkg')}`, '-W', '-f=${Status} ${Version}', 'tunsec']);
    expect(status).toBe(`install ok installed ${VERSION}`);

    const bin = join(root, 'usr', 'bin', 'tunsec');
    expect(await must(bin, ['--version'])).toBe(`tunsec ${VERSION}\n`);
    expect((await must(join(root, 'usr', 'lib', 'tunsec', 'node', 'bin', 'node'), ['--version'])).trim()).toMatch(/^v(2[2-9]|[3-9]\d)\./);
    const check = await run(bin, ['config', 'check', join(root, 'etc', 'tunsec', 'tunsec.yaml')]);
    expect(check.stdout).toMatch(/tunsec\.yaml: OK/);
    expect(check.code).toBe(0);
    const man = await must('man', ['-l', join(root, 'usr', 'share', 'man', 'man8', 'tunsec.8.gz')], {
      env: { ...process.env, MANPAGER: 'cat', MANWIDTH: '80' },
    });
    expect(man).toMatch(/^TUNSEC\(8\)/m);
    expect(man).toContain('/run/tunsec/tunsec.sock');
    const dir = join(work, 'deb-run');
    mkdirSync(dir);
    await daemonStartsAndStops(bin, dir);
  }, 240_000);

  it('systemd-analyze verify accepts the installed unit (its commands exist, man:tunsec(8) is found) and rejects it once /usr/bin/tunsec is gone', async () => {
    // the targets the unit names (network-online, multi-user, and what they pull in) from this system
    const units = join(root, 'lib', 'systemd', 'system');
    for (const u of readdirSync('/lib/systemd/system')) if (u.endsWith('.target')) copyFileSync(join('/lib/systemd/system', u), join(units, u));
    const env = { ...process.env, MANPATH: join(root, 'usr', 'share', 'man'), SYSTEMD_LOG_LEVEL: 'notice' };
    const ok = await run('systemd-analyze', ['verify', `--root=${root}`, 'tunsec.service'], { env });
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);

    const wrapper = join(root, 'usr', 'bin', 'tunsec');
    const saved = readFileSync(wrapper);
    rmSync(wrapper);
    try {
      const missing = await run('systemd-analyze', ['verify', `--root=${root}`, 'tunsec.service'], { env });
      expect(missing.code).not.toBe(0);
      expect(missing.stderr).toMatch(/\/usr\/bin\/tunsec is not executable/);
    } finally {
      writeFileSync(wrapper, saved);
      chmodSync(wrapper, 0o755);
    }
  }, 120_000);
});
