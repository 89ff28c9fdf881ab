/**
 * pki: the certificate / CRL parsing path — what a peer's CERT payload
 * (X.509 DER), a CRL file, a PEM bundle or an ID_DER_ASN1_DN payload goes
 * through in src/pki, and what is done with the result (path validation
 * against the fixture CA with the CRL given, ID ↔ SAN matching, CERTREQ
 * hashes, formatting for logs).
 *
 * Input: [mode][octets …]; mode % 4 = 0 certificate DER, 1 CRL DER,
 * 2 PEM/DER bundle (certificates and CRLs), 3 DN (DER and as text).
 * Acceptable: PkiError. Seeds: the fixture's CA, moon and sun certificates,
 * CRLs issued by a throwaway CA (fuzz/seed.ts), their PEM, moon's subject DN.
 */
import {
  certMatchesIdentity,
  dnToString,
  findRevoked,
  formatGeneralName,
  formatSerial,
  formatTime,
  identityFromIdPayload,
  identityToString,
  nameFromString,
  parseCertificate,
  parseCrl,
  parseIdentity,
  PkiError,
  readCertificates,
  readCrls,
  spkiSha1,
  subjectIdentity,
  TrustStore,
  validateCertificate,
  type Certificate,
} from '../../src/pki/index.js';
import { certificatesDer } from '../lib/fixtures.js';
import { featureOf, type FuzzTarget } from '../lib/target.js';

let ca: Certificate;
let moon: Certificate;

const IDS = [
  { type: 'fqdn', value: 'moon.ikev2.test' },
  { type: 'ipv4', value: '10.77.0.1' },
  { type: 'rfc822', value: 'moon@ikev2.test' },
] as const;

function useCertificate(cert: Certificate): string {
  formatSerial(cert.serialNumber);
  formatTime(cert.notBefore);
  cert.subjectAltNames.forEach(formatGeneralName);
  spkiSha1(cert);
  identityToString(subjectIdentity(cert));
  const matches = IDS.map((id) => (certMatchesIdentity(cert, id).ok ? 1 : 0)).join('');
  const store = new TrustStore();
  store.addTrustAnchor(ca);
  const v = validateCertificate(cert, store);
  return `cert:v${cert.version}:san${cert.subjectAltNames.length}:ext${cert.extensions.length}:crit${cert.unsupportedCriticalExtensions.length}:${matches}:${v.ok ? 'valid' : featureOf('invalid', v.reason ?? '')}`;
}

export const target: FuzzTarget = {
  name: 'pki',
  kind: 'pki',
  description: 'X.509 certificate / CRL DER, PEM bundles, DNs → src/pki parsers, path validation with CRLs, ID matching',
  maxLength: 8192,
  dictionary: [
    Buffer.from([0x30, 0x82]),
    Buffer.from([0x30, 0x81]),
    Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x11]), // subjectAltName
    Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x13]), // basicConstraints
    Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x0f]), // keyUsage
    Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x1f]), // cRLDistributionPoints
    Buffer.from([0x01, 0x01, 0xff]), // BOOLEAN TRUE
    Buffer.from([0xa0, 0x03, 0x02, 0x01, 0x02]), // version v3
    Buffer.from([0x17, 0x0d]), // UTCTime
    Buffer.from([0x18, 0x0f]), // GeneralizedTime
    Buffer.from([0x82]), // dNSName
    Buffer.from([0x87, 0x04]), // iPAddress
    Buffer.from('-----BEGIN CERTIFICATE-----\n'),
    Buffer.from('-----END CERTIFICATE-----\n'),
    Buffer.from('-----BEGIN X509 CRL-----\n'),
    Buffer.from('CN='),
  ],
  setup() {
    const certs = certificatesDer();
    ca = parseCertificate(certs[0]!.der, 'fixture CA');
    moon = parseCertificate(certs[1]!.der, 'fixture moon');
  },
  run(data) {
    if (data.length === 0) return 'empty';
    const body = data.subarray(1);
    try {
      switch (data[0]! % 4) {
        case 0:
          return useCertificate(parseCertificate(body, 'peer CERT payload'));
        case 1: {
          const crl = parseCrl(body, 'fuzz.crl');
          findRevoked(crl, moon.serialNumber);
          const store = new TrustStore();
          store.addTrustAnchor(ca);
          store.addCrl(crl);
          const v = validateCertificate(moon, store);
          return `crl:${crl.revoked.size}:${crl.unsupportedCriticalExtensions.length}:${v.ok ? 'valid' : featureOf('invalid', v.reason ?? '')}`;
        }
        case 2: {
          const features: string[] = [];
          try {
            features.push(...readCertificates(body, 'bundle.pem').map(useCertificate));
          } catch (err) {
            if (!(err instanceof PkiError)) throw err;
            features.push(featureOf('certs', err.message));
          }
          features.push(`crls:${readCrls(body, 'bundle.crl').length}`);
          return features.join('|');
        }
        default: {
          const text = dnToString(body);
          const id = identityFromIdPayload({ idType: 9, data: body });
          identityToString(id);
          const features = [`dn:${text === null ? 'null' : 'ok'}`];
          const asText = body.toString('utf8');
          try {
            nameFromString(asText);
            identityToString(parseIdentity(asText));
            features.push('text:ok');
          } catch (err) {
            if (!(err instanceof PkiError)) throw err;
            features.push(featureOf('text', err.message));
          }
          return features.join('|');
        }
      }
    } catch (err) {
      if (err instanceof PkiError) return featureOf(`pki${data[0]! % 4}`, err.message.slice(0, 60));
      throw err;
    }
  },
};
