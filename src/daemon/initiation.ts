/**
 * Initiating connections (./daemon.ts decides when): the `start` loop that
 * retries with backoff until established (`keyingtries`), `tunsec up`, and
 * on-demand negotiation — traffic hitting a trap policy (acquire) and peers
 * that lost us in a restart (./lost-peers.ts).
 *
 * It sees the daemon through a narrow host: the IKE SA manager, the loaded
 * connections, whether loops may go on and whether on-demand negotiation may
 * begin. Its waits are timers of its own that stop() wakes and cleanUp()
 * clears.
 */
import type { IkeSaManager } from '../ike/manager.js';
import type { IkeSa } from '../ike/sa/ike-sa.js';
import type { ResolvedConnection } from './credentials.js';
import type { DaemonLogger } from './logger.js';
import { GroupInstances, instanceName } from './groups.js';
import { LostPeers } from './lost-peers.js';
import { sourceAddressFor } from './net.js';

/** What the daemon's parts (initiation, end actions, reload) see of it; ./daemon.ts builds one for all. */
export interface DaemonView {
  readonly log: DaemonLogger;
  /** The IKE SA manager, once started. */
  manager(): IkeSaManager | undefined;
  /** The loaded connections, in configuration order. */
  connections(): readonly ResolvedConnection[];
  /** The daemon may negotiate on its own (acquire, lost peer, end actions, new `start` connections): it runs and the global switch is up. */
  mayNegotiate(): boolean;
}

export interface InitiationHost extends DaemonView {
  /** `start` loops go on: the daemon is starting or running. */
  loopsMayRun(): boolean;
  /** Delay before re-initiating a failed `start` connection: first, and the cap as it doubles (default 1 s, 60 s). */
  retryDelayMs?: { initial: number; max: number };
  /** The per-peer instances of group connections (without: group connections are not negotiated). */
  readonly groups?: GroupInstances;
}

/** `up` waited longer than asked; the attempt goes on. */
export class UpTimeout extends Error {
  override readonly name = 'UpTimeout';
}

/** A `start` loop: since when it runs; `wake` while it waits for its next attempt. */
interface RetryLoop {
  since: number;
  wake?: () => void;
}

export class Initiation {
  /** Connections with a `start` initiation loop running (an attempt, or waiting to retry); removing the entry ends the loop. */
  private readonly retrying = new Map<string, RetryLoop>();
  /** Connections with an on-demand (acquire, lost peer) initiation in progress. */
  private readonly initiating = new Set<string>();
  private readonly lostPeers = new LostPeers();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly wakeups = new Set<() => void>();

  constructor(private readonly host: InitiationHost) {}

  /** Since when a `start` loop initiates `name` (an attempt running or waiting to retry); undefined when none does. */
  since(name: string): number | undefined {
    return this.retrying.get(name)?.since;
  }

  isRetrying(name: string): boolean {
    return this.retrying.has(name);
  }

  /** End the `start` loop of `name` (it stops before its next attempt). */
  stopRetrying(name: string): void {
    this.retrying.delete(name);
  }

  /** End every `start` loop. */
  stopAll(): void {
    this.retrying.clear();
  }

  /** Cut every retry wait short (the loops then see that they are to end). */
  wakeAll(): void {
    for (const wake of [...this.wakeups]) wake();
  }

  clearTimers(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  /**
   * Initiate until established, retrying with backoff; `keyingtries` attempts (0 = forever).
   * `firstOutcome` hears how the first attempt ended. `down`, `global down` and stop end the loop.
   */
  async keepInitiating(c: ResolvedConnection, firstOutcome?: (err?: Error) => void): Promise<void> {
    const loop: RetryLoop = { since: Date.now() };
    this.retrying.set(c.name, loop);
    try {
      await this.initiateWithRetries(c, loop, firstOutcome);
    } finally {
      if (this.retrying.get(c.name) === loop) this.retrying.delete(c.name);
    }
  }

  private async initiateWithRetries(c: ResolvedConnection, loop: RetryLoop, firstOutcome?: (err?: Error) => void): Promise<void> {
    const delays = this.host.retryDelayMs ?? { initial: 1000, max: 60_000 };
    const current = (): boolean => this.host.loopsMayRun() && this.retrying.get(c.name) === loop;
    for (let attempt = 1; current(); attempt++) {
      try {
        const sa = await this.initiate(c);
        this.host.log.log('daemon', 'info', `connection ${c.name} established (attempt ${attempt})`, { conn: c.name, spi_i: sa.ctx.spiI.toString('hex') });
        firstOutcome?.();
        return;
      } catch (err) {
        firstOutcome?.(err as Error);
        firstOutcome = undefined;
        if (!current()) return;
        const tries = c.keyingtries === 0 ? 'forever' : `${c.keyingtries}`;
        const last = c.keyingtries !== 0 && attempt >= c.keyingtries;
        this.host.log.log(
          'daemon',
          last ? 'error' : 'warn',
          `connection ${c.name}: establishing failed (attempt ${attempt} of ${tries}): ${(err as Error).message}${last ? '; giving up (keyingtries)' : ''}`,
        );
        if (last) return;
        await this.sleep(retryDelay(attempt, delays), loop);
      }
    }
  }

  /**
   * `tunsec up`: the established IKE SA of `c`, or initiate it (or follow an
   * IKE SA of it under way) until it is established; rejects with the reason
   * it failed or, after `timeoutMs`, with UpTimeout (the attempt goes on).
   */
  async up(c: ResolvedConnection, timeoutMs: number): Promise<{ sa: IkeSa; already: boolean }> {
    const alive = this.host
      .manager()!
      .sas.filter((sa) => sa.ctx.config.name === c.name && (sa.state === 'created' || sa.state === 'connecting' || sa.state === 'established'));
    const established = alive.find((sa) => sa.state === 'established');
    if (established) return { sa: established, already: true };
    this.host.log.log('daemon', 'info', `connection ${c.name}: initiating (tunsec up)`, { conn: c.name });
    this.retrying.delete(c.name); // this attempt replaces a retry loop waiting for its next try
    const pending = alive[0];
    const attempt = pending
      ? new Promise<IkeSa>((resolve, reject) => {
          pending.on('established', () => resolve(pending));
          pending.on('destroyed', (_s, reason) => reject(new Error(reason)));
        })
      : this.initiate(c);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_r, reject) => {
      timer = setTimeout(() => reject(new UpTimeout(`not established after ${timeoutMs / 1000} s; the attempt goes on`)), timeoutMs);
    });
    try {
      return { sa: await Promise.race([attempt, timeout]), already: false };
    } finally {
      clearTimeout(timer);
      attempt.catch(() => {});
    }
  }

  /**
   * Traffic hit the trap policy of a child: negotiate, unless an IKE SA of
   * the connection is already up or on its way (its CHILD_SA installs the
   * policy that replaces the trap). For a group connection all of this is per
   * peer: `peer` (the packet's destination) gets an instance of its own.
   */
  acquired(connection: string, child: string, peer?: string): void {
    if (!this.host.mayNegotiate()) return;
    const group = this.host.connections().find((x) => x.name === connection && x.group !== undefined);
    if (group) return this.acquiredForPeer(group, child, peer);
    const sas = this.host.manager()?.sas.filter((sa) => sa.ctx.config.name === connection && sa.state !== 'destroyed') ?? [];
    // An IKE SA is up but this child has no CHILD_SA (the peer deleted it, it failed): CREATE_CHILD_SA on it.
    const up = sas.find((sa) => sa.state === 'established' && !sa.successor);
    const config = up?.ctx.config.children.find((c) => c.name === child);
    if (up && config && !up.ctx.children.some((c) => c.name === child)) return up.createChild(config, 'traffic hit its trap policy (acquire)');
    if (sas.length > 0 || this.initiating.has(connection)) return;
    // A `start` loop waits to retry: its next attempt is the negotiation, now (a second one would make a duplicate IKE SA).
    const loop = this.retrying.get(connection);
    if (loop) {
      if (loop.wake)
        this.host.log.log('daemon', 'info', `traffic for ${connection}/${child}: retrying the connection now (acquire)`, { conn: connection, child });
      loop.wake?.();
      return;
    }
    const c = this.host.connections().find((x) => x.name === connection);
    if (!c) return;
    if (!c.entry.remoteAddrs.some((a) => a !== '%any')) {
      this.host.log.log('daemon', 'debug', `traffic for ${connection}/${child} dropped: no SA, and remote_addrs names no peer to negotiate with`);
      return;
    }
    this.host.log.log('daemon', 'info', `traffic for ${connection}/${child} triggers negotiation (acquire)`, { conn: connection, child });
    this.negotiateOnDemand(c);
  }

  /** acquired() for a group connection: the instance for the packet's destination. */
  private acquiredForPeer(group: ResolvedConnection, child: string, peer: string | undefined): void {
    if (peer === undefined || !GroupInstances.covers(group, peer)) {
      this.host.log.log(
        'daemon',
        'debug',
        `traffic for group ${group.name}/${child} to ${peer ?? 'an unknown address'} dropped: not a host in ${group.entry.remoteAddrs.join(', ')}`,
      );
      return;
    }
    const name = instanceName(group.name, peer);
    const sas =
      this.host.manager()?.sas.filter((sa) => sa.ctx.config.name === group.name && sa.ctx.config.instancePeer === peer && sa.state !== 'destroyed') ?? [];
    const up = sas.find((sa) => sa.state === 'established' && !sa.successor);
    const config = up?.ctx.config.children.find((c) => c.name === child);
    if (up && config && !up.ctx.children.some((c) => c.name === child)) return up.createChild(config, 'traffic hit its trap policy (acquire)');
    if (sas.length > 0 || this.initiating.has(name)) return;
    const instance = this.host.groups?.instance(group, peer);
    if (!instance) return;
    this.host.log.log('daemon', 'info', `traffic for ${name}/${child} triggers negotiation with ${peer} (acquire)`, { conn: group.name, child, peer });
    this.initiating.add(name);
    void this.initiateOnce(instance, name).finally(() => this.initiating.delete(name));
  }

  /**
   * A peer sent a request for an IKE SA we do not have: it outlived our restart
   * (./lost-peers.ts). Connections to it that should be up are initiated now;
   * holding no IKE SA with the peer, we send INITIAL_CONTACT and it drops the
   * stale one at once instead of after its DPD gave up.
   */
  peerLostUs(address: string): void {
    if (!this.host.mayNegotiate()) return;
    const manager = this.host.manager();
    const busy = (name: string): boolean =>
      this.retrying.has(name) || this.initiating.has(name) || (manager?.sas.some((sa) => sa.ctx.config.name === name && sa.state !== 'destroyed') ?? true);
    for (const c of this.lostPeers.toInitiate(address, this.host.connections(), busy)) {
      this.host.log.log(
        'daemon',
        'info',
        `connection ${c.name}: ${address} sent an IKE request for an IKE_SA we do not have (lost in a restart); initiating so that it replaces it`,
        { conn: c.name },
      );
      this.negotiateOnDemand(c);
    }
  }

  private negotiateOnDemand(c: ResolvedConnection): void {
    this.initiating.add(c.name);
    void this.initiateOnce(c).finally(() => this.initiating.delete(c.name));
  }

  private async initiateOnce(c: ResolvedConnection, shown = c.name): Promise<void> {
    try {
      await this.initiate(c);
    } catch (err) {
      this.host.log.log('daemon', 'warn', `connection ${shown}: on-demand negotiation failed: ${(err as Error).message}`);
    }
  }

  /** One IKE SA of `c` (a group's instance included), from its local address or else the one the kernel routes to its peer from. */
  private async initiate(c: ResolvedConnection): Promise<IkeSa> {
    const remote = c.entry.remoteAddrs.find((a) => a !== '%any');
    const local = c.entry.localAddrs.find((a) => a !== '%any') ?? (remote === undefined ? undefined : await sourceAddressFor(remote));
    const manager = this.host.manager()!;
    return c.entry.config.instancePeer === undefined ? manager.initiate(c.name, local) : manager.initiateEntry(c.entry, local);
  }

  /** Wait `ms`; wakeAll(), or `loop.wake()` while waiting, cuts it short. */
  private sleep(ms: number, loop?: RetryLoop): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.timers.delete(timer);
        this.wakeups.delete(wake);
        if (loop) loop.wake = undefined;
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.timers.add(timer);
      this.wakeups.add(wake);
      if (loop) loop.wake = wake;
    });
  }
}

/** Delay after failed attempt `attempt` (1, 2, …): `initial`, doubling, at most `max`. */
export function retryDelay(attempt: number, delays: { initial: number; max: number }): number {
  return Math.min(delays.initial * 2 ** Math.min(attempt - 1, 30), delays.max);
}
