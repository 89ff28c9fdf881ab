/**
 * `tunsec rekey NAME [--child CHILD]`: rekey the connection's IKE SA (RFC 7296
 * §1.3.2: a new IKE SA takes over its CHILD_SAs) or one CHILD_SA (§1.3.3: a
 * new SA pair replaces the old), as `swanctl --rekey`; waits until the
 * exchange is done and prints old and new SPIs.
 *
 *   moon-sun: IKE_SA rekeyed: 8f3c0a1b2c3d4e5f_i 19aa2b3c4d5e6f70_r → 2b0e…_i 77c1…_r
 *   moon-sun/host{1}: CHILD_SA rekeyed: c1a2b3d4_i 0e0f1011_o → c9e8f7a6_i 0a0b0c0d_o
 */
import type { RekeyResult } from '../../control/protocol.js';
import { CHILD_OPTION, WAITING_OPTIONS, controlTarget, parseArgs, runControl, stringOption, usage, type CommandSpec } from './common.js';

const REKEY_DEFAULT_TIMEOUT = 30;

export const rekeyCommand: CommandSpec = {
  name: 'rekey',
  synopsis: 'NAME [--child CHILD] [options]',
  summary: "rekey a connection's IKE SA, or one CHILD_SA with --child",
  description: `Rekey the established IKE_SA of connection NAME (CREATE_CHILD_SA, RFC 7296
§1.3.2: the new IKE_SA carries the CHILD_SAs on), or with --child that CHILD_SA
(§1.3.3: a new SA pair with fresh keys replaces the old one), and wait until the
exchange is done. Prints the old and the new SPIs; list-sas shows the new ones.
Exit 3 when there is no established IKE_SA (or no such CHILD_SA) to rekey.
Default timeout ${REKEY_DEFAULT_TIMEOUT} s.`,
  options: { ...CHILD_OPTION, ...WAITING_OPTIONS },
  positionals: 'connection',
  control: true,
  async run(args, io) {
    const parsed = parseArgs(this, args);
    if (parsed.positionals.length !== 1) throw usage(this, 'rekey needs one connection NAME');
    const name = parsed.positionals[0]!;
    const child = stringOption(parsed, 'child');
    const target = controlTarget(this, parsed);
    const timeout = target.timeout ?? REKEY_DEFAULT_TIMEOUT;
    return runControl(
      io,
      target,
      'rekey',
      { name, timeout, ...(child === undefined ? {} : { child }) },
      (result) => {
        io.out(formatRekey(result as RekeyResult));
        return 0;
      },
      timeout,
    );
  },
};

export function formatRekey(r: RekeyResult): string {
  const lines = [
    ...r.ike_sas.map((s) => `${r.name}: IKE_SA rekeyed: ${s.old_spi_i}_i ${s.old_spi_r}_r → ${s.spi_i}_i ${s.spi_r}_r`),
    ...r.child_sas.map((c) => `${r.name}/${c.name}{${c.reqid}}: CHILD_SA rekeyed: ${c.old_spi_in}_i ${c.old_spi_out}_o → ${c.spi_in}_i ${c.spi_out}_o`),
  ];
  return `${lines.join('\n')}\n`;
}
