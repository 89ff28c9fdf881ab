/**
 * `tunsec list-conns`: the loaded connections and their children, laid out
 * like `swanctl --list-conns`.
 */
import type { ConnInfo, ListConnsResult } from '../../control/protocol.js';
import { CONTROL_OPTIONS, UsageError, controlTarget, parseArgs, runControl, type Io } from './common.js';

export async function listConnsCommand(args: readonly string[], io: Io): Promise<number> {
  const parsed = parseArgs(args, CONTROL_OPTIONS);
  if (parsed.positional.length > 0) throw new UsageError(`list-conns takes no arguments, got '${parsed.positional[0]}'`);
  return runControl(io, controlTarget(parsed), 'list-conns', {}, (result) => {
    io.out(formatConns(result as ListConnsResult));
    return 0;
  });
}

export function formatConns(r: ListConnsResult): string {
  if (r.connections.length === 0) return 'no connections are configured\n';
  return r.connections.map(formatConn).join('');
}

function formatConn(c: ConnInfo): string {
  const lines = [
    `${c.name}: IKEv2, proposals ${c.proposals.join(',')}${c.encap ? ', encap' : ''}${c.fragmentation ? ', fragmentation' : ''}, keyingtries ${c.keyingtries === 0 ? 'forever' : c.keyingtries}`,
    `  local:  ${c.local_addrs.join(', ')}`,
    `  remote: ${c.remote_addrs.join(', ')} port ${c.remote_port}`,
    '  local public key authentication:',
    `    id: ${c.local_id}`,
    `    certs: ${c.certificate}`,
    '  remote public key authentication:',
    `    id: ${c.remote_id}`,
  ];
  for (const ch of c.children) {
    lines.push(
      `  ${ch.name}: ${ch.mode.toUpperCase()}, reqid ${ch.reqid ?? '-'}, start_action ${ch.start_action}, policy ${ch.policy}, replay_window ${ch.replay_window}`,
      `    esp_proposals: ${ch.esp_proposals.join(',')}`,
      `    local:  ${ch.local_ts.join(' ')}`,
      `    remote: ${ch.remote_ts.join(' ')}`,
    );
  }
  return `${lines.join('\n')}\n`;
}
