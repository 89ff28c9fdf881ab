/**
 * The self-written fuzzing engine (fuzz/lib/): the mutator is deterministic
 * per seed and respects the length limit; the loop keeps inputs with new
 * features, reports each distinct crash once with its input, and reports
 * slow executions.
 */
import { describe, expect, it } from 'vitest';
import { fuzzLoop } from '../../fuzz/lib/engine.js';
import { mutate, Random } from '../../fuzz/lib/mutate.js';
import type { FuzzTarget } from '../../fuzz/lib/target.js';

describe('the fuzzing engine', () => {
  it('mutates deterministically for a seed and never beyond the maximum length', () => {
    const base = Buffer.from('an IKE message, more or less');
    const run = (seed: number) => {
      const rnd = new Random(seed);
      return Array.from({ length: 500 }, () => mutate(base, rnd, { maxLength: 40, dictionary: [Buffer.from('TOKEN')], other: () => base }));
    };
    const a = run(42);
    expect(run(42)).toEqual(a);
    expect(a.every((b) => b.length <= 40)).toBe(true);
    expect(new Set(a.map((b) => b.toString('hex'))).size).toBeGreaterThan(400);
  });

  it('finds a three-octet magic value through feature feedback and reports the crash once, with the input', async () => {
    const target: FuzzTarget = {
      name: 'magic',
      kind: 'ike',
      description: 'crashes on "FUZ"',
      maxLength: 16,
      run(data) {
        let n = 0;
        while (n < 3 && data[n] === 'FUZ'.charCodeAt(n)) n++;
        if (n === 3) throw new TypeError('boom');
        return `prefix:${n}`;
      },
    };
    const stats = await fuzzLoop(target, { seconds: 120, seed: 7, corpus: [Buffer.from('xxxx')], slowMs: 10_000, maxExecutions: 20_000 });
    expect(stats.findings.length).toBe(1);
    expect(stats.findings[0]!.signature).toMatch(/^TypeError@fuzz\/?/);
    expect(stats.findings[0]!.input.subarray(0, 3).toString()).toBe('FUZ');
  });

  it('reports an execution slower than the limit', async () => {
    const target: FuzzTarget = {
      name: 'slow',
      kind: 'ike',
      description: 'slow once',
      maxLength: 8,
      run: (data) => {
        if (data.length === 0) {
          const until = Date.now() + 30;
          while (Date.now() < until);
        }
        return 'x';
      },
    };
    const stats = await fuzzLoop(target, { seconds: 1, seed: 1, corpus: [Buffer.alloc(0)], slowMs: 20, maxExecutions: 10 });
    expect(stats.findings.some((f) => f.kind === 'slow')).toBe(true);
  });
});
