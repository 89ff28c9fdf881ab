/**
 * Two network namespaces joined by a veth pair, for integration tests.
 * Names carry a random suffix so parallel test files never collide; destroy()
 * removes exactly what create() made. Addresses: 10.<n>.0.1/24 + fd<hex n>::1/64
 * on side a, .2 / ::2 on side b.
 */
import { randomBytes } from 'node:crypto';
import { must, run, type RunResult } from './proc.js';

export interface NetnsSide {
  ns: string;
  ifname: string;
  ip4: string;
  ip6: string;
}

export class NetnsPair {
  private constructor(
    readonly a: NetnsSide,
    readonly b: NetnsSide,
  ) {}

  static async create(label = 'ts'): Promise<NetnsPair> {
    const id = randomBytes(3).toString('hex');
    const n = 100 + (randomBytes(1)[0]! % 100);
    const a: NetnsSide = { ns: `${label}${id}a`, ifname: `${label}${id}a0`.slice(0, 15), ip4: `10.${n}.0.1`, ip6: `fd${n.toString(16)}::1` };
    const b: NetnsSide = { ns: `${label}${id}b`, ifname: `${label}${id}b0`.slice(0, 15), ip4: `10.${n}.0.2`, ip6: `fd${n.toString(16)}::2` };
    const pair = new NetnsPair(a, b);
    try {
      await must('ip', ['netns', 'add', a.ns]);
      await must('ip', ['netns', 'add', b.ns]);
      await must('ip', ['link', 'add', a.ifname, 'netns', a.ns, 'type', 'veth', 'peer', 'name', b.ifname, 'netns', b.ns]);
      for (const s of [a, b]) {
        await must('ip', ['-n', s.ns, 'link', 'set', 'lo', 'up']);
        await must('ip', ['-n', s.ns, 'addr', 'add', `${s.ip4}/24`, 'dev', s.ifname]);
        await must('ip', ['-n', s.ns, '-6', 'addr', 'add', `${s.ip6}/64`, 'dev', s.ifname, 'nodad']);
        await must('ip', ['-n', s.ns, 'link', 'set', s.ifname, 'up']);
      }
    } catch (err) {
      await pair.destroy();
      throw err;
    }
    return pair;
  }

  /** Run a command inside a namespace. */
  exec(side: NetnsSide, cmd: string, args: string[], timeoutMs?: number): Promise<RunResult> {
    return run('ip', ['netns', 'exec', side.ns, cmd, ...args], timeoutMs === undefined ? {} : { timeoutMs });
  }

  /** Delete both namespaces (the veth goes with them). Processes still inside are reported, not killed. */
  async destroy(): Promise<string[]> {
    const leftovers: string[] = [];
    for (const s of [this.a, this.b]) {
      const pids = await run('ip', ['netns', 'pids', s.ns]);
      if (pids.code === 0 && pids.stdout.trim()) leftovers.push(`${s.ns}: ${pids.stdout.trim().replace(/\n/g, ' ')}`);
      await run('ip', ['netns', 'del', s.ns]);
    }
    return leftovers;
  }
}
