/**
 * `tunsec reload`: the daemon re-reads its configuration and credentials
 * (as SIGHUP does). Prints what was kept, added, removed and replaced, the
 * settings that need a restart and the warnings; exit 1 with every problem
 * on stderr when the configuration was rejected (the running one stays).
 */
import type { ReloadResult } from '../../control/protocol.js';
import { summarizeReload } from '../../control/reload-summary.js';
import { CONTROL_OPTIONS, UsageError, controlTarget, parseArgs, runControl, type Io } from './common.js';

/** The daemon may wait up to 5 s for peers to answer Deletes of removed connections. */
const RELOAD_WAIT = 10;

export async function reloadCommand(args: readonly string[], io: Io): Promise<number> {
  const parsed = parseArgs(args, CONTROL_OPTIONS);
  if (parsed.positional.length > 0) throw new UsageError(`reload takes no arguments, got '${parsed.positional[0]}'`);
  return runControl(
    io,
    controlTarget(parsed),
    'reload',
    {},
    (result) => {
      io.out(formatReload(result as ReloadResult));
      return 0;
    },
    RELOAD_WAIT,
  );
}

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
