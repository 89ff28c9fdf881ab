/**
 * The ESP packet path (RFC 4301 §5, RFC 4303 §3.3, §3.4), without I/O:
 *
 *   outbound — a packet read from the TUN device → SPD lookup → PROTECT
 *   (seal with the CHILD_SA's outbound SA, or hold it and ask IKE for an SA),
 *   BYPASS or DISCARD;
 *   inbound — an ESP packet from the raw socket or ESP-in-UDP → SAD lookup by
 *   SPI → replay pre-check → ICV → replay window update → padding / next
 *   header → inbound policy check against the SA's selectors → the packet to
 *   write to the TUN device. ESP for an SPI allocated for an exchange still
 *   under way is held until its SA is installed (./pending-spi.ts).
 *
 * The I/O loop (./io.ts) owns buffers and sockets and asks this class what to
 * do with each packet; results come back in caller-owned result objects so
 * the per-packet path allocates as little as the AEAD lets it. Nothing a
 * packet contains makes these methods throw: every drop is counted under its
 * reason (`DatapathCounters`, and the SA's counters), and logged at most once
 * per interval per reason.
 *
 * Policies without an SA (RFC 4301 §5.1.1 "trigger"): `private` holds the
 * first packets (a small bounded queue per policy) and raises `acquire`;
 * `private-or-clear` passes them in the clear, counted as fallbacks. A packet
 * in the TUN device that no outbound policy selects is dropped (fail
 * closed): the routes only send selected flows there, so such a packet is a
 * race with a policy removal or a route that is wider than the policy.
 */
import type { AcquireEvent, TrafficSelector } from './api.js';
import { buildOuterHeader, clampTcpMss, fixTransportChecksum, outerHeaderLength, IPPROTO_NONE, IPPROTO_TCP, IPV4_MIN_HEADER, IPV6_HEADER } from './ip.js';
import {
  ESP_DESC_SLOTS,
  ESP_OPEN_MODE_IPV4_TRANSPORT,
  ESP_OPEN_MODE_TUNNEL,
  ESP_SEAL_ESN,
  ESP_SEAL_PRESEALED,
  EspOpenDesc,
  EspOpenStatus,
  EspSealDesc,
} from '../native/addon.js';
import {
  decapTransport,
  decapTunnel,
  espSealedLength,
  encapTransportInto,
  encapTunnelInto,
  espSeqLow,
  espSpi,
  openEsp,
  sealEspInto,
  transportHeaderInto,
  transportSplit,
  tunnelNextHeader,
} from './packet.js';
import { DEFAULT_PENDING_SPI_LIMITS, PendingSpiQueues, type PendingSpiLimits } from './pending-spi.js';
import { seqHigh } from './replay.js';
import { type SadEntry, type SecurityAssociationDatabase } from './sadb.js';
import { FlowKey, FlowCache, FLOW_CACHE_MISS, type SpdEntry } from './spd.js';
import { formatIp } from '../util/ip.js';
import { spiHex } from '../util/format.js';

export interface DatapathLogger {
  log(level: 'error' | 'warn' | 'info' | 'debug', message: string): void;
}

/** Why packets were dropped or passed in the clear; everything the datapath does is counted here. */
export interface DatapathCounters {
  outPackets: number;
  outBytes: number;
  inPackets: number;
  inBytes: number;
  /** Outbound: not an IPv4/IPv6 packet, or one that cannot be transport-mode encapsulated. */
  outMalformed: number;
  /** Outbound: no policy selects it (dropped, fail closed). */
  outNoPolicy: number;
  outBypass: number;
  outDiscard: number;
  /** Held while an SA is negotiated / dropped because the hold queue was full. */
  outHeld: number;
  outHoldOverflow: number;
  /** `private` policy without an SA, not held. */
  outNoSa: number;
  /** `private-or-clear` policy without an SA: sent in the clear. */
  outFallbackClear: number;
  /** Global off switch engaged: protected traffic passed in the clear / dropped. */
  outGlobalClear: number;
  outGlobalDrop: number;
  acquires: number;
  /** Inbound: shorter than an ESP header / not ESP / inner packet malformed. */
  inMalformed: number;
  inUnknownSpi: number;
  /** Held because their SPI was allocated for an exchange under way (opened once the SA is installed). */
  inHeldPendingSpi: number;
  /** Held for a pending SPI and dropped: queue full, held too long, or the exchange failed. */
  inHeldPendingSpiDropped: number;
  inReplay: number;
  inIcv: number;
  inPadding: number;
  inDummy: number;
  /** Decrypted packet outside the SA's traffic selectors (RFC 4301 §5.2). */
  inPolicy: number;
  /** SA reached its hard lifetime with this packet. */
  expiredDrops: number;
  /** Decrypted while the CHILD_SA's outbound routes were still being installed, and the wait queue was full. */
  inRouteWaitOverflow: number;
}

const zero = (): DatapathCounters => ({
  outPackets: 0,
  outBytes: 0,
  inPackets: 0,
  inBytes: 0,
  outMalformed: 0,
  outNoPolicy: 0,
  outBypass: 0,
  outDiscard: 0,
  outHeld: 0,
  outHoldOverflow: 0,
  outNoSa: 0,
  outFallbackClear: 0,
  outGlobalClear: 0,
  outGlobalDrop: 0,
  acquires: 0,
  inMalformed: 0,
  inUnknownSpi: 0,
  inHeldPendingSpi: 0,
  inHeldPendingSpiDropped: 0,
  inReplay: 0,
  inIcv: 0,
  inPadding: 0,
  inDummy: 0,
  inPolicy: 0,
  expiredDrops: 0,
  inRouteWaitOverflow: 0,
});

/** Outbound verdicts. */
export const OUT_DROP = 0;
/** `out[0, length)` is to be sent to `sa`'s peer: a whole IP packet (raw) or the ESP packet (ESP-in-UDP). */
export const OUT_SEND = 1;
/** The original packet goes out unprotected (bypass policy, private-or-clear fallback, global off switch). */
export const OUT_CLEAR = 2;
/** The packet was copied into a hold queue. */
export const OUT_HELD = 3;

export interface OutboundResult {
  verdict: number;
  length: number;
  sa: SadEntry | undefined;
}

export interface InboundResult {
  /** The packet to write to the TUN device, or undefined (dropped). */
  packet: Buffer | undefined;
  /** Its length, when `packet` is a larger buffer (`inboundFinish` leaves it at the start of the receive buffer). */
  length?: number;
  sa: SadEntry | undefined;
}

/**
 * Where `outbound` leaves a packet for the batched native seal (io.ts, native/tunsec_esp.cc)
 * instead of sealing it: the I/O loop points `index` at the transmit slot `out` is. The header in
 * front of ESP (transport: the packet's own; raw tunnel: the outer one) is written to `out` now,
 * the SPD decision, the SA, its sequence number and lifetime accounting are done now; only the
 * ESP packet itself is built and encrypted later, a batch in one native call.
 */
export interface SealStage {
  index: number;
  /** `src[index]` is set to the packet read from the TUN device. */
  readonly src: Uint8Array[];
  /** ESP_DESC_SLOTS per slot: EspSealDesc. */
  readonly desc: Uint32Array;
}

/**
 * ESP packets waiting for the batched native open, with what `inboundStage` decided about
 * each (its SA, its anti-replay candidate); `inboundFinish` completes them in order.
 */
export class OpenStage {
  count = 0;
  readonly bufs: Uint8Array[];
  readonly desc: Uint32Array;
  readonly sas: (SadEntry | undefined)[];
  readonly candidates: Float64Array;
  /** Highest candidate staged per ESN SA in this batch (see `inboundStage`). */
  readonly esnTop = new Map<SadEntry, number>();

  constructor(readonly capacity: number) {
    this.bufs = new Array<Uint8Array>(capacity).fill(new Uint8Array(0));
    this.desc = new Uint32Array(capacity * ESP_DESC_SLOTS);
    this.sas = new Array<SadEntry | undefined>(capacity).fill(undefined);
    this.candidates = new Float64Array(capacity);
  }
}

/** `inboundStage` verdicts. */
export const IN_DONE = 0;
/** Staged for the native open: run the batch, then `inboundFinish`. */
export const IN_STAGED = 1;
/** Not for the native path (a mode it does not do, a context without a native key): use `inbound`. */
export const IN_JS = 2;
/** The batch must be opened and finished before this packet can be staged (ESN: its Seq#Hi guess depends on them). */
export const IN_FLUSH = 3;

/** Where an inbound ESP packet came from: raw IP (IPv4 with its header, IPv6 bare) or ESP-in-UDP. */
export interface InboundSource {
  family: 4 | 6;
  /** Source address octets (4 or 16). */
  address: Uint8Array;
  udp: boolean;
}

/** A received ESP packet kept for a pending SPI, with its own copies: `buf[espOff, buf.length)` is the ESP packet, as for `inbound`. */
export interface HeldEsp {
  buf: Buffer;
  espOff: number;
  src: InboundSource;
}

export interface PacketEngineOptions {
  /** Packets held per policy while an SA is negotiated (default 16; 0 = none). */
  holdPackets?: number;
  /** Minimum interval between two acquires of one policy (default 5 s). */
  acquireIntervalMs?: number;
  /** Rate limit of per-reason drop log lines (default 10 s). */
  logIntervalMs?: number;
  log?: DatapathLogger;
  /** Called when packets were held for `reqid` and its outbound SA is now installed. */
  onHeldReady?: (key: HoldKey) => void;
  /** Clamp the MSS of TCP SYNs in both directions to what this IP MTU (the TUN MTU) allows; 0 = off (default). */
  mssClampMtu?: number;
  /** Bounds of the packets held for pending SPIs (default DEFAULT_PENDING_SPI_LIMITS). */
  pendingSpi?: Partial<PendingSpiLimits>;
  /** Called when the inbound SA of a pending SPI with held packets is installed: `takePendingSpi` them. */
  onPendingSpiReady?: (spi: number) => void;
}

/** The octets of a TCP/UDP-less selector for one address: protocol and ports from the flow. */
/**
 * The octets an SA protects, which its byte counters and byte lifetimes count
 * (as XFRM's `ip -s xfrm state` does): in transport mode what follows the IP
 * header and the extension headers kept in front of ESP (`split`), in tunnel
 * mode the whole inner packet (`whole`).
 */
function protectedLength(split: { headerLength: number; totalLength: number } | undefined, whole: number): number {
  return split ? split.totalLength - split.headerLength : whole;
}

function flowSelector(flow: FlowKey, off: number, port: number): TrafficSelector {
  const len = flow.family === 4 ? 4 : 16;
  const addr = formatIp(flow.buf.subarray(off, off + len));
  const known = port >= 0;
  return { protocol: flow.protocol, startAddress: addr, endAddress: addr, startPort: known ? port : 0, endPort: known ? port : 0xffff };
}

/** Where held packets wait: a policy's reqid, or `reqid|destination` for a per-destination trap. */
export type HoldKey = number | string;

/** Per-destination hold states kept at most (the oldest are forgotten, their packets dropped). */
const MAX_DESTINATION_STATES = 4096;

interface PolicyRuntime {
  held: Buffer[];
  lastAcquire: number;
}

export class PacketEngine {
  readonly counters: DatapathCounters = zero();
  /** Global off switch (operator): protected traffic is passed in the clear or dropped; undefined = normal. */
  globalOff: 'clear' | 'drop' | undefined;
  private readonly flow = new FlowKey();
  private readonly policyState = new Map<HoldKey, PolicyRuntime>();
  /** Keys of per-destination states, oldest first. */
  private destinationStates = 0;
  private readonly holdPackets: number;
  private readonly acquireIntervalMs: number;
  private readonly logIntervalMs: number;
  private readonly logger: DatapathLogger | undefined;
  /** See PacketEngineOptions.mssClampMtu; may be set once the TUN MTU is known. */
  mssClampMtu: number;
  private readonly lastLog = new Map<string, { at: number; suppressed: number }>();
  private nowSeconds = Math.floor(Date.now() / 1000);
  /** ESP received for reserved SPIs, waiting for their SAs. */
  private readonly pending: PendingSpiQueues<HeldEsp>;
  /** Outbound policy per flow, in front of the SPD; emptied on every SPD and SAD change. */
  readonly flowCache = new FlowCache<SpdEntry>();
  /** Set by the I/O loop for the batched native seal (see SealStage); undefined = seal here. */
  sealStage: SealStage | undefined;

  constructor(
    readonly sad: SecurityAssociationDatabase,
    opts: PacketEngineOptions = {},
  ) {
    this.holdPackets = opts.holdPackets ?? 16;
    this.acquireIntervalMs = opts.acquireIntervalMs ?? 5000;
    this.logIntervalMs = opts.logIntervalMs ?? 10_000;
    this.logger = opts.log;
    this.mssClampMtu = opts.mssClampMtu ?? 0;
    const onHeldReady = opts.onHeldReady;
    this.pending = new PendingSpiQueues({ ...DEFAULT_PENDING_SPI_LIMITS, ...opts.pendingSpi });
    const onPendingSpiReady = opts.onPendingSpiReady;
    sad.onSaAdded((sa) => {
      this.flowCache.clear();
      if (sa.direction === 'in' && this.pending.markInstalled(sa.spi >>> 0)) onPendingSpiReady?.(sa.spi >>> 0);
    });
    sad.onSpiReleased((spi) => this.dropPending(spi, 'its exchange failed'));
    sad.onOutboundReady((reqid) => {
      const st = this.policyState.get(reqid);
      if (st && st.held.length > 0 && onHeldReady) onHeldReady(reqid);
      // A per-peer CHILD_SA under a per-destination trap: the packets held for its peer go now.
      const peer = sad.spd.get(reqid, 'out')?.spec.remoteAddress;
      if (this.destinationStates === 0 || !peer || !onHeldReady) return;
      for (const [key, held] of this.policyState) if (typeof key === 'string' && key.endsWith(`|${peer}`) && held.held.length > 0) onHeldReady(key);
    });
    sad.onPolicyChange(({ entry, added }) => {
      this.flowCache.clear();
      // held packets survive a policy being replaced (trap → CHILD_SA policy), not its removal
      if (!added && entry.spec.direction === 'out' && !sad.spd.get(entry.spec.reqid, 'out')) {
        this.policyState.delete(entry.spec.reqid);
        if (entry.spec.perDestination) this.forgetDestinations(entry.spec.reqid);
      }
    });
  }

  /** Refresh the coarse clock used for `lastUsed` (the I/O loop calls it once per batch). */
  tick(nowMs = this.sad.now()): void {
    this.nowSeconds = Math.floor(nowMs / 1000);
  }

  /**
   * reqids whose CHILD_SA is installed but whose outbound routes are not yet
   * (the daemon adds them asynchronously): decrypted packets wait here, since
   * the host's answer to them would leave in the clear through the main table.
   */
  private readonly inboundWait = new Map<number, Buffer[]>();

  /** Hold decrypted packets of `reqid` until `releaseInbound` (at most hold_packets, at least 64). */
  waitInbound(reqid: number): void {
    if (!this.inboundWait.has(reqid)) this.inboundWait.set(reqid, []);
  }

  /** Whether `packet`, decrypted for `reqid`, was kept back (copied) instead of being delivered now. */
  keepInbound(reqid: number, packet: Buffer, length = packet.length): boolean {
    if (this.inboundWait.size === 0) return false;
    const q = this.inboundWait.get(reqid);
    if (q === undefined) return false;
    if (q.length < Math.max(64, this.holdPackets)) q.push(Buffer.from(packet.subarray(0, length)));
    else this.counters.inRouteWaitOverflow++;
    return true;
  }

  /** The packets kept back for `reqid`; it delivers directly from now on. */
  releaseInbound(reqid: number): Buffer[] {
    const q = this.inboundWait.get(reqid) ?? [];
    this.inboundWait.delete(reqid);
    return q;
  }

  /**
   * The ESP packets held for `spi` while its exchange was under way, in
   * arrival order, to be run through `inbound` now that its SA is installed;
   * later packets for `spi` take the normal path.
   */
  takePendingSpi(spi: number): HeldEsp[] {
    return this.pending.take(spi >>> 0);
  }

  /** Drop packets held for pending SPIs longer than the age limit (the I/O loop's timer calls it). */
  expirePendingSpis(): void {
    const n = this.pending.expire(this.sad.now());
    if (n === 0) return;
    this.counters.inHeldPendingSpiDropped += n;
    this.rateLog('pending-spi-expired', 'info', () => `dropped ${n} ESP packet(s) held too long for SPIs whose SAs were not installed`);
  }

  private dropPending(spi: number, why: string): void {
    const n = this.pending.drop(spi);
    if (n === 0) return;
    this.counters.inHeldPendingSpiDropped += n;
    this.rateLog(`pending-spi-released-${spi}`, 'info', () => `dropped ${n} ESP packet(s) held for SPI ${spiHex(spi)}: ${why}`);
  }

  private forgetDestinations(reqid: number): void {
    for (const key of [...this.policyState.keys()]) {
      if (typeof key === 'string' && key.startsWith(`${reqid}|`)) {
        this.policyState.delete(key);
        this.destinationStates--;
      }
    }
  }

  /** The hold state of `policy` for the packet in `this.flow`: per destination for a per-destination trap. */
  private holdState(policy: SpdEntry): PolicyRuntime {
    const reqid = policy.spec.reqid;
    let key: HoldKey = reqid;
    if (policy.spec.perDestination) {
      const flow = this.flow;
      key = `${reqid}|${formatIp(flow.buf.subarray(flow.dstOff, flow.dstOff + (flow.family === 4 ? 4 : 16)))}`;
    }
    let st = this.policyState.get(key);
    if (!st) {
      st = { held: [], lastAcquire: -Infinity };
      if (typeof key === 'string') {
        // Traffic to many destinations of a group must not grow this without bound.
        if (this.destinationStates >= MAX_DESTINATION_STATES) {
          for (const k of this.policyState.keys()) {
            if (typeof k !== 'string') continue;
            this.counters.outHoldOverflow += this.policyState.get(k)!.held.length;
            this.policyState.delete(k);
            this.destinationStates--;
            break;
          }
        }
        this.destinationStates++;
      }
      this.policyState.set(key, st);
    }
    return st;
  }

  /** The packets held for `reqid` (removed from the queue), to be run through `outbound` again. */
  takeHeld(reqid: HoldKey): Buffer[] {
    const st = this.policyState.get(reqid);
    if (!st) return [];
    return st.held.splice(0);
  }

  // -----------------------------------------------------------------------
  // Outbound (RFC 4301 §5.1)

  /**
   * Decide about `pkt[0, length)` read from the TUN device. For OUT_SEND the
   * protected packet is in `out[0, res.length)`: a whole IP packet for a raw
   * SA (transport: the original header; tunnel: a new outer header), the ESP
   * packet alone for an ESP-in-UDP SA. `out` must not overlap `pkt` and
   * needs room for the packet plus ESP and outer header overhead (~100 octets).
   */
  outbound(pkt: Buffer, length: number, out: Buffer, res: OutboundResult): void {
    res.verdict = OUT_DROP;
    res.length = 0;
    res.sa = undefined;
    const c = this.counters;
    const flow = this.flow;
    if (!flow.read(pkt, length)) {
      c.outMalformed++;
      return;
    }
    let policy = this.flowCache.get(flow);
    if (policy === FLOW_CACHE_MISS) {
      policy = this.sad.spd.lookup(flow, 'out');
      this.flowCache.set(flow, policy);
    }
    if (!policy) {
      c.outNoPolicy++;
      this.rateLog('no-policy', 'debug', () => `dropped an outbound packet no policy selects (${this.describeFlow()})`);
      return;
    }
    const action = policy.spec.action;
    if (action === 'bypass') {
      c.outBypass++;
      res.verdict = OUT_CLEAR;
      return;
    }
    if (action === 'discard') {
      c.outDiscard++;
      return;
    }
    if (this.globalOff !== undefined) {
      if (this.globalOff === 'clear') {
        c.outGlobalClear++;
        res.verdict = OUT_CLEAR;
      } else {
        c.outGlobalDrop++;
      }
      return;
    }
    if (this.mssClampMtu > 0 && flow.protocol === IPPROTO_TCP) clampTcpMss(pkt, length, this.mssClampMtu);
    const sa = this.sad.outboundSaFor(policy.spec.reqid);
    if (sa === undefined || !this.protect(sa, pkt, length, out, res)) this.withoutSa(policy, pkt, length, res);
  }

  /** Seal with `sa`; false if the SA cannot be used (sequence numbers or lifetime exhausted). */
  private protect(sa: SadEntry, pkt: Buffer, length: number, out: Buffer, res: OutboundResult): boolean {
    const seq = sa.seq + 1;
    if (seq > sa.maxSeq) {
      // RFC 4303 §3.3.3: the counter must not cycle; the SA is replaced by a rekey.
      this.sad.sequenceExhausted(sa);
      return false;
    }
    const split = sa.spec.mode === 'transport' ? transportSplit(pkt, length) : undefined;
    if (sa.spec.mode === 'transport' && split === undefined) {
      this.counters.outMalformed++;
      res.verdict = OUT_DROP;
      return true;
    }
    // The lifetime check may raise an expire whose listener removes the SA at once: then it is gone.
    if (!this.sad.account(sa, protectedLength(split, length), this.nowSeconds) || sa.removed) {
      this.counters.expiredDrops++;
      return false;
    }
    const stage = this.sealStage;
    const handle = stage === undefined ? 0 : (sa.esp.ctx.nativeHandle ?? 0);
    let n = -1;
    if (handle > 0) {
      n = this.stageSeal(stage!, handle, sa, seq, pkt, length, split, out);
    } else {
      if (stage !== undefined) stage.desc[stage.index * ESP_DESC_SLOTS + EspSealDesc.Flags] = ESP_SEAL_PRESEALED;
      n = this.sealHere(sa, seq, length === pkt.length ? pkt : pkt.subarray(0, length), split, out);
    }
    if (n >= 0) sa.seq = seq; // nothing was sealed otherwise: the number is not used up
    if (n < 0) {
      this.counters.outMalformed++;
      res.verdict = OUT_DROP;
      return true;
    }
    this.counters.outPackets++;
    this.counters.outBytes += length;
    res.verdict = OUT_SEND;
    res.length = n;
    res.sa = sa;
    return true;
  }

  /**
   * The batched native path of `protect`: the same checks and the same octets as `sealHere`,
   * but only the header in front of ESP is written now; the ESP packet is described in `stage`
   * (IV = the sequence number, as `sealHere`). Returns the length the packet will have, or -1.
   */
  private stageSeal(
    stage: SealStage,
    handle: number,
    sa: SadEntry,
    seq: number,
    pkt: Buffer,
    length: number,
    split: ReturnType<typeof transportSplit>,
    out: Buffer,
  ): number {
    let srcOff = 0;
    let payloadLength = length;
    let nextHeader: number;
    if (sa.spec.mode === 'tunnel') {
      nextHeader = tunnelNextHeader(pkt);
      if (nextHeader < 0) return -1;
    } else {
      // Next Header 59 would be taken for a dummy packet and dropped by the peer (RFC 4303 §2.6)
      nextHeader = pkt[split!.nextHeaderField]!;
      if (nextHeader === IPPROTO_NONE) return -1;
      srcOff = split!.headerLength;
      payloadLength = split!.totalLength - srcOff;
    }
    const espLength = espSealedLength(sa.esp, payloadLength);
    let espOff = 0;
    if (sa.spec.encap !== undefined) {
      // the ESP packet goes into a UDP datagram (RFC 3948): it must fit one
      if (espLength > 0xffff - 8 - (sa.family === 4 ? IPV4_MIN_HEADER : 0)) return -1;
    } else if (sa.spec.mode === 'tunnel') {
      espOff = outerHeaderLength(sa.localAddress.length);
      if (espLength + (espOff === IPV4_MIN_HEADER ? espOff : 0) > 0xffff) return -1;
      buildOuterHeader({ src: sa.localAddress, dst: sa.remoteAddress, payloadLength: espLength, inner: pkt }, out, 0);
    } else {
      espOff = split!.headerLength;
      if (espOff + espLength > (pkt[0]! >> 4 === 4 ? 0xffff : 0xffff + IPV6_HEADER)) return -1;
      transportHeaderInto(pkt, split!, espLength, out);
    }
    if (espOff + espLength > out.length) throw new RangeError(`ESP: output buffer needs ${espOff + espLength} octets`);
    const d = stage.index * ESP_DESC_SLOTS;
    const desc = stage.desc;
    desc[d + EspSealDesc.SrcOff] = srcOff;
    desc[d + EspSealDesc.PayloadLength] = payloadLength;
    desc[d + EspSealDesc.NextHeader] = nextHeader;
    desc[d + EspSealDesc.Key] = handle;
    desc[d + EspSealDesc.Spi] = sa.esp.spi;
    desc[d + EspSealDesc.SeqHigh] = seqHigh(seq);
    desc[d + EspSealDesc.SeqLow] = seq >>> 0;
    desc[d + EspSealDesc.EspOff] = espOff;
    desc[d + EspSealDesc.Flags] = sa.esp.esn ? ESP_SEAL_ESN : 0;
    stage.src[stage.index] = pkt;
    return espOff + espLength;
  }

  /** Seal `packet` with `sa` into `out` now (the JS path); the length, or -1. */
  private sealHere(sa: SadEntry, seq: number, packet: Buffer, split: ReturnType<typeof transportSplit>, out: Buffer): number {
    const length = packet.length;
    let n = -1;
    // IV: the sequence number, unique per packet of an SA (RFC 4106 §3.1).
    if (sa.spec.encap !== undefined) {
      // the ESP packet goes into a UDP datagram (RFC 3948): it must fit one
      const room = 0xffff - 8 - (sa.family === 4 ? IPV4_MIN_HEADER : 0);
      if (sa.spec.mode === 'tunnel') {
        if (espSealedLength(sa.esp, length) <= room) n = encapTunnelInto(sa.esp, seq, seq, packet, out, 0);
      } else {
        // Next Header 59 would be taken for a dummy packet and dropped by the peer (RFC 4303 §2.6)
        if (split !== undefined && packet[split.nextHeaderField] !== IPPROTO_NONE && espSealedLength(sa.esp, split.totalLength - split.headerLength) <= room) {
          n = sealEspInto(sa.esp, seq, seq, packet.subarray(split.headerLength, split.totalLength), packet[split.nextHeaderField]!, out, 0);
        }
      }
    } else if (sa.spec.mode === 'tunnel') {
      const hdr = outerHeaderLength(sa.localAddress.length);
      // the outer packet must fit its length field (IPv4 total length, IPv6 payload length)
      if (espSealedLength(sa.esp, length) + (hdr === IPV4_MIN_HEADER ? hdr : 0) <= 0xffff) {
        n = encapTunnelInto(sa.esp, seq, seq, packet, out, hdr);
        if (n >= 0) n += buildOuterHeader({ src: sa.localAddress, dst: sa.remoteAddress, payloadLength: n, inner: packet }, out, 0);
      }
    } else {
      n = encapTransportInto(sa.esp, seq, seq, packet, out, 0);
    }
    return n;
  }

  private withoutSa(policy: SpdEntry, pkt: Buffer, length: number, res: OutboundResult): void {
    const c = this.counters;
    const reqid = policy.spec.reqid;
    if (policy.spec.failureMode === 'private-or-clear') {
      c.outFallbackClear++;
      res.verdict = OUT_CLEAR;
      this.rateLog(
        `fallback-${reqid}`,
        'warn',
        () => `policy {${reqid}} has no SA: passing traffic in the clear (private-or-clear fallback; ${this.describeFlow()})`,
      );
      this.acquire(policy);
      return;
    }
    const st = this.holdState(policy);
    if (st.held.length < this.holdPackets) {
      st.held.push(Buffer.from(pkt.subarray(0, length)));
      c.outHeld++;
      res.verdict = OUT_HELD;
    } else if (this.holdPackets > 0) {
      c.outHoldOverflow++;
    } else {
      c.outNoSa++;
    }
    this.acquire(policy);
  }

  private acquire(policy: SpdEntry): void {
    const reqid = policy.spec.reqid;
    const st = this.holdState(policy);
    const now = this.sad.now();
    if (now - st.lastAcquire < this.acquireIntervalMs) return;
    st.lastAcquire = now;
    this.counters.acquires++;
    const flow = this.flow;
    const e: AcquireEvent = {
      reqid,
      packetSelector: { local: flowSelector(flow, flow.srcOff, flow.srcPort), remote: flowSelector(flow, flow.dstOff, flow.dstPort) },
    };
    this.sad.emitAcquire(e);
  }

  // -----------------------------------------------------------------------
  // Inbound (RFC 4301 §5.2, RFC 4303 §3.4)

  /**
   * Process one received ESP packet. `buf[espOff, espEnd)` is the ESP packet;
   * for raw IPv4 `buf` is the whole IP packet (header at 0), otherwise
   * `espOff` is 0 and no IP header is present. `scratch` (≥ the packet + 40
   * octets) is where an IP header is rebuilt when the packet arrived without
   * one. On success `res.packet` is the packet for the TUN device (a view of
   * `buf`, `scratch` or the AEAD's output).
   */
  inbound(buf: Buffer, espOff: number, espEnd: number, src: InboundSource, scratch: Buffer, res: InboundResult): void {
    res.packet = undefined;
    res.sa = undefined;
    const c = this.counters;
    const esp = buf.subarray(espOff, espEnd);
    const spi = espSpi(esp);
    if (spi === undefined) {
      c.inMalformed++;
      this.rateLog('malformed', 'debug', () => `dropped a ${esp.length}-octet packet too short for ESP from ${formatIp(src.address)}`);
      return;
    }
    const sa = this.sad.inboundSa(spi);
    // A reserved SPI's packets wait for its SA; once it is installed, arrivals queue behind them until they are taken.
    if ((sa === undefined ? this.sad.spiReserved(spi) : this.pending.active && this.pending.installed(spi)) && this.holdPending(spi, buf, espOff, espEnd, src))
      return;
    if (sa === undefined || sa.family !== src.family) {
      c.inUnknownSpi++;
      this.rateLog('unknown-spi', 'info', () => `dropped ESP with unknown SPI ${spiHex(spi)} from ${formatIp(src.address)}`);
      return;
    }
    const replay = sa.replay!;
    const candidate = replay.check(espSeqLow(esp)!);
    if (candidate < 0) {
      c.inReplay++;
      sa.counters.replayDrops++;
      this.rateLog(`replay-${spi}`, 'debug', () => `SA ${sa.name}: dropped a replayed or too old packet (seq ${espSeqLow(esp)})`);
      return;
    }
    const high = seqHigh(candidate);
    let packet: Buffer | undefined;
    /** What the SA protected (counted, as XFRM does): the whole inner packet in tunnel mode, the ESP payload in transport mode. */
    let protectedBytes = 0;
    let failure: string | undefined;
    // Whether the ICV verified: only then may the packet move the replay window.
    let authenticated = true;
    if (sa.spec.mode === 'tunnel') {
      const r = decapTunnel(sa.esp, esp, high, sa.counters);
      if (r.ok) protectedBytes = (packet = r.packet).length;
      else failure = r.reason;
    } else if (!src.udp && src.family === 4 && espOff > 0) {
      const r = decapTransport(sa.esp, buf.subarray(0, espEnd), high, sa.counters);
      if (r.ok)
        protectedBytes = (packet = r.packet).length - (packet[0]! & 0x0f) * 4; // IPv4: after its header
      else {
        failure = r.reason;
        // here 'malformed' means the IP packet around ESP, before any ICV check
        if (failure === 'malformed') authenticated = false;
      }
    } else {
      const r = openEsp(sa.esp, esp, high, sa.counters);
      if (r.ok) {
        protectedBytes = r.payload.length;
        packet = this.rebuildTransport(sa, src, r.nextHeader, r.payload, scratch);
        if (packet === undefined) failure = 'malformed';
      } else {
        failure = r.reason;
      }
    }
    if (packet === undefined) {
      failure ??= 'malformed';
      this.countInboundFailure(sa, failure);
      if (failure === 'icv' || failure === 'truncated') authenticated = false;
      // A packet that authenticated (a dummy, bad padding, a malformed inner packet) still used up its sequence number.
      if (authenticated) replay.accept(candidate);
      return;
    }
    // Only an authenticated packet moves the window (RFC 4303 §3.4.3).
    if (!replay.accept(candidate)) {
      c.inReplay++;
      sa.counters.replayDrops++;
      return;
    }
    if (!this.flow.read(packet) || !this.flow.matches(sa.localSelectors, sa.remoteSelectors, 'in')) {
      c.inPolicy++;
      sa.counters.policyDrops++;
      this.rateLog(`policy-${spi}`, 'warn', () => `SA ${sa.name}: dropped a decrypted packet outside the SA's traffic selectors (${this.describeFlow()})`);
      return;
    }
    if (!this.sad.account(sa, protectedBytes, this.nowSeconds)) {
      c.expiredDrops++;
      return;
    }
    if (this.mssClampMtu > 0 && this.flow.protocol === IPPROTO_TCP) clampTcpMss(packet, packet.length, this.mssClampMtu);
    c.inPackets++;
    c.inBytes += packet.length;
    res.packet = packet;
    res.length = packet.length;
    res.sa = sa;
  }

  // -----------------------------------------------------------------------
  // Inbound, batched (the native open of native/tunsec_esp.cc): `inboundStage` does what
  // `inbound` does before the ICV check, the I/O loop opens the staged batch in one native
  // call, `inboundFinish` does what `inbound` does after it — same checks, same counters.

  /**
   * Stage one received ESP packet (arguments as `inbound`) for the native open; IN_DONE when
   * it was dropped or held (counted), IN_JS when `inbound` must take it, IN_FLUSH when the
   * staged packets must be opened and finished first (then stage it again).
   */
  inboundStage(buf: Buffer, espOff: number, espEnd: number, src: InboundSource, st: OpenStage): number {
    const c = this.counters;
    if (espEnd - espOff < 8) return IN_JS;
    const spi = ((buf[espOff]! << 24) | (buf[espOff + 1]! << 16) | (buf[espOff + 2]! << 8) | buf[espOff + 3]!) >>> 0;
    const sa = this.sad.inboundSa(spi);
    if (sa === undefined || sa.family !== src.family || this.pending.active) return IN_JS;
    let mode: number;
    if (sa.spec.mode === 'tunnel') mode = ESP_OPEN_MODE_TUNNEL;
    else if (!src.udp && src.family === 4 && espOff > 0) mode = ESP_OPEN_MODE_IPV4_TRANSPORT;
    else return IN_JS;
    const handle = sa.esp.ctx.nativeHandle ?? 0;
    if (handle <= 0) return IN_JS;
    const replay = sa.replay!;
    const low = ((buf[espOff + 4]! << 24) | (buf[espOff + 5]! << 16) | (buf[espOff + 6]! << 8) | buf[espOff + 7]!) >>> 0;
    if (replay.esn) {
      // RFC 4304: the Seq#Hi guess depends on the window's top, which packets staged before this
      // one may move; if they could change the guess, they are finished first (as one by one).
      const staged = st.esnTop.get(sa);
      if (staged !== undefined && staged > replay.top && replay.guessHigh(low, replay.top) !== replay.guessHigh(low, staged)) return IN_FLUSH;
    }
    const candidate = replay.check(low);
    if (candidate < 0) {
      c.inReplay++;
      sa.counters.replayDrops++;
      this.rateLog(`replay-${spi}`, 'debug', () => `SA ${sa.name}: dropped a replayed or too old packet (seq ${low})`);
      return IN_DONE;
    }
    if (replay.esn && candidate > (st.esnTop.get(sa) ?? 0)) st.esnTop.set(sa, candidate);
    const i = st.count++;
    const d = i * ESP_DESC_SLOTS;
    const desc = st.desc;
    desc[d + EspOpenDesc.EspOff] = espOff;
    desc[d + EspOpenDesc.EspEnd] = espEnd;
    desc[d + EspOpenDesc.Key] = handle;
    desc[d + EspOpenDesc.SeqHigh] = seqHigh(candidate);
    desc[d + EspOpenDesc.Flags] = (replay.esn ? 1 : 0) | (mode << 8);
    st.bufs[i] = buf;
    st.sas[i] = sa;
    st.candidates[i] = candidate;
    return IN_STAGED;
  }

  /** Complete staged packet `i` after the native open; on success `res.packet[0, res.length)` is for the TUN device. */
  inboundFinish(st: OpenStage, i: number, res: InboundResult): void {
    res.packet = undefined;
    res.length = 0;
    res.sa = undefined;
    const c = this.counters;
    const sa = st.sas[i]!;
    st.sas[i] = undefined;
    const buf = st.bufs[i] as Buffer;
    const d = i * ESP_DESC_SLOTS;
    const status = st.desc[d + EspOpenDesc.Status]!;
    const candidate = st.candidates[i]!;
    const replay = sa.replay!;
    switch (status) {
      case EspOpenStatus.Ok:
        break;
      case EspOpenStatus.Icv:
        sa.counters.icvFailures++;
        this.countInboundFailure(sa, 'icv');
        return;
      case EspOpenStatus.Truncated:
        this.countInboundFailure(sa, 'truncated');
        return;
      case EspOpenStatus.FrameMalformed:
        this.countInboundFailure(sa, 'malformed');
        return;
      case EspOpenStatus.NoKey:
        // the SA went while its packet was staged (not reachable within one batch)
        c.inUnknownSpi++;
        return;
      default:
        // authenticated (bad padding, a dummy, a malformed inner packet): its sequence number is used up
        if (status === EspOpenStatus.Padding) sa.counters.badPadding++;
        this.countInboundFailure(sa, status === EspOpenStatus.Padding ? 'padding' : status === EspOpenStatus.Dummy ? 'dummy' : 'malformed');
        replay.accept(candidate);
        return;
    }
    // Only an authenticated packet moves the window (RFC 4303 §3.4.3).
    if (!replay.accept(candidate)) {
      c.inReplay++;
      sa.counters.replayDrops++;
      return;
    }
    const length = st.desc[d + EspOpenDesc.OutLength]!;
    if (!this.flow.read(buf, length) || !this.flow.matches(sa.localSelectors, sa.remoteSelectors, 'in')) {
      c.inPolicy++;
      sa.counters.policyDrops++;
      this.rateLog(
        `policy-${sa.spec.spi}`,
        'warn',
        () => `SA ${sa.name}: dropped a decrypted packet outside the SA's traffic selectors (${this.describeFlow()})`,
      );
      return;
    }
    const protectedBytes = sa.spec.mode === 'tunnel' ? length : length - (buf[0]! & 0x0f) * 4;
    if (!this.sad.account(sa, protectedBytes, this.nowSeconds)) {
      c.expiredDrops++;
      return;
    }
    if (this.mssClampMtu > 0 && this.flow.protocol === IPPROTO_TCP) clampTcpMss(buf, length, this.mssClampMtu);
    c.inPackets++;
    c.inBytes += length;
    res.packet = buf;
    res.length = length;
    res.sa = sa;
  }

  /** Copy the packet into `spi`'s pending queue; false when an installed SA's queue is full (then it is opened at once). */
  private holdPending(spi: number, buf: Buffer, espOff: number, espEnd: number, src: InboundSource): boolean {
    // copies: the receive buffers and the source are reused for the next packet
    const copy = (): HeldEsp => ({
      buf: Buffer.from(buf.subarray(0, espEnd)),
      espOff,
      src: { family: src.family, address: Uint8Array.from(src.address), udp: src.udp },
    });
    if (this.pending.hold(spi, espEnd, this.sad.now(), copy)) {
      this.counters.inHeldPendingSpi++;
      this.rateLog(`pending-spi-${spi}`, 'debug', () => `holding ESP for SPI ${spiHex(spi)} from ${formatIp(src.address)} until its SA is installed`);
      return true;
    }
    if (this.pending.installed(spi)) return false;
    this.counters.inHeldPendingSpiDropped++;
    this.rateLog(`pending-spi-full`, 'info', () => `dropped ESP for pending SPI ${spiHex(spi)} from ${formatIp(src.address)}: the hold queue is full`);
    return true;
  }

  /**
   * Transport mode without a received IP header (raw IPv6, ESP-in-UDP): the
   * header is rebuilt from the outer source and the SA's local address; after
   * UDP encapsulation TCP/UDP checksums are recomputed (RFC 3948 §3.1.2).
   */
  private rebuildTransport(sa: SadEntry, src: InboundSource, nextHeader: number, payload: Buffer, scratch: Buffer): Buffer | undefined {
    const hl = sa.family === 4 ? IPV4_MIN_HEADER : IPV6_HEADER;
    const total = hl + payload.length;
    if (total > scratch.length || (sa.family === 4 && total > 0xffff) || payload.length > 0xffff) return undefined;
    buildOuterHeader({ src: src.address, dst: sa.localAddress, payloadLength: payload.length, protocol: nextHeader, tos: 0, df: 'clear', id: 0 }, scratch, 0);
    payload.copy(scratch, hl);
    const packet = scratch.subarray(0, total);
    if (src.udp) fixTransportChecksum(packet);
    return packet;
  }

  private countInboundFailure(sa: SadEntry, reason: string): void {
    const c = this.counters;
    switch (reason) {
      case 'icv':
        c.inIcv++;
        this.rateLog(`icv-${sa.spec.spi}`, 'warn', () => `SA ${sa.name}: dropped a packet whose ICV does not verify`);
        break;
      case 'padding':
        c.inPadding++;
        this.rateLog(`padding-${sa.spec.spi}`, 'warn', () => `SA ${sa.name}: dropped an authenticated packet with bad padding`);
        break;
      case 'dummy':
        c.inDummy++;
        break;
      default:
        c.inMalformed++;
        this.rateLog(`malformed-${sa.spec.spi}`, 'debug', () => `SA ${sa.name}: dropped a ${reason === 'truncated' ? 'truncated' : 'malformed'} packet`);
    }
  }

  // -----------------------------------------------------------------------

  private describeFlow(): string {
    const f = this.flow;
    const len = f.family === 4 ? 4 : 16;
    const src = formatIp(f.buf.subarray(f.srcOff, f.srcOff + len));
    const dst = formatIp(f.buf.subarray(f.dstOff, f.dstOff + len));
    const ports = f.srcPort >= 0 && f.protocol !== 1 && f.protocol !== 58 ? ` ${f.srcPort} → ${f.dstPort}` : '';
    return `proto ${f.protocol} ${src} → ${dst}${ports}`;
  }

  /** Log `key`'s message at most once per interval, saying how many were suppressed. */
  private rateLog(key: string, level: 'error' | 'warn' | 'info' | 'debug', message: () => string): void {
    if (!this.logger) return;
    const now = this.sad.now();
    const last = this.lastLog.get(key);
    if (last && now - last.at < this.logIntervalMs) {
      last.suppressed++;
      return;
    }
    const suppressed = last?.suppressed ?? 0;
    this.lastLog.set(key, { at: now, suppressed: 0 });
    if (this.lastLog.size > 4096) this.lastLog.clear();
    this.logger.log(level, suppressed > 0 ? `${message()} (and ${suppressed} more since the last report)` : message());
  }
}
