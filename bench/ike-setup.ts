/**
 * IKE_SA + CHILD_SA setup latency (IKE_SA_INIT + IKE_AUTH, certificates,
 * aes128gcm16-prfsha384-ecp384bp, RSA-2048 from an RSA-3072 CA):
 *   tunsec → tunsec        in one process over loopback
 *   strongSwan → tunsec    tunsec daemon in a netns, swanctl --initiate timed
 *   strongSwan → strongSwan the same with strongSwan on both sides (baseline)
 * `npx tsx bench/ike-setup.ts [--quick]` (root: netns). Writes bench/results/ike-setup-latest.{json,md}.
 */
import { parseArgs } from 'node:util';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpus, loadavg } from 'node:os';
import { createCa, issueCertificate } from '../src/pki/issue.js';
import { freePorts, peerConfig, startPeer, testPki } from '../test/ike/support/peers.js';
import { NetnsPair } from '../test/support/netns.js';
import { StrongSwan, type StrongSwanConnection } from '../test/support/strongswan.js';
import { TunsecDaemon, credentialFiles, tunsecYaml } from '../test/interop/tunsec-daemon.js';
import { markdownTable, summarize, type BenchRow } from './stats.js';

// node's parseArgs: --quick, and a clear error for anything else
const quick = parseArgs({ options: { quick: { type: 'boolean' } }, strict: true }).values.quick === true;
const N = quick ? 5 : 15;
const rows: BenchRow[] = [];
const repo = fileURLToPath(new URL('..', import.meta.url));

async function tunsecToTunsec(): Promise<number[]> {
  const pki = testPki('rsa2048');
  const ports = await freePorts();
  const moon = await startPeer('127.0.0.1', ports, [
    {
      config: peerConfig(pki, pki.host('moon.tunsec.test'), 'moon.tunsec.test', 'sun.tunsec.test'),
      localAddrs: ['127.0.0.1'],
      remoteAddrs: ['127.0.0.2'],
      remotePort: ports.ike,
    },
  ]);
  const sun = await startPeer('127.0.0.2', ports, [
    {
      config: peerConfig(pki, pki.host('sun.tunsec.test'), 'sun.tunsec.test', 'moon.tunsec.test'),
      localAddrs: ['127.0.0.2'],
      remoteAddrs: ['127.0.0.1'],
      remotePort: ports.ike,
    },
  ]);
  const samples: number[] = [];
  try {
    for (let i = 0; i < N + 2; i++) {
      const t0 = performance.now();
      const sa = await moon.manager.initiate('host-host');
      const ms = performance.now() - t0;
      if (i >= 2) samples.push(ms); // 2 warm-up rounds
      sa.destroy('bench');
    }
  } finally {
    moon.stop();
    sun.stop();
  }
  return samples;
}

async function withStrongSwanInitiator(responder: 'tunsec' | 'strongswan'): Promise<number[]> {
  const pair = await NetnsPair.create('tb');
  const ca = createCa({ subject: 'C=CH, O=tunsec bench, CN=Bench CA', key: 'rsa3072' });
  const host = (cn: string, ip: string) =>
    issueCertificate(ca, { subject: `C=CH, O=tunsec bench, CN=${cn}`, key: 'rsa2048', subjectAltNames: { dns: [`${cn}.ikev2.test`], ip: [ip] } });
  const moonCert = host('moon', pair.a.ip4);
  const sunCert = host('sun', pair.b.ip4);
  const conn = (me: typeof pair.a, other: typeof pair.a, cert: typeof moonCert, id: string, peer: string): StrongSwanConnection => ({
    name: 'host-host',
    localAddrs: [me.ip4],
    remoteAddrs: [other.ip4],
    proposals: 'aes128gcm16-prfsha384-ecp384bp',
    localId: id,
    remoteId: peer,
    certPem: cert.certificatePem,
    keyPem: cert.privateKeyPem!,
    caPem: ca.certificatePem,
    children: [{ name: 'host-host', mode: 'tunnel', espProposals: 'aes128gcm16-ecp384bp', localTs: ['dynamic'], remoteTs: ['dynamic'] }],
  });
  const moon = new StrongSwan({ netns: pair.a.ns, connections: [conn(pair.a, pair.b, moonCert, 'moon.ikev2.test', 'sun.ikev2.test')] });
  let sunSs: StrongSwan | undefined;
  let sunTs: TunsecDaemon | undefined;
  const samples: number[] = [];
  try {
    await moon.start();
    if (responder === 'strongswan') {
      sunSs = new StrongSwan({ netns: pair.b.ns, connections: [conn(pair.b, pair.a, sunCert, 'sun.ikev2.test', 'moon.ikev2.test')] });
      await sunSs.start();
    } else {
      sunTs = new TunsecDaemon(
        pair.b.ns,
        // one initiator, back to back: the per-address handshake rate limits (10/s) would measure themselves
        tunsecYaml({
          name: 'host-host',
          local: pair.b.ip4,
          remote: pair.a.ip4,
          localId: 'sun.ikev2.test',
          remoteId: 'moon.ikev2.test',
          mode: 'tunnel',
          startAction: 'none',
          daemonExtra: ['log: { default: 0 }', 'limits: { ike_init_rate: 100000, ike_auth_rate: 100000 }'],
        }),
        credentialFiles(ca.certificatePem, sunCert),
      );
      await sunTs.start();
      await sunTs.event('daemon_started');
    }
    for (let i = 0; i < N + 2; i++) {
      const t0 = performance.now();
      const r = await moon.initiate('host-host');
      const ms = performance.now() - t0;
      if (r.code !== 0) throw new Error(`swanctl --initiate failed: ${r.stdout}${r.stderr}`);
      if (i >= 2) samples.push(ms);
      await moon.swanctl(['--terminate', '--ike', 'host-host', '--timeout', '5']);
    }
  } finally {
    await sunTs?.stop();
    await sunSs?.stop();
    await moon.stop();
    await pair.destroy();
  }
  return samples;
}

const round = (xs: number[]) => xs.map((x) => Math.round(x * 10) / 10);
process.stderr.write(`IKE+CHILD setup latency, ${N} handshakes per case\n`);
rows.push(summarize('tunsec→tunsec (loopback, in-process)', 'ike_child_setup_ms', 'ms', round(await tunsecToTunsec())));
rows.push(summarize('strongSwan→tunsec (netns, swanctl --initiate)', 'ike_child_setup_ms', 'ms', round(await withStrongSwanInitiator('tunsec'))));
rows.push(summarize('strongSwan→strongSwan (netns, swanctl --initiate)', 'ike_child_setup_ms', 'ms', round(await withStrongSwanInitiator('strongswan'))));
const result = {
  bench: 'ike-setup',
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version, loadavg: loadavg() },
  rows,
};
const out = join(repo, 'bench/results');
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'ike-setup-latest.json'), JSON.stringify(result, null, 2) + '\n');
const md = `# IKE_SA + CHILD_SA setup latency\n\n${result.date}, ${result.machine.model} × ${result.machine.cpus}, load ${loadavg()
  .map((l) => l.toFixed(2))
  .join(' ')}\n\n${markdownTable(rows)}\n\nswanctl timings include the swanctl process start and vici round trip (~10-20 ms).\n`;
writeFileSync(join(out, 'ike-setup-latest.md'), md);
process.stdout.write(md);
