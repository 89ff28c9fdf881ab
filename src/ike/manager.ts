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
import { IkeSaContext } from './sa/context.js';
import { IkeSa, type IkeSaEvents, type IkeSaIo } from './sa/ike-sa.js';
import type { RetransmitSettings } from './exchange/index.js';
import type { IkePeerConfig } from './sa/peer-config.js';
import { randomSpi } from './tasks/ike-init.js';

export interface ConnectionEntry {
  config: IkePeerConfig;
  /** Local addresses this connection uses ('%any' matches all). */
  localAddrs: string[];
  remoteAddrs: string[];
  /** The peer's IKE port (500). */
  remotePort: number;
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
}

export interface ManagerCounters {
  malformed: number;
  unknownSpi: number;
  noConnection: number;
  cookiesSent: number;
  cookiesRejected: number;
  internalErrors: number;
  invalidSpiSent: number;
}

const key = (spi: Buffer): string => spi.toString('hex');

/** Every IKE SA's life-cycle events, for the daemon (log, status, metrics). */
export type ManagerEvents = IkeSaEvents;
type ManagerListeners = { [K in keyof ManagerEvents]: Array<ManagerEvents[K]> };

export class IkeSaManager {
  private readonly byLocalSpi = new Map<string, IkeSa>();
  private readonly halfOpen = new Map<string, IkeSa>();
  private cookieSecret = randomBytes(32);
  private invalidSpiWindowStart = 0;
  private invalidSpiSent = 0;
  private previousCookieSecret = this.cookieSecret;
  private readonly listeners: ManagerListeners = { established: [], destroyed: [], childEstablished: [], childFailed: [], childRekeyed: [], ikeRekeyed: [], childClosed: [] };
  readonly counters: ManagerCounters = { malformed: 0, unknownSpi: 0, noConnection: 0, cookiesSent: 0, cookiesRejected: 0, internalErrors: 0, invalidSpiSent: 0 };

  constructor(private readonly options: ManagerOptions) {
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
    this.listeners[event].push(handler);
    return this;
  }

  /** A new IkeSa, with its events forwarded and its removal from the tables on destroy. */
  private create(ctx: IkeSaContext, rekeyed = false): IkeSa {
    const sa = new IkeSa(ctx, this.options.io, this.options.retransmit ?? {}, rekeyed);
    sa.on('destroyed', () => this.unregister(sa));
    if (!rekeyed) sa.on('established', () => this.enforceUniqueness(sa));
    // §2.18: the IKE SA made by rekeying this one is registered under its new SPI.
    sa.spawn = (next) => {
      const successor = this.create(next, true);
      this.byLocalSpi.set(key(next.localSpi), successor);
      return successor;
    };
    for (const event of Object.keys(this.listeners) as Array<keyof ManagerEvents>) {
      sa.on(event, ((...args: unknown[]) => {
        for (const h of this.listeners[event]) (h as (...a: unknown[]) => void)(...args);
      }) as ManagerEvents[typeof event]);
    }
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

  /** Rotate the COOKIE secret (§2.6 suggests periodically); the previous one stays valid once. */
  rotateCookieSecret(): void {
    this.previousCookieSecret = this.cookieSecret;
    this.cookieSecret = randomBytes(32);
  }

  /** Start an IKE SA for a configured connection; resolves when established, rejects with the reason it failed. */
  initiate(name: string, localAddress?: string): Promise<IkeSa> {
    const entry = this.options.connections.find((c) => c.config.name === name);
    if (!entry) return Promise.reject(new Error(`no connection named '${name}'`));
    const remoteAddress = entry.remoteAddrs.find((a) => a !== '%any');
    const local = localAddress ?? entry.localAddrs.find((a) => a !== '%any');
    if (!remoteAddress || !local) return Promise.reject(new Error(`connection '${name}' needs concrete local_addrs and remote_addrs to initiate`));
    const ctx = new IkeSaContext(
      true,
      entry.config,
      { address: local, port: this.options.ikePort },
      { address: remoteAddress, port: entry.remotePort },
      this.options.backend,
      this.options.log,
      randomSpi(),
    );
    // §2.4: INITIAL_CONTACT only when no other IKE SA of ours talks to this peer under this connection
    ctx.sendInitialContact = entry.config.unique !== 'never' && !this.sas.some((s) => s.state === 'established' && s.ctx.config.name === name);
    const sa = this.create(ctx);
    this.byLocalSpi.set(key(ctx.localSpi), sa);
    return new Promise((resolve, reject) => {
      sa.on('established', () => resolve(sa));
      sa.on('destroyed', (_s, reason) => reject(new Error(reason)));
      sa.initiate();
    });
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
      s.ctx.config.localId.value === sa.ctx.config.localId.value;
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
    for (const [k, v] of this.halfOpen) if (v === sa) this.halfOpen.delete(k);
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
      if (!h.response) this.sendInvalidIkeSpi(message, local, remote);
      return;
    }
    const wasHalfOpen = sa.state !== 'established';
    sa.receive(datagram, message, local, remote);
    if (wasHalfOpen && (sa.state as string) === 'established') {
      for (const [k, v] of this.halfOpen) if (v === sa) this.halfOpen.delete(k);
    }
  }

  private receiveInitRequest(datagram: Buffer, message: IkeMessage, local: Endpoint, remote: Endpoint): void {
    const hoKey = `${key(message.header.spiI)}/${remote.address}/${remote.port}`;
    const existing = this.halfOpen.get(hoKey);
    if (existing) return existing.receive(datagram, message, local, remote);

    if (this.halfOpen.size >= (this.options.cookieThreshold ?? 10) && !this.cookieValid(message, remote)) {
      this.sendCookie(message, local, remote);
      return;
    }
    const entry = this.options.connections.find(
      (c) => (c.localAddrs.includes('%any') || c.localAddrs.includes(local.address)) && (c.remoteAddrs.includes('%any') || c.remoteAddrs.includes(remote.address)),
    );
    if (!entry) {
      this.counters.noConnection++;
      this.options.log.log('info', `no connection configured for IKE_SA_INIT from ${remote.address} to ${local.address}; ignored`);
      return;
    }
    const ctx = new IkeSaContext(false, entry.config, local, remote, this.options.backend, this.options.log, Buffer.from(message.header.spiI));
    const sa = this.create(ctx);
    this.halfOpen.set(hoKey, sa);
    sa.receive(datagram, message, local, remote);
    if (sa.state === 'destroyed') {
      this.halfOpen.delete(hoKey);
      return;
    }
    this.byLocalSpi.set(key(ctx.localSpi), sa);
    const timer = setTimeout(() => {
      if (sa.state !== 'established' && sa.state !== 'destroyed') sa.destroy('half-open IKE_SA timed out', 'failed');
    }, this.options.halfOpenTimeoutMs ?? 30_000);
    timer.unref?.();
  }

  /**
   * §2.21.4: a request for an IKE SA we do not know (we may have restarted)
   * MAY be answered, unprotected, with INVALID_IKE_SPI, SPIs and Message ID
   * copied. Rate-limited so that it cannot be used for reflection.
   */
  private sendInvalidIkeSpi(message: IkeMessage, local: Endpoint, remote: Endpoint): void {
    const now = Date.now();
    if (now - this.invalidSpiWindowStart >= 1000) {
      this.invalidSpiWindowStart = now;
      this.invalidSpiSent = 0;
    }
    if (this.invalidSpiSent >= (this.options.invalidSpiPerSecond ?? 10)) return;
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

  /** Delete every IKE SA (shutdown); resolves when all are answered or gone. */
  async deleteAll(timeoutMs = 3000): Promise<void> {
    const sas = this.sas.filter((s) => s.state !== 'destroyed');
    await Promise.race([
      Promise.all(
        sas.map(
          (sa) =>
            new Promise<void>((resolve) => {
              sa.on('destroyed', () => resolve());
              sa.delete('shutting down');
            }),
        ),
      ),
      new Promise((r) => setTimeout(r, timeoutMs).unref?.()),
    ]);
    for (const sa of this.sas) sa.destroy('shutting down');
  }
}
