/**
 * The configuration loader under arbitrary and mutated YAML (fast-check):
 * loadConfig returns ok or a ConfigError listing at least one error, and
 * never throws (the config fuzz target's oracle).
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, it, vi } from 'vitest';
import { assertTargetHolds, mutatedCorpus, readyTarget } from './support.js';

describe('configuration loader fuzzing properties', () => {
  // the yaml library warns (process.emitWarning) about collections used as keys; expected here, noise in the output
  beforeAll(() => void vi.spyOn(process, 'emitWarning').mockImplementation(() => {}));
  afterAll(() => vi.restoreAllMocks());

  it('loadConfig returns a result (ok, or a ConfigError with at least one error) for mutated example configurations and never throws', async () => {
    const { target, corpus } = await readyTarget('config');
    await assertTargetHolds(target, mutatedCorpus(target, corpus), 700);
  });

  it('loadConfig returns a result for arbitrary YAML-ish text', async () => {
    const { target } = await readyTarget('config');
    const tokens = fc.constantFrom(
      'connections:',
      'children:',
      'manual:',
      'sas:',
      'local_ts:',
      '&a ',
      '*a',
      '<<: ',
      '!!binary ',
      '{',
      '}',
      '[',
      ']',
      '- ',
      ': ',
      '\n',
      '  ',
      'x',
      '0x10',
      '"',
      "'",
      '#',
      '?',
      '%any',
      'yes',
      '1h',
    );
    const text = fc.array(fc.oneof(tokens, fc.string({ maxLength: 6 })), { maxLength: 60 }).map((parts) => Buffer.from(parts.join('')));
    await assertTargetHolds(target, text, 1500);
  });
});
