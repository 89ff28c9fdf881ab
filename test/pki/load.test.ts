/** Loading certificates, CRLs and private keys (src/pki/load.ts, pem.ts). */
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PkiError } from '../../src/pki/errors.js';
import { issueCrl } from '../../src/pki/issue.js';
import {
  keyFilePermissionWarning,
  keyMatchesCertificate,
  loadCertificates,
  loadCrls,
  loadPrivateKey,
  readCertificates,
  readCrls,
  readPrivateKey,
} from '../../src/pki/load.js';
import { decodePem, encodePem } from '../../src/pki/pem.js';
import { FIXTURE, endEntity, root, tempDir } from './helpers.js';

const tmp = tempDir();
afterAll(tmp.cleanup);
let counter = 0;
function file(name: string, content: string | Buffer, mode = 0o600): string {
  const path = join(tmp.dir, `${counter++}-${name}`);
  writeFileSync(path, content);
  chmodSync(path, mode);
  return path;
}

describe('certificates', () => {
  it('PEM and DER of the same certificate give the same certificate', () => {
    const [fromPem] = loadCertificates(FIXTURE.moonCert);
    const [fromDer] = readCertificates(fromPem!.der, 'moon.der');
    expect(fromDer!.fingerprint).toBe(fromPem!.fingerprint);
    expect(fromDer!.source).toBe('moon.der');
  });

  it('a PEM bundle yields every CERTIFICATE block in order and skips other blocks', () => {
    const ca = root();
    const sun = endEntity(ca);
    const text = `# comment\n${sun.certificatePem}${encodePem('EC PARAMETERS', Buffer.from('06082a8648ce3d030107', 'hex'))}${ca.certificatePem}`;
    const certs = readCertificates(Buffer.from(text), 'bundle.pem');
    expect(certs.map((c) => c.subject.text)).toEqual(['CN=sun', 'C=CH, O=tunsec test, CN=Root']);
    expect(certs.map((c) => c.source)).toEqual(['bundle.pem[0]', 'bundle.pem[1]']);
  });

  it("a PEM file without certificates is 'moon.pem: no CERTIFICATE block'", () => {
    expect(() => readCertificates(readFileSync(FIXTURE.moonKey), 'moon.pem')).toThrow(new PkiError('moon.pem: no CERTIFICATE block'));
  });

  it('a PEM block with broken base64 or without an END line is named', () => {
    expect(() => readCertificates(Buffer.from('-----BEGIN CERTIFICATE-----\nMII*\n-----END CERTIFICATE-----\n'), 'x.pem')).toThrow(
      'x.pem: "CERTIFICATE" block is not valid base64',
    );
    expect(() => readCertificates(Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB\n'), 'x.pem')).toThrow('x.pem: "CERTIFICATE" block has no END line');
  });

  it('a truncated certificate says where DER parsing stopped', () => {
    const [moon] = loadCertificates(FIXTURE.moonCert);
    expect(() => readCertificates(moon!.der.subarray(0, 500), 'cut.der')).toThrow(
      'cut.der: not a valid X.509 certificate (Certificate: 1024 content octets announced, 496 present)',
    );
    const pem = encodePem('CERTIFICATE', moon!.der.subarray(0, 500));
    expect(() => readCertificates(Buffer.from(pem), 'cut.pem')).toThrow(/^cut\.pem: not a valid X\.509 certificate \(/);
  });

  it('missing files, empty files and directories get a clear error', () => {
    expect(() => loadCertificates(join(tmp.dir, 'nope.pem'))).toThrow(`${join(tmp.dir, 'nope.pem')}: cannot read certificate (no such file)`);
    const empty = file('empty.pem', '');
    expect(() => loadCertificates(empty)).toThrow(`${empty}: empty file`);
    expect(() => loadCertificates(tmp.dir)).toThrow(`${tmp.dir}: cannot read certificate (is a directory)`);
  });
});

describe('CRLs', () => {
  it('PEM and DER CRL files load; a certificate file is not a CRL', () => {
    const ca = root();
    const issued = issueCrl(ca, { revoked: [{ serialNumber: 7, reason: 'superseded' }] });
    const [pem] = loadCrls(file('ca.crl.pem', issued.pem));
    const [der] = loadCrls(file('ca.crl', issued.der));
    expect(pem!.fingerprint).toBe(der!.fingerprint);
    expect([...pem!.revoked.values()].map((r) => r.reason)).toEqual(['superseded']);
    expect(() => readCrls(Buffer.from(ca.certificatePem), 'ca.pem')).toThrow('ca.pem: no X509 CRL block');
    expect(() => readCrls(ca.certificate.der, 'ca.der')).toThrow(/^ca\.der: not a valid CRL \(/);
  });
});

describe('private keys', () => {
  it('PKCS#1, PKCS#8 and DER forms of an RSA key are the same key', () => {
    const pkcs1 = readPrivateKey(readFileSync(FIXTURE.sunKey), 'key.pem');
    const pkcs8 = readPrivateKey(readFileSync(FIXTURE.sunKeyPkcs8), 'key.pkcs8.pem');
    const der1 = readPrivateKey(pkcs1.export({ type: 'pkcs1', format: 'der' }), 'key.der');
    const der8 = readPrivateKey(pkcs1.export({ type: 'pkcs8', format: 'der' }), 'key8.der');
    for (const k of [pkcs8, der1, der8]) expect(k.equals(pkcs1)).toBe(true);
  });

  it('SEC1 and PKCS#8 EC keys load for P-256, P-384, P-521 and brainpool curves', () => {
    for (const namedCurve of ['prime256v1', 'secp384r1', 'secp521r1', 'brainpoolP256r1', 'brainpoolP384r1', 'brainpoolP512r1']) {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve });
      const sec1 = readPrivateKey(Buffer.from(privateKey.export({ type: 'sec1', format: 'pem' })), 'ec.pem');
      const pkcs8 = readPrivateKey(Buffer.from(privateKey.export({ type: 'pkcs8', format: 'pem' })), 'ec8.pem');
      const der = readPrivateKey(privateKey.export({ type: 'sec1', format: 'der' }), 'ec.der');
      expect(sec1.asymmetricKeyDetails?.namedCurve, namedCurve).toBe(namedCurve);
      expect(pkcs8.equals(sec1) && der.equals(sec1), namedCurve).toBe(true);
    }
  });

  it('an SEC1 key file with an EC PARAMETERS block in front (openssl ecparam -genkey) loads', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const text = `${encodePem('EC PARAMETERS', Buffer.from('06082a8648ce3d030107', 'hex'))}${privateKey.export({ type: 'sec1', format: 'pem' })}`;
    expect(readPrivateKey(Buffer.from(text), 'ec.pem').equals(privateKey)).toBe(true);
  });

  it("encrypted keys are refused with 'key.pem: encrypted keys are not supported'", () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'secret' });
    const sec1 = privateKey.export({ type: 'sec1', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'secret' });
    const pkcs8Der = privateKey.export({ type: 'pkcs8', format: 'der', cipher: 'aes-256-cbc', passphrase: 'secret' });
    const message = 'key.pem: encrypted keys are not supported (store the key unencrypted, mode 0600)';
    expect(() => readPrivateKey(Buffer.from(pkcs8), 'key.pem')).toThrow(message);
    expect(() => readPrivateKey(Buffer.from(sec1), 'key.pem')).toThrow(message);
    expect(() => readPrivateKey(pkcs8Der, 'key.pem')).toThrow(message);
  });

  it('Ed25519 and Ed448 keys load from PKCS#8 PEM and DER (RFC 8410 §7)', () => {
    for (const type of ['ed25519', 'ed448'] as const) {
      const { privateKey } = generateKeyPairSync(type as 'ed25519');
      const pem = Buffer.from(privateKey.export({ type: 'pkcs8', format: 'pem' }));
      expect(pem.toString()).toMatch(/^-----BEGIN PRIVATE KEY-----/);
      expect(readPrivateKey(pem, 'ed.pem').equals(privateKey)).toBe(true);
      expect(readPrivateKey(privateKey.export({ type: 'pkcs8', format: 'der' }), 'ed.der').asymmetricKeyType).toBe(type);
    }
  });

  it('other key types and non-keys are refused by name', () => {
    const { privateKey } = generateKeyPairSync('x25519');
    expect(() => readPrivateKey(Buffer.from(privateKey.export({ type: 'pkcs8', format: 'pem' })), 'x.pem')).toThrow(
      'x.pem: x25519 keys are not supported (RSA, ECDSA, Ed25519 and Ed448 only)',
    );
    expect(() => readPrivateKey(readFileSync(FIXTURE.moonCert), 'cert.pem')).toThrow(
      'cert.pem: no private key block (RSA PRIVATE KEY, EC PRIVATE KEY or PRIVATE KEY)',
    );
    expect(() => readPrivateKey(Buffer.from('garbage that is not a key'), 'junk.key')).toThrow(
      'junk.key: not a private key (neither PEM nor DER PKCS#8, PKCS#1 or SEC1)',
    );
    const corrupt = encodePem('RSA PRIVATE KEY', Buffer.from('3003020100', 'hex'));
    expect(() => readPrivateKey(Buffer.from(corrupt), 'bad.pem')).toThrow(/^bad\.pem: not a valid PKCS#1 RSA private key \(/);
    const two = readFileSync(FIXTURE.moonKey, 'utf8') + readFileSync(FIXTURE.sunKey, 'utf8');
    expect(() => readPrivateKey(Buffer.from(two), 'two.pem')).toThrow('two.pem: 2 private keys in one file, expected one');
  });

  it('a key file readable by group or others loads with a warning for the log', () => {
    const pem = readFileSync(FIXTURE.moonKey);
    const loose = file('loose.pem', pem, 0o644);
    const tight = file('tight.pem', pem, 0o600);
    expect(loadPrivateKey(loose).warnings).toEqual([`${loose}: private key file is accessible by group and others (mode 0644); chmod 600 recommended`]);
    expect(loadPrivateKey(tight).warnings).toEqual([]);
    expect(keyFilePermissionWarning(file('group.pem', pem, 0o640))).toMatch(/accessible by group \(mode 0640\)/);
  });

  it('a loaded key matches its own certificate and not another', () => {
    const ca = root();
    const sun = endEntity(ca);
    const key = loadPrivateKey(file('sun.key', sun.privateKeyPem!)).key;
    expect(keyMatchesCertificate(key, sun.certificate)).toBe(true);
    expect(keyMatchesCertificate(key, ca.certificate)).toBe(false);
  });
});

describe('PEM', () => {
  it('RFC 1421 headers are read, CRLF line ends and surrounding text ignored', () => {
    const text =
      'Bag Attributes\r\n-----BEGIN RSA PRIVATE KEY-----\r\nProc-Type: 4,ENCRYPTED\r\nDEK-Info: AES-128-CBC,00\r\n\r\nAAEC\r\n-----END RSA PRIVATE KEY-----\r\n';
    const [block] = decodePem(text, 'k.pem');
    expect(block!.label).toBe('RSA PRIVATE KEY');
    expect(block!.headers.get('Proc-Type')).toBe('4,ENCRYPTED');
    expect(block!.der).toEqual(Buffer.from([0, 1, 2]));
    expect(() => readPrivateKey(Buffer.from(text), 'k.pem')).toThrow('k.pem: encrypted keys are not supported');
  });
});
