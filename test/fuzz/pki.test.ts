/**
 * Certificate and CRL parsing under arbitrary and mutated DER and PEM
 * (fast-check): only PkiError, and what parses validates or fails with a
 * reason (the pki fuzz target's oracle).
 */
import fc from 'fast-check';
import { describe, it } from 'vitest';
import { assertTargetHolds, mutatedCorpus, octets, readyTarget } from './support.js';

describe('certificate / CRL parsing fuzzing properties', () => {
  it('mutated fixture certificates, CRLs, PEM bundles and DNs raise only PkiError through parsing, path validation, CRL checks and ID matching', async () => {
    const { target, corpus } = await readyTarget('pki');
    await assertTargetHolds(target, mutatedCorpus(target, corpus), 3000);
  });

  it('arbitrary octets in every mode raise only PkiError', async () => {
    const { target } = await readyTarget('pki');
    await assertTargetHolds(
      target,
      fc.tuple(fc.nat({ max: 3 }), octets(300)).map(([m, b]) => Buffer.concat([Buffer.from([m]), b])),
      3000,
    );
  });
});
