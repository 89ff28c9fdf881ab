/**
 * Two IKE peers (an IkeSaManager and an in-memory SAD each) joined by a wire
 * the test works by hand: nothing is sent until the test delivers it, one
 * message at a time and in the order it chooses — no sockets, no delays
 * (strongSwan's tests/suites/test_child_rekey.c works the same way). Each
 * side's CREATE_CHILD_SA nonces can be fixed (IkeSaContext.nonces) so that
 * §2.8.1 collisions resolve the way a test wants.
 */
import { SecurityAssociationDatabase } from '../../../src/esp/sadb.js';
import { IkeSaManager } from '../../../src/ike/manager.js';
import { MemoryLogger } from '../../../src/ike/log.js';
import { decodeMessage, ExchangeType, type IkeHeader } from '../../../src/ike/codec/index.js';
import type { Endpoint } from '../../../src/ike/net/udp.js';
import type { IkeSa } from '../../../src/ike/sa/ike-sa.js';
import type { IkePeerConfig } from '../../../src/ike/sa/peer-config.js';
import { peerConfig, testPki } from './peers.js';

export interface Datagram {
  from: Endpoint;
  to: Endpoint;
  bytes: Buffer;
  header: IkeHeader;
}

export interface WiredPeer {
  name: 'moon' | 'sun';
  endpoint: Endpoint;
  manager: IkeSaManager;
  sad: SecurityAssociationDatabase;
  log: MemoryLogger;
  /** Sent by this peer and not delivered yet, oldest first. */
  outbox: Datagram[];
  /** The established IKE SA of this peer (the newest, after an IKE rekey). */
  sa(): IkeSa;
  /** Fix the nonces of this peer's IKE SAs (and of their rekeyed successors): `list` is used in order, then random. */
  useNonces(list: Buffer[]): void;
}

export interface Wire {
  moon: WiredPeer;
  sun: WiredPeer;
  /** Hand the oldest (or `index`th) datagram `from` sent to the other peer; returns it. */
  deliver(from: WiredPeer, index?: number): Datagram;
  /** Deliver whatever either side sends until neither has anything left (moon's first, then sun's, each round). */
  flush(): void;
  /** Destroy every IKE SA (timers stop). */
  close(): void;
}

/** A message's name for assertions: `CREATE_CHILD_SA request 2`. */
export function describe(d: Datagram): string {
  return `${ExchangeType[d.header.exchangeType] ?? d.header.exchangeType} ${d.header.response ? 'response' : 'request'} ${d.header.messageId}`;
}

/** A 32-octet nonce filled with `octet` (the lowest of all nonces wins §2.8.1's tie-break for the other exchange). */
export function fixedNonce(octet: number): Buffer {
  return Buffer.alloc(32, octet);
}

/** moon (127.0.0.1, initiator of `host-host`) and sun (127.0.0.2), established, with every message of IKE_SA_INIT/IKE_AUTH delivered. */
export async function wiredPair(opts: { moon?: Partial<IkePeerConfig>; sun?: Partial<IkePeerConfig> } = {}): Promise<Wire> {
  const pki = testPki();
  const peer = (name: 'moon' | 'sun', address: string, otherName: string, otherAddress: string): WiredPeer => {
    const log = new MemoryLogger();
    const sad = new SecurityAssociationDatabase();
    const outbox: Datagram[] = [];
    const cert = pki.host(`${name}.tunsec.test`, { ip: [address] });
    let fixed: Buffer[] = [];
    const manager = new IkeSaManager({
      connections: [
        {
          config: peerConfig(pki, cert, `${name}.tunsec.test`, `${otherName}.tunsec.test`, opts[name]),
          localAddrs: [address],
          remoteAddrs: [otherAddress],
          remotePort: 500,
        },
      ],
      backend: sad,
      log,
      ikePort: 500,
      // no retransmission within a test: every message is delivered by hand
      retransmit: { timeout: 600, base: 1, tries: 1 },
      io: {
        nattPort: 4500,
        send(local, remote, datagrams) {
          for (const bytes of datagrams) outbox.push({ from: local, to: remote, bytes, header: decodeMessage(bytes).header });
        },
      },
    });
    const self: WiredPeer = {
      name,
      endpoint: { address, port: 500 },
      manager,
      sad,
      log,
      outbox,
      sa: () => {
        const live = manager.sas.filter((s) => s.state === 'established');
        const sa = live[live.length - 1];
        if (!sa) throw new Error(`${name} has no established IKE_SA`);
        return sa;
      },
      useNonces(list) {
        fixed = [...list];
        const source = (length: number): Buffer => fixed.shift() ?? Buffer.from(Array.from({ length }, () => Math.floor(Math.random() * 256)));
        for (const sa of manager.sas) sa.ctx.nonces = source;
      },
    };
    return self;
  };
  const moon = peer('moon', '127.0.0.1', 'sun', '127.0.0.2');
  const sun = peer('sun', '127.0.0.2', 'moon', '127.0.0.1');
  const other = (p: WiredPeer): WiredPeer => (p === moon ? sun : moon);
  const deliver = (from: WiredPeer, index = 0): Datagram => {
    const [d] = from.outbox.splice(index, 1);
    if (!d) throw new Error(`${from.name} has nothing to deliver`);
    other(from).manager.receive(d.bytes, d.to, d.from);
    return d;
  };
  const flush = (): void => {
    for (let rounds = 0; moon.outbox.length + sun.outbox.length > 0; rounds++) {
      if (rounds > 100) throw new Error('the peers keep talking');
      while (moon.outbox.length > 0) deliver(moon);
      while (sun.outbox.length > 0) deliver(sun);
    }
  };
  const established = moon.manager.initiate('host-host');
  flush();
  await established;
  return {
    moon,
    sun,
    deliver,
    flush,
    close: () => {
      for (const p of [moon, sun]) for (const sa of p.manager.sas) sa.destroy('test over');
    },
  };
}
