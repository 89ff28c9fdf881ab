/**
 * `npm run bench:fleet` (issue 20): one hub reaching a fleet on demand with ONE
 * group template. The hub and every peer are tunsec daemons, each in a
 * network namespace of its own on one bridge (test/support/fleet.ts, the
 * harness of test/interop/fleet-netns.test.ts): template `fleet` over the /24,
 * transport mode, `private`, start_action trap, remote.id `*.fleet.test`,
 * certificates from one CA; each peer answers with its own IKE SA.
 *
 * Per repetition: every instance on the hub is taken down (`down fleet`), one
 * ping per peer is sent from the hub at once, and the time until the hub lists
 * an established instance for every peer is taken (list-sas polled every
 * 100 ms). Memory: the hub's RSS (/proc/PID/status VmRSS) and V8 heap in use
 * (`nodejs_heap_size_used_bytes` of its /metrics) with every peer's SA up,
 * minus the same with none (after one warm-up negotiation, taken down), divided by the peers (no forced GC:
 * 5 samples 1 s apart, median). Churn: rounds of killing some peers' daemons
 * (SIGKILL, no Delete), pinging them, waiting for the hub's DPD to remove their
 * instances, starting them again and pinging until they answer through a new
 * SA. A capture on the hub's interface over all of it counts packets to a peer
 * that are neither ESP nor IKE: cleartext under `private` (must be 0).
 *
 *   node --import tsx bench/fleet.ts [--peers=64] [--reps=3] [--churn-rounds=3] [--churn-peers=8]
 *
 * Root, ip, ping, tcpdump, curl; the daemons run from dist/ (`npm run bench:fleet` builds first).
 * Writes bench/results/fleet-<timestamp>.json, fleet-latest.json and fleet-latest.md.
 * Ctrl-C stops the daemons and deletes the namespaces.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { controlRequest } from '../src/cli/control-client.js';
import { DIST_CLI } from '../test/interop/tunsec-daemon.js';
import { Capture, type CapturedPacket } from '../test/support/capture.js';
import { FLEET_TEMPLATE, Fleet, type FleetPeer, type PingResult } from '../test/support/fleet.js';
import { requireRootAndPrograms, sleep } from '../test/support/proc.js';
import { machineBusyPct, rssMb } from './throughput/measure.js';
import { markdownTable, summarize, type BenchRow } from './stats.js';

const repo = fileURLToPath(new URL('..', import.meta.url));
/** `daemon.retransmit_*` of every daemon in the bench. */
const RETRANSMIT = ['retransmit_timeout: 2', 'retransmit_base: 1.5', 'retransmit_tries: 3'];
const log = (line: string): void => void process.stderr.write(`${line}\n`);

function options(): { peers: number; reps: number; churnRounds: number; churnPeers: number } {
  const v = parseArgs({
    options: {
      peers: { type: 'string', default: '64' },
      reps: { type: 'string', default: '3' },
      'churn-rounds': { type: 'string', default: '3' },
      'churn-peers': { type: 'string', default: '8' },
    },
    strict: true,
  }).values;
  const num = (name: string, s: string, min: number, max: number): number => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} needs an integer ${min}–${max}, got ${s}`);
    return n;
  };
  const peers = num('peers', v.peers, 1, 200);
  return {
    peers,
    reps: num('reps', v.reps, 1, 20),
    churnRounds: num('churn-rounds', v['churn-rounds'], 0, 20),
    churnPeers: num('churn-peers', v['churn-peers'], 1, peers),
  };
}

interface MemorySample {
  rss_mb: number;
  heap_mb: number;
}

const median = (xs: number[]): number => summarize('', '', '', xs).median;

/** The hub's RSS and heap in use: the median of 5 samples 1 s apart. */
async function hubMemory(fleet: Fleet): Promise<MemorySample> {
  const rss: number[] = [];
  const heap: number[] = [];
  for (let i = 0; i < 5; i++) {
    if (i) await sleep(1000);
    const r = rssMb(fleet.hubDaemon.pid());
    if (r === undefined) throw new Error('the hub daemon is not running');
    rss.push(r);
    heap.push((await fleet.hubMetrics(['nodejs_heap_size_used_bytes'])).nodejs_heap_size_used_bytes! / 2 ** 20);
  }
  return { rss_mb: median(rss), heap_mb: median(heap) };
}

async function main(): Promise<number> {
  const o = options();
  requireRootAndPrograms('bench/fleet', ['ip', 'ping', 'tcpdump', 'curl']);
  if (!existsSync(DIST_CLI[0]!)) throw new Error(`bench/fleet: ${DIST_CLI[0]} is missing: npm run build first (npm run bench:fleet does)`);
  const caseName = `fleet-${o.peers}`;
  const started = new Date();
  const load0 = loadavg();
  const busy0 = await machineBusyPct();
  const rows: BenchRow[] = [];
  const details: Record<string, unknown> = {};

  log(`[${caseName}] ${o.peers} peers + hub, each a tunsec daemon (dist) in its own namespace on one bridge`);
  const fleet = await Fleet.create({
    peers: o.peers,
    label: 'bfl',
    inactivityS: 600,
    dpdDelayS: 5,
    entry: DIST_CLI,
    startConcurrency: 4,
    // 64 handshakes at once on 2 shared cores: a peer may take seconds to answer; dead after 2+3+4.5+6.75 s ≈ 16 s
    retransmit: RETRANSMIT,
  });
  let capture: Capture | undefined;
  let stopping = false;
  const cleanup = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await capture?.stop().catch(() => undefined);
    capture?.remove();
    const left = await fleet.destroy();
    if (left.length) log(`processes left in namespaces: ${left.join('; ')}`);
  };
  const onSignal = (): void => void cleanup().then(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const t0 = performance.now();
    await fleet.start(300_000);
    const startSec = (performance.now() - t0) / 1000;
    const peerRss = fleet.peers.map((p) => rssMb(p.daemon.pid())).filter((x): x is number => x !== undefined);
    log(`[${caseName}] ${o.peers + 1} daemons up in ${startSec.toFixed(1)} s; peer daemon RSS median ${median(peerRss).toFixed(1)} MiB`);
    rows.push(summarize(caseName, 'peer_daemon_rss_mb (idle, no SA)', 'MiB', peerRss));
    // A warm-up negotiation with one peer, taken down again: the code paths of IKE and ESP are loaded and
    // compiled before the idle baseline, so that per-peer memory is what each SA holds.
    const warm = fleet.peers[0]!;
    const warmPing = await fleet.ping([warm], { deadlineS: 60 });
    if (!warmPing[0]!.ok) throw new Error(`warm-up ping to ${warm.side.ip4}: ${warmPing[0]!.output}`);
    await controlRequest(join(fleet.hubDaemon.dir, 'tunsec.sock'), 'down', { name: FLEET_TEMPLATE }, { timeoutMs: 60_000 });
    await fleet.waitForNoInstances([warm], 60_000);
    await sleep(6000); // also past the 5 s per-destination negotiation rate limit of the traps
    const idle = await hubMemory(fleet);
    log(`[${caseName}] hub idle: RSS ${idle.rss_mb.toFixed(1)} MiB, heap ${idle.heap_mb.toFixed(1)} MiB`);

    capture = await Capture.start(fleet.hub.ns, fleet.hub.ifname, ['ip']);
    const toAll: number[] = [];
    const perPeerSa: number[] = [];
    const rssPerPeer: number[] = [];
    const heapPerPeer: number[] = [];
    const withSas: MemorySample[] = [];
    let pingFailures = 0;
    /** Which step each unanswered ping was in, and to which peer (what to look at in the hub log). */
    const unanswered: string[] = [];
    const countFailures = (step: string, results: PingResult[]): void => {
      const failed = results.filter((r) => !r.ok);
      pingFailures += failed.length;
      for (const r of failed) unanswered.push(`${step}: ${r.peer.side.ip4}: ${r.output.split('\n').slice(-2).join(' ')}`);
    };
    for (let rep = 1; rep <= o.reps; rep++) {
      if (rep > 1) {
        await controlRequest(join(fleet.hubDaemon.dir, 'tunsec.sock'), 'down', { name: FLEET_TEMPLATE }, { timeoutMs: 60_000 });
        await fleet.waitForNoInstances(fleet.peers, 60_000);
        await sleep(6000); // past the 5 s per-destination negotiation rate limit of the traps
      }
      const t = performance.now();
      const wall = Date.now();
      const logFrom = fleet.hubDaemon.lines.length;
      const pings = fleet.ping(fleet.peers, { deadlineS: 60 });
      await fleet.waitForInstances(fleet.peers, 120_000, 100);
      const sec = (performance.now() - t) / 1000;
      const results = await pings;
      countFailures(`rep ${rep}`, results);
      // each peer's CHILD_SA by the hub's own log (its `time` field), from the start of the pings
      const perPeer = fleet.hubDaemon.lines
        .slice(logFrom)
        .filter((l) => l.event === 'child_established' && typeof l.time === 'string')
        .map((l) => (Date.parse(l.time as string) - wall) / 1000);
      perPeerSa.push(...perPeer);
      toAll.push(sec);
      const mem = await hubMemory(fleet);
      withSas.push(mem);
      rssPerPeer.push(((mem.rss_mb - idle.rss_mb) * 1024) / o.peers);
      heapPerPeer.push(((mem.heap_mb - idle.heap_mb) * 1024) / o.peers);
      log(
        `[${caseName}] rep ${rep}/${o.reps}: all ${o.peers} SAs in ${sec.toFixed(2)} s (one ping each; ${results.filter((r) => r.ok).length} answered, ` +
          `per-peer CHILD_SA median ${perPeer.length ? median(perPeer).toFixed(1) : '–'} s); hub RSS ${mem.rss_mb.toFixed(1)} MiB, heap ${mem.heap_mb.toFixed(1)} MiB`,
      );
    }
    rows.push(summarize(caseName, 'time_to_all_sas_s (one ping per peer)', 's', toAll));
    rows.push(summarize(caseName, 'per_peer_sa_s (each CHILD_SA in the hub log, from the start of the pings)', 's', perPeerSa));
    rows.push(summarize(caseName, 'hub_rss_kib_per_peer ((RSS with N SAs - idle) / N)', 'KiB', rssPerPeer));
    rows.push(summarize(caseName, 'hub_heap_kib_per_peer ((heap with N SAs - idle) / N)', 'KiB', heapPerPeer));
    rows.push(summarize(caseName, 'hub_rss_mb (idle → with N SAs)', 'MiB', [idle.rss_mb, ...withSas.map((m) => m.rss_mb)]));

    const dpdSec: number[] = [];
    const backSec: number[] = [];
    for (let round = 0; round < o.churnRounds; round++) {
      // a different slice of the fleet each round
      const gone: FleetPeer[] = Array.from({ length: o.churnPeers }, (_, i) => fleet.peers[(round * o.churnPeers + i) % o.peers]!);
      const t = performance.now();
      await Promise.all(gone.map((p) => fleet.kill(p)));
      // traffic to the dead peers: on the old SAs, then into the traps (held, dropped), never in the clear
      await fleet.ping(gone, { deadlineS: 2 });
      await fleet.waitForNoInstances(gone, 120_000);
      dpdSec.push((performance.now() - t) / 1000);
      const stay = fleet.peers.filter((p) => !gone.includes(p));
      const others = await fleet.ping(stay, { deadlineS: 10 });
      countFailures(`churn ${round + 1}, peers that stayed`, others);
      for (const p of gone) await fleet.restart(p, 120_000);
      const t2 = performance.now();
      const back = await fleet.ping(gone, { deadlineS: 60, untilReply: true });
      await fleet.waitForInstances(fleet.peers, 60_000, 100);
      backSec.push((performance.now() - t2) / 1000);
      countFailures(`churn ${round + 1}, restarted peers`, back);
      log(
        `[${caseName}] churn ${round + 1}/${o.churnRounds}: ${gone.length} peers killed, their instances gone by DPD in ${dpdSec.at(-1)!.toFixed(1)} s; ` +
          `back, all ${o.peers} SAs again in ${backSec.at(-1)!.toFixed(1)} s after the first ping`,
      );
    }
    if (o.churnRounds) {
      rows.push(summarize(caseName, `dpd_removal_s (${o.churnPeers} peers killed → their instances gone; dpd_delay 5 s + 3 retransmits ≈ 16 s)`, 's', dpdSec));
      rows.push(summarize(caseName, `return_s (${o.churnPeers} restarted peers pinged → all SAs up)`, 's', backSec));
    }

    const packets: CapturedPacket[] = await capture.stop();
    const clear = fleet.cleartextToPeers(packets);
    const peersSet = new Set(fleet.peers.map((p) => p.side.ip4));
    const esp = packets.filter((p) => p.protocol === 'esp' && peersSet.has(p.dst)).length;
    rows.push(summarize(caseName, 'cleartext_packets_to_peers (capture on the hub, not ESP/IKE)', 'packets', [clear.length]));
    rows.push(summarize(caseName, 'esp_packets_to_peers (same capture)', 'packets', [esp]));
    log(`[${caseName}] capture: ${packets.length} IP packets, ${esp} ESP to peers, ${clear.length} cleartext to peers; ${pingFailures} pings unanswered`);
    details.cleartext = clear.slice(0, 20).map((p) => `${p.protocol} ${p.src} → ${p.dst}`);
    details.ping_failures = pingFailures;
    details.unanswered_pings = unanswered.slice(0, 100);
    details.daemons_start_sec = Math.round(startSec * 10) / 10;
    details.hub_idle = idle;
    details.hub_with_sas = withSas;

    const load1 = loadavg();
    const busy1 = await machineBusyPct();
    const report = {
      bench: 'tunsec-fleet',
      date: started.toISOString(),
      command: `node --import tsx bench/fleet.ts ${process.argv.slice(2).join(' ')}`.trim(),
      options: o,
      machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? '', mem_gb: Math.round(totalmem() / 2 ** 30), node: process.version },
      contention: { loadavg_before: load0, loadavg_after: load1, busy_pct_before: busy0, busy_pct_after: busy1 },
      rows,
      details,
      duration_sec: Math.round((Date.now() - started.getTime()) / 1000),
    };
    const dir = join(repo, 'bench/results');
    mkdirSync(dir, { recursive: true });
    const json = JSON.stringify(report, null, 2) + '\n';
    writeFileSync(join(dir, `fleet-${started.toISOString().replace(/[:.]/g, '-')}.json`), json);
    writeFileSync(join(dir, 'fleet-latest.json'), json);
    const md = [
      `# Fleet: one group template, ${o.peers} peers on demand`,
      '',
      `${report.date}, ${report.machine.cpus} × ${report.machine.cpu}, node ${process.version}; ` +
        `load ${load0.map((x) => x.toFixed(2)).join(' ')} before, ${load1.map((x) => x.toFixed(2)).join(' ')} after ` +
        `(machine ${busy0 ?? '?'} % / ${busy1 ?? '?'} % busy without us: other agents share the 2 cores)`,
      '',
      markdownTable(rows),
      '',
      `The hub and ${o.peers} peers are tunsec daemons (from dist/), each in its own network namespace on one bridge; the hub has ONE`,
      `group template (\`fleet\`: the /24, transport, \`private\`, trap, remote.id \`*.fleet.test\`, dpd_delay 5 s; retransmit 2 s ×1.5, 3 tries), peers answer with`,
      `their own IKE SA. ${o.reps} repetitions: \`down fleet\`, one ping per peer at once, time until list-sas shows every instance`,
      `(polled every 100 ms); per peer, the hub log's child_established times. Memory: hub VmRSS and V8 heap in use (/metrics) with every SA up, minus with none (after one warm-up SA, taken down), ÷ peers;`,
      `median of 5 samples, no forced GC. Churn: ${o.churnRounds} round(s) of ${o.churnPeers} peers SIGKILLed, pinged, removed by DPD,`,
      `restarted and pinged until they answer. Capture on the hub's interface: packets to a peer neither ESP nor IKE.`,
      `${pingFailures} pings unanswered in the whole run (expected 0)${unanswered.length ? `: ${unanswered.slice(0, 10).join('; ')}` : ''}.`,
      '',
    ].join('\n');
    writeFileSync(join(dir, 'fleet-latest.md'), md);
    log(`[${caseName}] wrote bench/results/fleet-latest.{json,md}`);
    process.stdout.write(md);
    return clear.length === 0 && pingFailures === 0 ? 0 : 1;
  } finally {
    await cleanup();
  }
}

process.exitCode = await main().catch((err: unknown) => {
  log(`bench/fleet: ${(err as Error).stack ?? String(err)}`);
  return 1;
});
