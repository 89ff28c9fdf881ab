import { describe, expect, it, vi } from 'vitest';
import type { IkeSaManager } from '../../src/ike/manager.js';
import type { IkeSa } from '../../src/ike/sa/ike-sa.js';
import type { ResolvedConnection } from '../../src/daemon/credentials.js';
import { EndActions, type EndActionsHost } from '../../src/daemon/end-actions.js';
import { Initiation } from '../../src/daemon/initiation.js';
import { DaemonLogger } from '../../src/daemon/logger.js';

// EndActions and Initiation against fakes of the few things they see of the daemon.

const children = [{ name: 'a' }, { name: 'b' }, { name: 'c' }];
const config = { name: 'dc1', children };

function connection(remoteAddrs = ['192.0.2.2']): ResolvedConnection {
  return {
    name: 'dc1',
    entry: { config, remoteAddrs, localAddrs: ['192.0.2.1'] },
    startChildren: ['a'],
    trapChildren: [],
    shunts: [],
    keyingtries: 1,
    dpdActions: { a: 'trap', b: 'restart', c: 'clear' },
    closeActions: { a: 'none', b: 'start', c: 'none' },
  } as unknown as ResolvedConnection;
}

function ikeSa(state: string, childNames: string[], extra: Record<string, unknown> = {}): IkeSa & { createChild: ReturnType<typeof vi.fn> } {
  return {
    state,
    ctx: { name: 'dc1[1]', config, remote: { address: '192.0.2.2', port: 500 }, children: childNames.map((name) => ({ name })), originalInitiator: true },
    childNamesAtEnd: childNames,
    createChild: vi.fn(),
    ...extra,
  } as unknown as IkeSa & { createChild: ReturnType<typeof vi.fn> };
}

function host(c: ResolvedConnection, sas: IkeSa[] = [], mayNegotiate = true) {
  const lines: string[] = [];
  const log = new DaemonLogger({ json: false, write: (l) => lines.push(l), levels: { daemon: 2 } });
  const h = {
    log,
    manager: () => ({ sas }) as unknown as IkeSaManager,
    connections: () => [c],
    running: () => true,
    mayNegotiate: () => mayNegotiate,
    installTrap: vi.fn(),
    initiation: { isRetrying: vi.fn(() => false), keepInitiating: vi.fn(async () => {}) },
  } satisfies EndActionsHost;
  return { h, lines };
}

describe('end actions', () => {
  it("applies each child's dpd_action when the peer is dead, and creates the restarted children on the next IKE SA", () => {
    const c = connection();
    const { h } = host(c);
    const actions = new EndActions(h);
    const dead = ikeSa('destroyed', ['a', 'b', 'c']);
    actions.ikeSaEnded(dead, 'dead-peer');
    expect(h.installTrap).toHaveBeenCalledWith(c, 'a', '192.0.2.2');
    expect(h.initiation.keepInitiating).toHaveBeenCalledTimes(1);
    expect(h.initiation.keepInitiating).toHaveBeenCalledWith(c);

    const next = ikeSa('established', ['a']);
    actions.createMissingChildren(next);
    expect(next.createChild.mock.calls.map(([ch]) => (ch as { name: string }).name)).toEqual(['b']);
  });

  it('does nothing for other end causes, or while the daemon may not negotiate', () => {
    const c = connection();
    const { h } = host(c);
    new EndActions(h).ikeSaEnded(ikeSa('destroyed', ['a', 'b']), 'failed');
    const off = host(c, [], false).h;
    new EndActions(off).ikeSaEnded(ikeSa('destroyed', ['a', 'b']), 'dead-peer');
    for (const x of [h, off]) {
      expect(x.installTrap).not.toHaveBeenCalled();
      expect(x.initiation.keepInitiating).not.toHaveBeenCalled();
    }
  });

  it('opens a new CHILD_SA on the IKE SA when the peer closed one child (close_action start)', () => {
    const c = connection();
    const { h } = host(c);
    const sa = ikeSa('established', ['a']);
    new EndActions(h).childClosed(sa, 'b');
    expect(sa.createChild).toHaveBeenCalledWith(children[1], 'close_action start');
    expect(h.initiation.keepInitiating).not.toHaveBeenCalled();
  });

  it('cannot restart a connection whose remote_addrs is %any, and says so', () => {
    const c = connection(['%any']);
    const { h, lines } = host(c);
    new EndActions(h).ikeSaEnded(ikeSa('destroyed', ['b']), 'dead-peer');
    expect(h.initiation.keepInitiating).not.toHaveBeenCalled();
    expect(lines.join('')).toContain('dpd_action restart impossible: remote_addrs names no peer to initiate to');
  });
});

describe('initiation on demand', () => {
  it('creates the missing CHILD_SA on an established IKE SA when traffic hits its trap, instead of a new IKE SA', () => {
    const c = connection();
    const sa = ikeSa('established', ['a'], { successor: undefined });
    const initiate = vi.fn();
    const initiation = new Initiation({ ...host(c).h, manager: () => ({ sas: [sa], initiate }) as unknown as IkeSaManager, loopsMayRun: () => true });
    initiation.acquired('dc1', 'b');
    expect(sa.createChild).toHaveBeenCalledWith(children[1], 'traffic hit its trap policy (acquire)');
    expect(initiate).not.toHaveBeenCalled();
  });

  it('drops the traffic of a connection with no peer to negotiate with', () => {
    const c = connection(['%any']);
    const { h, lines } = host(c);
    const initiate = vi.fn();
    const initiation = new Initiation({ ...h, manager: () => ({ sas: [], initiate }) as unknown as IkeSaManager, loopsMayRun: () => true });
    initiation.acquired('dc1', 'a');
    expect(initiate).not.toHaveBeenCalled();
    expect(lines.join('')).toContain('traffic for dc1/a dropped: no SA, and remote_addrs names no peer to negotiate with');
  });
});

describe('initiation on demand while a start loop waits to retry', () => {
  it('traffic hitting the trap wakes the waiting loop for its next attempt instead of negotiating a second IKE SA beside it', async () => {
    const c = { ...connection(), keyingtries: 0 } as ResolvedConnection;
    const { h, lines } = host(c);
    const sa = ikeSa('established', ['a'], { ctx: { spiI: Buffer.alloc(8, 1) } });
    const initiate = vi.fn().mockRejectedValueOnce(new Error('peer unreachable')).mockResolvedValueOnce(sa);
    const initiation = new Initiation({
      ...h,
      manager: () => ({ sas: [], initiate }) as unknown as IkeSaManager,
      loopsMayRun: () => true,
      retryDelayMs: { initial: 600_000, max: 600_000 },
    });
    const loop = initiation.keepInitiating(c);
    await vi.waitFor(() => expect(lines.join('')).toContain('establishing failed (attempt 1 of forever)'));
    initiation.acquired('dc1', 'a');
    initiation.acquired('dc1', 'a');
    await loop;
    expect(initiate).toHaveBeenCalledTimes(2);
    expect(lines.join('')).toContain('connection dc1 established (attempt 2)');
    expect(lines.join('')).not.toContain('triggers negotiation (acquire)');
    expect(initiation.isRetrying('dc1')).toBe(false);
  });
});
