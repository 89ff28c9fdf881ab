/**
 * ike-message: a UDP payload as the manager receives it → decodeHeader,
 * decodeMessage (header + payload chain) → for SKF fragments a
 * FragmentReassembler, for SK an attempt to decrypt with the fixture's keys
 * (messages with the fixture's SPIs), → the payload parsers of fuzz/lib/ike.ts.
 *
 * Acceptable: IkeParseError (malformed), IkeIntegrityError (does not
 * authenticate), a reassembler rejection. Oracle: a datagram that decodes
 * re-encodes to exactly the same octets (message.ts promises this).
 * Seeds: the 18 IKE datagrams of the strongSwan exchange.
 */
import { AES_GCM_16_128 } from '../../src/crypto/aead.js';
import type { AeadContext } from '../../src/crypto/types.js';
import {
  FragmentReassembler,
  IkeIntegrityError,
  IkeParseError,
  PayloadType,
  decodeHeader,
  decodeMessage,
  decryptSk,
  describeMessage,
  encodeMessage,
} from '../../src/ike/codec/index.js';
import { exercisePayloads } from '../lib/ike.js';
import { ikeDatagrams, ikeKeyRows, senderAeadFor, type IkeKeyRow } from '../lib/fixtures.js';
import { featureOf, OracleViolation, type FuzzTarget } from '../lib/target.js';

let rows: IkeKeyRow[] = [];
let otherKey: AeadContext;
let reassembler = new FragmentReassembler();
let fragments = 0;

export const IKE_DICTIONARY: Uint8Array[] = [
  // payload types 33..48, 53 (SKF), exchange types 34..37, 43
  ...[33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 53].map((t) => Buffer.from([t])),
  Buffer.from([0x20]), // version 2.0
  Buffer.from([0x08]),
  Buffer.from([0x28]),
  Buffer.from([0x80]), // critical bit
  Buffer.from([0x40, 0x04]), // NAT_DETECTION_SOURCE_IP
  Buffer.from([0x40, 0x2e]), // IKEV2_FRAGMENTATION_SUPPORTED
  Buffer.from([0x40, 0x2f]), // SIGNATURE_HASH_ALGORITHMS
  Buffer.from([0x40, 0x06]), // COOKIE
  Buffer.from([0x00, 0x0e]), // INVALID_SYNTAX? (14 = NO_PROPOSAL_CHOSEN)
  Buffer.from([0x00, 0x01, 0x00, 0x02]), // SKF fragment 1 of 2
  Buffer.from([0x07, 0x00, 0x00, 0x10]), // TS_IPV4_ADDR_RANGE, length 16
  Buffer.from([0x08, 0x00, 0x00, 0x28]), // TS_IPV6_ADDR_RANGE, length 40
  Buffer.from([0x00, 0x00, 0x00, 0x08]), // transform header
  Buffer.from([0x80, 0x0e, 0x00, 0x80]), // Key Length 128 (TV)
  Buffer.from([0x03, 0x00, 0x00, 0x08]), // more transforms
  Buffer.from([0x02, 0x00]), // more proposals
  Buffer.from([0x01, 0x00, 0x00, 0x00]),
  Buffer.from([0xff, 0xff, 0xff, 0xff]),
];

export const target: FuzzTarget = {
  name: 'ike-message',
  kind: 'ike',
  description: 'IKE datagram → decodeMessage (+ FragmentReassembler for SKF, decryptSk with the fixture keys for SK) → payload parsers',
  maxLength: 4096,
  dictionary: IKE_DICTIONARY,
  setup() {
    rows = ikeKeyRows();
    otherKey = AES_GCM_16_128.createContext(Buffer.alloc(20, 7));
  },
  seeds: ikeDatagrams,
  postMutate(data, random) {
    // half the time the header Length agrees with the datagram, so mutations reach the payloads
    if (data.length >= 28 && random() < 0.5) data.writeUInt32BE(data.length, 24);
    // and the version is usually 2.0
    if (data.length >= 28 && random() < 0.5) data[17] = 0x20;
    return data;
  },
  run(data) {
    let message;
    try {
      decodeHeader(data);
      message = decodeMessage(data);
    } catch (err) {
      if (err instanceof IkeParseError) return featureOf('parse', err.message);
      throw err;
    }
    const again = encodeMessage(message);
    if (!again.equals(data))
      throw new OracleViolation(`decode → encode is not exact: ${data.length} octets in, ${again.length} out (${describeMessage(message)})`);
    describeMessage(message);
    const features = [exercisePayloads(message.payloads)];
    const last = message.payloads[message.payloads.length - 1];
    const aead = senderAeadFor(message.header, rows) ?? otherKey;
    if (last?.type === PayloadType.SKF) {
      // a fresh reassembler now and then, so pending messages from earlier inputs do not fill it for good
      if (++fragments % 64 === 0) reassembler = new FragmentReassembler();
      const r = reassembler.add(message, data, aead);
      if (r.status === 'complete') features.push(exercisePayloads(r.payloads));
      features.push(r.status === 'rejected' ? `skf:${r.reason}${r.error ? featureOf('', r.error.message) : ''}` : `skf:${r.status}`);
    } else if (last?.type === PayloadType.SK) {
      try {
        const inner = decryptSk(message, data, aead);
        features.push('sk:ok', exercisePayloads(inner.payloads));
      } catch (err) {
        if (err instanceof IkeIntegrityError) features.push(featureOf('sk-integrity', err.message));
        else if (err instanceof IkeParseError) features.push(featureOf('sk-parse', err.message));
        else throw err;
      }
    }
    return features.join('|');
  },
};
