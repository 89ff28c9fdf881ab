/**
 * The trust store: trust anchors (CA certificates the operator trusts),
 * intermediate CA certificates (from chain files; received ones can be
 * added too), and CRLs.
 *
 * Lookups serve path building (issuer candidates by subject DN and key
 * identifier), revocation (CRLs by issuer) and the CERTREQ exchange of
 * RFC 7296 §3.7: a Certificate Authority value is the SHA-1 hash of a CA's
 * DER SubjectPublicKeyInfo, 20 octets; we send one per trust anchor, and a
 * peer's list tells us which of our CAs it trusts.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spkiSha1, type Certificate } from './certificate.js';
import type { Crl } from './crl.js';
import { PkiError } from './errors.js';
import { loadCertificates, loadCrls } from './load.js';
import { nameFromString, namesMatch, type Name } from './name.js';

/** What loading a file or directory produced; problems with single files are warnings. */
export interface LoadReport<T> {
  readonly loaded: readonly T[];
  readonly warnings: readonly string[];
}

/** Does `issuer` plausibly issue `cert` (name chaining, and key identifiers when both are present)? */
export function couldHaveIssued(issuer: Certificate, cert: Certificate): boolean {
  if (!namesMatch(issuer.subject, cert.issuer)) return false;
  if (cert.authorityKeyIdentifier && issuer.subjectKeyIdentifier) {
    return cert.authorityKeyIdentifier.equals(issuer.subjectKeyIdentifier);
  }
  return true;
}

export class TrustStore {
  private readonly anchors: Certificate[] = [];
  private readonly intermediates: Certificate[] = [];
  private readonly crls: Crl[] = [];
  private readonly fingerprints = new Set<string>();
  private readonly bySpkiSha1 = new Map<string, Certificate>();

  /** Trust this certificate as a root of certificate paths. */
  addTrustAnchor(cert: Certificate): void {
    if (this.isTrustAnchor(cert)) return;
    // A certificate first added as an intermediate is promoted.
    const i = this.intermediates.findIndex((c) => c.fingerprint === cert.fingerprint);
    if (i >= 0) this.intermediates.splice(i, 1);
    this.anchors.push(cert);
    this.fingerprints.add(cert.fingerprint);
    this.bySpkiSha1.set(spkiSha1(cert).toString('hex'), cert);
  }

  /** An intermediate CA certificate that paths may go through (not trusted by itself). */
  addIntermediate(cert: Certificate): void {
    if (this.fingerprints.has(cert.fingerprint)) return;
    this.intermediates.push(cert);
    this.fingerprints.add(cert.fingerprint);
    const key = spkiSha1(cert).toString('hex');
    if (!this.bySpkiSha1.has(key)) this.bySpkiSha1.set(key, cert);
  }

  addCrl(crl: Crl): void {
    if (this.crls.some((c) => c.fingerprint === crl.fingerprint)) return;
    this.crls.push(crl);
  }

  get trustAnchors(): readonly Certificate[] {
    return this.anchors;
  }

  get intermediateCertificates(): readonly Certificate[] {
    return this.intermediates;
  }

  get allCrls(): readonly Crl[] {
    return this.crls;
  }

  isTrustAnchor(cert: Certificate): boolean {
    return this.anchors.some((a) => a.fingerprint === cert.fingerprint);
  }

  // -------------------------------------------------------------------------
  // Loading

  /** CA certificates from a file (PEM bundle or DER) or every file of a directory. */
  loadTrustAnchors(path: string): LoadReport<Certificate> {
    return this.loadEach(path, loadCertificates, (c) => this.addTrustAnchor(c));
  }

  /** Intermediate CA certificates from a file or a directory. */
  loadIntermediates(path: string): LoadReport<Certificate> {
    return this.loadEach(path, loadCertificates, (c) => this.addIntermediate(c));
  }

  /** CRLs (PEM or DER) from a file or a directory. */
  loadCrls(path: string): LoadReport<Crl> {
    return this.loadEach(path, loadCrls, (c) => this.addCrl(c));
  }

  private loadEach<T>(path: string, load: (file: string) => T[], add: (item: T) => void): LoadReport<T> {
    let isDirectory: boolean;
    try {
      isDirectory = statSync(path).isDirectory();
    } catch {
      throw new PkiError(`${path}: no such file or directory`);
    }
    if (!isDirectory) {
      const items = load(path);
      items.forEach(add);
      return { loaded: items, warnings: [] };
    }
    const loaded: T[] = [];
    const warnings: string[] = [];
    for (const name of readdirSync(path).sort()) {
      if (name.startsWith('.')) continue;
      const file = join(path, name);
      try {
        if (!statSync(file).isFile()) continue;
        const items = load(file);
        items.forEach(add);
        loaded.push(...items);
      } catch (err) {
        if (!(err instanceof PkiError)) throw err;
        warnings.push(`${err.message}; skipped`);
      }
    }
    return { loaded, warnings };
  }

  // -------------------------------------------------------------------------
  // Lookups

  /** Trust anchors then intermediates whose subject is `name` (a Name or DN text). */
  findBySubject(name: Name | string): Certificate[] {
    const n = typeof name === 'string' ? nameFromString(name) : name;
    return [...this.anchors, ...this.intermediates].filter((c) => namesMatch(c.subject, n));
  }

  /** The CA certificate (anchor preferred) whose SPKI has this SHA-1 hash. */
  findBySpkiSha1(hash: Uint8Array): Certificate | undefined {
    return this.bySpkiSha1.get(Buffer.from(hash).toString('hex'));
  }

  /** Certificates that could have issued `cert`: trust anchors first, then intermediates, then `extra`. */
  issuerCandidates(cert: Certificate, extra: readonly Certificate[] = []): Certificate[] {
    const seen = new Set<string>();
    const out: Certificate[] = [];
    for (const c of [...this.anchors, ...this.intermediates, ...extra]) {
      if (seen.has(c.fingerprint) || !couldHaveIssued(c, cert)) continue;
      seen.add(c.fingerprint);
      out.push(c);
    }
    return out;
  }

  /** CRLs naming `issuer` as their issuer (name, and key identifier when both are present). */
  crlsIssuedBy(issuer: Certificate): Crl[] {
    return this.crls.filter(
      (crl) =>
        namesMatch(crl.issuer, issuer.subject) &&
        !(crl.authorityKeyIdentifier && issuer.subjectKeyIdentifier && !crl.authorityKeyIdentifier.equals(issuer.subjectKeyIdentifier)),
    );
  }

  // -------------------------------------------------------------------------
  // CERTREQ (RFC 7296 §3.7)

  /** The Certificate Authority values for our CERTREQ: SHA-1 of each trust anchor's SPKI. */
  certificateAuthorityHashes(): Buffer[] {
    return this.anchors.map(spkiSha1);
  }

  /** Which of our trust anchors the peer asked for (its CERTREQ hashes). */
  requestedTrustAnchors(hashes: Iterable<Uint8Array>): Certificate[] {
    const wanted = hashSet(hashes);
    return this.anchors.filter((a) => wanted.has(spkiSha1(a).toString('hex')));
  }

  /** Which of our CA certificates (anchors and intermediates) the peer asked for. */
  requestedAuthorities(hashes: Iterable<Uint8Array>): Certificate[] {
    const wanted = hashSet(hashes);
    return [...this.anchors, ...this.intermediates].filter((c) => wanted.has(spkiSha1(c).toString('hex')));
  }
}

function hashSet(hashes: Iterable<Uint8Array>): Set<string> {
  const out = new Set<string>();
  for (const h of hashes) out.add(Buffer.from(h).toString('hex'));
  return out;
}

/**
 * Does a peer's CERTREQ ask for a CA of this chain ([end entity, …, anchor])?
 * That is when send_cert = ifasked sends the certificate; an empty CERTREQ
 * (no hashes) asks for any certificate.
 */
export function certReqMatchesChain(chain: readonly Certificate[], hashes: readonly Uint8Array[]): boolean {
  if (hashes.length === 0) return true;
  const wanted = hashSet(hashes);
  return chain.slice(1).some((c) => wanted.has(spkiSha1(c).toString('hex')));
}
