/**
 * The User-Mode Linux kernel peer itself (test/support/uml.ts, uml/guest-init.sh):
 * a guest is ready only when its kernel can create the ESP SAs the kernel suite
 * needs, and says why when it cannot, instead of the suite's tests failing one
 * by one (or being reported as skipped under a failed beforeAll).
 *
 * The failure this guards against (issue 17): Debian's linux.uml 6.1 has no
 * default RNG (`stdrng`) built in; seqiv needs one to make IVs, so without the
 * drbg module every `ip xfrm state add … rfc4106(gcm(aes))` fails with
 * "Kernel was unable to initialize cryptographic operations". The kernel's
 * on-demand loader should have fetched it, but ran modprobe without the
 * guest's AVX limits and failed at random (kmod's getopt on clobbered AVX-512
 * registers: "invalid option -- 'q'").
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../support/proc.js';
import { BOOT_MODULES, UmlLab, parseXfrmState, requireUml, xstateShim } from '../support/uml.js';

requireUml();

const procModules = async (lab: UmlLab): Promise<string[]> => (await lab.uml.must('cut -d" " -f1 /proc/modules')).split('\n').filter(Boolean);

describe('a default guest', () => {
  let lab: UmlLab;

  beforeAll(async () => {
    lab = await UmlLab.create('ugd');
  }, 120_000);

  afterAll(async () => {
    const leftovers = await lab?.destroy();
    expect(leftovers ?? []).toEqual([]);
  }, 30_000);

  it('is ready only after its kernel added and deleted rfc4106(gcm(aes)) SAs (IPv4 and IPv6), with drbg providing stdrng', async () => {
    const initLog = await lab.uml.must('cat /mnt/state/init.log');
    expect(initLog).toContain('init: ESP check passed');
    expect(initLog.indexOf('ESP check passed')).toBeLessThan(initLog.indexOf('init: ready'));
    expect(await procModules(lab)).toContain('drbg');
    expect(await lab.uml.must("sed -n 's/^name *: //p' /proc/crypto")).toMatch(/^stdrng$/m);
    expect(parseXfrmState(await lab.uml.must('ip xfrm state'))).toEqual([]);
  });

  it('loads a module it was not given at boot on demand (the kernel runs modprobe with the AVX limits)', async () => {
    expect(BOOT_MODULES).not.toContain('dummy');
    expect(await procModules(lab)).not.toContain('dummy');
    await lab.uml.must('ip link add probe0 type dummy && ip link del probe0');
    expect(await procModules(lab)).toContain('dummy');
  });
});

describe('a guest whose kernel cannot make ESP SAs', () => {
  it('fails to boot with the ip xfrm error and names the missing default RNG (no drbg, no loading on demand); nothing is left behind', async () => {
    const label = 'ugf';
    const before = await netnsNamed(label);
    const boot = UmlLab.create(label, { modules: BOOT_MODULES.filter((m) => m !== 'drbg'), onDemandModules: false });
    await expect(boot).rejects.toThrow(/ESP check failed: ip xfrm state add src 192\.0\.2\.1 .*Kernel was unable to initialize cryptographic operations/);
    await expect(boot).rejects.toThrow(/stdrng \(the default RNG seqiv takes\): missing, drbg not loaded/);
    expect(await netnsNamed(label)).toEqual(before);
  }, 120_000);
});

describe('the XSAVE shim cache', () => {
  const src = fileURLToPath(new URL('../support/uml/xstate-shim.c', import.meta.url));
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tsuml-cache-'));
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('rebuilds a cached shim that does not preload, and builds a new file when the source changes', async () => {
    const first = await xstateShim(dir, src);
    expect(await xstateShim(dir, src)).toBe(first);
    writeFileSync(first, 'not an ELF object');
    expect(await xstateShim(dir, src)).toBe(first);
    expect((await run('/bin/true', [], { env: { ...process.env, LD_PRELOAD: first } })).stderr).toBe('');

    const changed = join(dir, 'changed.c');
    copyFileSync(src, changed);
    writeFileSync(changed, '\n/* changed */\n', { flag: 'a' });
    const second = await xstateShim(dir, changed);
    expect(second).not.toBe(first);
    expect(
      readdirSync(dir)
        .filter((f) => f.endsWith('.so'))
        .sort(),
    ).toEqual([first, second].map((p) => p.slice(dir.length + 1)).sort());
  });
});

async function netnsNamed(prefix: string): Promise<string[]> {
  const r = await run('ip', ['netns', 'list']);
  return r.stdout
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith(prefix))
    .sort();
}
