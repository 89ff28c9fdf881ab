/**
 * The key log (daemon.keylog): IKE and ESP keys written in the two UAT
 * formats Wireshark reads, so a capture of tunsec's traffic can be decrypted
 * with standard tools — proof that the wire format is the standard one:
 *
 *   <dir>/ikev2_decryption_table   SPIi,SPIr,SK_ei,SK_er,"<encr>",SK_ai,SK_ar,"<integ>"
 *   <dir>/esp_sa                   "IPv4","<src>","<dst>","0x<spi>","<encr>","0x<key>","NULL","0x"
 *   <dir>/preferences              esp.enable_encryption_decode: TRUE (written once)
 *
 * `<dir>` is then a Wireshark configuration directory:
 *   WIRESHARK_CONFIG_DIR=<dir> tshark -r capture.pcap
 *
 * For AES-GCM the key is key ‖ salt, as negotiated (RFC 4106 §8.1, RFC 5282
 * §7.1). Keys are secrets: the directory is created 0700 and the files 0600,
 * and the daemon logs a warning while the key log is on.
 */
import { appendFileSync, chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SaSpec } from '../esp/api.js';
import { transformOfType } from '../ike/proposal/index.js';
import type { IkeSa } from '../ike/sa/ike-sa.js';
import { EncrId, TransformType } from '../ike/transforms.js';
import { spiHex } from '../util/format.js';

export interface IkeKeyLogEntry {
  spiI: Buffer;
  spiR: Buffer;
  encrId: number;
  keyBits: number;
  skEi: Buffer;
  skEr: Buffer;
}

/** Wireshark's name of an IKEv2 AEAD (packet-isakmp.c's ikev2_encr_algs), undefined if it has none tunsec uses. */
export function wiresharkIkeEncr(encrId: number, keyBits: number): string | undefined {
  if (encrId === EncrId.AES_GCM_16 && [128, 192, 256].includes(keyBits)) return `AES-GCM-${keyBits} with 16 octet ICV [RFC5282]`;
  return undefined;
}

/** Wireshark's name of an ESP AEAD (packet-esp.c's esp_encryption_type_vals). */
export function wiresharkEspEncr(transformId: number): string | undefined {
  return transformId === EncrId.AES_GCM_16 ? 'AES-GCM with 16 octet ICV [RFC4106]' : undefined;
}

export function ikeKeyLogLine(e: IkeKeyLogEntry): string | undefined {
  const encr = wiresharkIkeEncr(e.encrId, e.keyBits);
  if (!encr) return undefined;
  return `${e.spiI.toString('hex')},${e.spiR.toString('hex')},${e.skEi.toString('hex')},${e.skEr.toString('hex')},"${encr}",,,"NONE [RFC4306]"`;
}

/** The esp_sa line of one SA; source/destination are the outer addresses as the packets carry them. */
export function espKeyLogLine(sa: Readonly<SaSpec>): string | undefined {
  const encr = wiresharkEspEncr(sa.aead.transformId);
  if (!encr) return undefined;
  const family = sa.localAddress.includes(':') ? 'IPv6' : 'IPv4';
  const [src, dst] = sa.direction === 'out' ? [sa.localAddress, sa.remoteAddress] : [sa.remoteAddress, sa.localAddress];
  const spi = spiHex(sa.spi);
  return `"${family}","${src}","${dst}","0x${spi}","${encr}","0x${Buffer.from(sa.aead.keyMaterial).toString('hex')}","NULL","0x"`;
}

export class KeyLog {
  private constructor(readonly dir: string) {}

  /** Create the directory (0700) and the preferences file. Throws with the path on failure. */
  static open(dir: string): KeyLog {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
    const prefs = join(dir, 'preferences');
    if (!existsSync(prefs))
      writeFileSync(prefs, '# written by tunsec: decrypt ESP with the keys in esp_sa\nesp.enable_encryption_decode: TRUE\n', { mode: 0o600 });
    return new KeyLog(dir);
  }

  /** The keys of an IKE SA just established (nothing before its keys and cipher are known). */
  ikeSaEstablished(sa: IkeSa): void {
    const encr = sa.ctx.selected ? transformOfType(sa.ctx.selected, TransformType.ENCR) : undefined;
    const keys = sa.ctx.keys;
    if (encr && keys) this.ikeSa({ spiI: sa.ctx.spiI, spiR: sa.ctx.spiR, encrId: encr.id, keyBits: encr.keyLength ?? 0, skEi: keys.skEi, skEr: keys.skEr });
  }

  ikeSa(e: IkeKeyLogEntry): void {
    const line = ikeKeyLogLine(e);
    if (line) this.append('ikev2_decryption_table', line);
  }

  espSa(sa: Readonly<SaSpec>): void {
    const line = espKeyLogLine(sa);
    if (line) this.append('esp_sa', line);
  }

  private append(file: string, line: string): void {
    appendFileSync(join(this.dir, file), `${line}\n`, { mode: 0o600 });
  }
}
