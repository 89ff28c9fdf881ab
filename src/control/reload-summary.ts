/** The one-line summary of a reload: the daemon logs it, `tunsec reload` prints it. */
import type { ReloadResult } from './protocol.js';
import { plural } from '../util/format.js';

/** One line: `kept dc1 (renewed); added dc2; removed old; replaced web`. */
export function summarizeReload(r: ReloadResult): string {
  if (!r.ok) return `configuration not reloaded: ${plural(r.errors.length, 'problem')}; the running configuration stays`;
  const parts: string[] = [];
  const list = (names: string[]): string => names.join(', ');
  if (r.kept.length) parts.push(`kept ${r.kept.map((n) => (r.renewed.includes(n) ? `${n} (credentials renewed)` : n)).join(', ')}`);
  if (r.added.length) parts.push(`added ${list(r.added)}`);
  if (r.removed.length) parts.push(`removed ${list(r.removed)}`);
  if (r.replaced.length) parts.push(`replaced ${list(r.replaced)}`);
  if (parts.length === 0) parts.push('no connections');
  if (r.applied.length) parts.push(`applied ${list(r.applied)}`);
  if (r.restart.length) parts.push(`${plural(r.restart.length, 'setting')} need${r.restart.length === 1 ? 's' : ''} a restart`);
  return `configuration reloaded: ${parts.join('; ')}`;
}
