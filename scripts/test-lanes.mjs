#!/usr/bin/env node
// Runs the vitest projects of vitest.config.ts ("vm" and "netns") as two lanes at once, one
// vitest process each, and exits non-zero if either lane failed. Each output line carries its
// lane's name. Extra arguments (file filters, -t NAME) go to both lanes; a lane with no matching
// file passes. SIGINT/SIGTERM are passed on, so that each file's afterAll still tears its
// namespaces, daemons and guests down.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { stripVTControlCharacters } from 'node:util';
import { fileURLToPath } from 'node:url';

const LANES = ['vm', 'netns'];
const vitest = fileURLToPath(new URL('../node_modules/vitest/vitest.mjs', import.meta.url));
const extra = process.argv.slice(2);
const started = Date.now();
const children = new Set();
/** Every line of each lane, colours stripped, for the failure digest printed last. */
const laneLines = new Map();
const DIGEST_LINES = 50;

/**
 * A failed lane's failures, repeated after both lanes ended: the lanes interleave, and a lane that
 * fails early has its summary scrolled far above the other lane's, out of sight of whoever reads
 * only the end of the log (a CI page). When vitest printed its "Failed Tests"/"Failed Suites"
 * section: the failed files and tests of the run (its ❯ and × lines before that section), then the
 * section's start (the first failing test's name, the assertion and its stack). Otherwise (a crash)
 * the lane's last lines.
 */
function failureDigest(lines) {
  const start = lines.findIndex((l) => /Failed (Tests|Suites) \d+/.test(l));
  if (start < 0) return lines.slice(-DIGEST_LINES);
  const failedInRun = lines.slice(0, start).filter((l) => /^\s*(❯|×)\s/.test(l));
  return [...failedInRun.slice(0, 10), ...lines.slice(start, start + DIGEST_LINES)];
}

const runs = LANES.map((lane) => {
  const t0 = Date.now();
  const child = spawn(process.execPath, [vitest, 'run', '--project', lane, '--passWithNoTests', ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...(process.stdout.isTTY ? { FORCE_COLOR: '1' } : {}) },
  });
  children.add(child);
  const lines = [];
  laneLines.set(lane, lines);
  const width = Math.max(...LANES.map((l) => l.length));
  const tag = `[${lane.padEnd(width)}] `;
  for (const [stream, out] of [
    [child.stdout, process.stdout],
    [child.stderr, process.stderr],
  ]) {
    createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
      out.write(tag + line + '\n');
      lines.push(stripVTControlCharacters(line));
    });
  }
  return new Promise((resolve) => {
    child.on('error', (err) => resolve({ lane, code: 1, signal: null, seconds: 0, error: err.message }));
    child.on('close', (code, signal) => resolve({ lane, code: code ?? 1, signal, seconds: (Date.now() - t0) / 1000 }));
  }).then((r) => {
    children.delete(child);
    return r;
  });
});
let stopping = false;
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`test-lanes: ${sig}: stopping both lanes (their afterAll hooks clean up)\n`);
    for (const c of children) c.kill(sig);
  });
}

const results = await Promise.all(runs);
const failed = results.filter((r) => r.code !== 0);
for (const r of failed) {
  process.stdout.write(`test-lanes: ---- ${r.lane} lane failures, repeated from above ----\n`);
  for (const line of failureDigest(laneLines.get(r.lane) ?? [])) process.stdout.write(`[${r.lane}] ${line}\n`);
}
for (const r of results) {
  const how = r.error ? `could not start: ${r.error}` : r.code === 0 ? 'passed' : `failed (exit ${r.code}${r.signal ? `, ${r.signal}` : ''})`;
  process.stdout.write(`test-lanes: ${r.lane} lane ${how} in ${r.seconds.toFixed(0)} s\n`);
}
process.stdout.write(`test-lanes: ${failed.length ? 'FAILED' : 'all lanes passed'} in ${((Date.now() - started) / 1000).toFixed(0)} s wall\n`);
process.exit(failed.length ? 1 : 0);
