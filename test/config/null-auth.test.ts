/**
 * `auth: null` (RFC 7619 NULL Authentication) in the configuration: what it
 * defaults to, and one clear problem for each thing it excludes.
 */
import { describe, expect, it } from 'vitest';
import { formatProblem, loadConfig, type TunsecConfig } from '../../src/config/index.js';

function load(text: string): TunsecConfig {
  const r = loadConfig({ text, baseDir: '/etc/tunsec' });
  if (!r.ok) throw new Error(r.error.message);
  return r.config;
}

function errors(text: string): string[] {
  const r = loadConfig({ text, baseDir: '/etc/tunsec' });
  if (r.ok) throw new Error('the configuration loaded');
  return r.error.problems.filter((p) => p.severity === 'error').map(formatProblem);
}

/** Connection oe with `local` and `remote` sections as given (YAML flow maps). */
function oe(local: string, remote: string, top = ''): string {
  return `${top}
connections:
  oe:
    remote_addrs: 192.0.2.0/24
    local: ${local}
    remote: ${remote}
    children:
      oe:
        mode: tunnel
        start_action: trap
`;
}

describe('auth: null (RFC 7619) in the configuration', () => {
  it('null on both sides needs no certificate, key or CA, and the local identity defaults to ID_NULL', () => {
    const c = load(oe('{ auth: null }', '{ auth: null }')).connections.oe!;
    expect(c.local.auth).toBe('null');
    expect(c.remote.auth).toBe('null');
    expect(c.local.id).toBeUndefined();
    expect(c.remote.id.type).toBe('ID_ANY');
  });

  it("'%null' is accepted as either side's identity with auth null", () => {
    const c = load(oe("{ auth: null, id: '%null' }", "{ auth: null, id: '%null' }")).connections.oe!;
    expect(c.local.id?.type).toBe('ID_NULL');
    expect(c.remote.id.type).toBe('ID_NULL');
  });

  it('a NULL-authenticated side may meet a certificate-authenticated one (one-sided authentication, RFC 7619 §2)', () => {
    const c = load(oe('{ auth: null }', '{ auth: pubkey }', 'authorities: { cacerts: ca.pem }')).connections.oe!;
    expect(c.local.auth).toBe('null');
    expect(c.remote.auth).toBe('pubkey');
  });

  it('local certs with auth null are refused', () => {
    expect(errors(oe('{ auth: null, certs: me.pem }', '{ auth: null }'))).toEqual([
      "connections.oe.local.certs: auth 'null' authenticates with no certificate; remove local.certs, or use auth 'pubkey'",
    ]);
  });

  it('remote certs and cacerts with auth null are refused', () => {
    expect(errors(oe('{ auth: null }', '{ auth: null, certs: peer.pem, cacerts: ca.pem }'))).toEqual([
      "connections.oe.remote.certs: auth 'null' verifies no certificate, so a pinned peer certificate would never be checked; remove remote.certs, or use auth 'pubkey'",
      "connections.oe.remote.cacerts: auth 'null' verifies no certificate; remove remote.cacerts, or use auth 'pubkey'",
    ]);
  });

  it('a remote identity other than %any or %null with auth null is refused: nothing proves it', () => {
    expect(errors(oe('{ auth: null }', '{ auth: null, id: sun.example }'))).toEqual([
      "connections.oe.remote.id: 'sun.example' would be an identity the peer never proves: with auth 'null' the peer authenticates nothing; leave remote.id out (any identity) or use '%null'",
    ]);
  });

  it("'%null' with auth pubkey is refused (ID_NULL goes with NULL Authentication only)", () => {
    const e = errors(oe("{ certs: me.pem, id: '%null' }", '{ auth: null }'));
    expect(e).toEqual([
      "connections.oe.local.id: '%null' (ID_NULL) goes with NULL Authentication only (RFC 7619 §3); set local.auth: null, or give an identity",
    ]);
  });

  it('local id %any with auth null is refused: it cannot be sent', () => {
    expect(errors(oe("{ auth: null, id: '%any' }", '{ auth: null }'))[0]).toContain("'%any' matches any identity; it cannot be sent as ours");
  });

  it('an unknown auth class names the two tunsec takes', () => {
    expect(errors(oe('{ auth: psk }', '{ auth: null }'))[0]).toMatch(/connections\.oe\.local\.auth.*'pubkey'.*'null'/);
  });
});
