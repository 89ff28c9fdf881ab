/**
 * What the commands of `tunsec` share: the shape of a command (its options,
 * help text and completion hints, ./registry.ts lists them), argument parsing
 * with node's util.parseArgs, the exit codes, talking to the daemon with
 * uniform errors (text, or `{"error":{…}}` under --json), and text helpers
 * for the human-readable output.
 */
import { parseArgs as nodeParseArgs } from 'node:util';
import { loadConfig } from '../../config/index.js';
import type { ControlErrorCode } from '../../control/protocol.js';
import { ControlRequestFailed, ControlUnreachable, DEFAULT_CONTROL_SOCKET, controlRequest } from '../control-client.js';

/**
 * Exit codes of every command but `check` (which has the Nagios plugin's 0-3):
 * 0 done, 1 failed — the daemon unavailable too (not running, socket refused
 * or not ours, starting or stopping: exit 1 as ever, scripts rely on it; the
 * --json error code `unavailable` tells it apart) —, 2 usage error, 3 not
 * found (no such connection, child or SA), 4 timed out.
 */
export const EXIT = { ok: 0, failed: 1, usage: 2, notFound: 3, timeout: 4 } as const;

/** The codes of `{"error":{"code":…}}`: the control protocol's, and `usage` for a mistake on the command line. */
export type CliErrorCode = ControlErrorCode | 'usage';

/** The exit code of an error code. */
export function exitCode(code: CliErrorCode): number {
  switch (code) {
    case 'usage':
      return EXIT.usage;
    case 'not_found':
      return EXIT.notFound;
    case 'timeout':
      return EXIT.timeout;
    default:
      return EXIT.failed;
  }
}

/** A mistake on the command line: a short usage is printed, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  /** The command whose usage applies (undefined: the command itself is unknown). */
  command?: CommandSpec;
}

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
}

/** One option: util.parseArgs' spec plus what help and completion say of it. */
export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  /** The value's name in help (`PATH`, `SECONDS`). */
  value?: string;
  help: string;
  /** What completes its value: files, connection names, child names, or fixed words. */
  complete?: 'file' | 'connection' | 'child' | readonly string[];
}

export type Options = Record<string, OptionSpec>;

export interface Parsed {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

export interface CommandSpec {
  name: string;
  /** The arguments after the name, for the usage line: `[NAME] [--child CHILD]`. */
  synopsis: string;
  /** One line for `tunsec help`. */
  summary: string;
  /** Paragraphs for `tunsec help NAME`: what it does, what it prints. */
  description: string;
  options: Options;
  /** Subcommands (the first positional), for help and completion. */
  subcommands?: readonly string[];
  /** What the positionals are, for completion. */
  positionals?: 'connection' | 'file' | 'verb';
  /** It talks to the daemon (help lists it among those; the exit code table applies). */
  control?: boolean;
  /** Exit codes of its own, for its help (check: the plugin's). */
  exitCodes?: string;
  run(args: readonly string[], io: Io): Promise<number> | number;
}

/** Every command's `-h`/`--help`. */
export const HELP_OPTION: Options = { help: { type: 'boolean', short: 'h', help: 'print this help and exit' } };

/** The options every control command takes. */
export const CONTROL_OPTIONS: Options = {
  socket: { type: 'string', short: 's', value: 'PATH', help: `the daemon's control socket (default ${DEFAULT_CONTROL_SOCKET})`, complete: 'file' },
  config: { type: 'string', short: 'c', value: 'FILE', help: "take the socket from this configuration's daemon.control_socket", complete: 'file' },
  json: { type: 'boolean', help: 'print the result object as JSON; failures as {"error":{"code","message"}}' },
  ...HELP_OPTION,
};

/** The same plus `--timeout SECONDS`, for the commands that wait. */
export const WAITING_OPTIONS: Options = {
  timeout: { type: 'string', short: 't', value: 'SECONDS', help: 'how long to wait for the outcome' },
  ...CONTROL_OPTIONS,
};

/** `--child CHILD`, for the commands that act on one CHILD_SA. */
export const CHILD_OPTION: Options = {
  child: { type: 'string', value: 'CHILD', help: 'one child of the connection: its CHILD_SA only (the IKE_SA stays)', complete: 'child' },
};

/**
 * Parse `args` with util.parseArgs (strict: unknown options are errors,
 * `--opt=value` and `-o value` both work, `--` ends the options) into a
 * UsageError that names the problem.
 */
export function parseArgs(spec: CommandSpec, args: readonly string[], allowPositionals = true): Parsed {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {};
  for (const [name, o] of Object.entries(spec.options)) options[name] = o.short === undefined ? { type: o.type } : { type: o.type, short: o.short };
  try {
    const r = nodeParseArgs({ args: [...args], options, strict: true, allowPositionals });
    for (const [name, o] of Object.entries(spec.options)) {
      const v = r.values[name];
      if (o.type === 'string' && v === '') throw usage(spec, `option --${name} needs a value`);
    }
    return { values: r.values as Parsed['values'], positionals: r.positionals };
  } catch (err) {
    if (err instanceof UsageError) throw err;
    const e = err as NodeJS.ErrnoException;
    const quoted = /'([^']*)'/.exec(e.message)?.[1];
    switch (e.code) {
      case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
        throw usage(spec, `unknown option '${quoted ?? e.message}'`);
      case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
        throw usage(spec, quoted !== undefined && /argument missing/.test(e.message) ? `option ${quoted.replace(/^-\w, /, '')} needs a value` : e.message);
      case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
        throw usage(spec, `unexpected argument '${quoted ?? ''}'`);
      default:
        throw err;
    }
  }
}

/** A UsageError about `spec`. */
export function usage(spec: CommandSpec | undefined, message: string): UsageError {
  const e = new UsageError(message);
  if (spec) e.command = spec;
  return e;
}

export function stringOption(p: Parsed, name: string): string | undefined {
  const v = p.values[name];
  return typeof v === 'string' ? v : undefined;
}

export interface ControlTarget {
  socket: string;
  json: boolean;
  /** `--timeout` in seconds, when given. */
  timeout?: number;
}

/** The socket: `--socket`, else the `daemon.control_socket` of `-c FILE`, else /run/tunsec/tunsec.sock. */
export function controlTarget(spec: CommandSpec, parsed: Parsed): ControlTarget {
  let socket = stringOption(parsed, 'socket');
  const config = stringOption(parsed, 'config');
  if (socket === undefined && config !== undefined) {
    const r = loadConfig({ path: config });
    if (!r.ok) throw usage(spec, `-c ${config}: the configuration is invalid (tunsec config check ${config} lists the problems)`);
    socket = r.config.daemon.control_socket;
  }
  const timeoutText = stringOption(parsed, 'timeout');
  let timeout: number | undefined;
  if (timeoutText !== undefined) {
    timeout = Number(timeoutText);
    if (!Number.isFinite(timeout) || timeout <= 0 || timeout > 3600) throw usage(spec, `--timeout: '${timeoutText}' is not a number of seconds (0 < t ≤ 3600)`);
  }
  return { socket: socket ?? DEFAULT_CONTROL_SOCKET, json: parsed.values.json === true, ...(timeout === undefined ? {} : { timeout }) };
}

/** A failure as the user sees it: a line on stderr, or under --json the error object on stdout; returns the exit code. */
export function reportError(io: Io, json: boolean, code: CliErrorCode, message: string): number {
  if (json) io.out(`${JSON.stringify({ error: { code, message } }, null, 2)}\n`);
  else io.err(`tunsec: ${message}\n`);
  return exitCode(code);
}

/**
 * Send `command` and render its result. A daemon that cannot be reached or
 * a command that failed is reported (reportError) with its exit code.
 * `waitSeconds`: how long the daemon may take (commands that block); the
 * client waits 10 s more. `jsonView`: what --json prints of the result
 * (default all of it).
 */
export async function runControl(
  io: Io,
  target: ControlTarget,
  command: string,
  args: Record<string, unknown>,
  render: (result: unknown) => number,
  waitSeconds = 0,
  jsonView: (result: unknown) => unknown = (r) => r,
): Promise<number> {
  let result: unknown;
  try {
    result = await controlRequest(target.socket, command, args, { timeoutMs: (waitSeconds + 10) * 1000 });
  } catch (err) {
    if (err instanceof ControlUnreachable || err instanceof ControlRequestFailed) return reportError(io, target.json, err.code, err.message);
    throw err;
  }
  if (target.json) {
    io.out(`${JSON.stringify(jsonView(result), null, 2)}\n`);
    return EXIT.ok;
  }
  return render(result);
}

/** `3m 12s`, `2h 5m`, `4d 1h`, `12s`. */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

/** `10.1.0.1[500]`, `[fd00::1][500]` → as swanctl: address[port]. */
export function endpoint(e: { address: string; port: number }): string {
  return `${e.address}[${e.port}]`;
}
