/**
 * AUTH against a real peer: the AUTH payloads strongSwan 5.9.8 put on the
 * wire in test/fixtures/strongswan-5.9.8-ecp384bp-demo, rebuilt from the
 * capture with tunsec's codec (reassembled IKE_AUTH fragments), signed-octets
 * construction (RFC 7296 §2.15), PRF and RFC 7427 signatures.
 */
import { describe, expect, it } from 'vitest';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { prfFor } from '../../../src/crypto/prf.js';
import { signAuth, verifyAuth, SignatureAuthMethod } from '../../../src/crypto/signature.js';
import { SHA256_WITH_RSA_ENCRYPTION } from '../../../src/crypto/rfc7427.js';
import { PrfId } from '../../../src/ike/transforms.js';
import { FragmentReassembler, PayloadType, decodeMessage, type Payload, type PayloadOf } from '../../../src/ike/codec/index.js';
import { signedOctets } from '../../../src/ike/auth/signed-octets.js';
import { demoIkeDatagrams, senderAead } from '../codec/strongswan-demo.js';
import { demoFile } from '../../support/fixture.js';
import { dumpsLabelled } from '../../support/charon-log.js';

const prf = prfFor(PrfId.HMAC_SHA2_384)!;
const datagrams = demoIkeDatagrams();
const frame = (n: number): Buffer => datagrams.find((d) => d.frame === n)!.bytes;
const first = <T extends Payload['type']>(payloads: Payload[], type: T): PayloadOf<T> => {
  const p = payloads.find((x) => x.type === type);
  if (!p) throw new Error(`no payload ${String(type)}`);
  return p as PayloadOf<T>;
};

/** IKE_AUTH request (frames 10, 11) and response (12, 13), reassembled (RFC 7383 §2.6). */
function reassembled(frames: number[]): Payload[] {
  const r = new FragmentReassembler();
  let result;
  for (const f of frames) {
    const bytes = frame(f);
    const msg = decodeMessage(bytes);
    result = r.add(msg, bytes, senderAead(msg.header));
  }
  if (result?.status !== 'complete') throw new Error(`IKE_AUTH frames ${frames.join(',')} did not reassemble: ${JSON.stringify(result)}`);
  return result.payloads;
}

const initSaInitRequest = frame(8);
const initSaInitResponse = frame(9);
const nonceI = first(decodeMessage(initSaInitRequest).payloads, PayloadType.NONCE).nonce;
const nonceR = first(decodeMessage(initSaInitResponse).payloads, PayloadType.NONCE).nonce;
const authRequest = reassembled([10, 11]);
const authResponse = reassembled([12, 13]);

const moonLog = demoFile('moon-initiator.charon.log');
const [skPi, skPr] = [dumpsLabelled(moonLog, 'Sk_pi secret')[0]!, dumpsLabelled(moonLog, 'Sk_pr secret')[0]!];
const loggedOctets = dumpsLabelled(moonLog, "octets = message + nonce + prf(Sk_px, IDx')");
const cert = (host: string) => new X509Certificate(readFileSync(demoFile(`pki/${host}/cert.pem`)));

describe('AUTH payloads of a real strongSwan 5.9.8 IKE_AUTH (RFC 7296 §2.15, RFC 7427)', () => {
  const moonOctets = signedOctets({ realMessage: initSaInitRequest, peerNonce: nonceR, prf, skP: skPi, id: first(authRequest, PayloadType.IDi) });
  const sunOctets = signedOctets({ realMessage: initSaInitResponse, peerNonce: nonceI, prf, skP: skPr, id: first(authResponse, PayloadType.IDr) });

  it("the initiator's signed octets built from the capture equal the octets moon logged", () => {
    expect(moonOctets.toString('hex')).toBe(loggedOctets[0]!.toString('hex'));
  });

  it("the responder's signed octets built from the capture equal the octets moon verified", () => {
    expect(sunOctets.toString('hex')).toBe(loggedOctets[1]!.toString('hex'));
  });

  it("moon's AUTH (method 14, sha256WithRSAEncryption) verifies with moon's certificate", () => {
    const auth = first(authRequest, PayloadType.AUTH);
    expect(auth.method).toBe(SignatureAuthMethod.DIGITAL_SIGNATURE);
    expect(verifyAuth({ method: auth.method, publicKey: cert('moon').publicKey, octets: moonOctets, authData: auth.data })).toBe(true);
  });

  it("sun's AUTH verifies with sun's certificate and not with moon's", () => {
    const auth = first(authResponse, PayloadType.AUTH);
    expect(verifyAuth({ method: auth.method, publicKey: cert('sun').publicKey, octets: sunOctets, authData: auth.data })).toBe(true);
    expect(verifyAuth({ method: auth.method, publicKey: cert('moon').publicKey, octets: sunOctets, authData: auth.data })).toBe(false);
  });

  it("signing moon's octets with moon's key reproduces moon's AUTH payload octet for octet (PKCS#1 v1.5 is deterministic)", () => {
    const key = createPrivateKey(readFileSync(demoFile('pki/moon/key.pem')));
    const signed = signAuth({ method: SignatureAuthMethod.DIGITAL_SIGNATURE, privateKey: key, octets: moonOctets, algorithm: SHA256_WITH_RSA_ENCRYPTION });
    expect(signed.authData.toString('hex')).toBe(first(authRequest, PayloadType.AUTH).data.toString('hex'));
  });

  it('an AUTH over octets with one nonce bit flipped does not verify', () => {
    const auth = first(authRequest, PayloadType.AUTH);
    const flipped = Buffer.from(nonceR);
    flipped[0]! ^= 1;
    const octets = signedOctets({ realMessage: initSaInitRequest, peerNonce: flipped, prf, skP: skPi, id: first(authRequest, PayloadType.IDi) });
    expect(verifyAuth({ method: auth.method, publicKey: cert('moon').publicKey, octets, authData: auth.data })).toBe(false);
  });
});
