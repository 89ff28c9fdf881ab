/**
 * `tunsec monitor`: the daemon's events as they happen (IKE_SA and CHILD_SA
 * up, down, rekeyed, failed; global switch, reload), one line each, or one
 * JSON object per line with --json, until Ctrl-C (or --count events). The
 * control socket's `monitor` command subscribes to them (docs/daemon.md lists
 * the events and their fields).
 *
 *   2026-12-05T11:40:00.123Z child_rekeyed  CHILD_SA host{1} rekeyed: c1a2b3d4_i 0e0f1011_o → c9e8f7a6_i 0a0b0c0d_o
 */
import { controlSubscribe, ControlRequestFailed, ControlUnreachable } from '../control-client.js';
import { CONTROL_OPTIONS, EXIT, controlTarget, parseArgs, reportError, stringOption, usage, type CommandSpec, type Io } from './common.js';

export const EVENT_NAMES = [
  'ike_established',
  'ike_rekeyed',
  'ike_destroyed',
  'child_established',
  'child_rekeyed',
  'child_failed',
  'child_closed',
  'child_deleted',
  'global_down',
  'global_up',
  'config_reloaded',
  'config_reload_failed',
] as const;

export const monitorCommand: CommandSpec = {
  name: 'monitor',
  synopsis: '[--events NAME,…] [--count N] [options]',
  summary: "print the daemon's SA events as they happen, until Ctrl-C",
  description: `Subscribe to the daemon's events and print each as it happens: time, event
name, the log line; with --json the event object (its fields as in the daemon's
JSON log), one per line. Runs until Ctrl-C (exit 0), --count events were printed,
or the daemon goes away (exit 1). Events: ${EVENT_NAMES.join(', ')}, and others
docs/daemon.md lists.`,
  options: {
    ...CONTROL_OPTIONS,
    events: { type: 'string', short: 'e', value: 'NAME,…', help: 'only these events (comma-separated)', complete: EVENT_NAMES },
    count: { type: 'string', short: 'n', value: 'N', help: 'exit after N events' },
  },
  control: true,
  run(args, io) {
    return monitorRun(this, args, io);
  },
};

async function monitorRun(spec: CommandSpec, args: readonly string[], io: Io): Promise<number> {
  const parsed = parseArgs(spec, args);
  if (parsed.positionals.length > 0) throw usage(spec, `monitor takes no arguments, got '${parsed.positionals[0]}'`);
  const target = controlTarget(spec, parsed);
  const eventsText = stringOption(parsed, 'events');
  const events = eventsText
    ?.split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
  const countText = stringOption(parsed, 'count');
  const count = countText === undefined ? undefined : Number(countText);
  if (count !== undefined && (!Number.isInteger(count) || count < 1)) throw usage(spec, `--count: '${countText}' is not a positive whole number`);
  let seen = 0;
  const sub = controlSubscribe(target.socket, 'monitor', events === undefined ? {} : { events }, (e) => {
    if (count !== undefined && seen >= count) return;
    seen++;
    if (target.json) io.out(`${JSON.stringify(e)}\n`);
    else io.out(`${String(e.time)} ${String(e.event).padEnd(17)} ${String(e.msg)}\n`);
    if (count !== undefined && seen >= count) sub.close();
  });
  const stop = (): void => sub.close();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await sub.result;
    // on stderr: stdout carries only events (JSON lines with --json)
    io.err(`tunsec: monitoring ${events === undefined ? 'all events' : events.join(', ')} of the daemon at ${target.socket} (Ctrl-C to stop)\n`);
    await sub.closed;
    return EXIT.ok;
  } catch (err) {
    if (err instanceof ControlUnreachable || err instanceof ControlRequestFailed) return reportError(io, target.json, err.code, err.message);
    throw err;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}
