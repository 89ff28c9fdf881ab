/**
 * The two ESP targets (esp-raw, esp-udp): PacketEngine.inbound — the whole
 * inbound path of src/esp/engine.ts — with four real SAs installed
 * through the SAD (IPv4/IPv6 × transport/tunnel; one of them the fixture's
 * strongSwan CHILD_SA with its logged key, one with ESN and no replay
 * window), fed the way src/esp/io.ts feeds it: raw IPv4 with the IP header
 * in front of ESP, raw IPv6 and ESP-in-UDP as the bare ESP packet.
 *
 * Input: [control][octets …]
 *   control bit 0  0 = the octets are the packet as received ("wire"),
 *                  1 = the octets are an ESP *plaintext* (payload ‖ padding ‖
 *                      Pad Length ‖ Next Header, all fuzzed) sealed here under
 *                      the SA's key with a fresh sequence number, so that
 *                      mutations pass the ICV and reach the padding, Next
 *                      Header, inner-packet and policy checks;
 *   bits 1–2       which SA (sealing, and wire packets with bit 5);
 *   bit 3          sealing: reuse an old sequence number (replay path);
 *   bit 4          sealing: flip one octet after sealing (ICV path);
 *   bit 5          wire: overwrite the SPI with the chosen SA's.
 *
 * Never acceptable: an exception; a packet counted under no or under two
 * inbound counters; an SA's replay window that moved for a packet that did
 * not authenticate; an ICV failure not counted on the SA; a delivered packet
 * that is not a whole IPv4/IPv6 packet.
 */
import { randomBytes } from 'node:crypto';
import type { SaSpec, TrafficSelector } from '../../src/esp/api.js';
import { PacketEngine, type DatapathCounters, type InboundResult, type InboundSource } from '../../src/esp/engine.js';
import { ipv4Frame, ipv6TotalLength, writeIpv4HeaderChecksum } from '../../src/esp/ip.js';
import type { ReplayWindow } from '../../src/esp/replay.js';
import { SecurityAssociationDatabase, type SadEntry } from '../../src/esp/sadb.js';
import { parseIp } from '../../src/util/ip.js';
import { espInUdpPackets, espSaRows } from './fixtures.js';
import { OracleViolation, type FuzzTarget } from './target.js';

const MOON4 = '10.77.0.1';
const SUN4 = '10.77.0.2';
const MOON6 = 'fd77::1';
const SUN6 = 'fd77::2';

const host = (a: string): TrafficSelector => ({ protocol: 0, startAddress: a, endAddress: a, startPort: 0, endPort: 0xffff });

interface SaPlan {
  spi: number;
  family: 4 | 6;
  mode: 'transport' | 'tunnel';
  esn: boolean;
  replayWindow: number;
  key: Buffer;
  /** First sequence number used when sealing. */
  firstSeq: number;
}

/** The four inbound SAs (sun's side: local = sun, remote = moon). */
function plans(): SaPlan[] {
  const fixture = espSaRows().find((r) => r.src === MOON4 && r.dst === SUN4)!;
  return [
    { spi: 0x10000001, family: 4, mode: 'transport', esn: false, replayWindow: 64, key: randomBytes(20), firstSeq: 1 },
    { spi: 0x10000002, family: 6, mode: 'transport', esn: false, replayWindow: 64, key: randomBytes(20), firstSeq: 1 },
    // the strongSwan CHILD_SA of the fixture: its real ESP-in-UDP packets decrypt
    { spi: fixture.spi, family: 4, mode: 'tunnel', esn: false, replayWindow: 64, key: fixture.key, firstSeq: 100 },
    // ESN without a replay window, sealing from just below 2^32 so the high half changes
    { spi: 0x10000004, family: 6, mode: 'tunnel', esn: true, replayWindow: 0, key: randomBytes(20), firstSeq: 0xffff_fff0 },
  ];
}

const INBOUND_COUNTERS: (keyof DatapathCounters)[] = [
  'inPackets',
  'inMalformed',
  'inUnknownSpi',
  'inReplay',
  'inIcv',
  'inPadding',
  'inDummy',
  'inPolicy',
  'expiredDrops',
];
/** Outcomes of a packet whose ICV verified: only these may move the replay window. */
const AUTHENTICATED = new Set<keyof DatapathCounters>(['inPackets', 'inPadding', 'inDummy', 'inPolicy', 'inMalformed', 'expiredDrops', 'inReplay']);

function windowState(w: ReplayWindow): string {
  const ring = (w as unknown as { ring: Uint32Array }).ring;
  return `${w.top}:${Buffer.from(ring.buffer, ring.byteOffset, ring.byteLength).toString('hex')}`;
}

function ipv4Header(src: string, dst: string, payloadLength: number): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h.writeUInt16BE(20 + payloadLength, 2);
  h[8] = 64;
  h[9] = 50;
  parseIp(src)!.copy(h, 12);
  parseIp(dst)!.copy(h, 16);
  writeIpv4HeaderChecksum(h, 0);
  return h;
}

export function espTarget(name: 'esp-raw' | 'esp-udp', udp: boolean): FuzzTarget {
  let sad: SecurityAssociationDatabase;
  let dp: PacketEngine;
  let entries: SadEntry[] = [];
  let saPlans: SaPlan[] = [];
  let seqs: number[] = [];
  let executions = 0;
  const scratch = Buffer.alloc(0x10000 + 128);
  const res: InboundResult = { packet: undefined, sa: undefined };

  function install(): void {
    sad = new SecurityAssociationDatabase();
    dp = new PacketEngine(sad);
    entries = saPlans.map((p) => {
      const [local, remote] = p.family === 4 ? [SUN4, MOON4] : [SUN6, MOON6];
      const spec: SaSpec = {
        spi: p.spi,
        direction: 'in',
        localAddress: local,
        remoteAddress: remote,
        mode: p.mode,
        ...(udp ? { encap: { localPort: 4500, remotePort: 4500 } } : {}),
        aead: { transformId: 20, keyBits: 128, keyMaterial: p.key },
        esn: p.esn,
        replayWindow: p.replayWindow,
        lifetimes: { softSeconds: 0, hardSeconds: 0, softBytes: 0, hardBytes: 0, softPackets: 0, hardPackets: 0 },
        reqid: p.spi & 0xffff,
        localSelectors: [host(SUN4), host(SUN6)],
        remoteSelectors: [host(MOON4), host(MOON6)],
      };
      sad.addSa(spec);
      return sad.inboundSa(p.spi)!;
    });
    seqs = saPlans.map((p) => p.firstSeq);
  }

  /** ESP packet: SPI ‖ seq ‖ IV ‖ AEAD(plaintext) ‖ ICV, sealed with the SA's key. */
  function seal(i: number, plaintext: Buffer, replay: boolean): Buffer {
    const e = entries[i]!;
    let seq: number;
    if (replay) seq = Math.max(saPlans[i]!.firstSeq, seqs[i]! - 1 - (plaintext.length & 7));
    else seq = seqs[i]!++;
    const low = seq >>> 0;
    const high = Math.floor(seq / 0x1_0000_0000) >>> 0;
    const head = Buffer.alloc(16);
    head.writeUInt32BE(e.esp.spi, 0);
    head.writeUInt32BE(low, 4);
    head.writeUInt32BE(high, 8);
    head.writeUInt32BE(low, 12); // IV: the sequence number
    const aad = e.esp.esn ? Buffer.concat([head.subarray(0, 4), head.subarray(8, 12), head.subarray(4, 8)]) : head.subarray(0, 8);
    return Buffer.concat([head.subarray(0, 8), head.subarray(8, 16), e.esp.ctx.seal(head.subarray(8, 16), aad, plaintext)]);
  }

  const family = (i: number): 4 | 6 => saPlans[i]!.family;

  return {
    name,
    kind: 'esp',
    description: udp
      ? 'ESP-in-UDP packets (bare ESP, source address from the UDP socket) → PacketEngine.inbound with 4 SAs (v4/v6 × transport/tunnel, ESN, the fixture SA)'
      : 'raw ESP (IPv4 with its header, IPv6 bare) → PacketEngine.inbound with 4 SAs (v4/v6 × transport/tunnel, ESN, the fixture SA)',
    maxLength: 2048,
    dictionary: [
      Buffer.from([0x45]),
      Buffer.from([0x60, 0x00, 0x00, 0x00]),
      Buffer.from([0x01, 0x02, 0x03, 0x04]), // padding
      Buffer.from([0x02, 0x04]), // Pad Length 2, Next Header IPv4
      Buffer.from([0x00, 0x29]), // Next Header IPv6
      Buffer.from([0x00, 0x3b]), // Next Header 59 (dummy)
      Buffer.from([0x00, 0x06]), // TCP
      Buffer.from([0x00, 0x11]), // UDP
      Buffer.from([0x00, 0x01]), // ICMP
      Buffer.from([0x00, 0x3a]), // ICMPv6
      Buffer.from([10, 77, 0, 1]),
      Buffer.from([10, 77, 0, 2]),
      Buffer.from([0xfd, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01]),
      Buffer.from([0x20, 0xbd, 0x94, 0x53]), // the fixture SPI
      Buffer.from([0x02, 0x04, 0x05, 0xb4]), // TCP MSS option
    ],
    setup() {
      saPlans = plans();
      install();
    },
    seeds() {
      saPlans = plans();
      install();
      const out: Buffer[] = [];
      // the fixture's ESP-in-UDP packets towards sun, as received (wire mode)
      const toSun = espInUdpPackets().filter((p) => p.dst === SUN4);
      for (const p of toSun) out.push(Buffer.concat([Buffer.from([0]), udp ? p.esp : Buffer.concat([ipv4Header(MOON4, SUN4, p.esp.length), p.esp])]));
      // and their plaintexts (real inner pings, v4 and v6) for sealing under every SA
      const fixtureSa = entries[2]!;
      for (const p of toSun.slice(0, 4)) {
        const esp = Buffer.from(p.esp);
        const seqLow = esp.readUInt32BE(4);
        const pt = fixtureSa.esp.ctx.open(esp.subarray(8, 16), esp.subarray(0, 8), esp.subarray(16));
        if (!pt) continue;
        const nh = pt[pt.length - 1]!;
        const padLength = pt[pt.length - 2]!;
        const inner = pt.subarray(0, pt.length - 2 - padLength);
        void seqLow;
        for (let i = 0; i < 4; i++) {
          const tunnel = saPlans[i]!.mode === 'tunnel';
          const innerV = inner[0]! >> 4;
          if (!tunnel) {
            // transport: the inner packet's upper-layer payload, with its protocol as Next Header
            if (innerV !== saPlans[i]!.family) continue;
            const hl = innerV === 4 ? (inner[0]! & 15) * 4 : 40;
            const proto = innerV === 4 ? inner[9]! : inner[6]!;
            const l4 = inner.subarray(hl);
            const pad = (4 - ((l4.length + 2) & 3)) & 3;
            out.push(Buffer.concat([Buffer.from([1 | (i << 1)]), l4, Buffer.from([1, 2, 3].slice(0, pad)), Buffer.from([pad, proto])]));
          } else {
            out.push(Buffer.concat([Buffer.from([1 | (i << 1)]), pt.subarray(0, pt.length - 1), Buffer.from([nh])]));
          }
        }
      }
      return out;
    },
    run(data) {
      if (data.length === 0) return 'empty';
      if (++executions % 4096 === 0) install();
      const ctl = data[0]!;
      const which = (ctl >> 1) & 3;
      let packet: Buffer;
      let fam: 4 | 6;
      if (ctl & 1) {
        const esp = seal(which, data.subarray(1), (ctl & 8) !== 0);
        if (ctl & 16) esp[data.length % esp.length]! ^= 0x40;
        fam = family(which);
        packet = !udp && fam === 4 ? Buffer.concat([ipv4Header(MOON4, SUN4, esp.length), esp]) : esp;
      } else {
        packet = Buffer.from(data.subarray(1));
        // raw: IPv4 when it looks like IPv4, as the raw v4 socket delivers; the family of the socket otherwise
        fam = !udp && packet.length > 0 && packet[0]! >> 4 === 4 ? 4 : ctl & 64 ? 4 : 6;
        if (udp) fam = ctl & 64 ? 6 : 4;
        const off = !udp && fam === 4 ? (packet[0]! & 0x0f) << 2 : 0;
        if (ctl & 32 && packet.length >= off + 4) packet.writeUInt32BE(entries[which]!.esp.spi, off);
      }
      const src: InboundSource = { family: fam, address: parseIp(fam === 4 ? MOON4 : MOON6)!, udp };
      const espOff = !udp && fam === 4 ? (packet[0]! & 0x0f) << 2 : 0;
      if (espOff > packet.length) return 'io:malformed'; // io.ts counts it without calling the datapath

      // read before: decapsulation works in place
      const spi = packet.length >= espOff + 4 ? packet.readUInt32BE(espOff) : -1;
      const before = INBOUND_COUNTERS.map((k) => dp.counters[k]);
      const windows = entries.map((e) => windowState(e.replay!));
      const icv = entries.map((e) => e.counters.icvFailures);
      dp.inbound(packet, espOff, packet.length, src, scratch, res);

      const moved = INBOUND_COUNTERS.filter((k, i) => dp.counters[k] !== before[i]);
      if (moved.length !== 1 || dp.counters[moved[0]!] !== before[INBOUND_COUNTERS.indexOf(moved[0]!)]! + 1) {
        throw new OracleViolation(`one inbound packet moved the counters ${moved.length === 0 ? '(none)' : moved.join(', ')}`);
      }
      const outcome = moved[0]!;
      entries.forEach((e, i) => {
        if (windowState(e.replay!) !== windows[i] && (!AUTHENTICATED.has(outcome) || e.esp.spi !== spi)) {
          throw new OracleViolation(`SA ${e.name}: the replay window moved for a packet counted as ${outcome}`);
        }
        const icvMoved = e.counters.icvFailures - icv[i]!;
        if (icvMoved !== 0 && (outcome !== 'inIcv' || icvMoved !== 1))
          throw new OracleViolation(`SA ${e.name}: icvFailures moved by ${icvMoved} for ${outcome}`);
      });
      if (outcome === 'inIcv' && entries.every((e, i) => e.counters.icvFailures === icv[i]))
        throw new OracleViolation('inIcv counted without an SA ICV failure');
      if (res.packet !== undefined) {
        if (outcome !== 'inPackets') throw new OracleViolation(`a packet was delivered but counted as ${outcome}`);
        const p = res.packet;
        const v = p.length > 0 ? p[0]! >> 4 : 0;
        const whole = v === 4 ? ipv4Frame(p)?.totalLength === p.length : v === 6 ? ipv6TotalLength(p) === p.length : false;
        if (!whole) throw new OracleViolation(`delivered ${p.length} octets that are not one whole IPv4/IPv6 packet`);
      } else if (outcome === 'inPackets') {
        throw new OracleViolation('counted as delivered, but no packet');
      }
      const p = res.packet;
      const detail = p === undefined ? '' : p[0]! >> 4 === 4 ? `:v4:${p[9]}` : `:v6:${p[6]}`;
      return `${ctl & 1 ? 'seal' : 'wire'}:${which}:${fam}:${outcome}${detail}`;
    },
  };
}
