/**
 * PEM (RFC 7468 textual encoding, with the RFC 1421 headers OpenSSL still
 * writes on encrypted traditional keys): "-----BEGIN LABEL-----", optional
 * "Name: value" header lines, base64, "-----END LABEL-----". Text between
 * blocks (comments, "Bag Attributes", …) is ignored.
 */
import { PkiError } from './errors.js';

export interface PemBlock {
  readonly label: string;
  /** RFC 1421 headers such as Proc-Type and DEK-Info, keys as written. */
  readonly headers: ReadonlyMap<string, string>;
  readonly der: Buffer;
}

/** Does this look like PEM text (rather than DER)? */
export function isPem(data: Buffer | string): boolean {
  const text = typeof data === 'string' ? data : data.subarray(0, 64 * 1024).toString('latin1');
  return text.includes('-----BEGIN ');
}

/** Every PEM block in the text; PkiError for a block without an END line or with bad base64. */
export function decodePem(data: Buffer | string, source: string): PemBlock[] {
  const text = typeof data === 'string' ? data : data.toString('latin1');
  const blocks: PemBlock[] = [];
  const begin = /-----BEGIN ([A-Z0-9 ]+)-----/g;
  for (let m = begin.exec(text); m; m = begin.exec(text)) {
    const label = m[1]!;
    const endMarker = `-----END ${label}-----`;
    const bodyStart = m.index + m[0].length;
    const endAt = text.indexOf(endMarker, bodyStart);
    if (endAt < 0) throw new PkiError(`${source}: "${label}" block has no END line`);
    const headers = new Map<string, string>();
    const base64Lines: string[] = [];
    for (const raw of text.slice(bodyStart, endAt).split(/\r?\n/)) {
      const line = raw.trim();
      if (line === '') continue;
      const header = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
      if (header && base64Lines.length === 0) headers.set(header[1]!, header[2]!);
      else base64Lines.push(line);
    }
    const b64 = base64Lines.join('');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) {
      throw new PkiError(`${source}: "${label}" block is not valid base64`);
    }
    blocks.push({ label, headers, der: Buffer.from(b64, 'base64') });
    begin.lastIndex = endAt + endMarker.length;
  }
  return blocks;
}

/** One PEM block, base64 in 64-character lines. */
export function encodePem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
