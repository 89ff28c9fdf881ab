/**
 * Configuration reload (SIGHUP, `tunsec reload`), as strongSwan's
 * `swanctl --load-all`: what changes between the running configuration and
 * the one just loaded (planReload, pure), and the Reloader that applies it
 * to the running daemon through a narrow host.
 *
 * - A connection whose configuration (every key of its section, file paths
 *   included) is the same is **kept**: its IKE and CHILD SAs stay up. Its
 *   credentials are reloaded all the same (certificates, keys, CAs, CRLs):
 *   when they differ it is also listed as **renewed**, and new IKE SAs (the
 *   next authentication) use them; SAs already up keep theirs.
 * - A connection no longer configured is **removed**; one whose section
 *   changed is **replaced** (its SAs deleted, then loaded as new); a new one
 *   is **added**.
 * - `daemon:` settings: `log` and `global` are applied; the others need a
 *   restart and are reported, not applied.
 */
import { describeProblem, loadConfig, type DaemonConfig, type TunsecConfig } from '../config/index.js';
import { describeConnection, resolveCredentials, type ResolvedConnection } from './credentials.js';
import type { UserspaceDatapath } from './datapath.js';
import { deleteSas } from './global-switch.js';
import { ikePortOf } from './ike-sockets.js';
import type { DaemonView, Initiation } from './initiation.js';
import { bindAddresses } from './net.js';
import { summarizeReload } from '../control/reload-summary.js';
import type { ReloadResult } from '../control/protocol.js';

/** What a reload changes: the ReloadResult `tunsec reload` shows, less its verdict. */
export type ReloadPlan = Omit<ReloadResult, 'ok' | 'errors' | 'warnings'>;

/** The `daemon:` keys a running daemon applies on reload; any other change needs a restart. */
export const RUNTIME_DAEMON_SETTINGS: ReadonlySet<keyof DaemonConfig> = new Set<keyof DaemonConfig>(['log', 'global']);

export interface LoadedState {
  config: TunsecConfig;
  connections: readonly ResolvedConnection[];
}

/** Compare the running state with a freshly loaded one. */
export function planReload(current: LoadedState, next: LoadedState): ReloadPlan {
  const plan: ReloadPlan = { kept: [], renewed: [], added: [], removed: [], replaced: [], applied: [], restart: [] };
  const oldConns = current.config.connections;
  const newConns = next.config.connections;
  for (const name of Object.keys(oldConns)) if (!Object.hasOwn(newConns, name)) plan.removed.push(name);
  for (const [name, conn] of Object.entries(newConns)) {
    const old = Object.hasOwn(oldConns, name) ? oldConns[name] : undefined;
    if (old === undefined) plan.added.push(name);
    else if (stableKey(old) !== stableKey(conn)) plan.replaced.push(name);
    else {
      plan.kept.push(name);
      const a = current.connections.find((c) => c.name === name);
      const b = next.connections.find((c) => c.name === name);
      if (a && b && credentialKey(a) !== credentialKey(b)) plan.renewed.push(name);
    }
  }
  const d0 = current.config.daemon;
  const d1 = next.config.daemon;
  for (const key of new Set([...Object.keys(d0), ...Object.keys(d1)]) as Set<keyof DaemonConfig>) {
    if (stableKey(d0[key]) === stableKey(d1[key])) continue;
    if (RUNTIME_DAEMON_SETTINGS.has(key)) plan.applied.push(`daemon.${key}`);
    else plan.restart.push(`daemon.${key}: changed from ${show(d0[key])} to ${show(d1[key])}; needs a restart (the daemon keeps ${show(d0[key])})`);
  }
  return plan;
}

/** What a kept connection's next authentication uses: our certificate, its chain, our key, the trust anchors and CRLs, strictcrl. */
export function credentialKey(c: ResolvedConnection): string {
  const cfg = c.entry.config;
  const key = cfg.privateKey ? (cfg.privateKey.export({ format: 'der', type: 'pkcs8' }) as Buffer) : Buffer.alloc(0);
  return stableKey({
    auth: [cfg.localAuth ?? 'pubkey', cfg.remoteAuth ?? 'pubkey'],
    cert: cfg.certificate?.fingerprint ?? null,
    intermediates: cfg.intermediates.map((i) => i.fingerprint),
    key: key.toString('base64'),
    trust: cfg.trust.trustAnchors.map((t) => t.fingerprint),
    crls: cfg.trust.allCrls.map((c) => c.fingerprint),
    strict: cfg.strictCrl,
  });
}

/**
 * Reqids of the new connection list: a kept connection's children and shunts
 * keep theirs (the reqid ties a CHILD_SA to its policies, so SAs that stay up
 * keep working); added and replaced ones get fresh reqids above every reqid
 * in use, so an old SA being deleted never shares one with a new policy.
 * Mutates `next` (as resolveCredentials does).
 */
export function carryReqids(current: readonly ResolvedConnection[], next: readonly ResolvedConnection[], kept: readonly string[]): void {
  const reqidsOf = (c: ResolvedConnection): number[] =>
    [...c.entry.config.children.map((ch) => ch.reqid), ...c.shunts.map((s) => s.reqid)].filter((r): r is number => r !== undefined);
  let high = Math.max(0, ...current.flatMap(reqidsOf));
  const keptSet = new Set(kept);
  for (const c of next) {
    const old = keptSet.has(c.name) ? current.find((x) => x.name === c.name) : undefined;
    for (const ch of c.entry.config.children) {
      const r = old?.entry.config.children.find((x) => x.name === ch.name)?.reqid;
      ch.reqid = r ?? ++high;
    }
    for (const s of c.shunts) {
      const r = old?.shunts.find((x) => x.name === s.name)?.reqid;
      s.reqid = r ?? ++high;
    }
  }
}

/** What the Reloader sees of the daemon. */
export interface ReloadHost extends DaemonView {
  /** The NAT-T port the daemon bound (no connection may take it as its IKE port). */
  readonly nattPort: number;
  /** `running`, or the phase that refuses a reload. */
  phase(): string;
  /** Whether the daemon bound IKE sockets (it does not without connections and manual SAs in UDP). */
  hasSockets(): boolean;
  /** Make `daemon` (its `log` and `global` applied) and `connections` the running ones; new IKE SAs use them. */
  adopt(daemon: DaemonConfig, connections: ResolvedConnection[]): void;
  datapath(): Pick<UserspaceDatapath, 'installTraps' | 'removeTraps' | 'setPolicyGroupShunts'> | undefined;
  readonly initiation: Pick<Initiation, 'stopRetrying' | 'isRetrying' | 'keepInitiating'>;
}

/**
 * Reloads the running daemon: re-reads the configuration and credentials;
 * an invalid one is rejected as a whole (every problem in the result and
 * the log) and the running one stays. Unchanged connections keep their SAs,
 * removed ones lose them, changed ones are replaced, new ones are loaded.
 */
export class Reloader {
  /** The configuration file, the running configuration (its `daemon:` section as applied) and the bound IKE port. */
  private running?: { path: string; config: TunsecConfig; ikePort: number };

  constructor(private readonly host: ReloadHost) {}

  /** The daemon started with `config` from `path`, listening on `ikePort`. */
  started(path: string, config: TunsecConfig, ikePort: number): void {
    this.running = { path, config, ikePort };
  }

  /** The running configuration (its `daemon:` section as applied); undefined before the start. */
  get config(): TunsecConfig | undefined {
    return this.running?.config;
  }

  /**
   * Never rejects: an internal error is logged and in the result.
   * `credentialsOnly`: the running configuration stays as it is (the file is
   * not read again); only the certificates, keys, CAs and CRLs it names are
   * (./credential-watch.ts).
   */
  reload(options: { credentialsOnly?: boolean } = {}): Promise<ReloadResult> {
    return this.reloadNow(options.credentialsOnly === true).catch((err: Error) => {
      this.host.log.log('daemon', 'error', `reload failed: ${err.stack ?? err.message}`);
      return emptyResult(false, [`internal error: ${err.message}`]);
    });
  }

  private async reloadNow(credentialsOnly: boolean): Promise<ReloadResult> {
    const log = this.host.log;
    const manager = this.host.manager();
    const phase = this.host.phase();
    if (phase !== 'running' || this.running === undefined || !manager) {
      log.log('daemon', 'warn', `reload refused: the daemon is ${phase}`);
      return emptyResult(false, [`the daemon is ${phase}`]);
    }
    const { path, config: running, ikePort: boundIkePort } = this.running;
    log.log('cfg', 'info', credentialsOnly ? `reloading the credentials named by ${path} (the configuration as running)` : `reloading configuration ${path}`);
    const reject = (errors: string[], warnings: string[]): ReloadResult => {
      for (const w of warnings) log.log('cfg', 'warn', w);
      for (const e of errors) log.log('cfg', 'error', e);
      const r = emptyResult(false, errors, warnings);
      log.event('daemon', 'config_reload_failed', `${summarizeReload(r)}`, { errors, warnings });
      return r;
    };
    const loaded = credentialsOnly ? { ok: true as const, config: running, warnings: [] } : loadConfig({ path });
    if (!loaded.ok) {
      const problems = loaded.error.problems;
      return reject(
        problems.filter((p) => p.severity === 'error').map((p) => describeProblem(path, p)),
        problems.filter((p) => p.severity !== 'error').map((p) => describeProblem(path, p)),
      );
    }
    const config = loaded.config;
    const warnings = loaded.warnings.map((w) => describeProblem(path, w));
    const creds = resolveCredentials(config);
    warnings.push(...creds.warnings);
    const errors = [...creds.errors];
    const port = ikePortOf(config, this.host.nattPort);
    if ('error' in port) errors.push(port.problems.length === 0 ? port.error : `${port.error}: ${port.problems.join('; ')}`);
    const ikePort = 'port' in port ? port.port : boundIkePort;
    if (errors.length > 0) return reject(errors, warnings);
    for (const w of warnings) log.log('cfg', 'warn', w);

    const current = this.host.connections();
    const plan = planReload({ config: running, connections: current }, { config, connections: creds.connections });
    if (creds.connections.length > 0 && ikePort !== boundIkePort)
      plan.restart.push(`IKE port (local_port) changed from ${boundIkePort} to ${ikePort}; needs a restart (the daemon keeps listening on ${boundIkePort})`);
    const addrs = (c: TunsecConfig): string => [...bindAddresses(Object.values(c.connections).flatMap((x) => x.local_addrs)).addresses].sort().join(' ');
    if (!this.host.hasSockets() && creds.connections.length > 0) {
      plan.restart.push('the daemon started without connections and has no IKE sockets; the new connections need a restart to be reachable');
    } else if (this.host.hasSockets() && addrs(config) !== addrs(running)) {
      plan.restart.push(
        `IKE socket addresses changed from ${addrs(running) || 'none'} to ${addrs(config) || 'none'}; needs a restart (the daemon keeps its sockets)`,
      );
    }
    if (JSON.stringify(config.manual) !== JSON.stringify(running.manual))
      plan.restart.push('manual: changed; manual SAs from the file are installed at start (restart, or use tunsec sa add/del)');
    carryReqids(current, creds.connections, plan.kept);

    const gone = new Set([...plan.removed, ...plan.replaced]);
    const fresh = new Set([...plan.added, ...plan.replaced]);
    const goneConns = current.filter((c) => gone.has(c.name));
    const freshConns = creds.connections.filter((c) => fresh.has(c.name));
    const freshConfigs = new Set(freshConns.map((c) => c.entry.config));
    for (const name of gone) this.host.initiation.stopRetrying(name);
    // The daemon section: log and global apply now; the rest stays as started (reported in plan.restart).
    const daemon = { ...running.daemon, log: config.daemon.log, global: config.daemon.global };
    log.setLevels(config.daemon.log);
    this.running = { path, config: { ...config, daemon }, ikePort: boundIkePort };
    // New IKE SAs use the new entries (renewed credentials included); SAs up keep their config.
    this.host.adopt(daemon, creds.connections);
    for (const c of freshConns) log.log('cfg', 'info', describeConnection(c));
    for (const name of plan.renewed) log.log('cfg', 'info', `connection ${name}: credentials renewed; used from the next authentication, the SAs up stay`);
    // Forget the old traps, install the new ones before the old SAs go: a replaced private child is never in the clear.
    const datapath = this.host.datapath();
    datapath?.removeTraps(goneConns, creds.connections);
    await datapath?.installTraps(freshConns);
    datapath?.setPolicyGroupShunts(config.policy_groups);
    const reasons = new Map<string, string>([
      ...plan.removed.map((n): [string, string] => [n, 'connection removed (reload)']),
      ...plan.replaced.map((n): [string, string] => [n, 'connection changed (reload)']),
    ]);
    const doomed = manager.sas.filter((sa) => sa.state !== 'destroyed' && gone.has(sa.ctx.config.name) && !freshConfigs.has(sa.ctx.config));
    await Promise.all(
      [...reasons].map(([name, reason]) => {
        const sas = doomed.filter((sa) => sa.ctx.config.name === name);
        if (sas.length > 0) log.log('daemon', 'info', `connection ${name}: deleting ${sas.length} IKE SA(s): ${reason}`, { conn: name });
        return deleteSas(sas, reason, 5000);
      }),
    );
    datapath?.removeTraps(goneConns, creds.connections);
    if (this.host.mayNegotiate()) {
      for (const c of freshConns) if (c.startChildren.length > 0 && !this.host.initiation.isRetrying(c.name)) void this.host.initiation.keepInitiating(c);
    }

    const result: ReloadResult = { ok: true, errors: [], warnings, ...plan };
    for (const r of plan.restart) log.log('cfg', 'warn', r);
    log.event('daemon', 'config_reloaded', summarizeReload(result), {
      kept: plan.kept,
      renewed: plan.renewed,
      added: plan.added,
      removed: plan.removed,
      replaced: plan.replaced,
      applied: plan.applied,
      restart: plan.restart,
    });
    return result;
  }
}

export function emptyResult(ok: boolean, errors: string[] = [], warnings: string[] = []): ReloadResult {
  return { ok, errors, warnings, kept: [], renewed: [], added: [], removed: [], replaced: [], applied: [], restart: [] };
}

/** A deterministic text for configuration values: sorted keys; Buffers, bigints, Dates, Maps and Sets included. */
export function stableKey(value: unknown): string {
  return JSON.stringify(normalize(value));
}

function normalize(v: unknown): unknown {
  if (typeof v === 'bigint') return `${v}n`;
  if (v === undefined || v === null || typeof v !== 'object') return v;
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return `hex:${Buffer.from(v).toString('hex')}`;
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return v.map(normalize);
  if (v instanceof Map) return [...v.entries()].map(([k, x]) => [normalize(k), normalize(x)]);
  if (v instanceof Set) return [...v].map(normalize);
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v).sort()) out[k] = normalize((v as Record<string, unknown>)[k]);
  return out;
}

function show(v: unknown): string {
  return v === undefined ? 'unset' : typeof v === 'object' ? stableKey(v) : String(v);
}
