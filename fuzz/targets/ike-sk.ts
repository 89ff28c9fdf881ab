/**
 * ike-sk: the inside of an Encrypted payload. The input is a *plaintext*
 * (inner payload chain, padding, Pad Length); the target seals it with the
 * fixture IKE SA's real SK_ei/SK_er under one of the fixture messages'
 * headers — as one SK payload or as 2–4 RFC 7383 fragments — and feeds the
 * datagram(s) to the path IkeSa.open takes: decodeMessage → decryptSk, or
 * decodeMessage → FragmentReassembler.add per fragment. Every mutation thus
 * passes the ICV and reaches the inner payload parsers (and, after them, the
 * parsers the tasks apply: fuzz/lib/ike.ts).
 *
 * Input: [template][first payload][mode][plaintext …]; mode bits 0–1 =
 * fragments − 1 (0 = one SK), bit 2 = fragments in reverse order.
 * Acceptable: IkeParseError (malformed inside), a 'malformed' reassembly.
 * Oracle: what decodes re-encodes to the same inner octets.
 * Seeds: the decrypted SK contents of every encrypted fixture message and
 * the reassembled IKE_AUTH messages.
 */
import type { AeadContext } from '../../src/crypto/types.js';
import {
  FragmentReassembler,
  IkeParseError,
  PayloadType,
  decodeMessage,
  decryptSk,
  encodeHeader,
  type IkeHeader,
  type Payload,
} from '../../src/ike/codec/index.js';
import { encodeInner, encryptedPayloadLength, sealEncrypted } from '../../src/ike/codec/sk.js';
import { exercisePayloads } from '../lib/ike.js';
import { ikeDatagrams, ikeKeyRows, senderAeadFor } from '../lib/fixtures.js';
import { featureOf, OracleViolation, type FuzzTarget } from '../lib/target.js';
import { IKE_DICTIONARY } from './ike-message.js';

interface Template {
  header: IkeHeader;
  aead: AeadContext;
}

let templates: Template[] = [];
let ivCounter = 0n;

function nextIv(): Buffer {
  const iv = Buffer.alloc(8);
  iv.writeBigUInt64BE(++ivCounter & 0xffff_ffff_ffff_ffffn);
  return iv;
}

/** The encrypted fixture messages: their headers and their senders' keys. */
function loadTemplates(): Template[] {
  const rows = ikeKeyRows();
  const out: Template[] = [];
  for (const d of ikeDatagrams()) {
    const m = decodeMessage(d);
    const last = m.payloads[m.payloads.length - 1];
    if (last?.type !== PayloadType.SK && last?.type !== PayloadType.SKF) continue;
    const aead = senderAeadFor(m.header, rows);
    if (aead) out.push({ header: m.header, aead });
  }
  return out;
}

function sealSk(t: Template, first: number, plaintext: Buffer): Buffer {
  const skLength = encryptedPayloadLength(t.aead, plaintext.length);
  const head = encodeHeader(t.header, PayloadType.SK, 28 + skLength);
  return sealEncrypted(Buffer.concat([head, Buffer.from([first, 0, skLength >> 8, skLength & 0xff])]), nextIv(), plaintext, t.aead);
}

function sealSkf(t: Template, first: number, chunk: Buffer, n: number, total: number): Buffer {
  const plaintext = Buffer.concat([chunk, Buffer.from([0])]);
  const skfLength = encryptedPayloadLength(t.aead, plaintext.length, 4);
  const head = encodeHeader(t.header, PayloadType.SKF, 28 + skfLength);
  const skf = Buffer.alloc(8);
  skf[0] = n === 1 ? first : 0;
  skf.writeUInt16BE(skfLength, 2);
  skf.writeUInt16BE(n, 4);
  skf.writeUInt16BE(total, 6);
  return sealEncrypted(Buffer.concat([head, skf]), nextIv(), plaintext, t.aead);
}

function checkRoundTrip(payloads: Payload[], inner: Buffer): void {
  const again = encodeInner(payloads);
  if (!again.equals(inner)) throw new OracleViolation(`SK inner chain: decode → encode is not exact (${inner.length} octets in, ${again.length} out)`);
}

export const target: FuzzTarget = {
  name: 'ike-sk',
  kind: 'ike',
  description: 'plaintext inner payloads → sealed with the fixture SK_e keys as SK or 2–4 SKF fragments → decryptSk / FragmentReassembler → payload parsers',
  maxLength: 6000,
  dictionary: IKE_DICTIONARY,
  setup() {
    templates = loadTemplates();
  },
  seeds() {
    const rows = ikeKeyRows();
    const all = loadTemplates();
    const out: Buffer[] = [];
    const reassembler = new FragmentReassembler();
    for (const d of ikeDatagrams()) {
      const m = decodeMessage(d);
      const last = m.payloads[m.payloads.length - 1];
      const aead = senderAeadFor(m.header, rows);
      if (!aead || (last?.type !== PayloadType.SK && last?.type !== PayloadType.SKF)) continue;
      const index = all.findIndex(
        (t) => t.header.messageId === m.header.messageId && t.header.response === m.header.response && t.header.spiI.equals(m.header.spiI),
      );
      if (last.type === PayloadType.SK) {
        const inner = decryptSk(m, d, aead);
        const plaintext = Buffer.concat([encodeInner(inner.payloads), inner.padding, Buffer.from([inner.padding.length])]);
        out.push(Buffer.concat([Buffer.from([index, last.firstPayload, 0]), plaintext]));
      } else {
        const r = reassembler.add(m, d, aead);
        if (r.status === 'complete') {
          const first = r.payloads[0];
          const firstType = first === undefined ? 0 : first.type === 'unknown' ? first.payloadType : first.type;
          out.push(Buffer.concat([Buffer.from([index, firstType, 1]), encodeInner(r.payloads)]));
        }
      }
    }
    return out;
  },
  run(data) {
    if (data.length < 3 || templates.length === 0) return 'short';
    const t = templates[data[0]! % templates.length]!;
    const first = data[1]!;
    const mode = data[2]!;
    const body = data.subarray(3);
    const total = (mode & 3) + 1;
    if (total === 1) {
      const plaintext = body.length === 0 ? Buffer.from([0]) : body;
      const datagram = sealSk(t, first, plaintext);
      const message = decodeMessage(datagram);
      let payloads: Payload[];
      try {
        payloads = decryptSk(message, datagram, t.aead).payloads;
      } catch (err) {
        if (err instanceof IkeParseError) return featureOf('sk-parse', err.message);
        throw err;
      }
      const padLength = plaintext[plaintext.length - 1]!;
      checkRoundTrip(payloads, plaintext.subarray(0, plaintext.length - 1 - padLength));
      return `sk|${exercisePayloads(payloads)}`;
    }
    // fragments: the body is the inner chain, cut into `total` chunks
    const size = Math.ceil(body.length / total);
    const datagrams: Buffer[] = [];
    for (let n = 1; n <= total; n++) datagrams.push(sealSkf(t, first, body.subarray((n - 1) * size, n * size), n, total));
    if (mode & 4) datagrams.reverse();
    const reassembler = new FragmentReassembler();
    for (const d of datagrams) {
      const r = reassembler.add(decodeMessage(d), d, t.aead);
      if (r.status === 'incomplete') continue;
      if (r.status === 'rejected') {
        if (r.reason !== 'malformed') throw new OracleViolation(`a well-formed fragment set was rejected: ${r.reason}`);
        return featureOf('skf-malformed', r.error?.message ?? '');
      }
      checkRoundTrip(r.payloads, body);
      return `skf|${exercisePayloads(r.payloads)}`;
    }
    throw new OracleViolation(`all ${total} fragments given, reassembly did not complete`);
  },
};
