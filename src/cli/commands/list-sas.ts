/**
 * `tunsec list-sas [NAME]`: the IKE SAs with their CHILD SAs and traffic
 * counters, laid out like `swanctl --list-sas`, then the datapath's counters.
 *
 *   moon-sun: ESTABLISHED 3m 11s ago, IKEv2, 8f3c0a1b2c3d4e5f_i* 19aa2b3c4d5e6f70_r
 *     local  'moon.ikev2.test' @ 10.77.0.1[500]
 *     remote 'sun.ikev2.test' @ 10.77.0.2[500]
 *     aes128gcm16-prfsha384-ecp384bp
 *     host: INSTALLED, TRANSPORT, reqid 1, aes128gcm16-noesn
 *       installed 3m 11s ago
 *       in  c1a2b3d4,    840 bytes,    10 packets,     1s ago, replay window 32, 0 replay drops, 0 ICV failures
 *       out 0e0f1011,    840 bytes,    10 packets,     1s ago
 *       local  10.77.0.1/32
 *       remote 10.77.0.2/32
 */
import type { ChildSaInfo, IkeSaInfo, ListSasResult } from '../../control/protocol.js';
import { CONTROL_OPTIONS, controlTarget, duration, endpoint, parseArgs, runControl, usage, type CommandSpec } from './common.js';
import { plural } from '../../util/format.js';

export const listSasCommand: CommandSpec = {
  name: 'list-sas',
  synopsis: '[NAME] [options]',
  summary: 'IKE and CHILD SAs: SPIs, proposals, selectors, traffic counters',
  description: `The IKE_SAs (of connection NAME, or all) with their CHILD_SAs, laid out like
swanctl --list-sas: SPIs, proposals, traffic selectors, bytes and packets each
way, replay and ICV counters; then the datapath's counters.`,
  options: CONTROL_OPTIONS,
  positionals: 'connection',
  control: true,
  async run(args, io) {
    const parsed = parseArgs(this, args);
    if (parsed.positionals.length > 1) throw usage(this, 'list-sas takes at most one connection NAME');
    const name = parsed.positionals[0];
    return runControl(io, controlTarget(this, parsed), 'list-sas', name === undefined ? {} : { name }, (result) => {
      io.out(formatSas(result as ListSasResult));
      return 0;
    });
  },
};

export function formatSas(r: ListSasResult): string {
  const out: string[] = [];
  if (r.ike_sas.length === 0) out.push('no IKE SAs');
  for (const sa of r.ike_sas) out.push(...formatIkeSa(sa));
  const dp = r.datapath;
  if (dp) {
    const c = dp.counters;
    out.push(
      `datapath: TUN ${dp.tun ?? '-'}${dp.global_off ? `, global switch off (${dp.global_off})` : ''}`,
      `  protected: out ${c.outPackets} packets ${c.outBytes} bytes, in ${c.inPackets} packets ${c.inBytes} bytes`,
    );
    const notable = Object.entries(c).filter(([k, v]) => v !== 0 && !['outPackets', 'outBytes', 'inPackets', 'inBytes'].includes(k));
    out.push(`  other: ${notable.length === 0 ? 'none' : notable.map(([k, v]) => `${k} ${v}`).join(', ')}`);
    out.push(
      `  io: ${Object.entries(dp.io)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}`,
    );
    if (dp.traps.length > 0) out.push(`  trap policies: ${dp.traps.map((t) => `${t.connection}/${t.child}{${t.reqid}}`).join(', ')}`);
    const b = dp.backstop;
    if (b.lifted) out.push(`  backstop: lifted (global switch down, clear)`);
    else if (b.rules > 0)
      out.push(`  backstop: ${plural(b.rules, 'rule')}, ${plural(b.routes, 'prohibit route')} in table ${b.table} (private flows refused if tunsec dies)`);
  } else {
    out.push('datapath: none (daemon.datapath: none)');
  }
  return `${out.join('\n')}\n`;
}

function formatIkeSa(sa: IkeSaInfo): string[] {
  const when = sa.established_age === null ? '' : ` ${duration(sa.established_age)} ago`;
  const nat = [sa.nat_local ? 'local NAT' : '', sa.nat_remote ? 'remote NAT' : ''].filter(Boolean);
  const lines = [
    `${sa.instance ?? sa.name}: ${sa.state.toUpperCase()}${when}, IKEv2, ${sa.spi_i}_i${sa.initiator ? '*' : ''} ${sa.spi_r}_r${sa.initiator ? '' : '*'}`,
    `  local  '${sa.local_id}' @ ${endpoint(sa.local)}${sa.nat_local ? ' [NAT]' : ''}${sa.local_auth === 'null' ? ' [NULL auth]' : ''}`,
    `  remote '${sa.remote_id}' @ ${endpoint(sa.remote)}${sa.nat_remote ? ' [NAT]' : ''}${sa.remote_auth === 'null' ? ' [NULL auth: unauthenticated]' : ''}`,
  ];
  if (sa.proposal) lines.push(`  ${sa.proposal}`);
  if (sa.established) lines.push(`  established ${sa.established}${nat.length ? `, ${nat.join(', ')}` : ''}`);
  for (const child of sa.children) lines.push(...formatChild(child));
  return lines;
}

function formatChild(c: ChildSaInfo): string[] {
  const last = (s: number | null): string => (s === null ? '' : `, ${duration(s).padStart(6)} ago`);
  return [
    `  ${c.name}: INSTALLED, ${c.mode.toUpperCase()}${c.encap ? '-in-UDP' : ''}, reqid ${c.reqid}, ${c.proposal}`,
    `    installed ${duration(c.installed_age)} ago (${c.installed})`,
    `    in  ${c.spi_in}, ${String(c.bytes_in).padStart(10)} bytes, ${String(c.packets_in).padStart(8)} packets${last(c.last_in)}, replay window ${c.replay_window}, ${c.replay_drops} replay drops, ${c.icv_failures} ICV failures`,
    `    out ${c.spi_out}, ${String(c.bytes_out).padStart(10)} bytes, ${String(c.packets_out).padStart(8)} packets${last(c.last_out)}`,
    `    local  ${c.local_ts.join(' ')}`,
    `    remote ${c.remote_ts.join(' ')}`,
  ];
}
