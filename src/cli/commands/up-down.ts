/**
 * `tunsec up NAME` initiates a connection and waits until it is established
 * or failed; `tunsec down NAME` deletes its IKE SAs and waits until they are
 * gone. Exit 0 when done, 1 when it failed (the reason on stderr). As with
 * `swanctl --initiate --child`, an IKE_SA whose CHILD_SA the peer refused is
 * a failure of `up` (the IKE_SA stays up; `status` shows the CHILD_SA failed).
 */
import type { DownResult, UpResult } from '../../control/protocol.js';
import { UsageError, WAITING_OPTIONS, controlTarget, parseArgs, runControl, type Io } from './common.js';
import { plural } from '../../util/format.js';

const UP_DEFAULT_TIMEOUT = 60;
const DOWN_DEFAULT_TIMEOUT = 10;

export async function upCommand(args: readonly string[], io: Io): Promise<number> {
  const parsed = parseArgs(args, WAITING_OPTIONS);
  if (parsed.positional.length !== 1) throw new UsageError('up needs one connection NAME');
  const target = controlTarget(parsed);
  const timeout = target.timeout ?? UP_DEFAULT_TIMEOUT;
  return runControl(
    io,
    target,
    'up',
    { name: parsed.positional[0], timeout },
    (result) => {
      const r = result as UpResult;
      io.out(`${r.name}: ${r.already ? 'already ' : ''}established (IKE_SA ${r.spi_i}_i ${r.spi_r}_r, ${plural(r.children, 'CHILD_SA')})\n`);
      return 0;
    },
    timeout,
  );
}

export async function downCommand(args: readonly string[], io: Io): Promise<number> {
  const parsed = parseArgs(args, WAITING_OPTIONS);
  if (parsed.positional.length !== 1) throw new UsageError('down needs one connection NAME');
  const target = controlTarget(parsed);
  const timeout = target.timeout ?? DOWN_DEFAULT_TIMEOUT;
  return runControl(
    io,
    target,
    'down',
    { name: parsed.positional[0], timeout },
    (result) => {
      const r = result as DownResult;
      io.out(r.deleted === 0 ? `${r.name}: no IKE_SA was up\n` : `${r.name}: ${plural(r.deleted, 'IKE_SA')} deleted\n`);
      return 0;
    },
    timeout,
  );
}
