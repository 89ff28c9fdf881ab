/**
 * Two tunsec IKE daemons-in-miniature for tests: a UdpTransport, an
 * IkeSaManager and an in-memory SAD each, wired together, with a throwaway
 * PKI from src/pki/issue.ts. Everything on loopback addresses, random ports.
 */
import { createCa, issueCertificate, type Issued, type KeyAlgorithm } from '../../../src/pki/issue.js';
import { TrustStore, parseIdentity } from '../../../src/pki/index.js';
import { SecurityAssociationDatabase } from '../../../src/esp/sadb.js';
import { UdpTransport } from '../../../src/ike/net/udp.js';
import { IkeSaManager, type ConnectionEntry } from '../../../src/ike/manager.js';
import { MemoryLogger } from '../../../src/ike/log.js';
import { parseProposalList } from '../../../src/ike/proposal/index.js';
import { parseTsConfigList } from '../../../src/ike/ts/index.js';
import { ProtocolId } from '../../../src/ike/transforms.js';
import type { ChildPeerConfig, IkePeerConfig } from '../../../src/ike/sa/peer-config.js';
import { CryptoWorkerPool, type PublicKeyCrypto } from '../../../src/crypto/pool/index.js';

export function proposals(text: string, protocol: ProtocolId.IKE | ProtocolId.ESP) {
  const r = parseProposalList(text, protocol);
  if (!r.ok) throw new Error(r.errors.join('; '));
  return r.value.proposals;
}

export function tsList(list: string[]) {
  const r = parseTsConfigList(list);
  if (!r.ok) throw new Error(r.message);
  return r.value;
}

export interface TestPki {
  ca: Issued;
  host(name: string, extra?: { ip?: string[]; key?: KeyAlgorithm; notAfter?: Date }): Issued;
}

export function testPki(key: KeyAlgorithm = 'p256'): TestPki {
  const ca = createCa({ subject: 'C=CH, O=tunsec test, CN=tunsec Test CA', key });
  return {
    ca,
    host: (name, extra = {}) =>
      issueCertificate(ca, {
        subject: `C=CH, O=tunsec test, CN=${name}`,
        key: extra.key ?? key,
        subjectAltNames: { dns: [name], ...(extra.ip ? { ip: extra.ip } : {}) },
        ...(extra.notAfter ? { notAfter: extra.notAfter } : {}),
      }),
  };
}

export function child(overrides: Partial<ChildPeerConfig> = {}): ChildPeerConfig {
  return {
    name: 'host-host',
    espProposals: proposals('aes128gcm16-ecp384bp!', ProtocolId.ESP),
    mode: 'transport',
    localTs: tsList(['dynamic']),
    remoteTs: tsList(['dynamic']),
    replayWindow: 32,
    lifetimes: { softSeconds: 3600, hardSeconds: 3960, softBytes: 0, hardBytes: 0, softPackets: 0, hardPackets: 0 },
    policy: 'private',
    ...overrides,
  };
}

export function peerConfig(pki: TestPki, own: Issued, ownId: string, remoteId: string | undefined, overrides: Partial<IkePeerConfig> = {}): IkePeerConfig {
  const trust = new TrustStore();
  trust.addTrustAnchor(pki.ca.certificate);
  return {
    name: 'host-host',
    ikeProposals: proposals('aes128gcm16-prfsha384-ecp384bp!', ProtocolId.IKE),
    localId: parseIdentity(ownId),
    ...(remoteId ? { remoteId: parseIdentity(remoteId) } : {}),
    certificate: own.certificate,
    intermediates: [],
    privateKey: own.privateKey!,
    trust,
    strictCrl: false,
    sendCert: 'always',
    sendCertReq: true,
    fragmentation: true,
    fragmentSize: 1280,
    forceEncap: false,
    children: [child()],
    ...overrides,
  };
}

export interface TestPeer {
  address: string;
  manager: IkeSaManager;
  transport: UdpTransport;
  sad: SecurityAssociationDatabase;
  log: MemoryLogger;
  /** Datagrams this peer sent, for assertions about the wire. */
  sent: Array<{ to: string; port: number; bytes: Buffer }>;
  stop(): void;
}

export async function startPeer(
  address: string,
  ports: { ike: number; natt: number },
  connections: ConnectionEntry[],
  options: { cookieThreshold?: number; dropOutgoing?: (bytes: Buffer) => boolean; delayMs?: number; crypto?: PublicKeyCrypto } = {},
): Promise<TestPeer> {
  const crypto = options.crypto ?? envCrypto();
  const log = new MemoryLogger();
  const sad = new SecurityAssociationDatabase();
  const transport = new UdpTransport({ addresses: [address], ikePort: ports.ike, nattPort: ports.natt });
  const sent: TestPeer['sent'] = [];
  const manager = new IkeSaManager({
    connections,
    backend: sad,
    log,
    ikePort: ports.ike,
    retransmit: { timeout: 0.3, base: 1.5, tries: 3 },
    ...(options.cookieThreshold !== undefined ? { cookieThreshold: options.cookieThreshold } : {}),
    ...(crypto ? { crypto } : {}),
    io: {
      nattPort: ports.natt,
      send(local, remote, datagrams) {
        for (const d of datagrams) {
          sent.push({ to: remote.address, port: remote.port, bytes: d });
          if (options.dropOutgoing?.(d)) continue;
          if (options.delayMs) {
            setTimeout(() => {
              try {
                transport.sendIke(local, remote, d);
              } catch {
                /* the peer was stopped meanwhile */
              }
            }, options.delayMs);
          } else transport.sendIke(local, remote, d);
        }
      },
    },
  });
  transport.on('ike', (d) => manager.receive(d.message, d.local, d.remote));
  await transport.start();
  return { address, manager, transport, sad, log, sent, stop: () => transport.stop() };
}

let sharedPool: CryptoWorkerPool | undefined;

/**
 * TUNSEC_TEST_CRYPTO_WORKERS=n runs every test peer's public-key work on one shared pool of n
 * workers (the same tests, with the exchange engine waiting for workers); unset or 0: inline.
 */
function envCrypto(): PublicKeyCrypto | undefined {
  const n = Number(process.env.TUNSEC_TEST_CRYPTO_WORKERS ?? 0);
  if (!(n > 0)) return undefined;
  sharedPool ??= new CryptoWorkerPool(n);
  return sharedPool;
}

/** A test's teardown: destroy every IKE SA of each peer (timers stop), close its sockets; empties `peers`. */
export function stopPeers(peers: TestPeer[]): void {
  for (const p of peers.splice(0)) {
    for (const sa of p.manager.sas) sa.destroy('test over');
    p.stop();
  }
}

/** Two free UDP ports, used by both peers on their own loopback addresses. */
export async function freePorts(): Promise<{ ike: number; natt: number }> {
  const probe = new UdpTransport({ addresses: ['127.0.0.1'], ikePort: 0, nattPort: 0 });
  await probe.start();
  const eps = probe.boundEndpoints();
  probe.stop();
  return { ike: eps.find((e) => !e.natt)!.port, natt: eps.find((e) => e.natt)!.port };
}

/**
 * moon (127.0.0.1) and sun (127.0.0.2) with a `host-host` connection to each other
 * (identities `<name>.tunsec.test`), on free ports; `dropOutgoing` per side as in startPeer.
 */
export async function loopbackPair(
  opts: {
    moon?: Partial<IkePeerConfig>;
    sun?: Partial<IkePeerConfig>;
    dropOutgoing?: { moon?: (b: Buffer) => boolean; sun?: (b: Buffer) => boolean };
    crypto?: { moon?: PublicKeyCrypto; sun?: PublicKeyCrypto };
  } = {},
): Promise<{ pki: TestPki; ports: { ike: number; natt: number }; moon: TestPeer; sun: TestPeer }> {
  const pki = testPki();
  const ports = await freePorts();
  const side = (name: 'moon' | 'sun', address: string, other: string, otherName: string): Promise<TestPeer> => {
    const cert = pki.host(`${name}.tunsec.test`, { ip: [address] });
    const drop = opts.dropOutgoing?.[name];
    return startPeer(
      address,
      ports,
      [
        {
          config: peerConfig(pki, cert, `${name}.tunsec.test`, `${otherName}.tunsec.test`, opts[name]),
          localAddrs: [address],
          remoteAddrs: [other],
          remotePort: ports.ike,
        },
      ],
      { ...(drop ? { dropOutgoing: drop } : {}), ...(opts.crypto?.[name] ? { crypto: opts.crypto[name] } : {}) },
    );
  };
  const moon = await side('moon', '127.0.0.1', '127.0.0.2', 'sun');
  const sun = await side('sun', '127.0.0.2', '127.0.0.1', 'moon');
  return { pki, ports, moon, sun };
}
