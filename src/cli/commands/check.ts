/**
 * `tunsec check [NAME]`: a Nagios/Icinga plugin. One line,
 * `TUNSEC <STATUS> - <summary> | <perfdata>`, and the plugin exit code:
 * 0 OK, 1 WARNING (connecting), 2 CRITICAL (not connected, or traffic went
 * out in the clear by a private-or-clear fallback), 3 UNKNOWN (the daemon
 * cannot be asked, an unknown NAME, a usage error).
 */
import type { CheckResult } from '../../control/protocol.js';
import { ControlRequestFailed, ControlUnreachable, controlRequest } from '../control-client.js';
import { CONTROL_OPTIONS, UsageError, controlTarget, parseArgs, type Io } from './common.js';

export const UNKNOWN = 3;

export async function checkCommand(args: readonly string[], io: Io): Promise<number> {
  let target;
  let name: string | undefined;
  try {
    const parsed = parseArgs(args, { values: { ...CONTROL_OPTIONS.values, '--timeout': 'timeout', '-t': 'timeout' }, flags: CONTROL_OPTIONS.flags });
    if (parsed.positional.length > 1) throw new UsageError('check takes at most one connection NAME');
    name = parsed.positional[0];
    target = controlTarget(parsed);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    // A monitoring system shows stdout: say it there, as UNKNOWN.
    io.out(`TUNSEC UNKNOWN - usage: ${err.message}\n`);
    return UNKNOWN;
  }
  let r: CheckResult;
  try {
    r = (await controlRequest(target.socket, 'check', name === undefined ? {} : { name }, { timeoutMs: (target.timeout ?? 10) * 1000 })) as CheckResult;
  } catch (err) {
    if (!(err instanceof ControlUnreachable) && !(err instanceof ControlRequestFailed)) throw err;
    if (target.json) io.out(`${JSON.stringify({ code: UNKNOWN, status: 'UNKNOWN', summary: err.message }, null, 2)}\n`);
    else io.out(`TUNSEC UNKNOWN - ${err.message}\n`);
    return UNKNOWN;
  }
  if (target.json) io.out(`${JSON.stringify(r, null, 2)}\n`);
  else io.out(`TUNSEC ${r.status} - ${r.summary}${r.perfdata ? ` | ${r.perfdata}` : ''}\n`);
  return r.code;
}
