/**
 * `tunsec up NAME` initiates a connection and waits until it is established
 * or failed; `tunsec down NAME` deletes its IKE SAs and waits until they are
 * gone. With `--child CHILD` they act on that child's CHILD_SA alone: `up`
 * creates it on the established IKE SA (CREATE_CHILD_SA; the IKE SA is
 * initiated first if there is none), `down` deletes it and keeps the IKE SA —
 * as `swanctl --initiate --child` / `--terminate --child`. As with swanctl,
 * an IKE_SA whose CHILD_SA the peer refused is a failure of `up` (the IKE_SA
 * stays up; `status` shows the CHILD_SA failed).
 */
import type { DownResult, UpResult } from '../../control/protocol.js';
import { CHILD_OPTION, WAITING_OPTIONS, controlTarget, parseArgs, runControl, stringOption, usage, type CommandSpec, type Io } from './common.js';
import { plural } from '../../util/format.js';

const UP_DEFAULT_TIMEOUT = 60;
const DOWN_DEFAULT_TIMEOUT = 10;

export const upCommand: CommandSpec = {
  name: 'up',
  synopsis: 'NAME [--child CHILD] [options]',
  summary: 'initiate a connection (or one CHILD_SA of it), wait until established or failed',
  description: `Initiate connection NAME and wait until its IKE_SA and the CHILD_SA of its
IKE_AUTH are established, or it failed (the reason on stderr). With --child, the
CHILD_SA of that child: created by CREATE_CHILD_SA on the established IKE_SA (the
IKE_SA is initiated first if there is none). Default timeout ${UP_DEFAULT_TIMEOUT} s; after it the
attempt goes on in the daemon.`,
  options: { ...CHILD_OPTION, ...WAITING_OPTIONS },
  positionals: 'connection',
  control: true,
  run(args, io) {
    return upDown(this, 'up', args, io);
  },
};

export const downCommand: CommandSpec = {
  name: 'down',
  synopsis: 'NAME [--child CHILD] [options]',
  summary: "delete a connection's IKE SAs (or one CHILD_SA), wait until they are gone",
  description: `Delete the IKE_SAs of connection NAME (the peer is told) and wait until they
are gone; SAs whose peer does not answer within the timeout are removed anyway.
With --child, only the CHILD_SA of that child is deleted (INFORMATIONAL Delete);
the IKE_SA stays, and a trap policy of the child takes its traffic again.
Default timeout ${DOWN_DEFAULT_TIMEOUT} s.`,
  options: { ...CHILD_OPTION, ...WAITING_OPTIONS },
  positionals: 'connection',
  control: true,
  run(args, io) {
    return upDown(this, 'down', args, io);
  },
};

async function upDown(spec: CommandSpec, verb: 'up' | 'down', args: readonly string[], io: Io): Promise<number> {
  const parsed = parseArgs(spec, args);
  if (parsed.positionals.length !== 1) throw usage(spec, `${verb} needs one connection NAME`);
  const name = parsed.positionals[0]!;
  const child = stringOption(parsed, 'child');
  const target = controlTarget(spec, parsed);
  const timeout = target.timeout ?? (verb === 'up' ? UP_DEFAULT_TIMEOUT : DOWN_DEFAULT_TIMEOUT);
  const request = { name, timeout, ...(child === undefined ? {} : { child }) };
  return runControl(
    io,
    target,
    verb,
    request,
    (result) => {
      io.out(verb === 'up' ? formatUp(result as UpResult) : formatDown(result as DownResult));
      return 0;
    },
    timeout,
  );
}

export function formatUp(r: UpResult): string {
  if (r.child) {
    const c = r.child;
    return `${r.name}/${c.name}: ${r.already ? 'already ' : ''}established (CHILD_SA {${c.reqid}} ${c.spi_in}_i ${c.spi_out}_o on IKE_SA ${r.spi_i}_i ${r.spi_r}_r)\n`;
  }
  return `${r.name}: ${r.already ? 'already ' : ''}established (IKE_SA ${r.spi_i}_i ${r.spi_r}_r, ${plural(r.children, 'CHILD_SA')})\n`;
}

export function formatDown(r: DownResult): string {
  if (r.child !== undefined)
    return r.deleted === 0 ? `${r.name}/${r.child}: no CHILD_SA was up\n` : `${r.name}/${r.child}: ${plural(r.deleted, 'CHILD_SA')} deleted\n`;
  return r.deleted === 0 ? `${r.name}: no IKE_SA was up\n` : `${r.name}: ${plural(r.deleted, 'IKE_SA')} deleted\n`;
}
