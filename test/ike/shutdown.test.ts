/**
 * The IKE SA manager while it shuts down, and what it answers for IKE SAs it
 * does not know (after a restart), between in-process peers on loopback:
 * a draining manager makes no new IKE SA (a peer that re-initiates when it
 * gets our Delete gets nothing it could keep), a CHILD_SA answered while its
 * IKE SA is being deleted is never installed (§1.4.1), and a request for an
 * unknown IKE SA is answered unprotected with INVALID_IKE_SPI (§2.21.4, §1.5)
 * — requests only, never IKE_SA_INIT, never a response.
 */
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { child, loopbackPair, tsList, type TestPeer } from './support/peers.js';
import { waitUntil as waitFor } from './support/wait.js';
import type { IkePeerConfig } from '../../src/ike/sa/peer-config.js';
import { ExchangeType, NotifyType, PayloadType, decodeMessage, encodeMessage } from '../../src/ike/codec/index.js';

describe('shutdown and unknown IKE SAs (RFC 7296 §1.4.1, §2.21.4)', () => {
  const peers: TestPeer[] = [];
  afterEach(() => {
    for (const p of peers.splice(0)) {
      for (const sa of p.manager.sas) sa.destroy('test over');
      p.stop();
    }
  });

  const isAuthRequest = (b: Buffer): boolean => b[18] === ExchangeType.IKE_AUTH && (b[19]! & 0x20) === 0;

  async function lab(opts: { moon?: Partial<IkePeerConfig>; sun?: Partial<IkePeerConfig> } = {}, o: { dropFirstAuth?: boolean } = {}) {
    let authSent = 0;
    const dropOutgoing = { moon: (b: Buffer) => o.dropFirstAuth === true && isAuthRequest(b) && authSent++ === 0 };
    const { moon, sun, ports } = await loopbackPair({ ...opts, dropOutgoing });
    peers.push(moon, sun);
    return { moon, sun, ports };
  }

  it('a draining manager drops IKE_SA_INIT and initiates nothing: a peer that redials after our Delete completes no IKE SA', async () => {
    const { moon, sun } = await lab();
    const first = await moon.manager.initiate('host-host');
    // sun shuts down; moon re-initiates as soon as it has answered the Delete (close_action start)
    const redial = new Promise<string>((resolve) =>
      first.on('destroyed', () => {
        moon.manager.initiate('host-host').then(
          () => resolve('established'),
          (err: Error) => resolve(err.message),
        );
      }),
    );
    await sun.manager.deleteAll(2000);
    expect(await redial).toMatch(/did not answer IKE_SA_INIT request 0/);
    expect(sun.manager.counters.drainingDrops ?? 0).toBeGreaterThan(0);
    expect(sun.manager.sas).toEqual([]);
    expect(sun.sad.listSas()).toEqual([]);
    expect(sun.log.text().match(/IKE_SA established/g)).toHaveLength(1);
    await expect(sun.manager.initiate('host-host')).rejects.toThrow(/shutting down/);
  });

  it('drain drops half-open IKE SAs: an IKE_AUTH that arrives after it establishes nothing', async () => {
    const { moon, sun } = await lab({}, { dropFirstAuth: true });
    const attempt = moon.manager.initiate('host-host').then(
      () => 'established',
      (err: Error) => err.message,
    );
    // moon's first IKE_AUTH request is lost; its retransmission reaches sun after the drain
    await waitFor(() => moon.sent.some((d) => isAuthRequest(d.bytes)), 5000, 'IKE_AUTH sent');
    expect(sun.manager.halfOpenCount).toBe(1);
    sun.manager.drain();
    expect(await attempt).toMatch(/did not answer IKE_AUTH request 1/);
    expect(sun.manager.sas).toEqual([]);
    expect(sun.sad.listSas()).toEqual([]);
    expect(sun.manager.counters.invalidSpiSent).toBeGreaterThan(0);
  });

  it('a CREATE_CHILD_SA answered while its IKE SA waits to send the Delete installs no CHILD_SA, no SA and no policy (§1.4.1)', async () => {
    const redis = child({ name: 'redis', reqid: 9, localTs: tsList(['dynamic[tcp]']), remoteTs: tsList(['dynamic[tcp/6379]']) });
    const server = child({ name: 'redis', reqid: 9, localTs: tsList(['dynamic[tcp/6379]']), remoteTs: tsList(['dynamic[tcp]']) });
    const { moon } = await lab({ moon: { children: [child({ reqid: 8 }), redis] }, sun: { children: [child({ reqid: 8 }), server] } });
    const sa = await moon.manager.initiate('host-host');
    const added: number[] = [];
    moon.sad.onPolicyChange((c) => {
      if (c.added) added.push(c.entry.spec.reqid);
    });
    const gone = new Promise<void>((r) => sa.on('destroyed', () => r()));
    sa.createChild(redis, 'test'); // the CREATE_CHILD_SA request is in flight…
    sa.delete('shutting down'); // …when the Delete is queued behind it
    await gone;
    expect(added).not.toContain(9);
    expect(sa.ctx.children).toEqual([]);
    expect(moon.sad.listSas()).toEqual([]);
    expect(moon.log.text()).toMatch(/IKE_SA is being deleted: CHILD_SA redis not installed/);
  });

  it('a stale CREATE_CHILD_SA or INFORMATIONAL request for an unknown IKE SA is answered unprotected with INVALID_IKE_SPI: same SPIs, Message ID copied, R set, to its source; a response or an IKE_SA_INIT is not answered', async () => {
    const { sun, ports } = await lab();
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    const answers: Buffer[] = [];
    s.on('message', (m) => answers.push(m));
    const spiI = Buffer.from('0123456789abcdef', 'hex');
    const spiR = Buffer.from('fedcba9876543210', 'hex');
    // what a peer that still holds an IKE SA with the restarted sun sends: encrypted (an SK payload), sun knows neither SPI
    const request = (exchangeType: number, messageId: number, flags: { initiator: boolean; response: boolean }): Buffer =>
      encodeMessage({
        header: { spiI, spiR, exchangeType, initiator: flags.initiator, response: flags.response, higherVersion: false, messageId },
        payloads: [{ type: PayloadType.SK, firstPayload: PayloadType.NOTIFY, content: randomBytes(64) }],
      });
    const send = (b: Buffer) => new Promise<void>((r) => s.send(b, ports.ike, '127.0.0.2', () => r()));
    await send(request(ExchangeType.CREATE_CHILD_SA, 7, { initiator: true, response: false }));
    await send(request(ExchangeType.INFORMATIONAL, 12, { initiator: false, response: false }));
    await send(request(ExchangeType.INFORMATIONAL, 13, { initiator: true, response: true }));
    await send(request(ExchangeType.IKE_SA_INIT, 0, { initiator: true, response: false }));
    await send(request(ExchangeType.IKE_SA_INIT, 0, { initiator: false, response: false }));
    await waitFor(() => answers.length >= 2);
    await new Promise((r) => setTimeout(r, 200));
    s.close();
    expect(answers).toHaveLength(2);
    expect(sun.manager.counters.unknownSpi).toBe(5);
    const [forChild, forInfo] = answers.map((a) => decodeMessage(a));
    for (const [m, id, originalInitiator] of [
      [forChild!, 7, true],
      [forInfo!, 12, false],
    ] as const) {
      expect(m.header.spiI.equals(spiI)).toBe(true);
      expect(m.header.spiR.equals(spiR)).toBe(true);
      expect(m.header.messageId).toBe(id);
      expect(m.header.response).toBe(true);
      // the I flag says who sends: sun is the other party of whoever sent the request
      expect(m.header.initiator).toBe(!originalInitiator);
      expect(m.header.exchangeType).toBe(ExchangeType.INFORMATIONAL);
      // unprotected: one Notify payload, no SK
      expect(m.payloads.map((p) => p.type)).toEqual([PayloadType.NOTIFY]);
      const n = m.payloads[0]!;
      expect(n.type === PayloadType.NOTIFY && n.notifyType).toBe(NotifyType.INVALID_IKE_SPI);
    }
    expect(sun.manager.counters.invalidSpiSent).toBe(2);
  });
});
