/** What the small value parsers of src/config return: a value, or one message for the operator. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

export const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
export const bad = <T = never>(message: string): Parsed<T> => ({ ok: false, message });

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
