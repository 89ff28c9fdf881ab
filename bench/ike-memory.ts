/**
 * Memory per established IKE SA (+ its CHILD_SA), and what it is made of.
 *
 *   npm run bench:memory [-- --sas=N] [--concurrency=N] [--keep-snapshots]
 *
 * Two IkeSaManagers in this Node process (127.0.0.1 ↔ 127.0.0.2, in-memory SAD; the setup of the
 * handshake case `tunsec-ike` of `npm run bench`: aes128gcm16-prfsha384-ecp384bp, RSA-2048
 * certificates, one tunnel child). After a warm-up, a garbage collection and a V8 heap snapshot
 * (baseline), N IKE_SA+CHILD_SA are established and kept up, then a second collection and snapshot.
 * Both sides hold each SA, so every figure is divided by 2N ("per SA and side", as kb_per_sa is).
 *
 * The report has
 *   - RSS, V8 heap used, external and ArrayBuffer memory per SA (process.memoryUsage deltas);
 *   - the snapshot diff by constructor (V8's node names: IkeSa, Buffer = Uint8Array, (closure),
 *     system / JSArrayBufferData = Buffer backing stores, Node / … = native wrappers): objects and
 *     self size per SA;
 *   - the retained size of each IkeSa (dominator tree of the second snapshot, weak edges ignored)
 *     split by the constructor of what it dominates, and what of the per-SA growth is *not*
 *     dominated by an IkeSa (shared maps, the SAD, timers lists…), split the same way.
 * Native memory outside V8 (OpenSSL cipher contexts behind KeyObject/Cipheriv, libuv timers) shows
 * only in RSS: RSS − heap − external per SA bounds it.
 *
 * Writes bench/results/memory-latest.{json,md}. Run under load it is still exact for the heap part
 * (object counts and sizes do not depend on timing); RSS is noisy.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, loadavg, cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import type { ConnectionEntry, IkeSaManager } from '../src/ike/manager.js';
import type { UdpTransport } from '../src/ike/net/udp.js';
import type { SecurityAssociationDatabase } from '../src/esp/sadb.js';
import type { ChildPeerConfig, IkePeerConfig } from '../src/ike/sa/peer-config.js';
import type { Logger } from '../src/ike/log.js';

const args = parseArgs({
  options: {
    sas: { type: 'string', default: '500' },
    concurrency: { type: 'string', default: '4' },
    'keep-snapshots': { type: 'boolean', default: false },
    out: { type: 'string', default: 'bench/results/memory-latest' },
    source: { type: 'string', default: 'dist' },
    /** Internal: the RSS run, in a process of its own (writing a heap snapshot grows RSS for good). */
    'rss-only': { type: 'boolean', default: false },
  },
}).values;
/**
 * The code under test: dist/src (what the daemon runs, tsc's output; `npm run bench:memory` builds it
 * first) or, with --source=src, src/ through tsx, whose esbuild transform wraps every named function
 * in `__name(fn, "…")` (keepNames): each closure then carries a property backing store of its own,
 * which inflates the per-SA heap (see docs/notes/memory.md).
 */
if (args.source !== 'dist' && args.source !== 'src') throw new Error('--source is dist or src');
const root = args.source === 'dist' ? '../dist/src' : '../src';
const load = async <T>(path: string): Promise<T> => (await import(`${root}/${path}`)) as T;
const { createCa, issueCertificate } = await load<typeof import('../src/pki/issue.js')>('pki/issue.js');
const { TrustStore, parseIdentity } = await load<typeof import('../src/pki/index.js')>('pki/index.js');
const { SecurityAssociationDatabase: Sad } = await load<typeof import('../src/esp/sadb.js')>('esp/sadb.js');
const { UdpTransport: Udp } = await load<typeof import('../src/ike/net/udp.js')>('ike/net/udp.js');
const { IkeSaManager: Manager } = await load<typeof import('../src/ike/manager.js')>('ike/manager.js');
const { parseProposalList } = await load<typeof import('../src/ike/proposal/index.js')>('ike/proposal/index.js');
const { parseTsConfigList } = await load<typeof import('../src/ike/ts/index.js')>('ike/ts/index.js');
const { ProtocolId } = await load<typeof import('../src/ike/transforms.js')>('ike/transforms.js');
const N = Number(args.sas);
const CONCURRENCY = Number(args.concurrency);
const WARMUP = 10;

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  console.error('run with node --expose-gc (npm run bench:memory does)');
  process.exit(2);
}
const collect = (): void => {
  for (let i = 0; i < 3; i++) gc();
};

const quietLogger: Logger = { log: () => undefined };

interface Peer {
  manager: IkeSaManager;
  transport: UdpTransport;
  sad: SecurityAssociationDatabase;
}

function proposals(text: string, protocol: number): IkePeerConfig['ikeProposals'] {
  const r = parseProposalList(text, protocol as Parameters<typeof parseProposalList>[1]);
  if (!r.ok) throw new Error(r.errors.join('; '));
  return r.value.proposals;
}

function selectors(list: string[]): ChildPeerConfig['localTs'] {
  const r = parseTsConfigList(list);
  if (!r.ok) throw new Error(r.message);
  return r.value;
}

/** The handshake case's connection (test/ike/support/peers.ts's defaults, RSA-2048, one tunnel child). */
function connection(ca: ReturnType<typeof createCa>, id: string, peer: string): IkePeerConfig {
  const own = issueCertificate(ca, { subject: `C=CH, O=tunsec bench, CN=${id}`, key: 'rsa2048', subjectAltNames: { dns: [id] } });
  const trust = new TrustStore();
  trust.addTrustAnchor(ca.certificate);
  const child: ChildPeerConfig = {
    name: 'host-host',
    espProposals: proposals('aes128gcm16-ecp384bp!', ProtocolId.ESP),
    mode: 'tunnel',
    localTs: selectors(['dynamic']),
    remoteTs: selectors(['dynamic']),
    replayWindow: 32,
    lifetimes: { softSeconds: 3600, hardSeconds: 3960, softBytes: 0, hardBytes: 0, softPackets: 0, hardPackets: 0 },
    policy: 'private',
  };
  return {
    name: 'host-host',
    ikeProposals: proposals('aes128gcm16-prfsha384-ecp384bp!', ProtocolId.IKE),
    localId: parseIdentity(id),
    remoteId: parseIdentity(peer),
    certificate: own.certificate,
    intermediates: [],
    privateKey: own.privateKey!,
    trust,
    strictCrl: false,
    sendCert: 'always',
    sendCertReq: true,
    fragmentation: true,
    fragmentSize: 1280,
    forceEncap: false,
    children: [child],
  } as IkePeerConfig;
}

async function setup(): Promise<Peer[]> {
  const ca = createCa({ subject: 'C=CH, O=tunsec bench, CN=Bench IKE CA', key: 'rsa2048' });
  const probe = new Udp({ addresses: ['127.0.0.1'], ikePort: 0, nattPort: 0 });
  await probe.start();
  const eps = probe.boundEndpoints();
  probe.stop();
  const ports = { ike: eps.find((e) => !e.natt)!.port, natt: eps.find((e) => e.natt)!.port };
  const peers: Peer[] = [];
  const mk = async (me: string, other: string, id: string, peer: string): Promise<void> => {
    const entry: ConnectionEntry = { config: connection(ca, id, peer), localAddrs: [me], remoteAddrs: [other], remotePort: ports.ike };
    const sad = new Sad();
    const transport = new Udp({ addresses: [me], ikePort: ports.ike, nattPort: ports.natt });
    const manager = new Manager({
      connections: [entry],
      backend: sad,
      log: quietLogger,
      ikePort: ports.ike,
      io: { nattPort: ports.natt, send: (local, remote, datagrams) => datagrams.forEach((d) => transport.sendIke(local, remote, d)) },
    });
    transport.on('ike', (d) => manager.receive(d.message, d.local, d.remote));
    await transport.start();
    peers.push({ manager, transport, sad });
  };
  await mk('127.0.0.1', '127.0.0.2', 'moon.tunsec.test', 'sun.tunsec.test');
  await mk('127.0.0.2', '127.0.0.1', 'sun.tunsec.test', 'moon.tunsec.test');
  return peers;
}

async function establish(peers: Peer[], n: number): Promise<number> {
  let next = 0;
  let failed = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      next++;
      try {
        await peers[0]!.manager.initiate('host-host');
      } catch {
        failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, n) }, worker));
  return failed;
}

const established = (p: Peer): number => p.manager.sas.filter((s) => s.state === 'established').length;

// ---------------------------------------------------------------- heap snapshot analysis

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] }; node_count: number };
  nodes: number[];
  edges: number[];
  strings: string[];
}

interface ClassStat {
  count: number;
  bytes: number;
}

/** The bucket a snapshot node is counted in: its constructor/class name, or its kind for the unnamed ones. */
function bucketName(type: string, name: string): string {
  switch (type) {
    case 'object':
    case 'native':
      return name.startsWith('system / Context') ? '(context)' : name;
    case 'closure':
      return '(closure)';
    case 'string':
    case 'concatenated string':
    case 'sliced string':
      return '(string)';
    case 'number':
      return '(heap number)';
    case 'array':
      return '(internal array)';
    case 'code':
      return '(compiled code)';
    case 'hidden':
    case 'object shape':
      return `(${type}) ${name.split(' ')[0] ?? ''}`.trim();
    default:
      return `(${type})`;
  }
}

interface Analysis {
  byClass: Map<string, ClassStat>;
  totalBytes: number;
  /** Retained size of all IkeSa objects, split by the class of what they dominate. */
  ikeSaRetained?: { count: number; bytes: number; byClass: Map<string, ClassStat> };
  /** Every node counted under its nearest dominator of a named class (`owner ← kind`). */
  byOwner?: Map<string, ClassStat>;
}

/** Kinds that say nothing of whose memory it is: a node of these counts under its nearest dominator of another class. */
const GENERIC = new Set([
  'Object',
  'Array',
  'Buffer',
  'Uint8Array',
  'Uint32Array',
  'ArrayBuffer',
  'system / JSArrayBufferData',
  'Map',
  'Set',
  'Promise',
  'Date',
  'WeakMap',
  'WeakRef',
  'Error',
]);
const isGeneric = (b: string): boolean => b.startsWith('(') || GENERIC.has(b) || b.startsWith('system /') || b === '';

function analyse(file: string, retained: boolean): Analysis {
  const snap = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const meta = snap.snapshot.meta;
  const nf = meta.node_fields.length;
  const ef = meta.edge_fields.length;
  const nType = meta.node_fields.indexOf('type');
  const nName = meta.node_fields.indexOf('name');
  const nSize = meta.node_fields.indexOf('self_size');
  const nEdges = meta.node_fields.indexOf('edge_count');
  const eType = meta.edge_fields.indexOf('type');
  const eTo = meta.edge_fields.indexOf('to_node');
  const nodeTypes = meta.node_types[0];
  const edgeTypes = meta.edge_types[0];
  const weak = edgeTypes.indexOf('weak');
  const shortcut = edgeTypes.indexOf('shortcut');
  const { nodes, edges, strings } = snap;
  const count = nodes.length / nf;
  const bucket: string[] = new Array<string>(count);
  const size = new Float64Array(count);
  const byClass = new Map<string, ClassStat>();
  let totalBytes = 0;
  for (let i = 0; i < count; i++) {
    const b = bucketName(nodeTypes[nodes[i * nf + nType]!]!, strings[nodes[i * nf + nName]!]!);
    bucket[i] = b;
    size[i] = nodes[i * nf + nSize]!;
    totalBytes += size[i]!;
    const s = byClass.get(b) ?? { count: 0, bytes: 0 };
    s.count++;
    s.bytes += size[i]!;
    byClass.set(b, s);
  }
  if (!retained) return { byClass, totalBytes };

  // Successor lists (edge index ranges) and predecessors, strong edges only.
  const firstEdge = new Uint32Array(count + 1);
  for (let i = 0, e = 0; i < count; i++) {
    firstEdge[i] = e;
    e += nodes[i * nf + nEdges]! * ef;
    firstEdge[i + 1] = e;
  }
  const strong = (e: number): boolean => edges[e + eType] !== weak && edges[e + eType] !== shortcut;
  // Iterative DFS from the root (node 0): post order.
  const order = new Int32Array(count).fill(-1); // post-order number
  const post: number[] = [];
  const stack: number[] = [0];
  const cursor = new Uint32Array(count);
  const seen = new Uint8Array(count);
  seen[0] = 1;
  for (let i = 0; i < count; i++) cursor[i] = firstEdge[i]!;
  while (stack.length) {
    const v = stack[stack.length - 1]!;
    if (cursor[v]! < firstEdge[v + 1]!) {
      const e = cursor[v]!;
      cursor[v] = e + ef;
      if (!strong(e)) continue;
      const w = edges[e + eTo]! / nf;
      if (!seen[w]) {
        seen[w] = 1;
        stack.push(w);
      }
    } else {
      stack.pop();
      order[v] = post.length;
      post.push(v);
    }
  }
  const preds: number[][] = Array.from({ length: count }, () => []);
  for (let v = 0; v < count; v++) {
    if (!seen[v]) continue;
    for (let e = firstEdge[v]!; e < firstEdge[v + 1]!; e += ef) if (strong(e)) preds[edges[e + eTo]! / nf]!.push(v);
  }
  // Cooper, Harvey, Kennedy: "A Simple, Fast Dominance Algorithm".
  const idom = new Int32Array(count).fill(-1);
  idom[0] = 0;
  const intersect = (a: number, b: number): number => {
    while (a !== b) {
      while (order[a]! < order[b]!) a = idom[a]!;
      while (order[b]! < order[a]!) b = idom[b]!;
    }
    return a;
  };
  for (let changed = true; changed;) {
    changed = false;
    for (let k = post.length - 2; k >= 0; k--) {
      const v = post[k]!;
      let d = -1;
      for (const p of preds[v]!) {
        if (idom[p] === -1) continue;
        d = d === -1 ? p : intersect(p, d);
      }
      if (d !== -1 && idom[v] !== d) {
        idom[v] = d;
        changed = true;
      }
    }
  }
  // Owner: the nearest IkeSa dominating a node (reverse post order visits a dominator before what it dominates).
  const owner = new Int32Array(count).fill(-1);
  const ikeSaRetained = { count: 0, bytes: 0, byClass: new Map<string, ClassStat>() };
  for (let k = post.length - 1; k >= 0; k--) {
    const v = post[k]!;
    if (bucket[v] === 'IkeSa') {
      owner[v] = v;
      ikeSaRetained.count++;
    } else if (v !== 0) owner[v] = owner[idom[v]!]!;
    if (owner[v] !== -1) {
      ikeSaRetained.bytes += size[v]!;
      const s = ikeSaRetained.byClass.get(bucket[v]!) ?? { count: 0, bytes: 0 };
      s.count++;
      s.bytes += size[v]!;
      ikeSaRetained.byClass.set(bucket[v]!, s);
    }
  }
  const named = new Int32Array(count).fill(-1);
  const byOwner = new Map<string, ClassStat>();
  for (let k = post.length - 1; k >= 0; k--) {
    const v = post[k]!;
    named[v] = v === 0 ? -1 : !isGeneric(bucket[v]!) ? v : named[idom[v]!]!;
    const key = `${named[v] === -1 ? '(root)' : bucket[named[v]!]} ← ${bucket[v]}`;
    const s = byOwner.get(key) ?? { count: 0, bytes: 0 };
    s.count++;
    s.bytes += size[v]!;
    byOwner.set(key, s);
  }
  return { byClass, totalBytes, ikeSaRetained, byOwner };
}

// ---------------------------------------------------------------- run

const round = (x: number, d = 2): number => Math.round(x * 10 ** d) / 10 ** d;
const kib = (bytes: number): number => round(bytes / 1024);

/** Committed size of each V8 heap space, bytes. */
function spaces(): Record<string, number> {
  return Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, s.space_size]));
}

/** Warm-up, then N SAs: process.memoryUsage before and after, nothing else (no snapshot). */
async function rssRun(): Promise<void> {
  const peers = await setup();
  await establish(peers, WARMUP);
  collect();
  const m0 = process.memoryUsage();
  const s0 = spaces();
  const half = Math.floor(N / 2);
  const failedHalf = await establish(peers, half);
  collect();
  const mHalf = process.memoryUsage();
  const failed = failedHalf + (await establish(peers, N - half));
  collect();
  const m1 = process.memoryUsage();
  const s1 = spaces();
  const spaceGrowth = Object.fromEntries(Object.keys(s1).map((k) => [k, { before: s0[k], after: s1[k] }]));
  process.stdout.write(JSON.stringify({ m0, mHalf, m1, failed, failedHalf, spaces: spaceGrowth }) + '\n');
  for (const p of peers) {
    for (const sa of [...p.manager.sas]) sa.destroy('bench done');
    p.transport.stop();
  }
}

interface RssRun {
  m0: NodeJS.MemoryUsage;
  mHalf: NodeJS.MemoryUsage;
  m1: NodeJS.MemoryUsage;
  failed: number;
  failedHalf: number;
  spaces: Record<string, { before: number; after: number }>;
}

function rssInChild(): RssRun {
  const r = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2), '--rss-only'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (r.status !== 0) throw new Error(`RSS run failed (${r.status ?? r.signal})`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as RssRun;
}

async function main(): Promise<void> {
  const rss = rssInChild();
  const dir = mkdtempSync(join(tmpdir(), 'tunsec-memory-'));
  const peers = await setup();
  const undo = (): void => {
    for (const p of peers) {
      for (const sa of [...p.manager.sas]) sa.destroy('bench done');
      p.transport.stop();
    }
  };
  try {
    if ((await establish(peers, WARMUP)) > 0) throw new Error('warm-up handshakes failed');
    collect();
    const snap0 = v8.writeHeapSnapshot(join(dir, 'before.heapsnapshot'));
    const t0 = performance.now();
    const failed = await establish(peers, N);
    const seconds = (performance.now() - t0) / 1000;
    const sas = N - failed;
    collect();
    const snap1 = v8.writeHeapSnapshot(join(dir, 'after.heapsnapshot'));
    const up = peers.map(established);
    const sadSas = peers.map((p) => p.sad.listSas().length);
    undo();
    collect();
    console.error(`${sas} SAs up (${up.join('/')} IKE_SAs, ${sadSas.join('/')} SAD entries) in ${seconds.toFixed(1)} s; analysing snapshots…`);

    const before = analyse(snap0, true);
    const after = analyse(snap1, true);
    const perSide = 2 * sas;
    const classes = new Set([...before.byClass.keys(), ...after.byClass.keys()]);
    const diff = [...classes]
      .map((name) => {
        const a = after.byClass.get(name) ?? { count: 0, bytes: 0 };
        const b = before.byClass.get(name) ?? { count: 0, bytes: 0 };
        return { class: name, objects_per_sa: round((a.count - b.count) / perSide), bytes_per_sa: Math.round((a.bytes - b.bytes) / perSide) };
      })
      .filter((r) => Math.abs(r.bytes_per_sa) >= 16)
      .sort((x, y) => y.bytes_per_sa - x.bytes_per_sa);
    const owners = new Set([...before.byOwner!.keys(), ...after.byOwner!.keys()]);
    const ownerDiff = [...owners]
      .map((name) => {
        const a = after.byOwner!.get(name) ?? { count: 0, bytes: 0 };
        const b = before.byOwner!.get(name) ?? { count: 0, bytes: 0 };
        return { owner: name, objects_per_sa: round((a.count - b.count) / perSide), bytes_per_sa: Math.round((a.bytes - b.bytes) / perSide) };
      })
      .filter((r) => Math.abs(r.bytes_per_sa) >= 32)
      .sort((x, y) => y.bytes_per_sa - x.bytes_per_sa);
    const ret = after.ikeSaRetained!;
    const retainedByClass = [...ret.byClass.entries()]
      .map(([name, s]) => ({ class: name, objects_per_ike_sa: round(s.count / ret.count), bytes_per_ike_sa: Math.round(s.bytes / ret.count) }))
      .filter((r) => r.bytes_per_ike_sa >= 16)
      .sort((x, y) => y.bytes_per_ike_sa - x.bytes_per_ike_sa);
    const rssSides = 2 * (N - rss.failed);
    const secondHalfSides = 2 * (N - Math.floor(N / 2) - (rss.failed - rss.failedHalf));
    const heapGrowth = (after.totalBytes - before.totalBytes) / perSide;
    const result = {
      bench: 'ike-memory',
      date: new Date().toISOString(),
      node: process.version,
      cpus: cpus().length,
      loadavg: loadavg().map((l) => round(l)),
      source: args.source === 'dist' ? 'dist/src (tsc output, as the daemon runs)' : 'src through tsx',
      setup: 'two IkeSaManagers in one process, aes128gcm16-prfsha384-ecp384bp, RSA-2048 certificates, one tunnel CHILD_SA per IKE_SA',
      sas,
      failed,
      ike_sas_up: up,
      sad_entries: sadSas,
      handshakes_per_s: round(sas / seconds, 1),
      per_sa_and_side_kib: {
        rss: kib((rss.m1.rss - rss.m0.rss) / rssSides),
        rss_second_half: kib((rss.m1.rss - rss.mHalf.rss) / secondHalfSides),
        heap_used: kib((rss.m1.heapUsed - rss.m0.heapUsed) / rssSides),
        heap_total: kib((rss.m1.heapTotal - rss.m0.heapTotal) / rssSides),
        heap_total_second_half: kib((rss.m1.heapTotal - rss.mHalf.heapTotal) / secondHalfSides),
        new_space_growth: kib((rss.spaces.new_space!.after - rss.spaces.new_space!.before) / rssSides),
        external: kib((rss.m1.external - rss.m0.external) / rssSides),
        native: kib((rss.m1.rss - rss.m0.rss - (rss.m1.heapTotal - rss.m0.heapTotal) - (rss.m1.external - rss.m0.external)) / rssSides),
        snapshot_growth: kib(heapGrowth),
        ike_sa_retained: kib(ret.bytes / ret.count),
        not_retained_by_ike_sa: kib(heapGrowth - ret.bytes / ret.count),
      },
      ike_sa_objects_in_snapshot: ret.count,
      snapshot_diff_by_class: diff.slice(0, 40),
      ike_sa_retained_by_class: retainedByClass.slice(0, 40),
      snapshot_diff_by_owner: ownerDiff.slice(0, 60),
      ...(args['keep-snapshots'] ? { snapshots: [snap0, snap1] } : {}),
    };
    writeFileSync(`${args.out}.json`, JSON.stringify(result, null, 2) + '\n');
    writeFileSync(`${args.out}.md`, markdown(result));
    console.log(markdown(result));
  } finally {
    undo();
    if (!args['keep-snapshots']) rmSync(dir, { recursive: true, force: true });
  }
}

function markdown(r: {
  date: string;
  node: string;
  cpus: number;
  loadavg: number[];
  setup: string;
  sas: number;
  failed: number;
  handshakes_per_s: number;
  per_sa_and_side_kib: Record<string, number>;
  ike_sa_objects_in_snapshot: number;
  snapshot_diff_by_class: Array<{ class: string; objects_per_sa: number; bytes_per_sa: number }>;
  ike_sa_retained_by_class: Array<{ class: string; objects_per_ike_sa: number; bytes_per_ike_sa: number }>;
  snapshot_diff_by_owner: Array<{ owner: string; objects_per_sa: number; bytes_per_sa: number }>;
}): string {
  const esc = (s: string): string => s.replace(/\|/g, '\\|');
  return [
    `# IKE memory per SA (bench/ike-memory.ts)`,
    '',
    `${r.date}, Node ${r.node}, ${r.cpus} cores, load average ${r.loadavg.join(' ')}. ${r.setup}.`,
    `${r.sas} SAs established and kept up (${r.failed} failed, ${r.handshakes_per_s}/s); figures per SA and side (÷ 2 × ${r.sas}).`,
    '',
    '| measure | KiB per SA and side |',
    '|---|---:|',
    ...Object.entries(r.per_sa_and_side_kib).map(([k, v]) => `| ${k} | ${v} |`),
    '',
    `## Heap snapshot growth by constructor (after − before) ÷ (2 × SAs)`,
    '',
    '| constructor / kind | objects per SA | bytes per SA |',
    '|---|---:|---:|',
    ...r.snapshot_diff_by_class.map((d) => `| ${esc(d.class)} | ${d.objects_per_sa} | ${d.bytes_per_sa} |`),
    '',
    `## Retained by one IkeSa (dominator tree; ${r.ike_sa_objects_in_snapshot} IkeSa objects), by constructor`,
    '',
    '| constructor / kind | objects | bytes |',
    '|---|---:|---:|',
    ...r.ike_sa_retained_by_class.map((d) => `| ${esc(d.class)} | ${d.objects_per_ike_sa} | ${d.bytes_per_ike_sa} |`),
    '',
    `## Heap snapshot growth by owner: each object under its nearest dominator of a named class (owner ← kind)`,
    '',
    '| owner ← kind | objects per SA | bytes per SA |',
    '|---|---:|---:|',
    ...r.snapshot_diff_by_owner.map((d) => `| ${esc(d.owner)} | ${d.objects_per_sa} | ${d.bytes_per_sa} |`),
    '',
  ].join('\n');
}

(args['rss-only'] ? rssRun() : main()).then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
