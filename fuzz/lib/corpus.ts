/** fuzz/corpus/<target>/: the committed seed inputs of each target (made by fuzz/seed.ts from the strongSwan fixture). */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { FuzzTarget } from './target.js';

export const FUZZ_DIR = fileURLToPath(new URL('..', import.meta.url));
export const corpusDir = (target: string): string => join(FUZZ_DIR, 'corpus', target);
export const crashesDir = (): string => join(FUZZ_DIR, 'crashes');

/** The corpus files of `target` (sorted by name), or its seeds() when the directory is empty or missing. */
export function loadCorpus(target: FuzzTarget): Buffer[] {
  const dir = corpusDir(target.name);
  const files = existsSync(dir) ? readdirSync(dir).sort() : [];
  if (files.length > 0) return files.map((f) => readFileSync(join(dir, f)));
  return target.seeds?.() ?? [];
}
