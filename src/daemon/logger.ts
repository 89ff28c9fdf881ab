/**
 * The daemon's structured logger. One line per message:
 *
 * - not a TTY (a service manager, a pipe, a file): one JSON object per line,
 *   `{"time","level","subsys","msg"}`, plus `"event"` and its fields for the
 *   events other programs act on (`ike_established`, `child_established`,
 *   `ike_destroyed`, …; docs/daemon.md lists them);
 * - a TTY: `time level subsys msg` for people;
 * - stdout connected to the journal (systemd's `$JOURNAL_STREAM` names it):
 *   each line starts with its syslog priority, `<3>` error, `<4>` warn,
 *   `<6>` info and events, `<7>` debug (sd-daemon(3)), which journald takes
 *   off and keeps as the entry's PRIORITY, so `journalctl -p err` works.
 *
 * Levels per subsystem follow charon's numbers as the configuration gives
 * them (`daemon.log`): -1 silent, 0 errors and warnings, 1 (default) also
 * informational messages and events, 2 and up also debug messages.
 */
import { fstatSync } from 'node:fs';
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

/** syslog(3) priorities: LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG. */
const SYSLOG_PRIORITY: Readonly<Record<LogLevel, number>> = { error: 3, warn: 4, info: 6, debug: 7 };

export type EventFields = Record<string, unknown>;

/**
 * One message as subscribers get it: every line written (after the level
 * check) and every event, also one its subsystem's level keeps from being
 * written. The VICI `log` events take the written lines, the control
 * socket's `monitor` the events.
 */
export interface LogRecord {
  time: string;
  subsys: Subsystem;
  level: LogLevel;
  msg: string;
  /** Set for events (`ike_established`, …), with their fields. */
  event?: string;
  fields: EventFields;
  /** Whether the line was written: false for an event of a silenced subsystem (-1). */
  written: boolean;
}

export interface DaemonLoggerOptions {
  /** Default: process.stdout.write. */
  write?: (line: string) => void;
  /** JSON lines (default: when stdout is not a TTY) or human text. */
  json?: boolean;
  /** Prefix lines with `<N>` syslog priorities (default: when stdout is the journal stream and `write` is not given). */
  journal?: boolean;
  /** Default 1 for every subsystem until `setLevels`. */
  levels?: Partial<Record<Subsystem, number>>;
  now?: () => Date;
}

export class DaemonLogger {
  private readonly write: (line: string) => void;
  readonly json: boolean;
  readonly journal: boolean;
  private readonly levels: Record<Subsystem, number>;
  private readonly now: () => Date;
  private readonly subscribers = new Set<(record: LogRecord) => void>();

  constructor(options: DaemonLoggerOptions = {}) {
    this.write = options.write ?? stdoutWriter();
    this.json = options.json ?? !process.stdout.isTTY;
    this.journal = options.journal ?? (options.write === undefined && isJournalStream(1));
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
    this.emit({ time: this.now().toISOString(), subsys, level, msg, fields, written: true });
  }

  /**
   * An event for programs (tests, the control socket): written with its fields
   * unless the subsystem is silenced (-1). `fields` must not use the keys time,
   * level, subsys, msg or event.
   */
  event(subsys: Subsystem, event: string, msg: string, fields: EventFields): void {
    this.emit({ time: this.now().toISOString(), subsys, level: 'info', msg, event, fields, written: this.levels[subsys] >= 0 });
  }

  /**
   * Call `listener` with every record from now on (see LogRecord: written
   * lines, and events whatever the levels). A listener must not log itself;
   * what it throws is ignored. Returns the function that ends the subscription.
   */
  subscribe(listener: (record: LogRecord) => void): () => void {
    this.subscribers.add(listener);
    return () => void this.subscribers.delete(listener);
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  private emit(record: LogRecord): void {
    for (const s of [...this.subscribers]) {
      try {
        s(record);
      } catch {
        /* a subscriber's failure must not lose the line (and is its own: it unsubscribes itself) */
      }
    }
    if (!record.written) return;
    const { time, level, subsys, msg, event, fields } = record;
    let line: string;
    if (this.json) {
      line = JSON.stringify(event === undefined ? { time, level, subsys, msg, ...fields } : { time, level, subsys, msg, event, ...fields });
    } else {
      line = `${time} ${level.padEnd(5)} ${subsys.padEnd(6)} ${msg}`;
    }
    if (this.journal) line = `<${SYSLOG_PRIORITY[level]}>${line}`;
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

/**
 * Whether file descriptor `fd` is the journal stream systemd connected
 * (`$JOURNAL_STREAM` is its `device:inode`): a redirect of stdout in the
 * unit's command, or a process started from a service's shell, writes
 * elsewhere and gets no prefixes.
 */
export function isJournalStream(fd: number, env: NodeJS.ProcessEnv = process.env): boolean {
  const m = /^(\d+):(\d+)$/.exec(env.JOURNAL_STREAM ?? '');
  if (!m) return false;
  try {
    const st = fstatSync(fd, { bigint: true });
    return st.dev === BigInt(m[1]!) && st.ino === BigInt(m[2]!);
  } catch {
    return false;
  }
}
