/**
 * config: YAML text → src/config loadConfig (YAML syntax, schema, defaults,
 * lifetimes, traffic selectors, proposals, identities, manual SAs, the
 * checks across keys).
 *
 * Acceptable: { ok: true } or { ok: false, error: ConfigError } — loadConfig
 * documents that it returns its problems; loadConfigOrThrow throws only
 * ConfigError. Anything thrown out of loadConfig is a crash; so is a
 * ConfigError without a single error-severity problem.
 * Seeds: examples/tunsec.yaml, the configuration of the strongSwan fixture
 * written for tunsec, and small configs with manual SAs, tunnel/encap and
 * every lifetime kind (fuzz/seed.ts).
 */
import { tmpdir } from 'node:os';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { featureOf, OracleViolation, type FuzzTarget } from '../lib/target.js';

const KEYWORDS = [
  'daemon:',
  'connections:',
  'children:',
  'authorities:',
  'secrets:',
  'manual:',
  'sas:',
  'local:',
  'remote:',
  'local_addrs:',
  'remote_addrs:',
  'proposals:',
  'esp_proposals:',
  'local_ts:',
  'remote_ts:',
  'mode:',
  'encap:',
  'rekey_time:',
  'life_time:',
  'rand_time:',
  'rekey_bytes:',
  'rekey_packets:',
  'start_action:',
  'dpd_delay:',
  'id:',
  'auth:',
  'certs:',
  'cacerts:',
  'crls:',
  'strictcrl:',
  'replay_window:',
  'spi_in:',
  'spi_out:',
  'key_in:',
  'key_out:',
  'local_addr:',
  'remote_addr:',
  'esp_proposal:',
  'fragmentation:',
  'fragment_size:',
  'tun_mtu:',
  'datapath:',
  'dynamic',
  '%any',
  '0.0.0.0/0',
  '::/0',
  '10.0.0.0/8[tcp/443]',
  'fd00::/8',
  'aes128gcm16-prfsha384-ecp384bp!',
  'default',
  'tunnel',
  'transport',
  'yes',
  'no',
  'trap',
  'start',
  '1h',
  '4h',
  '10m',
  '1G',
  '5k',
  'infinite',
  '0x1001',
  '"0x' + 'ab'.repeat(20) + '"',
  '&a ',
  '*a',
  '<<: *a',
  '!!binary ',
  '!!str ',
  '? ',
  '{',
  '}',
  '[',
  ']',
  '- ',
  ': ',
  '\n  ',
  '\n    ',
  '\n- ',
  '#',
  '"',
  "'",
  '|\n',
  '>-\n',
  '---\n',
  '...\n',
  '\t',
  '~',
  'null',
].map((s) => Buffer.from(s));

const baseDir = tmpdir();

export const target: FuzzTarget = {
  name: 'config',
  kind: 'config',
  description: 'YAML text → loadConfig (syntax, schema, defaults, derived values, cross-key checks)',
  maxLength: 8192,
  dictionary: KEYWORDS,
  run(data) {
    const text = data.toString('utf8');
    let r;
    try {
      r = loadConfig({ text, path: 'fuzz.yaml', baseDir });
    } catch (err) {
      // loadConfig reports problems, it does not throw them
      if (err instanceof ConfigError)
        throw new OracleViolation(`loadConfig threw its ConfigError instead of returning it: ${err.message.split('\n')[1] ?? ''}`);
      throw err;
    }
    if (r.ok) return `ok:${Object.keys(r.config.connections).length}:${Object.keys(r.config.manual.sas).length}:${r.warnings.length}`;
    if (!(r.error instanceof ConfigError)) throw new OracleViolation('a failed load without a ConfigError');
    const errors = r.error.problems.filter((p) => p.severity === 'error');
    if (errors.length === 0) throw new OracleViolation('a failed load whose ConfigError lists no error');
    return errors
      .slice(0, 3)
      .map((p) => featureOf(p.path.replace(/\.[^.]*$/, ''), p.message.slice(0, 60)))
      .join('|');
  },
};
