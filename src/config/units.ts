/**
 * Times, byte counts and packet counts as swanctl.conf takes them:
 * - times: seconds, or a number with s, m, h or d (`90s`, `30m`, `4h`, `1d`);
 * - bytes: a number, optionally with k, m or g (1024-based: `500m`);
 * - packets: a plain number (strongSwan takes no suffix for packets).
 */
import { type Parsed, bad, ok } from '../util/parsed.js';
import { describeValue } from './problems.js';

const TIME_UNITS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86400 };
const BYTE_UNITS: Readonly<Record<string, number>> = { k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

function count(v: unknown, units: Readonly<Record<string, number>>): number | undefined {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? v : undefined;
  if (typeof v !== 'string') return undefined;
  const m = /^\s*(\d+)\s*([a-zA-Z]?)\s*$/.exec(v);
  if (m === null) return undefined;
  const unit = (m[2] ?? '').toLowerCase();
  const factor = unit === '' ? 1 : units[unit];
  if (factor === undefined) return undefined;
  const n = Number(m[1]) * factor;
  return Number.isSafeInteger(n) ? n : undefined;
}

/** A time in seconds. */
export function parseDuration(v: unknown): Parsed<number> {
  const n = count(v, TIME_UNITS);
  return n === undefined ? bad(`invalid time ${describeValue(v)}: use seconds, or a number with s, m, h or d (e.g. 90s, 30m, 4h, 1d)`) : ok(n);
}

/** A byte count. */
export function parseByteCount(v: unknown): Parsed<number> {
  const n = count(v, BYTE_UNITS);
  return n === undefined ? bad(`invalid byte count ${describeValue(v)}: use a number, optionally with k, m or g (1024-based, e.g. 500m)`) : ok(n);
}

/** A packet count. */
export function parsePacketCount(v: unknown): Parsed<number> {
  const n = count(v, {});
  return n === undefined ? bad(`invalid packet count ${describeValue(v)}: use a plain number`) : ok(n);
}

/** Seconds in the largest unit that divides them: 14400 → '4h', 5400 → '90m', 61 → '61s'. */
export function formatDuration(seconds: number): string {
  for (const [unit, factor] of [
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
  ] as const) {
    if (seconds >= factor && seconds % factor === 0) return `${seconds / factor}${unit}`;
  }
  return `${seconds}s`;
}
