/**
 * SA lifetimes: strongSwan's defaults and derivations, and the checks that
 * keep rekeying ahead of expiry.
 *
 * IKE SA (swanctl.conf): rekey_time 4h unless only reauth_time is set;
 * over_time 10% of the longer of rekey_time/reauth_time; rand_time =
 * over_time, but at most half of the shorter non-zero of the two. The SA is
 * closed at the first of rekey_time/reauth_time + over_time if it was not
 * replaced by then (that is `life_time` below, not a configuration key).
 *
 * CHILD_SA: rekey_time 1h, or life_time / 1.1 if only life_time is set;
 * life_time = rekey_time × 1.1 (both rounded down); rand_time = life_time − rekey_time. Bytes and
 * packets follow the same rules with rekey 0 (off) by default.
 *
 * The random jitter (rand_*) is subtracted from rekey_*, so rekeying starts
 * somewhere in [rekey − rand, rekey] and the hard limit is life_*.
 *
 * Errors: a rekey value not below its life value (the SA would expire before
 * it is rekeyed), a rand value not below its rekey value (rekeying could start
 * at once). Warnings: less than REKEY_MARGIN_SECONDS between rekey_time and
 * life_time (IKE: over_time), and a life limit with rekeying switched off.
 */
import { formatDuration } from './units.js';

/**
 * How long one rekeying exchange may take when packets are lost: strongSwan's
 * default retransmission sequence (timeout 4 s, base 1.8, 5 retries) gives up
 * after about 165 s.
 */
export const REKEY_MARGIN_SECONDS = 165;

const DEFAULT_IKE_REKEY_TIME = 4 * 3600;
const DEFAULT_CHILD_REKEY_TIME = 3600;

export interface LifetimeProblem {
  /** The key the problem is reported at. */
  key: string;
  message: string;
  severity: 'error' | 'warning';
}

export interface IkeLifetimeInput {
  rekey_time?: number | undefined;
  reauth_time?: number | undefined;
  over_time?: number | undefined;
  rand_time?: number | undefined;
}

export interface IkeLifetimes {
  rekey_time: number;
  reauth_time: number;
  over_time: number;
  rand_time: number;
  /** When the IKE SA is closed if neither rekeyed nor reauthenticated: 0 for never. Derived. */
  life_time: number;
}

export function resolveIkeLifetimes(input: IkeLifetimeInput): IkeLifetimes {
  let rekey = input.rekey_time;
  let reauth = input.reauth_time;
  if (rekey === undefined && reauth === undefined) rekey = DEFAULT_IKE_REKEY_TIME;
  rekey ??= 0;
  reauth ??= 0;
  const over = input.over_time ?? Math.floor(Math.max(rekey, reauth) / 10);
  const shorter = rekey !== 0 && reauth !== 0 ? Math.min(rekey, reauth) : Math.max(rekey, reauth);
  const rand = input.rand_time ?? Math.min(over, Math.floor(shorter / 2));
  const first = rekey !== 0 && reauth !== 0 ? Math.min(rekey, reauth) : Math.max(rekey, reauth);
  return { rekey_time: rekey, reauth_time: reauth, over_time: over, rand_time: rand, life_time: first === 0 ? 0 : first + over };
}

export function checkIkeLifetimes(l: IkeLifetimes, input: IkeLifetimeInput): LifetimeProblem[] {
  const problems: LifetimeProblem[] = [];
  for (const key of ['rekey_time', 'reauth_time'] as const) {
    const limit = l[key];
    if (limit !== 0 && l.rand_time >= limit) {
      problems.push({
        key: 'rand_time',
        severity: 'error',
        message: `rand_time (${formatDuration(l.rand_time)}) must be less than ${key} (${formatDuration(limit)}): the random time subtracted from ${key} could start it at once`,
      });
    }
  }
  if (l.life_time !== 0 && l.over_time < REKEY_MARGIN_SECONDS) {
    problems.push({
      key: input.over_time !== undefined ? 'over_time' : 'rekey_time',
      severity: 'warning',
      message: `over_time (${formatDuration(l.over_time)}) leaves less than ${REKEY_MARGIN_SECONDS}s for rekeying to complete before the IKE SA is closed`,
    });
  }
  return problems;
}

export interface ChildLifetimeInput {
  rekey_time?: number | undefined;
  life_time?: number | undefined;
  rand_time?: number | undefined;
  rekey_bytes?: number | undefined;
  life_bytes?: number | undefined;
  rand_bytes?: number | undefined;
  rekey_packets?: number | undefined;
  life_packets?: number | undefined;
  rand_packets?: number | undefined;
}

export interface ChildLifetimes {
  rekey_time: number;
  life_time: number;
  rand_time: number;
  rekey_bytes: number;
  life_bytes: number;
  rand_bytes: number;
  rekey_packets: number;
  life_packets: number;
  rand_packets: number;
}

interface Limit {
  rekey: number;
  life: number;
  rand: number;
}

/** n × num / den, rounded down, exact for any safe integer. */
function scale(n: number, num: number, den: number): number {
  return Number((BigInt(n) * BigInt(num)) / BigInt(den));
}

function resolveLimit(rekeyIn: number | undefined, lifeIn: number | undefined, randIn: number | undefined, defaultRekey: number): Limit {
  const rekey = rekeyIn ?? (lifeIn !== undefined ? scale(lifeIn, 10, 11) : defaultRekey);
  const life = lifeIn ?? Math.min(scale(rekey, 11, 10), Number.MAX_SAFE_INTEGER);
  const rand = randIn ?? life - Math.min(life, rekey);
  return { rekey, life, rand };
}

export function resolveChildLifetimes(input: ChildLifetimeInput): ChildLifetimes {
  const time = resolveLimit(input.rekey_time, input.life_time, input.rand_time, DEFAULT_CHILD_REKEY_TIME);
  const bytes = resolveLimit(input.rekey_bytes, input.life_bytes, input.rand_bytes, 0);
  const packets = resolveLimit(input.rekey_packets, input.life_packets, input.rand_packets, 0);
  return {
    rekey_time: time.rekey,
    life_time: time.life,
    rand_time: time.rand,
    rekey_bytes: bytes.rekey,
    life_bytes: bytes.life,
    rand_bytes: bytes.rand,
    rekey_packets: packets.rekey,
    life_packets: packets.life,
    rand_packets: packets.rand,
  };
}

function formatBytes(n: number): string {
  for (const [unit, factor] of [
    ['g', 1024 ** 3],
    ['m', 1024 ** 2],
    ['k', 1024],
  ] as const) {
    if (n >= factor && n % factor === 0) return `${n / factor}${unit}`;
  }
  return String(n);
}

export function checkChildLifetimes(l: ChildLifetimes, input: ChildLifetimeInput): LifetimeProblem[] {
  const problems: LifetimeProblem[] = [];
  const dimensions = [
    ['time', formatDuration],
    ['bytes', formatBytes],
    ['packets', String],
  ] as const;
  for (const [suffix, show] of dimensions) {
    const rekeyKey = `rekey_${suffix}` as const;
    const lifeKey = `life_${suffix}` as const;
    const randKey = `rand_${suffix}` as const;
    const rekey = l[rekeyKey];
    const life = l[lifeKey];
    const rand = l[randKey];
    if (rekey !== 0 && life !== 0 && rekey >= life) {
      problems.push({
        key: input[rekeyKey] !== undefined ? rekeyKey : lifeKey,
        severity: 'error',
        message: `${rekeyKey} (${show(rekey)}) must be less than ${lifeKey} (${show(life)}): the CHILD_SA would expire before it is rekeyed`,
      });
    } else if (rekey !== 0 && rand >= rekey) {
      problems.push({
        key: randKey,
        severity: 'error',
        message: `${randKey} (${show(rand)}) must be less than ${rekeyKey} (${show(rekey)}): the random amount subtracted from ${rekeyKey} could start rekeying at once`,
      });
    } else if (rekey === 0 && life !== 0) {
      problems.push({
        key: lifeKey,
        severity: 'warning',
        message: `${lifeKey} is ${show(life)} but ${rekeyKey} is 0 (no rekeying): the CHILD_SA will expire without being replaced`,
      });
    }
  }
  if (l.rekey_time !== 0 && l.life_time > l.rekey_time && l.life_time - l.rekey_time < REKEY_MARGIN_SECONDS) {
    problems.push({
      key: input.life_time !== undefined ? 'life_time' : 'rekey_time',
      severity: 'warning',
      message: `life_time (${formatDuration(l.life_time)}) leaves only ${l.life_time - l.rekey_time}s after rekey_time (${formatDuration(l.rekey_time)}); a rekeying exchange with retransmissions can take up to ${REKEY_MARGIN_SECONDS}s`,
    });
  }
  return problems;
}
