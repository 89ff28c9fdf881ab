/**
 * Per-peer instances of a group connection (src/daemon/groups.ts): made for
 * hosts in the group only, host-to-host selectors, reqids of their own, the
 * template's name, reused while an IKE SA uses them and made afresh after.
 */
import { describe, expect, it } from 'vitest';
import type { ResolvedConnection } from '../../src/daemon/credentials.js';
import { GroupInstances, INSTANCE_REQID_BASE } from '../../src/daemon/groups.js';
import type { IkePeerConfig } from '../../src/ike/sa/peer-config.js';
import { parseTrafficSelector } from '../../src/ike/ts/syntax.js';
import { parsePrefix } from '../../src/util/prefix.js';

const ts = (text: string) => {
  const r = parseTrafficSelector(text);
  if (!r.ok) throw new Error(r.message);
  return r.value;
};
const prefix = (text: string) => {
  const r = parsePrefix(text);
  if (!r.ok) throw new Error(r.message);
  return r.value;
};

function group(): ResolvedConnection {
  const config = {
    name: 'dc-fleet',
    children: [
      {
        name: 'cache',
        reqid: 1,
        mode: 'transport',
        localTs: [ts('dynamic')],
        remoteTs: [ts('10.0.1.0/24[tcp/443]')],
        espProposals: [],
        replayWindow: 32,
        lifetimes: {},
        policy: 'private',
      },
    ],
  } as unknown as IkePeerConfig;
  return {
    name: 'dc-fleet',
    entry: { config, localAddrs: ['%any'], remoteAddrs: ['10.0.1.0/24'], remotePort: 500, remotePrefixes: [prefix('10.0.1.0/24')] },
    startChildren: [],
    trapChildren: ['cache'],
    shunts: [],
    keyingtries: 1,
    dpdActions: { cache: 'clear' },
    closeActions: { cache: 'none' },
    inactivity: { cache: 600 },
    group: [prefix('10.0.1.0/24')],
  };
}

describe('group instances', () => {
  it("a host in the group gets an instance under the group's name with the peer as its only address and host-to-host selectors", () => {
    const groups = new GroupInstances();
    const g = group();
    const a = groups.instance(g, '10.0.1.7')!;
    expect(a.name).toBe('dc-fleet');
    expect(a.entry.config.instancePeer).toBe('10.0.1.7');
    expect(a.entry.remoteAddrs).toEqual(['10.0.1.7']);
    expect(a.group).toBeUndefined();
    expect(a.trapChildren).toEqual([]);
    const child = a.entry.config.children[0]!;
    expect(child.localTs.map((t) => t.text)).toEqual(['dynamic']);
    expect(child.remoteTs.map((t) => [t.text, t.dynamic, t.protocol, t.startPort])).toEqual([['dynamic[tcp/443]', true, 6, 443]]);
    expect(child.reqid).toBe(INSTANCE_REQID_BASE);
    expect(g.entry.config.children[0]!.reqid).toBe(1);
  });

  it('two peers get two instances with distinct reqids; the same peer gets the same one until it is released', () => {
    const groups = new GroupInstances();
    const g = group();
    const a = groups.instance(g, '10.0.1.7')!;
    const b = groups.instance(g, '10.0.1.8')!;
    expect(b.entry.config.children[0]!.reqid).not.toBe(a.entry.config.children[0]!.reqid);
    expect(groups.instance(g, '10.0.1.7')).toBe(a);
    expect(groups.size).toBe(2);
    groups.release(a.entry.config);
    expect(groups.instance(g, '10.0.1.7')).not.toBe(a);
  });

  it('an address outside the group gets no instance', () => {
    const groups = new GroupInstances();
    expect(groups.instance(group(), '10.0.2.7')).toBeUndefined();
    expect(groups.instance(group(), 'fd00::7')).toBeUndefined();
    expect(groups.size).toBe(0);
  });
});
