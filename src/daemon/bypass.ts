/**
 * Keeping tunsec's own IKE (and ESP-in-UDP) packets out of the TUN routes.
 * When a peer's address is routed into the TUN device (host-to-host policies
 * protect traffic *to the IKE peer itself*), the UDP 500/4500 datagrams to
 * that peer must still leave on the real interface. Node cannot set SO_MARK
 * on its UDP sockets, so tunsec uses source-port routing rules, one per
 * family and port, ahead of the TUN routing table:
 *
 *   ip -4 rule add pref 210 ipproto udp sport 500 lookup main     (and 4500, and -6)
 *
 * Installed at start after removing stale copies (a crashed daemon), removed
 * at stop. See docs/daemon.md.
 */
import { execFile } from 'node:child_process';

export const BYPASS_RULE_PREF = 210;

export type RunIp = (args: string[]) => Promise<{ code: number; stderr: string }>;

const runIp: RunIp = (args) =>
  new Promise((resolve) => {
    execFile('ip', args, { timeout: 10_000 }, (err, _stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stderr: String(stderr).trim() || (err?.message ?? '') });
    });
  });

export class IkeBypassRules {
  private installed: string[][] = [];

  constructor(
    private readonly ports: readonly number[],
    private readonly ip: RunIp = runIp,
  ) {}

  private ruleArgs(family: '-4' | '-6', port: number): string[] {
    // IPPROTO_UDP by number: the name needs /etc/protocols, which minimal images lack
    return [family, 'rule', '%', 'pref', String(BYPASS_RULE_PREF), 'ipproto', '17', 'sport', String(port), 'lookup', 'main'];
  }

  /** Remove stale copies, then add one rule per family and port. Returns problems (empty when all went in). */
  async install(): Promise<string[]> {
    const problems: string[] = [];
    for (const family of ['-4', '-6'] as const) {
      for (const port of new Set(this.ports)) {
        const args = this.ruleArgs(family, port);
        // `ip rule add` happily adds duplicates: delete until none is left (at most a few from crashes).
        for (let i = 0; i < 16; i++) if ((await this.ip(args.map((a) => (a === '%' ? 'del' : a)))).code !== 0) break;
        const add = args.map((a) => (a === '%' ? 'add' : a));
        const r = await this.ip(add);
        if (r.code === 0) this.installed.push(args);
        else problems.push(`ip ${add.join(' ')}: ${r.stderr}`);
      }
    }
    return problems;
  }

  async remove(): Promise<void> {
    for (const args of this.installed.splice(0)) await this.ip(args.map((a) => (a === '%' ? 'del' : a)));
  }
}
