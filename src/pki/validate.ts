/**
 * Certification path validation (RFC 5280 §6), the practical subset an IKE
 * daemon such as strongSwan enforces, with reasons an operator can act on.
 *
 * 1. Path building: from the peer's certificate through intermediates (the
 *    store's and those received in CERT payloads) to a trust anchor. An
 *    issuer candidate must match by name (subject = issuer) and, when both
 *    are present, by key identifier (AKI = SKI); its key must verify the
 *    signature. Candidates are tried depth first; the failure that got
 *    furthest is reported.
 * 2. Every certificate of the path, trust anchor included, must be inside
 *    its validity period at `now`, and must not carry a critical extension
 *    we do not process.
 * 3. Issuers must be CAs: basicConstraints cA = TRUE (a version 1 trust
 *    anchor is accepted without it), pathLenConstraint respected, keyUsage,
 *    when present, with keyCertSign. The peer's keyUsage, when present, must
 *    include digitalSignature (it signs the IKE AUTH payload).
 * 4. Revocation by CRL, for every certificate below the trust anchor: a CRL
 *    from its issuer counts if its signature verifies with the issuer's key
 *    (and the issuer may sign CRLs) and it has no critical extension we do
 *    not handle. A serial listed in such a CRL is rejected, even if the CRL
 *    is past nextUpdate: revocation is not undone by time (removeFromCRL is
 *    the exception). A certificate is "checked" when a verified CRL is
 *    current (thisUpdate ≤ now ≤ nextUpdate). Without a current CRL the
 *    certificate is accepted with a note, or rejected with "no valid CRL
 *    for …" under `strictCrl`.
 *
 * Not done: name constraints and policy processing (certificates with those
 * extensions marked critical are rejected), OCSP, fetching CRLs from
 * distribution points, delta and indirect CRLs.
 */
import { extensionName, formatSerial, formatTime, type Certificate } from './certificate.js';
import { findRevoked, type Crl } from './crl.js';
import { namesMatch } from './name.js';
import { algorithmOid, verifySignedData } from './signed.js';
import type { TrustStore } from './store.js';

export interface ValidationOptions {
  /** The time to validate at; default: now. */
  readonly now?: Date;
  /** Reject certificates without a current, verified CRL from their issuer. */
  readonly strictCrl?: boolean;
  /** Certificates the peer sent in CERT payloads besides its own (untrusted until chained). */
  readonly intermediates?: readonly Certificate[];
  /** Most intermediate CA certificates allowed between the peer and a trust anchor; default 7. */
  readonly maxPathLength?: number;
}

export type ValidationResult =
  | {
      readonly ok: true;
      /** [peer certificate, intermediates…, trust anchor]. */
      readonly chain: readonly Certificate[];
      /** Remarks for the log: revocation status checked or unknown, CRLs ignored. */
      readonly notes: readonly string[];
    }
  | { readonly ok: false; readonly reason: string };

export type ChainResult = { readonly ok: true; readonly chain: readonly Certificate[] } | { readonly ok: false; readonly reason: string };

export const DEFAULT_MAX_PATH_LENGTH = 7;

/** Validate a peer's end-entity certificate against the store. */
export function validateCertificate(cert: Certificate, store: TrustStore, options: ValidationOptions = {}): ValidationResult {
  const now = options.now ?? new Date();
  const built = buildChain(cert, store, options);
  if (!built.ok) return built;
  const chain = built.chain;

  for (let i = 0; i < chain.length; i++) {
    const failure = checkCertificate(chain, i, now);
    if (failure) return { ok: false, reason: failure };
  }

  const notes: string[] = [];
  for (let i = 0; i + 1 < chain.length; i++) {
    const failure = checkRevocation(chain[i]!, chain[i + 1]!, store, now, options.strictCrl ?? false, notes);
    if (failure) return { ok: false, reason: failure };
  }
  return { ok: true, chain, notes };
}

// ---------------------------------------------------------------------------
// 1. Path building

interface Failure {
  readonly depth: number;
  readonly reason: string;
}

/**
 * A path [cert, …, trust anchor] by names, key identifiers and signatures
 * only (no validity, constraints or revocation): what validation starts
 * from, and what a daemon uses to pick the intermediates to send with its
 * own certificate.
 */
export function buildChain(cert: Certificate, store: TrustStore, options: Pick<ValidationOptions, 'intermediates' | 'maxPathLength'> = {}): ChainResult {
  if (store.isTrustAnchor(cert)) return { ok: true, chain: [cert] };
  const extra = options.intermediates ?? [];
  const max = options.maxPathLength ?? DEFAULT_MAX_PATH_LENGTH;
  let best: Failure | null = null;
  const remember = (f: Failure): void => {
    if (!best || f.depth > best.depth) best = f;
  };

  const walk = (path: Certificate[]): Certificate[] | null => {
    const current = path[path.length - 1]!;
    const depth = path.length - 1;
    const candidates = store.issuerCandidates(current, extra).filter((c) => !path.some((p) => p.fingerprint === c.fingerprint));
    if (candidates.length === 0) {
      const selfSigned = namesMatch(current.subject, current.issuer) && signatureVerifies(current, current) === null;
      remember({
        depth,
        reason: selfSigned ? `self-signed certificate '${current.subject.text}' is not trusted` : `no trusted CA for issuer '${current.issuer.text}'`,
      });
      return null;
    }
    for (const issuer of candidates) {
      const sigFailure = signatureVerifies(current, issuer);
      if (sigFailure) {
        remember({ depth, reason: sigFailure });
        continue;
      }
      if (store.isTrustAnchor(issuer)) return [...path, issuer];
      if (path.length - 1 >= max) {
        remember({ depth: depth + 1, reason: `path from '${path[0]!.subject.text}' needs more than ${max} intermediate CA certificates` });
        continue;
      }
      const found = walk([...path, issuer]);
      if (found) return found;
    }
    return null;
  };

  const chain = walk([cert]);
  if (chain) return { ok: true, chain };
  return { ok: false, reason: (best as Failure | null)?.reason ?? `no trusted CA for issuer '${cert.issuer.text}'` };
}

/** null when `issuer`'s key verifies `cert`'s signature, else the reason. */
function signatureVerifies(cert: Certificate, issuer: Certificate): string | null {
  const fail = `signature of '${cert.subject.text}' does not verify with issuer '${issuer.subject.text}'`;
  if (!cert.signatureAlgorithm.equals(cert.tbsSignatureAlgorithm)) {
    return `${fail} (signatureAlgorithm differs from tbsCertificate.signature)`;
  }
  const check = verifySignedData(cert.tbs, cert.signatureAlgorithm, cert.signatureValue, issuer.publicKey);
  if (check.ok) return null;
  if (check.unsupported) return `signature of '${cert.subject.text}' uses an unsupported algorithm ${algorithmOid(cert.signatureAlgorithm)}`;
  return fail;
}

// ---------------------------------------------------------------------------
// 2-3. Per-certificate checks

function role(chain: readonly Certificate[], i: number): string {
  if (i === 0) return 'peer cert';
  return i === chain.length - 1 ? 'trusted CA cert' : 'intermediate CA cert';
}

function checkCertificate(chain: readonly Certificate[], i: number, now: Date): string | null {
  const cert = chain[i]!;
  const who = `${role(chain, i)} '${cert.subject.text}'`;
  if (now.getTime() < cert.notBefore.getTime()) return `${who} not valid until ${formatTime(cert.notBefore)}`;
  if (now.getTime() > cert.notAfter.getTime()) return `${who} expired on ${formatTime(cert.notAfter)}`;
  const critical = cert.unsupportedCriticalExtensions[0];
  if (critical !== undefined) return `${who} has an unsupported critical extension ${extensionName(critical)}`;

  if (i === 0) {
    if (chain.length > 1 && cert.keyUsage && !cert.keyUsage.has('digitalSignature')) {
      return `${who} may not sign (keyUsage lacks digitalSignature)`;
    }
    return null;
  }

  const isAnchor = i === chain.length - 1;
  const bc = cert.basicConstraints;
  if (!bc?.cA && !(isAnchor && cert.version === 1)) return `'${cert.subject.text}' is not a CA (basicConstraints)`;
  if (bc?.pathLenConstraint !== undefined) {
    // Intermediate CAs below this one (self-issued ones do not count, §6.1.4 (l)).
    const below = chain.slice(1, i).filter((c) => !namesMatch(c.subject, c.issuer)).length;
    if (below > bc.pathLenConstraint) {
      return `'${cert.subject.text}' allows ${bc.pathLenConstraint} intermediate CA certificate(s) below it (pathLenConstraint), the path has ${below}`;
    }
  }
  if (cert.keyUsage && !cert.keyUsage.has('keyCertSign')) {
    return `'${cert.subject.text}' may not sign certificates (keyUsage lacks keyCertSign)`;
  }
  return null;
}

// ---------------------------------------------------------------------------
// 4. Revocation

function checkRevocation(cert: Certificate, issuer: Certificate, store: TrustStore, now: Date, strictCrl: boolean, notes: string[]): string | null {
  const subject = `'${cert.subject.text}'`;
  const from = `'${issuer.subject.text}'`;
  const crls = store.crlsIssuedBy(issuer);
  const problems: string[] = [];
  let current: Crl | null = null;

  for (const crl of crls) {
    const label = `CRL ${crl.source} from ${from}`;
    const unusable = crlUnusable(crl, issuer);
    if (unusable) {
      problems.push(`${label} ignored: ${unusable}`);
      continue;
    }
    const entry = findRevoked(crl, cert.serialNumber);
    if (entry && entry.reason !== 'removeFromCRL') {
      const reason = entry.reason ? ` (${entry.reason})` : '';
      return `certificate ${subject} serial ${formatSerial(cert.serialNumber)} revoked at ${formatTime(entry.revocationDate)}${reason}`;
    }
    if (now.getTime() < crl.thisUpdate.getTime()) {
      problems.push(`${label} not valid until ${formatTime(crl.thisUpdate)}`);
    } else if (crl.nextUpdate && now.getTime() > crl.nextUpdate.getTime()) {
      problems.push(`${label} expired on ${formatTime(crl.nextUpdate)}`);
    } else if (!current || crl.thisUpdate > current.thisUpdate) {
      current = crl;
    }
  }

  if (current) {
    notes.push(`certificate ${subject} is not revoked (CRL ${current.source} from ${from}, thisUpdate ${formatTime(current.thisUpdate)})`);
    notes.push(...problems.filter((p) => p.includes(' ignored: ')));
    return null;
  }
  const detail = problems.length ? problems.join('; ') : `no CRL from ${from}`;
  if (strictCrl) return `no valid CRL for ${subject} (${detail})`;
  notes.push(`revocation status of ${subject} unknown (${detail})`);
  return null;
}

/** Why a CRL cannot be used at all ("its signature does not verify"), or null. */
function crlUnusable(crl: Crl, issuer: Certificate): string | null {
  const critical = crl.unsupportedCriticalExtensions[0];
  if (critical !== undefined) return `it has an unsupported extension ${extensionName(critical)}`;
  if (issuer.keyUsage && !issuer.keyUsage.has('cRLSign')) return 'its issuer may not sign CRLs (keyUsage lacks cRLSign)';
  if (!crl.signatureAlgorithm.equals(crl.tbsSignatureAlgorithm)) return 'its two signature algorithm fields differ';
  const check = verifySignedData(crl.tbs, crl.signatureAlgorithm, crl.signatureValue, issuer.publicKey);
  if (check.ok) return null;
  return check.unsupported ? `it uses an unsupported signature algorithm ${algorithmOid(crl.signatureAlgorithm)}` : 'its signature does not verify';
}

// ---------------------------------------------------------------------------
// What to send with our own certificate

/**
 * The CA certificates to send in CERT payloads after our own `cert`
 * (RFC 7296 §3.6, RFC 4945 §3.3): `configured` (from the certificate files)
 * first, then every further CA on the path up from `cert` that the trust
 * store holds and that is not self-issued. A peer that trusts only the root
 * then still reaches it, the way strongSwan sends the intermediates it holds.
 * Roots are never added: the peer must have them already.
 */
export function intermediatesToSend(cert: Certificate, store: TrustStore, configured: readonly Certificate[] = []): Certificate[] {
  const out = [...configured];
  const onPath = [cert];
  let current = cert;
  for (let depth = 0; depth <= DEFAULT_MAX_PATH_LENGTH; depth++) {
    if (namesMatch(current.subject, current.issuer)) break;
    const issuer = store
      .issuerCandidates(current, configured)
      .find((c) => !onPath.some((p) => p.fingerprint === c.fingerprint) && signatureVerifies(current, c) === null);
    if (!issuer || namesMatch(issuer.subject, issuer.issuer)) break;
    if (!out.some((c) => c.fingerprint === issuer.fingerprint)) out.push(issuer);
    onPath.push(issuer);
    current = issuer;
  }
  return out;
}
