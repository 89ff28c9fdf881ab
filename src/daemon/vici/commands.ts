/**
 * The VICI commands tunsec answers — the subset swanctl uses to look at and
 * steer SAs: version, stats, list-sas, list-conns, list-certs, initiate,
 * terminate, rekey (vici README, "Client-initiated commands"). Any other
 * command is answered CMD_UNKNOWN by the server (swanctl then says "No such
 * file or directory"): tunsec's configuration comes from its YAML file, so
 * load-conn, load-cert, load-key and their kind are not offered.
 *
 * Reading goes through the control socket's views (../control/views.ts) and
 * acting through its commands (../control/commands.ts: `up`, `down`), so
 * swanctl and `tunsec` see and do the same.
 */
import { machine, release, type } from 'node:os';
import { messageString, type ViciMessage } from '../../control/vici/message.js';
import type { IkeSa } from '../../ike/sa/ike-sa.js';
import type { ChildSaRecord } from '../../ike/sa/context.js';
import type { Certificate } from '../../pki/index.js';
import type { DaemonLogger } from '../logger.js';
import { ControlError } from '../control/server.js';
import type { ControlHandlers, DaemonControl } from '../control/commands.js';
import { listConns, listSas } from '../control/views.js';
import { deleteSas } from '../global-switch.js';
import { logEvent, type ViciEventSource } from './events.js';
import { childSasSection, ikeSaKeys, listCertEvent, listConnEvent, listSaEvent, type ViciIds } from './messages.js';
import { ViciCommandError, type ViciClient, type ViciCommand } from './server.js';

export interface ViciCommandDeps {
  daemon: DaemonControl;
  /** The control socket's handlers (`up`, `down`), reused so both sockets act alike. */
  control: Pick<ControlHandlers, 'up' | 'down'>;
  ids: ViciIds;
  events: ViciEventSource;
  log: DaemonLogger;
  /** The daemon's version (package.json). */
  version: string;
}

/** The longest an initiate/terminate waits when swanctl asks for "no timeout" (0). */
const MAX_WAIT_MS = 3600_000;

/** A `timeout` argument in milliseconds: absent or 0 waits (up to MAX_WAIT_MS), -1 does not wait. */
function timeoutOf(request: ViciMessage, dflt: number): number | 'nowait' {
  const t = messageString(request, 'timeout');
  if (t === undefined) return dflt;
  const ms = Number(t);
  if (!Number.isInteger(ms)) throw new ViciCommandError(`invalid timeout '${t.slice(0, 32)}'`);
  if (ms < 0) return 'nowait';
  return ms === 0 ? MAX_WAIT_MS : Math.min(ms, MAX_WAIT_MS);
}

function idOf(request: ViciMessage, key: string): number | undefined {
  const t = messageString(request, key);
  if (t === undefined) return undefined;
  const n = Number(t);
  if (!Number.isInteger(n) || n < 0) throw new ViciCommandError(`invalid ${key} '${t.slice(0, 32)}'`);
  return n;
}

/** A ControlError (from the control commands) as VICI's errmsg. */
function asVici(err: unknown): never {
  if (err instanceof ControlError) throw new ViciCommandError(err.message);
  throw err;
}

export function viciCommands(deps: ViciCommandDeps): Record<string, ViciCommand> {
  const { daemon, ids } = deps;
  const alive = (): IkeSa[] => (daemon.manager?.sas ?? []).filter((sa) => sa.state !== 'destroyed');
  const established = (): IkeSa[] => alive().filter((sa) => sa.state === 'established');
  const running = (): void => {
    if (daemon.phase !== 'running') throw new ViciCommandError(`the daemon is ${daemon.phase}`);
  };

  /**
   * While an initiate/terminate runs, the log lines about its connection go to
   * the client as `control-log` (what swanctl prints as `[IKE] …`).
   */
  const withControlLog = async <T>(client: ViciClient, conn: string | undefined, f: () => Promise<T>): Promise<T> => {
    if (!client.registered('control-log')) return f();
    const stop = deps.log.subscribe((r) => {
      if (!r.written) return;
      if (conn !== undefined && !r.msg.includes(conn)) return;
      client.event('control-log', logEvent(r));
    });
    try {
      return await f();
    } finally {
      stop();
    }
  };

  const version: ViciCommand = () => ({ daemon: 'tunsec', version: deps.version, sysname: type(), release: release(), machine: machine() });

  const stats: ViciCommand = () => {
    const started = daemon.startedAt ?? Date.now();
    const sas = alive();
    const m = daemon.manager;
    return {
      uptime: { running: humanDuration(Date.now() - started), since: charonTime(new Date(started)) },
      // One event loop: no worker pool or job queues as charon has; reported as such.
      workers: { total: 1, idle: 0, active: { critical: 0, high: 0, medium: 1, low: 0 } },
      queues: { critical: 0, high: 0, medium: 0, low: 0 },
      scheduled: 0,
      ikesas: { total: sas.length, 'half-open': m?.halfOpenCount ?? 0 },
      plugins: [],
    };
  };

  const listSasCommand: ViciCommand = (request, client) => {
    const ike = messageString(request, 'ike');
    const ikeId = idOf(request, 'ike-id');
    const child = messageString(request, 'child');
    const childId = idOf(request, 'child-id');
    const view = listSas(daemon, ike);
    for (const info of view.ike_sas) {
      const sa = alive().find((s) => s.ctx.spiI.toString('hex') === info.spi_i && s.ctx.spiR.toString('hex') === info.spi_r);
      if (!sa || (ikeId !== undefined && ids.ikeId(sa) !== ikeId)) continue;
      const children: Array<{ child: ChildSaRecord; info?: (typeof info.children)[number] }> = [];
      for (const c of sa.ctx.children) {
        if (child !== undefined && c.name !== child) continue;
        if (childId !== undefined && ids.childId(c) !== childId) continue;
        const ci = info.children.find((x) => x.spi_in === spiOf(c));
        children.push(ci ? { child: c, info: ci } : { child: c });
      }
      client.event('list-sa', listSaEvent(sa, { ...ikeSaKeys(sa, info, ids), 'child-sas': childSasSection(children, ids) }));
    }
    return {};
  };

  const listConnsCommand: ViciCommand = (request, client) => {
    const ike = messageString(request, 'ike');
    for (const info of listConns(daemon).connections) {
      if (ike !== undefined && info.name !== ike) continue;
      client.event(
        'list-conn',
        listConnEvent(
          info,
          daemon.connectionList.find((c) => c.name === info.name),
        ),
      );
    }
    return {};
  };

  const listCertsCommand: ViciCommand = (request, client) => {
    const wantType = (messageString(request, 'type') ?? 'ANY').toUpperCase();
    const wantFlag = (messageString(request, 'flag') ?? 'ANY').toUpperCase();
    const subject = messageString(request, 'subject');
    if (wantType !== 'ANY' && wantType !== 'X509') return {}; // tunsec holds X.509 certificates only
    const seen = new Set<string>();
    const certs: Array<{ cert: Certificate; own: boolean }> = [];
    const add = (cert: Certificate, own: boolean): void => {
      if (seen.has(cert.fingerprint)) return;
      seen.add(cert.fingerprint);
      certs.push({ cert, own });
    };
    for (const c of daemon.connectionList) if (c.entry.config.certificate) add(c.entry.config.certificate, true);
    for (const c of daemon.connectionList) {
      for (const i of c.entry.config.intermediates) add(i, false);
      for (const a of c.entry.config.trust.trustAnchors) add(a, false);
      for (const i of c.entry.config.trust.intermediateCertificates) add(i, false);
    }
    for (const { cert, own } of certs) {
      const flag = cert.basicConstraints?.cA ? 'CA' : 'NONE';
      if (wantFlag !== 'ANY' && wantFlag !== flag) continue;
      if (subject !== undefined && !matchesSubject(cert, subject)) continue;
      client.event('list-cert', listCertEvent(cert, own));
    }
    return {};
  };

  /** The connection an initiate/terminate/rekey names: by `ike`, else the one with the child `child`. */
  const connectionOf = (ike: string | undefined, child: string | undefined): string => {
    if (ike !== undefined) {
      const c = daemon.connectionList.find((x) => x.name === ike);
      if (!c) throw new ViciCommandError(`no config named '${ike}'`);
      if (child !== undefined && !c.entry.config.children.some((x) => x.name === child))
        throw new ViciCommandError(`no CHILD_SA config named '${child}' in '${ike}'`);
      return c.name;
    }
    if (child === undefined) throw new ViciCommandError('missing configuration name');
    const c = daemon.connectionList.find((x) => x.entry.config.children.some((y) => y.name === child));
    if (!c) throw new ViciCommandError(`CHILD_SA config '${child}' not found`);
    return c.name;
  };

  const initiate: ViciCommand = async (request, client) => {
    const child = messageString(request, 'child');
    const conn = connectionOf(messageString(request, 'ike'), child);
    const timeout = timeoutOf(request, MAX_WAIT_MS);
    running();
    if (timeout === 'nowait') {
      void Promise.resolve()
        .then(() => deps.control.up({ name: conn, timeout: MAX_WAIT_MS / 1000 }))
        .catch(() => {});
      return { success: 'yes' };
    }
    await withControlLog(client, conn, async () => {
      const t0 = Date.now();
      await Promise.resolve(deps.control.up({ name: conn, timeout: timeout / 1000 })).catch(asVici);
      if (child === undefined) return;
      // The IKE_SA is up; the CHILD_SA asked for may be another than the one IKE_AUTH created.
      const sa = established().find((s) => s.ctx.config.name === conn && !s.successor);
      if (!sa || sa.ctx.children.some((c) => c.name === child)) return;
      const cfg = sa.ctx.config.children.find((c) => c.name === child)!;
      const outcome = deps.events.waitForChild(sa, child, Math.max(1000, timeout - (Date.now() - t0)));
      sa.createChild(cfg, 'swanctl --initiate');
      const r = await outcome;
      if (!r.ok) throw new ViciCommandError(`CHILD_SA '${child}' failed: ${r.reason}`);
    });
    return { success: 'yes' };
  };

  const terminate: ViciCommand = async (request, client) => {
    const ike = messageString(request, 'ike');
    const ikeId = idOf(request, 'ike-id');
    const child = messageString(request, 'child');
    const childId = idOf(request, 'child-id');
    const t = timeoutOf(request, 10_000);
    const timeout = t === 'nowait' ? 0 : t;
    running();
    if (child !== undefined || childId !== undefined) return terminateChildren(client, { ike, ikeId, child, childId }, timeout);
    if (ikeId !== undefined) {
      const sas = alive().filter((sa) => ids.ikeId(sa) === ikeId && (ike === undefined || sa.ctx.config.name === ike));
      if (sas.length === 0) throw new ViciCommandError('no matching SAs to terminate found');
      await withControlLog(client, sas[0]!.ctx.config.name, () => deleteSas(sas, 'deleted by the operator (swanctl --terminate)', timeout || 1));
      return { success: 'yes', matches: sas.length, terminated: sas.length };
    }
    if (ike === undefined) throw new ViciCommandError('missing configuration name');
    connectionOf(ike, undefined);
    const r = await withControlLog(client, ike, async () =>
      Promise.resolve(deps.control.down({ name: ike, timeout: Math.max(timeout, 1) / 1000 })).catch(asVici),
    );
    if (r.deleted === 0) throw new ViciCommandError('no matching SAs to terminate found');
    return { success: 'yes', matches: r.deleted, terminated: r.deleted };
  };

  /**
   * swanctl --terminate --child / --child-id: each matching CHILD_SA is deleted
   * alone (INFORMATIONAL Delete), its IKE SA stays. A child with a trap policy is
   * refused: its policy would go with it (tunsec's trap and SA policies are one),
   * leaving its traffic to the backstop rather than to a new negotiation.
   */
  const terminateChildren = async (
    client: ViciClient,
    want: { ike: string | undefined; ikeId: number | undefined; child: string | undefined; childId: number | undefined },
    timeout: number,
  ): Promise<Record<string, string | number>> => {
    const matches: Array<{ sa: IkeSa; child: ChildSaRecord }> = [];
    for (const sa of established()) {
      if (sa.successor || (want.ike !== undefined && sa.ctx.config.name !== want.ike) || (want.ikeId !== undefined && ids.ikeId(sa) !== want.ikeId)) continue;
      for (const c of sa.ctx.children) {
        if ((want.child === undefined || c.name === want.child) && (want.childId === undefined || ids.childId(c) === want.childId))
          matches.push({ sa, child: c });
      }
    }
    if (matches.length === 0) throw new ViciCommandError('no matching SAs to terminate found');
    for (const { sa, child } of matches) {
      const conn = daemon.connectionList.find((c) => c.name === sa.ctx.config.name);
      if (conn?.trapChildren.includes(child.name)) {
        throw new ViciCommandError(
          `CHILD_SA '${child.name}' has start_action trap: deleting it alone would remove its trap policy too; terminate its IKE_SA (--ike ${sa.ctx.config.name}) instead`,
        );
      }
    }
    const wait = Math.max(timeout, 1000);
    const outcomes = await withControlLog(client, matches[0]!.sa.ctx.config.name, () =>
      Promise.all(
        matches.map(async ({ sa, child }) => {
          let timer: NodeJS.Timeout | undefined;
          const outcome = await Promise.race([
            sa.deleteChild(child, 'terminated over VICI (swanctl --terminate --child)'),
            new Promise<{ ok: false; reason: string }>(
              (resolve) => (timer = setTimeout(() => resolve({ ok: false, reason: `no answer within ${Math.round(wait / 1000)} s` }), wait)),
            ),
          ]);
          clearTimeout(timer);
          return { child, outcome };
        }),
      ),
    );
    const failed = outcomes.filter((o) => !o.outcome.ok);
    if (failed.length > 0) {
      throw new ViciCommandError(
        `terminated ${outcomes.length - failed.length} of ${outcomes.length} CHILD_SAs: ${failed.map((f) => `${f.child.name}{${f.child.reqid}}: ${(f.outcome as { reason: string }).reason}`).join('; ')}`,
      );
    }
    return { success: 'yes', matches: matches.length, terminated: matches.length };
  };

  const rekey: ViciCommand = (request) => {
    const ike = messageString(request, 'ike');
    const ikeId = idOf(request, 'ike-id');
    const child = messageString(request, 'child');
    const childId = idOf(request, 'child-id');
    if (messageString(request, 'reauth') === 'yes')
      throw new ViciCommandError('reauthentication on request is not supported by tunsec (it reauthenticates at reauth_time)');
    if (ike === undefined && ikeId === undefined && child === undefined && childId === undefined) throw new ViciCommandError('missing configuration name');
    running();
    let matches = 0;
    for (const sa of established()) {
      if (sa.successor) continue;
      if (ike !== undefined && sa.ctx.config.name !== ike) continue;
      if (ikeId !== undefined && ids.ikeId(sa) !== ikeId) continue;
      if (child === undefined && childId === undefined) {
        matches++;
        sa.rekeyIke('swanctl --rekey');
        continue;
      }
      for (const c of [...sa.ctx.children]) {
        if (child !== undefined && c.name !== child) continue;
        if (childId !== undefined && ids.childId(c) !== childId) continue;
        matches++;
        sa.rekeyChild(c, 'swanctl --rekey');
      }
    }
    if (matches === 0) throw new ViciCommandError('no matching SAs to rekey found');
    return { success: 'yes', matches };
  };

  return {
    version,
    stats,
    'list-sas': listSasCommand,
    'list-conns': listConnsCommand,
    'list-certs': listCertsCommand,
    initiate,
    terminate,
    rekey,
  };
}

/** tunsec's child SPIs as the views print them. */
function spiOf(c: ChildSaRecord): string {
  return (c.inboundSpi >>> 0).toString(16).padStart(8, '0');
}

/** `--subject`: the subject DN as text, or one of the certificate's DNS/e-mail names, case-insensitively. */
function matchesSubject(cert: Certificate, subject: string): boolean {
  const want = subject.trim().toLowerCase();
  if (cert.subject.text.toLowerCase() === want) return true;
  return (cert.subjectAltNames ?? []).some((n) => (n.type === 'dns' || n.type === 'email') && n.value.toLowerCase() === want);
}

/** charon's `%V` of an uptime: "42 seconds", "5 minutes", "3 hours", "2 days". */
export function humanDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const [n, unit] =
    s >= 86400 ? [Math.floor(s / 86400), 'day'] : s >= 3600 ? [Math.floor(s / 3600), 'hour'] : s >= 60 ? [Math.floor(s / 60), 'minute'] : [s, 'second'];
  return `${n} ${unit}${n === 1 ? '' : 's'}`;
}

/** charon's `%T`: "Dec 05 11:30:00 2026" (local time). */
export function charonTime(d: Date): string {
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${months[d.getMonth()]} ${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())} ${d.getFullYear()}`;
}
