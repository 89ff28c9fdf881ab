/**
 * The one error type of src/pki: every malformed file, certificate, key or
 * CRL ends up as a PkiError whose message names the source ("moon.pem: …")
 * and says what was wrong, ready for an operator's log.
 */
export class PkiError extends Error {
  override readonly name = 'PkiError';
}
