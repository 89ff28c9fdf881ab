/**
 * ECP key exchange groups 19-21 (RFC 5903) and 27-30 (RFC 6954 brainpool).
 * Vectors: RFC 5903 §8 (test/vectors/ke-rfc5903.json), RFC 7027 Appendix A
 * (test/vectors/ke-rfc7027.json), Project Wycheproof ECDH tests
 * (test/vectors/ke-wycheproof-ecdh-*.json), and strongSwan's own group 29 KE
 * payloads from the recorded exchange.
 */
import { readFileSync } from 'node:fs';
import { createECDH } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { p256, p384, p521 } from '@noble/curves/nist.js';
import { brainpoolP256r1, brainpoolP384r1, brainpoolP512r1 } from '@noble/curves/misc.js';
import { keyExchangeGroup } from '../../src/crypto/ke/index.js';
import { ECP_GROUP_SPECS, EcpGroup, basePointKeyExchangeData, isOnCurve } from '../../src/crypto/ke/ecp.js';
import { bigIntToOctets, octetsToBigInt } from '../../src/crypto/ke/octets.js';
import { CryptoError } from '../../src/crypto/types.js';
import { dumpsLabelled } from '../support/charon-log.js';
import { demoFile } from '../support/fixture.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const vectors = <T>(name: string): T => JSON.parse(readFileSync(new URL(`../vectors/${name}`, import.meta.url), 'utf8')) as T;

function ecpGroup(id: number): EcpGroup {
  const group = keyExchangeGroup(id);
  if (!(group instanceof EcpGroup)) throw new Error(`group ${id} is not an ECP group`);
  return group;
}

/** KE payload as RFC 5903 §8 prints it: generic header (next 0, C 0, length), DH Group Num, RESERVED, data. */
function kePayload(groupId: number, data: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt16BE(8 + data.length, 2);
  header.writeUInt16BE(groupId, 4);
  return Buffer.concat([header, data]);
}

const NOBLE = {
  19: p256,
  20: p384,
  21: p521,
  28: brainpoolP256r1,
  29: brainpoolP384r1,
  30: brainpoolP512r1,
} as const;

describe('ECP curve parameters', () => {
  for (const [id, noble] of Object.entries(NOBLE)) {
    it(`group ${id} curve constants equal @noble/curves' independent copy`, () => {
      const { curve } = ecpGroup(Number(id)).spec;
      const c = noble.Point.CURVE();
      expect({ p: curve.p, a: curve.a, b: curve.b, n: curve.n, gx: curve.gx, gy: curve.gy }).toEqual({
        p: c.p,
        a: c.a,
        b: c.b,
        n: c.n,
        gx: c.Gx,
        gy: c.Gy,
      });
      expect(c.h).toBe(1n);
    });
  }

  for (const spec of ECP_GROUP_SPECS) {
    it(`group ${spec.groupId} base point lies on the curve, and OpenSSL maps d=1 to it and d=n-1 to its negation`, () => {
      const { curve, fieldLength } = spec;
      expect(isOnCurve(curve, curve.gx, curve.gy)).toBe(true);
      const group = ecpGroup(spec.groupId);
      expect(group.fromPrivate(bigIntToOctets(1n, fieldLength)).publicValue).toEqual(basePointKeyExchangeData(spec));
      const minusG = Buffer.concat([bigIntToOctets(curve.gx, fieldLength), bigIntToOctets(curve.p - curve.gy, fieldLength)]);
      expect(group.fromPrivate(bigIntToOctets(curve.n - 1n, fieldLength)).publicValue).toEqual(minusG);
      expect(() => group.fromPrivate(bigIntToOctets(curve.n, fieldLength))).toThrow(CryptoError);
      expect(() => group.fromPrivate(Buffer.alloc(fieldLength))).toThrow(CryptoError);
      expect(group.publicValueLength).toBe(2 * fieldLength);
      expect(group.sharedSecretLength).toBe(fieldLength);
    });
  }
});

interface Rfc5903Vector {
  section: string;
  title: string;
  groupId: number;
  i: string;
  gix: string;
  giy: string;
  KEi: string;
  r: string;
  grx: string;
  gry: string;
  KEr: string;
  girx: string;
  giry: string;
}

describe('RFC 5903 §8 test vectors (groups 19, 20, 21)', () => {
  const { vectors: rfc5903 } = vectors<{ vectors: Rfc5903Vector[] }>('ke-rfc5903.json');
  for (const v of rfc5903) {
    const group = ecpGroup(v.groupId);
    const noble = NOBLE[v.groupId as keyof typeof NOBLE];

    it(`RFC 5903 §${v.section} (group ${v.groupId}): i gives g^i, and KE data gix ‖ giy is the RFC's KEi payload`, () => {
      const initiator = group.fromPrivate(hex(v.i));
      expect(initiator.publicValue.toString('hex')).toBe(hex(v.gix + v.giy).toString('hex'));
      expect(kePayload(v.groupId, initiator.publicValue).toString('hex')).toBe(hex(v.KEi).toString('hex'));
    });

    it(`RFC 5903 §${v.section} (group ${v.groupId}): r gives g^r, and KE data grx ‖ gry is the RFC's KEr payload`, () => {
      const responder = group.fromPrivate(hex(v.r));
      expect(responder.publicValue.toString('hex')).toBe(hex(v.grx + v.gry).toString('hex'));
      expect(kePayload(v.groupId, responder.publicValue).toString('hex')).toBe(hex(v.KEr).toString('hex'));
    });

    it(`RFC 5903 §${v.section} (group ${v.groupId}): both sides compute the shared secret girx from the KE payload data`, () => {
      const kei = hex(v.KEi).subarray(8);
      const ker = hex(v.KEr).subarray(8);
      const girx = hex(v.girx);
      expect(group.fromPrivate(hex(v.i)).computeSharedSecret(ker)).toEqual(girx);
      expect(group.fromPrivate(hex(v.r)).computeSharedSecret(kei)).toEqual(girx);
      // The RFC's full point g^ir = (girx, giry), checked with noble's arithmetic.
      const gir = noble.Point.fromAffine({ x: octetsToBigInt(hex(v.grx)), y: octetsToBigInt(hex(v.gry)) })
        .multiply(octetsToBigInt(hex(v.i)))
        .toAffine();
      expect(gir.x).toBe(octetsToBigInt(girx));
      expect(gir.y).toBe(octetsToBigInt(hex(v.giry)));
    });
  }
});

interface Rfc7027Vector {
  section: string;
  curve: string;
  groupId: number;
  dA: string;
  x_qA: string;
  y_qA: string;
  dB: string;
  x_qB: string;
  y_qB: string;
  x_Z: string;
  y_Z: string;
}

describe('RFC 7027 Appendix A brainpool vectors in the IKEv2 encoding of RFC 6954 (groups 28, 29, 30)', () => {
  const { vectors: rfc7027 } = vectors<{ vectors: Rfc7027Vector[] }>('ke-rfc7027.json');
  for (const v of rfc7027) {
    const group = ecpGroup(v.groupId);
    const noble = NOBLE[v.groupId as keyof typeof NOBLE];

    it(`${v.curve} key pairs reproduce RFC 7027 ${v.section} public keys as x ‖ y KE data`, () => {
      expect(group.fromPrivate(hex(v.dA)).publicValue.toString('hex')).toBe((v.x_qA + v.y_qA).toLowerCase());
      expect(group.fromPrivate(hex(v.dB)).publicValue.toString('hex')).toBe((v.x_qB + v.y_qB).toLowerCase());
    });

    it(`${v.curve} ECDH reproduces RFC 7027 ${v.section} shared secret x_Z on both sides`, () => {
      const a = group.fromPrivate(hex(v.dA));
      const b = group.fromPrivate(hex(v.dB));
      expect(a.computeSharedSecret(hex(v.x_qB + v.y_qB)).toString('hex')).toBe(v.x_Z.toLowerCase());
      expect(b.computeSharedSecret(hex(v.x_qA + v.y_qA)).toString('hex')).toBe(v.x_Z.toLowerCase());
      const z = noble.Point.fromAffine({ x: octetsToBigInt(hex(v.x_qB)), y: octetsToBigInt(hex(v.y_qB)) })
        .multiply(octetsToBigInt(hex(v.dA)))
        .toAffine();
      expect(z.y).toBe(octetsToBigInt(hex(v.y_Z)));
    });
  }
});

describe('group 29 (brainpoolP384r1): OpenSSL and @noble/curves agree on random keys', () => {
  const group = ecpGroup(29);
  const { n } = brainpoolP384r1.Point.CURVE();
  it('public values and shared secrets match noble for random private keys (property)', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: n - 1n }), fc.bigInt({ min: 1n, max: n - 1n }), (da, db) => {
        const a = group.fromPrivate(bigIntToOctets(da, 48));
        const b = group.fromPrivate(bigIntToOctets(db, 48));
        const nobleA = brainpoolP384r1.getPublicKey(bigIntToOctets(da, 48), false);
        expect(a.publicValue).toEqual(Buffer.from(nobleA.subarray(1)));
        const nobleShared = brainpoolP384r1.getSharedSecret(bigIntToOctets(db, 48), nobleA, true);
        const shared = b.computeSharedSecret(a.publicValue);
        expect(shared).toEqual(Buffer.from(nobleShared.subarray(1)));
        expect(a.computeSharedSecret(b.publicValue)).toEqual(shared);
      }),
      { numRuns: 6 },
    );
  });

  it('a generated key pair agrees with noble on the shared secret', () => {
    const ours = group.generate();
    const theirs = brainpoolP384r1.utils.randomSecretKey();
    const theirPublic = brainpoolP384r1.getPublicKey(theirs, false).subarray(1);
    const nobleShared = brainpoolP384r1.getSharedSecret(theirs, Buffer.concat([Buffer.from([4]), ours.publicValue]), true);
    expect(ours.computeSharedSecret(theirPublic)).toEqual(Buffer.from(nobleShared.subarray(1)));
  });
});

/** The payloads of an IKE message (RFC 7296 §3.1/§3.2): [type, body] pairs. */
function ikePayloads(message: Buffer): Array<[number, Buffer]> {
  const out: Array<[number, Buffer]> = [];
  let type = message[16]!;
  let off = 28;
  while (type !== 0) {
    const len = message.readUInt16BE(off + 2);
    out.push([type, message.subarray(off + 4, off + len)]);
    type = message[off]!;
    off += len;
  }
  return out;
}

describe("strongSwan 5.9.8's group 29 KE payloads (test/fixtures/strongswan-5.9.8-ecp384bp-demo)", () => {
  // The AUTH octets start with the whole IKE_SA_INIT message (RFC 7296 §2.15):
  // moon's request in moon's first dump, sun's response in the second.
  const octets = dumpsLabelled(demoFile('moon-initiator.charon.log'), "octets = message + nonce + prf(Sk_px, IDx')");
  const group = ecpGroup(29);
  for (const [who, index] of [
    ['moon (initiator)', 0],
    ['sun (responder)', 1],
  ] as const) {
    it(`${who}'s KE data is a valid brainpoolP384r1 point that tunsec accepts`, () => {
      const message = octets[index]!;
      const ke = ikePayloads(message.subarray(0, message.readUInt32BE(24))).find(([type]) => type === 34);
      expect(ke).toBeDefined();
      const body = ke![1];
      expect(body.readUInt16BE(0)).toBe(29);
      const data = body.subarray(4);
      expect(data.length).toBe(96);
      expect(group.generate().computeSharedSecret(data)).toHaveLength(48);
      // and OpenSSL alone agrees it is on the curve
      const openssl = createECDH('brainpoolP384r1');
      openssl.generateKeys();
      expect(openssl.computeSecret(Buffer.concat([Buffer.from([4]), data]))).toHaveLength(48);
    });
  }
});

interface WycheproofEcdhTest {
  tcId: number;
  comment: string;
  flags: string[];
  public?: string;
  keyExchangeData?: string;
  private: string;
  shared: string;
  result: 'valid' | 'acceptable' | 'invalid';
}

describe('Project Wycheproof ECDH tests, through the IKEv2 x ‖ y encoding', () => {
  for (const [file, groupId] of [
    ['ke-wycheproof-ecdh-p256.json', 19],
    ['ke-wycheproof-ecdh-p384.json', 20],
    ['ke-wycheproof-ecdh-p521.json', 21],
    ['ke-wycheproof-ecdh-brainpoolp384r1.json', 29],
  ] as const) {
    const { tests } = vectors<{ tests: WycheproofEcdhTest[] }>(file);
    const group = ecpGroup(groupId);
    const L = group.spec.fieldLength;
    it(`${file}: valid uncompressed points give the published secret, every other point is a CryptoError`, () => {
      let accepted = 0;
      let rejected = 0;
      for (const t of tests) {
        // KE data: an uncompressed SEC 1 point without 0x04; anything else is passed on as is (and must fail).
        let data: Buffer;
        let uncompressed = false;
        if (t.keyExchangeData !== undefined) {
          data = hex(t.keyExchangeData);
          uncompressed = true;
        } else {
          const point = hex(t.public!);
          uncompressed = point.length === 1 + 2 * L && point[0] === 0x04;
          data = uncompressed ? point.subarray(1) : point;
        }
        const d = octetsToBigInt(hex(t.private));
        const ours = group.fromPrivate(bigIntToOctets(d, L));
        const label = `tcId ${t.tcId} (${t.comment}, ${t.flags.join(',')})`;
        if (uncompressed && t.result !== 'invalid') {
          expect(ours.computeSharedSecret(data).toString('hex'), label).toBe(t.shared);
          accepted++;
        } else {
          expect(() => ours.computeSharedSecret(data), label).toThrow(CryptoError);
          rejected++;
        }
      }
      expect(accepted).toBeGreaterThan(10);
      expect(rejected).toBeGreaterThan(10);
    });
  }
});
