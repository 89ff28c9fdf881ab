import { afterEach, describe, expect, it } from 'vitest';
import { freePorts, peerConfig, startPeer, testPki, child, tsList, type TestPeer } from '../support/peers.js';
import { formatProposal } from '../../../src/ike/proposal/index.js';

describe('tunsec ↔ tunsec IKE_SA_INIT + IKE_AUTH over loopback (RFC 7296 §1.2)', () => {
  const peers: TestPeer[] = [];
  afterEach(() => {
    for (const p of peers.splice(0)) p.stop();
  });

  async function pair(opts: { moon?: Parameters<typeof peerConfig>[4]; sun?: Parameters<typeof peerConfig>[4] } = {}) {
    const pki = testPki();
    const ports = await freePorts();
    const moonCert = pki.host('moon.tunsec.test', { ip: ['127.0.0.1'] });
    const sunCert = pki.host('sun.tunsec.test', { ip: ['127.0.0.2'] });
    const moon = await startPeer('127.0.0.1', ports, [
      {
        config: peerConfig(pki, moonCert, 'moon.tunsec.test', 'sun.tunsec.test', opts.moon),
        localAddrs: ['127.0.0.1'],
        remoteAddrs: ['127.0.0.2'],
        remotePort: ports.ike,
      },
    ]);
    const sun = await startPeer('127.0.0.2', ports, [
      {
        config: peerConfig(pki, sunCert, 'sun.tunsec.test', 'moon.tunsec.test', opts.sun),
        localAddrs: ['127.0.0.2'],
        remoteAddrs: ['127.0.0.1'],
        remotePort: ports.ike,
      },
    ]);
    peers.push(moon, sun);
    return { moon, sun, pki };
  }

  it('establishes the IKE SA and a transport-mode CHILD SA whose SPIs and keys agree on both sides', async () => {
    const { moon, sun } = await pair();
    const sa = await moon.manager.initiate('host-host');
    expect(sa.state).toBe('established');
    const moonChild = sa.ctx.children[0]!;
    expect(moonChild.mode).toBe('transport');
    expect(formatProposal(sa.ctx.selected!)).toBe('aes128gcm16-prfsha384-ecp384bp');
    const sunSa = sun.manager.sas[0]!;
    expect(sunSa.state).toBe('established');
    const sunChild = sunSa.ctx.children[0]!;
    expect(sunChild.inboundSpi).toBe(moonChild.outboundSpi);
    expect(sunChild.outboundSpi).toBe(moonChild.inboundSpi);
    // The key material installed for moon→sun on moon equals sun's inbound one.
    const moonOut = moon.sad.listSas().find((e) => e.spec.direction === 'out')!;
    const sunIn = sun.sad.inboundSa(moonOut.spec.spi)!;
    expect(Buffer.from(sunIn.spec.aead.keyMaterial).equals(Buffer.from(moonOut.spec.aead.keyMaterial))).toBe(true);
    expect(moonOut.spec.encap).toBeUndefined();
    expect(sa.ctx.peerId?.value).toBe('sun.tunsec.test');
    expect(sunSa.ctx.peerId?.value).toBe('moon.tunsec.test');
  });

  it('with encap: yes both sides float to the NAT-T port and install UDP-encapsulated SAs (RFC 3948)', async () => {
    const { moon, sun } = await pair({ moon: { forceEncap: true, children: [child({ mode: 'tunnel' })] }, sun: { children: [child({ mode: 'tunnel' })] } });
    const sa = await moon.manager.initiate('host-host');
    expect(sa.ctx.udpEncapsulation).toBe(true);
    expect(sa.ctx.local.port).toBe(moon.transport.boundEndpoints().find((e) => e.natt)!.port);
    const out = moon.sad.listSas().find((e) => e.spec.direction === 'out')!;
    expect(out.spec.encap).toBeDefined();
    expect(sun.sad.listSas().every((e) => e.spec.encap !== undefined)).toBe(true);
  });

  it('an IKE_AUTH larger than the fragment size is sent as RFC 7383 fragments and still authenticates', async () => {
    const { moon, sun } = await pair({ moon: { fragmentSize: 576 }, sun: { fragmentSize: 576 } });
    await moon.manager.initiate('host-host');
    const fragments = moon.sent.filter((s) => s.bytes[16] === 53); // next payload SKF
    expect(fragments.length).toBeGreaterThan(1);
    expect(sun.sent.filter((s) => s.bytes[16] === 53).length).toBeGreaterThan(1);
  });

  it("two peers configured with strongSwan's `default` proposals agree on one tunsec implements", async () => {
    const { proposals } = await import('../support/peers.js');
    const { moon } = await pair({
      moon: { ikeProposals: proposals('default', 1), children: [child({ espProposals: proposals('default', 3) })] },
      sun: { ikeProposals: proposals('default', 1), children: [child({ espProposals: proposals('default', 3) })] },
    });
    const sa = await moon.manager.initiate('host-host');
    expect(formatProposal(sa.ctx.selected!)).toMatch(/^aes(128|256)gcm16-prfsha(256|384|512)-/);
    expect(sa.ctx.children).toHaveLength(1);
  });

  it('an IKE proposal mismatch under strict proposals fails with NO_PROPOSAL_CHOSEN; the initiator names what it offered, the responder both lists', async () => {
    const { moon, sun } = await pair({ sun: { ikeProposals: (await import('../support/peers.js')).proposals('aes256gcm16-prfsha512-ecp521!', 1) } });
    await expect(moon.manager.initiate('host-host')).rejects.toThrow(
      'IKE_SA_INIT failed: peer answered NO_PROPOSAL_CHOSEN to the IKE proposals we offered: aes128gcm16-prfsha384-ecp384bp',
    );
    expect(sun.log.text()).toContain('no acceptable IKE proposal: peer offered aes128gcm16-prfsha384-ecp384bp; configured aes256gcm16-prfsha512-ecp521');
  });

  it('an ESP proposal mismatch refuses the CHILD_SA with NO_PROPOSAL_CHOSEN while the IKE SA comes up; the initiator names what it offered, the responder both lists', async () => {
    const { proposals } = await import('../support/peers.js');
    const { moon, sun } = await pair({ sun: { children: [child({ espProposals: proposals('aes256gcm16-ecp384bp!', 3) })] } });
    const sa = await moon.manager.initiate('host-host');
    expect(sa.state).toBe('established');
    expect(sa.ctx.children).toHaveLength(0);
    // IKE_AUTH carries no KE: the ESP proposals are offered and selected without their group (RFC 7296 §1.2)
    expect(moon.log.text()).toContain(
      'CHILD_SA host-host failed: peer answered NO_PROPOSAL_CHOSEN to the ESP proposals we offered: aes128gcm16-noesn; the IKE_SA stays up',
    );
    expect(sun.log.text()).toContain(
      'CHILD_SA refused (NO_PROPOSAL_CHOSEN): child host-host: no acceptable ESP proposal: peer offered aes128gcm16-noesn; configured aes256gcm16-noesn',
    );
    expect(sun.sad.listSas()).toHaveLength(0);
  });

  it('a responder preferring another group answers INVALID_KE_PAYLOAD and the initiator retries with that group', async () => {
    const { proposals } = await import('../support/peers.js');
    const { moon, sun } = await pair({
      moon: { ikeProposals: proposals('aes128gcm16-prfsha384-ecp256-ecp384bp!', 1) },
      sun: { ikeProposals: proposals('aes128gcm16-prfsha384-ecp384bp!', 1) },
    });
    const sa = await moon.manager.initiate('host-host');
    expect(formatProposal(sa.ctx.selected!)).toBe('aes128gcm16-prfsha384-ecp384bp');
    expect(moon.log.text()).toContain('peer wants key exchange group 29 instead of 19');
    expect(sun.manager.sas.filter((s) => s.state === 'established')).toHaveLength(1);
  });

  it('a peer whose certificate lacks the configured identity is rejected with AUTHENTICATION_FAILED and the reason is logged', async () => {
    const { moon, sun } = await pair({ sun: { remoteId: (await import('../../../src/pki/index.js')).parseIdentity('mars.tunsec.test') } });
    await expect(moon.manager.initiate('host-host')).rejects.toThrow('AUTHENTICATION_FAILED');
    expect(sun.log.text()).toContain('peer identity moon.tunsec.test is not the configured remote id mars.tunsec.test');
    expect(sun.sad.listSas()).toHaveLength(0);
  });

  it('a CHILD_SA with disjoint traffic selectors is refused with TS_UNACCEPTABLE while the IKE SA comes up', async () => {
    const { moon, sun } = await pair({ sun: { children: [child({ remoteTs: tsList(['192.0.2.0/24']) })] } });
    const sa = await moon.manager.initiate('host-host');
    expect(sa.state).toBe('established');
    expect(sa.ctx.children).toHaveLength(0);
    expect(moon.log.text()).toContain('CHILD_SA host-host failed: peer answered TS_UNACCEPTABLE');
    expect(sun.sad.listSas()).toHaveLength(0);
  });

  it('past the half-open threshold the responder demands a COOKIE and the initiator echoes it (RFC 7296 §2.6)', async () => {
    const pki = testPki();
    const ports = await freePorts();
    const moonCert = pki.host('moon.tunsec.test');
    const sunCert = pki.host('sun.tunsec.test');
    const moon = await startPeer('127.0.0.1', ports, [
      {
        config: peerConfig(pki, moonCert, 'moon.tunsec.test', 'sun.tunsec.test'),
        localAddrs: ['127.0.0.1'],
        remoteAddrs: ['127.0.0.2'],
        remotePort: ports.ike,
      },
    ]);
    const sun = await startPeer(
      '127.0.0.2',
      ports,
      [
        {
          config: peerConfig(pki, sunCert, 'sun.tunsec.test', 'moon.tunsec.test'),
          localAddrs: ['127.0.0.2'],
          remoteAddrs: ['127.0.0.1'],
          remotePort: ports.ike,
        },
      ],
      { cookieThreshold: 0 },
    );
    peers.push(moon, sun);
    const sa = await moon.manager.initiate('host-host');
    expect(sa.state).toBe('established');
    expect(sun.manager.counters.cookiesSent).toBe(1);
    expect(moon.log.text()).toContain('responder demands a COOKIE');
  });
});

describe('robustness of the IKE exchange engine', () => {
  const peers: TestPeer[] = [];
  afterEach(() => {
    for (const p of peers.splice(0)) p.stop();
  });

  async function pairWith(sunOptions: Parameters<typeof startPeer>[3]) {
    const pki = testPki();
    const ports = await freePorts();
    const moon = await startPeer('127.0.0.1', ports, [
      {
        config: peerConfig(pki, pki.host('moon.tunsec.test'), 'moon.tunsec.test', 'sun.tunsec.test'),
        localAddrs: ['127.0.0.1'],
        remoteAddrs: ['127.0.0.2'],
        remotePort: ports.ike,
      },
    ]);
    const sun = await startPeer(
      '127.0.0.2',
      ports,
      [
        {
          config: peerConfig(pki, pki.host('sun.tunsec.test'), 'sun.tunsec.test', 'moon.tunsec.test'),
          localAddrs: ['127.0.0.2'],
          remoteAddrs: ['127.0.0.1'],
          remotePort: ports.ike,
        },
      ],
      sunOptions,
    );
    peers.push(moon, sun);
    return { moon, sun, ports };
  }

  it('a lost IKE_AUTH response is recovered: the retransmitted request gets the cached response, not a second processing (§2.1)', async () => {
    let dropped = 0;
    const { moon, sun } = await pairWith({
      // Drop sun's first IKE_AUTH response (exchange type 35, R flag) once.
      dropOutgoing: (b) => b[18] === 35 && (b[19]! & 0x20) !== 0 && dropped++ === 0,
    });
    const sa = await moon.manager.initiate('host-host');
    expect(sa.state).toBe('established');
    expect(moon.log.text()).toContain('retransmit 1 of IKE_AUTH request 1');
    // sun processed IKE_AUTH once: one CHILD SA pair, one authentication line.
    expect(sun.sad.listSas()).toHaveLength(2);
    expect(sun.log.text().match(/authentication of 'moon.tunsec.test'/g)).toHaveLength(1);
  });

  it('garbage, truncated and unknown-SPI datagrams are counted and dropped without disturbing an established SA', async () => {
    const { moon, sun, ports } = await pairWith({});
    const sa = await moon.manager.initiate('host-host');
    const { createSocket } = await import('node:dgram');
    const s = createSocket('udp4');
    const send = (b: Buffer) => new Promise<void>((r) => s.send(b, ports.ike, '127.0.0.2', () => r()));
    const init = moon.sent[0]!.bytes;
    await send(Buffer.from('this is not IKE at all, but it is long enough'));
    await send(init.subarray(0, 40)); // truncated: header length says more
    const unknown = Buffer.from(init);
    unknown.writeUInt32BE(0xdeadbeef, 8); // a responder SPI nobody has
    unknown[18] = 37; // INFORMATIONAL
    await send(unknown);
    await new Promise((r) => setTimeout(r, 100));
    s.close();
    expect(sun.manager.counters.malformed).toBe(2);
    expect(sun.manager.counters.unknownSpi).toBe(1);
    // §2.21.4: the request for an unknown SA was answered, unprotected, with INVALID_IKE_SPI.
    expect(sun.manager.counters.invalidSpiSent).toBe(1);
    const answer = sun.sent[sun.sent.length - 1]!.bytes;
    expect(answer.readUInt32BE(8)).toBe(0xdeadbeef);
    expect(answer[18]).toBe(37);
    expect(answer.readUInt16BE(28 + 6)).toBe(4); // Notify type INVALID_IKE_SPI
    expect(sun.manager.counters.internalErrors).toBe(0);
    expect(sa.state).toBe('established');
    expect(sun.manager.sas.filter((x) => x.state === 'established')).toHaveLength(1);
  });

  it('deleting the IKE SA removes it and its CHILD SAs on both sides (INFORMATIONAL Delete, §1.4.1)', async () => {
    const { moon, sun } = await pairWith({});
    const sa = await moon.manager.initiate('host-host');
    const gone = new Promise<string>((r) => sa.on('destroyed', (_s, reason) => r(reason)));
    sa.delete('test says so');
    expect(await gone).toBe('test says so');
    await new Promise((r) => setTimeout(r, 50));
    expect(moon.sad.listSas()).toHaveLength(0);
    expect(sun.sad.listSas()).toHaveLength(0);
    expect(sun.log.text()).toContain('IKE_SA destroyed: peer deleted the IKE_SA');
  });
});
