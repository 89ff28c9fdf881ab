/**
 * tunsec's manual (static) SAs ↔ a real Linux kernel's XFRM (User-Mode Linux
 * 6.1, test/support/uml.ts), TRANSPORT mode, host to host: the kernel gets
 * `ip xfrm state add … aead 'rfc4106(gcm(aes))' 0x<key‖salt> 128 flag esn
 * replay-window 1024` and `ip xfrm policy add`, tunsec the mirror image with
 * the same SPIs and keys (`esp_proposal: aesNNNgcm16-esn`, `replay_window:
 * 1024`) — the first two cases from its `manual:` configuration file, the
 * others through `tunsec sa add` at runtime.
 *
 * Every combination of family (IPv4, IPv6) × encapsulation (raw ESP,
 * ESP-in-UDP 4500) × cipher (AES-128-GCM-16, AES-256-GCM-16) pings both ways;
 * one case per family × encapsulation (both ciphers among them) also runs an
 * iperf3 TCP transfer each way (named "+ iperf3" below). After each case: no
 * cleartext between the hosts on tunsec's side of the wire, the kernel's
 * /proc/net/xfrm_stat all zero, tunsec's ICV/replay counters 0, and the
 * packet counts of both SAs equal in `ip -s xfrm state` and `tunsec sa list
 * --json`.
 *
 * One guest boot for the file; the guest is reconfigured (flush + add) per case.
 * Kernel-side traps (see the reference README): ESP-in-UDP needs a
 * UDP_ENCAP_ESPINUDP socket on 4500 in the guest and an `allow` policy of
 * higher priority for the outer UDP 4500 packets; IPv6 host-to-host policies
 * swallow Neighbour Discovery, so both sides get static neighbour entries.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import type { ManualSaInfo, ManualSaListResult } from '../../src/control/protocol.js';
import type { ListSasResult } from '../../src/control/protocol.js';
import { controlRequest } from '../../src/cli/control-client.js';
import { Capture, isNeighborDiscovery } from '../support/capture.js';
import { requireRootAndPrograms, sleep } from '../support/proc.js';
import { UmlLab, parseXfrmState, requireUml } from '../support/uml.js';
import { TunsecDaemon } from './tunsec-daemon.js';

requireUml();
requireRootAndPrograms('tunsec manual SAs ↔ Linux kernel (UML)', ['ip', 'ping', 'iperf3', 'tcpdump', 'python3']);

type Family = 'ip4' | 'ip6';

interface Case {
  family: Family;
  encap: boolean;
  bits: 128 | 256;
  iperf: boolean;
  /** Installed from tunsec's configuration file at start (else `tunsec sa add`). */
  fromConfig: boolean;
}

const cases: Case[] = [
  { family: 'ip4', encap: true, bits: 128, iperf: true, fromConfig: true },
  { family: 'ip6', encap: true, bits: 256, iperf: true, fromConfig: true },
  { family: 'ip4', encap: false, bits: 256, iperf: true, fromConfig: false },
  { family: 'ip6', encap: false, bits: 128, iperf: true, fromConfig: false },
  { family: 'ip4', encap: false, bits: 128, iperf: false, fromConfig: false },
  { family: 'ip6', encap: false, bits: 256, iperf: false, fromConfig: false },
  { family: 'ip4', encap: true, bits: 256, iperf: false, fromConfig: false },
  { family: 'ip6', encap: true, bits: 128, iperf: false, fromConfig: false },
];

interface CaseSa {
  name: string;
  /** tunsec → kernel (tunsec's spi_out, the kernel's inbound SA). */
  spiAB: number;
  /** kernel → tunsec. */
  spiBA: number;
  keyAB: string;
  keyBA: string;
}

const REPLAY_WINDOW = 1024;
const hex = (spi: number): string => spi.toString(16).padStart(8, '0');
const sas: CaseSa[] = cases.map((c, i) => ({
  name: `k${i}-${c.family}-${c.encap ? 'udp' : 'esp'}-${c.bits}`,
  spiAB: 0xa1000 + i,
  spiBA: 0xb1000 + i,
  keyAB: randomBytes(c.bits / 8 + 4).toString('hex'),
  keyBA: randomBytes(c.bits / 8 + 4).toString('hex'),
}));

let lab: UmlLab;
let tunsec: TunsecDaemon;
const socket = (): string => `${tunsec.dir}/tunsec.sock`;

/** tunsec's side of a case, as `manual.sas.NAME` keys. */
function tunsecSettings(c: Case, sa: CaseSa): Record<string, string> {
  const { a, b } = lab.pair;
  return {
    local_addr: a[c.family],
    remote_addr: b[c.family],
    spi_in: `0x${hex(sa.spiBA)}`,
    spi_out: `0x${hex(sa.spiAB)}`,
    mode: 'transport',
    encap: c.encap ? 'yes' : 'no',
    esp_proposal: `aes${c.bits}gcm16-esn`,
    key_in: `0x${sa.keyBA}`,
    key_out: `0x${sa.keyAB}`,
    replay_window: String(REPLAY_WINDOW),
  };
}

/** The kernel's side of a case: a clean SAD/SPD, then the mirror image of tunsec's SA pair and its policies. */
function kernelScript(c: Case, sa: CaseSa): string {
  const { a, b } = lab.pair;
  const [A, B] = [a[c.family], b[c.family]];
  const len = c.family === 'ip4' ? 32 : 128;
  const encap = c.encap ? ` encap espinudp 4500 4500 ${c.family === 'ip4' ? '0.0.0.0' : '::'}` : '';
  const aead = (key: string): string => `aead 'rfc4106(gcm(aes))' 0x${key} 128`;
  return [
    'ip xfrm policy flush; ip xfrm state flush',
    'set -e',
    `ip xfrm state add src ${A} dst ${B} proto esp spi 0x${hex(sa.spiAB)} reqid 7 mode transport replay-window ${REPLAY_WINDOW} flag esn ${aead(sa.keyAB)}${encap}`,
    `ip xfrm state add src ${B} dst ${A} proto esp spi 0x${hex(sa.spiBA)} reqid 7 mode transport replay-window ${REPLAY_WINDOW} flag esn ${aead(sa.keyBA)}${encap}`,
    `ip xfrm policy add src ${A}/${len} dst ${B}/${len} dir in priority 100 tmpl src ${A} dst ${B} proto esp reqid 7 mode transport`,
    `ip xfrm policy add src ${B}/${len} dst ${A}/${len} dir out priority 100 tmpl src ${B} dst ${A} proto esp reqid 7 mode transport`,
    // the outer UDP 4500 packets meet the inbound policy before the encap socket decapsulates them
    ...(c.encap
      ? [
          `ip xfrm policy add src ${A}/${len} dst ${B}/${len} proto udp sport 4500 dport 4500 dir in priority 10 action allow`,
          `ip xfrm policy add src ${B}/${len} dst ${A}/${len} proto udp sport 4500 dport 4500 dir out priority 10 action allow`,
        ]
      : []),
  ].join('\n');
}

/** Run the `tunsec` CLI in-process. */
async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

async function saList(): Promise<ManualSaInfo[]> {
  const r = await cli(['sa', 'list', '--json', '--socket', socket()]);
  expect(r.code, r.err).toBe(0);
  return (JSON.parse(r.out) as ManualSaListResult).sas;
}

function manualYaml(): string {
  const lines = ['daemon:', '  pid_file: ${DIR}/tunsec.pid', '  control_socket: ${DIR}/tunsec.sock', 'connections: {}', 'manual:', '  sas:'];
  cases.forEach((c, i) => {
    if (!c.fromConfig) return;
    lines.push(`    ${sas[i]!.name}:`);
    for (const [k, v] of Object.entries(tunsecSettings(c, sas[i]!))) lines.push(`      ${k}: "${v}"`);
  });
  return `${lines.join('\n')}\n`;
}

/** A UDP_ENCAP_ESPINUDP socket on 4500 (IPv4 and IPv6) in the guest: without one the kernel does not decapsulate. */
const ENCAP_SOCKETS = `import socket, time
socks = []
for fam, addr in ((socket.AF_INET, '0.0.0.0'), (socket.AF_INET6, '::')):
    s = socket.socket(fam, socket.SOCK_DGRAM)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((addr, 4500))
    s.setsockopt(socket.IPPROTO_UDP, 100, 2)  # UDP_ENCAP, UDP_ENCAP_ESPINUDP
    socks.append(s)
print('encap sockets ready', flush=True)
time.sleep(86400)
`;

beforeAll(async () => {
  lab = await UmlLab.create('um');
  console.log(`UML guest (Linux 6.1) booted in ${lab.uml.bootMs} ms`);
  await lab.staticNeighbours();
  await lab.uml.must(
    [
      `cat > /tmp/encap.py <<'EOF'\n${ENCAP_SOCKETS}EOF`,
      'setsid python3 /tmp/encap.py > /tmp/encap.log 2>&1 < /dev/null & echo $! > /tmp/encap.pid',
      'i=0; while ! grep -q ready /tmp/encap.log && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; cat /tmp/encap.log; grep -q ready /tmp/encap.log',
    ].join('\n'),
  );
  tunsec = new TunsecDaemon(lab.pair.a.ns, manualYaml());
  await tunsec.start();
  await tunsec.event('daemon_started');
}, 90_000);

afterAll(async () => {
  await tunsec?.stop();
  const leftovers = await lab?.destroy();
  expect(leftovers ?? []).toEqual([]);
}, 30_000);

const caseName = (c: Case): string =>
  `${c.family === 'ip4' ? 'IPv4' : 'IPv6'} ${c.encap ? 'ESP-in-UDP 4500' : 'raw ESP'}, AES-${c.bits}-GCM-16 + ESN, replay window ${REPLAY_WINDOW}, ${c.fromConfig ? 'manual: config' : 'tunsec sa add'}: ping both ways${c.iperf ? ' + iperf3 TCP each way' : ' (ping only)'}`;

describe('manual SAs, transport mode, tunsec ↔ Linux 6.1 XFRM (UML)', () => {
  it.each(cases.map((c, i) => ({ ...c, i, title: caseName(c) })))(
    '$title',
    async (c) => {
      const sa = sas[c.i]!;
      const { a, b } = lab.pair;
      const diag = (): string => `\ntunsec:\n${tunsec.text().slice(-3000)}`;

      // tunsec: this case's SA pair; earlier cases' SAs go (config SAs of later cases, of the other family, stay until their turn)
      const later = new Set(sas.slice(c.i + 1).map((s) => s.name));
      for (const other of await saList()) {
        if (other.name === sa.name || later.has(other.name)) continue;
        const del = await cli(['sa', 'del', other.name, '--socket', socket()]);
        expect(del.code, del.err).toBe(0);
      }
      if (!c.fromConfig) {
        const settings = Object.entries(tunsecSettings(c, sa)).map(([k, v]) => `${k}=${v}`);
        const add = await cli(['sa', 'add', sa.name, ...settings, '--socket', socket()]);
        expect(add.code, add.err + diag()).toBe(0);
        expect(add.out).toContain(`SPIs ${hex(sa.spiBA)}_i ${hex(sa.spiAB)}_o`);
      }
      const mine = (await saList()).find((s) => s.name === sa.name);
      expect(mine).toMatchObject({
        name: sa.name,
        origin: c.fromConfig ? 'config' : 'runtime',
        mode: 'transport',
        proposal: `aes${c.bits}gcm16-esn`,
        replay_window: REPLAY_WINDOW,
        encap: c.encap ? { local_port: 4500, remote_port: 4500 } : null,
      });
      // the kernel: the mirror image
      await lab.uml.must(kernelScript(c, sa));
      const xfrmText = await lab.uml.must('ip xfrm state');
      const states = parseXfrmState(xfrmText);
      // ESN on both kernel SAs, and the inbound one's 1024-packet window
      expect(xfrmText.split(/^(?=src )/m).filter((block) => /^\s+replay-window \d+ flag [^\n]*\besn\b/m.test(block)).length, xfrmText).toBe(2);
      expect(xfrmText, xfrmText).toMatch(/replay_window 1024\b/);
      expect(
        states.map((s) => ({ spi: s.spi, mode: s.mode, aead: s.aead, icv: s.icvBits, encap: s.encap })).sort((x, y) => x.spi.localeCompare(y.spi)),
      ).toEqual([
        { spi: hex(sa.spiAB), mode: 'transport', aead: 'rfc4106(gcm(aes))', icv: 128, encap: c.encap },
        { spi: hex(sa.spiBA), mode: 'transport', aead: 'rfc4106(gcm(aes))', icv: 128, encap: c.encap },
      ]);

      // everything between the hosts on tunsec's side except ESP / ESP-in-UDP (and ND)
      const clear = await Capture.start(a.ns, a.ifname, ['not', '(', 'esp', 'or', 'ip6', 'proto', '50', 'or', 'udp', 'port', '4500', 'or', 'arp', ')']);
      const wire = await Capture.start(a.ns, a.ifname, ['-c', '40', c.encap ? 'udp port 4500' : 'esp or ip6 proto 50']);
      const throughput: number[] = [];
      try {
        const v = c.family === 'ip6' ? '-6' : '-4';
        const ping = await lab.pair.exec(a, 'ping', [v, '-c', '3', '-i', '0.2', '-W', '3', b[c.family]], 20_000);
        expect(ping.code, `tunsec side → kernel: ${ping.stdout}${ping.stderr}${diag()}`).toBe(0);
        const back = await lab.uml.exec(`ping ${v} -c 3 -i 0.2 -W 3 ${a[c.family]}`, 20_000);
        expect(back.code, `kernel → tunsec side: ${back.stdout}${diag()}`).toBe(0);
        if (c.iperf) {
          for (const reverse of [false, true]) {
            await lab.uml.startIperf3Server(5201);
            const client = await lab.pair.exec(a, 'iperf3', ['-c', b[c.family], '-p', '5201', '-t', '2', '-J', ...(reverse ? ['-R'] : [])], 40_000);
            const server = { stdout: await lab.uml.stopIperf3Server(5201) };
            expect(client.code, `${client.stdout.slice(-2000)}\n${client.stderr}\nserver: ${server.stdout}${diag()}`).toBe(0);
            const result = JSON.parse(client.stdout) as { end: { sum_received: { bytes: number; bits_per_second: number } } };
            expect(result.end.sum_received.bytes, reverse ? 'kernel → tunsec' : 'tunsec → kernel').toBeGreaterThan(1_000_000); // timed, not -n: with -n the receiver's tally can miss what is still in flight
            throughput.push(Math.round(result.end.sum_received.bits_per_second / 1e6));
          }
        }
      } finally {
        await clear.stop();
        await wire.stop();
        clear.remove();
        wire.remove();
      }
      const between = (p: { src: string; dst: string }): boolean =>
        (p.src === a[c.family] && p.dst === b[c.family]) || (p.src === b[c.family] && p.dst === a[c.family]);
      expect(
        clear
          .packets()
          .filter((p) => between(p) && !isNeighborDiscovery(p))
          .map((p) => `${p.src} > ${p.dst} ${p.protocol} ${p.dstPort ?? p.icmpType ?? ''}`),
      ).toEqual([]);
      expect(wire.packets().filter(between).length).toBeGreaterThanOrEqual(12);

      // let the last TCP segments land before reading the counters
      await sleep(300);
      const stat = await lab.uml.must('cat /proc/net/xfrm_stat');
      expect(
        stat.split('\n').filter((l) => /\s[1-9]\d*\s*$/.test(l)),
        stat,
      ).toEqual([]);
      const kernel = parseXfrmState(await lab.uml.must('ip -s xfrm state'));
      const kIn = kernel.find((s) => s.spi === hex(sa.spiAB))!;
      const kOut = kernel.find((s) => s.spi === hex(sa.spiBA))!;
      const after = (await saList()).find((s) => s.name === sa.name);
      expect(after).toMatchObject({
        name: sa.name,
        spi_in: hex(sa.spiBA),
        spi_out: hex(sa.spiAB),
        icv_failures: 0,
        replay_drops: 0,
        bad_padding: 0,
        policy_drops: 0,
      });
      // bytes too: both count what ESP protects (transport mode: after the IP header)
      expect({ kernelIn: [kIn.packets, kIn.bytes], kernelOut: [kOut.packets, kOut.bytes] }).toEqual({
        kernelIn: [after!.packets_out, after!.bytes_out],
        kernelOut: [after!.packets_in, after!.bytes_in],
      });
      expect(after!.packets_in).toBeGreaterThanOrEqual(6);
      const counters = ((await controlRequest(socket(), 'list-sas')) as ListSasResult).datapath?.counters;
      expect({ inIcv: counters?.inIcv, inReplay: counters?.inReplay }).toEqual({ inIcv: 0, inReplay: 0 });
      console.log(
        `${caseName(c)}: ${after!.packets_out} / ${after!.packets_in} packets out / in${throughput.length ? `, ${throughput.join(' / ')} Mbit/s (tunsec → kernel / kernel → tunsec, Linux 6.1 XFRM under UML)` : ''}`,
      );
    },
    60_000,
  );
});
