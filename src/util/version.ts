/** The package version, for programs that report it (the VICI `version` command). */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The version in the package.json above this file (src/util or dist/src/util); 'unknown' when none is found. */
export function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      try {
        const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
        if (pkg.name === 'tunsec' && pkg.version) return pkg.version;
      } catch {
        /* not ours */
      }
    }
    dir = dirname(dir);
  }
  return 'unknown';
}
