/**
 * A tunsec daemon's Prometheus metrics as the tests read them: scraped with curl inside the
 * daemon's network namespace, parsed into sample → value.
 */
import { expect } from 'vitest';
import type { NetnsPair, NetnsSide } from './netns.js';

/** Unlabelled and labelled samples of a Prometheus text exposition, keyed `name` or `name{labels}`. */
export function prometheusSamples(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    m.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return m;
}

/** GET `url` with curl in `side`'s namespace (the scrape must succeed) and parse the samples. */
export async function scrapeMetrics(pair: NetnsPair, side: NetnsSide, url: string): Promise<Map<string, number>> {
  const r = await pair.exec(side, 'curl', ['-sS', '--max-time', '5', url], 10_000);
  expect(r.code, `curl in ${side.ns}: ${r.stderr}`).toBe(0);
  return prometheusSamples(r.stdout);
}
