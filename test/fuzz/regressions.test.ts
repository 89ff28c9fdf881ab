/**
 * Regression tests for the bugs the fuzzers found (docs/notes/fuzzing.md),
 * each with the input that showed it, reduced.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/index.js';

function problemsOf(text: string): string[] {
  const r = loadConfig({ text, path: 'fuzz.yaml' });
  expect(r.ok).toBe(false);
  if (r.ok) return [];
  expect(r.error).toBeInstanceOf(ConfigError);
  return r.error.messages;
}

describe('bugs found by fuzzing', () => {
  it('a YAML alias whose anchor is not set before it is reported as a configuration problem, not thrown as a ReferenceError', () => {
    expect(problemsOf('connections: *nowhere\n')).toEqual([expect.stringMatching(/^YAML: Unresolved alias .*nowhere/)]);
  });

  it('a YAML merge key (<<) of a scalar is reported as a configuration problem, not thrown as an Error', () => {
    expect(problemsOf('defaults: &d 1\nconnections:\n  a: { <<: *d, local_addrs: 10.0.0.1 }\n')).toEqual([
      expect.stringMatching(/^YAML: Merge sources must be maps/),
    ]);
  });

  it('a YAML document with more aliases than the resource-exhaustion limit is reported as a configuration problem, not thrown', () => {
    const text = `a: &a [x, x, x, x, x, x, x, x]\nb: [${Array(120).fill('*a').join(', ')}]\n`;
    expect(problemsOf(text)).toEqual([expect.stringMatching(/^YAML: Excessive alias count/)]);
  });
});
