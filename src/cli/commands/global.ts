/**
 * `tunsec global down|up|status`: the global off switch (an `ipsec-global`
 * replacement). `down` blocks until every IKE SA is deleted and tunsec's
 * policies are in their off state (`daemon.global`: drop or clear); `up`
 * until the `start` connections are established (or their first attempt
 * failed). Nothing is persisted: a restarted daemon comes up `up`.
 */
import type { GlobalResult } from '../../control/protocol.js';
import { WAITING_OPTIONS, controlTarget, duration, parseArgs, runControl, usage, type CommandSpec, type Io } from './common.js';
import { plural } from '../../util/format.js';

export const globalCommand: CommandSpec = {
  name: 'global',
  synopsis: 'down|up|status [options]',
  summary: 'the global off switch: delete every SA and keep policies off / initiate again / show',
  description: `down: delete every IKE_SA and keep tunsec's policies in their off state
(daemon.global: drop drops their traffic, clear lets it pass in the clear); waits
until done. up: release the off state and initiate the start connections again;
waits until they are established or their first attempt failed. status: show the
switch. Nothing is persisted: a restarted daemon comes up 'up'.`,
  options: WAITING_OPTIONS,
  subcommands: ['down', 'up', 'status'],
  control: true,
  run(args, io) {
    return globalRun(this, args, io);
  },
};

async function globalRun(spec: CommandSpec, args: readonly string[], io: Io): Promise<number> {
  const parsed = parseArgs(spec, args);
  const [action, ...extra] = parsed.positionals;
  if (action !== 'down' && action !== 'up' && action !== 'status')
    throw usage(spec, action === undefined ? "'global' needs down, up or status" : `unknown global action '${action}' (down, up or status)`);
  if (extra.length > 0) throw usage(spec, `global ${action} takes no further arguments`);
  const target = controlTarget(spec, parsed);
  const timeout = target.timeout ?? (action === 'up' ? 60 : 10);
  return runControl(
    io,
    target,
    `global-${action}`,
    action === 'status' ? {} : { timeout },
    (result) => {
      const r = result as GlobalResult;
      const state = `global switch ${r.state} since ${r.since} (${duration(r.age)}); off state: ${r.mode === 'drop' ? 'traffic of tunsec policies dropped' : 'traffic of tunsec policies passed in the clear'}`;
      if (action === 'status') {
        io.out(`${state}\n`);
        return 0;
      }
      if (r.already) {
        io.out(`global switch was ${r.state} already\n`);
        return 0;
      }
      if (action === 'down') {
        io.out(
          `global switch down: ${plural(r.deleted ?? 0, 'IKE_SA')} deleted; ${r.mode === 'drop' ? 'traffic of tunsec policies is dropped' : 'traffic of tunsec policies passes in the clear'}\n`,
        );
        return 0;
      }
      const conns = r.connections ?? [];
      io.out(`global switch up: ${conns.filter((c) => c.established).length} of ${plural(conns.length, 'start connection')} established\n`);
      for (const c of conns) io.out(`  ${c.name}: ${c.established ? 'established' : `not established: ${c.error ?? 'unknown reason'}`}\n`);
      return 0;
    },
    timeout,
  );
}
