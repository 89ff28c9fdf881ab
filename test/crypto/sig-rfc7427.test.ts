/**
 * RFC 7427 encodings: the Appendix A AlgorithmIdentifier blobs
 * (test/vectors/sig-rfc7427.json), parsing of received AlgorithmIdentifiers,
 * method-14 Authentication Data, and the SIGNATURE_HASH_ALGORITHMS notify
 * (RFC 7427 §4) as strongSwan sent it in the recorded exchange.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  ECDSA_WITH_SHA1,
  ECDSA_WITH_SHA256,
  ECDSA_WITH_SHA384,
  ECDSA_WITH_SHA512,
  RSASSA_PSS_SHA256,
  RSASSA_PSS_SHA384,
  RSASSA_PSS_SHA512,
  SHA1_WITH_RSA_ENCRYPTION,
  SHA256_WITH_RSA_ENCRYPTION,
  SHA384_WITH_RSA_ENCRYPTION,
  SHA512_WITH_RSA_ENCRYPTION,
  SignatureHashAlgorithm,
  decodeSignatureHashAlgorithms,
  encodeDigitalSignatureAuthData,
  encodeSignatureHashAlgorithms,
  parseAlgorithmIdentifier,
  parseDigitalSignatureAuthData,
  type SignatureAlgorithm,
} from '../../src/crypto/rfc7427.js';
import { CryptoError } from '../../src/crypto/types.js';
import { dumpsLabelled } from '../support/charon-log.js';
import { demoFile } from '../support/fixture.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

interface Blob {
  section: string;
  name: string;
  der: string;
  derWithoutDefaultTrailer?: string;
}
const { blobs } = JSON.parse(readFileSync(new URL('../vectors/sig-rfc7427.json', import.meta.url), 'utf8')) as { blobs: Blob[] };
const blob = (section: string): Blob => {
  const found = blobs.find((b) => b.section === section);
  if (!found) throw new Error(`no blob ${section}`);
  return found;
};

describe('RFC 7427 Appendix A AlgorithmIdentifier blobs', () => {
  const sent: Array<[string, SignatureAlgorithm]> = [
    ['A.1.1', SHA1_WITH_RSA_ENCRYPTION],
    ['A.1.2', SHA256_WITH_RSA_ENCRYPTION],
    ['A.1.3', SHA384_WITH_RSA_ENCRYPTION],
    ['A.1.4', SHA512_WITH_RSA_ENCRYPTION],
    ['A.3.1', ECDSA_WITH_SHA1],
    ['A.3.2', ECDSA_WITH_SHA256],
    ['A.3.3', ECDSA_WITH_SHA384],
    ['A.3.4', ECDSA_WITH_SHA512],
  ];
  for (const [section, algorithm] of sent) {
    it(`${algorithm.name} is sent byte-exact as RFC 7427 ${section} lists it, and parses back`, () => {
      expect(algorithm.algorithmIdentifier.toString('hex')).toBe(blob(section).der);
      expect(algorithm.name).toBe(blob(section).name);
      expect(parseAlgorithmIdentifier(hex(blob(section).der))).toBe(algorithm);
    });
  }

  it('RSASSA-PSS with SHA-256 is sent as RFC 7427 A.4.3 in DER, i.e. without the DEFAULT trailerField (X.690 §11.5)', () => {
    const a43 = blob('A.4.3');
    expect(RSASSA_PSS_SHA256.algorithmIdentifier.toString('hex')).toBe(a43.derWithoutDefaultTrailer);
    // Derivation from the published bytes: drop "[3] { INTEGER 1 }" (a3 03 02 01 01), shorten both SEQUENCE lengths by 5.
    const published = hex(a43.der);
    expect(published.subarray(-5).toString('hex')).toBe('a303020101');
    const derived = Buffer.from(published.subarray(0, -5));
    derived[1] = derived[1]! - 5;
    derived[14] = derived[14]! - 5;
    expect(RSASSA_PSS_SHA256.algorithmIdentifier).toEqual(derived);
    expect(RSASSA_PSS_SHA256).toMatchObject({ scheme: 'rsassa-pss', digest: 'sha256', saltLength: 32 });
  });

  it('RFC 7427 A.4.3 as published (explicit trailerField 1) parses to RSASSA-PSS with SHA-256, salt 32', () => {
    expect(parseAlgorithmIdentifier(hex(blob('A.4.3').der))).toBe(RSASSA_PSS_SHA256);
    expect(parseAlgorithmIdentifier(hex(blob('A.4.3').derWithoutDefaultTrailer!))).toBe(RSASSA_PSS_SHA256);
  });

  it('RSASSA-PSS with SHA-384 and SHA-512 are the A.4.3 structure with the hash OID and salt length replaced', () => {
    const a43 = hex(blob('A.4.3').derWithoutDefaultTrailer!);
    // id-sha256 ends 02 01 at offsets 29 and 59 (..04 02 01); salt INTEGER 0x20 is the last octet.
    for (const [algorithm, hashOctet, salt] of [
      [RSASSA_PSS_SHA384, 0x02, 0x30],
      [RSASSA_PSS_SHA512, 0x03, 0x40],
    ] as const) {
      const expected = Buffer.from(a43);
      expect([expected[29], expected[59]]).toEqual([0x01, 0x01]);
      expected[29] = hashOctet;
      expected[59] = hashOctet;
      expected[expected.length - 1] = salt;
      expect(algorithm.algorithmIdentifier).toEqual(expected);
      expect(parseAlgorithmIdentifier(algorithm.algorithmIdentifier)).toBe(algorithm);
    }
  });

  for (const section of ['A.2.1', 'A.2.2']) {
    it(`${blob(section).name} (RFC 7427 ${section}, DSA) is rejected with CryptoError: unsupported`, () => {
      expect(() => parseAlgorithmIdentifier(hex(blob(section).der))).toThrow(CryptoError);
    });
  }

  for (const section of ['A.4.1', 'A.4.2']) {
    it(`${blob(section).name} (RFC 7427 ${section}, i.e. SHA-1 defaults) is rejected with CryptoError: unsupported`, () => {
      expect(() => parseAlgorithmIdentifier(hex(blob(section).der))).toThrow(/SHA-1/);
    });
  }
});

describe('parsing AlgorithmIdentifiers other stacks may send', () => {
  it('sha256WithRSAEncryption without the NULL parameters is accepted', () => {
    expect(parseAlgorithmIdentifier(hex('300b 0609 2a864886f70d01010b'))).toBe(SHA256_WITH_RSA_ENCRYPTION);
  });

  it('ecdsa-with-SHA384 with NULL parameters is accepted', () => {
    expect(parseAlgorithmIdentifier(hex('300c 0608 2a8648ce3d040303 0500'))).toBe(ECDSA_WITH_SHA384);
  });

  it('RSASSA-PSS whose hash AlgorithmIdentifiers omit NULL is accepted (RFC 4055 §2.1)', () => {
    // SEQUENCE { rsassaPss, SEQUENCE { [0] { SEQ { sha256 } }, [1] { SEQ { mgf1, SEQ { sha256 } } }, [2] { 32 } } }
    const der = hex(
      '303d 0609 2a864886f70d01010a 3030' +
        'a00d 300b 0609 608648016503040201' +
        'a11a 3018 0609 2a864886f70d010108 300b 0609 608648016503040201' +
        'a203 020120',
    );
    expect(parseAlgorithmIdentifier(der)).toBe(RSASSA_PSS_SHA256);
  });

  it('RSASSA-PSS with another salt length is accepted and keeps it', () => {
    const der = Buffer.from(RSASSA_PSS_SHA256.algorithmIdentifier);
    der[der.length - 1] = 20;
    expect(parseAlgorithmIdentifier(der)).toMatchObject({ scheme: 'rsassa-pss', digest: 'sha256', saltLength: 20 });
  });

  it('RSASSA-PSS whose MGF1 hash differs from the signature hash is rejected with CryptoError', () => {
    const der = Buffer.from(RSASSA_PSS_SHA256.algorithmIdentifier);
    der[59] = 0x02; // MGF1 with SHA-384
    expect(() => parseAlgorithmIdentifier(der)).toThrow(/MGF1 hash/);
  });

  it('RSASSA-PSS with trailerField 2 is rejected with CryptoError', () => {
    const der = hex(blob('A.4.3').der);
    der[der.length - 1] = 2;
    expect(() => parseAlgorithmIdentifier(der)).toThrow(/trailerField/);
  });

  it('non-minimal lengths, trailing octets, truncation and unknown OIDs are rejected with CryptoError', () => {
    for (const bad of [
      '30810d06092a864886f70d01010b0500', // long-form length for 13
      '300d06092a864886f70d01010b050000', // trailing octet
      '300d06092a864886f70d01010b05', // truncated
      '300d06092a864886f70d01010e0500', // sha224WithRSAEncryption: not supported
      '300706032b65700500', // Ed25519 with NULL parameters (RFC 8410 §3: absent)
      '3100',
      '',
    ]) {
      expect(() => parseAlgorithmIdentifier(hex(bad)), bad).toThrow(CryptoError);
    }
  });

  it('random octet strings never raise anything but CryptoError (property)', () => {
    const known = blobs.map((b) => hex(b.der));
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 80 }),
          // mutate a known blob: flip one octet
          fc.tuple(fc.constantFrom(...known), fc.nat(), fc.integer({ min: 1, max: 255 })).map(([b, i, x]) => {
            const m = Buffer.from(b);
            m[i % m.length] = m[i % m.length]! ^ x;
            return m;
          }),
        ),
        (data) => {
          try {
            parseAlgorithmIdentifier(data);
          } catch (err) {
            if (!(err instanceof CryptoError)) throw err;
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('Digital Signature Authentication Data (RFC 7427 §3)', () => {
  it('is ASN.1 Length ‖ AlgorithmIdentifier ‖ Signature Value, and parses back', () => {
    const signature = Buffer.from('0102030405', 'hex');
    const authData = encodeDigitalSignatureAuthData(SHA256_WITH_RSA_ENCRYPTION, signature);
    expect(authData.toString('hex')).toBe(`0f${blob('A.1.2').der}0102030405`);
    const parsed = parseDigitalSignatureAuthData(authData);
    expect(parsed.algorithm).toBe(SHA256_WITH_RSA_ENCRYPTION);
    expect(parsed.signature).toEqual(signature);
    expect(parsed.algorithmIdentifier.toString('hex')).toBe(blob('A.1.2').der);
  });

  it('keeps the AlgorithmIdentifier exactly as received (A.4.3 with trailerField)', () => {
    const a43 = hex(blob('A.4.3').der);
    const parsed = parseDigitalSignatureAuthData(Buffer.concat([Buffer.from([a43.length]), a43, Buffer.alloc(4, 7)]));
    expect(parsed.algorithm).toBe(RSASSA_PSS_SHA256);
    expect(parsed.algorithmIdentifier).toEqual(a43);
  });

  it('empty data, a length past the end, a missing signature and a length that splits the DER are CryptoErrors', () => {
    const id = SHA256_WITH_RSA_ENCRYPTION.algorithmIdentifier;
    for (const bad of [
      Buffer.alloc(0),
      Buffer.from([0x40, 1, 2, 3]),
      Buffer.concat([Buffer.from([id.length]), id]),
      Buffer.concat([Buffer.from([id.length - 1]), id, Buffer.from([1, 2, 3])]),
      Buffer.concat([Buffer.from([id.length + 1]), id, Buffer.from([1, 2, 3])]),
    ]) {
      expect(() => parseDigitalSignatureAuthData(bad)).toThrow(CryptoError);
    }
  });

  it('random Authentication Data never raises anything but CryptoError (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), (data) => {
        try {
          parseDigitalSignatureAuthData(data);
        } catch (err) {
          if (!(err instanceof CryptoError)) throw err;
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe('SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4)', () => {
  it('hash IDs are the IANA values: 1 SHA1, 2 SHA2-256, 3 SHA2-384, 4 SHA2-512, 5 Identity', () => {
    expect([
      SignatureHashAlgorithm.SHA1,
      SignatureHashAlgorithm.SHA2_256,
      SignatureHashAlgorithm.SHA2_384,
      SignatureHashAlgorithm.SHA2_512,
      SignatureHashAlgorithm.IDENTITY,
    ]).toEqual([1, 2, 3, 4, 5]);
  });

  it("decodes strongSwan's notify from the recorded IKE_SA_INIT: sha256 sha384 sha512 identity", () => {
    // moon's IKE_SA_INIT request is the start of its AUTH octets (RFC 7296 §2.15).
    const octets = dumpsLabelled(demoFile('moon-initiator.charon.log'), "octets = message + nonce + prf(Sk_px, IDx')")[0]!;
    const message = octets.subarray(0, octets.readUInt32BE(24));
    let type = message[16]!;
    let off = 28;
    let data: Buffer | undefined;
    while (type !== 0) {
      const len = message.readUInt16BE(off + 2);
      // Notify (41): Protocol ID, SPI Size, Notify Message Type, SPI, data
      if (type === 41 && message.readUInt16BE(off + 6) === 16431) data = message.subarray(off + 8 + message[off + 5]!, off + len);
      type = message[off]!;
      off += len;
    }
    expect(data).toBeDefined();
    const ids = decodeSignatureHashAlgorithms(data!);
    // moon's log: "sending supported signature hash algorithms: sha256 sha384 sha512 identity"
    expect(ids).toEqual([2, 3, 4, 5]);
    expect(encodeSignatureHashAlgorithms(ids)).toEqual(data);
  });

  it('odd-length notify data is a CryptoError; unknown IDs are kept for the caller to ignore', () => {
    expect(() => decodeSignatureHashAlgorithms(Buffer.from([0, 2, 0]))).toThrow(CryptoError);
    expect(decodeSignatureHashAlgorithms(Buffer.from([0x04, 0x00, 0, 2]))).toEqual([1024, 2]);
  });
});
