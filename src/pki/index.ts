/**
 * src/pki: certificates for IKEv2 certificate authentication.
 *
 *   load.ts       certificates, CRLs and private keys from PEM/DER files
 *   store.ts      trust anchors, intermediates, CRLs; CERTREQ hashes
 *   validate.ts   RFC 5280 §6 path validation with CRL checking
 *   identity.ts   IKE identities (RFC 7296 §3.5) and matching them to certificates
 *   issue.ts      a throwaway CA for tests and the demo
 *
 * and underneath: certificate.ts / crl.ts (DER parsing), name.ts (DNs),
 * signed.ts (signature checks), pem.ts, der.ts, ip.ts (null-returning forms of
 * src/util/ip.ts). Imports only src/crypto and src/util.
 */
export { PkiError } from './errors.js';
export {
  parseCertificate,
  spkiSha1,
  subjectPublicKeySha1,
  formatSerial,
  formatTime,
  formatGeneralName,
  type Certificate,
  type GeneralName,
  type KeyUsage,
  type BasicConstraints,
  type Extension,
} from './certificate.js';
export { parseCrl, findRevoked, type Crl, type RevokedCertificate } from './crl.js';
export { decodeName, nameFromString, dnToString, namesMatch, type Name } from './name.js';
export { decodePem, encodePem, type PemBlock } from './pem.js';
export {
  readCertificates,
  loadCertificates,
  readCertificateChain,
  loadCertificateChain,
  readCrls,
  loadCrls,
  readPrivateKey,
  loadPrivateKey,
  keyFilePermissionWarning,
  keyMatchesCertificate,
  checkKeyMatchesCertificate,
  type CertificateChain,
  type LoadedPrivateKey,
} from './load.js';
export { TrustStore, couldHaveIssued, certReqMatchesChain, type LoadReport } from './store.js';
export {
  validateCertificate,
  buildChain,
  intermediatesToSend,
  DEFAULT_MAX_PATH_LENGTH,
  type ValidationOptions,
  type ValidationResult,
  type ChainResult,
} from './validate.js';
export {
  parseIdentity,
  readIdentityText,
  identityToString,
  identityToIdPayload,
  identityFromIdPayload,
  subjectIdentity,
  certMatchesIdentity,
  ID_TYPE,
  NULL_IDENTITY,
  type Identity,
  type IdentityType,
  type IdentityText,
  type IdPayloadData,
  type MatchResult,
} from './identity.js';
export { identityPatternMatches, type IdentityPattern } from './identity-pattern.js';
