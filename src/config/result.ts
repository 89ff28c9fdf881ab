export { type Parsed, ok, bad } from '../util/parsed.js';

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
