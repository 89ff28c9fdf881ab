/**
 * Message IDs and windows (RFC 7296 §2.3; §2.2 for the 32-bit limit).
 *
 * Each direction of an IKE SA counts its own requests from 0: as initiator
 * of exchanges we number our requests and match responses to them, as
 * responder we expect the peer's next request ID. The window size is how
 * many requests may be in flight; it is 1 unless the responder announced
 * more with SET_WINDOW_SIZE (§2.3: request X may only be sent once the
 * responses to all requests up to X − window have arrived).
 *
 * A responder keeps its responses to the last `window` requests and, for a
 * retransmitted request, sends the cached octets again — all fragments —
 * without processing the request a second time (§2.1). Requests older than
 * that, or beyond the window, are dropped and counted.
 *
 * Message IDs are 32-bit and never wrap (§2.2: the IKE SA must be rekeyed or
 * closed instead). `mustRekey` turns true a little before the end, leaving
 * IDs for the rekey exchange and the DELETE of the old SA, which both still
 * run on this SA.
 */

export const MAX_MESSAGE_ID = 0xffff_ffff;

/** From this request ID on the IKE SA should be rekeyed; the last 16 IDs are kept for the rekey and DELETE. */
export const MESSAGE_ID_REKEY_THRESHOLD = MAX_MESSAGE_ID - 15;

function checkId(id: number, what: string): void {
  if (!Number.isInteger(id) || id < 0 || id > MAX_MESSAGE_ID) throw new RangeError(`${what} ${id} is not a 32-bit message ID`);
}

function checkWindow(size: number): void {
  if (!Number.isInteger(size) || size < 1 || size > MAX_MESSAGE_ID) throw new RangeError(`window size ${size} must be 1 … 2^32-1`);
}

export interface RequestWindowCounters {
  /** Responses whose ID matched no outstanding request, dropped. */
  unexpectedResponses: number;
}

export type ResponseMatch<T> = { kind: 'matched'; id: number; context: T } | { kind: 'unexpected' };

/**
 * Our requests on one IKE SA. Each outstanding request carries a context
 * (typically its Retransmitter and the task waiting for the answer).
 */
export class RequestWindow<T> {
  #next: number;
  #size = 1;
  readonly #outstanding = new Map<number, T>();
  readonly counters: RequestWindowCounters = { unexpectedResponses: 0 };

  constructor(options: { firstId?: number } = {}) {
    this.#next = options.firstId ?? 0;
    checkId(this.#next, 'first message ID');
  }

  /** The ID the next request gets. */
  get nextId(): number {
    return this.#next;
  }

  get windowSize(): number {
    return this.#size;
  }

  /** The peer's SET_WINDOW_SIZE (§3.10.1): how many requests it can have in flight from us. */
  setWindowSize(size: number): void {
    checkWindow(size);
    this.#size = size;
  }

  /** IDs of requests still waiting for a response, oldest first. */
  get outstanding(): number[] {
    return [...this.#outstanding.keys()].sort((a, b) => a - b);
  }

  /** True when all 2^32 IDs are used: no request can be sent on this SA any more. */
  get exhausted(): boolean {
    return this.#next > MAX_MESSAGE_ID;
  }

  /** True when the IKE SA should be rekeyed before its message IDs run out. */
  get mustRekey(): boolean {
    return this.#next >= MESSAGE_ID_REKEY_THRESHOLD;
  }

  /** Whether another request may be sent now (window not full, IDs left). */
  canSend(): boolean {
    if (this.exhausted) return false;
    const oldest = this.outstanding[0];
    return oldest === undefined || this.#next < oldest + this.#size;
  }

  /** The ID for a new request, now outstanding. Throws if `canSend()` is false. */
  allocate(context: T): number {
    if (this.exhausted) throw new RangeError('message IDs exhausted: the IKE SA must be rekeyed or deleted');
    if (!this.canSend()) throw new Error(`window of ${this.#size} full: waiting for the response to ${this.outstanding[0]}`);
    const id = this.#next++;
    this.#outstanding.set(id, context);
    return id;
  }

  /** A response arrived: its request, now answered, or `unexpected` (dropped and counted). */
  response(id: number): ResponseMatch<T> {
    if (!this.#outstanding.has(id)) {
      this.counters.unexpectedResponses++;
      return { kind: 'unexpected' };
    }
    const context = this.#outstanding.get(id) as T;
    this.#outstanding.delete(id);
    return { kind: 'matched', id, context };
  }

  /** Forgets all outstanding requests (the SA is going away) and returns their contexts, e.g. to cancel timers. */
  clear(): T[] {
    const contexts = [...this.#outstanding.values()];
    this.#outstanding.clear();
    return contexts;
  }
}

export type RequestVerdict =
  | { action: 'process' }
  /** A retransmitted request: send these octets again, do not process it. */
  | { action: 'retransmit'; packets: readonly Uint8Array[] }
  | { action: 'drop'; reason: 'old' | 'future' | 'in-progress' };

export interface ResponseWindowCounters {
  /** Requests handed out for processing. */
  processed: number;
  /** Retransmitted requests answered from the cache. */
  retransmitted: number;
  /** Requests older than the cached responses. */
  droppedOld: number;
  /** Requests beyond the window (§2.3). */
  droppedFuture: number;
  /** Retransmissions of a request still being processed (no response yet to resend). */
  droppedInProgress: number;
}

/**
 * The peer's requests on one IKE SA, as responder. For each request:
 * `receive(id)` says what to do; after processing, `respond(id, packets)`
 * records the response (the octets as sent, one per fragment) and advances
 * the window; a request that turns out to be invalid (e.g. its ICV fails)
 * is released with `abandon(id)` and does not advance it.
 */
export class ResponseWindow {
  #expected: number;
  readonly #size: number;
  readonly #inProgress = new Set<number>();
  readonly #answered = new Map<number, readonly Uint8Array[]>();
  readonly counters: ResponseWindowCounters = {
    processed: 0,
    retransmitted: 0,
    droppedOld: 0,
    droppedFuture: 0,
    droppedInProgress: 0,
  };

  /** `windowSize` is ours, as announced to the peer with SET_WINDOW_SIZE (default 1). */
  constructor(options: { firstId?: number; windowSize?: number } = {}) {
    this.#expected = options.firstId ?? 0;
    checkId(this.#expected, 'first message ID');
    this.#size = options.windowSize ?? 1;
    checkWindow(this.#size);
  }

  /** The lowest request ID not yet answered. */
  get expectedId(): number {
    return this.#expected;
  }

  get windowSize(): number {
    return this.#size;
  }

  /** True when the peer's requests approach the end of the 32-bit ID space. */
  get mustRekey(): boolean {
    return this.#expected >= MESSAGE_ID_REKEY_THRESHOLD;
  }

  receive(id: number): RequestVerdict {
    checkId(id, 'request message ID');
    const cached = this.#answered.get(id);
    if (cached !== undefined) {
      this.counters.retransmitted++;
      return { action: 'retransmit', packets: cached };
    }
    if (id < this.#expected) {
      this.counters.droppedOld++;
      return { action: 'drop', reason: 'old' };
    }
    if (id >= this.#expected + this.#size) {
      this.counters.droppedFuture++;
      return { action: 'drop', reason: 'future' };
    }
    if (this.#inProgress.has(id)) {
      this.counters.droppedInProgress++;
      return { action: 'drop', reason: 'in-progress' };
    }
    this.#inProgress.add(id);
    this.counters.processed++;
    return { action: 'process' };
  }

  /** Records the response to a request `receive` handed out, and advances the window past answered IDs. */
  respond(id: number, packets: readonly Uint8Array[]): void {
    if (!this.#inProgress.delete(id)) throw new Error(`message ID ${id} is not being processed`);
    if (packets.length === 0) throw new Error('a response needs at least one packet');
    this.#answered.set(
      id,
      packets.map((p) => Uint8Array.from(p)),
    );
    while (this.#answered.has(this.#expected) && this.#expected <= MAX_MESSAGE_ID) this.#expected++;
    // Keep the responses a retransmission can still ask for: the last `size` below the window, and any above it.
    for (const answered of this.#answered.keys()) {
      if (answered < this.#expected - this.#size) this.#answered.delete(answered);
    }
  }

  /** Releases a request that was not answered (invalid, dropped after all): its ID may be received again. */
  abandon(id: number): void {
    this.#inProgress.delete(id);
  }

  /** The cached response to `id`, if still kept. */
  cachedResponse(id: number): readonly Uint8Array[] | undefined {
    return this.#answered.get(id);
  }
}
