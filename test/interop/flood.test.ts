/**
 * Issue 9 (hardening), denial of service: a tunsec responder (netns a) is
 * flooded with ≥ 10 000 IKE_SA_INIT requests, each from a different spoofed
 * source address (198.18.0.0/16, sent from netns b through an IP_HDRINCL raw
 * socket: test/support/ike-flood.ts), while a legitimate peer in netns b —
 * a tunsec daemon, then strongSwan's charon — sets up its IKE SA and
 * CHILD_SA. Shown: COOKIE notifies on the wire (tcpdump), the legitimate SAs
 * established under the flood, half-open IKE SAs held at the COOKIE
 * threshold, the daemon's memory bounded (sampled from /proc and reported).
 *
 * The spoofed range is routed back to netns b, which does not forward: the
 * responder's answers leave on the veth (where tcpdump sees them) and vanish.
 * Missing programs fail the suite, never skip it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCa, issueCertificate, type Issued } from '../../src/pki/issue.js';
import { NotifyType, PayloadType, decodeMessage } from '../../src/ike/codec/index.js';
import { Capture, type CapturedPacket } from '../support/capture.js';
import { NetnsPair } from '../support/netns.js';
import { scrapeMetrics } from '../support/metrics.js';
import { must, pidFromFile, requireRootAndPrograms, sleep, stopPid, waitFor } from '../support/proc.js';
import { StrongSwan, requireStrongSwan } from '../support/strongswan.js';
import { TunsecDaemon, credentialFiles, tunsecYaml } from './tunsec-daemon.js';

requireRootAndPrograms('IKE_SA_INIT flood', ['ip', 'tcpdump', 'ping', 'curl']);
requireStrongSwan();

const repo = fileURLToPath(new URL('../../', import.meta.url));
/** Requests and packets per second (override for a one-off stress run: TUNSEC_FLOOD_COUNT / TUNSEC_FLOOD_RATE). */
const FLOOD_COUNT = Number(process.env.TUNSEC_FLOOD_COUNT ?? 15_000);
const FLOOD_RATE = Number(process.env.TUNSEC_FLOOD_RATE ?? 1_500);
/** The flood's longest run: the legitimate SAs must be up (on a busy machine) before it ends. */
const FLOOD_MAX_S = 90;
const SPOOFED = '198.18';
const ca = createCa({ subject: 'C=CH, O=tunsec flood test, CN=tunsec Flood CA', key: 'p384' });

/** One request/response on a daemon's control socket (we are root: SO_PEERCRED lets us in). */
function control(
  socket: string,
  command: string,
  args: Record<string, unknown> = {},
  timeoutMs = 70_000,
): Promise<{ ok: boolean; result?: any; error?: string }> {
  return new Promise((resolve, reject) => {
    const c = createConnection(socket);
    let buf = '';
    const timer = setTimeout(() => {
      c.destroy();
      reject(new Error(`control ${command}: no answer in ${timeoutMs} ms`));
    }, timeoutMs);
    c.on('connect', () => c.write(`${JSON.stringify({ id: 1, command, args })}\n`));
    c.on('data', (d) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        c.end();
        resolve(JSON.parse(buf.slice(0, nl)));
      }
    });
    c.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** VmRSS and VmHWM of a process, in MiB. */
function memory(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

/** UDP counters of a namespace (/proc/net/snmp): datagrams delivered and lost to a full receive buffer. */
async function udpStats(pair: NetnsPair, side: NetnsPair['a']): Promise<{ inDatagrams: number; rcvbufErrors: number }> {
  const r = await pair.exec(side, 'cat', ['/proc/net/snmp']);
  const lines = r.stdout.split('\n').filter((l) => l.startsWith('Udp:'));
  const keys = lines[0]!.split(/\s+/);
  const values = lines[1]!.split(/\s+/).map(Number);
  const get = (k: string): number => values[keys.indexOf(k)] ?? NaN;
  return { inDatagrams: get('InDatagrams'), rcvbufErrors: get('RcvbufErrors') };
}

interface IkeOnWire {
  cookies: number;
  /** IKE_SA_INIT responses with an SA payload (a key exchange was done). */
  initResponses: number;
  cookieTo: Set<string>;
}

function ikeResponses(packets: CapturedPacket[]): IkeOnWire {
  const out: IkeOnWire = { cookies: 0, initResponses: 0, cookieTo: new Set() };
  for (const p of packets) {
    if (p.protocol !== 'udp' || p.srcPort !== 500 || p.family !== 4) continue;
    const ihl = (p.ip[0]! & 0x0f) * 4;
    try {
      const m = decodeMessage(p.ip.subarray(ihl + 8));
      const first = m.payloads[0];
      if (first?.type === PayloadType.NOTIFY && first.notifyType === NotifyType.COOKIE) {
        out.cookies++;
        out.cookieTo.add(p.dst);
      } else if (m.payloads.some((x) => x.type === PayloadType.SA)) out.initResponses++;
    } catch {
      /* not IKE */
    }
  }
  return out;
}

interface FloodFigures {
  sent: number;
  senderDropped: number;
  seconds: number;
  rate: number;
  received: number;
  rcvbufErrors: number;
  cookiesOnWire: number;
  cookieDestinations: number;
  keyExchangesOnWire: number;
  status: any;
  rssBefore: number;
  rssPeak: number;
  rssAfter: number;
  hwm: number;
  legitSetupMs: number;
}

/**
 * The flood around `legit`: starts sampling the responder's memory, starts
 * the capture and the flood, lets the flood run `headStartMs`, then runs
 * `legit` (which returns when the legitimate SAs are up), lets the flood go on
 * until FLOOD_COUNT requests are out and stops it.
 */
async function flood(pair: NetnsPair, responder: TunsecDaemon, mark: number, legit: () => Promise<void>, headStartMs = 1500): Promise<FloodFigures> {
  const pid = pidFromFile(join(responder.dir, 'tunsec.pid'));
  if (pid === undefined) throw new Error('the responder wrote no pid file');
  const rssBefore = memory(pid).rss;
  let rssPeak = rssBefore;
  const sampler = setInterval(() => {
    try {
      rssPeak = Math.max(rssPeak, memory(pid).rss);
    } catch {
      /* gone */
    }
  }, 100);
  const udpBefore = await udpStats(pair, pair.a);
  const capture = await Capture.start(pair.a.ns, pair.a.ifname, ['udp', 'and', 'src', 'host', pair.a.ip4, 'and', 'src', 'port', '500']);
  let attacker: ChildProcess | undefined;
  try {
    attacker = spawn(
      'ip',
      [
        'netns',
        'exec',
        pair.b.ns,
        process.execPath,
        '--import',
        'tsx',
        join(repo, 'test/support/ike-flood.ts'),
        pair.a.ip4,
        // at most FLOOD_MAX_S seconds of it: stopped once the legitimate SAs are up and FLOOD_COUNT went out
        String(FLOOD_RATE * FLOOD_MAX_S),
        String(FLOOD_RATE),
        SPOOFED,
        String(mark),
      ],
      {
        cwd: repo,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    attacker.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    attacker.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const done = new Promise<number | null>((resolve) => attacker!.on('exit', (code) => resolve(code)));
    // the flood is on once the responder has handed out its first cookies
    await waitFor(
      'the first COOKIE notifies',
      async () => ((await control(join(responder.dir, 'tunsec.sock'), 'status')).result?.daemon?.ike?.cookies_sent ?? 0) > 100,
      30_000,
      200,
    );
    await sleep(headStartMs);
    const t0 = performance.now();
    await legit();
    const legitSetupMs = Math.round(performance.now() - t0);
    const stillFlooding = attacker.exitCode === null;
    // the flood runs on until FLOOD_COUNT requests are out (at FLOOD_RATE), however fast the
    // legitimate setup was on a busy machine, then stops
    const floodStart = t0 - headStartMs;
    await sleep(Math.max(0, (FLOOD_COUNT / FLOOD_RATE) * 1000 - (performance.now() - floodStart)));
    attacker.kill('SIGTERM');
    const code = await done;
    expect(code, `flood sender failed: ${err}`).toBe(0);
    expect(stillFlooding, 'the legitimate SAs were set up while the flood was still running').toBe(true);
    const sender = JSON.parse(out.trim().split('\n').at(-1)!) as { sent: number; dropped: number; seconds: number; rate: number };
    await sleep(1500); // the responder drains its socket
    const wire = ikeResponses(await capture.stop());
    const status = (await control(join(responder.dir, 'tunsec.sock'), 'status')).result.daemon.ike;
    const udpAfter = await udpStats(pair, pair.a);
    clearInterval(sampler);
    const after = memory(pid);
    return {
      sent: sender.sent,
      senderDropped: sender.dropped,
      seconds: sender.seconds,
      rate: sender.rate,
      received: udpAfter.inDatagrams - udpBefore.inDatagrams,
      rcvbufErrors: udpAfter.rcvbufErrors - udpBefore.rcvbufErrors,
      cookiesOnWire: wire.cookies,
      cookieDestinations: wire.cookieTo.size,
      keyExchangesOnWire: wire.initResponses,
      status,
      rssBefore,
      rssPeak: Math.max(rssPeak, after.rss),
      rssAfter: after.rss,
      hwm: after.hwm,
      legitSetupMs,
    };
  } finally {
    clearInterval(sampler);
    if (attacker?.pid !== undefined && attacker.exitCode === null) await stopPid(attacker.pid, 1000);
    await capture.stop();
    capture.remove();
  }
}

function report(who: string, f: FloodFigures): void {
  const mb = (x: number): string => `${x.toFixed(1)} MiB`;
  console.log(
    `[flood, ${who} initiating] ${f.sent} spoofed IKE_SA_INIT requests in ${f.seconds.toFixed(1)} s (${Math.round(f.rate)}/s; ${f.senderDropped} not sent), ` +
      `${f.received} UDP datagrams delivered to the responder's sockets, ${f.rcvbufErrors} lost to a full receive buffer; ` +
      `${f.cookiesOnWire} COOKIE notifies on the wire to ${f.cookieDestinations} addresses, ${f.keyExchangesOnWire} IKE_SA_INIT responses with a key exchange; ` +
      `status: cookies_sent ${f.status.cookies_sent}, cookies_rejected ${f.status.cookies_rejected}, half_open ${f.status.half_open}, limit_drops ${f.status.limit_drops}, peers ${f.status.peers}; ` +
      `RSS before ${mb(f.rssBefore)}, peak ${mb(f.rssPeak)}, after ${mb(f.rssAfter)} (VmHWM ${mb(f.hwm)}); legitimate IKE + CHILD SA set up under the flood in ${f.legitSetupMs} ms`,
  );
}

function expectBounded(f: FloodFigures): void {
  expect(f.sent).toBeGreaterThanOrEqual(10_000);
  // the responder saw most of the flood, answered with COOKIEs, and did a key exchange only for the first few
  expect(f.received).toBeGreaterThan(5_000);
  expect(f.cookiesOnWire).toBeGreaterThan(5_000);
  expect(f.cookieDestinations).toBeGreaterThan(5_000);
  expect(f.status.cookies_sent).toBeGreaterThanOrEqual(f.cookiesOnWire);
  expect(f.keyExchangesOnWire).toBeLessThanOrEqual(f.status.limits.cookieThreshold + 2);
  expect(f.status.half_open).toBeLessThanOrEqual(f.status.limits.cookieThreshold);
  // spoofed sources never returned a cookie: no per-address state for them
  expect(f.status.peers).toBeLessThanOrEqual(f.status.limits.cookieThreshold + 2);
  // generous: a Node daemon is ~150–250 MiB; the flood must not add more than 100 MiB
  expect(f.rssPeak - f.rssBefore).toBeLessThan(100);
  expect(f.rssPeak).toBeLessThan(512);
}

/** Netns pair with the spoofed range routed from a back to b. */
async function floodLab(label: string): Promise<NetnsPair> {
  const pair = await NetnsPair.create(label);
  await must('ip', ['-n', pair.a.ns, 'route', 'add', `${SPOOFED}.0.0/16`, 'via', pair.b.ip4]);
  return pair;
}

function responderDaemon(pair: NetnsPair, cert: Issued, mode: 'transport' | 'tunnel'): TunsecDaemon {
  return new TunsecDaemon(
    pair.a.ns,
    tunsecYaml({
      name: 'flood',
      local: pair.a.ip4,
      remote: '%any',
      localId: 'moon.flood.test',
      remoteId: 'sun.flood.test',
      mode,
      startAction: 'none',
      daemonExtra: ['metrics: 127.0.0.1:9810'],
    }),
    credentialFiles(ca.certificatePem, cert),
  );
}

const certFor = (name: string, ip: string): Issued =>
  issueCertificate(ca, { subject: `C=CH, O=tunsec flood test, CN=${name}`, key: 'p384', subjectAltNames: { dns: [`${name}.flood.test`], ip: [ip] } });

describe('a tunsec responder flooded with spoofed IKE_SA_INIT requests, a tunsec peer initiating', () => {
  let pair: NetnsPair;
  let moon: TunsecDaemon;
  let sun: TunsecDaemon;

  beforeAll(async () => {
    pair = await floodLab('fl');
    moon = responderDaemon(pair, certFor('moon', pair.a.ip4), 'transport');
    sun = new TunsecDaemon(
      pair.b.ns,
      tunsecYaml({
        name: 'flood',
        local: pair.b.ip4,
        remote: pair.a.ip4,
        localId: 'sun.flood.test',
        remoteId: 'moon.flood.test',
        mode: 'transport',
        startAction: 'none',
      }),
      credentialFiles(ca.certificatePem, certFor('sun', pair.b.ip4)),
    );
    await Promise.all([moon.start(), sun.start()]);
    await Promise.all([moon.event('daemon_started', 30_000), sun.event('daemon_started', 30_000)]);
  }, 60_000);

  afterAll(async () => {
    await sun?.stop();
    await moon?.stop();
    await pair?.destroy();
  }, 30_000);

  it('sends COOKIEs, keeps half-open state and memory bounded, and still lets the tunsec peer establish its SAs', async () => {
    // the flood carries sun's fwmark: sun's routes into its TUN device (once its SA is up) must not swallow it
    const f = await flood(pair, moon, 0x7473, async () => {
      const r = await control(join(sun.dir, 'tunsec.sock'), 'up', { name: 'flood', timeout: 60 });
      expect(r.ok, `${r.error}\nsun:\n${sun.text()}\nmoon:\n${moon.text()}`).toBe(true);
      await moon.event('child_established', 30_000);
    });
    report('tunsec', f);
    expectBounded(f);
    // the same figures and the limits in force, as metrics
    const metrics = await scrapeMetrics(pair, pair.a, 'http://127.0.0.1:9810/metrics');
    expect(metrics.get('tunsec_ike_cookies_sent_total')).toBe(f.status.cookies_sent);
    expect(metrics.get('tunsec_ike_sas_half_open')).toBe(10);
    expect(metrics.get('tunsec_ike_cookie_mode')).toBe(1);
    expect(metrics.get('tunsec_limit{limit="cookie_threshold"}')).toBe(10);
    expect(metrics.get('tunsec_limit{limit="half_open_max"}')).toBe(1024);
    expect(metrics.get('tunsec_ike_peer_rate_entries')).toBe(f.status.peers);
    // the legitimate initiator went through COOKIE mode: its retry with the cookie was accepted
    expect(sun.text()).toMatch(/cookie/i);
    const ping = await pair.exec(pair.b, 'ping', ['-c', '2', '-i', '0.2', '-W', '3', pair.a.ip4], 15_000);
    expect(ping.code, `${ping.stdout}${ping.stderr}`).toBe(0);
  }, 90_000);
});

describe('a tunsec responder flooded with spoofed IKE_SA_INIT requests, strongSwan initiating', () => {
  let pair: NetnsPair;
  let moon: TunsecDaemon;
  let sun: StrongSwan;

  beforeAll(async () => {
    pair = await floodLab('fs');
    const sunCert = certFor('sun', pair.b.ip4);
    moon = responderDaemon(pair, certFor('moon', pair.a.ip4), 'tunnel');
    sun = new StrongSwan({
      netns: pair.b.ns,
      connections: [
        {
          name: 'flood',
          localAddrs: [pair.b.ip4],
          remoteAddrs: [pair.a.ip4],
          proposals: 'aes128gcm16-prfsha384-ecp384bp',
          localId: 'sun.flood.test',
          remoteId: 'moon.flood.test',
          certPem: sunCert.certificatePem,
          keyPem: sunCert.privateKeyPem!,
          caPem: ca.certificatePem,
          children: [{ name: 'flood', mode: 'tunnel', espProposals: 'aes128gcm16-ecp384bp', localTs: ['dynamic'], remoteTs: ['dynamic'] }],
        },
      ],
    });
    await Promise.all([moon.start(), sun.start()]);
    await moon.event('daemon_started', 30_000);
  }, 60_000);

  afterAll(async () => {
    await moon?.stop();
    await sun?.stop();
    await pair?.destroy();
  }, 30_000);

  it('sends COOKIEs, keeps half-open state and memory bounded, and still lets strongSwan establish its SAs', async () => {
    // charon (kernel-libipsec) routes everything not marked 0x42 by its policies: the flood carries that mark
    const f = await flood(pair, moon, 0x42, async () => {
      const r = await sun.initiate('flood', 40);
      expect(r.code, `${r.stdout}${r.stderr}\nmoon:\n${moon.text()}`).toBe(0);
      await moon.event('child_established', 30_000);
    });
    report('strongSwan', f);
    expectBounded(f);
    expect(sun.log()).toMatch(/COOKIE/);
    expect(existsSync(sun.logPath)).toBe(true);
  }, 90_000);
});
