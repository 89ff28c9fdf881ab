/**
 * IKE_SA_INIT flood generator for test/interop/flood.test.ts, run inside a
 * test network namespace (`ip netns exec NS node --import tsx ike-flood.ts …`):
 * COUNT well-formed IKE_SA_INIT requests (SA aes128gcm16-prfsha384-ecp384bp,
 * a real brainpoolP384r1 KE value, fresh SPIi and nonce each) to DST:500,
 * every one from a different spoofed source address in PREFIX.0.0/16, sent
 * through an IPPROTO_RAW socket (IP_HDRINCL) at RATE packets per second.
 * Prints one JSON line: {sent, dropped, seconds, rate}. SIGTERM ends the flood early (the line is
 * still printed): a caller floods "until its own work is done" with a large COUNT.
 *
 *   ike-flood.ts DST COUNT RATE PREFIX [MARK]      e.g. 10.7.0.1 12000 2000 198.18 0x7473
 *
 * MARK (SO_MARK) lets the flood bypass the policy routes an IPsec daemon in the
 * same namespace installs once its SA is up (they would otherwise swallow it).
 */
import { randomBytes } from 'node:crypto';
import { keyExchangeGroup } from '../../src/crypto/ke/index.js';
import { ExchangeType, PayloadType, encodeMessage, type IkeMessage } from '../../src/ike/codec/index.js';
import { nonce } from '../../src/ike/codec/build.js';
import { parseProposalList, toProposalSubstructures } from '../../src/ike/proposal/index.js';
import { ProtocolId } from '../../src/ike/transforms.js';
import { RawIpSender } from '../../src/tun/raw-ip.js';
import { parseIp } from '../../src/util/ip.js';

const [dst = '', countArg = '10000', rateArg = '2000', prefix = '198.18', markArg] = process.argv.slice(2);
const count = Number(countArg);
const rate = Number(rateArg);
const dstBytes = parseIp(dst);
if (!dstBytes || dstBytes.length !== 4 || !(count > 0) || !(rate > 0)) {
  process.stderr.write('usage: ike-flood.ts DST(IPv4) COUNT RATE PREFIX\n');
  process.exit(2);
}
const [p0, p1] = prefix.split('.').map(Number) as [number, number];

const parsed = parseProposalList('aes128gcm16-prfsha384-ecp384bp', ProtocolId.IKE);
if (!parsed.ok) throw new Error(parsed.errors.join('; '));
const sa = toProposalSubstructures(parsed.value.proposals);
const ke = keyExchangeGroup(29)!.generate().publicValue;

const NONCE_LENGTH = 32;
/** One encoded request; each packet gets its own SPIi (octets 0–7) and nonce (the last 32 octets: Ni is the last payload). */
const template = encodeMessage({
  header: {
    spiI: randomBytes(8),
    spiR: Buffer.alloc(8),
    exchangeType: ExchangeType.IKE_SA_INIT,
    initiator: true,
    response: false,
    higherVersion: false,
    messageId: 0,
  },
  payloads: [{ type: PayloadType.SA, proposals: sa }, { type: PayloadType.KE, dhGroup: 29, keyExchangeData: ke }, nonce(randomBytes(NONCE_LENGTH))],
} satisfies IkeMessage);

/** IPv4 header (checksum left to the kernel) + UDP header (checksum 0: none, allowed over IPv4) + IKE. */
function packet(i: number, random: Buffer): Buffer {
  const ike = template;
  const total = 20 + 8 + ike.length;
  const b = Buffer.alloc(total);
  b[0] = 0x45;
  b.writeUInt16BE(total, 2);
  b.writeUInt16BE(0x4000, 6); // DF
  b[8] = 64;
  b[9] = 17;
  // spoofed source PREFIX.x.y, x.y = 1 + i (never .0.0)
  const host = 1 + (i % 65534);
  b[12] = p0;
  b[13] = p1;
  b[14] = host >> 8;
  b[15] = host & 0xff;
  dstBytes!.copy(b, 16);
  b.writeUInt16BE(500, 20);
  b.writeUInt16BE(500, 22);
  b.writeUInt16BE(8 + ike.length, 24);
  ike.copy(b, 28);
  random.copy(b, 28, 0, 8);
  random.copy(b, total - NONCE_LENGTH, 8, 8 + NONCE_LENGTH);
  return b;
}

const sender = RawIpSender.open({ family: 4, sendBufferSize: 4 << 20, ...(markArg ? { mark: Number(markArg) } : {}) });
const batch = 50;
const buffers: Buffer[] = [];
const lengths = new Int32Array(batch);
let sent = 0;
let dropped = 0;
const start = process.hrtime.bigint();
const elapsed = (): number => Number(process.hrtime.bigint() - start) / 1e9;

let stopped = false;
process.on('SIGTERM', () => (stopped = true));

async function main(): Promise<void> {
  while (!stopped && sent + dropped < count) {
    // pace: never ahead of RATE
    const due = (sent + dropped) / rate;
    const ahead = due - elapsed();
    if (ahead > 0.002) await new Promise((r) => setTimeout(r, ahead * 1000));
    const n = Math.min(batch, count - sent - dropped);
    buffers.length = 0;
    const random = randomBytes(n * (8 + NONCE_LENGTH));
    for (let k = 0; k < n; k++) {
      const p = packet(sent + dropped + k, random.subarray(k * (8 + NONCE_LENGTH)));
      buffers.push(p);
      lengths[k] = p.length;
    }
    const ok = sender.sendBatch(dst, n, buffers, lengths);
    sent += ok;
    dropped += n - ok;
  }
  sender.close();
  const seconds = elapsed();
  process.stdout.write(`${JSON.stringify({ sent, dropped, seconds, rate: sent / seconds })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
