/**
 * src/pki against the real strongSwan 5.9.8 PKI of the demo fixture
 * (test/fixtures/strongswan-5.9.8-ecp384bp-demo: RSA-3072 CA, RSA-2048 moon
 * and sun certificates issued 2026-11-23 07:05:21 UTC).
 */
import { describe, expect, it } from 'vitest';
import { spkiSha1 } from '../../src/pki/certificate.js';
import { certMatchesIdentity, identityFromIdPayload, identityToIdPayload, parseIdentity, subjectIdentity } from '../../src/pki/identity.js';
import { checkKeyMatchesCertificate, keyMatchesCertificate, loadCertificates, loadPrivateKey } from '../../src/pki/load.js';
import { TrustStore } from '../../src/pki/store.js';
import { buildChain, validateCertificate } from '../../src/pki/validate.js';
import { readIkeMessages } from '../support/pcap.js';
import { FIXTURE } from './helpers.js';

const [ca] = loadCertificates(FIXTURE.caCert);
const [moon] = loadCertificates(FIXTURE.moonCert);
const [sun] = loadCertificates(FIXTURE.sunCert);
const CA_DN = 'C=CH, O=IKEv2 Interop Test, CN=IKEv2 Interop Test Root CA';
/** A day after the fixture was made (its certificates start 2026-11-23T07:05:21Z). */
const AFTER_CAPTURE = new Date('2026-11-24T00:00:00Z');

function store(): TrustStore {
  const s = new TrustStore();
  s.addTrustAnchor(ca!);
  return s;
}

/** The CERTREQ payloads (type 38) in the unencrypted IKE_SA_INIT response, as Certificate Authority octets. */
function certReqsOfIkeSaInitResponse(): { encoding: number; authorities: Buffer }[] {
  const message = readIkeMessages(FIXTURE.pcap).find((m) => m.payload[18] === 34 /* IKE_SA_INIT */ && (m.payload[19]! & 0x20) !== 0 /* Response */);
  expect(message).toBeDefined();
  const p = message!.payload;
  const out: { encoding: number; authorities: Buffer }[] = [];
  let next = p[16]!;
  let offset = 28;
  while (next !== 0) {
    const length = p.readUInt16BE(offset + 2);
    if (next === 38) out.push({ encoding: p[offset + 4]!, authorities: p.subarray(offset + 5, offset + length) });
    next = p[offset]!;
    offset += length;
  }
  return out;
}

describe('the strongSwan fixture PKI', () => {
  it("parses the CA, moon and sun certificates with strongSwan's DN spelling", () => {
    expect(ca!.subject.text).toBe(CA_DN);
    expect(moon!.subject.text).toBe('C=CH, O=IKEv2 Interop Test, CN=moon');
    expect(sun!.subject.text).toBe('C=CH, O=IKEv2 Interop Test, CN=sun');
    expect(moon!.issuer.text).toBe(CA_DN);
    expect(ca!.basicConstraints).toEqual({ cA: true });
    expect([...ca!.keyUsage!]).toEqual(['keyCertSign', 'cRLSign']);
    expect(moon!.notBefore.toISOString()).toBe('2026-11-23T07:05:21.000Z');
    expect(moon!.authorityKeyIdentifier).toEqual(ca!.subjectKeyIdentifier);
  });

  it("moon's and sun's certificates validate to the CA, with the revocation status noted as unknown", () => {
    for (const peer of [moon!, sun!]) {
      const result = validateCertificate(peer, store(), { now: AFTER_CAPTURE });
      expect(result).toEqual({
        ok: true,
        chain: [peer, ca],
        notes: [`revocation status of '${peer.subject.text}' unknown (no CRL from '${CA_DN}')`],
      });
    }
  });

  it("moon's certificate was not yet valid a minute before the fixture was made", () => {
    const result = validateCertificate(moon!, store(), { now: new Date('2026-11-23T07:04:21Z') });
    expect(result).toEqual({ ok: false, reason: "peer cert 'C=CH, O=IKEv2 Interop Test, CN=moon' not valid until 2026-11-23T07:05:21Z" });
  });

  it("without the CA in the store moon's certificate has no trusted issuer", () => {
    expect(validateCertificate(moon!, new TrustStore(), { now: AFTER_CAPTURE })).toEqual({
      ok: false,
      reason: `no trusted CA for issuer '${CA_DN}'`,
    });
  });

  it("strictcrl rejects moon's certificate because the fixture has no CRL", () => {
    expect(validateCertificate(moon!, store(), { now: AFTER_CAPTURE, strictCrl: true })).toEqual({
      ok: false,
      reason: `no valid CRL for 'C=CH, O=IKEv2 Interop Test, CN=moon' (no CRL from '${CA_DN}')`,
    });
  });

  it("moon's certificate vouches for moon.ikev2.test, 10.77.0.1 and fd77::1", () => {
    for (const id of ['moon.ikev2.test', 'MOON.ikev2.test.', '10.77.0.1', 'fd77::1', 'fd77:0:0:0::1', '@moon.ikev2.test']) {
      expect(certMatchesIdentity(moon!, parseIdentity(id)), id).toEqual({ ok: true });
    }
  });

  it("moon's certificate does not vouch for sun.ikev2.test, 10.77.0.2 or fd77::2, and says which SANs it has", () => {
    const sans = '[DNS:moon.ikev2.test, IP:10.77.0.1, IP:fd77::1]';
    expect(certMatchesIdentity(moon!, parseIdentity('sun.ikev2.test'))).toEqual({
      ok: false,
      reason: `ID sun.ikev2.test not in certificate SANs ${sans}`,
    });
    expect(certMatchesIdentity(moon!, parseIdentity('10.77.0.2'))).toEqual({ ok: false, reason: `ID 10.77.0.2 not in certificate SANs ${sans}` });
    expect(certMatchesIdentity(moon!, parseIdentity('fd77::2'))).toEqual({ ok: false, reason: `ID fd77::2 not in certificate SANs ${sans}` });
  });

  it("an ID_DER_ASN1_DN of moon's subject matches, from text or from the subject itself", () => {
    expect(certMatchesIdentity(moon!, parseIdentity('C=CH, O=IKEv2 Interop Test, CN=moon'))).toEqual({ ok: true });
    expect(certMatchesIdentity(moon!, parseIdentity('c=ch,o=ikev2 interop test,cn=MOON'))).toEqual({ ok: true });
    const fromPayload = identityFromIdPayload(identityToIdPayload(subjectIdentity(moon!)));
    expect(certMatchesIdentity(moon!, fromPayload)).toEqual({ ok: true });
    expect(identityToIdPayload(parseIdentity('C=CH, O=IKEv2 Interop Test, CN=moon')).data).toEqual(moon!.subject.der);
    expect(certMatchesIdentity(sun!, parseIdentity('C=CH, O=IKEv2 Interop Test, CN=moon'))).toEqual({
      ok: false,
      reason: "ID 'C=CH, O=IKEv2 Interop Test, CN=moon' does not match certificate subject 'C=CH, O=IKEv2 Interop Test, CN=sun'",
    });
  });

  it("the PKCS#1 and PKCS#8 files of moon's key load to the same key, which matches moon's certificate only", () => {
    const pkcs1 = loadPrivateKey(FIXTURE.moonKey).key;
    const pkcs8 = loadPrivateKey(FIXTURE.moonKeyPkcs8).key;
    expect(pkcs1.equals(pkcs8)).toBe(true);
    expect(pkcs1.asymmetricKeyDetails?.modulusLength).toBe(2048);
    expect(keyMatchesCertificate(pkcs1, moon!)).toBe(true);
    expect(keyMatchesCertificate(pkcs8, sun!)).toBe(false);
    expect(() => checkKeyMatchesCertificate(pkcs1, sun!, 'moon/key.pem')).toThrow(
      "moon/key.pem: key does not match certificate 'C=CH, O=IKEv2 Interop Test, CN=sun'",
    );
  });

  it("sun's CERTREQ in the IKE_SA_INIT response is the SHA-1 of the CA's SubjectPublicKeyInfo", () => {
    const [certReq, ...more] = certReqsOfIkeSaInitResponse();
    expect(more).toEqual([]);
    expect(certReq!.encoding).toBe(4); // X.509 Certificate - Signature
    expect(certReq!.authorities.toString('hex')).toBe('0a041f36e639aadadee1043b18374bb267453ca1');
    expect(spkiSha1(ca!)).toEqual(certReq!.authorities);
    expect(store().certificateAuthorityHashes()).toEqual([certReq!.authorities]);
    expect(store().requestedTrustAnchors([certReq!.authorities])).toEqual([ca]);
  });

  it("buildChain finds moon's path to the CA (what moon sends with its certificate)", () => {
    const chain = buildChain(moon!, store());
    expect(chain).toEqual({ ok: true, chain: [moon, ca] });
  });
});
