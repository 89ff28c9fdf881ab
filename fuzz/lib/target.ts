/**
 * What a fuzz target is (fuzz/targets/*.ts): a function from octets to an
 * outcome. The target itself catches the errors its surface documents
 * (IkeParseError, PkiError, ConfigError, …) and turns every outcome into a
 * short *feature* string ("ok:SA,KE,NONCE", "parse:SA: Proposal Length # …"):
 * the engine keeps an input that produced a feature never seen before (its
 * stand-in for coverage feedback, see fuzz/lib/engine.ts). Anything that
 * escapes `run` — a TypeError, a RangeError, an {@link OracleViolation} the
 * target raised because an invariant broke — is a crash; an execution that
 * does not finish within the watchdog's limit is a hang, one that exhausts
 * the worker's heap is an out-of-memory.
 */

export type TargetKind = 'ike' | 'esp' | 'pki' | 'config' | 'control';

export interface FuzzTarget {
  name: string;
  /** What the execution counts towards in the totals (IKE messages, ESP packets, …). */
  kind: TargetKind;
  description: string;
  /** Longest input the mutator produces. */
  maxLength: number;
  /** Tokens the mutator inserts or overwrites with (magic numbers, keywords). */
  dictionary?: readonly Uint8Array[];
  /** Once per process, before the first input (may be slow: keys, SAs, fixtures). */
  setup?(): void | Promise<void>;
  /** One execution; returns the feature of its outcome. Throws only for a crash. */
  run(data: Buffer): string | Promise<string>;
  /** Optional fix-up after mutation (e.g. the IKE header Length set to the real length half of the time). */
  postMutate?(data: Buffer, random: () => number): Buffer;
  /** Inputs to start from when the corpus directory is empty. */
  seeds?(): Buffer[];
}

/** A broken invariant that is not an exception of the code under test (a round trip that is not exact, a counter that moved wrongly). */
export class OracleViolation extends Error {
  override readonly name = 'OracleViolation';
}

/** An error message with its variable parts (numbers, hex, quoted values) blanked, as a feature. */
export function featureOf(prefix: string, message: string): string {
  return `${prefix}:${message
    .replace(/'[^']*'/g, "'…'")
    .replace(/0x[0-9a-f]+/gi, '#')
    .replace(/\d+/g, '#')
    .slice(0, 160)}`;
}
