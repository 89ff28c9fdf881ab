/**
 * `tunsec check [NAME]`: a Nagios/Icinga plugin. One line,
 * `TUNSEC <STATUS> - <summary> | <perfdata>`, and the plugin exit code:
 * 0 OK, 1 WARNING (connecting), 2 CRITICAL (not connected, or traffic went
 * out in the clear by a private-or-clear fallback), 3 UNKNOWN (the daemon
 * cannot be asked, an unknown NAME, a usage error).
 */
import type { CheckResult } from '../../control/protocol.js';
import { ControlRequestFailed, ControlUnreachable, controlRequest } from '../control-client.js';
import { UsageError, WAITING_OPTIONS, controlTarget, parseArgs, usage, type CommandSpec, type Io } from './common.js';

export const UNKNOWN = 3;

export const checkCommand: CommandSpec = {
  name: 'check',
  synopsis: '[NAME] [options]',
  summary: 'Nagios/Icinga plugin: one line, exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN',
  description: `A Nagios/Icinga plugin: one line, TUNSEC <STATUS> - <summary> | <perfdata>.
Without NAME the connections meant to be up (a child with start_action start or
trap) count; with NAME that connection. CRITICAL: one is not connected, a
CHILD_SA failed, or traffic went out in the clear by a private-or-clear
fallback; WARNING: one is connecting; OK otherwise. UNKNOWN: the daemon cannot
be asked, an unknown NAME, a usage error.`,
  options: WAITING_OPTIONS,
  positionals: 'connection',
  control: true,
  exitCodes: "exit codes (the plugin's): 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN",
  run(args, io) {
    return checkRun(this, args, io);
  },
};

async function checkRun(spec: CommandSpec, args: readonly string[], io: Io): Promise<number> {
  let target;
  let name: string | undefined;
  try {
    const parsed = parseArgs(spec, args);
    if (parsed.positionals.length > 1) throw usage(spec, 'check takes at most one connection NAME');
    name = parsed.positionals[0];
    target = controlTarget(spec, parsed);
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
