/**
 * `tunsec help [VERB]` and `tunsec VERB --help`: the overview of every
 * command, or one command's usage, description, options and exit codes —
 * made from the command's own CommandSpec, so help cannot drift from what
 * the command parses.
 */
import { HELP_OPTION, parseArgs, usage, type CommandSpec, type Options } from './common.js';

export const EXIT_CODES_TEXT = `exit codes: 0 ok, 1 failed (the daemon unavailable too: --json says "unavailable"),
2 usage error, 3 not found (no such connection, child or SA), 4 timed out;
check: the Nagios plugin codes 0-3`;

/** One command's help. */
export function commandHelp(spec: CommandSpec): string {
  const lines = [`usage: tunsec ${spec.name} ${spec.synopsis}`, '', spec.description, '', 'options:', ...optionLines(spec.options)];
  const exits = spec.exitCodes ?? (spec.control ? EXIT_CODES_TEXT : undefined);
  if (exits !== undefined) lines.push('', exits);
  return `${lines.join('\n')}\n`;
}

/** The short usage shown with a usage error. */
export function shortUsage(spec: CommandSpec): string {
  return `usage: tunsec ${spec.name} ${spec.synopsis}\n(tunsec help ${spec.name} for the options)\n`;
}

function optionLines(options: Options): string[] {
  const rows = Object.entries(options).map(([name, o]) => [`${o.short ? `-${o.short}, ` : '    '}--${name}${o.value ? ` ${o.value}` : ''}`, o.help] as const);
  const width = Math.max(...rows.map(([l]) => l.length)) + 2;
  return rows.map(([l, h]) => `  ${l.padEnd(width)}${h}`);
}

/** `tunsec help`: every command in one line each. */
export function overview(all: readonly CommandSpec[]): string {
  const width = Math.max(...all.map((c) => c.name.length)) + 2;
  const row = (c: CommandSpec): string => `  ${c.name.padEnd(width)}${c.summary}`;
  const local = all.filter((c) => !c.control);
  const control = all.filter((c) => c.control);
  return [
    'usage: tunsec <command> [options]',
    '',
    'commands:',
    ...local.map(row),
    '',
    'commands for the running daemon (over its control socket, default /run/tunsec/tunsec.sock;',
    '-s PATH or -c FILE for another, --json for the result object):',
    ...control.map(row),
    '',
    "'tunsec help COMMAND' or 'tunsec COMMAND --help' for its arguments and options:",
    ...all.filter((c) => c.synopsis !== '[options]' && c.synopsis !== '').map((c) => `  tunsec ${c.name} ${c.synopsis}`),
    '',
    EXIT_CODES_TEXT,
    '',
  ].join('\n');
}

export function helpCommand(all: () => readonly CommandSpec[]): CommandSpec {
  return {
    name: 'help',
    synopsis: '[COMMAND]',
    summary: 'print this summary, or the help of one command',
    description: 'Without COMMAND, every command in one line; with COMMAND its usage, what it does, its options and exit codes.',
    options: HELP_OPTION,
    positionals: 'verb',
    run(args, io) {
      const parsed = parseArgs(this, args);
      const [verb, ...extra] = parsed.positionals;
      if (extra.length > 0) throw usage(this, 'help takes at most one COMMAND');
      if (verb === undefined) {
        io.out(overview(all()));
        return 0;
      }
      const spec = all().find((c) => c.name === verb);
      if (!spec) throw usage(this, `no command '${verb}' (tunsec help lists them)`);
      io.out(commandHelp(spec));
      return 0;
    },
  };
}
