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
 *
 * The same class keeps the *backstop* (option `backstop`; docs/daemon.md,
 * "Fail closed"): for every `private` policy the same rules at the next
 * preference (221) into a table of `prohibit` routes (221),
 *
 *   ip -4 rule add pref 221 to 10.1.0.0/24 lookup 221
 *   ip -4 route replace prohibit 10.1.0.0/24 table 221
 *
 * which outlive the process. While the TUN device exists, table 220 answers
 * first; when it is gone (the daemon was killed, crashed or is restarting)
 * the lookup falls through to the prohibit routes instead of the main table,
 * so a private flow is refused, never sent in the clear. A new daemon adopts
 * the backstop it finds (start) and removes what its configuration no longer
 * covers once its own policies are in (dropLeftovers); only a clean stop
 * removes the rest.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import type { TrafficSelector } from '../esp/api.js';
import { type IpFamily, canonicalIp, ipFamily, rangeToPrefixes } from '../util/ip.js';
import { errorMessage } from '../util/format.js';

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
  /** `prohibit` routes (the backstop) instead of routes into the device. */
  backstop?: boolean;
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

/** The `ip rule add` arguments of one rule, in the one order used both to add rules and to recognise them. */
function ruleFor(
  family: IpFamily,
  pref: string,
  to: string,
  protocol: number,
  dport: string | undefined,
  sport: string | undefined,
  table: string,
): RoutingRule {
  const add = [familyFlag(family), 'rule', 'add', 'pref', pref, 'to', to];
  // by number: names need /etc/protocols, which minimal images (containers) lack
  if (protocol !== 0) add.push('ipproto', String(protocol));
  if (dport !== undefined) add.push('dport', dport);
  if (sport !== undefined) add.push('sport', sport);
  add.push('lookup', table);
  const rule: RoutingRule = { family, to, protocol, add };
  if (dport !== undefined) rule.dport = dport;
  if (sport !== undefined) rule.sport = sport;
  return rule;
}

/** A table route: into the device (with the source address), or a `prohibit` route of the backstop. */
function routeFor(family: IpFamily, prefix: string, place: RoutingPlace, table: string, source?: string): TableRoute {
  if (place.backstop) {
    const args = (verb: string) => [familyFlag(family), 'route', verb, 'prohibit', prefix, 'table', table];
    return { family, prefix, replace: args('replace'), del: args('del') };
  }
  const src = source !== undefined && ipFamily(source) === family ? ['src', source] : [];
  return {
    family,
    prefix,
    replace: [familyFlag(family), 'route', 'replace', prefix, 'dev', place.tunName, ...src, 'table', table],
    del: [familyFlag(family), 'route', 'del', prefix, 'dev', place.tunName, 'table', table],
  };
}

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
      const route = routeFor(family, prefix, place, table, source);
      routes.set(route.del.join(' '), route);
    }
    for (const local of policy.local) {
      if (ipFamily(local.startAddress) !== family) continue;
      if (local.protocol !== 0 && remote.protocol !== 0 && local.protocol !== remote.protocol) continue;
      const protocol = remote.protocol || local.protocol;
      const dport = portMatch(protocol, remote);
      const sport = portMatch(protocol, local);
      for (const to of prefixes) {
        const rule = ruleFor(family, pref, to, protocol, dport, sport, table);
        rules.set(rule.add.join(' '), rule);
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
  /**
   * The backstop instead of the TUN routes: `prohibit` routes, no mark rules
   * and no rp_filter; start adopts what a previous daemon left instead of
   * removing it.
   */
  backstop?: boolean;
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
  private readonly backstop: boolean;
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
    this.backstop = options.backstop ?? false;
  }

  /**
   * TUN routes: remove a crashed daemon's rules and routes, add the mark
   * rules, turn off rp_filter on the device. Backstop: adopt the rules and
   * routes a previous daemon left (they keep blocking until this daemon's
   * policies have claimed theirs; see dropLeftovers). Returns problems and warnings.
   */
  start(): Promise<string[]> {
    return this.serialized(async () => {
      const problems: string[] = [];
      this.rules.clear();
      this.routes.clear();
      this.policies.clear();
      this.markRules = [];
      if (this.backstop) {
        for (const family of [4, 6] as const) problems.push(...(await this.adoptLeftovers(family)));
        return problems;
      }
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
      const { rules, routes } = routingRulesFor(policy, { tunName: this.tunName, table: this.table, rulePref: this.rulePref, backstop: this.backstop });
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

  /** Rules and routes adopted at start that no policy has claimed since. */
  get leftovers(): { rules: number; routes: number } {
    const unclaimed = (m: Map<string, Counted<unknown>>): number => [...m.values()].filter((c) => c.refs === 0).length;
    return { rules: unclaimed(this.rules), routes: unclaimed(this.routes) };
  }

  /** Remove the adopted rules and routes no policy claimed (the configuration no longer has their policy). Returns problems. */
  dropLeftovers(): Promise<string[]> {
    return this.serialized(async () => {
      const problems: string[] = [];
      const rules = [...this.rules].filter(([, c]) => c.refs === 0).map(([key]) => key);
      const routes = [...this.routes].filter(([, c]) => c.refs === 0).map(([key]) => key);
      await this.release({ rules, routes }, problems, 0);
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

  /** Resolves once every route and rule change queued so far has been made (or has failed and been logged). */
  settled(): Promise<void> {
    return this.queue.then(() => undefined);
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

  /** Drop a policy's references (`drop` each): rules before routes, removing those no one holds any more. */
  private async release(held: PolicyRefs, problems: string[], drop = 1): Promise<void> {
    for (const key of held.rules) {
      const counted = this.rules.get(key);
      if (counted && (counted.refs -= drop) <= 0) await this.deleteRule(key, problems);
    }
    for (const key of held.routes) {
      const counted = this.routes.get(key);
      if (!counted || (counted.refs -= drop) > 0) continue;
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
    const entries = await this.listJson([familyFlag(family), '-j', 'rule', 'show'], problems);
    const stale = entries.filter((e) => e.priority === this.rulePref && e.table === String(this.table)).length;
    const del = [familyFlag(family), 'rule', 'del', 'pref', String(this.rulePref), 'lookup', String(this.table)];
    for (let i = 0; i < stale; i++) if (!(await this.run(del, problems))) break;
    return problems;
  }

  /** The entries `ip -j … show` lists; none (and a problem noted) when it fails. A table that was never used does not exist: no entries. */
  private async listJson(args: string[], problems: string[]): Promise<Record<string, unknown>[]> {
    const r = await this.ip(args);
    if (r.code !== 0 && /does not exist/.test(r.stderr)) return [];
    try {
      if (r.code !== 0) throw new Error(r.stderr || `exit ${r.code}`);
      return JSON.parse(r.stdout || '[]') as Record<string, unknown>[];
    } catch (err) {
      problems.push(`ip ${args.join(' ')}: ${errorMessage(err)}`);
      return [];
    }
  }

  /**
   * Take over the rules at our preference that look up our table, in the
   * kernel's order (deleteRule relies on it), and the prohibit routes of the
   * table, with no reference yet. `ip -N` prints protocols as numbers.
   */
  private async adoptLeftovers(family: IpFamily): Promise<string[]> {
    const problems: string[] = [];
    const table = String(this.table);
    for (const e of await this.listJson([familyFlag(family), '-N', '-j', 'rule', 'show'], problems)) {
      if (e.priority !== this.rulePref || e.table !== table) continue;
      const rule = leftoverRule(family, e, String(this.rulePref), table);
      if (rule) this.rules.set(rule.add.join(' '), { item: rule, refs: 0 });
      else problems.push(`a rule at preference ${this.rulePref} to table ${table} cannot be read back (${JSON.stringify(e)}); left alone`);
    }
    for (const e of await this.listJson([familyFlag(family), '-N', '-j', 'route', 'show', 'table', table], problems)) {
      const prefix = typeof e.dst === 'string' ? hostPrefix(family, e.dst) : undefined;
      if (e.type !== String(RTN_PROHIBIT) || prefix === undefined) continue;
      const route = routeFor(family, prefix, { tunName: this.tunName, backstop: true }, table);
      this.routes.set(route.del.join(' '), { item: route, refs: 0 });
    }
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

/** rtnetlink's route type of `prohibit` routes, as `ip -N` prints it. */
const RTN_PROHIBIT = 8;

/** `10.1.0.0/24`, `10.1.0.7` (a host), `default` as `ip -j route` prints them, to canonical prefix text. */
function hostPrefix(family: IpFamily, dst: string, length?: number): string | undefined {
  if (dst === 'default') return family === 4 ? '0.0.0.0/0' : '::/0';
  const [address, len] = dst.split('/');
  const canonical = canonicalIp(address ?? '');
  if (canonical === undefined || ipFamily(canonical) !== family) return undefined;
  return `${canonical}/${len ?? length ?? (family === 4 ? 32 : 128)}`;
}

/** One entry of `ip -N -j rule show` as the rule routingRulesFor would have made; undefined if it names more than tunsec's rules do. */
function leftoverRule(family: IpFamily, e: Record<string, unknown>, pref: string, table: string): RoutingRule | undefined {
  const known = new Set([
    'priority',
    'src',
    'dst',
    'dstlen',
    'ipproto',
    'dport',
    'dport_start',
    'dport_end',
    'sport',
    'sport_start',
    'sport_end',
    'table',
    'flags',
  ]);
  if (Object.keys(e).some((k) => !known.has(k)) || e.src !== 'all') return undefined;
  const to = typeof e.dst === 'string' ? hostPrefix(family, e.dst, typeof e.dstlen === 'number' ? e.dstlen : undefined) : family === 4 ? '0.0.0.0/0' : '::/0';
  if (to === undefined) return undefined;
  const proto = /^(?:ipproto-)?(\d+)$/.exec(String(e.ipproto ?? '0'));
  if (!proto) return undefined;
  const ports = (name: string): string | undefined =>
    typeof e[name] === 'number' ? String(e[name]) : typeof e[`${name}_start`] === 'number' ? `${e[`${name}_start`]}-${e[`${name}_end`]}` : undefined;
  return ruleFor(family, pref, to, Number(proto[1]), ports('dport'), ports('sport'), table);
}
