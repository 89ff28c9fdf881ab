/**
 * The IKE SA manager: the table of IKE SAs by our SPI, half-open SAs by
 * (SPIi, peer) so a retransmitted IKE_SA_INIT finds its SA (RFC 7296 §2.1),
 * the responder's COOKIE defence against half-open floods (§2.6), choosing the
 * connection for an incoming IKE_SA_INIT, and dispatching datagrams.
 * Sockets stay outside: the daemon feeds `receive()` and gives a sender.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { ExchangeType, IkeParseError, NotifyType, PayloadType, decodeMessage, encodeMessage, type IkeMessage } from './codec/index.js';
import { notify } from './codec/build.js';
import type { IpsecBackend } from '../esp/api.js';
import type { Logger } from './log.js';
import type { Endpoint } from './net/udp.js';
import { IkeSaContext, type AuthRefusal } from './sa/context.js';
import { IkeSa, OLD_INBOUND_GRACE_MS, type IkeSaEvents, type IkeSaIo } from './sa/ike-sa.js';
import type { RetransmitSettings } from './exchange/index.js';
import type { IkePeerConfig } from './sa/peer-config.js';
import { SaEventEmitter } from './sa/events.js';
import { randomSpi } from './tasks/ike-init.js';
import { setReassemblyDefaults, type ReassemblyLimits } from './codec/fragments.js';
import { type IpPrefix, longestMatch } from '../util/prefix.js';
import type { PublicKeyCrypto } from '../crypto/pool/types.js';

export interface ConnectionEntry {
  config: IkePeerConfig;
  /** Local addresses this connection uses ('%any' matches all). */
  localAddrs: string[];
  remoteAddrs: string[];
  /** The peer's IKE port (500). */
  remotePort: number;
  /**
   * A group connection (remote_addrs as prefixes): every host in them is a peer.
   * It is a template; IKE SAs are made with per-peer instances (`ManagerOptions.instanceFor`).
   */
  remotePrefixes?: IpPrefix[];
}

export interface ManagerOptions {
  connections: ConnectionEntry[];
  backend: IpsecBackend;
  log: Logger;
  io: IkeSaIo;
  /** Our IKE port (500) — where initiated SAs start. */
  ikePort: number;
  retransmit?: Partial<RetransmitSettings>;
  /** Half-open IKE SAs above which IKE_SA_INIT requests must carry a COOKIE (§2.6). */
  cookieThreshold?: number;
  /** INVALID_IKE_SPI notifies sent per second at most (§2.21.4); default 10. */
  invalidSpiPerSecond?: number;
  /** Half-open SAs are dropped after this long (strongSwan: 30 s). */
  halfOpenTimeoutMs?: number;
  /*
   * The limits below default to none (Infinity) for library users (tests, benchmarks that run
   * many handshakes from one address); the daemon always passes daemon.limits, whose defaults
   * are the safe ones (src/config/schema.ts limitsSchema, src/daemon/limits.ts).
   */
  /** Half-open SAs at most; IKE_SA_INIT requests beyond are dropped, even with a valid COOKIE. */
  halfOpenMax?: number;
  /** Half-open SAs from one IP address at most. */
  halfOpenPerPeer?: number;
  /** IKE_SA_INIT requests (each costs a key exchange) processed per second per IP address; burst twice that. */
  initPerPeerPerSecond?: number;
  /** IKE_AUTH requests (each costs signature checks) processed per second per IP address on half-open SAs; burst twice that. */
  authPerPeerPerSecond?: number;
  /** IP addresses whose rate state is kept; the least recently seen are forgotten (default 4096). */
  peersMax?: number;
  /** Process-wide RFC 7383 reassembly limits (per IKE SA, and `totalBytes` over all of them); see codec/fragments.ts. */
  reassembly?: Partial<ReassemblyLimits> & { totalBytes?: number };
  /** Clock in ms for the rate limits (tests replace it). */
  now?: () => number;
  /**
   * A request (not IKE_SA_INIT) for an IKE SA we do not know came from `remote`: the peer
   * holds an IKE SA we lost, e.g. across a restart (§2.21.4). Not called while draining.
   */
  unknownSaRequest?: (remote: Endpoint, local: Endpoint) => void;
  /**
   * The per-peer instance of a group connection for an IKE_SA_INIT from
   * `remoteAddress` (in its prefixes); undefined refuses the request.
   */
  instanceFor?: (group: ConnectionEntry, remoteAddress: string) => ConnectionEntry | undefined;
  /** Where key exchange and AUTH signatures run (daemon.crypto_workers); default inline. The caller closes it. */
  crypto?: PublicKeyCrypto;
}

/** The limits in force, for status and metrics (`daemon.limits`). */
export interface ManagerLimits {
  cookieThreshold: number;
  halfOpenMax: number;
  halfOpenPerPeer: number;
  halfOpenTimeoutMs: number;
  initPerPeerPerSecond: number;
  authPerPeerPerSecond: number;
  peersMax: number;
  invalidSpiPerSecond: number;
}

/** Per-address token buckets (refilled continuously, `rate` per second up to `2 × rate`). */
interface PeerRate {
  init: number;
  auth: number;
  at: number;
}

export interface ManagerCounters {
  malformed: number;
  unknownSpi: number;
  noConnection: number;
  cookiesSent: number;
  cookiesRejected: number;
  internalErrors: number;
  invalidSpiSent: number;
  /** IKE_SA_INIT requests dropped: `halfOpenMax` half-open SAs exist. */
  halfOpenLimitDrops: number;
  /** IKE_SA_INIT requests dropped: their address has `halfOpenPerPeer` half-open SAs. */
  peerHalfOpenDrops: number;
  /** IKE_SA_INIT requests dropped by the per-address rate limit. */
  initRateDrops: number;
  /** IKE_AUTH requests (on half-open SAs) dropped by the per-address rate limit. */
  authRateDrops: number;
  /** Half-open SAs dropped because IKE_AUTH did not complete within `halfOpenTimeoutMs`. */
  halfOpenTimeouts: number;
  /** Liveness checks (empty INFORMATIONAL, §2.4) sent by dpd_delay. */
  dpdChecks: number;
  /** Established IKE SAs that ended because the peer stopped answering (cause dead-peer). */
  deadPeers: number;
  /** IKE_SA_INIT requests dropped because the manager is draining (shutdown). */
  drainingDrops: number;
  /** Peers' IKE_AUTH we refused with AUTHENTICATION_FAILED (any reason; the log line says which). */
  authFailures: number;
  /** Of those, peers that offered NULL Authentication (RFC 7619) to a connection with remote.auth pubkey. */
  nullAuthRefused: number;
  /** Key exchanges and AUTH signatures lost to a failed crypto worker (daemon.crypto_workers; that exchange failed, the worker was replaced). */
  cryptoWorkerFailures: number;
}

const key = (spi: Buffer): string => spi.toString('hex');

/** Every IKE SA's life-cycle events, for the daemon (log, status, metrics). */
export type ManagerEvents = IkeSaEvents;

/**
 * Whether an IKE SA is a contact with the peer a new initiation of `config`
 * to `remoteAddress` would make (§2.4 INITIAL_CONTACT): same local identity,
 * the configured remote identity (any, if none), same address family.
 */
function sameContact(ctx: IkeSaContext, config: IkePeerConfig, remoteAddress: string): boolean {
  return (
    ctx.config.localId.value === config.localId.value &&
    (config.remoteId === undefined || ctx.peerId?.value === config.remoteId.value) &&
    // a group's instance: the contact is with its one peer, not with any host of the group
    (config.instancePeer === undefined || ctx.remote.address === config.instancePeer) &&
    ctx.remote.address.includes(':') === remoteAddress.includes(':')
  );
}

export class IkeSaManager {
  private readonly byLocalSpi = new Map<string, IkeSa>();
  private readonly halfOpen = new Map<string, IkeSa>();
  private cookieSecret = randomBytes(32);
  private invalidSpiWindowStart = 0;
  private invalidSpiSent = 0;
  private previousCookieSecret = this.cookieSecret;
  /** Each half-open SA's key in `halfOpen` and its timeout. */
  private readonly halfOpenSas = new Map<IkeSa, { key: string; address: string; timer: ReturnType<typeof setTimeout> | undefined }>();
  /** Half-open SAs per peer address (entries removed at 0). */
  private readonly halfOpenByAddress = new Map<string, number>();
  /** Rate state per peer address, least recently seen first (bounded by `peersMax`). */
  private readonly peerRates = new Map<string, PeerRate>();
  /** Rate-limited log lines (a fixed set of keys). */
  private readonly lastLog = new Map<string, { at: number; suppressed: number }>();
  readonly limits: Readonly<ManagerLimits>;
  /** Every IKE SA's events, forwarded (./sa/events.ts). */
  private readonly events: SaEventEmitter<IkeSa>;
  /** IKE SAs made by an IKE SA rekey (§2.18): their establishment is no new contact (no uniqueness check). */
  private readonly rekeyedSas = new WeakSet<IkeSa>();
  /** Every IKE SA's count of refused IKE_AUTHs (IkeSaContext.onAuthRefused), one function for all. */
  private readonly authRefused = (kind: AuthRefusal): void => {
    this.counters.authFailures++;
    if (kind === 'null-auth') this.counters.nullAuthRefused++;
  };
  /** §2.18: the IKE SA made by rekeying one of ours is registered under its new SPI (IkeSa.spawn of every IKE SA). */
  private readonly spawn = (next: IkeSaContext): IkeSa => {
    const successor = this.create(next, true);
    this.byLocalSpi.set(key(next.localSpi), successor);
    return successor;
  };
  readonly counters: ManagerCounters = {
    malformed: 0,
    unknownSpi: 0,
    noConnection: 0,
    cookiesSent: 0,
    cookiesRejected: 0,
    internalErrors: 0,
    invalidSpiSent: 0,
    halfOpenLimitDrops: 0,
    peerHalfOpenDrops: 0,
    initRateDrops: 0,
    authRateDrops: 0,
    halfOpenTimeouts: 0,
    dpdChecks: 0,
    deadPeers: 0,
    drainingDrops: 0,
    authFailures: 0,
    nullAuthRefused: 0,
    cryptoWorkerFailures: 0,
  };
  /** Shutting down (`drain()`): no new IKE SA is made, initiated or answered. */
  private drained = false;

  constructor(private readonly options: ManagerOptions) {
    this.limits = {
      cookieThreshold: options.cookieThreshold ?? 10,
      halfOpenMax: options.halfOpenMax ?? Infinity,
      halfOpenPerPeer: options.halfOpenPerPeer ?? Infinity,
      halfOpenTimeoutMs: options.halfOpenTimeoutMs ?? 30_000,
      initPerPeerPerSecond: options.initPerPeerPerSecond ?? Infinity,
      authPerPeerPerSecond: options.authPerPeerPerSecond ?? Infinity,
      peersMax: options.peersMax ?? 4096,
      invalidSpiPerSecond: options.invalidSpiPerSecond ?? 10,
    };
    this.events = new SaEventEmitter<IkeSa>(options.log, (sa) => sa.ctx.name);
    const pool = options.crypto?.counters;
    if (pool) Object.defineProperty(this.counters, 'cryptoWorkerFailures', { get: () => pool.workerFailures, enumerable: true });
    // What the manager does on every IKE SA's events, ahead of its subscribers': handlers here rather
    // than closures per IKE SA (docs/notes/memory.md). Each IKE SA's events are forwarded here (create()).
    this.events.on('destroyed', (sa, _reason, cause) => {
      this.unregister(sa);
      if (cause === 'dead-peer') this.counters.deadPeers++;
    });
    this.events.on('livenessCheck', () => this.counters.dpdChecks++);
    this.events.on('established', (sa) => {
      if (this.rekeyedSas.has(sa)) return;
      this.removeHalfOpen(sa); // also when IKE_AUTH completed after its public-key work (crypto workers)
      this.enforceUniqueness(sa);
    });
    this.events.on('reauthDue', (sa) => this.reauthenticate(sa));
    if (options.reassembly) setReassemblyDefaults(options.reassembly);
    // Soft expiries (rekey_bytes / rekey_packets / rekey_time) start the owning CHILD_SA's rekey.
    options.backend.on('expire', (e) => {
      if (e.hard) return;
      for (const sa of this.byLocalSpi.values()) {
        try {
          sa.softExpired(e);
        } catch (err) {
          this.counters.internalErrors++;
          options.log.log('error', `internal error handling an SA expiry: ${(err as Error).stack ?? String(err)}`);
        }
      }
    });
  }

  /** Subscribe to the events of every IKE SA this manager creates (initiated or responded). */
  on<K extends keyof ManagerEvents>(event: K, handler: ManagerEvents[K]): this {
    this.events.on(event, handler);
    return this;
  }

  /** A new IkeSa, with its events forwarded and its removal from the tables on destroy. */
  private create(ctx: IkeSaContext, rekeyed = false): IkeSa {
    if (this.options.crypto) ctx.crypto = this.options.crypto;
    const sa = new IkeSa(ctx, this.options.io, this.options.retransmit ?? {}, rekeyed);
    ctx.otherIkeSas = () => this.sas.filter((s) => s !== sa).map((s) => s.ctx);
    ctx.onAuthRefused = this.authRefused;
    if (rekeyed) this.rekeyedSas.add(sa);
    sa.spawn = this.spawn;
    sa.forwardEvents(this.events);
    return sa;
  }

  get sas(): IkeSa[] {
    return [...this.byLocalSpi.values()];
  }

  /** The connections new IKE SAs are made for (initiated or answered). */
  get connections(): readonly ConnectionEntry[] {
    return this.options.connections;
  }

  /**
   * Reload: IKE SAs created from now on (initiated, or answering an
   * IKE_SA_INIT) use these entries; SAs already there keep the IkePeerConfig
   * they were made with.
   */
  setConnections(connections: ConnectionEntry[]): void {
    this.options.connections = [...connections];
  }

  get halfOpenCount(): number {
    return this.halfOpen.size;
  }

  /** Peer addresses with rate state (bounded by `limits.peersMax`). */
  get peerStateCount(): number {
    return this.peerRates.size;
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  /** Take one token of `kind` from `address`'s bucket; false when it is empty. */
  private takeToken(address: string, kind: 'init' | 'auth'): boolean {
    const rate = kind === 'init' ? this.limits.initPerPeerPerSecond : this.limits.authPerPeerPerSecond;
    if (!Number.isFinite(rate)) return true; // no limit: no state either
    const now = this.now();
    const burst = 2 * rate;
    const refilled = (tokens: number, r: number, seconds: number): number => (Number.isFinite(r) ? Math.min(2 * r, tokens + seconds * r) : tokens);
    let st = this.peerRates.get(address);
    if (st) {
      this.peerRates.delete(address); // re-inserted below: the map stays in least-recently-seen order
      const seconds = Math.max(0, now - st.at) / 1000;
      st.init = refilled(st.init, this.limits.initPerPeerPerSecond, seconds);
      st.auth = refilled(st.auth, this.limits.authPerPeerPerSecond, seconds);
      st.at = now;
    } else {
      st = { init: 2 * this.limits.initPerPeerPerSecond, auth: 2 * this.limits.authPerPeerPerSecond, at: now };
      while (this.peerRates.size >= this.limits.peersMax) {
        const oldest = this.peerRates.keys().next().value;
        if (oldest === undefined) break;
        this.peerRates.delete(oldest);
      }
    }
    this.peerRates.set(address, st);
    if (st[kind] < 1 || burst < 1) return false;
    st[kind] -= 1;
    return true;
  }

  private addHalfOpen(hoKey: string, sa: IkeSa, address: string): void {
    this.halfOpen.set(hoKey, sa);
    this.halfOpenSas.set(sa, { key: hoKey, address, timer: undefined });
    this.halfOpenByAddress.set(address, (this.halfOpenByAddress.get(address) ?? 0) + 1);
  }

  /** `sa` is no longer half-open (established or gone). */
  private removeHalfOpen(sa: IkeSa): void {
    const entry = this.halfOpenSas.get(sa);
    if (!entry) return;
    this.halfOpenSas.delete(sa);
    if (this.halfOpen.get(entry.key) === sa) this.halfOpen.delete(entry.key);
    if (entry.timer !== undefined) clearTimeout(entry.timer);
    const n = (this.halfOpenByAddress.get(entry.address) ?? 1) - 1;
    if (n <= 0) this.halfOpenByAddress.delete(entry.address);
    else this.halfOpenByAddress.set(entry.address, n);
  }

  /** Rotate the COOKIE secret (§2.6 suggests periodically); the previous one stays valid once. */
  rotateCookieSecret(): void {
    this.previousCookieSecret = this.cookieSecret;
    this.cookieSecret = randomBytes(32);
  }

  /** A registered IKE SA we initiate (not started yet), from our IKE port to `remote`. */
  private newInitiatorSa(config: IkePeerConfig, localAddress: string, remote: Endpoint, initialContact: boolean): IkeSa {
    const ctx = new IkeSaContext(
      true,
      config,
      { address: localAddress, port: this.options.ikePort },
      remote,
      this.options.backend,
      this.options.log,
      randomSpi(),
    );
    ctx.sendInitialContact = initialContact;
    const sa = this.create(ctx);
    this.byLocalSpi.set(key(ctx.localSpi), sa);
    return sa;
  }

  /** Start an IKE SA for a configured connection; resolves when established, rejects with the reason it failed. */
  initiate(name: string, localAddress?: string): Promise<IkeSa> {
    if (this.draining) return Promise.reject(new Error('shutting down: no new IKE_SA is initiated'));
    const entry = this.options.connections.find((c) => c.config.name === name);
    if (!entry) return Promise.reject(new Error(`no connection named '${name}'`));
    if (entry.remotePrefixes)
      return Promise.reject(
        new Error(
          `connection '${name}' is a group (remote_addrs ${entry.remoteAddrs.join(', ')}): its instances are negotiated per peer when traffic hits its trap policy`,
        ),
      );
    return this.initiateEntry(entry, localAddress);
  }

  /** Start an IKE SA with `entry` (a configured connection or a group's per-peer instance). */
  initiateEntry(entry: ConnectionEntry, localAddress?: string): Promise<IkeSa> {
    if (this.draining) return Promise.reject(new Error('shutting down: no new IKE_SA is initiated'));
    const name = entry.config.name;
    const remoteAddress = entry.remoteAddrs.find((a) => a !== '%any');
    const local = localAddress ?? entry.localAddrs.find((a) => a !== '%any');
    if (!remoteAddress || !local) return Promise.reject(new Error(`connection '${name}' needs concrete local_addrs and remote_addrs to initiate`));
    // §2.4: INITIAL_CONTACT only when we hold no other IKE SA between these identities over this address family
    const initialContact =
      entry.config.unique !== 'never' && !this.sas.some((s) => s.state === 'established' && sameContact(s.ctx, entry.config, remoteAddress));
    const sa = this.newInitiatorSa(entry.config, local, { address: remoteAddress, port: entry.remotePort }, initialContact);
    return new Promise((resolve, reject) => {
      sa.on('established', () => resolve(sa));
      sa.on('destroyed', (_s, reason) => reject(new Error(reason)));
      sa.initiate();
    });
  }

  /**
   * Make-before-break reauthentication (reauth_time): a new IKE SA to the
   * same peer with a full IKE_AUTH (no INITIAL_CONTACT: the old one is still
   * there), the CHILD_SAs the old one carried created again on it (same
   * reqids: their policies stay, outbound traffic moves to the new SAs as they
   * are installed), then the old IKE SA is deleted after a grace period for
   * packets in flight. If the new one fails, the old one stays until over_time.
   */
  private reauthenticate(old: IkeSa): void {
    if (old.state !== 'established' || old.successor || this.draining) return;
    const log = this.options.log;
    const entry = this.options.connections.find((c) => c.config === old.ctx.config);
    const sa = this.newInitiatorSa(old.ctx.config, old.ctx.local.address, { address: old.ctx.remote.address, port: entry?.remotePort ?? 500 }, false);
    const wanted = [...new Set(old.ctx.children.map((c) => c.name))];
    // no IKE rekey of the old one meanwhile (either side): the new one would not replace its successor
    old.reauthenticating = true;
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      log.log('info', `${old.ctx.name}: reauthenticated as ${sa.ctx.name} (${sa.ctx.children.length} CHILD_SA(s)); deleting the old IKE_SA`);
      old.retire();
      const t = setTimeout(() => old.delete(`reauthenticated, replaced by ${sa.ctx.name}`, 'replaced'), OLD_INBOUND_GRACE_MS);
      t.unref?.();
    };
    const missing = (): string[] => wanted.filter((n) => !sa.ctx.children.some((c) => c.name === n));
    let failed = 0;
    sa.on('established', () => {
      for (const name of missing()) {
        const config = sa.ctx.config.children.find((c) => c.name === name);
        if (config) sa.createChild(config, 'reauthentication');
      }
      if (missing().length === 0) finish();
      // the rest of the children are settled (or given up) within a few exchanges
      const t = setTimeout(finish, 10_000);
      t.unref?.();
    });
    sa.on('childEstablished', () => {
      if (sa.state === 'established' && missing().length === 0) finish();
    });
    sa.on('childFailed', () => {
      if (sa.state === 'established' && ++failed >= missing().length) finish();
    });
    sa.on('destroyed', (_s, reason) => {
      if (finished) return;
      old.reauthenticating = false;
      log.log('warn', `${old.ctx.name}: reauthentication failed (${reason}); the IKE_SA stays until over_time`);
    });
    sa.initiate();
  }

  /**
   * A new IKE SA between the same identities as older ones (§2.4, swanctl's
   * `unique`): with INITIAL_CONTACT from the peer (it restarted, its old SAs
   * are gone) the old ones are destroyed without a Delete; `replace` deletes
   * them anyway, `keep` deletes the new one, `never` keeps all. SAs being
   * rekeyed away are not counted.
   */
  private enforceUniqueness(sa: IkeSa): void {
    const policy = sa.ctx.config.unique ?? 'no';
    if (policy === 'never' || !sa.ctx.peerId) return;
    const same = (s: IkeSa): boolean =>
      s !== sa &&
      s.state === 'established' &&
      !s.successor &&
      s.ctx.peerId !== undefined &&
      s.ctx.peerId.type === sa.ctx.peerId!.type &&
      s.ctx.peerId.value === sa.ctx.peerId!.value &&
      s.ctx.config.localId.value === sa.ctx.config.localId.value &&
      // one contact per address family, as strongSwan: an IPv6 IKE SA does not replace the IPv4 one
      s.ctx.remote.address.includes(':') === sa.ctx.remote.address.includes(':');
    const older = this.sas.filter(same);
    if (older.length === 0) return;
    const log = this.options.log;
    if (policy === 'keep') {
      log.log('info', `${sa.ctx.name}: an IKE_SA with ${sa.ctx.peerId.value} exists already (unique: keep); deleting the new one`);
      return sa.delete('duplicate IKE_SA (unique: keep)', 'replaced');
    }
    for (const old of older) {
      if (policy === 'replace') {
        log.log('info', `${old.ctx.name}: replaced by ${sa.ctx.name} (unique: replace); deleting it`);
        old.delete(`replaced by ${sa.ctx.name} (unique: replace)`, 'replaced');
      } else if (sa.ctx.peerInitialContact) {
        log.log('info', `${old.ctx.name}: ${sa.ctx.peerId.value} sent INITIAL_CONTACT in ${sa.ctx.name}: it lost this IKE_SA, destroying it without a Delete`);
        old.destroy(`replaced by ${sa.ctx.name} after INITIAL_CONTACT`, 'replaced');
      }
    }
  }

  private unregister(sa: IkeSa): void {
    if (this.byLocalSpi.get(key(sa.ctx.localSpi)) === sa) this.byLocalSpi.delete(key(sa.ctx.localSpi));
    this.removeHalfOpen(sa);
  }

  /**
   * A datagram that arrived on one of our IKE sockets (marker already removed).
   * Nothing a peer sends may take the daemon down: an unexpected error is
   * logged and counted, and only the datagram is lost.
   */
  receive(datagram: Buffer, local: Endpoint, remote: Endpoint): void {
    try {
      this.dispatch(datagram, local, remote);
    } catch (err) {
      this.counters.internalErrors++;
      this.options.log.log('error', `internal error handling a datagram from ${remote.address}:${remote.port}: ${(err as Error).stack ?? String(err)}`);
    }
  }

  private dispatch(datagram: Buffer, local: Endpoint, remote: Endpoint): void {
    let message: IkeMessage;
    try {
      message = decodeMessage(datagram);
    } catch (err) {
      if (err instanceof IkeParseError) {
        this.counters.malformed++;
        this.options.log.log('debug', `malformed IKE datagram from ${remote.address}:${remote.port} dropped: ${err.message}`);
        return;
      }
      throw err;
    }
    const h = message.header;
    if (h.exchangeType === ExchangeType.IKE_SA_INIT && !h.response && h.initiator && h.spiR.equals(Buffer.alloc(8))) {
      return this.receiveInitRequest(datagram, message, local, remote);
    }
    // The sender set I when it is the original initiator: then we are the responder and our SPI is SPIr.
    const ourSpi = h.initiator ? h.spiR : h.spiI;
    const sa = this.byLocalSpi.get(key(ourSpi));
    if (!sa) {
      this.counters.unknownSpi++;
      this.options.log.log('debug', `IKE message for unknown SPI ${ourSpi.toString('hex')} from ${remote.address} dropped`);
      // §2.21.4: answer requests only; an IKE_SA_INIT with a responder SPI is no request to start an IKE SA, nor one of an SA
      if (!h.response && h.exchangeType !== ExchangeType.IKE_SA_INIT) {
        this.sendInvalidIkeSpi(message, local, remote);
        if (!this.draining) this.options.unknownSaRequest?.(remote, local);
      }
      return;
    }
    const wasHalfOpen = this.halfOpenSas.has(sa);
    if (
      wasHalfOpen &&
      h.exchangeType === ExchangeType.IKE_AUTH &&
      !h.response &&
      this.costsSignatureCheck(message) &&
      !this.takeToken(remote.address, 'auth')
    ) {
      this.counters.authRateDrops++;
      this.options.log.log('debug', `IKE_AUTH request from ${remote.address} dropped: more than ${this.limits.authPerPeerPerSecond}/s from this address`);
      return;
    }
    sa.receive(datagram, message, local, remote);
    if (wasHalfOpen && (sa.state as string) === 'established') this.removeHalfOpen(sa);
  }

  /** Log `key`'s message at most once per 10 s, then say how many were suppressed. */
  private rateLog(key: string, level: 'info' | 'warn' | 'debug', message: () => string): void {
    const now = this.now();
    const last = this.lastLog.get(key);
    if (last && now - last.at < 10_000) {
      last.suppressed++;
      return;
    }
    const suppressed = last?.suppressed ?? 0;
    this.lastLog.set(key, { at: now, suppressed: 0 });
    this.options.log.log(level, suppressed > 0 ? `${message()} (and ${suppressed} more since the last report)` : message());
  }

  /** An unfragmented IKE_AUTH request, or its first fragment (the others only join a reassembly). */
  private costsSignatureCheck(message: IkeMessage): boolean {
    const last = message.payloads[message.payloads.length - 1];
    return last?.type !== PayloadType.SKF || last.fragmentNumber === 1;
  }

  private receiveInitRequest(datagram: Buffer, message: IkeMessage, local: Endpoint, remote: Endpoint): void {
    const hoKey = `${key(message.header.spiI)}/${remote.address}/${remote.port}`;
    const existing = this.halfOpen.get(hoKey);
    if (existing) return existing.receive(datagram, message, local, remote);
    if (this.draining) {
      this.counters.drainingDrops++;
      this.rateLog('draining', 'info', () => `IKE_SA_INIT from ${remote.address} dropped: shutting down, no new IKE_SA`);
      return;
    }

    // Cheapest checks first: the COOKIE is stateless; only requests that proved their source address get per-address state.
    if (this.halfOpen.size >= this.limits.cookieThreshold && !this.cookieValid(message, remote)) {
      this.sendCookie(message, local, remote);
      return;
    }
    // Connection selection is a scan of the configuration: before any per-address state is made.
    const entry = this.connectionFor(local.address, remote.address);
    if (!entry) {
      this.counters.noConnection++;
      // spoofable and unauthenticated: at most one line per interval
      this.rateLog('no-connection', 'info', () => `no connection configured for IKE_SA_INIT from ${remote.address} to ${local.address}; ignored`);
      return;
    }
    if (this.halfOpen.size >= this.limits.halfOpenMax) {
      this.counters.halfOpenLimitDrops++;
      this.options.log.log('debug', `IKE_SA_INIT from ${remote.address} dropped: ${this.halfOpen.size} half-open IKE SAs (limit)`);
      return;
    }
    if ((this.halfOpenByAddress.get(remote.address) ?? 0) >= this.limits.halfOpenPerPeer) {
      this.counters.peerHalfOpenDrops++;
      this.options.log.log('debug', `IKE_SA_INIT from ${remote.address} dropped: ${this.limits.halfOpenPerPeer} half-open IKE SAs from this address (limit)`);
      return;
    }
    if (!this.takeToken(remote.address, 'init')) {
      this.counters.initRateDrops++;
      this.options.log.log('debug', `IKE_SA_INIT from ${remote.address} dropped: more than ${this.limits.initPerPeerPerSecond}/s from this address`);
      return;
    }
    const ctx = new IkeSaContext(false, entry.config, local, remote, this.options.backend, this.options.log, Buffer.from(message.header.spiI));
    const sa = this.create(ctx);
    this.addHalfOpen(hoKey, sa, remote.address);
    sa.receive(datagram, message, local, remote);
    if (sa.state === 'destroyed') {
      this.removeHalfOpen(sa);
      return;
    }
    this.byLocalSpi.set(key(ctx.localSpi), sa);
    const held = this.halfOpenSas.get(sa);
    if (held) {
      held.timer = setTimeout(() => {
        held.timer = undefined;
        if (sa.state !== 'established' && sa.state !== 'destroyed') {
          this.counters.halfOpenTimeouts++;
          sa.destroy('half-open IKE_SA timed out', 'failed');
        }
      }, this.limits.halfOpenTimeoutMs);
      held.timer.unref?.();
    }
  }

  /**
   * The connection answering an IKE_SA_INIT: the first naming the peer's
   * address (or %any), else the group connection with the longest prefix
   * holding it — as its per-peer instance.
   */
  private connectionFor(localAddress: string, remoteAddress: string): ConnectionEntry | undefined {
    const local = this.options.connections.filter((c) => c.localAddrs.includes('%any') || c.localAddrs.includes(localAddress));
    const direct = local.find((c) => !c.remotePrefixes && (c.remoteAddrs.includes('%any') || c.remoteAddrs.includes(remoteAddress)));
    if (direct) return direct;
    const groups = local.flatMap((entry) => (entry.remotePrefixes ?? []).map((prefix) => ({ prefix, entry })));
    const group = longestMatch(groups, remoteAddress)?.entry;
    return group === undefined ? undefined : this.options.instanceFor?.(group, remoteAddress);
  }

  /**
   * §2.21.4: a request for an IKE SA we do not know (we may have restarted)
   * MAY be answered, unprotected, with INVALID_IKE_SPI: to the address and
   * port it came from, SPIs and Message ID copied, R set, I set as we are the
   * other party (§1.5: an INFORMATIONAL outside any IKE SA). Rate-limited so
   * that it cannot be used for reflection.
   */
  private sendInvalidIkeSpi(message: IkeMessage, local: Endpoint, remote: Endpoint): void {
    const now = this.now();
    if (now - this.invalidSpiWindowStart >= 1000) {
      this.invalidSpiWindowStart = now;
      this.invalidSpiSent = 0;
    }
    if (this.invalidSpiSent >= this.limits.invalidSpiPerSecond) return;
    this.invalidSpiSent++;
    this.counters.invalidSpiSent++;
    const response = encodeMessage({
      header: { ...message.header, exchangeType: ExchangeType.INFORMATIONAL, response: true, initiator: !message.header.initiator, higherVersion: false },
      payloads: [notify(NotifyType.INVALID_IKE_SPI)],
    });
    this.options.io.send(local, remote, [response]);
  }

  /** §2.6: Cookie = <VersionIDofSecret> | Hash(Ni | IPi | SPIi | <secret>). */
  private cookieFor(message: IkeMessage, remote: Endpoint, secret: Buffer): Buffer {
    const ni = message.payloads.find((p) => p.type === PayloadType.NONCE);
    const h = createHmac('sha256', secret);
    if (ni?.type === PayloadType.NONCE) h.update(ni.nonce);
    h.update(remote.address).update(message.header.spiI);
    return Buffer.concat([Buffer.from([secret === this.cookieSecret ? 1 : 0]), h.digest()]);
  }

  private cookieValid(message: IkeMessage, remote: Endpoint): boolean {
    const first = message.payloads[0];
    if (first?.type !== PayloadType.NOTIFY || first.notifyType !== NotifyType.COOKIE) return false;
    const ok = [this.cookieSecret, this.previousCookieSecret].some((s) => this.cookieFor(message, remote, s).subarray(1).equals(first.data.subarray(1)));
    if (!ok) this.counters.cookiesRejected++;
    return ok;
  }

  private sendCookie(message: IkeMessage, local: Endpoint, remote: Endpoint): void {
    this.counters.cookiesSent++;
    const response = encodeMessage({
      header: { ...message.header, spiR: Buffer.alloc(8), response: true, initiator: false, higherVersion: false },
      payloads: [notify(NotifyType.COOKIE, { data: this.cookieFor(message, remote, this.cookieSecret) })],
    });
    this.options.io.send(local, remote, [response]);
  }

  /**
   * Shutdown, first step: from now on no IKE SA is made. IKE_SA_INIT requests
   * are dropped (counted, as strongSwan ignores them while it shuts down: a
   * peer that re-initiates when it gets our Delete would otherwise complete an
   * IKE SA we then leave behind), `initiate()` and reauthentication are
   * refused, and half-open SAs are dropped — their IKE_AUTH would make one
   * (it is answered INVALID_IKE_SPI instead, §2.21.4). The IKE SAs there stay
   * until deleted (`deleteAll`); once one is being deleted, a CHILD_SA its
   * CREATE_CHILD_SA still brings is not installed (`installChildSa`).
   */
  drain(): void {
    if (this.drained) return;
    this.drained = true;
    for (const sa of [...this.halfOpenSas.keys()]) sa.destroy('shutting down before IKE_AUTH', 'local');
  }

  /** `drain()` was called: the manager makes no new IKE SA. */
  get draining(): boolean {
    return this.drained;
  }

  /** Delete every IKE SA (shutdown, after `drain()`); resolves when all are answered or gone. */
  async deleteAll(timeoutMs = 3000): Promise<void> {
    this.drain();
    const deadline = Date.now() + timeoutMs;
    const asked = new Set<IkeSa>();
    // An IKE rekey answered while its SA waited to send the Delete leaves a successor (§2.18): deleted in turn.
    for (let left = this.undeleted(asked); left.length > 0 && Date.now() < deadline; left = this.undeleted(asked)) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.all(
          left.map(
            (sa) =>
              new Promise<void>((resolve) => {
                asked.add(sa);
                sa.on('destroyed', () => resolve());
                sa.delete('shutting down');
              }),
          ),
        ),
        new Promise((r) => (timer = setTimeout(r, deadline - Date.now()))),
      ]);
      clearTimeout(timer);
    }
    for (const sa of this.sas) sa.destroy('shutting down');
  }

  private undeleted(asked: ReadonlySet<IkeSa>): IkeSa[] {
    return this.sas.filter((s) => s.state !== 'destroyed' && !asked.has(s));
  }
}
