/**
 * The daemon's structured logger. One line per message:
 *
 * - not a TTY (a service manager, a pipe, a file): one JSON object per line,
 *   `{"time","level","subsys","msg"}`, plus `"event"` and its fields for the
 *   events other programs act on (`ike_established`, `child_established`,
 *   `ike_destroyed`, …; docs/daemon.md lists them);
 * - a TTY: `time level subsys msg` for people.
 *
 * Levels per subsystem follow charon's numbers as the configuration gives
 * them (`daemon.log`): -1 silent, 0 errors and warnings, 1 (default) also
 * informational messages and events, 2 and up also debug messages.
 */
import type { DaemonConfig } from '../config/index.js';
import type { Logger, LogLevel } from '../ike/log.js';

/** Where a message comes from; `daemon` takes its level from `log.dmn`. */
export type Subsystem = 'daemon' | 'cfg' | 'net' | 'mgr' | 'ike' | 'esp' | 'knl';

const CONFIG_KEY: Readonly<Record<Subsystem, keyof DaemonConfig['log']>> = {
  daemon: 'dmn',
  cfg: 'cfg',
  net: 'net',
  mgr: 'mgr',
  ike: 'ike',
  esp: 'esp',
  knl: 'knl',
};

/** The charon level a message needs for it to be written. */
const NEEDED: Readonly<Record<LogLevel, number>> = { error: 0, warn: 0, info: 1, debug: 2 };

export type EventFields = Record<string, unknown>;

/** A line as written, for listeners such as the VICI `log` event (src/daemon/vici/). */
export interface LogRecord {
  subsys: Subsystem;
  level: LogLevel;
  msg: string;
  event?: string;
}

export interface DaemonLoggerOptions {
  /** Default: process.stdout.write. */
  write?: (line: string) => void;
  /** JSON lines (default: when stdout is not a TTY) or human text. */
  json?: boolean;
  /** Default 1 for every subsystem until `setLevels`. */
  levels?: Partial<Record<Subsystem, number>>;
  now?: () => Date;
}

export class DaemonLogger {
  private readonly write: (line: string) => void;
  readonly json: boolean;
  private readonly levels: Record<Subsystem, number>;
  private readonly now: () => Date;
  private readonly listeners = new Set<(record: LogRecord) => void>();

  constructor(options: DaemonLoggerOptions = {}) {
    this.write = options.write ?? stdoutWriter();
    this.json = options.json ?? !process.stdout.isTTY;
    this.levels = { daemon: 1, cfg: 1, net: 1, mgr: 1, ike: 1, esp: 1, knl: 1, ...options.levels };
    this.now = options.now ?? (() => new Date());
  }

  /** Levels from the configuration's `daemon.log`. */
  setLevels(log: DaemonConfig['log']): void {
    for (const s of Object.keys(CONFIG_KEY) as Subsystem[]) this.levels[s] = log[CONFIG_KEY[s]];
  }

  enabled(subsys: Subsystem, level: LogLevel): boolean {
    return this.levels[subsys] >= NEEDED[level];
  }

  log(subsys: Subsystem, level: LogLevel, msg: string, fields: EventFields = {}): void {
    if (!this.enabled(subsys, level)) return;
    this.emit(subsys, level, msg, fields);
  }

  /**
   * An event for programs (tests, the control socket): written with its fields
   * unless the subsystem is silenced (-1). `fields` must not use the keys time,
   * level, subsys, msg or event.
   */
  event(subsys: Subsystem, event: string, msg: string, fields: EventFields): void {
    if (this.levels[subsys] < 0) return;
    this.emit(subsys, 'info', msg, { event, ...fields });
  }

  /**
   * Call `listener` with every line written (after the level check). A listener
   * must not log itself; what it throws is ignored. Returns the unsubscribe function.
   */
  onLine(listener: (record: LogRecord) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(subsys: Subsystem, level: LogLevel, msg: string, fields: EventFields): void {
    if (this.listeners.size > 0) {
      const record: LogRecord = typeof fields.event === 'string' ? { subsys, level, msg, event: fields.event } : { subsys, level, msg };
      for (const l of this.listeners) {
        try {
          l(record);
        } catch {
          /* a listener's failure must not lose the line */
        }
      }
    }
    const time = this.now().toISOString();
    let line: string;
    if (this.json) {
      line = JSON.stringify({ time, level, subsys, msg, ...fields });
    } else {
      line = `${time} ${level.padEnd(5)} ${subsys.padEnd(6)} ${msg}`;
    }
    try {
      this.write(`${line}\n`);
    } catch {
      /* stdout gone (EPIPE): nothing left to tell */
    }
  }

  /** The `Logger` the IKE layer writes to, as one subsystem. */
  subsystem(subsys: Subsystem): Logger {
    return { log: (level, message) => this.log(subsys, level, message) };
  }

  /**
   * The `Logger` for the IKE SA manager and its SAs: messages about one IKE SA
   * (they start with its connection name) go to `ike`, the manager's own to
   * `mgr`.
   */
  ikeLogger(connectionNames: readonly string[]): Logger {
    const names = new Set(connectionNames);
    return {
      log: (level, message) => {
        const m = /^([A-Za-z0-9][A-Za-z0-9_.-]*)[[:]/.exec(message);
        this.log(m && names.has(m[1]!) ? 'ike' : 'mgr', level, message);
      },
    };
  }
}

let stdoutClosed = false;
let stdoutWatched = false;

/**
 * Lines to stdout. When the reader goes away (EPIPE: the log collector
 * stopped), the daemon goes on without output rather than failing on
 * every line — or logging the write error, which would fail again.
 */
function stdoutWriter(): (line: string) => void {
  if (!stdoutWatched) {
    stdoutWatched = true;
    process.stdout.on('error', () => {
      stdoutClosed = true;
    });
  }
  return (line) => {
    if (!stdoutClosed) process.stdout.write(line);
  };
}
