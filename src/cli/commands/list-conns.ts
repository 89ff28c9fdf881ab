/**
 * `tunsec list-conns`: the loaded connections and their children, laid out
 * like `swanctl --list-conns`.
 */
import type { ConnInfo, ListConnsResult } from '../../control/protocol.js';
import { CONTROL_OPTIONS, controlTarget, parseArgs, runControl, usage, type CommandSpec } from './common.js';

export const listConnsCommand: CommandSpec = {
  name: 'list-conns',
  synopsis: '[options]',
  summary: 'the loaded connections and their children',
  description: `The connections the daemon has loaded, laid out like swanctl --list-conns:
addresses, IKE proposals, identities and certificate, and per child its mode,
ESP proposals, traffic selectors and start action.`,
  options: CONTROL_OPTIONS,
  control: true,
  async run(args, io) {
    const parsed = parseArgs(this, args);
    if (parsed.positionals.length > 0) throw usage(this, `list-conns takes no arguments, got '${parsed.positionals[0]}'`);
    return runControl(io, controlTarget(this, parsed), 'list-conns', {}, (result) => {
      io.out(formatConns(result as ListConnsResult));
      return 0;
    });
  },
};

export function formatConns(r: ListConnsResult): string {
  if (r.connections.length === 0) return 'no connections are configured\n';
  return r.connections.map(formatConn).join('');
}

/** swanctl's words for the auth class; NULL Authentication (RFC 7619) says that nothing is proven. */
function authName(auth: ConnInfo['local_auth']): string {
  return auth === 'null' ? 'NULL (RFC 7619, unauthenticated)' : 'public key';
}

function formatConn(c: ConnInfo): string {
  const lines = [
    `${c.name}: IKEv2, proposals ${c.proposals.join(',')}${c.encap ? ', encap' : ''}${c.fragmentation ? ', fragmentation' : ''}, keyingtries ${c.keyingtries === 0 ? 'forever' : c.keyingtries}`,
    `  local:  ${c.local_addrs.join(', ')}`,
    `  remote: ${c.remote_addrs.join(', ')} port ${c.remote_port}`,
    `  local ${authName(c.local_auth)} authentication:`,
    `    id: ${c.local_id}`,
    ...(c.certificate === null ? [] : [`    certs: ${c.certificate}`]),
    `  remote ${authName(c.remote_auth)} authentication:`,
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
