/**
 * NULL Authentication (RFC 7619) between two tunsec peers on loopback, in both
 * roles: mutual NULL, one side NULL and the other certificate-authenticated,
 * and the refusals — NULL offered where a certificate is required, a
 * certificate where NULL is configured — each one AUTHENTICATION_FAILED with
 * a clear log line and a counter.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ExchangeType, PayloadType, decodeMessage } from '../../../src/ike/codec/index.js';
import { NULL_IDENTITY, TrustStore } from '../../../src/pki/index.js';
import type { IkePeerConfig } from '../../../src/ike/sa/peer-config.js';
import { freePorts, peerConfig, startPeer, stopPeers, testPki, type TestPeer } from '../support/peers.js';

/** A side with NULL Authentication: ID_NULL, no certificate, no key. */
const nullLocal: Partial<IkePeerConfig> = {
  localAuth: 'null',
  localId: NULL_IDENTITY,
  certificate: undefined,
  privateKey: undefined,
} as Partial<IkePeerConfig>;
/** A connection that accepts a NULL-authenticated peer (and no other). */
const nullRemote: Partial<IkePeerConfig> = { remoteAuth: 'null', trust: new TrustStore() };

function strip(o: Partial<IkePeerConfig>): Partial<IkePeerConfig> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<IkePeerConfig>;
}

describe('NULL Authentication (RFC 7619) between tunsec peers', () => {
  const peers: TestPeer[] = [];
  afterEach(() => stopPeers(peers));

  async function pair(moon: Partial<IkePeerConfig>, sun: Partial<IkePeerConfig>, ids: { moonRemote?: string; sunRemote?: string } = {}) {
    const pki = testPki();
    const ports = await freePorts();
    const make = (name: 'moon' | 'sun', address: string, other: string, over: Partial<IkePeerConfig>, remoteId: string | undefined) => {
      const cfg = peerConfig(pki, pki.host(`${name}.tunsec.test`), `${name}.tunsec.test`, remoteId, strip(over));
      if (over.localAuth === 'null') {
        delete cfg.certificate;
        delete cfg.privateKey;
      }
      return startPeer(address, ports, [{ config: cfg, localAddrs: [address], remoteAddrs: [other], remotePort: ports.ike }]);
    };
    const m = await make('moon', '127.0.0.1', '127.0.0.2', moon, ids.moonRemote);
    const s = await make('sun', '127.0.0.2', '127.0.0.1', sun, ids.sunRemote);
    peers.push(m, s);
    return { moon: m, sun: s };
  }

  it.each(['moon', 'sun'] as const)(
    'mutual NULL: %s initiates, both sides authenticate with AUTH method 13 and ID_NULL, and the CHILD_SA is installed',
    async (first) => {
      const both = { ...nullLocal, ...nullRemote };
      const { moon, sun } = await pair(both, both);
      const [initiator, responder] = first === 'moon' ? [moon, sun] : [sun, moon];
      const sa = await initiator.manager.initiate('host-host');
      expect(sa.state).toBe('established');
      const other = responder.manager.sas[0]!;
      expect(other.state).toBe('established');
      for (const s of [sa, other]) {
        expect(s.ctx.peerAuth).toBe('null');
        expect(s.ctx.peerId).toEqual(NULL_IDENTITY);
        expect(s.ctx.peerCertificate).toBeUndefined();
      }
      expect(initiator.sad.listSas()).toHaveLength(2);
      expect(responder.sad.listSas()).toHaveLength(2);
      expect(responder.log.text()).toContain("peer '%null' authenticated with NULL Authentication (RFC 7619)");
      // No CERTREQ in the responder's IKE_SA_INIT: a NULL-authenticated peer has no certificate to send.
      const initResponse = responder.sent.map((d) => decodeMessage(d.bytes)).find((m) => m.header.exchangeType === ExchangeType.IKE_SA_INIT)!;
      expect(initResponse.payloads.some((p) => p.type === PayloadType.CERTREQ)).toBe(false);
    },
  );

  it('one-sided: a NULL-authenticated initiator and a responder that proves itself with its certificate', async () => {
    const { moon, sun } = await pair(nullLocal, nullRemote, { moonRemote: 'sun.tunsec.test' });
    const sa = await moon.manager.initiate('host-host');
    expect(sa.state).toBe('established');
    expect(sa.ctx.peerAuth).toBe('pubkey');
    expect(sa.ctx.peerId?.value).toBe('sun.tunsec.test');
    expect(sa.ctx.peerCertificate).toBeDefined();
    const sunSa = sun.manager.sas[0]!;
    expect(sunSa.ctx.peerAuth).toBe('null');
    expect(sunSa.ctx.peerId).toEqual(NULL_IDENTITY);
  });

  it('NULL offered to a connection that requires a certificate is refused with AUTHENTICATION_FAILED, a log line and a counter', async () => {
    const { moon, sun } = await pair(nullLocal, {});
    const outcome = await moon.manager.initiate('host-host').then(
      () => 'established',
      (err: Error) => err.message,
    );
    expect(outcome).toContain('AUTHENTICATION_FAILED');
    expect(outcome).toContain('NULL Authentication');
    expect(sun.log.text()).toContain("peer '%null' offered NULL Authentication (RFC 7619), i.e. no proof of identity, but remote.auth is pubkey");
    expect(sun.manager.counters.nullAuthRefused).toBe(1);
    expect(sun.manager.counters.authFailures).toBe(1);
    expect(moon.sad.listSas()).toHaveLength(0);
    expect(sun.sad.listSas()).toHaveLength(0);
  });

  it('a certificate-authenticated peer on a connection with remote.auth null is refused (no trust anchors to verify it)', async () => {
    const { moon, sun } = await pair({}, nullRemote);
    const outcome = await moon.manager.initiate('host-host').then(
      () => 'established',
      (err: Error) => err.message,
    );
    expect(outcome).toContain('AUTHENTICATION_FAILED');
    expect(sun.log.text()).toContain('but remote.auth is null');
    expect(sun.manager.counters.authFailures).toBe(1);
    expect(sun.manager.counters.nullAuthRefused).toBe(0);
  });

  it('a responder with NULL on both sides refuses an initiator that authenticates with a certificate', async () => {
    // moon requires pubkey of sun; sun answers with NULL.
    const { moon, sun } = await pair({}, { ...nullLocal, ...nullRemote });
    const outcome = await moon.manager.initiate('host-host').then(
      () => 'established',
      (err: Error) => err.message,
    );
    // sun refuses moon's certificate first (its remote.auth is null).
    expect(outcome).toContain('AUTHENTICATION_FAILED');
    expect(sun.manager.counters.authFailures).toBe(1);
  });

  it('a responder answering with NULL where the initiator requires a certificate is refused by the initiator', async () => {
    const { moon, sun } = await pair(nullLocal, { ...nullLocal, ...nullRemote });
    const outcome = await moon.manager.initiate('host-host').then(
      () => 'established',
      (err: Error) => err.message,
    );
    expect(outcome).toContain("peer '%null' offered NULL Authentication");
    expect(moon.manager.counters.nullAuthRefused).toBe(1);
    expect(moon.sad.listSas()).toHaveLength(0);
    void sun;
  });
});
