/**
 * The logger IKE code writes to: one line per event, with a subsystem.
 * The daemon maps it onto its structured logger; tests collect the lines.
 */
export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

export interface Logger {
  log(level: LogLevel, message: string): void;
}

/** A logger that keeps lines in memory (tests, and the last lines shown by `tunsec status`). */
export class MemoryLogger implements Logger {
  readonly lines: Array<{ level: LogLevel; message: string }> = [];
  log(level: LogLevel, message: string): void {
    this.lines.push({ level, message });
  }
  text(): string {
    return this.lines.map((l) => `${l.level}: ${l.message}`).join('\n');
  }
}

export const consoleLogger: Logger = {
  log(level, message) {
    process.stderr.write(`${new Date().toISOString()} ${level.padEnd(5)} ike: ${message}\n`);
  },
};
