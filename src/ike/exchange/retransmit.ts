/**
 * Request retransmission (RFC 7296 §2.1, §2.4).
 *
 * Only the initiator of an exchange retransmits: it sends the request, and
 * if no response arrives in time sends the very same octets again, backing
 * off exponentially, until it gives up and considers the peer unreachable
 * (the IKE SA is then deleted, §2.4). A responder never retransmits on its
 * own; it answers a retransmitted request from its cache (./message-id.ts).
 *
 * The schedule is strongSwan's (charon.retransmit_* in strongswan.conf):
 * retransmission n (1 … tries) is sent `timeout · base^(n-1)` seconds after
 * the previous transmission; after the last one the initiator waits
 * `timeout · base^tries` more and gives up. `limit` caps each interval, and
 * `jitter` (percent) shortens each by a random part of up to that share.
 * With the defaults (4 s, 1.8, 5 tries) the retransmissions go out after
 * 4, 11.2, 24.16, 47.49 and 89.48 s and the peer counts as unreachable after
 * 165.06 s. Intervals are rounded to whole milliseconds.
 */
import { type TimerHandle, type Timers, systemTimers } from './timers.js';

export interface RetransmitSettings {
  /** Seconds before the first retransmission (charon.retransmit_timeout). */
  timeout: number;
  /** Base of the exponential back-off (charon.retransmit_base). */
  base: number;
  /** Retransmissions before giving up (charon.retransmit_tries). */
  tries: number;
  /** Largest random shortening of an interval, in percent; 0 = none (charon.retransmit_jitter). */
  jitter: number;
  /** Upper limit of an interval in seconds; 0 = none (charon.retransmit_limit). */
  limit: number;
}

export const DEFAULT_RETRANSMIT: Readonly<RetransmitSettings> = Object.freeze({ timeout: 4, base: 1.8, tries: 5, jitter: 0, limit: 0 });

/** The settings with defaults filled in; throws RangeError for values that make no schedule. */
export function retransmitSettings(partial: Partial<RetransmitSettings> = {}): RetransmitSettings {
  const s = { ...DEFAULT_RETRANSMIT, ...partial };
  if (!(s.timeout > 0) || !Number.isFinite(s.timeout)) throw new RangeError(`retransmit timeout ${s.timeout} must be a positive number of seconds`);
  if (!(s.base >= 1) || !Number.isFinite(s.base)) throw new RangeError(`retransmit base ${s.base} must be at least 1`);
  if (!Number.isInteger(s.tries) || s.tries < 0) throw new RangeError(`retransmit tries ${s.tries} must be a whole number ≥ 0`);
  if (!(s.jitter >= 0 && s.jitter <= 100)) throw new RangeError(`retransmit jitter ${s.jitter} must be 0-100 percent`);
  if (!(s.limit >= 0) || !Number.isFinite(s.limit)) throw new RangeError(`retransmit limit ${s.limit} must be ≥ 0 seconds`);
  return s;
}

/**
 * Milliseconds to wait after transmission `n` (0 = the first send) before the
 * next retransmission, or, for n = tries, before giving up. `random` returns
 * a number in [0, 1) and is only used when jitter is set.
 */
export function retransmitInterval(settings: RetransmitSettings, n: number, random: () => number = Math.random): number {
  let ms = settings.timeout * 1000 * settings.base ** n;
  if (settings.limit > 0) ms = Math.min(ms, settings.limit * 1000);
  if (settings.jitter > 0) ms -= ((ms * settings.jitter) / 100) * random();
  return Math.round(ms);
}

/** The intervals without jitter: `tries` waits before retransmissions, then the wait before giving up. */
export function retransmitSchedule(settings: RetransmitSettings = DEFAULT_RETRANSMIT): number[] {
  return Array.from({ length: settings.tries + 1 }, (_, n) => retransmitInterval({ ...settings, jitter: 0 }, n));
}

export interface PeerUnreachable {
  outcome: 'peer-unreachable';
  /** Retransmissions sent (not counting the first transmission). */
  retransmits: number;
  /** Milliseconds from the first transmission to giving up, as scheduled. */
  elapsedMs: number;
}

export interface RetransmitterOptions {
  /** Sends the request's octets (all fragments); `attempt` 0 is the first transmission, 1… retransmissions. */
  send: (attempt: number) => void;
  /** Called once when the last interval runs out without a response. */
  giveUp: (result: PeerUnreachable) => void;
  settings?: Partial<RetransmitSettings>;
  timers?: Timers;
  random?: () => number;
}

export type RetransmitterState = 'idle' | 'waiting' | 'done' | 'gave-up';

/**
 * One outstanding request's retransmissions. `start()` sends it; `cancel()`
 * (a matching response arrived, or the SA is going away) stops the timer.
 * After `giveUp` or `cancel` nothing more is sent.
 */
export class Retransmitter {
  readonly #send: (attempt: number) => void;
  readonly #giveUp: (result: PeerUnreachable) => void;
  readonly #settings: RetransmitSettings;
  readonly #timers: Timers;
  readonly #random: () => number;
  #state: RetransmitterState = 'idle';
  #attempt = 0;
  #elapsed = 0;
  #timer: TimerHandle | undefined;

  constructor(options: RetransmitterOptions) {
    this.#send = options.send;
    this.#giveUp = options.giveUp;
    this.#settings = retransmitSettings(options.settings);
    this.#timers = options.timers ?? systemTimers;
    this.#random = options.random ?? Math.random;
  }

  get state(): RetransmitterState {
    return this.#state;
  }

  /** Retransmissions sent so far. */
  get retransmits(): number {
    return this.#attempt;
  }

  /** Sends the request for the first time and arms the timer. */
  start(): void {
    if (this.#state !== 'idle') throw new Error(`Retransmitter.start() in state ${this.#state}`);
    this.#state = 'waiting';
    this.#send(0);
    this.#arm();
  }

  /** Stops retransmitting (response received, or the SA is deleted). Harmless when already stopped. */
  cancel(): void {
    if (this.#timer !== undefined) this.#timers.clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#state === 'waiting' || this.#state === 'idle') this.#state = 'done';
  }

  #arm(): void {
    // The timer may have been cancelled from inside send().
    if (this.#state !== 'waiting') return;
    const ms = retransmitInterval(this.#settings, this.#attempt, this.#random);
    this.#timer = this.#timers.setTimeout(() => this.#expired(ms), ms);
  }

  #expired(waited: number): void {
    this.#timer = undefined;
    if (this.#state !== 'waiting') return;
    this.#elapsed += waited;
    if (this.#attempt >= this.#settings.tries) {
      this.#state = 'gave-up';
      this.#giveUp({ outcome: 'peer-unreachable', retransmits: this.#attempt, elapsedMs: this.#elapsed });
      return;
    }
    this.#attempt++;
    this.#send(this.#attempt);
    this.#arm();
  }
}
