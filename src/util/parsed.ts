/** What small value parsers return: a value, or one message for the operator. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

export const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
export const bad = <T = never>(message: string): Parsed<T> => ({ ok: false, message });
