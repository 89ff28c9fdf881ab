/**
 * The VICI fuzz target under fast-check (fuzz/targets/vici.ts's oracle):
 * arbitrary segments and the committed corpus mutated are parsed or refused
 * with a ViciParseError, parsed messages survive a round trip, and swanctl's
 * commands over an idle daemon answer or refuse with a ViciCommandError.
 */
import { describe, it } from 'vitest';
import { assertTargetHolds, mutatedCorpus, octets, readyTarget } from './support.js';

describe('VICI fuzzing properties', () => {
  it('arbitrary and mutated VICI packets are parsed or refused, requests answered or refused, never an exception of another kind', async () => {
    const { target, corpus } = await readyTarget('vici');
    await assertTargetHolds(target, octets(300), 3000);
    await assertTargetHolds(target, mutatedCorpus(target, corpus), 5000);
  });
});
