/**
 * The control socket's server: a unix stream socket (`daemon.control_socket`,
 * mode 0600) on which the daemon answers the control protocol
 * (src/control/protocol.ts, docs/daemon.md). It listens, frames request lines,
 * checks each client's credentials (SO_PEERCRED) and runs the handler of each
 * command (./commands.ts); what the commands do is not its business.
 *
 * Nothing a client sends can stop the daemon: malformed requests get an error
 * response and are counted, a request line is limited in size, the number of
 * clients is capped, and a client that goes away mid-request is simply
 * forgotten.
 */
import { claimSocketPath, listenPrivate, removeIfOurs, type SocketFileId } from '../private-socket.js';
import { createServer, type Server, type Socket } from 'node:net';
import { MAX_REQUEST_BYTES, type ControlErrorCode, type ControlRequestId, type ControlResponse } from '../../control/protocol.js';
import type { DaemonLogger } from '../logger.js';
import { loadNative } from '../../native/addon.js';

/** Clients connected at once; more are told so and disconnected. */
export const MAX_CLIENTS = 32;
/** Requests waiting for their turn on one connection. */
export const MAX_QUEUED_REQUESTS = 64;

/** A command failed in a way the client should hear about; `code` is for programs, the message for people. */
export class ControlError extends Error {
  override readonly name = 'ControlError';
  constructor(
    readonly code: ControlErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/**
 * A result after which the connection carries events (`monitor`): the response
 * says `result`, then `subscribe` gets a sender for event objects and returns
 * the function that ends the subscription (called when the client goes).
 */
export class ControlStream<T = unknown> {
  constructor(
    readonly result: T,
    readonly subscribe: (send: (event: object) => void) => () => void,
  ) {}
}

/** Events queued to a client that does not read them, in octets, before it is disconnected. */
export const MAX_STREAM_BACKLOG = 1024 * 1024;

export type ControlHandler = (args: Record<string, unknown>) => unknown;

export interface ControlCounters {
  /** Connections accepted since start. */
  connections: number;
  /** Requests answered (successfully or not). */
  requests: number;
  /** Requests that were not understood: bad JSON, not a request, unknown command, bad arguments, too large. */
  badRequests: number;
  /** Connections refused because MAX_CLIENTS were connected. */
  rejectedClients: number;
  /** Connections refused because the peer process is neither root nor the daemon's user (SO_PEERCRED). */
  refusedPeers: number;
}

export interface ControlServerOptions {
  path: string;
  log: DaemonLogger;
  handlers: Record<string, ControlHandler>;
  maxRequestBytes?: number;
  maxClients?: number;
  /**
   * User IDs whose processes may talk to the daemon (SO_PEERCRED); default root and the
   * daemon's own effective user. Anyone else gets one error line and is disconnected.
   */
  allowedUids?: readonly number[];
  /** The peer's credentials (tests replace it); default SO_PEERCRED through the native addon. */
  peerCredentials?: (socket: Socket) => { pid: number; uid: number; gid: number };
}

/**
 * SO_PEERCRED of an accepted unix socket: Node keeps the descriptor in the
 * socket's libuv handle (`_handle.fd`, Linux), which is not a public API — so
 * it is checked to be a descriptor number before use.
 */
export function socketPeerCredentials(socket: Socket): { pid: number; uid: number; gid: number } {
  const handle = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle;
  const fd = handle?.fd;
  if (typeof fd !== 'number' || !Number.isInteger(fd) || fd < 0) throw new Error('the socket has no file descriptor');
  const addon = loadNative();
  if (typeof addon.peerCred !== 'function') throw new Error('the native addon predates peerCred (run `npm ci`)');
  return addon.peerCred(fd);
}

/** The control socket's listener. `start` refuses a path another live daemon answers on. */
export class ControlServer {
  readonly counters: ControlCounters = { connections: 0, requests: 0, badRequests: 0, rejectedClients: 0, refusedPeers: 0 };
  private server?: Server;
  private readonly clients = new Set<Socket>();
  /** The socket file we created (removed at stop only if it is still this one). */
  private created?: SocketFileId;
  private readonly maxRequestBytes: number;
  private readonly maxClients: number;

  constructor(private readonly options: ControlServerOptions) {
    this.maxRequestBytes = options.maxRequestBytes ?? MAX_REQUEST_BYTES;
    this.maxClients = options.maxClients ?? MAX_CLIENTS;
  }

  get path(): string {
    return this.options.path;
  }

  get clientCount(): number {
    return this.clients.size;
  }

  /**
   * Listen at `path` with mode 0600. A socket file left by a crashed daemon
   * (nobody accepts on it) is removed first; a path where another daemon
   * answers, or that is not a socket, is refused with an Error.
   */
  async start(): Promise<void> {
    const path = this.options.path;
    await claimSocketPath(path, {
      what: 'control socket',
      setting: 'daemon.control_socket',
      ask: { request: `${JSON.stringify({ id: 'probe', command: 'status' })}\n`, answer: daemonPid },
      inUse: (pid) =>
        `control socket ${path} is in use by a running daemon${pid === undefined ? '' : ` (pid ${pid})`}; stop it first or set another daemon.control_socket`,
      log: (line) => this.options.log.log('daemon', 'info', line),
    });
    const server = createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
    server.maxConnections = this.maxClients * 2;
    const created = await listenPrivate(server, path, 'control socket');
    server.on('error', (err) => this.options.log.log('daemon', 'error', `control socket ${path}: ${err.message}`));
    this.created = created;
    this.server = server;
    this.options.log.log('daemon', 'info', `control socket listening on ${path}`);
  }

  /** Close the listener and every client; remove the socket file if it is still ours. */
  stop(): void {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.close();
    for (const c of this.clients) c.destroy();
    this.clients.clear();
    removeIfOurs(this.options.path, this.created);
    this.created = undefined;
  }

  private accept(socket: Socket): void {
    this.counters.connections++;
    socket.on('error', (err) => this.options.log.log('daemon', 'debug', `control client: ${err.message}`));
    let cred: { pid: number; uid: number; gid: number } | undefined;
    let credError = '';
    try {
      cred = (this.options.peerCredentials ?? socketPeerCredentials)(socket);
    } catch (err) {
      credError = (err as Error).message;
    }
    const allowed = this.options.allowedUids ?? [0, process.geteuid?.() ?? 0];
    if (!cred || !allowed.includes(cred.uid)) {
      // Fail closed: a peer whose credentials cannot be read is refused too.
      this.counters.refusedPeers++;
      const who = cred ? `uid ${cred.uid} (pid ${cred.pid})` : `a peer whose credentials cannot be read (${credError})`;
      this.options.log.log(
        'daemon',
        'warn',
        `control socket: refused ${who}: only root${allowed.some((u) => u !== 0) ? ` and uid ${allowed.filter((u) => u !== 0).join(', ')}` : ''} may control the daemon`,
      );
      socket.end(
        line({
          id: null,
          ok: false,
          code: 'forbidden',
          error: `permission denied: ${cred ? `uid ${cred.uid} is` : 'peer credentials are'} not allowed to control the daemon (root only)`,
        }),
      );
      return;
    }
    if (this.clients.size >= this.maxClients) {
      this.counters.rejectedClients++;
      this.options.log.log('daemon', 'warn', `control socket: a client was refused: ${this.clients.size} clients are connected already`);
      socket.end(line({ id: null, ok: false, code: 'busy', error: `too many control clients (${this.maxClients}); try again` }));
      return;
    }
    this.clients.add(socket);
    socket.on('close', () => this.clients.delete(socket));
    let pending: Buffer = Buffer.alloc(0);
    let chain: Promise<void> = Promise.resolve();
    let closing = false;
    let queued = 0;
    const enqueue = (request: Buffer | 'too_large' | 'too_many'): void => {
      queued++;
      chain = chain.then(async () => {
        queued--;
        const { response, stream } = await this.answerFollowing(request);
        if (!socket.destroyed && socket.writable) socket.write(line(response));
        if (stream && !socket.destroyed) this.follow(socket, stream);
      });
    };
    const finish = (): void => {
      closing = true;
      socket.pause();
      chain = chain.then(() => {
        if (!socket.destroyed) socket.end(() => socket.destroy());
      });
    };
    socket.on('data', (chunk: Buffer) => {
      if (closing) return;
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      let nl: number;
      while ((nl = pending.indexOf(0x0a)) >= 0) {
        const request = pending.subarray(0, nl);
        pending = pending.subarray(nl + 1);
        if (queued >= MAX_QUEUED_REQUESTS) {
          // A client that does not read its answers: it gets one last and is disconnected.
          enqueue('too_many');
          return finish();
        }
        enqueue(request);
      }
      if (pending.length > this.maxRequestBytes) {
        // No newline in sight: the framing is lost, so the connection ends after this answer.
        pending = Buffer.alloc(0);
        enqueue('too_large');
        finish();
      }
    });
    // A client may send its last request without a newline and shut down its side (allowHalfOpen).
    socket.on('end', () => {
      if (closing) return;
      if (pending.length > 0) enqueue(pending);
      pending = Buffer.alloc(0);
      finish();
    });
  }

  /** Send `stream`'s events to the client until it goes; one that lets MAX_STREAM_BACKLOG pile up is disconnected. */
  private follow(socket: Socket, stream: ControlStream): void {
    let stop: (() => void) | undefined;
    const end = (): void => {
      stop?.();
      stop = undefined;
    };
    socket.on('close', end);
    stop = stream.subscribe((event) => {
      if (socket.destroyed || !socket.writable) return end();
      if (socket.writableLength > MAX_STREAM_BACKLOG) {
        this.options.log.log('daemon', 'warn', `control socket: an event subscriber did not read ${socket.writableLength} octets of events; disconnected`);
        end();
        socket.destroy();
        return;
      }
      socket.write(`${JSON.stringify(event)}\n`);
    });
    if (socket.destroyed) end();
  }

  /** One request line → its response and, for `monitor`, the events to follow it; never throws. */
  private async answerFollowing(raw: Buffer | 'too_large' | 'too_many'): Promise<{ response: ControlResponse | undefined; stream?: ControlStream }> {
    const response = await this.respond(raw);
    return response instanceof ControlStreamAnswer ? { response: response.response, stream: response.stream } : { response };
  }

  /** One request line → its response alone (fuzz/targets/control.ts drives this); never throws. */
  async answer(raw: Buffer | 'too_large' | 'too_many'): Promise<ControlResponse | undefined> {
    return (await this.answerFollowing(raw)).response;
  }

  private async respond(raw: Buffer | 'too_large' | 'too_many'): Promise<ControlResponse | ControlStreamAnswer | undefined> {
    if (raw === 'too_many') {
      this.counters.requests++;
      return this.bad(null, 'busy', `more than ${MAX_QUEUED_REQUESTS} requests waiting on one connection`);
    }
    if (raw === 'too_large' || raw.length > this.maxRequestBytes) {
      this.counters.requests++;
      return this.bad(null, 'too_large', `request longer than ${this.maxRequestBytes} octets`);
    }
    const text = raw.toString('utf8').trim();
    if (text === '') return undefined;
    this.counters.requests++;
    let request: unknown;
    try {
      request = JSON.parse(text);
    } catch (err) {
      return this.bad(null, 'bad_json', `request is not JSON: ${(err as Error).message}`);
    }
    if (typeof request !== 'object' || request === null || Array.isArray(request))
      return this.bad(null, 'bad_request', 'a request is a JSON object: {"id":1,"command":"status","args":{}}');
    const r = request as Record<string, unknown>;
    const id = r.id;
    if (id !== undefined && id !== null && !(typeof id === 'number' && Number.isFinite(id)) && !(typeof id === 'string' && id.length <= 256)) {
      return this.bad(null, 'bad_request', "'id' must be a number or a string (at most 256 characters)");
    }
    const rid: ControlRequestId = (id as ControlRequestId | undefined) ?? null;
    if (typeof r.command !== 'string') return this.bad(rid, 'bad_request', "'command' must be a string");
    if (r.args !== undefined && (typeof r.args !== 'object' || r.args === null || Array.isArray(r.args)))
      return this.bad(rid, 'bad_request', "'args' must be an object");
    const handler = Object.hasOwn(this.options.handlers, r.command) ? this.options.handlers[r.command] : undefined;
    if (!handler) {
      return this.bad(rid, 'unknown_command', `unknown command '${r.command.slice(0, 64)}'; commands: ${Object.keys(this.options.handlers).join(', ')}`);
    }
    try {
      const result = await handler((r.args as Record<string, unknown> | undefined) ?? {});
      if (result instanceof ControlStream) return new ControlStreamAnswer({ id: rid, ok: true, result: result.result ?? null }, result);
      return { id: rid, ok: true, result: result ?? null };
    } catch (err) {
      if (err instanceof ControlError) {
        if (err.code === 'bad_request') return this.bad(rid, err.code, err.message);
        return { id: rid, ok: false, code: err.code, error: err.message };
      }
      this.options.log.log('daemon', 'error', `control command ${r.command} failed: ${(err as Error).stack ?? String(err)}`);
      return { id: rid, ok: false, code: 'internal', error: `internal error: ${(err as Error).message}` };
    }
  }

  private bad(id: ControlRequestId, code: ControlErrorCode, error: string): ControlResponse {
    this.counters.badRequests++;
    this.options.log.log('daemon', 'warn', `control socket: bad request: ${error}`);
    return { id, ok: false, code, error };
  }
}

class ControlStreamAnswer {
  constructor(
    readonly response: ControlResponse,
    readonly stream: ControlStream,
  ) {}
}

function line(response: ControlResponse | undefined): string {
  return response === undefined ? '' : `${JSON.stringify(response)}\n`;
}

/** The pid in a daemon's answer to `status`. */
function daemonPid(line: string): number | undefined {
  const pid = (JSON.parse(line) as { result?: { daemon?: { pid?: unknown } } }).result?.daemon?.pid;
  return typeof pid === 'number' ? pid : undefined;
}
