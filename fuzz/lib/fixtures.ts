/**
 * The real strongSwan 5.9.8 exchange (test/fixtures/strongswan-5.9.8-ecp384bp-demo)
 * as the fuzz targets use it: the IKE datagrams, the IKE SA keys (SK_ei/SK_er
 * from wireshark-keys/ikev2_decryption_table), the ESP SAs (wireshark-keys/esp_sa),
 * the ESP-in-UDP packets and the certificates.
 */
import { readFileSync } from 'node:fs';
import { AES_GCM_16_128 } from '../../src/crypto/aead.js';
import type { AeadContext } from '../../src/crypto/types.js';
import type { IkeHeader } from '../../src/ike/codec/index.js';
import { decodePem } from '../../src/pki/pem.js';
import { demoFile } from '../../test/support/fixture.js';
import { readEspInUdp, readIkeMessages } from '../../test/support/pcap.js';

export { demoFile };

/** The 18 IKE datagrams (non-ESP marker removed), in capture order. */
export function ikeDatagrams(): Buffer[] {
  return readIkeMessages(demoFile('exchange.pcap')).map((d) => Buffer.from(d.payload));
}

/** The 16 ESP-in-UDP packets (bare ESP, from the SPI on) with the UDP source address and port they came from. */
export function espInUdpPackets(): { esp: Buffer; src: string; dst: string }[] {
  return readEspInUdp(demoFile('exchange.pcap')).map((d) => ({ esp: Buffer.from(d.payload), src: d.src, dst: d.dst }));
}

export interface IkeKeyRow {
  spiI: Buffer;
  spiR: Buffer;
  /** key ‖ salt, 20 octets each. */
  skEi: Buffer;
  skEr: Buffer;
}

export function ikeKeyRows(): IkeKeyRow[] {
  return readFileSync(demoFile('wireshark-keys/ikev2_decryption_table'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => {
      const [spiI, spiR, ei, er] = line.split(',');
      return { spiI: Buffer.from(spiI!, 'hex'), spiR: Buffer.from(spiR!, 'hex'), skEi: Buffer.from(ei!, 'hex'), skEr: Buffer.from(er!, 'hex') };
    });
}

/** The AEAD the sender of a message with this header sealed it with, or undefined for SPIs not in the fixture. */
export function senderAeadFor(header: Pick<IkeHeader, 'spiI' | 'spiR' | 'initiator'>, rows: readonly IkeKeyRow[]): AeadContext | undefined {
  const row = rows.find((r) => r.spiI.equals(header.spiI) && r.spiR.equals(header.spiR));
  return row ? AES_GCM_16_128.createContext(header.initiator ? row.skEi : row.skEr) : undefined;
}

export interface EspSaRow {
  src: string;
  dst: string;
  spi: number;
  /** key ‖ salt (20 octets). */
  key: Buffer;
}

export function espSaRows(): EspSaRow[] {
  return readFileSync(demoFile('wireshark-keys/esp_sa'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => {
      const f = line.split(',').map((s) => s.replace(/^"|"$/g, ''));
      return { src: f[1]!, dst: f[2]!, spi: parseInt(f[3]!, 16) >>> 0, key: Buffer.from(f[5]!.slice(2), 'hex') };
    });
}

/** DER of the CA, moon and sun certificates. */
export function certificatesDer(): { name: string; der: Buffer }[] {
  return ['ca/caCert.pem', 'moon/cert.pem', 'sun/cert.pem'].map((name) => ({ name, der: decodePem(readFileSync(demoFile(`pki/${name}`)), name)[0]!.der }));
}
