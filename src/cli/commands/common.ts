/**
 * What the control-socket commands of `tunsec` share: options (`--socket`,
 * `-c`, `--json`, `--timeout`), talking to the daemon with uniform error
 * messages, and text helpers for the human-readable output.
 */
import { loadConfig } from '../../config/index.js';
import { ControlRequestFailed, ControlUnreachable, DEFAULT_CONTROL_SOCKET, controlRequest } from '../control-client.js';

/** A mistake on the command line: the usage is printed, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
}

export interface ParsedArgs {
  values: Map<string, string>;
  flags: Set<string>;
  positional: string[];
}

/** `--socket PATH` / `--socket=PATH`, `-c FILE`, flags; the rest positional. */
export function parseArgs(args: readonly string[], spec: { values: Record<string, string>; flags: Record<string, string> }): ParsedArgs {
  const values = new Map<string, string>();
  const flags = new Set<string>();
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      positional.push(...args.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const long = eq > 0 && arg.startsWith('--');
    const name = long ? arg.slice(0, eq) : arg;
    const valueKey = spec.values[name];
    const flagKey = spec.flags[name];
    if (valueKey !== undefined) {
      const value = long ? arg.slice(eq + 1) : args[++i];
      if (value === undefined || value === '') throw new UsageError(`option ${name} needs a value`);
      values.set(valueKey, value);
    } else if (flagKey !== undefined && !long) {
      flags.add(flagKey);
    } else {
      throw new UsageError(`unknown option '${arg}'`);
    }
  }
  return { values, flags, positional };
}

/** The options every control command takes. */
export const CONTROL_OPTIONS = {
  values: { '--socket': 'socket', '-s': 'socket', '-c': 'config', '--config': 'config' },
  flags: { '--json': 'json' },
} as const;

/** The same plus `--timeout SECONDS`, for the commands that wait. */
export const WAITING_OPTIONS = {
  values: { ...CONTROL_OPTIONS.values, '--timeout': 'timeout', '-t': 'timeout' },
  flags: CONTROL_OPTIONS.flags,
} as const;

export interface ControlTarget {
  socket: string;
  json: boolean;
  /** `--timeout` in seconds, when given. */
  timeout?: number;
}

/** The socket: `--socket`, else the `daemon.control_socket` of `-c FILE`, else /run/tunsec.sock. */
export function controlTarget(parsed: ParsedArgs): ControlTarget {
  let socket = parsed.values.get('socket');
  const config = parsed.values.get('config');
  if (socket === undefined && config !== undefined) {
    const r = loadConfig({ path: config });
    if (!r.ok) throw new UsageError(`-c ${config}: the configuration is invalid (tunsec config check ${config} lists the problems)`);
    socket = r.config.daemon.control_socket;
  }
  const timeoutText = parsed.values.get('timeout');
  let timeout: number | undefined;
  if (timeoutText !== undefined) {
    timeout = Number(timeoutText);
    if (!Number.isFinite(timeout) || timeout <= 0 || timeout > 3600) throw new UsageError(`--timeout: '${timeoutText}' is not a number of seconds (0 < t ≤ 3600)`);
  }
  return { socket: socket ?? DEFAULT_CONTROL_SOCKET, json: parsed.flags.has('json'), ...(timeout === undefined ? {} : { timeout }) };
}

/**
 * Send `command` and render its result; 1 when the daemon cannot be reached
 * or the command failed (the message on stderr). `waitSeconds`: how long the
 * daemon may take (commands that block), the client waits 10 s more.
 */
export async function runControl(
  io: Io,
  target: ControlTarget,
  command: string,
  args: Record<string, unknown>,
  render: (result: unknown) => number,
  waitSeconds = 0,
): Promise<number> {
  let result: unknown;
  try {
    result = await controlRequest(target.socket, command, args, { timeoutMs: (waitSeconds + 10) * 1000 });
  } catch (err) {
    if (err instanceof ControlUnreachable || err instanceof ControlRequestFailed) {
      io.err(`tunsec: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
  if (target.json) {
    io.out(`${JSON.stringify(result, null, 2)}\n`);
    return jsonExit(result);
  }
  return render(result);
}

/** With --json the exit code still says whether it worked (check: its plugin code). */
function jsonExit(result: unknown): number {
  if (typeof result === 'object' && result !== null && 'code' in result && typeof (result as { code: unknown }).code === 'number') return (result as { code: number }).code;
  return 0;
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
