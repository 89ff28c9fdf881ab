/**
 * Manual (static) SAs end to end: two `tunsec daemon` processes in their own
 * network namespaces, no IKE connections (`connections: {}`), only
 * `manual.sas` with static keys —
 *  - transport mode over raw ESP: ping and a TCP transfer pass, the veth
 *    carries them only as ESP, `tunsec sa list` counts them;
 *  - tunnel mode over ESP-in-UDP between inner networks: the same, only UDP
 *    4500 on the wire;
 *  - runtime SAs (`tunsec sa add/del` through the CLI): a mismatched key
 *    shows ICV failures on the receiving side (`sa list` and `list-sas`) and
 *    nothing passes; the right key makes traffic pass.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { controlRequest } from '../../src/cli/control-client.js';
import type { ManualSaListResult } from '../../src/control/protocol.js';
import type { ListSasResult } from '../../src/control/protocol.js';
import { Capture, isNeighborDiscovery, type CapturedPacket } from '../support/capture.js';
import { NetnsPair } from '../support/netns.js';
import { requireRootAndPrograms } from '../support/proc.js';
import { tcpTransfer } from '../support/tcp-transfer.js';
import { TunsecDaemon } from './tunsec-daemon.js';

requireRootAndPrograms('manual SAs', ['ip', 'ping', 'tcpdump']);

const KEY_MOON_TO_SUN = `0x${'4a'.repeat(16)}c0ffee01`;
const KEY_SUN_TO_MOON = `0x${'5b'.repeat(16)}c0ffee02`;

/** A configuration without IKE connections; `sas` are YAML lines under `manual.sas` (four-space indented). */
function manualYaml(sas: string[], daemonExtra: string[] = []): string {
  return [
    'daemon:',
    '  pid_file: ${DIR}/tunsec.pid',
    '  control_socket: ${DIR}/tunsec.sock',
    ...daemonExtra.map((l) => `  ${l}`),
    'connections: {}',
    ...(sas.length > 0 ? ['manual:', '  sas:', ...sas.map((l) => `    ${l}`)] : []),
    '',
  ].join('\n');
}

interface SaSide {
  local: string;
  remote: string;
  spiIn: string;
  spiOut: string;
  keyIn: string;
  keyOut: string;
}

/** One side of a manual SA pair: moon's out SA is sun's in SA. */
function sides(moon: string, sun: string, moonIn = KEY_SUN_TO_MOON): { moon: SaSide; sun: SaSide } {
  return {
    moon: { local: moon, remote: sun, spiIn: '0x2001', spiOut: '0x1001', keyIn: moonIn, keyOut: KEY_MOON_TO_SUN },
    sun: { local: sun, remote: moon, spiIn: '0x1001', spiOut: '0x2001', keyIn: KEY_MOON_TO_SUN, keyOut: KEY_SUN_TO_MOON },
  };
}

function saLines(name: string, s: SaSide, extra: string[] = []): string[] {
  return [
    `${name}:`,
    `  local_addr: ${s.local}`,
    `  remote_addr: ${s.remote}`,
    `  spi_in: ${s.spiIn}`,
    `  spi_out: ${s.spiOut}`,
    '  esp_proposal: aes128gcm16',
    `  key_in: "${s.keyIn}"`,
    `  key_out: "${s.keyOut}"`,
    ...extra.map((l) => `  ${l}`),
  ];
}

const socketOf = (d: TunsecDaemon): string => `${d.dir}/tunsec.sock`;
const saList = async (d: TunsecDaemon): Promise<ManualSaListResult> => (await controlRequest(socketOf(d), 'sa-list')) as ManualSaListResult;

/** Run the `tunsec` CLI in-process; its exit code and output. */
async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

async function startBoth(pair: NetnsPair, moonYaml: string, sunYaml: string): Promise<{ moon: TunsecDaemon; sun: TunsecDaemon }> {
  const moon = new TunsecDaemon(pair.a.ns, moonYaml);
  const sun = new TunsecDaemon(pair.b.ns, sunYaml);
  await sun.start();
  await moon.start();
  await sun.event('daemon_started');
  await moon.event('daemon_started');
  return { moon, sun };
}

describe('manual SAs, transport mode over raw ESP (IPv4)', () => {
  let pair: NetnsPair;
  let moon: TunsecDaemon;
  let sun: TunsecDaemon;

  beforeAll(async () => {
    pair = await NetnsPair.create('ma');
    const s = sides(pair.a.ip4, pair.b.ip4);
    ({ moon, sun } = await startBoth(pair, manualYaml(saLines('host', s.moon)), manualYaml(saLines('host', s.sun))));
  }, 60_000);

  afterAll(async () => {
    await moon?.stop();
    await sun?.stop();
    await pair?.destroy();
  });

  it('the daemon starts with manual SAs only, warns that the file holding keys is readable, and never logs a key', () => {
    const text = moon.text();
    expect(text).toMatch(/manual SA host\{65536\} installed \(config\): SPIs 00002001_i 00001001_o/);
    expect(text).toContain('holds manual SA keys and is accessible by group and others');
    expect(text).not.toContain('4a4a4a4a');
    expect(text).not.toContain('c0ffee');
  });

  it('ping and a TCP transfer pass, only as ESP on the veth, counted by tunsec sa list', async () => {
    const clear = await Capture.start(pair.b.ns, pair.b.ifname, ['not', 'esp']);
    const esp = await Capture.start(pair.b.ns, pair.b.ifname, ['-c', '20', 'esp']);
    try {
      const ping = await pair.exec(pair.a, 'ping', ['-c', '5', '-i', '0.2', '-W', '2', pair.b.ip4], 20_000);
      expect(ping.code, `${ping.stdout}\n${ping.stderr}\nmoon:\n${moon.text()}\nsun:\n${sun.text()}`).toBe(0);
      // 4 MB from moon to sun: every byte arrives, intact, through the manual SAs
      expect(await tcpTransfer(pair, pair.a, pair.b, pair.b.ip4, { bytes: 4_000_000 })).toEqual({ sent: 4_000_000, received: 4_000_000, intact: true });
      const ours = (p: CapturedPacket): boolean => (p.src === pair.a.ip4 || p.dst === pair.a.ip4) && !isNeighborDiscovery(p);
      expect((await clear.stop()).filter(ours).map((p) => `${p.protocol} ${p.src} → ${p.dst}`)).toEqual([]);
      expect((await esp.stop()).filter(ours).length).toBeGreaterThan(0);
    } finally {
      await clear.stop();
      await esp.stop();
      clear.remove();
      esp.remove();
    }
    const [m] = (await saList(moon)).sas;
    const [s] = (await saList(sun)).sas;
    expect(m).toMatchObject({ name: 'host', origin: 'config', mode: 'transport', encap: null, icv_failures: 0, replay_drops: 0 });
    expect(m!.packets_out).toBeGreaterThan(1000);
    // what moon sent, sun received (same SPI, same counts)
    expect(s!.packets_in).toBe(m!.packets_out);
    expect(s!.bytes_in).toBe(m!.bytes_out);
    expect(s!.packets_out).toBe(m!.packets_in);
    const text = await cli(['sa', 'list', '--socket', socketOf(sun)]);
    expect(text.code, text.err).toBe(0);
    expect(text.out).toMatch(
      /^host\{65536\}: TRANSPORT, aes128gcm16, \S+ === \S+, private \(config\)\n {2}in {2}00001001, +\d+ bytes, +\d+ packets, replay window 32, 0 replay drops, 0 ICV failures/,
    );
    const json = await cli(['sa', 'list', '--json', '--socket', socketOf(sun)]);
    expect((JSON.parse(json.out) as ManualSaListResult).sas[0]?.spi_in).toBe('00001001');
    expect(json.out).not.toContain('4a4a');
  }, 90_000);
});

describe('manual SAs, tunnel mode over ESP-in-UDP', () => {
  let pair: NetnsPair;
  let moon: TunsecDaemon;
  let sun: TunsecDaemon;
  const inner = { moon: '192.168.81.1', sun: '192.168.82.1' };

  beforeAll(async () => {
    pair = await NetnsPair.create('mb');
    await pair.exec(pair.a, 'ip', ['addr', 'add', `${inner.moon}/24`, 'dev', 'lo']);
    await pair.exec(pair.b, 'ip', ['addr', 'add', `${inner.sun}/24`, 'dev', 'lo']);
    const s = sides(pair.a.ip4, pair.b.ip4);
    const extra = (mine: string, theirs: string): string[] => ['mode: tunnel', 'encap: yes', `local_ts: ${mine}`, `remote_ts: ${theirs}`];
    ({ moon, sun } = await startBoth(
      pair,
      manualYaml(saLines('net', s.moon, extra('192.168.81.0/24', '192.168.82.0/24'))),
      manualYaml(saLines('net', s.sun, extra('192.168.82.0/24', '192.168.81.0/24'))),
    ));
  }, 60_000);

  afterAll(async () => {
    await moon?.stop();
    await sun?.stop();
    await pair?.destroy();
  });

  it('ping and a TCP transfer between the inner networks cross the veth only as UDP 4500', async () => {
    const clear = await Capture.start(pair.b.ns, pair.b.ifname, ['not', 'udp', 'port', '4500']);
    const encapsulated = await Capture.start(pair.b.ns, pair.b.ifname, ['-c', '20', 'udp', 'port', '4500']);
    try {
      const ping = await pair.exec(pair.a, 'ping', ['-c', '5', '-i', '0.2', '-W', '2', '-I', inner.moon, inner.sun], 20_000);
      expect(ping.code, `${ping.stdout}\n${ping.stderr}\nmoon:\n${moon.text()}\nsun:\n${sun.text()}`).toBe(0);
      expect(await tcpTransfer(pair, pair.a, pair.b, inner.sun, { bytes: 4_000_000, bind: inner.moon })).toEqual({
        sent: 4_000_000,
        received: 4_000_000,
        intact: true,
      });
      const innerAddresses = new Set([inner.moon, inner.sun]);
      expect(
        (await clear.stop()).filter((p) => innerAddresses.has(p.src) || innerAddresses.has(p.dst)).map((p) => `${p.protocol} ${p.src} → ${p.dst}`),
      ).toEqual([]);
      const esp = await encapsulated.stop();
      expect(esp.length).toBeGreaterThan(0);
      expect(esp.every((p) => (p.src === pair.a.ip4 || p.src === pair.b.ip4) && p.protocol === 'udp')).toBe(true);
    } finally {
      await clear.stop();
      await encapsulated.stop();
      clear.remove();
      encapsulated.remove();
    }
    const [m] = (await saList(moon)).sas;
    const [s] = (await saList(sun)).sas;
    expect(m).toMatchObject({
      mode: 'tunnel',
      encap: { local_port: 4500, remote_port: 4500 },
      local_ts: '192.168.81.0/24',
      remote_ts: '192.168.82.0/24',
      icv_failures: 0,
    });
    expect(s!.packets_in).toBe(m!.packets_out);
    expect(m!.packets_in).toBe(s!.packets_out);
  }, 90_000);
});

describe('runtime manual SAs (tunsec sa add/del) and a mismatched key', () => {
  let pair: NetnsPair;
  let moon: TunsecDaemon;
  let sun: TunsecDaemon;

  beforeAll(async () => {
    pair = await NetnsPair.create('mc');
    ({ moon, sun } = await startBoth(pair, manualYaml([], ['metrics: 127.0.0.1:9810']), manualYaml([])));
  }, 60_000);

  afterAll(async () => {
    await moon?.stop();
    await sun?.stop();
    await pair?.destroy();
  });

  const add = (d: TunsecDaemon, s: SaSide): Promise<{ code: number; out: string; err: string }> =>
    cli([
      'sa',
      'add',
      'rt',
      `local_addr=${s.local}`,
      `remote_addr=${s.remote}`,
      `spi_in=${s.spiIn}`,
      `spi_out=${s.spiOut}`,
      `key_in=${s.keyIn}`,
      `key_out=${s.keyOut}`,
      'replay_window=64',
      '--socket',
      socketOf(d),
    ]);

  it('invalid settings are refused with the configuration checks', async () => {
    const r = await cli([
      'sa',
      'add',
      'rt',
      'local_addr=10.0.0.1',
      'remote_addr=10.0.0.2',
      'spi_in=12',
      'spi_out=0x1000',
      'key_in=0x00',
      `key_out=${KEY_MOON_TO_SUN}`,
      '--socket',
      socketOf(moon),
    ]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('manual.sas.rt.spi_in: must be between 256 (0x100) and 4294967295');
    expect((await saList(moon)).sas).toEqual([]);
  });

  it('a mismatched key: ICV failures on the receiving side, nothing passes; with the right key traffic passes', async () => {
    // moon decrypts sun's packets with a wrong key: echo replies fail there
    const wrong = sides(pair.a.ip4, pair.b.ip4, `0x${'ee'.repeat(20)}`);
    const added = await add(moon, wrong.moon);
    expect(added.code, added.err).toBe(0);
    expect(added.out).toBe('rt{65536}: installed, SPIs 00002001_i 00001001_o\n');
    expect((await add(sun, wrong.sun)).code).toBe(0);
    const ping = await pair.exec(pair.a, 'ping', ['-c', '3', '-i', '0.2', '-W', '1', pair.b.ip4], 20_000);
    expect(ping.code).not.toBe(0);
    const [m] = (await saList(moon)).sas;
    const [s] = (await saList(sun)).sas;
    expect(s!.packets_in).toBeGreaterThan(0); // the echo requests arrived at sun
    expect(m!.icv_failures).toBeGreaterThan(0); // the replies failed at moon
    expect(m!.packets_in).toBe(0);
    const listSas = (await controlRequest(socketOf(moon), 'list-sas')) as ListSasResult;
    expect(listSas.manual_sas?.[0]?.icv_failures).toBe(m!.icv_failures);
    expect(listSas.datapath?.counters.inIcv).toBeGreaterThan(0);
    const text = await cli(['sa', 'list', '--socket', socketOf(moon)]);
    expect(text.out).toMatch(new RegExp(`, ${m!.icv_failures} ICV failures`));
    // …and in the metrics
    const scrape = await pair.exec(pair.a, process.execPath, [
      '-e',
      "fetch('http://127.0.0.1:9810/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))",
    ]);
    expect(scrape.code, scrape.stderr).toBe(0);
    const icvLine = scrape.stdout.split('\n').find((l) => l.startsWith('tunsec_manual_sa_icv_failures_total{') && l.includes('sa="rt"'));
    expect(icvLine, scrape.stdout.slice(0, 2000)).toBeDefined();
    expect(Number(icvLine!.split(' ').pop())).toBe(m!.icv_failures);

    expect((await cli(['sa', 'del', 'rt', '--socket', socketOf(moon)])).out).toBe('rt: deleted\n');
    expect((await cli(['sa', 'del', 'rt', '--socket', socketOf(moon)])).code).toBe(3); // not found
    // both sides start over (sun's replay window has seen moon's first sequence numbers)
    expect((await cli(['sa', 'del', 'rt', '--socket', socketOf(sun)])).code).toBe(0);
    const right = sides(pair.a.ip4, pair.b.ip4);
    expect((await add(moon, right.moon)).code).toBe(0);
    expect((await add(sun, right.sun)).code).toBe(0);
    const ok = await pair.exec(pair.a, 'ping', ['-c', '3', '-i', '0.2', '-W', '2', pair.b.ip4], 20_000);
    expect(ok.code, `${ok.stdout}\nmoon:\n${moon.text()}`).toBe(0);
    const [m2] = (await saList(moon)).sas;
    expect(m2).toMatchObject({ origin: 'runtime', icv_failures: 0, reqid: 65537 });
    expect(m2!.packets_in).toBeGreaterThan(0);
    expect(moon.text()).not.toContain('eeeeeeee');
  }, 60_000);
});
