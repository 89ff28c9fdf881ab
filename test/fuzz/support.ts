/**
 * Running the fuzz targets (fuzz/targets/) under fast-check in `npm test`:
 * inputs are either arbitrary octets or the committed corpus mutated by the
 * fuzzer's own mutator with a fast-check-chosen seed, so a failure prints
 * a seed that reproduces it. The targets' oracles (documented errors only,
 * counters, round trips) are the properties.
 */
import fc from 'fast-check';
import { loadCorpus } from '../../fuzz/lib/corpus.js';
import { mutate, Random } from '../../fuzz/lib/mutate.js';
import type { FuzzTarget } from '../../fuzz/lib/target.js';
import { loadTarget } from '../../fuzz/targets/index.js';

export async function readyTarget(name: string): Promise<{ target: FuzzTarget; corpus: Buffer[] }> {
  const target = await loadTarget(name);
  await target.setup?.();
  return { target, corpus: loadCorpus(target) };
}

/** A corpus entry after 1–8 stacked mutations (and the target's post-mutation fix-up). */
export function mutatedCorpus(target: FuzzTarget, corpus: readonly Buffer[]): fc.Arbitrary<Buffer> {
  return fc.tuple(fc.nat({ max: corpus.length - 1 }), fc.integer({ min: 1, max: 0x7fffffff })).map(([i, seed]) => {
    const rnd = new Random(seed);
    let b = mutate(corpus[i]!, rnd, { maxLength: target.maxLength, dictionary: target.dictionary ?? [], other: () => corpus[rnd.below(corpus.length)] });
    if (target.postMutate) b = target.postMutate(b, rnd.float);
    return b;
  });
}

export const octets = (maxLength: number): fc.Arbitrary<Buffer> => fc.uint8Array({ maxLength }).map((b) => Buffer.from(b));

/** fc.assert over the target: every input must run without an exception (documented errors are outcomes, not exceptions). */
export async function assertTargetHolds(target: FuzzTarget, arb: fc.Arbitrary<Buffer>, numRuns: number): Promise<void> {
  await fc.assert(
    fc.asyncProperty(arb, async (input) => {
      await target.run(Buffer.from(input));
    }),
    { numRuns },
  );
}
