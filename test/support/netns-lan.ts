/**
 * Several network namespaces on one Ethernet segment (a bridge in a namespace
 * of its own), for tests with a hub and a fleet of peers. Names carry a
 * random suffix; destroy() removes exactly what create() made. Host i has
 * 10.<n>.0.<10 + i>/24; the capture point of a host is its own interface.
 */
import { randomBytes } from 'node:crypto';
import { must, run, type RunResult } from './proc.js';
import type { NetnsSide } from './netns.js';

export class NetnsLan {
  private constructor(
    private readonly bridgeNs: string,
    readonly hosts: NetnsSide[],
    /** The /24 all hosts are in: `10.<n>.0.0/24`. */
    readonly prefix: string,
  ) {}

  static async create(count: number, label = 'lan'): Promise<NetnsLan> {
    const id = randomBytes(3).toString('hex');
    const n = 100 + (randomBytes(1)[0]! % 100);
    const bridgeNs = `${label}${id}br`;
    const hosts: NetnsSide[] = Array.from({ length: count }, (_, i) => ({
      ns: `${label}${id}h${i}`,
      ifname: `${label}${id}h${i}`.slice(0, 13) + 'e0',
      ip4: `10.${n}.0.${10 + i}`,
      ip6: `fd${n.toString(16)}::${(10 + i).toString(16)}`,
    }));
    const lan = new NetnsLan(bridgeNs, hosts, `10.${n}.0.0/24`);
    try {
      await must('ip', ['netns', 'add', bridgeNs]);
      await must('ip', ['-n', bridgeNs, 'link', 'add', 'br0', 'type', 'bridge']);
      await must('ip', ['-n', bridgeNs, 'link', 'set', 'br0', 'up']);
      for (const [i, h] of hosts.entries()) {
        await must('ip', ['netns', 'add', h.ns]);
        await must('ip', ['link', 'add', h.ifname, 'netns', h.ns, 'type', 'veth', 'peer', 'name', `p${i}`, 'netns', bridgeNs]);
        await must('ip', ['-n', bridgeNs, 'link', 'set', `p${i}`, 'master', 'br0', 'up']);
        await must('ip', ['-n', h.ns, 'link', 'set', 'lo', 'up']);
        await must('ip', ['-n', h.ns, 'addr', 'add', `${h.ip4}/24`, 'dev', h.ifname]);
        await must('ip', ['-n', h.ns, '-6', 'addr', 'add', `${h.ip6}/64`, 'dev', h.ifname, 'nodad']);
        await must('ip', ['-n', h.ns, 'link', 'set', h.ifname, 'up']);
      }
    } catch (err) {
      await lan.destroy();
      throw err;
    }
    return lan;
  }

  exec(side: NetnsSide, cmd: string, args: string[], timeoutMs?: number): Promise<RunResult> {
    return run('ip', ['netns', 'exec', side.ns, cmd, ...args], timeoutMs === undefined ? {} : { timeoutMs });
  }

  /** Delete every namespace (the veths and bridge go with them). Processes still inside are reported, not killed. */
  async destroy(): Promise<string[]> {
    const leftovers: string[] = [];
    for (const ns of [...this.hosts.map((h) => h.ns), this.bridgeNs]) {
      const pids = await run('ip', ['netns', 'pids', ns]);
      if (pids.code === 0 && pids.stdout.trim()) leftovers.push(`${ns}: ${pids.stdout.trim().replace(/\n/g, ' ')}`);
      await run('ip', ['netns', 'del', ns]);
    }
    return leftovers;
  }
}
