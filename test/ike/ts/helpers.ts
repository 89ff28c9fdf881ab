/** Small builders so the tests read like swanctl.conf. */
import { parseTsConfigList, resolveTsConfig } from '../../../src/ike/ts/config.js';
import type { TrafficSelectorConfig } from '../../../src/ike/ts/syntax.js';
import { formatRange, type TsRange } from '../../../src/ike/ts/range.js';

/** Parsed `local_ts`/`remote_ts` text; throws on a parse error. */
export function cfg(text: string): TrafficSelectorConfig[] {
  const parsed = parseTsConfigList(text);
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.value;
}

/** Ranges from config text; `dynamic` becomes `dynamicAddr`. */
export function ts(text: string, dynamicAddr: string | string[] = '192.0.2.1'): TsRange[] {
  return resolveTsConfig(cfg(text), dynamicAddr);
}

export function show(set: readonly TsRange[]): string[] {
  return set.map(formatRange);
}
