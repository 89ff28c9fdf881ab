/**
 * Which connections a request for an IKE SA we lost makes us initiate
 * (src/daemon/lost-peers.ts, RFC 7296 §2.21.4): those to the sender's address
 * that should be up and are not, at most once per interval each.
 */
import { describe, expect, it } from 'vitest';
import type { ResolvedConnection } from '../../src/daemon/credentials.js';
import { LOST_PEER_INITIATE_INTERVAL_MS, LostPeers } from '../../src/daemon/lost-peers.js';

/** The fields LostPeers reads; the rest of a resolved connection plays no part. */
function conn(name: string, remoteAddrs: string[], children: { start?: string[]; trap?: string[] } = {}): ResolvedConnection {
  return { name, startChildren: children.start ?? [], trapChildren: children.trap ?? [], entry: { remoteAddrs } } as unknown as ResolvedConnection;
}

const idle = (): boolean => false;

describe('LostPeers: initiating to a peer that still holds an IKE SA we lost', () => {
  const connections = [
    conn('start-v4', ['192.0.2.2'], { start: ['c'] }),
    conn('trap-v6', ['2001:db8::2'], { trap: ['c'] }),
    conn('respond-only', ['192.0.2.2']),
    conn('other-peer', ['192.0.2.9'], { start: ['c'] }),
  ];

  it('picks the start and trap connections to that address, the IPv6 address matched in any spelling, never a respond-only one', () => {
    const lost = new LostPeers();
    expect(lost.toInitiate('192.0.2.2', connections, idle, 0).map((c) => c.name)).toEqual(['start-v4']);
    expect(lost.toInitiate('2001:DB8:0::2', connections, idle, 0).map((c) => c.name)).toEqual(['trap-v6']);
  });

  it('skips a connection with an IKE SA or an initiation under way', () => {
    expect(new LostPeers().toInitiate('192.0.2.2', connections, (name) => name === 'start-v4', 0)).toEqual([]);
  });

  it('initiates each connection at most once per interval, however many forged or repeated requests arrive', () => {
    const lost = new LostPeers();
    expect(lost.toInitiate('192.0.2.2', connections, idle, 1000)).toHaveLength(1);
    expect(lost.toInitiate('192.0.2.2', connections, idle, 1000 + LOST_PEER_INITIATE_INTERVAL_MS - 1)).toEqual([]);
    expect(lost.toInitiate('192.0.2.2', connections, idle, 1000 + LOST_PEER_INITIATE_INTERVAL_MS)).toHaveLength(1);
  });
});
