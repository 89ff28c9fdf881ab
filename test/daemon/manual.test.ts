/**
 * Manual SAs in the daemon (src/daemon/manual.ts) and their control commands
 * (`sa-list`, `sa-add`, `sa-del`), without root: two SADs with the packet
 * logic of the datapath, configured with mirrored static keys, pass a packet
 * each way; a wrong key counts an ICV failure; policies and SAs come and go
 * with the manual SA; keys never reach the log or the command results.
 */
import { describe, expect, it } from 'vitest';
import { parseManualSa, type ManualSaConfig } from '../../src/config/manual.js';
import { OUT_SEND, PacketEngine } from '../../src/esp/engine.js';
import { SecurityAssociationDatabase } from '../../src/esp/sadb.js';
import { controlCommands, type DaemonControl } from '../../src/daemon/control/commands.js';
import { ControlError } from '../../src/daemon/control/server.js';
import { DaemonLogger } from '../../src/daemon/logger.js';
import { MANUAL_REQID_BASE, ManualSas } from '../../src/daemon/manual.js';
import { icmp, inResult, ipPacket, outResult } from '../esp/support.js';

const KEY_A = 'aa'.repeat(20);
const KEY_B = 'bb'.repeat(20);
const MOON = '10.9.0.1';
const SUN = '10.9.0.2';

function sa(name: string, o: Record<string, string>): ManualSaConfig {
  const r = parseManualSa(name, o);
  if (!r.ok) throw new Error(r.problems.join('\n'));
  return r.sa;
}

function side(udp = false) {
  const lines: string[] = [];
  const sad = new SecurityAssociationDatabase();
  const dp = new PacketEngine(sad);
  const log = new DaemonLogger({ json: true, write: (l) => lines.push(l) });
  const manual = new ManualSas({ sad, log, udpAvailable: () => udp });
  return { sad, dp, manual, lines };
}

/** moon → sun over raw IPv4 ESP: outbound on one side, inbound (ESP after the IPv4 header) on the other. */
function pass(from: ReturnType<typeof side>, to: ReturnType<typeof side>, src: string, dst: string): Buffer | undefined {
  const pkt = ipPacket(src, dst, icmp(8, 0));
  const out = Buffer.alloc(pkt.length + 128);
  const res = outResult();
  from.dp.outbound(pkt, pkt.length, out, res);
  expect(res.verdict).toBe(OUT_SEND);
  const wire = Buffer.from(out.subarray(0, res.length));
  const ihl = (wire[0]! & 15) * 4;
  const r = inResult();
  to.dp.inbound(wire, ihl, wire.length, { family: 4, address: Buffer.from(src.split('.').map(Number)), udp: false }, Buffer.alloc(wire.length + 64), r);
  return r.packet === undefined ? undefined : Buffer.from(r.packet);
}

const moonSettings = { local_addr: MOON, remote_addr: SUN, spi_in: '0x2001', spi_out: '0x1001', key_in: KEY_B, key_out: KEY_A };
const sunSettings = { local_addr: SUN, remote_addr: MOON, spi_in: '0x1001', spi_out: '0x2001', key_in: KEY_A, key_out: KEY_B };

describe('ManualSas', () => {
  it('installs an SA pair, both policies and the active outbound SA under a reqid from 0x10000; traffic passes both ways', () => {
    const moon = side();
    const sun = side();
    const info = moon.manual.add(sa('m', moonSettings), 'config');
    sun.manual.add(sa('s', sunSettings), 'config');
    expect(info).toMatchObject({
      name: 'm',
      reqid: MANUAL_REQID_BASE,
      spi_in: '00002001',
      spi_out: '00001001',
      mode: 'transport',
      encap: null,
      local_ts: `${MOON}/32`,
      remote_ts: `${SUN}/32`,
    });
    expect(moon.sad.listPolicies().map((p) => [p.reqid, p.direction, p.action, p.failureMode])).toEqual([
      [MANUAL_REQID_BASE, 'out', 'protect', 'private'],
      [MANUAL_REQID_BASE, 'in', 'protect', 'private'],
    ]);
    expect(moon.sad.outboundSaFor(MANUAL_REQID_BASE)?.spec.spi).toBe(0x1001);

    expect(pass(moon, sun, MOON, SUN)).toBeDefined();
    expect(pass(sun, moon, SUN, MOON)).toBeDefined();
    const [m] = moon.manual.list().sas;
    expect(m).toMatchObject({ packets_in: 1, packets_out: 1, icv_failures: 0, installed_in: true, installed_out: true });
    expect(m!.bytes_out).toBeGreaterThan(0);
    // the second SA gets the next reqid
    expect(moon.manual.add(sa('m2', { ...moonSettings, spi_in: '0x3001', spi_out: '0x3002', remote_addr: '10.9.0.3' }), 'runtime').reqid).toBe(
      MANUAL_REQID_BASE + 1,
    );
  });

  it('a wrong key on one side: ICV failures counted on the receiving SA, nothing delivered', () => {
    const moon = side();
    const sun = side();
    moon.manual.add(sa('m', moonSettings), 'config');
    sun.manual.add(sa('s', { ...sunSettings, key_in: 'cc'.repeat(20) }), 'config');
    expect(pass(moon, sun, MOON, SUN)).toBeUndefined();
    expect(pass(moon, sun, MOON, SUN)).toBeUndefined();
    expect(sun.manual.list().sas[0]).toMatchObject({ icv_failures: 2, packets_in: 0 });
    expect(sun.dp.counters.inIcv).toBe(2);
  });

  it('delete removes the policies and both SAs; unknown names are false', () => {
    const moon = side();
    moon.manual.add(sa('m', moonSettings), 'config');
    expect(moon.manual.delete('m')).toBe(true);
    expect(moon.sad.listPolicies()).toEqual([]);
    expect(moon.sad.listSas()).toEqual([]);
    expect(moon.manual.delete('m')).toBe(false);
    moon.manual.add(sa('a', moonSettings), 'config');
    moon.manual.add(sa('b', { ...moonSettings, spi_in: '0x4001', spi_out: '0x4002', remote_addr: '10.9.0.4' }), 'config');
    moon.manual.deleteAll('stopping');
    expect(moon.manual.list().sas).toEqual([]);
    expect(moon.sad.listSas()).toEqual([]);
  });

  it('refuses duplicates (name, SPIs) and encap without a NAT-T socket, leaving nothing half-installed', () => {
    const moon = side();
    moon.manual.add(sa('m', moonSettings), 'config');
    expect(() => moon.manual.add(sa('m', moonSettings), 'runtime')).toThrow("manual SA 'm' exists already");
    expect(() => moon.manual.add(sa('x', { ...moonSettings, spi_out: '0x5555' }), 'runtime')).toThrow('an inbound SA with SPI 00002001 is installed already');
    expect(() => moon.manual.add(sa('y', { ...moonSettings, spi_in: '0x5555' }), 'runtime')).toThrow('an outbound SA with SPI 00001001 is installed already');
    expect(() => moon.manual.add(sa('z', { ...moonSettings, spi_in: '0x6001', spi_out: '0x6002', encap: 'yes' }), 'runtime')).toThrow(
      `ESP-in-UDP needs a NAT-T socket on ${MOON}:4500`,
    );
    expect(moon.sad.listSas().length).toBe(2);
    expect(moon.manual.names).toEqual(['m']);
    const withUdp = side(true);
    expect(
      withUdp.manual.add(sa('z', { ...moonSettings, encap: 'yes', mode: 'tunnel', local_ts: '192.168.1.0/24', remote_ts: '192.168.2.0/24' }), 'runtime'),
    ).toMatchObject({
      encap: { local_port: 4500, remote_port: 4500 },
      mode: 'tunnel',
      local_ts: '192.168.1.0/24',
      remote_ts: '192.168.2.0/24',
    });
  });

  it('keys never appear in the log', () => {
    const moon = side();
    moon.manual.add(sa('m', moonSettings), 'config');
    moon.manual.delete('m');
    expect(moon.lines.length).toBe(2);
    expect(moon.lines.join('\n')).not.toMatch(/aaaaaaaa|bbbbbbbb/);
  });
});

describe('control commands sa-list, sa-add, sa-del', () => {
  const daemonWith = (manual: ManualSas | undefined, phase = 'running') => controlCommands({ phase, manual, connectionList: [] } as unknown as DaemonControl);
  const call = async (h: Record<string, (a: Record<string, unknown>) => unknown>, command: string, args: Record<string, unknown> = {}) => h[command]!(args);
  const rejects = async (p: Promise<unknown>): Promise<ControlError> => {
    try {
      await p;
    } catch (err) {
      expect(err).toBeInstanceOf(ControlError);
      return err as ControlError;
    }
    throw new Error('resolved');
  };

  it('add (checked like the configuration), list with counters and no keys, del', async () => {
    const moon = side();
    const h = daemonWith(moon.manual);
    const added = (await call(h, 'sa-add', { name: 'm', settings: moonSettings })) as { reqid: number; origin: string };
    expect(added).toMatchObject({ reqid: MANUAL_REQID_BASE, origin: 'runtime' });
    const list = await call(h, 'sa-list');
    expect(list).toMatchObject({ sas: [{ name: 'm', spi_in: '00002001', spi_out: '00001001', icv_failures: 0 }] });
    expect(JSON.stringify(list)).not.toMatch(/aaaa|bbbb/);
    expect(await call(h, 'sa-del', { name: 'm' })).toEqual({ name: 'm', deleted: true });
    expect(await call(h, 'sa-list')).toEqual({ sas: [] });
  });

  it('errors: bad settings list every problem, unknown names, bad requests, no datapath, not running', async () => {
    const moon = side();
    const h = daemonWith(moon.manual);
    const bad = await rejects(Promise.resolve().then(() => call(h, 'sa-add', { name: 'm', settings: { ...moonSettings, spi_in: '7', key_out: '0x00' } })));
    expect(bad.code).toBe('failed');
    expect(bad.message).toBe(
      "invalid manual SA 'm':\n  manual.sas.m.spi_in: must be between 256 (0x100) and 4294967295 (0xffffffff); 1–255 are reserved (RFC 4303 §2.1), got 7",
    );
    const short = await rejects(Promise.resolve().then(() => call(h, 'sa-add', { name: 'm', settings: { ...moonSettings, key_out: '0x00' } })));
    expect(short.message).toBe(
      "invalid manual SA 'm':\n  manual.sas.m.key_out: aes128gcm16 needs 20 octets (16-octet key ‖ 4-octet salt, 40 hex digits), got 1",
    );
    expect((await rejects(Promise.resolve().then(() => call(h, 'sa-add', { name: 'm' })))).code).toBe('bad_request');
    expect((await rejects(Promise.resolve().then(() => call(h, 'sa-del', {})))).code).toBe('bad_request');
    expect((await rejects(Promise.resolve().then(() => call(h, 'sa-del', { name: 'nope' })))).code).toBe('not_found');
    await call(h, 'sa-add', { name: 'm', settings: moonSettings });
    expect((await rejects(Promise.resolve().then(() => call(h, 'sa-add', { name: 'm', settings: moonSettings })))).code).toBe('failed');
    expect((await rejects(Promise.resolve().then(() => call(daemonWith(undefined), 'sa-list')))).code).toBe('unavailable');
    expect((await rejects(Promise.resolve().then(() => call(daemonWith(moon.manual, 'stopping'), 'sa-list')))).code).toBe('unavailable');
  });
});
