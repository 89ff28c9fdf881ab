/**
 * Helpers for the ESP datapath tests (test/esp/spd, sadb, datapath):
 *
 *  - packet builders for IPv4 / IPv6 with ICMP, ICMPv6, TCP and UDP, with
 *    checksums computed here (independently of src/esp/ip.ts), and a checker
 *    for the upper-layer checksum of a whole packet;
 *  - `peers()`: two SecurityAssociationDatabase + PacketEngine instances,
 *    "moon" and "sun", with mirrored SAs (same key material; moon's out SA is
 *    sun's in SA and the other way round) and policies, and `deliver()` which
 *    hands what one side's `outbound` produced to the other side's `inbound`
 *    the way the I/O loop would: raw IPv4 with its header (ESP at IHL × 4),
 *    raw IPv6 with the 40-octet header stripped (as the kernel's raw socket
 *    does), ESP-in-UDP as the bare ESP packet.
 */
import { expect } from 'vitest';
import type { AcquireEvent, ExpireEvent, PolicySpec, SaLifetimes, SaSpec, TrafficSelector } from '../../src/esp/api.js';
import { PacketEngine, OUT_SEND, type PacketEngineOptions, type InboundResult, type InboundSource, type OutboundResult } from '../../src/esp/engine.js';
import { SecurityAssociationDatabase } from '../../src/esp/sadb.js';
import { parseIp } from '../../src/util/ip.js';

// ---------------------------------------------------------------------------
// Checksums (RFC 1071), written independently of src/esp/ip.ts.

function sum16(octets: Uint8Array, initial = 0): number {
  let sum = initial;
  for (let i = 0; i < octets.length; i += 2) sum += (octets[i]! << 8) + (octets[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

const checksum = (octets: Uint8Array, initial = 0): number => ~sum16(octets, initial) & 0xffff;

function pseudoHeaderSum(src: Uint8Array, dst: Uint8Array, protocol: number, length: number): number {
  return sum16(Buffer.concat([src, dst]), protocol + (length & 0xffff) + Math.floor(length / 0x10000));
}

// ---------------------------------------------------------------------------
// Upper-layer payloads (checksums filled in by `ipv4` / `ipv6`).

export interface L4 {
  protocol: number;
  octets: Buffer;
}

export function udp(srcPort: number, dstPort: number, data: Uint8Array = Buffer.from('hello')): L4 {
  const h = Buffer.alloc(8 + data.length);
  h.writeUInt16BE(srcPort, 0);
  h.writeUInt16BE(dstPort, 2);
  h.writeUInt16BE(h.length, 4);
  h.set(data, 8);
  return { protocol: 17, octets: h };
}

export function tcp(srcPort: number, dstPort: number, data: Uint8Array = Buffer.alloc(0)): L4 {
  const h = Buffer.alloc(20 + data.length);
  h.writeUInt16BE(srcPort, 0);
  h.writeUInt16BE(dstPort, 2);
  h.writeUInt32BE(0x01020304, 4);
  h.writeUInt32BE(0x0a0b0c0d, 8);
  h[12] = 5 << 4;
  h[13] = 0x18; // PSH ACK
  h.writeUInt16BE(64240, 14);
  h.set(data, 20);
  return { protocol: 6, octets: h };
}

/** ICMP (IPv4) or ICMPv6 message: type, code, checksum, 4 octets rest-of-header, data. */
export function icmp(type: number, code: number, data: Uint8Array = Buffer.from('ping'), v6 = false): L4 {
  const h = Buffer.alloc(8 + data.length);
  h[0] = type;
  h[1] = code;
  h.writeUInt32BE(0x12340001, 4);
  h.set(data, 8);
  return { protocol: v6 ? 58 : 1, octets: h };
}

/** Fill in the checksum of a TCP / UDP / ICMP / ICMPv6 payload for these addresses. */
function finishL4(l4: L4, src: Buffer, dst: Buffer): Buffer {
  const o = Buffer.from(l4.octets);
  const field = l4.protocol === 6 ? 16 : l4.protocol === 17 ? 6 : l4.protocol === 1 || l4.protocol === 58 ? 2 : -1;
  if (field < 0 || o.length < field + 2) return o;
  o.writeUInt16BE(0, field);
  let c: number;
  if (l4.protocol === 1) c = checksum(o);
  else c = checksum(o, pseudoHeaderSum(src, dst, l4.protocol, o.length));
  if (l4.protocol === 17 && c === 0) c = 0xffff;
  o.writeUInt16BE(c, field);
  return o;
}

export interface Ipv4Options {
  src: string;
  dst: string;
  tos?: number;
  ttl?: number;
  id?: number;
  /** Flags and fragment offset (16 bits); default DF. */
  flags?: number;
  /** IP options (a multiple of 4 octets). */
  options?: Buffer;
  /** Don't fill in the upper-layer checksum (e.g. for fragments). */
  raw?: boolean;
}

export function ipv4(o: Ipv4Options, l4: L4): Buffer {
  const src = parseIp(o.src)!;
  const dst = parseIp(o.dst)!;
  const options = o.options ?? Buffer.alloc(0);
  const ihl = 20 + options.length;
  const payload = o.raw ? l4.octets : finishL4(l4, src, dst);
  const p = Buffer.alloc(ihl + payload.length);
  p[0] = 0x40 | (ihl / 4);
  p[1] = o.tos ?? 0;
  p.writeUInt16BE(p.length, 2);
  p.writeUInt16BE(o.id ?? 0x1234, 4);
  p.writeUInt16BE(o.flags ?? 0x4000, 6);
  p[8] = o.ttl ?? 64;
  p[9] = l4.protocol;
  src.copy(p, 12);
  dst.copy(p, 16);
  options.copy(p, 20);
  p.writeUInt16BE(checksum(p.subarray(0, ihl)), 10);
  payload.copy(p, ihl);
  return p;
}

export interface Ipv6Options {
  src: string;
  dst: string;
  trafficClass?: number;
  flowLabel?: number;
  hopLimit?: number;
  /** Extension headers, each given whole (the Next Header octet is filled in). */
  exts?: { type: number; octets: Buffer }[];
  raw?: boolean;
}

export function ipv6(o: Ipv6Options, l4: L4): Buffer {
  const src = parseIp(o.src)!;
  const dst = parseIp(o.dst)!;
  const exts = (o.exts ?? []).map((e) => ({ type: e.type, octets: Buffer.from(e.octets) }));
  const types = [...exts.map((e) => e.type), l4.protocol];
  exts.forEach((e, i) => (e.octets[0] = types[i + 1]!));
  const payload = o.raw ? l4.octets : finishL4(l4, src, dst);
  const fixed = Buffer.alloc(40);
  fixed.writeUInt32BE((0x60000000 | ((o.trafficClass ?? 0) << 20) | (o.flowLabel ?? 0)) >>> 0, 0);
  fixed[6] = types[0]!;
  fixed[7] = o.hopLimit ?? 64;
  src.copy(fixed, 8);
  dst.copy(fixed, 24);
  const p = Buffer.concat([fixed, ...exts.map((e) => e.octets), payload]);
  p.writeUInt16BE(p.length - 40, 4);
  return p;
}

/** A packet of either family between two addresses of that family. */
export function ipPacket(src: string, dst: string, l4: L4): Buffer {
  return parseIp(src)!.length === 4 ? ipv4({ src, dst }, l4) : ipv6({ src, dst }, l4);
}

/** Whether the IPv4 header checksum of `p` is right. */
export function ipv4HeaderOk(p: Buffer): boolean {
  return sum16(p.subarray(0, (p[0]! & 15) * 4)) === 0xffff;
}

/**
 * Whether the TCP / UDP / ICMP / ICMPv6 checksum of a whole IPv4 / IPv6
 * packet (no IPv6 extension headers) verifies for its addresses.
 */
export function l4ChecksumOk(p: Buffer): boolean {
  const v4 = p[0]! >> 4 === 4;
  const off = v4 ? (p[0]! & 15) * 4 : 40;
  const end = v4 ? p.readUInt16BE(2) : 40 + p.readUInt16BE(4);
  const protocol = v4 ? p[9]! : p[6]!;
  const l4 = p.subarray(off, end);
  if (protocol === 1) return sum16(l4) === 0xffff;
  const src = v4 ? p.subarray(12, 16) : p.subarray(8, 24);
  const dst = v4 ? p.subarray(16, 20) : p.subarray(24, 40);
  return sum16(l4, pseudoHeaderSum(src, dst, protocol, l4.length)) === 0xffff;
}

// ---------------------------------------------------------------------------
// Selectors, SAs, policies.

export const ANY4: TrafficSelector = { protocol: 0, startAddress: '0.0.0.0', endAddress: '255.255.255.255', startPort: 0, endPort: 0xffff };
export const ANY6: TrafficSelector = { protocol: 0, startAddress: '::', endAddress: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', startPort: 0, endPort: 0xffff };

export function ts(startAddress: string, endAddress = startAddress, protocol = 0, startPort = 0, endPort = 0xffff): TrafficSelector {
  return { protocol, startAddress, endAddress, startPort, endPort };
}

export const NO_LIFETIMES: SaLifetimes = { softSeconds: 0, hardSeconds: 0, softBytes: 0, hardBytes: 0, softPackets: 0, hardPackets: 0 };

/** AES-GCM-16 with a 128-bit key: 20 octets of key ‖ salt. */
export const KEY_A = Buffer.alloc(20, 0x5a);
export const KEY_B = Buffer.alloc(20, 0xa5);

export function saSpec(o: Partial<SaSpec> & Pick<SaSpec, 'spi' | 'direction' | 'localAddress' | 'remoteAddress'>): SaSpec {
  return {
    mode: 'transport',
    aead: { transformId: 20, keyBits: 128, keyMaterial: KEY_A },
    esn: false,
    replayWindow: 64,
    lifetimes: NO_LIFETIMES,
    reqid: 1,
    localSelectors: [ANY4],
    remoteSelectors: [ANY4],
    ...o,
  };
}

export function policySpec(o: Partial<PolicySpec> & Pick<PolicySpec, 'local' | 'remote'>): PolicySpec {
  return {
    reqid: 1,
    direction: 'out',
    action: 'protect',
    failureMode: 'private',
    priority: 100,
    mode: 'transport',
    localAddress: '192.0.2.1',
    remoteAddress: '192.0.2.2',
    ...o,
  };
}

// ---------------------------------------------------------------------------
// moon ⇄ sun

export type Family = 4 | 6;
export type Mode = 'transport' | 'tunnel';

/** Outer (and, in transport mode, inner) host addresses; inner networks for tunnel mode. */
export const ADDR = {
  4: {
    moon: '192.0.2.1',
    sun: '192.0.2.2',
    moonNet: ['10.1.0.0', '10.1.255.255'],
    sunNet: ['10.2.0.0', '10.2.255.255'],
    moonHost: '10.1.0.5',
    sunHost: '10.2.0.7',
  },
  6: {
    moon: '2001:db8::1',
    sun: '2001:db8::2',
    moonNet: ['fd01::', 'fd01::ffff:ffff:ffff:ffff'],
    sunNet: ['fd02::', 'fd02::ffff:ffff:ffff:ffff'],
    moonHost: 'fd01::5',
    sunHost: 'fd02::7',
  },
} as const;

export const SPI_MOON_TO_SUN = 0xc1000001;
export const SPI_SUN_TO_MOON = 0xc2000002;
export const REQID = 7;

export interface PeerOptions {
  family: Family;
  mode: Mode;
  udp?: boolean;
  esn?: boolean;
  replayWindow?: number;
  lifetimes?: Partial<SaLifetimes>;
  /** Lifetimes of sun's in SA only (default: `lifetimes`). */
  sunInLifetimes?: Partial<SaLifetimes>;
  /** Override the selectors of moon's side / sun's side (default: hosts in transport, nets in tunnel). */
  moonSelectors?: TrafficSelector[];
  sunSelectors?: TrafficSelector[];
  /** Selectors of the in SA of sun (RFC 4301 §5.2 check), if they should differ from the policy's. */
  sunInLocal?: TrafficSelector[];
  sunInRemote?: TrafficSelector[];
  engine?: PacketEngineOptions;
  /** Install the SAs (default true); false leaves only the policies. */
  withSas?: boolean;
  failureMode?: PolicySpec['failureMode'];
}

export interface Peer {
  name: 'moon' | 'sun';
  sad: SecurityAssociationDatabase;
  dp: PacketEngine;
  address: string;
  octets: Buffer;
  /** Inner addresses of this side (hosts in transport mode). */
  host: string;
  outSpi: number;
  inSpi: number;
  acquires: AcquireEvent[];
  expires: ExpireEvent[];
  clock: { ms: number };
}

export interface Pair {
  opts: PeerOptions;
  moon: Peer;
  sun: Peer;
  /** Install (again) the SA pair moon→sun (moon out, sun in) / sun→moon. */
  installSas(): void;
  /** The two halves of an SA `from` → the other peer with this SPI (default key: KEY_A from moon, KEY_B from sun), not installed. */
  saSpecs(from: Peer, spi: number, key?: Buffer): { out: SaSpec; in: SaSpec };
}

export function peers(opts: PeerOptions): Pair {
  const a = ADDR[opts.family];
  const tunnel = opts.mode === 'tunnel';
  const moonSel = opts.moonSelectors ?? [tunnel ? ts(a.moonNet[0], a.moonNet[1]) : ts(a.moon)];
  const sunSel = opts.sunSelectors ?? [tunnel ? ts(a.sunNet[0], a.sunNet[1]) : ts(a.sun)];
  const lifetimes = { ...NO_LIFETIMES, ...opts.lifetimes };
  const encapFor = (local: number, remote: number) => (opts.udp ? { encap: { localPort: local, remotePort: remote } } : {});

  const make = (name: 'moon' | 'sun'): Peer => {
    const clock = { ms: 1_700_000_000_000 };
    const sad = new SecurityAssociationDatabase();
    sad.now = () => clock.ms;
    const peer: Peer = {
      name,
      sad,
      dp: new PacketEngine(sad, opts.engine),
      address: name === 'moon' ? a.moon : a.sun,
      octets: parseIp(name === 'moon' ? a.moon : a.sun)!,
      host: tunnel ? (name === 'moon' ? a.moonHost : a.sunHost) : name === 'moon' ? a.moon : a.sun,
      outSpi: name === 'moon' ? SPI_MOON_TO_SUN : SPI_SUN_TO_MOON,
      inSpi: name === 'moon' ? SPI_SUN_TO_MOON : SPI_MOON_TO_SUN,
      acquires: [],
      expires: [],
      clock,
    };
    sad.on('acquire', (e) => peer.acquires.push(e));
    sad.on('expire', (e) => peer.expires.push(e));
    const local = name === 'moon' ? moonSel : sunSel;
    const remote = name === 'moon' ? sunSel : moonSel;
    for (const direction of ['out', 'in'] as const) {
      sad.addPolicy(
        policySpec({
          reqid: REQID,
          direction,
          local,
          remote,
          mode: opts.mode,
          failureMode: opts.failureMode ?? 'private',
          localAddress: peer.address,
          remoteAddress: name === 'moon' ? a.sun : a.moon,
        }),
      );
    }
    return peer;
  };
  const moon = make('moon');
  const sun = make('sun');

  const specsOf = (from: Peer, spi: number, key: Buffer): { out: SaSpec; in: SaSpec } => {
    const to = from === moon ? sun : moon;
    const fromSel = from === moon ? moonSel : sunSel;
    const toSel = from === moon ? sunSel : moonSel;
    const common = {
      spi,
      mode: opts.mode,
      aead: { transformId: 20, keyBits: 128, keyMaterial: key },
      esn: opts.esn ?? false,
      replayWindow: opts.replayWindow ?? 64,
      reqid: REQID,
    };
    const inLocal = to === sun ? (opts.sunInLocal ?? toSel) : toSel;
    const inRemote = to === sun ? (opts.sunInRemote ?? fromSel) : fromSel;
    const inLifetimes = to === sun && opts.sunInLifetimes ? { ...NO_LIFETIMES, ...opts.sunInLifetimes } : { ...lifetimes };
    return {
      out: {
        ...common,
        lifetimes: { ...lifetimes },
        direction: 'out',
        localAddress: from.address,
        remoteAddress: to.address,
        localSelectors: fromSel,
        remoteSelectors: toSel,
        ...encapFor(4500, 4500),
      },
      in: {
        ...common,
        lifetimes: inLifetimes,
        direction: 'in',
        localAddress: to.address,
        remoteAddress: from.address,
        localSelectors: inLocal,
        remoteSelectors: inRemote,
        ...encapFor(4500, 4500),
      },
    };
  };
  const installOne = (from: Peer, to: Peer, spi: number, key: Buffer) => {
    const specs = specsOf(from, spi, key);
    from.sad.addSa(specs.out);
    to.sad.addSa(specs.in);
    from.sad.setOutboundSa(REQID, spi);
  };
  const pair: Pair = {
    opts,
    moon,
    sun,
    installSas() {
      installOne(moon, sun, SPI_MOON_TO_SUN, KEY_A);
      installOne(sun, moon, SPI_SUN_TO_MOON, KEY_B);
    },
    saSpecs: (from, spi, key) => specsOf(from, spi, key ?? (from === moon ? KEY_A : KEY_B)),
  };
  if (opts.withSas ?? true) pair.installSas();
  return pair;
}

export const outResult = (): OutboundResult => ({ verdict: -1, length: -1, sa: undefined });
export const inResult = (): InboundResult => ({ packet: undefined, sa: undefined });

/** Run `pkt` through `from.dp.outbound`; returns the result and a copy of the output octets. */
export function send(from: Peer, pkt: Buffer): { res: OutboundResult; wire: Buffer } {
  const out = Buffer.alloc(pkt.length + 128, 0xee);
  const res = outResult();
  from.dp.outbound(pkt, pkt.length, out, res);
  return { res, wire: Buffer.from(out.subarray(0, res.length)) };
}

/** What the receiving I/O loop hands to `inbound` for this output of `outbound`. */
export interface Received {
  buf: Buffer;
  espOff: number;
  espEnd: number;
  src: InboundSource;
}

/** Whether the rebuilt packet carries the original's addresses, protocol and upper layer (checksums verify). */
export function expectRebuilt(got: Buffer, original: Buffer): void {
  const v4 = original[0]! >> 4 === 4;
  const hl = v4 ? 20 : 40;
  expect(got[0]! >> 4).toBe(v4 ? 4 : 6);
  expect(got.length).toBe(original.length);
  if (v4) {
    expect(got.subarray(12, 20)).toEqual(original.subarray(12, 20));
    expect(got[9]).toBe(original[9]);
    expect(got.readUInt16BE(2)).toBe(original.length);
    expect(ipv4HeaderOk(got)).toBe(true);
  } else {
    expect(got.subarray(8, 40)).toEqual(original.subarray(8, 40));
    expect(got[6]).toBe(original[6]);
    expect(got.readUInt16BE(4)).toBe(original.length - 40);
  }
  expect(got.subarray(hl)).toEqual(original.subarray(hl));
  expect(l4ChecksumOk(got)).toBe(true);
}

/** Turn `outbound`'s OUT_SEND octets into what the receiver's socket delivers (copies). */
export function receive(pair: Pair, from: Peer, wire: Buffer, srcAddress?: Uint8Array): Received {
  const family = pair.opts.family;
  const address = srcAddress ?? from.octets;
  if (pair.opts.udp) return { buf: Buffer.from(wire), espOff: 0, espEnd: wire.length, src: { family, address, udp: true } };
  if (family === 4) {
    const ihl = (wire[0]! & 15) * 4;
    return { buf: Buffer.from(wire), espOff: ihl, espEnd: wire.length, src: { family, address, udp: false } };
  }
  // raw IPv6 socket: the fixed header is gone, ESP starts at 0
  const esp = Buffer.from(wire.subarray(40));
  return { buf: esp, espOff: 0, espEnd: esp.length, src: { family, address, udp: false } };
}

/** Feed one received packet to `to.dp.inbound` (a fresh scratch buffer each time). */
export function deliverReceived(to: Peer, r: Received): InboundResult {
  const res = inResult();
  const scratch = Buffer.alloc(r.buf.length + 64);
  to.dp.inbound(r.buf, r.espOff, r.espEnd, r.src, scratch, res);
  if (res.packet !== undefined) res.packet = Buffer.from(res.packet);
  return res;
}

/** Send `pkt` from one peer to the other; expects OUT_SEND; returns what the receiver's inbound gave. */
export function transfer(pair: Pair, from: Peer, pkt: Buffer): InboundResult & { received: Received } {
  const { res, wire } = send(from, pkt);
  expect(res.verdict).toBe(OUT_SEND);
  const to = from === pair.moon ? pair.sun : pair.moon;
  const received = receive(pair, from, wire);
  return { ...deliverReceived(to, { ...received, buf: Buffer.from(received.buf) }), received };
}

/** A packet from moon's side to sun's side that the default policies select. */
export function moonToSun(pair: Pair, l4: L4): Buffer {
  return ipPacket(pair.moon.host, pair.sun.host, l4);
}
export function sunToMoon(pair: Pair, l4: L4): Buffer {
  return ipPacket(pair.sun.host, pair.moon.host, l4);
}

/** Every datapath combination: IPv4/IPv6 × transport/tunnel × raw ESP/ESP-in-UDP. */
export const COMBOS: { family: Family; mode: Mode; udp: boolean }[] = [];
for (const family of [4, 6] as const) for (const mode of ['transport', 'tunnel'] as const) for (const u of [false, true]) COMBOS.push({ family, mode, udp: u });
export const comboName = (c: { family: Family; mode: Mode; udp: boolean }): string => `${c.mode} IPv${c.family} ${c.udp ? 'ESP-in-UDP' : 'raw'}`;
