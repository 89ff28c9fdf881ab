/**
 * Configuration problems: one message per problem, with the dotted key path
 * it concerns (`connections.dc1.remote_addrs: required`) and, when the YAML
 * source is known, the line and column.
 */
import type { z } from 'zod';
import { plural } from '../util/format.js';

/** How a YAML value is named in messages: `'4x'`, `a number (12)`, `a list`. */
export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'string') return `'${v}'`;
  if (typeof v === 'number') return `a number (${v})`;
  if (typeof v === 'boolean') return `a boolean (${v})`;
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a section';
  return typeof v;
}

export type PathSegment = string | number;

export interface ConfigProblem {
  /** Dotted key path, e.g. `connections.dc1.children.cache.esp_proposals`; '' for the whole file. */
  path: string;
  message: string;
  severity: 'error' | 'warning';
  /** 1-based position in the YAML text, when known. */
  line?: number;
  column?: number;
}

/** `path: message`, or just the message when it concerns no key (YAML syntax errors carry their position). */
export function formatProblem(p: ConfigProblem): string {
  return p.path === '' ? p.message : `${p.path}: ${p.message}`;
}

/** With the source and line, as the daemon and `tunsec check` log it: `tunsec.yaml: line 4: connections.dc1.remote_addrs: required` */
export function describeProblem(source: string, p: ConfigProblem): string {
  const where = p.line === undefined || p.path === '' ? '' : `line ${p.line}: `;
  return `${source}: ${where}${p.severity === 'warning' ? 'warning: ' : ''}${formatProblem(p)}`;
}

export function formatPath(segments: readonly PathSegment[]): string {
  let out = '';
  for (const s of segments) out += typeof s === 'number' ? `[${s}]` : out === '' ? s : `.${s}`;
  return out;
}

/** A configuration that cannot be used; `problems` lists every error (and the warnings found alongside). */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly problems: readonly ConfigProblem[];
  readonly source: string;

  constructor(problems: readonly ConfigProblem[], source: string) {
    const errors = problems.filter((p) => p.severity === 'error');
    const lines = errors.map((p) => `  ${p.line === undefined || p.path === '' ? '' : `line ${p.line}: `}${formatProblem(p)}`);
    super(`${source}: ${plural(errors.length, 'problem')}\n${lines.join('\n')}`);
    this.problems = problems;
    this.source = source;
  }

  /** The error messages, `path: message` each. */
  get messages(): string[] {
    return this.problems.filter((p) => p.severity === 'error').map(formatProblem);
  }
}

const EXPECTED: Readonly<Record<string, string>> = {
  object: 'a section (key: value pairs)',
  record: 'a section (key: value pairs)',
  string: 'a string',
  number: 'a number',
  array: 'a list',
  boolean: 'yes or no',
};

/** Messages for zod's own issues (our fields word theirs themselves); passed to safeParse. */
export function zodMessage(issue: z.core.$ZodRawIssue): string | undefined {
  if (issue.code === 'invalid_type') {
    if (issue.input === undefined) return 'required';
    return `expected ${EXPECTED[issue.expected] ?? issue.expected}, got ${describeValue(issue.input)}`;
  }
  return undefined;
}

/** Edit distance, for "did you mean" on unknown keys. */
export function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0] ?? 0;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j] ?? 0;
      row[j] = Math.min(above + 1, (row[j - 1] ?? 0) + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length] ?? 0;
}

/** The closest of `candidates` to `word`, if it is a plausible typo. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 4)) + 1;
  for (const c of candidates) {
    const d = editDistance(word, c);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}
