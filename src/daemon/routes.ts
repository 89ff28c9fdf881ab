/**
 * The routes and rules that send exactly the SPD-selected flows into the TUN
 * device. tunsec protects outbound traffic in userspace, so the kernel has to
 * route the packets of every protected flow into the device, and only those.
 * As strongSwan does with its table 220, tunsec keeps a routing table of its
 * own with one route per remote prefix into the device,
 *
 *   ip -4 route replace 10.1.0.0/24 dev tunsec0 [src 10.0.0.1] table 220
 *
 * and policy-routing rules that send the selected flows to that table, one per
 * remote prefix (an address range becomes its CIDR cover) and protocol/port
 * combination of a policy's selectors:
 *
 *   ip -4 rule add pref 220 to 10.1.0.0/24 [ipproto tcp] [dport 80] [sport 1024-2048] lookup 220
 *
 * The rules select on the destination, never with `from`: a locally
 * originated packet is first routed before it has a source address (the
 * lookup runs with source 0.0.0.0 or ::), so a `from` rule would miss exactly
 * the traffic tunsec exists to protect. The in-process SPD refines what the
 * rules let through: the local address range, OPAQUE ports, and ICMP type and
 * code (the "ports" of ICMP selectors, RFC 7296 §3.13.1), which `ip rule`
 * cannot match.
 *
 * tunsec's own ESP leaves on a raw socket with SO_MARK; mark rules ahead of
 * the table (`pref 210 fwmark M/M lookup main`, v4 and v6) keep it out of the
 * device. IKE's UDP 500/4500 has its own rules (bypass.ts). Decrypted packets
 * come back in through the device with remote source addresses, so its
 * rp_filter is set to 0; the effective value is max(all, device), hence the
 * warning when `net.ipv4.conf.all.rp_filter` is 1 (strict).
 *
 * Rules and routes are reference counted: policies that share one keep it
 * until the last of them is removed. `ip rule del` deletes the *first* rule
 * that matches the fields it names, so deleting `to P lookup 220` could take
 * another policy's `to P ipproto tcp dport 80 lookup 220` instead; such
 * narrower rules are first moved behind the one to delete (deleteRule).
 * `ip` calls are async: operations run one at a time. Failures of `ip` are
 * returned as problem strings, never thrown.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import type { TrafficSelector } from '../esp/api.js';
import { type IpFamily, canonicalIp, ipFamily, rangeToPrefixes } from '../util/ip.js';

export const TUN_TABLE = 220;
export const TUN_RULE_PREF = 220;
export const MARK_RULE_PREF = 210;

/** Runs `ip` with these arguments: bypass.ts's RunIp that also returns stdout (one runner serves both). */
export type RunIp = (args: string[]) => Promise<{ code: number; stdout: string; stderr: string }>;

/**
 * Reads (no `value`) or writes a sysctl named by its path under /proc/sys,
 * e.g. `net/ipv4/conf/all/rp_filter`; resolves with the value, or an Error.
 */
export type Sysctl = (path: string, value?: string) => Promise<string | Error>;

export const runIp: RunIp = (args) =>
  new Promise((resolve) => {
    execFile('ip', args, { timeout: 10_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr).trim() || (err?.message ?? '') });
    });
  });

/** The proc file of the calling process's network namespace. */
const procSysctl: Sysctl = async (path, value) => {
  const file = `/proc/sys/${path}`;
  try {
    if (value === undefined) return (await readFile(file, 'utf8')).trim();
    await writeFile(file, value);
    return value;
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
};

/** One outbound policy: the CHILD_SA's selectors, and the local address to use as source. */
export interface OutboundPolicy {
  local: TrafficSelector[];
  remote: TrafficSelector[];
  localAddress?: string;
}

/** One `ip rule` sending a flow to the TUN table. */
export interface RoutingRule {
  family: IpFamily;
  /** Destination prefix. */
  to: string;
  /** 0 = any. */
  protocol: number;
  /** "80" or "1024-2048"; absent = any. */
  sport?: string;
  dport?: string;
  /** The `ip` arguments that add it; with "add" made "del" they remove it. */
  add: string[];
}

/** One route of the TUN table. */
export interface TableRoute {
  family: IpFamily;
  prefix: string;
  /** `ip … route replace …` */
  replace: string[];
  /** `ip … route del …` */
  del: string[];
}

export interface RoutingPlace {
  tunName: string;
  table?: number;
  rulePref?: number;
}

const IPPROTO_ICMP = 1;
const IPPROTO_ICMPV6 = 58;

/** The port range as `ip rule` takes it; undefined when the rule cannot or need not narrow it. */
function portMatch(protocol: number, ts: TrafficSelector): string | undefined {
  if (protocol === IPPROTO_ICMP || protocol === IPPROTO_ICMPV6) return undefined; // type<<8|code: the SPD refines
  if (ts.startPort > ts.endPort) return undefined; // OPAQUE
  if (ts.startPort === 0 && ts.endPort === 0xffff) return undefined; // any
  return ts.startPort === ts.endPort ? String(ts.startPort) : `${ts.startPort}-${ts.endPort}`;
}

const familyFlag = (family: IpFamily): string => `-${family}`;

const withVerb = (args: string[], verb: string): string[] => [args[0]!, args[1]!, verb, ...args.slice(3)];

/** The rules and table routes that send the flows of one outbound policy into the TUN device. */
export function routingRulesFor(policy: OutboundPolicy, place: RoutingPlace): { rules: RoutingRule[]; routes: TableRoute[] } {
  const table = String(place.table ?? TUN_TABLE);
  const pref = String(place.rulePref ?? TUN_RULE_PREF);
  const rules = new Map<string, RoutingRule>();
  const routes = new Map<string, TableRoute>();
  const source = policy.localAddress === undefined ? undefined : canonicalIp(policy.localAddress);
  for (const remote of policy.remote) {
    const family = ipFamily(remote.startAddress);
    if (family === undefined) continue;
    const prefixes = rangeToPrefixes(remote.startAddress, remote.endAddress);
    for (const prefix of prefixes) {
      const src = source !== undefined && ipFamily(source) === family ? ['src', source] : [];
      const replace = [familyFlag(family), 'route', 'replace', prefix, 'dev', place.tunName, ...src, 'table', table];
      const del = [familyFlag(family), 'route', 'del', prefix, 'dev', place.tunName, 'table', table];
      routes.set(del.join(' '), { family, prefix, replace, del });
    }
    for (const local of policy.local) {
      if (ipFamily(local.startAddress) !== family) continue;
      if (local.protocol !== 0 && remote.protocol !== 0 && local.protocol !== remote.protocol) continue;
      const protocol = remote.protocol || local.protocol;
      const dport = portMatch(protocol, remote);
      const sport = portMatch(protocol, local);
      for (const to of prefixes) {
        const add = [familyFlag(family), 'rule', 'add', 'pref', pref, 'to', to];
        // by number: names need /etc/protocols, which minimal images (containers) lack
        if (protocol !== 0) add.push('ipproto', String(protocol));
        if (dport !== undefined) add.push('dport', dport);
        if (sport !== undefined) add.push('sport', sport);
        add.push('lookup', table);
        const rule: RoutingRule = { family, to, protocol, add };
        if (dport !== undefined) rule.dport = dport;
        if (sport !== undefined) rule.sport = sport;
        rules.set(add.join(' '), rule);
      }
    }
  }
  return { rules: [...rules.values()], routes: [...routes.values()] };
}

/** Whether `ip rule del` with the fields of `spec` could delete `rule` (it deletes the first rule whose named fields match). */
function deleteSpecMatches(spec: RoutingRule, rule: RoutingRule): boolean {
  return (
    spec.family === rule.family &&
    spec.to === rule.to &&
    (spec.protocol === 0 || spec.protocol === rule.protocol) &&
    (spec.dport === undefined || spec.dport === rule.dport) &&
    (spec.sport === undefined || spec.sport === rule.sport)
  );
}

/** How many fields a rule names beyond its prefix. */
const specificity = (r: RoutingRule): number => (r.protocol ? 1 : 0) + (r.dport ? 1 : 0) + (r.sport ? 1 : 0);

export interface TunRoutesOptions {
  tunName: string;
  /** Routing table of the TUN routes (220). */
  table?: number;
  /** Preference of the rules that look the table up (220). */
  rulePref?: number;
  /** SO_MARK of tunsec's raw ESP socket: marked packets bypass the TUN table (unset or 0: no mark rules). */
  fwmark?: number;
  /** Preference of the mark rules (210), ahead of the TUN rules. */
  markRulePref?: number;
  ip?: RunIp;
  sysctl?: Sysctl;
}

interface Counted<T> {
  item: T;
  refs: number;
}

/** Keys of the rules and routes one policy holds a reference to. */
interface PolicyRefs {
  rules: string[];
  routes: string[];
}

export interface InstalledRouting {
  policies: string[];
  rules: { args: string[]; refs: number }[];
  routes: { args: string[]; refs: number }[];
  markRules: string[][];
}

export class TunRoutes {
  private readonly tunName: string;
  private readonly table: number;
  private readonly rulePref: number;
  private readonly fwmark: number | undefined;
  private readonly markRulePref: number;
  private readonly ip: RunIp;
  private readonly sysctl: Sysctl;
  private readonly rules = new Map<string, Counted<RoutingRule>>();
  private readonly routes = new Map<string, Counted<TableRoute>>();
  private readonly policies = new Map<string, PolicyRefs>();
  private markRules: string[][] = [];
  private queue: Promise<unknown> = Promise.resolve();

  constructor(options: TunRoutesOptions) {
    this.tunName = options.tunName;
    this.table = options.table ?? TUN_TABLE;
    this.rulePref = options.rulePref ?? TUN_RULE_PREF;
    this.fwmark = options.fwmark;
    this.markRulePref = options.markRulePref ?? MARK_RULE_PREF;
    this.ip = options.ip ?? runIp;
    this.sysctl = options.sysctl ?? procSysctl;
  }

  /** Remove a crashed daemon's rules and routes, add the mark rules, turn off rp_filter on the device. Returns problems and warnings. */
  start(): Promise<string[]> {
    return this.serialized(async () => {
      const problems: string[] = [];
      this.rules.clear();
      this.routes.clear();
      this.policies.clear();
      this.markRules = [];
      for (const family of [4, 6] as const) {
        problems.push(...(await this.removeStaleRules(family)));
        const flush = [familyFlag(family), 'route', 'flush', 'table', String(this.table)];
        const r = await this.ip(flush);
        // An IPv4 table that was never used does not exist: nothing to flush.
        if (r.code !== 0 && !/does not exist/.test(r.stderr)) problems.push(`ip ${flush.join(' ')}: ${r.stderr || `exit ${r.code}`}`);
      }
      if (this.fwmark) {
        const mark = `0x${this.fwmark.toString(16)}`;
        for (const family of [4, 6] as const) {
          const add = [familyFlag(family), 'rule', 'add', 'pref', String(this.markRulePref), 'fwmark', `${mark}/${mark}`, 'lookup', 'main'];
          // A crashed daemon's copy is still there (older kernels even keep duplicates): delete until none is left.
          for (let i = 0; i < 16; i++) if ((await this.ip(withVerb(add, 'del'))).code !== 0) break;
          if (await this.run(add, problems)) this.markRules.push(add);
        }
      }
      problems.push(...(await this.disableRpFilter()));
      return problems;
    });
  }

  /** Install (or replace) the rules and table routes of a policy. Returns problems. */
  addPolicy(key: string, policy: OutboundPolicy): Promise<string[]> {
    return this.serialized(async () => {
      const problems: string[] = [];
      const { rules, routes } = routingRulesFor(policy, { tunName: this.tunName, table: this.table, rulePref: this.rulePref });
      const held: PolicyRefs = { rules: [], routes: [] };
      // Routes before rules: a rule whose table has no route falls through to main, in the clear.
      for (const route of routes) {
        const id = route.del.join(' ');
        if (await this.acquire(this.routes, id, route, route.replace, problems)) held.routes.push(id);
      }
      for (const rule of rules) {
        const id = rule.add.join(' ');
        if (await this.acquire(this.rules, id, rule, rule.add, problems)) held.rules.push(id);
      }
      const previous = this.policies.get(key);
      this.policies.set(key, held);
      if (previous) await this.release(previous, problems);
      return problems;
    });
  }

  /** Remove the rules and table routes of a policy that no other policy uses. Returns problems. */
  removePolicy(key: string): Promise<string[]> {
    return this.serialized(async () => {
      const problems: string[] = [];
      const held = this.policies.get(key);
      this.policies.delete(key);
      if (held) await this.release(held, problems);
      return problems;
    });
  }

  /** Remove every rule, route and mark rule this instance installed. Returns problems. */
  stop(): Promise<string[]> {
    return this.serialized(async () => {
      const problems: string[] = [];
      // Most specific first, so each delete can only match the rule it names.
      const rules = [...this.rules.values()].map((c) => c.item).sort((a, b) => specificity(b) - specificity(a));
      for (const rule of rules) await this.run(withVerb(rule.add, 'del'), problems);
      for (const { item } of this.routes.values()) await this.run(item.del, problems);
      for (const add of this.markRules) await this.run(withVerb(add, 'del'), problems);
      this.rules.clear();
      this.routes.clear();
      this.policies.clear();
      this.markRules = [];
      return problems;
    });
  }

  /** What is installed now, for status output and tests. */
  installed(): InstalledRouting {
    return {
      policies: [...this.policies.keys()],
      rules: [...this.rules.values()].map((c) => ({ args: c.item.add, refs: c.refs })),
      routes: [...this.routes.values()].map((c) => ({ args: c.item.replace, refs: c.refs })),
      markRules: this.markRules.map((args) => [...args]),
    };
  }

  private serialized<T>(operation: () => Promise<T>): Promise<T> {
    const result = this.queue.then(operation);
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** Run `ip`; on failure note a problem. Whether it succeeded. */
  private async run(args: string[], problems: string[]): Promise<boolean> {
    const r = await this.ip(args);
    if (r.code !== 0) problems.push(`ip ${args.join(' ')}: ${r.stderr || `exit ${r.code}`}`);
    return r.code === 0;
  }

  /** Take a reference, installing on the first. Whether the reference was taken. */
  private async acquire<T>(map: Map<string, Counted<T>>, key: string, item: T, install: string[], problems: string[]): Promise<boolean> {
    const counted = map.get(key);
    if (counted) {
      counted.refs++;
      return true;
    }
    if (!(await this.run(install, problems))) return false;
    map.set(key, { item, refs: 1 });
    return true;
  }

  /** Drop a policy's references: rules before routes, removing those no one holds any more. */
  private async release(held: PolicyRefs, problems: string[]): Promise<void> {
    for (const key of held.rules) {
      const counted = this.rules.get(key);
      if (counted && --counted.refs === 0) await this.deleteRule(key, problems);
    }
    for (const key of held.routes) {
      const counted = this.routes.get(key);
      if (!counted || --counted.refs > 0) continue;
      this.routes.delete(key);
      await this.run(counted.item.del, problems);
    }
  }

  /**
   * Delete one rule and no other. The kernel keeps the rules of one preference
   * in the order they were added (the order of `this.rules`), and `ip rule del`
   * deletes the first whose named fields match. Narrower rules ahead of this
   * one are therefore moved behind it first — deleted the same way and added
   * again while this broader rule still routes their flows — and only then is
   * it deleted. Duplicates cannot help: the kernel refuses an identical rule.
   */
  private async deleteRule(key: string, problems: string[]): Promise<void> {
    const rule = this.rules.get(key)?.item;
    if (!rule) return;
    for (const [aheadKey, ahead] of [...this.rules]) {
      if (aheadKey === key) break;
      if (!this.rules.has(aheadKey) || !deleteSpecMatches(rule, ahead.item)) continue;
      await this.deleteRule(aheadKey, problems);
      if (await this.run(ahead.item.add, problems)) this.rules.set(aheadKey, ahead);
    }
    this.rules.delete(key);
    await this.run(withVerb(rule.add, 'del'), problems);
  }

  /** Delete every rule at our preference that looks up our table (a crashed daemon's). */
  private async removeStaleRules(family: IpFamily): Promise<string[]> {
    const problems: string[] = [];
    const list = [familyFlag(family), '-j', 'rule', 'show'];
    const r = await this.ip(list);
    let stale = 0;
    try {
      if (r.code !== 0) throw new Error(r.stderr || `exit ${r.code}`);
      const entries = JSON.parse(r.stdout || '[]') as { priority?: number; table?: string }[];
      stale = entries.filter((e) => e.priority === this.rulePref && e.table === String(this.table)).length;
    } catch (err) {
      problems.push(`ip ${list.join(' ')}: ${err instanceof Error ? err.message : String(err)}`);
    }
    const del = [familyFlag(family), 'rule', 'del', 'pref', String(this.rulePref), 'lookup', String(this.table)];
    for (let i = 0; i < stale; i++) if (!(await this.run(del, problems))) break;
    return problems;
  }

  private async disableRpFilter(): Promise<string[]> {
    const problems: string[] = [];
    const device = `net/ipv4/conf/${this.tunName}/rp_filter`;
    const set = await this.sysctl(device, '0');
    if (set instanceof Error) problems.push(`cannot set ${device} to 0: ${set.message}`);
    const all = await this.sysctl('net/ipv4/conf/all/rp_filter');
    if (all === '1') {
      problems.push(
        `net.ipv4.conf.all.rp_filter is 1 (strict): the effective value on ${this.tunName} is max(all, device), so decrypted packets arriving through it could be dropped by the reverse path filter; set net.ipv4.conf.all.rp_filter to 0 or 2`,
      );
    }
    return problems;
  }
}
