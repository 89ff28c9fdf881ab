/**
 * Loading the YAML configuration: YAML syntax (with line and column), then
 * the schema section by section, then defaults, derived values and the checks
 * across keys. Every problem is collected; the configuration is returned only
 * when there is no error. Warnings come back either way.
 */
import { readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { type Document, LineCounter, isMap, isPair, isScalar, isSeq, parseDocument } from 'yaml';
import { z } from 'zod';
import { checkChildLifetimes, checkIkeLifetimes, resolveChildLifetimes, resolveIkeLifetimes } from './lifetimes.js';
import type { LifetimeProblem } from './lifetimes.js';
import { type ConfigProblem, ConfigError, type PathSegment, closest, formatPath, zodMessage, describeValue } from './problems.js';
import {
  LOG_SUBSYSTEMS,
  SECRET_TYPES,
  UNSUPPORTED_SWANCTL_KEYS,
  authoritiesSchema,
  childSchema,
  connectionSchema,
  daemonSchema,
  localAuthSchema,
  policyGroupsSchema,
  remoteAuthSchema,
  secretSchema,
  topSchema,
} from './schema.js';
import { defaultCryptoWorkers } from '../crypto/pool/defaults.js';
import type { ChildConfig, ConnectionConfig, DaemonConfig, Identity, SecretConfig, TunsecConfig } from './types.js';
import { type PolicyGroups, loadPolicyGroups, prefixesOf } from './policy-groups.js';
import { MANUAL_NAME, duplicateSpis, manualKeysPermissionWarning, manualSaSchema, manualSchema, resolveManualSa, type ManualSaConfig } from './manual.js';

export type ConfigSource =
  | { path: string }
  /** YAML text; `path` names it in messages, relative paths in it resolve against `baseDir` (default: the current directory). */
  | { text: string; path?: string; baseDir?: string };

export type LoadResult = { ok: true; config: TunsecConfig; warnings: ConfigProblem[] } | { ok: false; error: ConfigError; warnings: ConfigProblem[] };

export function loadConfig(source: ConfigSource): LoadResult {
  if ('text' in source) {
    return parseConfig(source.text, source.path ?? '<config>', source.baseDir ?? process.cwd());
  }
  let text: string;
  try {
    text = readFileSync(source.path, 'utf8');
  } catch (e) {
    const problem: ConfigProblem = { path: '', severity: 'error', message: `cannot read ${source.path}: ${(e as Error).message}` };
    return { ok: false, error: new ConfigError([problem], source.path), warnings: [] };
  }
  const r = parseConfig(text, source.path, dirname(resolve(source.path)));
  // Manual SA keys are secrets: say so when others may read the file (as for private key files).
  if (r.ok && Object.keys(r.config.manual.sas).length > 0) {
    let warning: string | undefined;
    try {
      warning = manualKeysPermissionWarning(source.path, statSync(source.path).mode);
    } catch {
      /* gone meanwhile */
    }
    if (warning !== undefined) r.warnings.push({ path: 'manual', message: warning, severity: 'warning' });
  }
  return r;
}

/** `loadConfig`, throwing the ConfigError. */
export function loadConfigOrThrow(source: ConfigSource): TunsecConfig {
  const r = loadConfig(source);
  if (!r.ok) throw r.error;
  return r.config;
}

/** Connection, child and secret names: they appear in logs and on the command line. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

type SchemaLike = z.ZodType;

class Collector {
  readonly problems: ConfigProblem[] = [];

  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  add(segments: readonly PathSegment[], message: string, severity: 'error' | 'warning' = 'error'): void {
    const offset = locate(this.doc, segments);
    const pos = offset === undefined ? undefined : this.lines.linePos(offset);
    this.problems.push({
      path: formatPath(segments),
      message,
      severity,
      ...(pos === undefined ? {} : { line: pos.line, column: pos.col }),
    });
  }

  /** Parse one unit with its schema, reporting zod's issues under `base`; the output, or undefined if it had errors. */
  parse<S extends SchemaLike>(schema: S, value: unknown, base: readonly PathSegment[], misplaced?: MisplacedKeys): z.output<S> | undefined {
    const r = schema.safeParse(value, { error: zodMessage });
    if (r.success) return r.data;
    for (const issue of r.error.issues) {
      const at = [...base, ...(issue.path as PathSegment[])];
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys) this.add([...at, key], unknownKeyMessage(key, knownKeys(schema, issue.path as PathSegment[]), misplaced));
      } else {
        this.add(at, issue.message);
      }
    }
    return undefined;
  }

  lifetimes(base: readonly PathSegment[], problems: readonly LifetimeProblem[]): void {
    for (const p of problems) this.add([...base, p.key], p.message, p.severity);
  }

  /** In file order (by line; problems found on one line keep the order they were found in). */
  sorted(): ConfigProblem[] {
    return this.problems
      .map((p, i) => ({ p, i }))
      .sort((a, b) => (a.p.line ?? Infinity) - (b.p.line ?? Infinity) || a.i - b.i)
      .map(({ p }) => p);
  }

  get hasErrors(): boolean {
    return this.problems.some((p) => p.severity === 'error');
  }
}

/** Keys that belong to an enclosing section, for a better message when written one level too deep. */
interface MisplacedKeys {
  keys: readonly string[];
  where: string;
}

function unknownKeyMessage(key: string, known: readonly string[], misplaced?: MisplacedKeys): string {
  if (misplaced?.keys.includes(key)) return `unknown key here; '${key}' is a setting of ${misplaced.where}`;
  if (UNSUPPORTED_SWANCTL_KEYS.has(key)) return `unknown key: tunsec does not support the swanctl.conf setting '${key}'`;
  const guess = closest(key, known);
  return guess === undefined ? 'unknown key' : `unknown key (did you mean '${guess}'?)`;
}

/** The keys of the object schema found at `path` inside `schema`. */
function knownKeys(schema: SchemaLike, path: readonly PathSegment[]): string[] {
  let s: unknown = schema;
  for (const segment of [...path, undefined]) {
    for (;;) {
      if (s instanceof z.ZodOptional || s instanceof z.ZodDefault) s = s.unwrap();
      else if (s instanceof z.ZodPipe) s = s.in;
      else break;
    }
    if (segment === undefined) break;
    if (s instanceof z.ZodObject) s = (s.shape as Record<string, unknown>)[String(segment)];
    else if (s instanceof z.ZodRecord) s = s.valueType;
    else return [];
  }
  return s instanceof z.ZodObject ? Object.keys(s.shape as object) : [];
}

/** Offset in the YAML text of the deepest node on `segments` (the key itself for the last one). */
function locate(doc: Document, segments: readonly PathSegment[]): number | undefined {
  let node: unknown = doc.contents;
  let offset: number | undefined = isMap(node) || isSeq(node) ? node.range?.[0] : undefined;
  for (const segment of segments) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(segment));
      if (pair === undefined) return offset;
      const key = pair.key as { range?: [number, number, number] | null };
      offset = key.range?.[0] ?? offset;
      node = pair.value;
    } else if (isSeq(node) && typeof segment === 'number') {
      const item = node.items[segment] as { range?: [number, number, number] | null } | undefined;
      if (item === undefined) return offset;
      offset = item.range?.[0] ?? offset;
      node = item;
    } else {
      return offset;
    }
  }
  return offset;
}

/** A group connection: remote_addrs names prefixes, each host in them a peer (a template for per-peer instances). */
export function isGroup(remoteAddrs: readonly string[]): boolean {
  return remoteAddrs.some((a) => a.includes('/'));
}

/**
 * What `auth: null` (RFC 7619) excludes on one side: certificates (nothing is
 * signed or verified with them) and, for the peer, an identity to insist on,
 * since a NULL-authenticated peer proves none. `%null` is only for a side with
 * auth null (RFC 7619 §3: ID_NULL goes with NULL Authentication only).
 */
function nullAuthProblems(
  out: Collector,
  at: readonly PathSegment[],
  side: { auth: 'pubkey' | 'null'; id?: Identity | undefined; certs: string[]; cacerts?: string[] },
): void {
  const local = at[at.length - 1] === 'local';
  if (side.auth !== 'null') {
    if (side.id?.type === 'ID_NULL')
      out.add(
        [...at, 'id'],
        `'%null' (ID_NULL) goes with NULL Authentication only (RFC 7619 §3); set ${local ? 'local' : 'remote'}.auth: null, or give an identity`,
      );
    return;
  }
  if (side.certs.length > 0)
    out.add(
      [...at, 'certs'],
      local
        ? "auth 'null' authenticates with no certificate; remove local.certs, or use auth 'pubkey'"
        : "auth 'null' verifies no certificate, so a pinned peer certificate would never be checked; remove remote.certs, or use auth 'pubkey'",
    );
  if ((side.cacerts ?? []).length > 0) out.add([...at, 'cacerts'], "auth 'null' verifies no certificate; remove remote.cacerts, or use auth 'pubkey'");
  const id = side.id;
  if (!local && id !== undefined && (id.pattern !== undefined || (id.type !== 'ID_ANY' && id.type !== 'ID_NULL')))
    out.add(
      [...at, 'id'],
      `'${id.text}' would be an identity the peer never proves: with auth 'null' the peer authenticates nothing; leave remote.id out (any identity) or use '%null'`,
    );
  if (local && id?.type === 'ID_ANY' && id.pattern === undefined)
    out.add([...at, 'id'], `'${id.text}' matches any identity; it cannot be sent as ours (leave local.id out to send ID_NULL, '%null')`);
}

function isSection(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseConfig(text: string, name: string, baseDir: string): LoadResult {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, merge: true, uniqueKeys: true });
  const out = new Collector(doc, lines);
  const fail = (): LoadResult => {
    const sorted = out.sorted();
    return { ok: false, error: new ConfigError(sorted, name), warnings: sorted.filter((p) => p.severity === 'warning') };
  };

  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      const pos = e.linePos?.[0] ?? lines.linePos(e.pos[0]);
      const message = `line ${pos.line}, column ${pos.col}: ${e.message.split('\n')[0] ?? e.message}`;
      out.problems.push({ path: '', message, severity: 'error', line: pos.line, column: pos.col });
    }
    return fail();
  }
  let data: unknown;
  try {
    data = doc.toJS();
  } catch (err) {
    // Some problems surface only when the values are built: an alias whose anchor is not
    // set before it, a merge key (<<) of something that is not a map, more aliases than
    // the yaml library's resource-exhaustion limit.
    out.add([], `YAML: ${(err as Error).message}`);
    return fail();
  }
  if (data === null || data === undefined) {
    out.add([], "the configuration is empty; it needs at least a 'connections' section");
    return fail();
  }
  if (!isSection(data)) {
    out.add([], `expected key: value pairs at the top level, got ${describeValue(data)}`);
    return fail();
  }
  const top = out.parse(topSchema, data, []);
  const at = (p: string): string => resolve(baseDir, p);

  // daemon
  const daemonIn = out.parse(daemonSchema, data.daemon ?? {}, ['daemon']);
  let daemon: DaemonConfig | undefined;
  if (daemonIn !== undefined) {
    const levels = daemonIn.log ?? {};
    const fallback = levels.default ?? 1;
    const log = Object.fromEntries(LOG_SUBSYSTEMS.filter((s) => s !== 'default').map((s) => [s, levels[s] ?? fallback])) as DaemonConfig['log'];
    daemon = {
      pid_file: at(daemonIn.pid_file),
      control_socket: at(daemonIn.control_socket),
      ...(daemonIn.vici === 'off' ? {} : { vici: at(daemonIn.vici) }),
      log,
      ...(daemonIn.keylog === undefined ? {} : { keylog: at(daemonIn.keylog) }),
      ...(daemonIn.metrics === undefined ? {} : { metrics: daemonIn.metrics }),
      global: daemonIn.global,
      prefer_configured_proposals: daemonIn.prefer_configured_proposals,
      keep_alive: daemonIn.keep_alive,
      bypass_rules: daemonIn.bypass_rules,
      datapath: daemonIn.datapath,
      tun_name: daemonIn.tun_name,
      tun_mtu: daemonIn.tun_mtu,
      offload: daemonIn.offload,
      datapath_crypto: daemonIn.datapath_crypto,
      fwmark: daemonIn.fwmark,
      route_table: daemonIn.route_table,
      route_priority: daemonIn.route_priority,
      backstop_table: daemonIn.backstop_table ?? daemonIn.route_table + 1,
      backstop_priority: daemonIn.backstop_priority ?? daemonIn.route_priority + 1,
      hold_packets: daemonIn.hold_packets,
      retransmit: { timeout: daemonIn.retransmit_timeout, base: daemonIn.retransmit_base, tries: daemonIn.retransmit_tries },
      mss_clamp: daemonIn.mss_clamp,
      watch_credentials: daemonIn.watch_credentials,
      crypto_workers: daemonIn.crypto_workers ?? defaultCryptoWorkers(),
      limits: daemonIn.limits,
    };
    // The backstop must answer only when the TUN table has no route: a rule behind the TUN rules (and
    // ahead of main at 32766), into a table of its own.
    if (daemon.backstop_table === daemon.route_table)
      out.add(
        ['daemon', 'backstop_table'],
        `must differ from route_table (${daemon.route_table}): the backstop's prohibit routes would hide the routes into the TUN device`,
      );
    if (daemon.backstop_priority <= daemon.route_priority || daemon.backstop_priority >= 32766) {
      out.add(
        ['daemon', 'backstop_priority'],
        `must lie between route_priority (${daemon.route_priority}) and the main table's rule (32766), exclusive; got ${daemon.backstop_priority}`,
      );
    }
  }

  // authorities
  const authoritiesIn = out.parse(authoritiesSchema, data.authorities ?? {}, ['authorities']);
  const authorities =
    authoritiesIn === undefined ? undefined : { cacerts: authoritiesIn.cacerts.map(at), crls: authoritiesIn.crls.map(at), strictcrl: authoritiesIn.strictcrl };

  // secrets
  const secrets: Record<string, SecretConfig> = {};
  if (isSection(data.secrets)) {
    for (const [secretName, raw] of Object.entries(data.secrets)) {
      const type = SECRET_TYPES.find((t) => secretName.startsWith(t));
      if (type === undefined || !NAME.test(secretName)) {
        out.add(['secrets', secretName], `secret sections are named private<suffix>, rsa<suffix>, ecdsa<suffix> or pkcs8<suffix>, e.g. 'private-moon'`);
        continue;
      }
      const s = out.parse(secretSchema, raw, ['secrets', secretName]);
      if (s !== undefined) secrets[secretName] = { type, file: at(s.file) };
    }
  }

  // policy groups (read before the connections that take their prefixes)
  let policyGroups: PolicyGroups | undefined;
  if (data.policy_groups !== undefined) {
    const pg = out.parse(policyGroupsSchema, data.policy_groups, ['policy_groups']);
    if (pg !== undefined) {
      const r = loadPolicyGroups(at(pg.dir));
      for (const p of r.problems) out.add(['policy_groups', 'dir'], p.line > 0 ? `${p.file} line ${p.line}: ${p.message}` : `${p.file}: ${p.message}`);
      policyGroups = r.groups;
    }
  }

  // connections
  const connections: Record<string, ConnectionConfig> = {};
  const rawConnections = top?.connections ?? (isSection(data.connections) ? data.connections : {});
  const manualSas = isSection(data.manual) && isSection(data.manual.sas) && Object.keys(data.manual.sas).length > 0;
  if (top !== undefined && Object.keys(rawConnections).length === 0 && !manualSas) {
    out.add(['connections'], 'no connections are defined', 'warning');
  }
  const connectionKeys = Object.keys(connectionSchema.shape);
  for (const [connName, raw] of Object.entries(rawConnections)) {
    const base = ['connections', connName];
    if (!NAME.test(connName)) {
      out.add(base, `'${connName}' is not a valid connection name (letters, digits, '.', '_' and '-', starting with a letter or digit)`);
      continue;
    }
    if (!isSection(raw)) {
      out.add(base, `expected a section (key: value pairs), got ${describeValue(raw)}`);
      continue;
    }
    const parsed = out.parse(connectionSchema, raw, base);
    if (raw.remote_addrs === undefined && raw.policy_group === undefined) out.add([...base, 'remote_addrs'], 'required');
    let c: (Omit<NonNullable<typeof parsed>, 'remote_addrs'> & { remote_addrs: string[] }) | undefined;
    if (parsed !== undefined) {
      let remoteAddrs = parsed.remote_addrs;
      if (parsed.policy_group !== undefined) {
        if (remoteAddrs !== undefined) out.add([...base, 'remote_addrs'], `comes from policy_group '${parsed.policy_group}'; leave it out`);
        else if (data.policy_groups === undefined) out.add([...base, 'policy_group'], 'needs the group files: set policy_groups.dir');
        else if (policyGroups !== undefined) {
          remoteAddrs = prefixesOf(policyGroups, parsed.policy_group).map((p) => p.text);
          if (remoteAddrs.length === 0)
            out.add(
              [...base, 'policy_group'],
              `group '${parsed.policy_group}' has no prefixes in ${policyGroups.dir}: the connection covers no peer`,
              'warning',
            );
        }
      }
      // a group with no prefixes yet (empty file): a prefix that matches nothing keeps it a group
      if (remoteAddrs !== undefined || parsed.policy_group !== undefined) c = { ...parsed, remote_addrs: remoteAddrs ?? [] };
    }
    const misplaced = { keys: connectionKeys, where: `the connection (connections.${connName})` };
    const local = out.parse(localAuthSchema, raw.local ?? {}, [...base, 'local'], misplaced);
    const remote = out.parse(remoteAuthSchema, raw.remote ?? {}, [...base, 'remote'], misplaced);

    let ike: ReturnType<typeof resolveIkeLifetimes> | undefined;
    if (c !== undefined) {
      ike = resolveIkeLifetimes(c);
      out.lifetimes(base, checkIkeLifetimes(ike, c));
      if (c.dpd_timeout !== 0) {
        out.add([...base, 'dpd_timeout'], 'has no effect with IKEv2 (a dead peer is detected by retransmission timeouts, as in strongSwan)', 'warning');
      }
    }
    if (c !== undefined && isGroup(c.remote_addrs) && c.remote_addrs.some((a) => a.startsWith('%any'))) {
      out.add(
        [...base, 'remote_addrs'],
        `mixes %any with prefixes (${c.remote_addrs.join(', ')}): a group connection names its peers by prefix; use 0.0.0.0/0 or ::/0 for any peer`,
      );
    }
    if (local?.id?.pattern !== undefined) {
      out.add(
        [...base, 'local', 'id'],
        `'${local.id.text}' is a pattern for peers' identities; local.id must be one identity (leave it out to use the certificate's subject DN)`,
      );
    }
    if (local !== undefined && local.auth === 'pubkey' && local.certs.length === 0) {
      out.add([...base, 'local', 'certs'], "required with auth 'pubkey': the certificate tunsec authenticates with");
    }
    if (local !== undefined) nullAuthProblems(out, [...base, 'local'], local);
    if (remote !== undefined) nullAuthProblems(out, [...base, 'remote'], remote);
    if (
      remote !== undefined &&
      remote.auth === 'pubkey' &&
      authorities !== undefined &&
      remote.certs.length === 0 &&
      remote.cacerts.length === 0 &&
      authorities.cacerts.length === 0
    ) {
      out.add(
        [...base, 'remote', 'cacerts'],
        "required: nothing to verify the peer's certificate with (set remote.cacerts, remote.certs or authorities.cacerts)",
      );
    }

    const children: Record<string, ChildConfig> = {};
    const rawChildren = raw.children ?? {};
    if (!isSection(rawChildren)) {
      out.add([...base, 'children'], `expected a section of children (name: settings), got ${describeValue(rawChildren)}`);
    } else {
      if (Object.keys(rawChildren).length === 0) {
        out.add([...base, 'children'], 'no children: the IKE SA will protect no traffic', 'warning');
      }
      for (const [childName, rawChild] of Object.entries(rawChildren)) {
        const childBase = [...base, 'children', childName];
        if (!NAME.test(childName)) {
          out.add(childBase, `'${childName}' is not a valid child name (letters, digits, '.', '_' and '-', starting with a letter or digit)`);
          continue;
        }
        const ch = out.parse(childSchema, rawChild ?? {}, childBase);
        if (ch === undefined) continue;
        // A policy group decides how its traffic is handled, as Libreswan's OE connections do.
        if (c?.policy_group !== undefined) {
          ch.policy = c.policy_group === 'private' ? 'private' : 'private-or-clear';
          ch.start_action = c.policy_group === 'clear-or-private' ? 'none' : 'trap';
        }
        const lifetimes = resolveChildLifetimes(ch);
        out.lifetimes(childBase, checkChildLifetimes(lifetimes, ch));
        if (c !== undefined && isGroup(c.remote_addrs) && (ch.start_action === 'start' || ch.start_action === 'trap|start')) {
          out.add(
            [...childBase, 'start_action'],
            `'${ch.start_action}' cannot start a group connection (remote_addrs ${c.remote_addrs.join(', ')}): its instances are negotiated per peer on demand; use 'trap' (or 'none' to only respond)`,
          );
        }
        if (c !== undefined && c.policy_group === undefined && ch.start_action !== 'none' && c.remote_addrs.every((a) => a.startsWith('%any'))) {
          out.add(
            [...childBase, 'start_action'],
            `'${ch.start_action}' initiates the connection, but remote_addrs is ${c.remote_addrs.join(', ')}: there is no peer address to initiate to`,
          );
        }
        children[childName] = {
          name: childName,
          local_ts: ch.local_ts,
          remote_ts: ch.remote_ts,
          esp_proposals: ch.esp_proposals,
          mode: ch.mode,
          start_action: ch.start_action,
          dpd_action: ch.dpd_action,
          close_action: ch.close_action,
          replay_window: ch.replay_window,
          policy: ch.policy,
          inactivity: ch.inactivity,
          ...lifetimes,
        };
      }
    }

    if (c === undefined || local === undefined || remote === undefined || ike === undefined) continue;
    connections[connName] = {
      name: connName,
      version: c.version,
      local_addrs: c.local_addrs,
      remote_addrs: c.remote_addrs,
      ...(c.policy_group === undefined ? {} : { policy_group: c.policy_group }),
      local_port: c.local_port,
      remote_port: c.remote_port,
      proposals: c.proposals,
      local: { auth: local.auth, ...(local.id === undefined ? {} : { id: local.id }), certs: local.certs.map(at) },
      remote: { auth: remote.auth, id: remote.id, certs: remote.certs.map(at), cacerts: remote.cacerts.map(at) },
      send_cert: c.send_cert,
      send_certreq: c.send_certreq,
      ...ike,
      dpd_delay: c.dpd_delay,
      dpd_timeout: c.dpd_timeout,
      keyingtries: c.keyingtries,
      encap: c.encap,
      fragmentation: c.fragmentation,
      mobike: c.mobike,
      unique: c.unique,
      children,
    };
  }

  // manual (static SAs and policies, ./manual.ts)
  const manual = { sas: {} as Record<string, ManualSaConfig> };
  const manualIn = out.parse(manualSchema, data.manual ?? {}, ['manual']);
  const rawSas = manualIn?.sas ?? (isSection(data.manual) && isSection(data.manual.sas) ? data.manual.sas : {});
  for (const [saName, raw] of Object.entries(rawSas)) {
    const saBase = ['manual', 'sas', saName];
    if (!MANUAL_NAME.test(saName)) {
      out.add(saBase, `'${saName}' is not a valid SA name (letters, digits, '.', '_' and '-', starting with a letter or digit)`);
      continue;
    }
    if (!isSection(raw)) {
      out.add(saBase, `expected a section (key: value pairs), got ${describeValue(raw)}`);
      continue;
    }
    const parsed = out.parse(manualSaSchema, raw, saBase);
    if (parsed === undefined) continue;
    const resolved = resolveManualSa(saName, parsed);
    for (const p of resolved.problems) out.add(p.key === '' ? saBase : [...saBase, p.key], p.message);
    if (resolved.sa) manual.sas[saName] = resolved.sa;
  }
  for (const d of duplicateSpis(Object.values(manual.sas))) out.add(['manual', 'sas', d.name, d.key], `the same ${d.key} as manual SA '${d.other}'`);
  if (daemon !== undefined && daemon.datapath === 'none' && Object.keys(manual.sas).length > 0) {
    out.add(['manual'], 'manual SAs need the userspace datapath (daemon.datapath: userspace)');
  }

  if (out.hasErrors || top === undefined || daemon === undefined || authorities === undefined) return fail();
  const warnings = out.sorted().filter((p) => p.severity === 'warning');
  return { ok: true, config: { daemon, authorities, secrets, connections, manual, ...(policyGroups ? { policy_groups: policyGroups } : {}) }, warnings };
}
