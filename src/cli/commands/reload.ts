/**
 * `tunsec reload`: the daemon re-reads its configuration and credentials
 * (as SIGHUP does). Prints what was kept, added, removed and replaced, the
 * settings that need a restart and the warnings; exit 1 with every problem
 * on stderr when the configuration was rejected (the running one stays).
 */
import type { ReloadResult } from '../../control/protocol.js';
import { summarizeReload } from '../../control/reload-summary.js';
import { CONTROL_OPTIONS, controlTarget, parseArgs, runControl, usage, type CommandSpec } from './common.js';

/** The daemon may wait up to 5 s for peers to answer Deletes of removed connections. */
const RELOAD_WAIT = 10;

export const reloadCommand: CommandSpec = {
  name: 'reload',
  synopsis: '[options]',
  summary: 're-read the configuration and credentials (as SIGHUP)',
  description: `The daemon re-reads its configuration and credentials, as on SIGHUP. Unchanged
connections keep their SAs; prints what was kept, added, removed and replaced,
settings that need a restart, and warnings. A rejected configuration leaves the
running one in place: every problem on stderr, exit 1.`,
  options: CONTROL_OPTIONS,
  control: true,
  async run(args, io) {
    const parsed = parseArgs(this, args);
    if (parsed.positionals.length > 0) throw usage(this, `reload takes no arguments, got '${parsed.positionals[0]}'`);
    return runControl(
      io,
      controlTarget(this, parsed),
      'reload',
      {},
      (result) => {
        io.out(formatReload(result as ReloadResult));
        return 0;
      },
      RELOAD_WAIT,
    );
  },
};

export function formatReload(r: ReloadResult): string {
  const lines = [summarizeReload(r)];
  const list = (what: string, names: string[]): void => {
    if (names.length > 0) lines.push(`  ${what}: ${names.join(', ')}`);
  };
  list('kept', r.kept);
  list('credentials renewed (used from the next authentication)', r.renewed);
  list('added', r.added);
  list('removed', r.removed);
  list('replaced', r.replaced);
  list('applied', r.applied);
  for (const m of r.restart) lines.push(`  needs a restart: ${m}`);
  for (const w of r.warnings) lines.push(`  warning: ${w}`);
  for (const e of r.errors) lines.push(`  ${e}`);
  return `${lines.join('\n')}\n`;
}
