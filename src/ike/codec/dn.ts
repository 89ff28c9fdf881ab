/**
 * Distinguished Names for ID_DER_ASN1_DN (RFC 7296 §3.5): DER ↔ the text form
 * operators write ("C=CH, O=Example, CN=moon.example.org", the order of the
 * DER, as strongSwan prints it). The parsing and printing is src/pki/name.ts;
 * these are the codec's never-throwing forms of it.
 */
import { PkiError } from '../../pki/errors.js';
import { dnToString as nameToString, nameFromString } from '../../pki/name.js';

/** "C=CH, O=Example, CN=moon" for a DER Name, or null if the octets are not one (never throws). */
export function dnToString(der: Buffer): string | null {
  return nameToString(der);
}

/** DER Name for "C=CH, O=Example, CN=moon", or null if the text is not a DN (never throws). */
export function dnFromString(text: string): Buffer | null {
  try {
    return nameFromString(text).der;
  } catch (err) {
    if (err instanceof PkiError) return null;
    throw err;
  }
}
