/**
 * tunsec ↔ a real Linux kernel ESP peer: strongSwan 5.9.8 with its
 * kernel-netlink (XFRM) datapath inside a User-Mode Linux 6.1 guest
 * (test/support/uml.ts), TRANSPORT mode, the mission's strict proposals,
 * certificate auth, both IKE roles, IPv4 and IPv6, raw ESP and forced
 * ESP-in-UDP. tunsec runs its userspace datapath in its own namespace (raw
 * ESP sockets: the host kernel has no ESP).
 * Checks: the kernel's SAs carry the SPIs tunsec reports (mode, AEAD, ICV,
 * encap), ping both ways, an iperf3 TCP transfer each way, only ESP (besides
 * IKE and ND) on the wire, no XFRM errors, per-SA packet counts equal on both
 * sides with no ICV/replay failures, and tunsec's DELETE removing the kernel SAs.
 * One guest boot per file; a guest that cannot boot fails the suite.
 * IPv6: the guest's host-to-host policies would swallow cleartext Neighbour
 * Discovery, so both sides get static neighbour entries (lab.staticNeighbours).
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCa, type Issued } from '../../src/pki/issue.js';
import type { ListSasResult } from '../../src/control/protocol.js';
import { Capture, isNeighborDiscovery, type CapturedPacket } from '../support/capture.js';
import { requireRootAndPrograms, waitFor } from '../support/proc.js';
import { requireStrongSwan } from '../support/strongswan.js';
import { GuestStrongSwan, UmlLab, parseXfrmState, requireUml } from '../support/uml.js';
import { peerCertificates, peerDaemon, type PeerName, type TunsecDaemon, type LogLine } from './tunsec-daemon.js';

requireUml();
requireStrongSwan();
requireRootAndPrograms('tunsec ↔ Linux kernel (UML)', ['ip', 'ping', 'iperf3', 'tcpdump']);

const CLI = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const ca = createCa({ subject: 'C=CH, O=tunsec interop, CN=tunsec Kernel Interop CA', key: 'p384' });

let lab: UmlLab;
let certs: Record<PeerName, Issued>;

beforeAll(async () => {
  lab = await UmlLab.create('uk');
  // boot time is part of the suite's budget: keep it visible
  console.log(`UML guest (Linux 6.1) booted in ${lab.uml.bootMs} ms`);
  certs = peerCertificates(ca, lab.pair, 'tunsec interop');
  await lab.staticNeighbours();
}, 90_000);

afterAll(async () => {
  const leftovers = await lab?.destroy();
  expect(leftovers ?? []).toEqual([]);
}, 30_000);

const cases = [
  { family: 'ip4', initiator: 'tunsec', encap: false },
  { family: 'ip4', initiator: 'strongSwan', encap: false },
  { family: 'ip6', initiator: 'tunsec', encap: false },
  { family: 'ip6', initiator: 'strongSwan', encap: false },
  // NAT-T forced on both sides (as behind a NAT): ESP-in-UDP 4500 in transport mode
  { family: 'ip4', initiator: 'tunsec', encap: true },
  { family: 'ip6', initiator: 'strongSwan', encap: true },
] as const;

/** ESP-in-UDP (RFC 3948): UDP 4500 whose first four payload octets are not the non-ESP marker. */
function isEspInUdp(p: CapturedPacket): boolean {
  if (p.protocol !== 'udp' || (p.srcPort !== 4500 && p.dstPort !== 4500)) return false;
  const l4 = p.family === 4 ? (p.ip[0]! & 0x0f) * 4 : 40;
  return p.ip.length >= l4 + 8 + 4 && p.ip.readUInt32BE(l4 + 8) !== 0;
}

describe.each(cases)('transport mode against kernel XFRM ($family, $initiator initiating, encap $encap)', ({ family, initiator, encap }) => {
  let charon: GuestStrongSwan;
  let tunsec: TunsecDaemon;
  let child: LogLine;
  const setupMs: Record<string, number> = {};

  const diag = (): string => `\ntunsec:\n${tunsec?.text().slice(-4000)}\nstrongSwan (guest):\n${charon?.log().slice(-4000)}`;

  beforeAll(async () => {
    const { a, b } = lab.pair;
    charon = new GuestStrongSwan(lab.uml, {
      caPem: ca.certificatePem,
      certPem: certs.sun.certificatePem,
      keyPem: certs.sun.privateKeyPem!,
      connections: [
        {
          name: 'host-host',
          local: b[family],
          remote: a[family],
          // swanctl takes proposal lists as given (strict): the `!` of tunsec's/ipsec.conf syntax is not its syntax
          proposals: 'aes128gcm16-prfsha384-ecp384bp',
          localId: 'sun.tunsec.test',
          remoteId: 'moon.tunsec.test',
          encap,
          children: [{ name: 'host-host', mode: 'transport', espProposals: 'aes128gcm16-ecp384bp', localTs: 'dynamic', remoteTs: 'dynamic' }],
        },
      ],
    });
    let t = performance.now();
    await charon.start();
    setupMs.charonStart = Math.round(performance.now() - t);
    tunsec = peerDaemon(lab.pair, ca, certs, 'moon', {
      name: 'host-host',
      mode: 'transport',
      startAction: initiator === 'tunsec' ? 'start' : 'none',
      family,
      encap,
    });
    t = performance.now();
    await tunsec.start();
    await tunsec.event('daemon_started');
    if (initiator === 'strongSwan') {
      const r = await charon.initiate('host-host');
      expect(r.code, r.stdout + r.stderr + diag()).toBe(0);
    }
    child = await tunsec.event('child_established');
    setupMs.established = Math.round(performance.now() - t);
    console.log(
      `${family} ${initiator} initiating${encap ? ' (ESP-in-UDP)' : ''}: charon up ${setupMs.charonStart} ms, tunsec start → CHILD_SA ${setupMs.established} ms`,
    );
  }, 60_000);

  afterAll(async () => {
    await tunsec?.stop(); // normally already stopped by the last test
    await charon?.stop();
  }, 30_000);

  it('the kernel holds transport-mode SAs with the SPIs tunsec reports', async () => {
    const { a, b } = lab.pair;
    expect(child.mode).toBe('transport');
    const xfrm = await lab.uml.must('ip xfrm state');
    const states = parseXfrmState(xfrm);
    const inbound = states.find((s) => s.spi === child.spi_out); // tunsec → kernel
    const outbound = states.find((s) => s.spi === child.spi_in); // kernel → tunsec
    expect(inbound, `${xfrm}\n${JSON.stringify(child)}`).toMatchObject({
      src: a[family],
      dst: b[family],
      mode: 'transport',
      aead: 'rfc4106(gcm(aes))',
      icvBits: 128,
      encap,
    });
    expect(outbound, `${xfrm}\n${JSON.stringify(child)}`).toMatchObject({
      src: b[family],
      dst: a[family],
      mode: 'transport',
      aead: 'rfc4106(gcm(aes))',
      icvBits: 128,
      encap,
    });
    expect(child.encap).toBe(encap);
    const sas = await charon.swanctl('--list-sas');
    expect(sas.stdout).toMatch(/ESTABLISHED/);
    expect(sas.stdout).toMatch(/INSTALLED, TRANSPORT/);
    expect(sas.stdout).toMatch(/AES_GCM_16-128/);
    expect(sas.stdout).toContain(String(child.spi_in));
    expect(sas.stdout).toContain(String(child.spi_out));
  });

  it('ping both ways and a TCP transfer each way pass, with only ESP on the wire', async () => {
    const { a, b } = lab.pair;
    const capture = await Capture.start(a.ns, a.ifname);
    const throughput: number[] = [];
    try {
      const ping = await lab.pair.exec(a, 'ping', [family === 'ip6' ? '-6' : '-4', '-c', '3', '-i', '0.2', '-W', '3', b[family]], 20_000);
      expect(ping.code, `tunsec side → kernel: ${ping.stdout}${ping.stderr}${diag()}`).toBe(0);
      const back = await lab.uml.exec(`ping ${family === 'ip6' ? '-6' : '-4'} -c 3 -i 0.2 -W 3 ${a[family]}`, 20_000);
      expect(back.code, `kernel → tunsec side: ${back.stdout}${diag()}`).toBe(0);

      for (const reverse of [false, true]) {
        await lab.uml.startIperf3Server(5201);
        const client = await lab.pair.exec(a, 'iperf3', ['-c', b[family], '-p', '5201', '-t', '2', '-J', ...(reverse ? ['-R'] : [])], 40_000);
        const server = { stdout: await lab.uml.stopIperf3Server(5201) };
        expect(client.code, `${client.stdout.slice(-2000)}\n${client.stderr}\nserver: ${server.stdout}${diag()}`).toBe(0);
        const result = JSON.parse(client.stdout) as { end: { sum_received: { bytes: number; bits_per_second: number } } };
        expect(result.end.sum_received.bytes, reverse ? 'kernel → tunsec' : 'tunsec → kernel').toBeGreaterThan(500_000);
        throughput.push(Math.round(result.end.sum_received.bits_per_second / 1e6));
      }
    } finally {
      await capture.stop();
      capture.remove();
    }
    const between = capture.packets().filter((p) => (p.src === a[family] && p.dst === b[family]) || (p.src === b[family] && p.dst === a[family]));
    const esp = (p: CapturedPacket): boolean => (encap ? isEspInUdp(p) : p.protocol === 'esp');
    const ike = (p: CapturedPacket): boolean => p.protocol === 'udp' && (p.srcPort === 500 || p.srcPort === 4500) && !isEspInUdp(p);
    const clear = between.filter((p) => !esp(p) && !ike(p) && !isNeighborDiscovery(p));
    expect(clear.map((p) => `${p.src} > ${p.dst} ${p.protocol} ${p.dstPort ?? p.icmpType ?? ''}`)).toEqual([]);
    const espCount = between.filter(esp).length;
    expect(espCount).toBeGreaterThan(100);
    console.log(
      `${family} ${initiator}${encap ? ' encap' : ''}: ${espCount} ${encap ? 'ESP-in-UDP' : 'ESP'} packets captured, ${throughput.join(' / ')} Mbit/s (tunsec → kernel / kernel → tunsec, Linux 6.1 XFRM under UML)`,
    );
    const stat = await lab.uml.must('cat /proc/net/xfrm_stat');
    const errors = stat.split('\n').filter((l) => /\s[1-9]\d*\s*$/.test(l));
    expect(errors, stat).toEqual([]);
  }, 90_000);

  it("tunsec's counters agree with the kernel's, with no ICV or replay failures", async () => {
    const r = await lab.pair.exec(
      lab.pair.a,
      process.execPath,
      ['--import', 'tsx', CLI, 'list-sas', '--json', '--socket', join(tunsec.dir, 'tunsec.sock')],
      60_000,
    );
    expect(r.code, r.stderr).toBe(0);
    const mine = (JSON.parse(r.stdout) as ListSasResult).ike_sas[0]!.children[0]!;
    expect(mine).toMatchObject({
      spi_in: child.spi_in,
      spi_out: child.spi_out,
      mode: 'transport',
      encap,
      icv_failures: 0,
      replay_drops: 0,
      bad_padding: 0,
      policy_drops: 0,
    });
    const kernel = parseXfrmState(await lab.uml.must('ip -s xfrm state'));
    const kIn = kernel.find((s) => s.spi === child.spi_out)!; // what the kernel received from tunsec
    const kOut = kernel.find((s) => s.spi === child.spi_in)!;
    // bytes too: both count what ESP protects (transport mode: after the IP header)
    expect({ kernelIn: [kIn.packets, kIn.bytes], kernelOut: [kOut.packets, kOut.bytes] }).toEqual({
      kernelIn: [mine.packets_out, mine.bytes_out],
      kernelOut: [mine.packets_in, mine.bytes_in],
    });
  });

  it('stopping tunsec deletes the SAs in the kernel too (DELETE honoured)', async () => {
    const code = await tunsec.stop();
    expect(code).toBe(0);
    const left = await waitFor(
      'kernel SAs gone',
      async () => {
        const states = parseXfrmState(await lab.uml.must('ip xfrm state'));
        return states.some((s) => s.spi === child.spi_in || s.spi === child.spi_out) ? undefined : states;
      },
      10_000,
      200,
    ).catch((err: Error) => err);
    expect(left, diag()).not.toBeInstanceOf(Error);
  }, 30_000);
});
