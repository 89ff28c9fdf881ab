/**
 * ike-engine: the same plaintexts as ike-sk, but sealed with the keys of an
 * IKE SA that two in-process tunsec IKE SA managers ("moon" → "sun", wired
 * through memory, no sockets) have just established, and given to sun's
 * IkeSaManager.receive as a request from moon with the Message ID sun
 * expects — so the decrypted payloads reach the exchange engine and the
 * tasks (CREATE_CHILD_SA, INFORMATIONAL with Notify and Delete, IKE_AUTH
 * out of place), not only the parsers. SK or 2–4 SKF fragments, as in ike-sk.
 *
 * Acceptable: whatever sun answers or drops. A crash: the managers' guard
 * counting an internal error (the manager catches every exception a
 * datagram causes; the count is the oracle) or an exception escaping.
 * The pair is set up again when sun's SA is gone (a fuzzed Delete) and every
 * 1024 executions (fuzzed CREATE_CHILD_SAs install SAs).
 *
 * Input: as ike-sk — [template][first payload][mode][plaintext …]; the
 * template (a fixture message) gives the exchange type and the Response flag.
 */
import type { AeadContext } from '../../src/crypto/types.js';
import { PayloadType, decodeMessage, encodeHeader, type IkeHeader } from '../../src/ike/codec/index.js';
import { encryptedPayloadLength, sealEncrypted } from '../../src/ike/codec/sk.js';
import { SecurityAssociationDatabase } from '../../src/esp/sadb.js';
import { MemoryLogger } from '../../src/ike/log.js';
import { IkeSaManager, type ConnectionEntry } from '../../src/ike/manager.js';
import type { IkeSa } from '../../src/ike/sa/ike-sa.js';
import { peerConfig, testPki, type TestPki } from '../../test/ike/support/peers.js';
import { ikeDatagrams } from '../lib/fixtures.js';
import { OracleViolation, type FuzzTarget } from '../lib/target.js';
import { target as ikeSk } from './ike-sk.js';
import { IKE_DICTIONARY } from './ike-message.js';

const MOON = '10.99.0.1';
const SUN = '10.99.0.2';

interface Side {
  manager: IkeSaManager;
  log: MemoryLogger;
}

interface Pair {
  moon: Side;
  sun: Side;
  sa: IkeSa;
  executions: number;
}

let pki: TestPki;
let certs: { moon: ReturnType<TestPki['host']>; sun: ReturnType<TestPki['host']> };
let templates: { exchangeType: number; response: boolean }[] = [];
let pair: Pair | undefined;
/** Datagrams in flight between the two managers (delivered after each execution). */
const wire: { to: 'moon' | 'sun'; datagram: Buffer }[] = [];

function side(name: 'moon' | 'sun', connections: ConnectionEntry[]): Side {
  const log = new MemoryLogger();
  const manager = new IkeSaManager({
    connections,
    backend: new SecurityAssociationDatabase(),
    log,
    ikePort: 500,
    retransmit: { timeout: 30, base: 1, tries: 1 },
    io: {
      nattPort: 4500,
      send(_local, _remote, datagrams) {
        for (const d of datagrams) wire.push({ to: name === 'moon' ? 'sun' : 'moon', datagram: Buffer.from(d) });
      },
    },
  });
  return { manager, log };
}

function deliver(p: Pair): void {
  for (let i = 0; i < 64 && wire.length > 0; i++) {
    const { to, datagram } = wire.shift()!;
    const from = to === 'sun' ? MOON : SUN;
    const target = to === 'sun' ? p.sun : p.moon;
    target.manager.receive(datagram, { address: to === 'sun' ? SUN : MOON, port: 500 }, { address: from, port: 500 });
  }
  wire.length = 0;
}

async function establish(): Promise<Pair> {
  for (const old of [pair?.moon, pair?.sun]) old?.manager.sas.forEach((s) => (s as unknown as { destroy(r: string): void }).destroy?.('fuzz: new pair'));
  wire.length = 0;
  const moon = side('moon', [
    { config: peerConfig(pki, certs.moon, 'moon.tunsec.test', 'sun.tunsec.test'), localAddrs: [MOON], remoteAddrs: [SUN], remotePort: 500 },
  ]);
  const sun = side('sun', [
    { config: peerConfig(pki, certs.sun, 'sun.tunsec.test', 'moon.tunsec.test'), localAddrs: [SUN], remoteAddrs: [MOON], remotePort: 500 },
  ]);
  const p: Pair = { moon, sun, sa: undefined as unknown as IkeSa, executions: 0 };
  const established = moon.manager.initiate('host-host');
  for (let i = 0; i < 20 && wire.length > 0; i++) {
    deliver(p);
    await new Promise((r) => setImmediate(r));
  }
  p.sa = await established;
  return p;
}

function internalErrors(p: Pair): number {
  return p.moon.manager.counters.internalErrors + p.sun.manager.counters.internalErrors;
}

function errorLine(p: Pair): string {
  const l = [...p.sun.log.lines, ...p.moon.log.lines].reverse().find((x) => x.level === 'error' && x.message.startsWith('internal error'));
  return l?.message ?? '(no log line)';
}

function header(t: { exchangeType: number; response: boolean }, p: Pair): IkeHeader {
  return {
    spiI: p.sa.ctx.spiI,
    spiR: p.sa.ctx.spiR,
    exchangeType: t.exchangeType,
    initiator: true,
    response: t.response,
    higherVersion: false,
    messageId: sunSa(p)?.expectedPeerMessageId ?? 0,
  };
}

function sunSa(p: Pair): IkeSa | undefined {
  return p.sun.manager.sas.find((s) => s.ctx.spiI.equals(p.sa.ctx.spiI));
}

export const target: FuzzTarget = {
  name: 'ike-engine',
  kind: 'ike',
  description:
    'plaintexts sealed with the keys of an IKE SA two in-process managers established → IkeSaManager.receive (exchange engine, tasks); oracle: no internal error',
  maxLength: 6000,
  dictionary: IKE_DICTIONARY,
  async setup() {
    pki = testPki('p256');
    certs = { moon: pki.host('moon.tunsec.test', { ip: [MOON] }), sun: pki.host('sun.tunsec.test', { ip: [SUN] }) };
    templates = ikeDatagrams()
      .map((d) => decodeMessage(d))
      .filter((m) => [PayloadType.SK, PayloadType.SKF].includes(m.payloads[m.payloads.length - 1]!.type as PayloadType))
      .map((m) => ({ exchangeType: m.header.exchangeType, response: m.header.response }));
    pair = await establish();
  },
  seeds: () => ikeSk.seeds!(),
  async run(data) {
    if (data.length < 3) return 'short';
    let p = pair!;
    if (p.executions++ >= 1024 || sunSa(p)?.state !== 'established' || p.sa.state !== 'established') p = pair = await establish();
    const t = templates[data[0]! % templates.length]!;
    const first = data[1]!;
    const mode = data[2]!;
    const body = data.subarray(3);
    const h = header(t, p);
    const keys = p.sa.ctx.keys!;
    const aead: AeadContext = keys.sealerFor(true);
    const total = (mode & 3) + 1;
    const datagrams: Buffer[] = [];
    if (total === 1) {
      const plaintext = body.length === 0 ? Buffer.from([0]) : body;
      const skLength = encryptedPayloadLength(aead, plaintext.length);
      const head = encodeHeader(h, PayloadType.SK, 28 + skLength);
      datagrams.push(sealEncrypted(Buffer.concat([head, Buffer.from([first, 0, skLength >> 8, skLength & 0xff])]), keys.nextIv(), plaintext, aead));
    } else {
      const size = Math.ceil(body.length / total);
      for (let n = 1; n <= total; n++) {
        const plaintext = Buffer.concat([body.subarray((n - 1) * size, n * size), Buffer.from([0])]);
        const skfLength = encryptedPayloadLength(aead, plaintext.length, 4);
        const head = encodeHeader(h, PayloadType.SKF, 28 + skfLength);
        const skf = Buffer.alloc(8);
        skf[0] = n === 1 ? first : 0;
        skf.writeUInt16BE(skfLength, 2);
        skf.writeUInt16BE(n, 4);
        skf.writeUInt16BE(total, 6);
        datagrams.push(sealEncrypted(Buffer.concat([head, skf]), keys.nextIv(), plaintext, aead));
      }
      if (mode & 4) datagrams.reverse();
    }
    const before = internalErrors(p);
    const sunBefore = p.sun.log.lines.length;
    for (const d of datagrams) wire.push({ to: 'sun', datagram: d });
    deliver(p);
    // what sun's answer made moon do
    deliver(p);
    if (internalErrors(p) !== before)
      throw new OracleViolation(`the IKE SA manager counted an internal error: ${errorLine(p).split('\n').slice(0, 6).join(' | ')}`);
    const lines = p.sun.log.lines.slice(sunBefore);
    p.sun.log.lines.length = 0;
    p.moon.log.lines.length = 0;
    const last = lines[lines.length - 1];
    return `${t.exchangeType}:${t.response ? 'r' : 'q'}:${total}:${
      last
        ? last.message
            .replace(/\[[^\]]*\]/g, '[…]')
            .replace(/\d+/g, '#')
            .replace(/'[^']*'/g, "'…'")
            .slice(0, 70)
        : 'silent'
    }`;
  },
};
