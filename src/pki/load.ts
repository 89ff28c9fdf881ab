/**
 * Certificates, CRLs and private keys from files or bytes, PEM or DER.
 *
 * - Certificates: a PEM file may hold several CERTIFICATE blocks; a
 *   "fullchain" file (Let's Encrypt style) is the end-entity certificate
 *   first, then its intermediates. A DER file holds one certificate.
 * - CRLs: "X509 CRL" blocks, or one DER CRL.
 * - Private keys: PKCS#1 "RSA PRIVATE KEY", SEC1 "EC PRIVATE KEY", PKCS#8
 *   "PRIVATE KEY", or the same in DER; RSA and ECDSA (any curve OpenSSL
 *   knows: P-256/384/521, brainpool). Encrypted keys are refused: tunsec has
 *   no passphrase prompt.
 *
 * Every problem is a PkiError that names the file and what was wrong. File
 * access is synchronous: this runs while the daemon reads its configuration.
 */
import { readFileSync, statSync } from 'node:fs';
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { parseCertificate, type Certificate } from './certificate.js';
import { parseCrl, type Crl } from './crl.js';
import { PkiError } from './errors.js';
import { decodePem, isPem } from './pem.js';

const CERTIFICATE_LABELS = new Set(['CERTIFICATE', 'X509 CERTIFICATE']);
const CRL_LABELS = new Set(['X509 CRL']);

type KeyFormat = 'pkcs1' | 'pkcs8' | 'sec1';
const KEY_LABELS: Readonly<Record<string, KeyFormat>> = {
  'RSA PRIVATE KEY': 'pkcs1',
  'EC PRIVATE KEY': 'sec1',
  'PRIVATE KEY': 'pkcs8',
};

function readFile(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : (err as Error).message;
    throw new PkiError(`${path}: cannot read ${what} (${why})`);
  }
}

// ---------------------------------------------------------------------------
// Certificates

/** All certificates in PEM or DER bytes, in file order. */
export function readCertificates(data: Uint8Array, source: string): Certificate[] {
  const buf = Buffer.from(data);
  if (buf.length === 0) throw new PkiError(`${source}: empty file`);
  if (!isPem(buf)) return [parseCertificate(buf, source)];
  const blocks = decodePem(buf, source).filter((b) => CERTIFICATE_LABELS.has(b.label));
  if (blocks.length === 0) throw new PkiError(`${source}: no CERTIFICATE block`);
  return blocks.map((b, i) => parseCertificate(b.der, blocks.length > 1 ? `${source}[${i}]` : source));
}

export function loadCertificates(path: string): Certificate[] {
  return readCertificates(readFile(path, 'certificate'), path);
}

export interface CertificateChain {
  /** The end-entity certificate (the first in the file). */
  readonly certificate: Certificate;
  /** The rest, in file order (issuer of the previous one first, as fullchain files have it). */
  readonly intermediates: readonly Certificate[];
}

/** A certificate file that may carry its intermediates after it (fullchain.pem). */
export function readCertificateChain(data: Uint8Array, source: string): CertificateChain {
  const [certificate, ...intermediates] = readCertificates(data, source);
  return { certificate: certificate!, intermediates };
}

export function loadCertificateChain(path: string): CertificateChain {
  return readCertificateChain(readFile(path, 'certificate'), path);
}

// ---------------------------------------------------------------------------
// CRLs

export function readCrls(data: Uint8Array, source: string): Crl[] {
  const buf = Buffer.from(data);
  if (buf.length === 0) throw new PkiError(`${source}: empty file`);
  if (!isPem(buf)) return [parseCrl(buf, source)];
  const blocks = decodePem(buf, source).filter((b) => CRL_LABELS.has(b.label));
  if (blocks.length === 0) throw new PkiError(`${source}: no X509 CRL block`);
  return blocks.map((b, i) => parseCrl(b.der, blocks.length > 1 ? `${source}[${i}]` : source));
}

export function loadCrls(path: string): Crl[] {
  return readCrls(readFile(path, 'CRL'), path);
}

// ---------------------------------------------------------------------------
// Private keys

/** A private key from PEM or DER bytes; PkiError naming `source` otherwise. */
export function readPrivateKey(data: Uint8Array, source: string): KeyObject {
  const buf = Buffer.from(data);
  if (buf.length === 0) throw new PkiError(`${source}: empty file`);
  let key: KeyObject;
  if (isPem(buf)) {
    const blocks = decodePem(buf, source);
    if (blocks.some((b) => b.label === 'ENCRYPTED PRIVATE KEY')) {
      throw new PkiError(`${source}: encrypted keys are not supported (store the key unencrypted, mode 0600)`);
    }
    if (blocks.some((b) => b.label === 'OPENSSH PRIVATE KEY')) {
      throw new PkiError(`${source}: OpenSSH private key format is not supported (use PKCS#8: ssh-keygen -p -m PKCS8)`);
    }
    const keys = blocks.filter((b) => KEY_LABELS[b.label] !== undefined);
    if (keys.length === 0) throw new PkiError(`${source}: no private key block (RSA PRIVATE KEY, EC PRIVATE KEY or PRIVATE KEY)`);
    if (keys.length > 1) throw new PkiError(`${source}: ${keys.length} private keys in one file, expected one`);
    const block = keys[0]!;
    if (/ENCRYPTED/i.test(block.headers.get('Proc-Type') ?? '')) {
      throw new PkiError(`${source}: encrypted keys are not supported (store the key unencrypted, mode 0600)`);
    }
    key = importKey(block.der, KEY_LABELS[block.label]!, source);
  } else {
    key = importDerKey(buf, source);
  }
  const type = key.asymmetricKeyType;
  if (type !== 'rsa' && type !== 'rsa-pss' && type !== 'ec' && type !== 'ed25519' && type !== 'ed448') {
    throw new PkiError(`${source}: ${type ?? 'unknown'} keys are not supported (RSA, ECDSA, Ed25519 and Ed448 only)`);
  }
  return key;
}

function importKey(der: Buffer, format: KeyFormat, source: string): KeyObject {
  try {
    return createPrivateKey({ key: der, format: 'der', type: format });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_MISSING_PASSPHRASE') {
      throw new PkiError(`${source}: encrypted keys are not supported (store the key unencrypted, mode 0600)`);
    }
    const name = format === 'pkcs1' ? 'PKCS#1 RSA' : format === 'sec1' ? 'SEC1 EC' : 'PKCS#8';
    throw new PkiError(`${source}: not a valid ${name} private key (${(err as Error).message})`);
  }
}

function importDerKey(der: Buffer, source: string): KeyObject {
  for (const format of ['pkcs8', 'pkcs1', 'sec1'] as const) {
    try {
      return createPrivateKey({ key: der, format: 'der', type: format });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_MISSING_PASSPHRASE') {
        throw new PkiError(`${source}: encrypted keys are not supported (store the key unencrypted, mode 0600)`);
      }
    }
  }
  throw new PkiError(`${source}: not a private key (neither PEM nor DER PKCS#8, PKCS#1 or SEC1)`);
}

export interface LoadedPrivateKey {
  readonly key: KeyObject;
  /** Things the daemon should log, e.g. loose file permissions. */
  readonly warnings: readonly string[];
}

/** A private key file, with a warning when group or others may access it. */
export function loadPrivateKey(path: string): LoadedPrivateKey {
  const data = readFile(path, 'private key');
  const key = readPrivateKey(data, path);
  const warnings: string[] = [];
  const warning = keyFilePermissionWarning(path);
  if (warning) warnings.push(warning);
  return { key, warnings };
}

/** A warning when the key file's mode gives group or others any access (POSIX), else null. */
export function keyFilePermissionWarning(path: string): string | null {
  let mode: number;
  try {
    mode = statSync(path).mode & 0o777;
  } catch {
    return null;
  }
  if ((mode & 0o077) === 0) return null;
  const who = [mode & 0o070 ? 'group' : null, mode & 0o007 ? 'others' : null].filter(Boolean).join(' and ');
  return `${path}: private key file is accessible by ${who} (mode 0${mode.toString(8)}); chmod 600 recommended`;
}

// ---------------------------------------------------------------------------
// Key ↔ certificate

/** Is `key` (private or public) the key pair of the certificate's subjectPublicKeyInfo? */
export function keyMatchesCertificate(key: KeyObject, cert: Certificate): boolean {
  try {
    const pub = key.type === 'private' ? createPublicKey(key) : key;
    return pub.equals(cert.publicKey);
  } catch {
    return false;
  }
}

/** PkiError "<source>: key does not match certificate '<subject>'" unless the key fits the certificate. */
export function checkKeyMatchesCertificate(key: KeyObject, cert: Certificate, source = 'private key'): void {
  if (!keyMatchesCertificate(key, cert)) {
    throw new PkiError(`${source}: key does not match certificate '${cert.subject.text}'`);
  }
}
