/**
 * `daemon.vici`: off unless set; a path (relative to the configuration
 * file) turns the VICI socket on; anything else is refused with its key path.
 */
import { describe, expect, it } from 'vitest';
import { formatProblem, loadConfig } from '../../src/config/index.js';

/** Connections are required; an empty section will do here. */
const load = (daemon: string) => loadConfig({ text: `daemon:\n${daemon}\nconnections: {}\n`, baseDir: '/etc/tunsec' });

describe('daemon.vici', () => {
  it('is off by default and with `off`', () => {
    for (const text of ['  log: { default: 1 }', '  vici: off', '  vici: "off"']) {
      const r = load(text);
      expect(r.ok).toBe(true);
      expect(r.ok && 'vici' in r.config.daemon).toBe(false);
    }
  });

  it('a path turns it on; a relative one resolves against the configuration directory', () => {
    const abs = load('  vici: /run/tunsec/vici');
    expect(abs.ok && abs.config.daemon.vici).toBe('/run/tunsec/vici');
    const rel = load('  vici: run/vici');
    expect(rel.ok && rel.config.daemon.vici).toBe('/etc/tunsec/run/vici');
  });

  it('a URI, an empty string or a number is refused with the key path', () => {
    for (const [value, shown] of [
      ['unix:///run/tunsec/vici', "'unix:///run/tunsec/vici'"],
      ['""', "''"],
      ['4502', '4502'],
    ] as const) {
      const r = load(`  vici: ${value}`);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error.problems.map(formatProblem).join('\n')).toContain(`daemon.vici: expected 'off' or the path of the VICI socket`);
      if (!r.ok) expect(r.error.problems.map(formatProblem).join('\n')).toContain(shown);
    }
  });
});
