/**
 * Group connections (remote_addrs as CIDR prefixes): one template for a
 * fleet of peers. Its trap policies cover the prefixes (./datapath.ts);
 * traffic to a host in them, or an IKE_SA_INIT from one, makes a per-peer
 * instance here — the template's credentials and proposals, the peer's
 * address as remote_addrs, host-to-host selectors (`dynamic` on both sides,
 * keeping any protocol/port restriction) and reqids of its own, so each
 * peer's CHILD_SA has policies of its own in front of the group's trap.
 *
 * Instances keep the template's name (`down NAME`, `list-sas NAME` cover the
 * whole group); `instancePeer` tells them apart, shown as `NAME[peer]`.
 * An instance lives while an IKE SA uses it; the next one for the same peer
 * is a fresh one with fresh reqids.
 */
import type { ConnectionEntry } from '../ike/manager.js';
import type { ChildPeerConfig } from '../ike/sa/peer-config.js';
import type { TrafficSelectorConfig } from '../ike/ts/index.js';
import { parseIp } from '../util/ip.js';
import { prefixContains } from '../util/prefix.js';
import type { ResolvedConnection } from './credentials.js';

/** reqids of instances start here, far above the configured children's (1, 2, …). */
export const INSTANCE_REQID_BASE = 0x100000;

/** `dc-fleet[10.0.1.7]`: how an instance is named in logs and views. */
export const instanceName = (group: string, peer: string): string => `${group}[${peer}]`;

/** A selector narrowed to the host of its side: `dynamic`, keeping the protocol and ports. */
function hostSelector(ts: TrafficSelectorConfig): TrafficSelectorConfig {
  if (ts.dynamic) return ts;
  const { family: _f, startAddress: _s, endAddress: _e, ...rest } = ts;
  const suffix = ts.text.includes('[') ? ts.text.slice(ts.text.indexOf('[')) : '';
  return { ...rest, dynamic: true, text: `dynamic${suffix}` };
}

function hostSelectors(list: readonly TrafficSelectorConfig[]): TrafficSelectorConfig[] {
  const seen = new Set<string>();
  return list.map(hostSelector).filter((t) => !seen.has(t.text) && seen.add(t.text) !== undefined);
}

export class GroupInstances {
  /** Instances by `group|peer`. */
  private readonly instances = new Map<string, ResolvedConnection>();
  private nextReqid = INSTANCE_REQID_BASE;

  /** Whether `peer` lies in the group's prefixes. */
  static covers(group: ResolvedConnection, peer: string): boolean {
    const bytes = parseIp(peer);
    return bytes !== undefined && (group.group ?? []).some((p) => prefixContains(p, bytes));
  }

  /** The instance of `group` for `peer` (made on first use); undefined when the peer is not in the group. */
  instance(group: ResolvedConnection, peer: string): ResolvedConnection | undefined {
    if (!group.group || !GroupInstances.covers(group, peer)) return undefined;
    const key = `${group.name}|${peer}`;
    const known = this.instances.get(key);
    // A reload replaced the template: the next instance is made from the new one.
    if (known && known.entry.config.name === group.name && this.templateOf.get(known) === group) return known;
    const cfg = group.entry.config;
    const children: ChildPeerConfig[] = cfg.children.map((c) => ({
      ...c,
      reqid: this.nextReqid++,
      localTs: hostSelectors(c.localTs),
      remoteTs: hostSelectors(c.remoteTs),
    }));
    const entry: ConnectionEntry = {
      config: { ...cfg, instancePeer: peer, children },
      localAddrs: group.entry.localAddrs,
      remoteAddrs: [peer],
      remotePort: group.entry.remotePort,
    };
    const instance: ResolvedConnection = {
      ...group,
      entry,
      startChildren: [],
      trapChildren: [],
      shunts: [],
    };
    delete instance.group;
    this.instances.set(key, instance);
    this.templateOf.set(instance, group);
    return instance;
  }

  private readonly templateOf = new WeakMap<ResolvedConnection, ResolvedConnection>();

  /** The instance whose entry is `config`'s (an IKE SA's), if any. */
  byConfig(config: ConnectionEntry['config']): ResolvedConnection | undefined {
    if (config.instancePeer === undefined) return undefined;
    return this.instances.get(`${config.name}|${config.instancePeer}`);
  }

  /** No IKE SA uses the instance of `config` any more: the next one for that peer is made afresh. */
  release(config: ConnectionEntry['config']): void {
    if (config.instancePeer === undefined) return;
    const key = `${config.name}|${config.instancePeer}`;
    if (this.instances.get(key)?.entry.config === config) this.instances.delete(key);
  }

  get size(): number {
    return this.instances.size;
  }
}
