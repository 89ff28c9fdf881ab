/**
 * `tunsec status`: the daemon and, per configured connection, whether it is
 * established, connecting or not connected, since when, with whom.
 *
 *   tunsec daemon: pid 812, running since 2025-06-01T12:00:00.000Z (up 3m 12s), global switch up (off state: drop)
 *   moon-sun: established since 2025-06-01T12:00:01.000Z (3m 11s), peer 10.77.0.2, moon.ikev2.test...sun.ikev2.test, 1 IKE_SA, 1 CHILD_SA
 */
import type { ConnectionStatus, StatusResult } from '../../control/protocol.js';
import { CONTROL_OPTIONS, controlTarget, duration, parseArgs, runControl, usage, type CommandSpec } from './common.js';
import { plural } from '../../util/format.js';

export const statusCommand: CommandSpec = {
  name: 'status',
  synopsis: '[options]',
  summary: 'per connection: established / connecting / not connected, since when, with whom',
  description: `Per configured connection: established, connecting or not connected, since when,
the peer's address and both identities, and the number of IKE_SAs and CHILD_SAs;
CHILD_SAs that failed with the reason. First a line about the daemon: pid, uptime,
the global switch, and the IKE responder's denial-of-service state once it has
something to say.`,
  options: CONTROL_OPTIONS,
  control: true,
  async run(args, io) {
    const parsed = parseArgs(this, args);
    if (parsed.positionals.length > 0) throw usage(this, `status takes no arguments, got '${parsed.positionals[0]}'`);
    return runControl(io, controlTarget(this, parsed), 'status', {}, (result) => {
      io.out(formatStatus(result as StatusResult));
      return 0;
    });
  },
};

export function formatStatus(r: StatusResult): string {
  const d = r.daemon;
  const g = d.global;
  const lines = [
    `tunsec daemon: pid ${d.pid}, ${d.state}${d.started ? ` since ${d.started} (up ${duration(d.uptime)})` : ''}, global switch ${g.state}${g.state === 'up' ? '' : ` since ${g.since} (${duration(g.age)})`} (off state: ${g.mode})`,
  ];
  const ike = d.ike;
  // the denial-of-service defence, once it has something to say (docs/notes/hardening.md)
  if (ike && (ike.half_open > 0 || ike.cookies_sent > 0 || ike.limit_drops > 0 || ike.half_open_timeouts > 0)) {
    lines.push(
      `IKE responder: ${ike.cookie_mode ? 'COOKIE mode, ' : ''}${ike.half_open} half-open (COOKIEs from ${ike.limits.cookieThreshold}, max ${ike.limits.halfOpenMax}), ${plural(ike.cookies_sent, 'COOKIE')} sent, ${ike.cookies_rejected} rejected, ${ike.limit_drops} requests dropped by limits, ${ike.half_open_timeouts} half-open timed out`,
    );
  }
  if (r.connections.length === 0) lines.push('no connections are configured');
  for (const c of r.connections) lines.push(formatConnection(c));
  return `${lines.join('\n')}\n`;
}

export function formatConnection(c: ConnectionStatus): string {
  const sas = c.state === 'not connected' ? '' : `, ${plural(c.ike_sas, 'IKE_SA')}, ${plural(c.children, 'CHILD_SA')}`;
  const failed = c.failed_children.map((f) => `\n  CHILD_SA ${f.name}: failed since ${f.since}: ${f.reason}`).join('');
  return `${c.name}: ${c.state}${c.failed_children.length > 0 ? ` (${plural(c.failed_children.length, 'CHILD_SA')} failed)` : ''} since ${c.since} (${duration(c.age)}), peer ${c.peer ?? '%any'}${c.instances && c.instances.length > 0 ? ` (instances: ${c.instances.join(', ')})` : ''}, ${c.local_id}...${c.remote_id}${sas}${failed}`;
}
