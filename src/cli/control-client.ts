/**
 * The client side of the control socket (docs/daemon.md, "Control socket"):
 * one connection per request, one JSON line out, one JSON line back.
 */
import { createConnection } from 'node:net';
import type { ControlErrorCode, ControlResponse } from '../control/protocol.js';

/** Where the daemon listens unless the configuration says otherwise (`daemon.control_socket`). */
export const DEFAULT_CONTROL_SOCKET = '/run/tunsec/tunsec.sock';

/**
 * No daemon to talk to: the socket is missing, refuses, is not ours to open
 * (`unavailable`), or nothing answered in time (`timeout`).
 */
export class ControlUnreachable extends Error {
  override readonly name = 'ControlUnreachable';
  constructor(
    message: string,
    readonly code: 'unavailable' | 'timeout' = 'unavailable',
  ) {
    super(message);
  }
}

/** The daemon answered `ok: false`. */
export class ControlRequestFailed extends Error {
  override readonly name = 'ControlRequestFailed';
  constructor(
    readonly code: ControlErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface RequestOptions {
  /** Give up waiting for the answer after this long (default 10 s). */
  timeoutMs?: number;
}

/** Send one request to the daemon at `path`; resolves with its `result`, rejects with ControlUnreachable or ControlRequestFailed. */
export function controlRequest(path: string, command: string, args: Record<string, unknown> = {}, options: RequestOptions = {}): Promise<unknown> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const socket = createConnection({ path });
    let buf = '';
    let settled = false;
    const settle = (f: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      f();
    };
    const timer = setTimeout(
      () =>
        settle(() => reject(new ControlUnreachable(`the daemon at ${path} did not answer '${command}' within ${Math.round(timeoutMs / 1000)} s`, 'timeout'))),
      timeoutMs,
    );
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify({ id: 1, command, args })}\n`));
    socket.on('data', (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      let response: ControlResponse;
      try {
        response = JSON.parse(buf.slice(0, nl)) as ControlResponse;
      } catch {
        return settle(() => reject(new ControlUnreachable(`the daemon at ${path} answered something that is not JSON`)));
      }
      settle(() => (response.ok ? resolve(response.result) : reject(new ControlRequestFailed(response.code, response.error))));
    });
    socket.on('end', () => settle(() => reject(new ControlUnreachable(`the daemon at ${path} closed the connection without answering`))));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      const hint =
        err.code === 'ENOENT' || err.code === 'ECONNREFUSED'
          ? ' (is tunsec daemon running?)'
          : err.code === 'EACCES'
            ? ' (the control socket is for root only)'
            : '';
      settle(() => reject(new ControlUnreachable(`cannot reach the daemon at ${path}: ${err.code ?? err.message}${hint}`)));
    });
  });
}

export interface Subscription {
  /** The answer to the subscribing request (rejects as controlRequest does). */
  readonly result: Promise<unknown>;
  /** Settles when the connection ends: resolves when we closed it, rejects with ControlUnreachable when the daemon did. */
  readonly closed: Promise<void>;
  close(): void;
}

/**
 * Send `command` (`monitor`) and, once answered, hand every event line that
 * follows to `onEvent` until close() or the daemon ends the connection.
 */
export function controlSubscribe(
  path: string,
  command: string,
  args: Record<string, unknown>,
  onEvent: (event: Record<string, unknown>) => void,
  options: RequestOptions = {},
): Subscription {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const socket = createConnection({ path });
  let answered = false;
  let closing = false;
  let resolveResult!: (r: unknown) => void;
  let rejectResult!: (e: Error) => void;
  const result = new Promise<unknown>((res, rej) => {
    resolveResult = res;
    rejectResult = rej;
  });
  let resolveClosed!: () => void;
  let rejectClosed!: (e: Error) => void;
  const closed = new Promise<void>((res, rej) => {
    resolveClosed = res;
    rejectClosed = rej;
  });
  result.catch(() => {});
  closed.catch(() => {});
  const timer = setTimeout(
    () => fail(new ControlUnreachable(`the daemon at ${path} did not answer '${command}' within ${Math.round(timeoutMs / 1000)} s`, 'timeout')),
    timeoutMs,
  );
  const fail = (err: Error): void => {
    clearTimeout(timer);
    socket.destroy();
    if (!answered) rejectResult(err);
    if (closing) resolveClosed();
    else rejectClosed(err);
  };
  let buf = '';
  socket.setEncoding('utf8');
  socket.on('connect', () => socket.write(`${JSON.stringify({ id: 1, command, args })}\n`));
  socket.on('data', (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const text = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(text) as Record<string, unknown>;
      } catch {
        return fail(new ControlUnreachable(`the daemon at ${path} sent something that is not JSON`));
      }
      if (!answered) {
        const response = msg as unknown as ControlResponse;
        answered = true;
        clearTimeout(timer);
        if (response.ok) resolveResult(response.result);
        else {
          rejectResult(new ControlRequestFailed(response.code, response.error));
          closing = true;
          socket.destroy();
          resolveClosed();
          return;
        }
        continue;
      }
      if (typeof msg.event === 'string') onEvent(msg);
    }
  });
  socket.on('close', () => fail(new ControlUnreachable(`the daemon at ${path} closed the connection`)));
  socket.on('error', (err: NodeJS.ErrnoException) => {
    const hint =
      err.code === 'ENOENT' || err.code === 'ECONNREFUSED'
        ? ' (is tunsec daemon running?)'
        : err.code === 'EACCES'
          ? ' (the control socket is for root only)'
          : '';
    fail(new ControlUnreachable(`cannot reach the daemon at ${path}: ${err.code ?? err.message}${hint}`));
  });
  return {
    result,
    closed,
    close: () => {
      closing = true;
      fail(new ControlUnreachable('closed'));
    },
  };
}
