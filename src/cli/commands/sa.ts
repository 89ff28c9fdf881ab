/**
 * `tunsec sa list | add NAME key=value… | del NAME`: manual (static) SAs and
 * their policies, like `ip xfrm state/policy`. `add` takes the keys of a
 * `manual.sas.NAME` section of the configuration and is checked the same way:
 *
 *   tunsec sa add to-sun local_addr=10.1.0.1 remote_addr=10.1.0.2 spi_in=0x1001 spi_out=0x1002 \
 *     esp_proposal=aes128gcm16 key_in=0x… key_out=0x…
 *
 *   to-sun{65536}: TRANSPORT, aes128gcm16, 10.1.0.1 === 10.1.0.2, private (config)
 *     in  00001001,      840 bytes,       10 packets, replay window 32, 0 replay drops, 0 ICV failures
 *     out 00001002,      840 bytes,       10 packets
 *     local  10.1.0.1/32
 *     remote 10.1.0.2/32
 *
 * Keys on the command line are visible to other local users (ps, shell
 * history): prefer the configuration file (mode 0600) for lasting SAs.
 */
import type { ManualSaInfo, ManualSaListResult } from '../../control/protocol.js';
import { CONTROL_OPTIONS, controlTarget, parseArgs, runControl, usage, type CommandSpec, type Io } from './common.js';

export const saCommand: CommandSpec = {
  name: 'sa',
  synopsis: 'list | add NAME key=value… | del NAME [options]',
  summary: 'manual (static) SAs: list, add, delete, with their policies',
  description: `list: the manual SAs with SPIs, mode, selectors and counters.
add NAME key=value…: install a manual SA pair and its policies; the keys are
those of a manual.sas.NAME section (docs/configuration.md), checked the same way.
del NAME: remove a manual SA pair and its policies.
Keys given on the command line are visible to other local users (ps, shell
history): prefer the configuration file (mode 0600) for lasting SAs.`,
  options: CONTROL_OPTIONS,
  subcommands: ['list', 'add', 'del'],
  control: true,
  run(args, io) {
    return saRun(this, args, io);
  },
};

async function saRun(spec: CommandSpec, args: readonly string[], io: Io): Promise<number> {
  const parsed = parseArgs(spec, args);
  const [sub, ...positional] = parsed.positionals;
  const target = () => controlTarget(spec, parsed);
  switch (sub) {
    case 'list': {
      if (positional.length > 0) throw usage(spec, 'sa list takes no arguments');
      return runControl(io, target(), 'sa-list', {}, (result) => {
        io.out(formatManualSas(result as ManualSaListResult));
        return 0;
      });
    }
    case 'add': {
      const [name, ...pairs] = positional;
      if (name === undefined || name.includes('=')) throw usage(spec, 'sa add needs a NAME, then key=value settings');
      const settings: Record<string, string> = {};
      for (const [i, pair] of pairs.entries()) {
        const eq = pair.indexOf('=');
        // not echoed: it may be a key
        if (eq <= 0) throw usage(spec, `sa add: setting ${i + 1} after the NAME is not key=value`);
        const key = pair.slice(0, eq);
        if (Object.hasOwn(settings, key)) throw usage(spec, `sa add: '${key}' given twice`);
        settings[key] = pair.slice(eq + 1);
      }
      return runControl(io, target(), 'sa-add', { name, settings }, (result) => {
        const r = result as ManualSaInfo;
        io.out(`${r.name}{${r.reqid}}: installed, SPIs ${r.spi_in}_i ${r.spi_out}_o\n`);
        return 0;
      });
    }
    case 'del': {
      if (positional.length !== 1) throw usage(spec, 'sa del needs one manual SA NAME');
      return runControl(io, target(), 'sa-del', { name: positional[0] }, () => {
        io.out(`${positional[0]}: deleted\n`);
        return 0;
      });
    }
    case undefined:
      throw usage(spec, "'sa' needs a subcommand: list, add or del");
    default:
      throw usage(spec, `unknown sa subcommand '${sub}'`);
  }
}

export function formatManualSas(r: ManualSaListResult): string {
  if (r.sas.length === 0) return 'no manual SAs\n';
  const out: string[] = [];
  for (const sa of r.sas) {
    const gone = (installed: boolean): string => (installed ? '' : ' (removed: sequence numbers exhausted)');
    out.push(
      `${sa.name}{${sa.reqid}}: ${sa.mode.toUpperCase()}${sa.encap ? `-in-UDP ${sa.encap.local_port}/${sa.encap.remote_port}` : ''}, ${sa.proposal}, ${sa.local_addr} === ${sa.remote_addr}, ${sa.policy} (${sa.origin})`,
      `  in  ${sa.spi_in}, ${String(sa.bytes_in).padStart(10)} bytes, ${String(sa.packets_in).padStart(8)} packets, replay window ${sa.replay_window}, ${sa.replay_drops} replay drops, ${sa.icv_failures} ICV failures${gone(sa.installed_in)}`,
      `  out ${sa.spi_out}, ${String(sa.bytes_out).padStart(10)} bytes, ${String(sa.packets_out).padStart(8)} packets${gone(sa.installed_out)}`,
      `  local  ${sa.local_ts}`,
      `  remote ${sa.remote_ts}`,
    );
  }
  return `${out.join('\n')}\n`;
}
