/**
 * IKE message fragmentation (RFC 7383).
 *
 * Sending (§2.5): the plaintext an SK payload would carry (the inner payload
 * chain) is cut into chunks; each chunk travels in its own message whose only
 * payload is an Encrypted Fragment payload (SKF) with Fragment Number,
 * Total Fragments and its own IV, padding and ICV. The first fragment's Next
 * Payload names the first inner payload, the others carry 0. All fragments
 * keep the original header (SPIs, exchange type, flags, Message ID).
 *
 * Receiving (§2.6), per IKE SA and direction — FragmentReassembler, keyed by
 * Message ID and the Response flag (a peer's request N and its response to
 * our request N may be in flight together):
 *  - Total Fragments smaller than that of fragments already held: discard
 *    the newcomer ("stale-total");
 *  - same Fragment Number and Total Fragments as one held: a replay, discard
 *    ("duplicate");
 *  - the ICV is checked before anything is stored ("integrity");
 *  - a larger Total Fragments (the sender lowered its fragment size after a
 *    PMTU change) discards what was held and starts over with the newcomer;
 *  - limits: Total Fragments, decrypted octets per message, messages in
 *    reassembly at once, and a timeout from the first fragment held.
 * When every fragment is in, the chunks are joined in Fragment Number order
 * and decoded as the inner payload chain, starting from fragment 1's Next
 * Payload. Every rejection is counted by reason.
 */
import type { AeadContext } from '../../crypto/types.js';
import { type Payload, payloadNumber } from './chain.js';
import { IkeEncodeError, IkeIntegrityError, IkeParseError } from './errors.js';
import { IKE_HEADER_LENGTH, type IkeHeader, encodeHeader } from './header.js';
import type { IkeMessage } from './message.js';
import { PayloadType } from './payload-type.js';
import { buildPlaintext, decodeInner, encodeInner, encryptedPayloadLength, openEncrypted, pickIv, sealEncrypted } from './sk.js';

/** Fragment Number + Total Fragments. */
const SKF_FIXED_FIELDS = 4;
const PAD_LENGTH_FIELD = 1;

export interface FragmentOptions {
  aead: AeadContext;
  /**
   * Largest IKE message per fragment, in octets from the IKE header on (not
   * counting IP and UDP headers or the 4-octet non-ESP marker on port 4500).
   * strongSwan's default 1280-octet IP datagram on IPv4 with the marker gives
   * 1280 − 20 − 8 − 4 = 1248.
   */
  maxMessageSize: number;
  /** IV of each fragment in turn (never repeating under one key); default random. */
  nextIv?: () => Uint8Array;
}

/**
 * The fragments (complete datagrams) of `message`, whose payloads are the ones
 * that would go inside SK. Always at least one fragment; whether to fragment at
 * all (the peer sent IKEV2_FRAGMENTATION_SUPPORTED and the SK message would be
 * too big) is the caller's decision.
 */
export function fragmentMessage(message: IkeMessage, options: FragmentOptions): Buffer[] {
  const { aead, maxMessageSize } = options;
  const overhead = IKE_HEADER_LENGTH + encryptedPayloadLength(aead, PAD_LENGTH_FIELD, SKF_FIXED_FIELDS);
  const chunkSize = maxMessageSize - overhead;
  if (!Number.isInteger(maxMessageSize) || chunkSize < 1) {
    throw new IkeEncodeError(`SKF: a ${maxMessageSize}-octet message cannot carry any payload octets (overhead ${overhead})`);
  }
  const inner = encodeInner(message.payloads);
  const total = Math.max(1, Math.ceil(inner.length / chunkSize));
  if (total > 0xffff) throw new IkeEncodeError(`SKF: ${total} fragments exceed the 16-bit Total Fragments`);
  const first = message.payloads[0];
  const firstType = first ? payloadNumber(first) : PayloadType.NONE;
  const fragments: Buffer[] = [];
  for (let n = 1; n <= total; n++) {
    const plaintext = buildPlaintext(inner.subarray((n - 1) * chunkSize, n * chunkSize));
    const skfLength = encryptedPayloadLength(aead, plaintext.length, SKF_FIXED_FIELDS);
    const head = encodeHeader(message.header, PayloadType.SKF, IKE_HEADER_LENGTH + skfLength);
    const skfHeader = Buffer.alloc(8);
    skfHeader[0] = n === 1 ? firstType : PayloadType.NONE;
    skfHeader.writeUInt16BE(skfLength, 2);
    skfHeader.writeUInt16BE(n, 4);
    skfHeader.writeUInt16BE(total, 6);
    fragments.push(sealEncrypted(Buffer.concat([head, skfHeader]), pickIv(aead, options.nextIv?.()), plaintext, aead));
  }
  return fragments;
}

export interface ReassemblyLimits {
  /** Largest Total Fragments accepted. */
  maxFragments: number;
  /** Largest reassembled inner payload chain, in octets. */
  maxBytes: number;
  /** Time a partial message may wait for its missing fragments, from its first fragment held. */
  timeoutMs: number;
  /** Messages in reassembly at once. */
  maxPending: number;
}

/** Defaults: generous for certificates chains (an IKE message is at most 64 KiB over UDP). */
export const DEFAULT_REASSEMBLY_LIMITS: Readonly<ReassemblyLimits> = {
  maxFragments: 64,
  maxBytes: 65535,
  timeoutMs: 30_000,
  maxPending: 4,
};

/**
 * Octets held in reassembly across every FragmentReassembler of the process
 * (daemon.limits.fragments_total_bytes). A reassembler whose IKE SA vanished
 * without finishing its messages stops counting once their timeout passes, so
 * nothing needs to release it explicitly.
 */
export class ReassemblyBudget {
  private readonly held = new Map<object, { bytes: number; startedAt: number; timeoutMs: number }>();
  private total = 0;

  constructor(public maxBytes: number) {}

  /** Octets held now (after dropping entries past their timeout). */
  bytes(now: number): number {
    for (const [k, e] of this.held) {
      if (now - e.startedAt >= e.timeoutMs) {
        this.total -= e.bytes;
        this.held.delete(k);
      }
    }
    return this.total;
  }

  /** Whether `more` octets fit; if so they are charged to `owner`. */
  charge(owner: object, more: number, startedAt: number, timeoutMs: number, now: number): boolean {
    if (this.bytes(now) + more > this.maxBytes) return false;
    const e = this.held.get(owner);
    if (e) e.bytes += more;
    else this.held.set(owner, { bytes: more, startedAt, timeoutMs });
    this.total += more;
    return true;
  }

  release(owner: object): void {
    const e = this.held.get(owner);
    if (!e) return;
    this.total -= e.bytes;
    this.held.delete(owner);
  }
}

let processDefaults: ReassemblyLimits = { ...DEFAULT_REASSEMBLY_LIMITS };
let processBudget = new ReassemblyBudget(4 * 1024 * 1024);

/**
 * Set the limits reassemblers created from now on use when given none, and the
 * process-wide byte budget (`totalBytes`, default 4 MiB) — the daemon's
 * `daemon.limits` (the IKE SA creates its reassembler itself).
 */
export function setReassemblyDefaults(limits: Partial<ReassemblyLimits> & { totalBytes?: number }): void {
  const { totalBytes, ...rest } = limits;
  processDefaults = { ...DEFAULT_REASSEMBLY_LIMITS, ...rest };
  if (totalBytes !== undefined) processBudget.maxBytes = totalBytes;
}

/** The process-wide reassembly budget (for status and metrics). */
export function reassemblyBudget(): ReassemblyBudget {
  return processBudget;
}

export type ReassemblyRejectReason =
  | 'not-a-fragment'
  | 'stale-total'
  | 'duplicate'
  | 'inconsistent-header'
  | 'too-many-fragments'
  | 'too-large'
  | 'too-many-pending'
  | 'global-limit'
  | 'integrity'
  | 'malformed';

export type ReassemblyResult =
  | { status: 'incomplete'; received: number; total: number }
  | { status: 'complete'; header: IkeHeader; payloads: Payload[]; fragments: number; innerLength: number }
  | { status: 'rejected'; reason: ReassemblyRejectReason; error?: IkeParseError | IkeIntegrityError };

export interface ReassemblyCounters {
  completed: number;
  /** Partial messages dropped because the timeout passed. */
  timedOut: number;
  /** Partial messages abandoned for a fragment with a larger Total Fragments. */
  restarted: number;
  rejected: Record<ReassemblyRejectReason, number>;
}

interface Pending {
  total: number;
  startedAt: number;
  exchangeType: number;
  initiator: boolean;
  bytes: number;
  chunks: Map<number, Buffer>;
  /** From fragment 1. */
  header?: IkeHeader;
  firstPayload?: number;
}

export class FragmentReassembler {
  readonly limits: ReassemblyLimits;
  readonly counters: ReassemblyCounters = {
    completed: 0,
    timedOut: 0,
    restarted: 0,
    rejected: {
      'not-a-fragment': 0,
      'stale-total': 0,
      duplicate: 0,
      'inconsistent-header': 0,
      'too-many-fragments': 0,
      'too-large': 0,
      'too-many-pending': 0,
      'global-limit': 0,
      integrity: 0,
      malformed: 0,
    },
  };
  private readonly pending = new Map<string, Pending>();
  private readonly now: () => number;
  private readonly budget: ReassemblyBudget;

  constructor(limits: Partial<ReassemblyLimits> = {}, now: () => number = Date.now, budget: ReassemblyBudget = processBudget) {
    this.limits = { ...processDefaults, ...limits };
    this.now = now;
    this.budget = budget;
  }

  /** Drop every partial message (the IKE SA is going away). */
  clear(): void {
    for (const p of this.pending.values()) this.budget.release(p);
    this.pending.clear();
  }

  /** Messages currently in reassembly. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /** Drops partial messages older than the timeout; returns how many. */
  expire(): number {
    const now = this.now();
    let dropped = 0;
    for (const [key, p] of this.pending) {
      if (now - p.startedAt >= this.limits.timeoutMs) {
        this.pending.delete(key);
        this.budget.release(p);
        dropped++;
      }
    }
    this.counters.timedOut += dropped;
    return dropped;
  }

  /**
   * Takes one decoded fragment message (`datagram` is what it was decoded
   * from) and the AEAD context of its sender (SK_ei or SK_er).
   */
  add(message: IkeMessage, datagram: Uint8Array, aead: AeadContext): ReassemblyResult {
    this.expire();
    const skf = message.payloads[message.payloads.length - 1];
    if (skf?.type !== PayloadType.SKF) return this.reject('not-a-fragment');
    const { header } = message;
    if (skf.totalFragments > this.limits.maxFragments) return this.reject('too-many-fragments');

    const key = `${header.response ? 'response' : 'request'}:${header.messageId}`;
    let entry = this.pending.get(key);
    if (entry) {
      if (skf.totalFragments < entry.total) return this.reject('stale-total');
      if (skf.totalFragments === entry.total && entry.chunks.has(skf.fragmentNumber)) return this.reject('duplicate');
      if (header.exchangeType !== entry.exchangeType || header.initiator !== entry.initiator) {
        return this.reject('inconsistent-header');
      }
    } else if (this.pending.size >= this.limits.maxPending) {
      return this.reject('too-many-pending');
    }

    let chunk: Buffer;
    try {
      const buf = Buffer.from(datagram.buffer, datagram.byteOffset, datagram.byteLength);
      const opened = openEncrypted(buf, skf.content, aead, PayloadType.SKF);
      chunk = opened.plaintext.subarray(0, opened.innerLength);
    } catch (err) {
      if (err instanceof IkeIntegrityError) return this.reject('integrity', err);
      if (err instanceof IkeParseError) return this.reject('malformed', err);
      throw err;
    }

    if (entry && skf.totalFragments > entry.total) {
      this.pending.delete(key);
      this.budget.release(entry);
      this.counters.restarted++;
      entry = undefined;
    }
    if (!entry) {
      entry = {
        total: skf.totalFragments,
        startedAt: this.now(),
        exchangeType: header.exchangeType,
        initiator: header.initiator,
        bytes: 0,
        chunks: new Map(),
      };
      this.pending.set(key, entry);
    }
    entry.bytes += chunk.length;
    if (entry.bytes > this.limits.maxBytes) {
      this.pending.delete(key);
      this.budget.release(entry);
      return this.reject('too-large');
    }
    if (!this.budget.charge(entry, chunk.length, entry.startedAt, this.limits.timeoutMs, this.now())) {
      this.pending.delete(key);
      this.budget.release(entry);
      return this.reject('global-limit');
    }
    entry.chunks.set(skf.fragmentNumber, chunk);
    if (skf.fragmentNumber === 1) {
      entry.header = header;
      entry.firstPayload = skf.firstPayload;
    }
    if (entry.chunks.size < entry.total) return { status: 'incomplete', received: entry.chunks.size, total: entry.total };

    this.pending.delete(key);
    this.budget.release(entry);
    const parts: Buffer[] = [];
    for (let n = 1; n <= entry.total; n++) parts.push(entry.chunks.get(n)!);
    const inner = Buffer.concat(parts);
    try {
      const payloads = decodeInner({ iv: Buffer.alloc(0), plaintext: inner, innerLength: inner.length, padding: Buffer.alloc(0) }, entry.firstPayload!, {
        isResponse: entry.header!.response,
      });
      this.counters.completed++;
      return { status: 'complete', header: entry.header!, payloads, fragments: entry.total, innerLength: inner.length };
    } catch (err) {
      if (err instanceof IkeParseError) return this.reject('malformed', err);
      throw err;
    }
  }

  private reject(reason: ReassemblyRejectReason, error?: IkeParseError | IkeIntegrityError): ReassemblyResult {
    this.counters.rejected[reason]++;
    return error ? { status: 'rejected', reason, error } : { status: 'rejected', reason };
  }
}
