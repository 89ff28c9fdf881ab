import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  AuthMethod,
  CertEncoding,
  ExchangeType,
  FragmentReassembler,
  IdType,
  IkeIntegrityError,
  NotifyType,
  PayloadType,
  decodeMessage,
  decryptSk,
  encodeIdBody,
  encodeMessage,
  fragmentMessage,
  idToString,
  notifyTypeName,
  payloadsOf,
  type IkeMessage,
  type Payload,
} from '../../../src/ike/codec/index.js';
import { demoFile } from '../../support/fixture.js';
import { demoIkeDatagrams, demoKeyRows, senderAead, tsharkFrames } from './strongswan-demo.js';

/** Dotted OID of the AlgorithmIdentifier that starts RFC 7427 Authentication Data (length octet, then DER). */
function signatureOid(authData: Buffer): string {
  // data[0] = length of AlgorithmIdentifier; then 30 len 06 oidLen oid...
  expect(authData[1]).toBe(0x30);
  expect(authData[3]).toBe(0x06);
  const oid = authData.subarray(5, 5 + authData[4]!);
  const arcs: number[] = [Math.floor(oid[0]! / 40), oid[0]! % 40];
  let acc = 0;
  for (const b of oid.subarray(1)) {
    acc = acc * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      arcs.push(acc);
      acc = 0;
    }
  }
  return arcs.join('.');
}

/** The payload list in the same normalised tokens as strongswan-demo.ts reads from tshark's output. */
function tokensOf(payloads: readonly Payload[]): string[] {
  const out: string[] = [];
  for (const p of payloads) {
    switch (p.type) {
      case PayloadType.SA:
        out.push('SA');
        for (const proposal of p.proposals) {
          out.push(`Proposal # ${proposal.number}`);
          for (const t of proposal.transforms) out.push(`Transform ${t.type}/${t.id}`);
        }
        break;
      case PayloadType.KE:
        out.push('Key Exchange');
        break;
      case PayloadType.NONCE:
        out.push('Nonce');
        break;
      case PayloadType.NOTIFY:
        out.push(`N:${notifyTypeName(p.notifyType)}`);
        break;
      case PayloadType.CERT:
        out.push('Certificate');
        break;
      case PayloadType.CERTREQ:
        out.push('Certificate Request');
        break;
      case PayloadType.IDi:
      case PayloadType.IDr:
        out.push(`${p.type === PayloadType.IDi ? 'IDi' : 'IDr'} ${p.idType} ${idToString(p)}`);
        break;
      case PayloadType.AUTH:
        out.push(`AUTH ${p.method} ${signatureOid(p.data)}`);
        break;
      case PayloadType.TSi:
      case PayloadType.TSr:
        out.push(`${p.type === PayloadType.TSi ? 'TSi' : 'TSr'} ${p.selectors.length}`);
        break;
      case PayloadType.DELETE:
        out.push('Delete');
        break;
      case PayloadType.SK:
        out.push('SK');
        break;
      case PayloadType.SKF:
        out.push('SKF');
        break;
      default:
        out.push(`unexpected ${String(p.type)}`);
    }
  }
  return out;
}

const datagrams = demoIkeDatagrams();
const tshark = new Map(tsharkFrames().map((f) => [f.frame, f]));
const decoded = datagrams.map((d) => ({ ...d, message: decodeMessage(d.bytes) }));

function frame(n: number): { frame: number; bytes: Buffer; message: IkeMessage } {
  const f = decoded.find((d) => d.frame === n);
  if (!f) throw new Error(`no frame ${n}`);
  return f;
}

function inner(n: number): Payload[] {
  const f = frame(n);
  return decryptSk(f.message, f.bytes, senderAead(f.message.header)).payloads;
}

/** The reassembled inside of the fragmented IKE_AUTH whose fragments are frames a, b. */
function reassemble(a: number, b: number) {
  const r = new FragmentReassembler();
  const first = r.add(frame(a).message, frame(a).bytes, senderAead(frame(a).message.header));
  expect(first).toEqual({ status: 'incomplete', received: 1, total: 2 });
  const done = r.add(frame(b).message, frame(b).bytes, senderAead(frame(b).message.header));
  if (done.status !== 'complete') throw new Error(`reassembly of #${a}+#${b}: ${JSON.stringify(done)}`);
  return done;
}

describe('the strongSwan 5.9.8 demo exchange (exchange.pcap)', () => {
  it('holds the 18 IKE datagrams the fixture README describes, one per line of ike-payloads.txt', () => {
    expect(datagrams.map((d) => d.frame)).toEqual([...tshark.keys()]);
    expect(datagrams).toHaveLength(18);
  });

  it('every IKE message strongSwan 5.9.8 sent decodes and re-encodes to the same octets', () => {
    for (const d of decoded) {
      expect(encodeMessage(d.message), `frame #${d.frame}`).toEqual(d.bytes);
    }
  });

  it('every header carries the exchange type, Message ID and flags tshark reported', () => {
    for (const d of decoded) {
      const t = tshark.get(d.frame)!;
      expect(ExchangeType[d.message.header.exchangeType], `#${d.frame}`).toBe(t.exchange);
      expect(d.message.header.messageId, `#${d.frame}`).toBe(t.messageId);
      expect(d.message.header.minorVersion).toBeUndefined();
      expect(d.message.header.reservedFlags).toBeUndefined();
    }
    // The INFORMATIONAL that sun (the responder) starts has I clear and R clear; moon's answer I and R set.
    expect(frame(27).message.header).toMatchObject({ initiator: false, response: false, messageId: 0 });
    expect(frame(28).message.header).toMatchObject({ initiator: true, response: true, messageId: 0 });
  });

  it('the IKE_SA_INIT payloads, proposals and transforms are those tshark listed, and every other message is a lone SK or SKF', () => {
    for (const n of [8, 9]) expect(tokensOf(frame(n).message.payloads), `#${n}`).toEqual(tshark.get(n)!.tokens);
    for (const d of decoded.filter((x) => x.frame > 9)) {
      expect(tokensOf(d.message.payloads), `#${d.frame}`).toEqual(tshark.get(d.frame)!.tokens.slice(0, 1));
    }
    // RFC 7383 §2.5: only the first fragment names the first inner payload.
    expect(frame(10).message.payloads[0]).toMatchObject({ type: PayloadType.SKF, firstPayload: PayloadType.IDi, fragmentNumber: 1, totalFragments: 2 });
    expect(frame(11).message.payloads[0]).toMatchObject({ type: PayloadType.SKF, firstPayload: 0, fragmentNumber: 2, totalFragments: 2 });
  });

  it("IKE_SA_INIT offers AES-GCM-16 with a TV Key Length of 128, PRF HMAC-SHA-384 and brainpoolP384r1, and the response's CERTREQ names the demo CA by the SHA-1 of its public key", () => {
    const [sa] = payloadsOf(frame(8).message.payloads, PayloadType.SA);
    expect(sa!.proposals).toEqual([
      {
        number: 1,
        protocolId: 1,
        spi: Buffer.alloc(0),
        transforms: [
          { type: 1, id: 20, attributes: [{ type: 14, value: 128 }] },
          { type: 2, id: 6, attributes: [] },
          { type: 4, id: 29, attributes: [] },
        ],
      },
    ]);
    const [ke] = payloadsOf(frame(8).message.payloads, PayloadType.KE);
    expect(ke!.dhGroup).toBe(29);
    expect(ke!.keyExchangeData).toHaveLength(96);
    const [certreq] = payloadsOf(frame(9).message.payloads, PayloadType.CERTREQ);
    const caKey = new X509Certificate(readFileSync(demoFile('pki/ca/caCert.pem'))).publicKey.export({ type: 'spki', format: 'der' });
    expect(certreq!.encoding).toBe(CertEncoding.X509_SIGNATURE);
    expect(certreq!.caKeyHashes).toEqual([createHash('sha1').update(caKey).digest()]);
    const hashAlgs = payloadsOf(frame(8).message.payloads, PayloadType.NOTIFY).find((n) => n.notifyType === NotifyType.SIGNATURE_HASH_ALGORITHMS);
    expect(hashAlgs!.data).toEqual(Buffer.from('0002000300040005', 'hex')); // SHA2-256, SHA2-384, SHA2-512, Identity
  });

  it('every SK payload decrypts with the logged keys and holds the payloads tshark listed', () => {
    for (const d of decoded) {
      if (d.message.payloads[0]?.type !== PayloadType.SK) continue;
      expect(['SK', ...tokensOf(inner(d.frame))], `#${d.frame}`).toEqual(tshark.get(d.frame)!.tokens);
    }
  });

  it('decrypted SK payloads re-encrypt under the same IV to the original datagram (padding, Pad Length and AAD are right)', () => {
    let count = 0;
    for (const d of decoded) {
      if (d.message.payloads[0]?.type !== PayloadType.SK) continue;
      const aead = senderAead(d.message.header);
      const sk = decryptSk(d.message, d.bytes, aead);
      expect(sk.padding).toHaveLength(0); // strongSwan sends Pad Length 0 with AES-GCM
      const again = encodeMessage({ header: d.message.header, payloads: sk.payloads }, { encrypt: { aead, iv: sk.iv, padding: sk.padding } });
      expect(again, `#${d.frame}`).toEqual(d.bytes);
      count++;
    }
    expect(count).toBe(12);
  });

  it('the fragmented IKE_AUTH request reassembles to ~1.6 kB: IDi moon.ikev2.test, moon’s certificate, AUTH method 14 and the rest tshark listed', () => {
    const done = reassemble(10, 11);
    expect(done.fragments).toBe(2);
    expect(done.innerLength).toBe(1611);
    expect(['SKF', ...tokensOf(done.payloads)]).toEqual(tshark.get(11)!.tokens);

    const [idi] = payloadsOf(done.payloads, PayloadType.IDi);
    expect(idi).toMatchObject({ idType: IdType.ID_FQDN, data: Buffer.from('moon.ikev2.test') });
    const [cert] = payloadsOf(done.payloads, PayloadType.CERT);
    expect(cert!.encoding).toBe(CertEncoding.X509_SIGNATURE);
    expect(cert!.data).toEqual(new X509Certificate(readFileSync(demoFile('pki/moon/cert.pem'))).raw);
    const [auth] = payloadsOf(done.payloads, PayloadType.AUTH);
    expect(auth!.method).toBe(AuthMethod.DIGITAL_SIGNATURE);
    expect(signatureOid(auth!.data)).toBe('1.2.840.113549.1.1.11');
    // RestOfInitIDPayload for the AUTH computation (RFC 7296 §2.15): ID Type ‖ RESERVED ‖ data.
    expect(encodeIdBody(idi!)).toEqual(Buffer.concat([Buffer.from([2, 0, 0, 0]), Buffer.from('moon.ikev2.test')]));
  });

  it('the fragmented IKE_AUTH response reassembles to IDr sun.ikev2.test, sun’s certificate, AUTH, SA and two TS of two selectors each', () => {
    const done = reassemble(12, 13);
    expect(done.innerLength).toBe(1529);
    expect(done.header.response).toBe(true);
    expect(['SKF', ...tokensOf(done.payloads)]).toEqual(tshark.get(13)!.tokens);
    const [cert] = payloadsOf(done.payloads, PayloadType.CERT);
    expect(cert!.data).toEqual(new X509Certificate(readFileSync(demoFile('pki/sun/cert.pem'))).raw);
    const [tsi] = payloadsOf(done.payloads, PayloadType.TSi);
    expect(tsi!.selectors).toEqual([
      { tsType: 7, ipProtocolId: 0, startPort: 0, endPort: 65535, startAddress: Buffer.from([10, 77, 0, 1]), endAddress: Buffer.from([10, 77, 0, 1]) },
      {
        tsType: 8,
        ipProtocolId: 0,
        startPort: 0,
        endPort: 65535,
        startAddress: Buffer.from('fd770000000000000000000000000001', 'hex'),
        endAddress: Buffer.from('fd770000000000000000000000000001', 'hex'),
      },
    ]);
  });

  it('re-fragmenting the reassembled IKE_AUTH messages at 1248 octets with the same IVs reproduces strongSwan’s fragments octet for octet', () => {
    for (const [a, b] of [
      [10, 11],
      [12, 13],
    ] as const) {
      const done = reassemble(a, b);
      const ivs = [frame(a), frame(b)].map((f) => {
        const skf = f.message.payloads[0]!;
        if (skf.type !== PayloadType.SKF) throw new Error('not SKF');
        return skf.content.subarray(0, 8);
      });
      const fragments = fragmentMessage(
        { header: done.header, payloads: done.payloads },
        { aead: senderAead(done.header), maxMessageSize: 1248, nextIv: () => ivs.shift()! },
      );
      expect(fragments).toEqual([frame(a).bytes, frame(b).bytes]);
    }
  });

  it('the CHILD rekey names the old ESP SPI in N(REKEY_SA), and the DELETEs that follow carry the old SPIs of both sides', () => {
    const auth = reassemble(10, 11);
    const [authSa] = payloadsOf(auth.payloads, PayloadType.SA);
    const oldInitiatorSpi = authSa!.proposals[0]!.spi;
    const authResponse = reassemble(12, 13);
    const oldResponderSpi = payloadsOf(authResponse.payloads, PayloadType.SA)[0]!.proposals[0]!.spi;

    const rekey = inner(31);
    const [n] = payloadsOf(rekey, PayloadType.NOTIFY);
    expect(n).toEqual({ type: PayloadType.NOTIFY, protocolId: 3, spi: oldInitiatorSpi, notifyType: NotifyType.REKEY_SA, data: Buffer.alloc(0) });
    const [sa] = payloadsOf(rekey, PayloadType.SA);
    expect(sa!.proposals[0]!.transforms.map((t) => [t.type, t.id])).toEqual([
      [1, 20],
      [4, 29],
      [5, 0],
    ]);

    expect(payloadsOf(inner(33), PayloadType.DELETE)).toEqual([{ type: PayloadType.DELETE, protocolId: 3, spis: [oldInitiatorSpi] }]);
    expect(payloadsOf(inner(34), PayloadType.DELETE)).toEqual([{ type: PayloadType.DELETE, protocolId: 3, spis: [oldResponderSpi] }]);
  });

  it('the IKE rekey proposes the SPIs of the second key row, and the old and new IKE SA are deleted with SPI Size 0 and no SPIs', () => {
    const [newRow] = demoKeyRows().slice(1);
    expect(payloadsOf(inner(35), PayloadType.SA)[0]!.proposals[0]).toMatchObject({ protocolId: 1, spi: Buffer.from(newRow!.spiI, 'hex') });
    expect(payloadsOf(inner(36), PayloadType.SA)[0]!.proposals[0]).toMatchObject({ protocolId: 1, spi: Buffer.from(newRow!.spiR, 'hex') });
    for (const n of [37, 43]) {
      expect(inner(n), `#${n}`).toEqual([{ type: PayloadType.DELETE, protocolId: 1, spis: [] }]);
    }
    for (const n of [28, 38, 44]) expect(inner(n), `#${n}`).toEqual([]);
  });

  it('a flipped bit in the IV, the ciphertext, the ICV or the header makes decryption fail with IkeIntegrityError', () => {
    for (const d of decoded) {
      if (d.message.payloads[0]?.type !== PayloadType.SK) continue;
      for (const at of [32, 40, d.bytes.length - 1]) {
        const tampered = Buffer.from(d.bytes);
        tampered[at]! ^= 0x01;
        const message = decodeMessage(tampered);
        expect(() => decryptSk(message, tampered, senderAead(message.header)), `#${d.frame} octet ${at}`).toThrow(IkeIntegrityError);
      }
      // The header is authenticated too (it is in the AAD).
      const tampered = Buffer.from(d.bytes);
      tampered[23]! ^= 0x80; // Message ID
      const message = decodeMessage(tampered);
      expect(() => decryptSk(message, tampered, senderAead(message.header))).toThrow(IkeIntegrityError);
    }
  });

  it('a tampered IKE_AUTH fragment is rejected by the reassembler and counted, and the genuine one still completes the message', () => {
    const r = new FragmentReassembler();
    const a = frame(10);
    const b = frame(11);
    const aead = senderAead(a.message.header);
    expect(r.add(a.message, a.bytes, aead).status).toBe('incomplete');
    const tampered = Buffer.from(b.bytes);
    tampered[100]! ^= 0x20;
    expect(r.add(decodeMessage(tampered), tampered, aead)).toMatchObject({ status: 'rejected', reason: 'integrity' });
    expect(r.counters.rejected.integrity).toBe(1);
    expect(r.add(b.message, b.bytes, aead).status).toBe('complete');
  });
});
