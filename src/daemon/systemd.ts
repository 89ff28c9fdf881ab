/**
 * The service manager's side of the daemon's life (systemd's notify protocol,
 * sd_notify(3), and its watchdog, sd_watchdog_enabled(3)), for
 * `Type=notify` units (examples/tunsec.service):
 *
 * - `READY=1` once the daemon is running (the control socket answers): a unit
 *   ordered after tunsec.service, or `systemctl start` itself, waits for that;
 * - `RELOADING=1` with `MONOTONIC_USEC` when a reload starts (SIGHUP or
 *   `tunsec reload`), `READY=1` when it is done;
 * - `STOPPING=1` when the daemon starts deleting its SAs;
 * - `WATCHDOG=1` every half of `WATCHDOG_USEC` while the event loop turns, so
 *   a wedged daemon is restarted (`WatchdogSec=`).
 *
 * Node cannot send unix datagrams, so the datagram goes through the native
 * addon (native/tunsec_notify.cc). Without `$NOTIFY_SOCKET` (not started by
 * systemd) nothing is sent. A failing send is logged once and never stops
 * the daemon.
 */
import { loadNative } from '../native/addon.js';

/** What the daemon tells its service manager; Daemon calls these at the points above. */
export interface ServiceManager {
  ready(status: string): void;
  reloading(): void;
  stopping(): void;
  /** Stop the watchdog timer (the daemon is about to exit). */
  close(): void;
}

export interface NotifyOptions {
  /** `$NOTIFY_SOCKET`: an absolute path, or '@name' in the abstract namespace. */
  socket: string;
  /** `$WATCHDOG_USEC` when `$WATCHDOG_PID` is unset or this process. */
  watchdogUsec?: number;
  /** Default: the native addon's notifySend. */
  send?: (socket: string, message: string) => void;
  /** Where a failing send is reported (once). */
  warn: (message: string) => void;
  /** CLOCK_MONOTONIC in microseconds, for RELOADING's MONOTONIC_USEC. */
  monotonicUsec?: () => bigint;
}

export class SystemdNotifier implements ServiceManager {
  private readonly send: (socket: string, message: string) => void;
  private readonly monotonicUsec: () => bigint;
  private watchdog?: NodeJS.Timeout;
  private failed = false;

  constructor(private readonly options: NotifyOptions) {
    this.send = options.send ?? nativeSend();
    // process.hrtime is CLOCK_MONOTONIC on Linux, the clock systemd compares MONOTONIC_USEC with
    this.monotonicUsec = options.monotonicUsec ?? (() => process.hrtime.bigint() / 1000n);
    const usec = options.watchdogUsec;
    if (usec !== undefined && usec > 0) {
      // half the interval, as sd_watchdog_enabled(3) recommends; unref: never what keeps the daemon alive
      this.watchdog = setInterval(() => this.notify('WATCHDOG=1'), Math.max(1, Math.floor(usec / 2000)));
      this.watchdog.unref();
    }
  }

  /** The watchdog ping interval in milliseconds, or undefined without a watchdog. */
  get watchdogIntervalMs(): number | undefined {
    const usec = this.options.watchdogUsec;
    return usec !== undefined && usec > 0 ? Math.max(1, Math.floor(usec / 2000)) : undefined;
  }

  ready(status: string): void {
    this.notify(`READY=1\nSTATUS=${oneLine(status)}`);
  }

  reloading(): void {
    this.notify(`RELOADING=1\nMONOTONIC_USEC=${this.monotonicUsec()}\nSTATUS=reloading the configuration`);
  }

  stopping(): void {
    this.notify('STOPPING=1\nSTATUS=stopping: deleting the SAs');
  }

  close(): void {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = undefined;
  }

  private notify(message: string): void {
    try {
      this.send(this.options.socket, message);
      this.failed = false;
    } catch (err) {
      if (this.failed) return;
      this.failed = true;
      this.options.warn(`cannot notify the service manager at NOTIFY_SOCKET=${this.options.socket}: ${(err as Error).message}`);
    }
  }
}

/**
 * The notifier for this process's environment, or undefined when no service
 * manager listens. Takes NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID out of
 * `env` (sd_notify's unset_environment): the programs the daemon runs (`ip`)
 * are not the service and must not talk to systemd in its name.
 */
export function systemdNotifierFromEnv(warn: (message: string) => void, env: NodeJS.ProcessEnv = process.env, pid = process.pid): SystemdNotifier | undefined {
  const socket = env.NOTIFY_SOCKET;
  const watchdogText = env.WATCHDOG_USEC;
  const watchdogPid = env.WATCHDOG_PID;
  delete env.NOTIFY_SOCKET;
  delete env.WATCHDOG_USEC;
  delete env.WATCHDOG_PID;
  if (socket === undefined || socket === '') return undefined;
  let watchdogUsec: number | undefined;
  if (watchdogText !== undefined && (watchdogPid === undefined || Number(watchdogPid) === pid)) {
    const usec = Number(watchdogText);
    if (Number.isSafeInteger(usec) && usec > 0) watchdogUsec = usec;
    else warn(`WATCHDOG_USEC='${watchdogText}' is not a positive number of microseconds: no watchdog pings`);
  }
  return new SystemdNotifier({ socket, warn, ...(watchdogUsec === undefined ? {} : { watchdogUsec }) });
}

function nativeSend(): (socket: string, message: string) => void {
  return (socket, message) => {
    const send = loadNative().notifySend;
    if (!send) throw new Error('the native addon predates sd_notify support: rebuild it (npm ci)');
    send(socket, message);
  };
}

/** STATUS= is one line: a newline would start another assignment. */
function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ');
}
