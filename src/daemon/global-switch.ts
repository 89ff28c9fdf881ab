/**
 * The global off switch (`tunsec global down|up`): down stops initiating,
 * engages the datapath's off state (`daemon.global`: drop or clear) and
 * deletes every IKE SA; up releases it and initiates the `start` connections
 * again. Transitions run one after the other, and so does a reload
 * (`serialize`). While the switch is not up nothing is initiated and IKE
 * requests from peers are ignored (./daemon.ts, ./initiation.ts).
 */
import type { IkeSaManager } from '../ike/manager.js';
import type { IkeSa } from '../ike/sa/ike-sa.js';
import type { ResolvedConnection } from './credentials.js';
import type { Initiation } from './initiation.js';
import type { DaemonLogger } from './logger.js';
import type { GlobalSwitchState } from '../control/protocol.js';

export type { GlobalSwitchState };

export interface GlobalSwitchHost {
  readonly log: DaemonLogger;
  /** Throws unless the daemon runs. */
  mustRun(): void;
  /** `daemon.global`: what happens to the traffic of tunsec's policies while the switch is down. */
  mode(): 'drop' | 'clear';
  manager(): IkeSaManager;
  /** The datapath's off state (UserspaceDatapath.setGlobalOff; nothing with `datapath: none`). */
  setDatapathOff(mode: 'drop' | 'clear' | undefined): Promise<void>;
  /** The connections with `start` children. */
  startConnections(): readonly ResolvedConnection[];
  readonly initiation: Pick<Initiation, 'stopAll' | 'keepInitiating'>;
}

export class GlobalSwitch {
  private current: { state: GlobalSwitchState; since: number } = { state: 'up', since: Date.now() };
  /** Transitions (and reloads) run one after the other. */
  private transition: Promise<unknown> = Promise.resolve();

  constructor(private readonly host: GlobalSwitchHost) {}

  get state(): GlobalSwitchState {
    return this.current.state;
  }

  /** The state and since when the switch is in it. */
  get snapshot(): { state: GlobalSwitchState; since: number } {
    return { ...this.current };
  }

  /** Run `f` after every transition queued before it; the next waits for it. */
  serialize<T>(f: () => Promise<T>): Promise<T> {
    const run = this.transition.then(f, f);
    this.transition = run.catch(() => {});
    return run;
  }

  /**
   * `tunsec global down`: stop initiating (start, trap, acquire), engage the
   * datapath's off state so no packet falls back to cleartext or triggers a
   * negotiation meanwhile, delete every IKE SA and wait until they are gone.
   */
  down(timeoutMs: number): Promise<{ deleted: number; already: boolean }> {
    return this.serialize(async () => {
      const host = this.host;
      host.mustRun();
      if (this.current.state === 'down') return { deleted: 0, already: true };
      const mode = host.mode();
      const manager = host.manager();
      this.current = { state: 'going-down', since: Date.now() };
      host.log.log(
        'daemon',
        'info',
        `global switch going down: stopping initiation, deleting ${manager.sas.length} IKE SA(s), traffic ${mode === 'drop' ? 'dropped' : 'passed in the clear'} meanwhile`,
      );
      host.initiation.stopAll();
      await host.setDatapathOff(mode);
      let deleted = 0;
      // Peers may still complete an IKE SA while the first ones are deleted: repeat until none is left.
      for (let round = 0; round < 5; round++) {
        const sas = manager.sas.filter((sa) => sa.state !== 'destroyed');
        if (sas.length === 0) break;
        deleted += sas.length;
        await deleteSas(sas, 'global switch down', timeoutMs);
      }
      this.current = { state: 'down', since: Date.now() };
      host.log.event(
        'daemon',
        'global_down',
        `global switch down: ${deleted} IKE SA(s) deleted, traffic of tunsec's policies is ${mode === 'drop' ? 'dropped' : 'passed in the clear'}`,
        {
          mode,
          deleted_ike_sas: deleted,
        },
      );
      return { deleted, already: false };
    });
  }

  /**
   * `tunsec global up`: release the datapath's off state and initiate the
   * `start` connections again; resolves when each has been established or
   * its first attempt failed (retries go on per `keyingtries`), or after
   * `timeoutMs`.
   */
  up(timeoutMs: number): Promise<{ connections: Array<{ name: string; established: boolean; error?: string }>; already: boolean }> {
    return this.serialize(async () => {
      const host = this.host;
      host.mustRun();
      if (this.current.state === 'up') return { connections: [], already: true };
      this.current = { state: 'going-up', since: Date.now() };
      await host.setDatapathOff(undefined);
      const starting = host.startConnections();
      host.log.log('daemon', 'info', `global switch going up: initiating ${starting.length} connection(s)`);
      this.current = { state: 'up', since: Date.now() };
      const outcomes = starting.map(
        (c) =>
          new Promise<{ name: string; established: boolean; error?: string }>((resolve) => {
            const timer = setTimeout(
              () => resolve({ name: c.name, established: false, error: `not established after ${timeoutMs / 1000} s; the attempt goes on` }),
              timeoutMs,
            );
            void host.initiation.keepInitiating(c, (err) => {
              clearTimeout(timer);
              resolve(err ? { name: c.name, established: false, error: err.message } : { name: c.name, established: true });
            });
          }),
      );
      const connections = await Promise.all(outcomes);
      host.log.event(
        'daemon',
        'global_up',
        `global switch up: ${connections.filter((c) => c.established).length} of ${connections.length} start connection(s) established`,
        {
          connections,
        },
      );
      return { connections, already: false };
    });
  }
}

/**
 * Delete IKE SAs (Delete sent to the peer) and wait until they are gone;
 * after `timeoutMs` the rest are removed without an answer. Global down, and
 * the daemon's `down` and reload.
 */
export async function deleteSas(sas: readonly IkeSa[], reason: string, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.all(
      sas.map(
        (sa) =>
          new Promise<void>((resolve) => {
            if (sa.state === 'destroyed') return resolve();
            sa.on('destroyed', () => resolve());
            sa.delete(reason);
          }),
      ),
    ),
    new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
  ]);
  clearTimeout(timer);
  for (const sa of sas) sa.destroy(`${reason} (the peer did not answer the Delete)`);
}
