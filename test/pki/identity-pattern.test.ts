/**
 * Remote identity patterns of group connections: `*.domain` on the peer's
 * FQDN ID (or its certificate's CN when it authenticates with its DN) and
 * `%fromcert-ip`, the peer's address as an IP SAN of its certificate.
 */
import { describe, expect, it } from 'vitest';
import { identityPatternMatches, parseIdentity } from '../../src/pki/index.js';
import { endEntity, root } from './helpers.js';

const ca = root();
const cp1 = endEntity(ca, 'C=CH, O=fleet, CN=cp1.eqiad.example', { subjectAltNames: { dns: ['cp1.eqiad.example'], ip: ['10.64.0.7'] } }).certificate;
const wildcard = { kind: 'wildcard', suffix: 'eqiad.example' } as const;

describe('identity patterns', () => {
  it('*.eqiad.example admits an FQDN ID below the domain (any depth), not the domain itself nor a look-alike', () => {
    expect(identityPatternMatches(wildcard, parseIdentity('cp1.eqiad.example'), cp1, '10.64.0.7')).toEqual({ ok: true });
    expect(identityPatternMatches(wildcard, parseIdentity('a.b.EQIAD.example.'), cp1, '10.64.0.7')).toEqual({ ok: true });
    expect(identityPatternMatches(wildcard, parseIdentity('eqiad.example'), cp1, '10.64.0.7').ok).toBe(false);
    expect(identityPatternMatches(wildcard, parseIdentity('cp1.noteqiad.example'), cp1, '10.64.0.7').ok).toBe(false);
    expect(identityPatternMatches(wildcard, parseIdentity('cp1.eqiad.example.evil'), cp1, '10.64.0.7')).toEqual({
      ok: false,
      reason: 'peer identity cp1.eqiad.example.evil does not match the pattern *.eqiad.example',
    });
  });

  it("*.eqiad.example admits a DN ID by its certificate's CN; an address ID is not a name", () => {
    expect(identityPatternMatches(wildcard, parseIdentity('C=CH, O=fleet, CN=cp1.eqiad.example'), cp1, '10.64.0.7')).toEqual({ ok: true });
    expect(identityPatternMatches(wildcard, parseIdentity('10.64.0.7'), cp1, '10.64.0.7').ok).toBe(false);
  });

  it('%fromcert-ip admits the peer only from an address its certificate names', () => {
    const fromCert = { kind: 'fromcert-ip' } as const;
    expect(identityPatternMatches(fromCert, parseIdentity('cp1.eqiad.example'), cp1, '10.64.0.7')).toEqual({ ok: true });
    expect(identityPatternMatches(fromCert, parseIdentity('cp1.eqiad.example'), cp1, '10.64.0.8')).toEqual({
      ok: false,
      reason: "certificate 'C=CH, O=fleet, CN=cp1.eqiad.example' does not carry the peer's address 10.64.0.8 as an IP subjectAltName (remote.id %fromcert-ip)",
    });
  });
});
