/**
 * Configuration reload (SIGHUP, `tunsec reload`), as strongSwan's
 * `swanctl --load-all`: what changes between the running configuration and
 * the one just loaded. Pure: the daemon (./daemon.ts) applies the plan.
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
import type { DaemonConfig, TunsecConfig } from '../config/index.js';
import type { ResolvedConnection } from './credentials.js';
import type { ReloadResult } from '../control/protocol.js';

export interface ReloadPlan {
  kept: string[];
  /** Kept connections whose certificate, intermediates, key or trust changed: used from the next authentication. */
  renewed: string[];
  added: string[];
  removed: string[];
  replaced: string[];
  /** `daemon:` settings applied at once (`log`, `global`). */
  applied: string[];
  /** Changes that take effect only after a restart, one message each. */
  restart: string[];
}

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
  const key = cfg.privateKey.export({ format: 'der', type: 'pkcs8' }) as Buffer;
  return stableKey({
    cert: cfg.certificate.fingerprint,
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
