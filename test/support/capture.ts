/**
 * tcpdump on an interface inside a network namespace, for tests that assert
 * what crossed the wire. `stop()` ends the capture (by the child's own PID)
 * and returns one summary per IP packet.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { readPcapFrames } from './pcap.js';
import { formatIp } from '../../src/util/ip.js';
import { sleep, waitFor } from './proc.js';

export interface CapturedPacket {
  frame: number;
  family: 4 | 6;
  src: string;
  dst: string;
  /** 'esp', 'tcp', 'udp', 'icmp' (v4 and v6) or the protocol number. */
  protocol: string;
  srcPort?: number;
  dstPort?: number;
  /** ICMP / ICMPv6 type. */
  icmpType?: number;
  /** The IP packet (from the IP header on). */
  ip: Buffer;
}

const NAMES: Record<number, string> = { 50: 'esp', 6: 'tcp', 17: 'udp', 1: 'icmp', 58: 'icmp' };

/** Summaries of the IPv4/IPv6 packets of an Ethernet pcap file (IPv6 extension headers are not walked). */
export function readIpPackets(path: string): CapturedPacket[] {
  const out: CapturedPacket[] = [];
  readPcapFrames(path).forEach((frame, i) => {
    if (frame.length < 14) return;
    const etherType = frame.readUInt16BE(12);
    const ip = frame.subarray(14);
    let family: 4 | 6;
    let proto: number;
    let l4: number;
    if (etherType === 0x0800 && ip.length >= 20) {
      family = 4;
      proto = ip[9]!;
      l4 = (ip[0]! & 0x0f) * 4;
    } else if (etherType === 0x86dd && ip.length >= 40) {
      family = 6;
      proto = ip[6]!;
      l4 = 40;
    } else {
      return;
    }
    const [src, dst] = family === 4 ? [ip.subarray(12, 16), ip.subarray(16, 20)] : [ip.subarray(8, 24), ip.subarray(24, 40)];
    const p: CapturedPacket = { frame: i + 1, family, src: formatIp(src), dst: formatIp(dst), protocol: NAMES[proto] ?? String(proto), ip: Buffer.from(ip) };
    if ((proto === 6 || proto === 17) && ip.length >= l4 + 4) {
      p.srcPort = ip.readUInt16BE(l4);
      p.dstPort = ip.readUInt16BE(l4 + 2);
    }
    if ((proto === 1 || proto === 58) && ip.length > l4) p.icmpType = ip[l4]!;
    out.push(p);
  });
  return out;
}

/** ICMPv6 Neighbor Discovery (RFC 4861 types 133–137): link-local plumbing below IP routing, never IPsec-protected. */
export const isNeighborDiscovery = (p: CapturedPacket): boolean =>
  p.family === 6 && p.protocol === 'icmp' && p.icmpType !== undefined && p.icmpType >= 133 && p.icmpType <= 137;

export class Capture {
  private stopped?: CapturedPacket[];

  private constructor(
    private readonly child: ChildProcess,
    private readonly dir: string,
    readonly file: string,
  ) {}

  /** Start tcpdump in `netns` on `ifname` (optionally with a filter) and wait until it writes. */
  static async start(netns: string, ifname: string, filter: string[] = []): Promise<Capture> {
    const dir = mkdtempSync('/tmp/tscap-');
    const file = join(dir, 'capture.pcap');
    const child = spawn('ip', ['netns', 'exec', netns, 'tcpdump', '-i', ifname, '-n', '-U', '--immediate-mode', '-s', '2048', '-w', file, ...filter], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const capture = new Capture(child, dir, file);
    try {
      await waitFor(
        `tcpdump on ${netns}/${ifname}`,
        () => (child.exitCode !== null ? Promise.reject(new Error(stderr)) : stderr.includes('listening on')),
        10_000,
        50,
      );
    } catch (err) {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    return capture;
  }

  /** End the capture and return its packets (idempotent). */
  async stop(): Promise<CapturedPacket[]> {
    if (this.stopped) return this.stopped;
    if (this.child.exitCode === null) {
      // let the last packets reach the file (--immediate-mode -U: each is written as it arrives)
      await sleep(200);
      const exited = new Promise((r) => this.child.once('exit', r));
      this.child.kill('SIGINT');
      await Promise.race([exited, sleep(3000)]);
      if (this.child.exitCode === null) this.child.kill('SIGKILL');
    }
    this.stopped = existsSync(this.file) && statSync(this.file).size >= 24 ? readIpPackets(this.file) : [];
    return this.stopped;
  }

  /** The packets of a stopped capture. */
  packets(): CapturedPacket[] {
    if (!this.stopped) throw new Error('capture not stopped yet');
    return this.stopped;
  }

  /** Remove the capture file. */
  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
