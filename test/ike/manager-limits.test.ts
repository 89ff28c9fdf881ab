/**
 * The IKE SA manager's denial-of-service limits (daemon.limits): COOKIE mode,
 * half-open caps (global and per address), per-address rates for IKE_SA_INIT
 * and IKE_AUTH, the bounded per-peer table, the half-open timeout — each with
 * its counter. Requests are crafted here and fed to `receive()` directly.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { keyExchangeGroup } from '../../src/crypto/ke/index.js';
import { ExchangeType, NotifyType, PayloadType, decodeMessage, encodeMessage } from '../../src/ike/codec/index.js';
import { nonce } from '../../src/ike/codec/build.js';
import { IkeSaManager, type ManagerOptions } from '../../src/ike/manager.js';
import { MemoryLogger } from '../../src/ike/log.js';
import { ProtocolId } from '../../src/ike/transforms.js';
import { toProposalSubstructures } from '../../src/ike/proposal/index.js';
import { SecurityAssociationDatabase } from '../../src/esp/sadb.js';
import { loadConfig } from '../../src/config/index.js';
import { managerLimits } from '../../src/daemon/limits.js';
import { limitsSchema } from '../../src/config/schema.js';
import { peerConfig, proposals, testPki } from './support/peers.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const LOCAL = { address: '192.0.2.1', port: 500 };
const ke = keyExchangeGroup(29)!.generate().publicValue;
const pki = testPki();
const me = pki.host('moon.test');

function initRequest(spiI = randomBytes(8), cookie?: Buffer): Buffer {
  return encodeMessage({
    header: { spiI, spiR: Buffer.alloc(8), exchangeType: ExchangeType.IKE_SA_INIT, initiator: true, response: false, higherVersion: false, messageId: 0 },
    payloads: [
      ...(cookie ? [{ type: PayloadType.NOTIFY as const, protocolId: 0, notifyType: NotifyType.COOKIE, spi: Buffer.alloc(0), data: cookie }] : []),
      { type: PayloadType.SA, proposals: toProposalSubstructures(proposals('aes128gcm16-prfsha384-ecp384bp!', ProtocolId.IKE)) },
      { type: PayloadType.KE, dhGroup: 29, keyExchangeData: ke },
      nonce(Buffer.alloc(32, 7)),
    ],
  } as Parameters<typeof encodeMessage>[0]);
}

interface Harness {
  manager: IkeSaManager;
  sent: Array<{ to: string; bytes: Buffer }>;
  clock: { now: number };
  send(bytes: Buffer, from: string, port?: number): void;
}

const managers: IkeSaManager[] = [];
afterEach(() => {
  for (const m of managers.splice(0)) for (const sa of m.sas) sa.destroy('test over');
});

function harness(options: Partial<ManagerOptions> = {}): Harness {
  const sent: Harness['sent'] = [];
  const clock = { now: 1_000_000 };
  const manager = new IkeSaManager({
    connections: [{ config: peerConfig(pki, me, 'moon.test', undefined), localAddrs: ['%any'], remoteAddrs: ['%any'], remotePort: 500 }],
    backend: new SecurityAssociationDatabase(),
    log: new MemoryLogger(),
    ikePort: 500,
    io: { nattPort: 4500, send: (_l, remote, datagrams) => datagrams.forEach((bytes) => sent.push({ to: remote.address, bytes })) },
    now: () => clock.now,
    // the daemon's defaults (daemon.limits), then the test's own
    ...managerLimits(limitsSchema.parse({})),
    ...options,
  });
  managers.push(manager);
  return { manager, sent, clock, send: (bytes, from, port = 500) => manager.receive(bytes, LOCAL, { address: from, port }) };
}

const cookieOf = (bytes: Buffer): Buffer | undefined => {
  const m = decodeMessage(bytes);
  const n = m.payloads[0];
  return n?.type === PayloadType.NOTIFY && n.notifyType === NotifyType.COOKIE ? n.data : undefined;
};

describe('the IKE responder under an IKE_SA_INIT flood', () => {
  it('answers with a COOKIE and keeps no state once the half-open threshold is reached, and accepts the echoed cookie', () => {
    const h = harness({ cookieThreshold: 2 });
    h.send(initRequest(), '198.18.0.1');
    h.send(initRequest(), '198.18.0.2');
    expect(h.manager.halfOpenCount).toBe(2);
    for (let i = 0; i < 100; i++) h.send(initRequest(), `198.18.1.${i}`);
    expect(h.manager.halfOpenCount).toBe(2);
    expect(h.manager.counters.cookiesSent).toBe(100);
    expect(h.manager.peerStateCount).toBe(2); // spoofed sources never got per-address state
    expect(h.sent.slice(-100).every((s) => cookieOf(s.bytes) !== undefined)).toBe(true);

    const spi = randomBytes(8);
    h.send(initRequest(spi), '198.18.2.1');
    const cookie = cookieOf(h.sent.at(-1)!.bytes)!;
    h.send(initRequest(spi, cookie), '198.18.2.1');
    expect(h.manager.halfOpenCount).toBe(3);
    expect(cookieOf(h.sent.at(-1)!.bytes)).toBeUndefined();

    h.send(initRequest(randomBytes(8), Buffer.concat([Buffer.from([1]), randomBytes(32)])), '198.18.2.2');
    expect(h.manager.counters.cookiesRejected).toBe(1);
    expect(h.manager.halfOpenCount).toBe(3);
  });

  it('drops IKE_SA_INIT requests past half_open_max even from addresses that returned a cookie', () => {
    const h = harness({ cookieThreshold: 1000, halfOpenMax: 3 });
    for (let i = 0; i < 5; i++) h.send(initRequest(), `198.18.0.${i}`);
    expect(h.manager.halfOpenCount).toBe(3);
    expect(h.manager.counters.halfOpenLimitDrops).toBe(2);
    expect(h.sent).toHaveLength(3);
  });

  it('limits the half-open IKE SAs of one address without affecting others', () => {
    const h = harness({ cookieThreshold: 1000, halfOpenPerPeer: 2 });
    for (let i = 0; i < 4; i++) h.send(initRequest(), '198.18.0.9');
    h.send(initRequest(), '198.18.0.10');
    expect(h.manager.halfOpenCount).toBe(3);
    expect(h.manager.counters.peerHalfOpenDrops).toBe(2);
  });

  it('rate-limits the key exchanges one address can start, with a burst of twice the rate', () => {
    const h = harness({ cookieThreshold: 1000, initPerPeerPerSecond: 2 });
    for (let i = 0; i < 6; i++) h.send(initRequest(), '198.18.0.5');
    expect(h.manager.halfOpenCount).toBe(4);
    expect(h.manager.counters.initRateDrops).toBe(2);
    h.clock.now += 1000; // two more tokens
    for (let i = 0; i < 3; i++) h.send(initRequest(), '198.18.0.5');
    expect(h.manager.halfOpenCount).toBe(6);
    expect(h.manager.counters.initRateDrops).toBe(3);
  });

  it('answers a retransmitted IKE_SA_INIT from its half-open SA without spending a token', () => {
    const h = harness({ cookieThreshold: 1000, initPerPeerPerSecond: 1 });
    const spi = randomBytes(8);
    const req = initRequest(spi);
    for (let i = 0; i < 5; i++) h.send(req, '198.18.0.7');
    expect(h.manager.halfOpenCount).toBe(1);
    expect(h.manager.counters.initRateDrops).toBe(0);
  });

  it('keeps rate state for at most peers_max addresses', () => {
    const h = harness({ cookieThreshold: 100_000, halfOpenMax: 100_000, peersMax: 16 });
    for (let i = 0; i < 40; i++) h.send(initRequest(), `198.18.0.${i}`);
    expect(h.manager.peerStateCount).toBe(16);
    expect(h.manager.halfOpenCount).toBe(40);
  });

  it('without limits given (library use: tests, benchmarks) keeps no per-address state and caps nothing but the COOKIE threshold', () => {
    const manager = new IkeSaManager({
      connections: [{ config: peerConfig(pki, me, 'moon.test', undefined), localAddrs: ['%any'], remoteAddrs: ['%any'], remotePort: 500 }],
      backend: new SecurityAssociationDatabase(),
      log: new MemoryLogger(),
      ikePort: 500,
      io: { nattPort: 4500, send: () => undefined },
      cookieThreshold: 1000,
    });
    managers.push(manager);
    for (let i = 0; i < 30; i++) manager.receive(initRequest(), LOCAL, { address: '198.18.0.1', port: 500 });
    expect(manager.halfOpenCount).toBe(30);
    expect(manager.peerStateCount).toBe(0);
    expect(manager.limits.initPerPeerPerSecond).toBe(Infinity);
  });

  it('drops requests no connection accepts before keeping any state, logging one line per interval', () => {
    const log = new MemoryLogger();
    const h = harness({
      log,
      connections: [{ config: peerConfig(pki, me, 'moon.test', undefined), localAddrs: ['%any'], remoteAddrs: ['192.0.2.99'], remotePort: 500 }],
    });
    for (let i = 0; i < 100; i++) h.send(initRequest(), `198.18.0.${i}`);
    expect(h.manager.counters.noConnection).toBe(100);
    expect(h.manager.halfOpenCount).toBe(0);
    expect(h.manager.peerStateCount).toBe(0);
    expect(h.sent).toHaveLength(0);
    expect(log.lines.filter((l) => l.message.startsWith('no connection configured'))).toHaveLength(1);
    h.clock.now += 10_000;
    h.send(initRequest(), '198.18.1.1');
    expect(log.lines.at(-1)!.message).toBe(
      'no connection configured for IKE_SA_INIT from 198.18.1.1 to 192.0.2.1; ignored (and 99 more since the last report)',
    );
  });

  it('drops a half-open SA that does not finish IKE_AUTH within half_open_timeout', async () => {
    const h = harness({ halfOpenTimeoutMs: 50 });
    h.send(initRequest(), '198.18.0.1');
    expect(h.manager.halfOpenCount).toBe(1);
    await new Promise((r) => setTimeout(r, 150));
    expect(h.manager.halfOpenCount).toBe(0);
    expect(h.manager.sas).toHaveLength(0);
    expect(h.manager.counters.halfOpenTimeouts).toBe(1);
  });

  it('rate-limits IKE_AUTH requests (signature checks) on half-open SAs per address', () => {
    const h = harness({ authPerPeerPerSecond: 1 });
    const spiI = randomBytes(8);
    h.send(initRequest(spiI), '198.18.0.3');
    const spiR = decodeMessage(h.sent[0]!.bytes).header.spiR;
    const auth = (messageId: number): Buffer =>
      encodeMessage({
        header: { spiI, spiR, exchangeType: ExchangeType.IKE_AUTH, initiator: true, response: false, higherVersion: false, messageId },
        payloads: [{ type: PayloadType.SK, firstPayload: PayloadType.IDi, content: randomBytes(80) }],
      } as Parameters<typeof encodeMessage>[0]);
    for (let i = 0; i < 6; i++) h.send(auth(1), '198.18.0.3');
    expect(h.manager.counters.authRateDrops).toBe(4);
  });
});

describe('daemon.limits', () => {
  const dir = mkdtempSync('/tmp/tslimits-');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const load = (limits: string) => {
    const file = join(dir, 'c.yaml');
    writeFileSync(file, `daemon:\n  limits:\n${limits}\nconnections: {}\n`);
    return loadConfig({ path: file });
  };

  it('takes every key, with units, and maps it onto the manager and reassembly options', () => {
    const r = load(
      [
        '    half_open_max: 50',
        '    half_open_per_peer: 3',
        '    half_open_timeout: 10s',
        '    cookie_threshold: 0',
        '    ike_init_rate: 4',
        '    ike_auth_rate: 2',
        '    peers_max: 100',
        '    invalid_spi_rate: 1',
        '    fragments_per_sa: 2',
        '    fragment_bytes: 32k',
        '    fragments_total_bytes: 1m',
        '    fragment_timeout: 5s',
      ].join('\n'),
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(managerLimits(r.config.daemon.limits)).toEqual({
      cookieThreshold: 0,
      halfOpenMax: 50,
      halfOpenPerPeer: 3,
      halfOpenTimeoutMs: 10_000,
      initPerPeerPerSecond: 4,
      authPerPeerPerSecond: 2,
      peersMax: 100,
      invalidSpiPerSecond: 1,
      reassembly: { maxPending: 2, maxBytes: 32 * 1024, timeoutMs: 5000, totalBytes: 1024 * 1024 },
    });
  });

  it('rejects unknown keys and out-of-range values, naming them', () => {
    const r = load(['    half_open_max: 0', '    ike_init_rate: fast', '    half_open_maximum: 3'].join('\n'));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const text = r.error.problems.map((p) => `${p.path}: ${p.message}`).join('\n');
    expect(text).toMatch(/daemon\.limits\.half_open_max: must be between 1 and/);
    expect(text).toMatch(/daemon\.limits\.ike_init_rate: expected a whole number/);
    expect(text).toMatch(/half_open_maximum/);
  });
});
