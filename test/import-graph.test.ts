/**
 * The module graph of src/: imports point downward (crypto, tun ← esp ← ike ←
 * daemon/cli), so no module reaches itself again, and the control protocol
 * (src/control) is the only thing the CLI and the daemon share.
 *
 * Every relative import and re-export counts, type-only ones too
 * (`import type`, `export type … from`, `import('…')`): a cycle of types is
 * still two modules that cannot be understood one without the other.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../src', import.meta.url));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(path);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** Each file of src/ (relative, with `/`) → the files of src/ it imports. */
function importGraph(): Map<string, string[]> {
  const name = (abs: string): string => relative(SRC, abs).split(sep).join('/');
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(SRC)) {
    const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    const targets = importedFiles
      .map((i) => i.fileName)
      .filter((spec) => spec.startsWith('.'))
      .map((spec) => name(resolve(dirname(file), spec.replace(/\.js$/, '.ts'))));
    graph.set(name(file), [...new Set(targets)]);
  }
  return graph;
}

/** Every cycle's files (the strongly connected components of more than one file, or a file importing itself). */
function cycles(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || graph.get(v)!.includes(v)) found.push(component.sort());
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

describe('the import graph of src/', () => {
  const graph = importGraph();
  const importsOf = (prefix: string, into: string): string[] =>
    [...graph].flatMap(([file, targets]) => (file.startsWith(prefix) ? targets.filter((t) => t.startsWith(into)).map((t) => `${file} → ${t}`) : []));

  it('sees the modules and their imports (the walk itself works)', () => {
    expect(graph.size).toBeGreaterThan(100);
    expect(graph.get('daemon/daemon.ts')).toContain('daemon/control/server.ts');
    expect(graph.get('cli/control-client.ts')).toContain('control/protocol.ts');
    // a type-only import is an edge too
    expect(graph.get('daemon/metrics.ts')).toContain('control/protocol.ts');
  });

  it('finds a cycle when there is one (the check can fail)', () => {
    expect(
      cycles(
        new Map([
          ['a.ts', ['b.ts']],
          ['b.ts', ['c.ts']],
          ['c.ts', ['a.ts']],
          ['d.ts', ['a.ts']],
        ]),
      ),
    ).toEqual([['a.ts', 'b.ts', 'c.ts']]);
    expect(cycles(new Map([['a.ts', ['a.ts']]]))).toEqual([['a.ts']]);
    expect(
      cycles(
        new Map([
          ['a.ts', ['b.ts']],
          ['b.ts', []],
        ]),
      ),
    ).toEqual([]);
  });

  it('src/ has no import cycle, type-only imports included', () => {
    expect(cycles(graph)).toEqual([]);
  });

  it('the control protocol (src/control) imports nothing from the daemon or the CLI', () => {
    expect([...importsOf('control/', 'daemon/'), ...importsOf('control/', 'cli/')]).toEqual([]);
  });

  it('src/cli imports nothing from src/daemon but in `tunsec daemon` (runs it) and `config check` (loads credentials as it does); the protocol comes from src/control', () => {
    const fromDaemon = importsOf('cli/', 'daemon/');
    expect(fromDaemon.filter((edge) => !edge.startsWith('cli/commands/daemon.ts → ') && !edge.startsWith('cli/commands/config.ts → '))).toEqual([]);
    expect(fromDaemon.filter((edge) => edge.includes(' → daemon/control/'))).toEqual([]);
  });
});
