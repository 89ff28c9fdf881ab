/**
 * The strongSwan 5.9.8 demo exchange as the codec tests use it: the 18 IKE
 * datagrams, the IKE SA keys from wireshark-keys/ikev2_decryption_table and
 * what tshark decoded from each message (ike-payloads.txt), normalised so
 * it can be compared with what tunsec decodes.
 */
import { readFileSync } from 'node:fs';
import { AES_GCM_16_128 } from '../../../src/crypto/aead.js';
import type { AeadContext } from '../../../src/crypto/types.js';
import type { IkeHeader } from '../../../src/ike/codec/index.js';
import { demoFile } from '../../support/fixture.js';
import { readIkeMessages } from '../../support/pcap.js';

export interface DemoDatagram {
  frame: number;
  bytes: Buffer;
}

export function demoIkeDatagrams(): DemoDatagram[] {
  return readIkeMessages(demoFile('exchange.pcap')).map((d) => ({ frame: d.frame, bytes: Buffer.from(d.payload) }));
}

interface KeyRow {
  spiI: string;
  spiR: string;
  skEi: Buffer;
  skEr: Buffer;
}

/** Rows of ikev2_decryption_table: SPIi, SPIr, SK_ei, SK_er (16-octet key ‖ 4-octet salt), ... */
export function demoKeyRows(): KeyRow[] {
  return readFileSync(demoFile('wireshark-keys/ikev2_decryption_table'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => {
      const [spiI, spiR, ei, er] = line.split(',');
      return { spiI: spiI!, spiR: spiR!, skEi: Buffer.from(ei!, 'hex'), skEr: Buffer.from(er!, 'hex') };
    });
}

/** The AEAD context the sender of a message with this header sealed it with (SK_ei from the original initiator, else SK_er). */
export function senderAead(header: IkeHeader): AeadContext {
  const row = demoKeyRows().find((r) => r.spiI === header.spiI.toString('hex') && r.spiR === header.spiR.toString('hex'));
  if (!row) throw new Error(`no key row for SPIs ${header.spiI.toString('hex')}/${header.spiR.toString('hex')}`);
  return AES_GCM_16_128.createContext(header.initiator ? row.skEi : row.skEr);
}

/** What tshark listed for one frame, each payload as one normalised token. */
export interface TsharkFrame {
  frame: number;
  exchange: string;
  messageId: number;
  tokens: string[];
}

const TRANSFORM_LABEL: Record<string, number> = { ENCR: 1, PRF: 2, INTEG: 3, 'D-H': 4, ESN: 5 };

/**
 * Tokens: "SA", "Proposal # 1", "Transform 1/20" (type/id), "Key Exchange", "Nonce",
 * "N:NAT_DETECTION_SOURCE_IP", "IDi 2 moon.ikev2.test", "AUTH 14 1.2.840.113549.1.1.11",
 * "TSi 2", "Certificate", "Certificate Request", "Delete", "SK", "SKF".
 */
export function tsharkFrames(): TsharkFrame[] {
  const text = readFileSync(demoFile('ike-payloads.txt'), 'utf8');
  return text
    .trim()
    .split('\n')
    .map((line) => {
      const m = /^#(\d+): (\S+) \(\d+\) mid=0x([0-9a-f]+) \([^)]*\): (.*)$/.exec(line);
      if (!m) throw new Error(`ike-payloads.txt: cannot read "${line}"`);
      const tokens: string[] = [];
      for (const item of m[4]!.matchAll(/\[([^\]]+)\]((?:\{[^}]*\})*)/g)) {
        const name = item[1]!;
        const details = [...item[2]!.matchAll(/\{([^}]*)\}/g)].map((d) => d[1]!);
        tokens.push(normalise(name, details));
      }
      return { frame: Number(m[1]), exchange: m[2]!, messageId: parseInt(m[3]!, 16), tokens };
    });
}

function normalise(name: string, details: string[]): string {
  if (name === 'Transform') {
    const t = /^\(([^)]+)\): .* \((\d+)\)$/.exec(details[0] ?? '');
    if (!t) throw new Error(`transform detail "${details[0]}"`);
    return `Transform ${TRANSFORM_LABEL[t[1]!]}/${t[2]}`;
  }
  if (name.startsWith('Identification - ')) {
    const d = /^\S+ \((\d+)\) (.*)$/.exec(details[0] ?? '');
    return `${name.endsWith('Initiator') ? 'IDi' : 'IDr'} ${d?.[1]} ${d?.[2]}`;
  }
  if (name === 'Authentication') {
    const method = /\((\d+)\)$/.exec(details[0] ?? '')?.[1];
    const oid = /^([\d.]+) /.exec(details[1] ?? '')?.[1];
    return `AUTH ${method} ${oid}`;
  }
  const ts = /^TS(Initiator|Responder) # (\d+)$/.exec(name);
  if (ts) return `${ts[1] === 'Initiator' ? 'TSi' : 'TSr'} ${ts[2]}`;
  if (name === 'Encrypted and Authenticated') return 'SK';
  if (name === 'Encrypted and Authenticated Fragment') return 'SKF';
  return name;
}
