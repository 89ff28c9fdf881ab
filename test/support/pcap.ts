/**
 * Minimal reader for classic libpcap files (LINKTYPE_ETHERNET), enough to pull
 * the UDP datagrams out of the strongSwan fixture capture. Test support only.
 */
import { readFileSync } from 'node:fs';

export interface UdpDatagram {
  /** 1-based frame number, as tshark/Wireshark count them. */
  frame: number;
  family: 4 | 6;
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  payload: Buffer;
}

function ipv4ToString(b: Buffer, off: number): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}

function ipv6ToString(b: Buffer, off: number): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(off + i).toString(16));
  return groups
    .join(':')
    .replace(/(^|:)0(:0)+(:|$)/, '::')
    .replace(/:{3,}/, '::');
}

export function readPcapFrames(path: string): Buffer[] {
  const file = readFileSync(path);
  const magic = file.readUInt32LE(0);
  let le: boolean;
  if (magic === 0xa1b2c3d4) le = true;
  else if (magic === 0xd4c3b2a1) le = false;
  else throw new Error(`${path}: not a classic pcap file`);
  const u32 = (o: number): number => (le ? file.readUInt32LE(o) : file.readUInt32BE(o));
  const linktype = u32(20);
  if (linktype !== 1) throw new Error(`${path}: linktype ${linktype}, expected Ethernet`);
  const frames: Buffer[] = [];
  let off = 24;
  while (off + 16 <= file.length) {
    const capLen = u32(off + 8);
    off += 16;
    frames.push(file.subarray(off, off + capLen));
    off += capLen;
  }
  return frames;
}

/** Every UDP datagram in the capture (IPv4 and IPv6, no IP fragments). */
export function readUdpDatagrams(path: string): UdpDatagram[] {
  const out: UdpDatagram[] = [];
  readPcapFrames(path).forEach((frame, i) => {
    let etherType = frame.readUInt16BE(12);
    let off = 14;
    if (etherType === 0x8100) {
      etherType = frame.readUInt16BE(16);
      off = 18;
    }
    let family: 4 | 6;
    let src: string;
    let dst: string;
    if (etherType === 0x0800) {
      const ihl = (frame[off]! & 0x0f) * 4;
      if (frame[off + 9] !== 17) return;
      family = 4;
      src = ipv4ToString(frame, off + 12);
      dst = ipv4ToString(frame, off + 16);
      off += ihl;
    } else if (etherType === 0x86dd) {
      if (frame[off + 6] !== 17) return;
      family = 6;
      src = ipv6ToString(frame, off + 8);
      dst = ipv6ToString(frame, off + 24);
      off += 40;
    } else {
      return;
    }
    const udpLen = frame.readUInt16BE(off + 4);
    out.push({
      frame: i + 1,
      family,
      src,
      dst,
      srcPort: frame.readUInt16BE(off),
      dstPort: frame.readUInt16BE(off + 2),
      payload: Buffer.from(frame.subarray(off + 8, off + udpLen)),
    });
  });
  return out;
}

/**
 * IKE messages in the capture: datagrams on port 500, or on 4500 behind the
 * 4-octet non-ESP marker (RFC 3948 §2.2), with the marker removed.
 */
export function readIkeMessages(path: string): UdpDatagram[] {
  return readUdpDatagrams(path).flatMap((d) => {
    if (d.srcPort === 500 || d.dstPort === 500) return [d];
    if ((d.srcPort === 4500 || d.dstPort === 4500) && d.payload.length >= 4 && d.payload.readUInt32BE(0) === 0) {
      return [{ ...d, payload: d.payload.subarray(4) }];
    }
    return [];
  });
}

/** ESP-in-UDP packets (RFC 3948): port 4500, first four octets (the SPI) non-zero. */
export function readEspInUdp(path: string): UdpDatagram[] {
  return readUdpDatagrams(path).filter((d) => (d.srcPort === 4500 || d.dstPort === 4500) && d.payload.length > 8 && d.payload.readUInt32BE(0) !== 0);
}
