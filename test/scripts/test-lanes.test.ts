/**
 * scripts/test-lanes.mjs (what `npm test` runs): a lane that fails while the other lane is still
 * printing has its failure repeated at the end of the combined output, where a reader of the
 * log's tail (a CI page) sees it. Runs the script on two fixture lanes
 * (test/fixtures/test-lanes): "vm" fails at once, "netns" passes after 3 s of output.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { stripVTControlCharacters } from 'node:util';
import { expect, it } from 'vitest';

const repo = fileURLToPath(new URL('../../', import.meta.url));

function runLanes(args: string[]): Promise<{ code: number | null; lines: string[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['scripts/test-lanes.mjs', ...args], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, lines: stripVTControlCharacters(out).split('\n') }));
  });
}

it('a lane that failed early has its failing test and assertion repeated after the other lane’s last line, and the run exits non-zero', async () => {
  const { code, lines } = await runLanes(['--root', 'test/fixtures/test-lanes']);
  const text = lines.join('\n');
  expect(code, text).toBe(1);
  const lastNetns = lines.findLastIndex((l) => l.includes('netns fixture line 29'));
  const digest = lines.findIndex((l) => l === 'test-lanes: ---- vm lane failures, repeated from above ----');
  expect(lastNetns, text).toBeGreaterThan(0);
  expect(digest, text).toBeGreaterThan(lastNetns);
  const repeated = lines.slice(digest).join('\n');
  expect(repeated).toContain('[vm] ');
  expect(repeated).toContain('the failing fixture test');
  expect(repeated).toContain('fixture assertion message');
  expect(lines.slice(-4).join('\n')).toMatch(/test-lanes: vm lane failed \(exit 1\)[^\n]*\ntest-lanes: netns lane passed[^\n]*\ntest-lanes: FAILED/);
}, 60_000);

it('a lane that cannot start (no configuration) has its last lines repeated instead', async () => {
  const { code, lines } = await runLanes(['--config', 'test/fixtures/test-lanes/no-such.config.ts']);
  const digest = lines.findIndex((l) => /^test-lanes: ---- (vm|netns) lane failures, repeated from above ----$/.test(l));
  expect(code).toBe(1);
  expect(digest, lines.join('\n')).toBeGreaterThan(0);
  expect(lines.slice(digest).join('\n')).toContain('no-such.config.ts');
}, 60_000);
