/**
 * Reads the hex dumps strongSwan's charon writes at log level 4, e.g.
 *   07:05:23 10[IKE] <host-host|1> SKEYSEED => 48 bytes @ 0x7fdddc00cd20
 *   07:05:23 10[IKE] <host-host|1>    0: A9 63 EF ED ...  .c...7"...[...Q.
 * Test support only.
 */
import { readFileSync } from 'node:fs';

export interface LoggedDump {
  /** Log line number (1-based) of the "=> N bytes" header. */
  line: number;
  label: string;
  bytes: Buffer;
}

const HEADER = /\] (?:<[^>]*> )?(.*?) => (\d+) bytes @ 0x[0-9a-f]+$/;
const ROW = /\] (?:<[^>]*> )?\s+(\d+): ((?:[0-9A-F]{2} ){1,16})/;

export function readLoggedDumps(path: string): LoggedDump[] {
  const lines = readFileSync(path, 'utf8').split('\n');
  const dumps: LoggedDump[] = [];
  for (let i = 0; i < lines.length; i++) {
    const h = HEADER.exec(lines[i]!);
    if (!h) continue;
    const size = Number(h[2]);
    const hex: string[] = [];
    let j = i + 1;
    while (hex.join('').length < size * 2 && j < lines.length) {
      const r = ROW.exec(lines[j]!);
      if (!r) break;
      hex.push(r[2]!.replace(/ /g, ''));
      j++;
    }
    const bytes = Buffer.from(hex.join(''), 'hex');
    if (bytes.length !== size) throw new Error(`${path}:${i + 1}: dump "${h[1]}" has ${bytes.length} of ${size} bytes`);
    dumps.push({ line: i + 1, label: h[1]!, bytes });
  }
  return dumps;
}

/** All dumps with the given label, in log order. */
export function dumpsLabelled(path: string, label: string): Buffer[] {
  return readLoggedDumps(path)
    .filter((d) => d.label === label)
    .map((d) => d.bytes);
}
