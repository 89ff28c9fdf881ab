/**
 * The VICI socket (`daemon.vici`): strongSwan's control protocol
 * (src/control/vici/) on a unix stream socket, so that `swanctl --uri
 * unix://PATH` and VICI client libraries can talk to tunsec. The socket is
 * guarded as the control socket is (./../control/server.ts): mode 0600, and
 * SO_PEERCRED lets only root and the daemon's own user in.
 *
 * It frames packets, answers event (un)registrations, runs one command at a
 * time per connection (VICI has no request IDs: answers go in order), and lets
 * handlers stream events to the client that asked (`list-sa` during
 * `list-sas`) or broadcast them to every registered client (`ike-updown`,
 * `log`). What the commands do is ./commands.ts's business.
 *
 * Nothing a client sends can stop the daemon: a malformed message is answered
 * with an error response, lost framing ends that connection, both are counted
 * and logged; a client that does not read its events is disconnected before
 * its backlog grows without bound.
 */
import { claimSocketPath, listenPrivate, removeIfOurs, type SocketFileId } from '../private-socket.js';
import { createServer, type Server, type Socket } from 'node:net';
import { ViciParseError, type ViciInput, type ViciMessage } from '../../control/vici/message.js';
import { ViciFrameReader, ViciPacketType, decodePacket, encodePacket } from '../../control/vici/packet.js';
import type { DaemonLogger } from '../logger.js';
import { socketPeerCredentials } from '../control/server.js';

/** Clients connected at once; more are disconnected at once. */
export const VICI_MAX_CLIENTS = 32;
/** Incoming segments larger than this end the connection (swanctl's requests are a few hundred octets). */
export const VICI_MAX_REQUEST = 64 * 1024;
/** Octets queued towards one client before it counts as not reading and is disconnected. */
export const VICI_MAX_BACKLOG = 4 * 1024 * 1024;
/** Packets waiting for their turn on one connection. */
const MAX_QUEUED = 64;

/** A command failed; the client gets `success = no` and this as `errmsg`. */
export class ViciCommandError extends Error {
  override readonly name = 'ViciCommandError';
}

/** What a command handler may do with the client that sent the request. */
export interface ViciClient {
  /** Whether the client registered for `event`. */
  registered(event: string): boolean;
  /** Send an event to this client if it registered for it (streamed answers: `list-sa`, `control-log`). */
  event(name: string, message: ViciInput): void;
  /** The client went away (a long command may stop waiting). */
  readonly closed: boolean;
}

export type ViciCommand = (request: ViciMessage, client: ViciClient) => ViciInput | Promise<ViciInput>;

export interface ViciCounters {
  connections: number;
  requests: number;
  /** Requests for commands tunsec does not have (answered CMD_UNKNOWN). */
  unknownCommands: number;
  /** Segments that could not be parsed, or packet types a client may not send. */
  badPackets: number;
  /** Clients refused by SO_PEERCRED. */
  refusedPeers: number;
  /** Clients refused because VICI_MAX_CLIENTS were connected. */
  rejectedClients: number;
  /** Clients disconnected because they did not read what was sent to them. */
  slowClients: number;
}

export interface ViciServerOptions {
  path: string;
  log: DaemonLogger;
  commands: Readonly<Record<string, ViciCommand>>;
  /** Event names clients may register for; others are answered EVENT_UNKNOWN. */
  events: readonly string[];
  /** User IDs allowed in (SO_PEERCRED); default root and the daemon's effective user. */
  allowedUids?: readonly number[];
  peerCredentials?: (socket: Socket) => { pid: number; uid: number; gid: number };
  maxClients?: number;
}

interface Connection extends ViciClient {
  readonly socket: Socket;
  readonly events: Set<string>;
  send(packet: Buffer): void;
}

export class ViciServer {
  readonly counters: ViciCounters = { connections: 0, requests: 0, unknownCommands: 0, badPackets: 0, refusedPeers: 0, rejectedClients: 0, slowClients: 0 };
  private server?: Server;
  private readonly clients = new Set<Connection>();
  private created?: SocketFileId;
  private readonly known: Set<string>;

  constructor(private readonly options: ViciServerOptions) {
    this.known = new Set(options.events);
  }

  get path(): string {
    return this.options.path;
  }

  get clientCount(): number {
    return this.clients.size;
  }

  /** Whether any client registered for `event` (callers skip building messages nobody reads). */
  listening(event: string): boolean {
    for (const c of this.clients) if (c.events.has(event)) return true;
    return false;
  }

  /** Send an event to every client registered for it. `message` is built only if someone listens. */
  broadcast(event: string, message: ViciInput | (() => ViciInput)): void {
    if (!this.listening(event)) return;
    let packet: Buffer;
    try {
      packet = encodePacket({ type: ViciPacketType.EVENT, name: event, message: typeof message === 'function' ? message() : message });
    } catch {
      return; // an unencodable event (an oversized log line) is not worth a client
    }
    for (const c of this.clients) if (c.events.has(event)) c.send(packet);
  }

  /** Listen at `path` with mode 0600; a stale socket file is replaced, a live one or a non-socket is refused. */
  async start(): Promise<void> {
    const path = this.options.path;
    await claimSocketPath(path, {
      what: 'VICI socket',
      setting: 'daemon.vici',
      inUse: () => `VICI socket ${path} is in use (a charon or another tunsec answers there); stop it or set another daemon.vici`,
      log: (line) => this.options.log.log('daemon', 'info', line),
    });
    const server = createServer((socket) => this.accept(socket));
    const created = await listenPrivate(server, path, 'VICI socket');
    server.on('error', (err) => this.options.log.log('daemon', 'error', `VICI socket ${path}: ${err.message}`));
    this.created = created;
    this.server = server;
    this.options.log.log('daemon', 'info', `VICI socket listening on ${path}`);
  }

  stop(): void {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.close();
    for (const c of this.clients) c.socket.destroy();
    this.clients.clear();
    removeIfOurs(this.options.path, this.created);
    this.created = undefined;
  }

  private accept(socket: Socket): void {
    this.counters.connections++;
    const log = this.options.log;
    socket.on('error', (err) => log.log('daemon', 'debug', `VICI client: ${err.message}`));
    let cred: { pid: number; uid: number; gid: number } | undefined;
    let credError = '';
    try {
      cred = (this.options.peerCredentials ?? socketPeerCredentials)(socket);
    } catch (err) {
      credError = (err as Error).message;
    }
    const allowed = this.options.allowedUids ?? [0, process.geteuid?.() ?? 0];
    if (!cred || !allowed.includes(cred.uid)) {
      // Fail closed: unreadable credentials are refused too. VICI has no packet for "go away": the connection just ends.
      this.counters.refusedPeers++;
      log.log(
        'daemon',
        'warn',
        `VICI socket: refused ${cred ? `uid ${cred.uid} (pid ${cred.pid})` : `a peer whose credentials cannot be read (${credError})`}: only root${allowed.some((u) => u !== 0) ? ` and uid ${allowed.filter((u) => u !== 0).join(', ')}` : ''} may control the daemon`,
      );
      socket.destroy();
      return;
    }
    if (this.clients.size >= (this.options.maxClients ?? VICI_MAX_CLIENTS)) {
      this.counters.rejectedClients++;
      log.log('daemon', 'warn', `VICI socket: a client was refused: ${this.clients.size} clients are connected already`);
      socket.destroy();
      return;
    }
    const conn: Connection = {
      socket,
      events: new Set(),
      get closed() {
        return socket.destroyed;
      },
      registered: (event) => conn.events.has(event),
      event: (name, message) => {
        if (!conn.events.has(name)) return;
        try {
          conn.send(encodePacket({ type: ViciPacketType.EVENT, name, message }));
        } catch (err) {
          log.log('daemon', 'warn', `VICI event ${name} not sent: ${(err as Error).message}`);
        }
      },
      send: (packet) => {
        if (socket.destroyed || !socket.writable) return;
        if (socket.writableLength + packet.length > VICI_MAX_BACKLOG) {
          this.counters.slowClients++;
          socket.destroy();
          // not now: this may run inside a log line's broadcast
          setImmediate(() => log.log('daemon', 'warn', `VICI socket: disconnected a client that did not read its events (${VICI_MAX_BACKLOG} octets waiting)`));
          return;
        }
        socket.write(packet);
      },
    };
    this.clients.add(conn);
    socket.on('close', () => this.clients.delete(conn));
    const reader = new ViciFrameReader(VICI_MAX_REQUEST);
    let chain: Promise<void> = Promise.resolve();
    let queued = 0;
    socket.on('data', (chunk: Buffer) => {
      let segments: Buffer[];
      try {
        segments = reader.push(chunk);
      } catch (err) {
        this.counters.badPackets++;
        log.log('daemon', 'warn', `VICI socket: ${(err as Error).message}; closing the connection`);
        socket.destroy();
        return;
      }
      for (const segment of segments) {
        if (++queued > MAX_QUEUED) {
          this.counters.badPackets++;
          log.log('daemon', 'warn', `VICI socket: more than ${MAX_QUEUED} packets waiting on one connection; closing it`);
          socket.destroy();
          return;
        }
        chain = chain.then(async () => {
          queued--;
          if (!socket.destroyed) await this.handle(conn, segment);
        });
      }
    });
  }

  /** One packet from a client; never throws. */
  private async handle(conn: Connection, segment: Buffer): Promise<void> {
    const log = this.options.log;
    let packet;
    try {
      packet = decodePacket(segment);
    } catch (err) {
      if (!(err instanceof ViciParseError)) throw err;
      this.counters.badPackets++;
      log.log('daemon', 'warn', `VICI socket: ${err.message}`);
      // The framing is intact: a request whose message is malformed gets an answer, anything else ends the connection.
      if (segment[0] === ViciPacketType.CMD_REQUEST)
        conn.send(encodePacket({ type: ViciPacketType.CMD_RESPONSE, message: { success: 'no', errmsg: err.message } }));
      else conn.socket.destroy();
      return;
    }
    switch (packet.type) {
      case ViciPacketType.EVENT_REGISTER:
      case ViciPacketType.EVENT_UNREGISTER: {
        if (!this.known.has(packet.name)) {
          conn.send(encodePacket({ type: ViciPacketType.EVENT_UNKNOWN }));
          return;
        }
        if (packet.type === ViciPacketType.EVENT_REGISTER) conn.events.add(packet.name);
        else conn.events.delete(packet.name);
        log.log('daemon', 'debug', `VICI client ${packet.type === ViciPacketType.EVENT_REGISTER ? 'registered for' : 'unregistered from'} ${packet.name}`);
        conn.send(encodePacket({ type: ViciPacketType.EVENT_CONFIRM }));
        return;
      }
      case ViciPacketType.CMD_REQUEST: {
        this.counters.requests++;
        const command = Object.hasOwn(this.options.commands, packet.name) ? this.options.commands[packet.name] : undefined;
        if (!command) {
          this.counters.unknownCommands++;
          log.log('daemon', 'debug', `VICI socket: unsupported command '${packet.name}' (answered CMD_UNKNOWN)`);
          conn.send(encodePacket({ type: ViciPacketType.CMD_UNKNOWN }));
          return;
        }
        let reply: ViciInput;
        try {
          reply = await command(packet.message, conn);
        } catch (err) {
          if (err instanceof ViciCommandError) reply = { success: 'no', errmsg: err.message };
          else {
            log.log('daemon', 'error', `VICI command ${packet.name} failed: ${(err as Error).stack ?? String(err)}`);
            reply = { success: 'no', errmsg: `internal error: ${(err as Error).message}` };
          }
        }
        try {
          conn.send(encodePacket({ type: ViciPacketType.CMD_RESPONSE, message: reply }));
        } catch (err) {
          log.log('daemon', 'error', `VICI command ${packet.name}: the answer cannot be encoded: ${(err as Error).message}`);
          conn.send(encodePacket({ type: ViciPacketType.CMD_RESPONSE, message: { success: 'no', errmsg: 'the answer could not be encoded' } }));
        }
        return;
      }
      default:
        // responses and events flow from the daemon to clients only
        this.counters.badPackets++;
        log.log('daemon', 'warn', `VICI socket: a client sent a ${ViciPacketType[packet.type]} packet; closing the connection`);
        conn.socket.destroy();
    }
  }
}
