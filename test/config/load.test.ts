/**
 * The YAML configuration: the shipped example, defaults, and one exact
 * message with its key path for each kind of mistake.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { defaultProposals } from '../../src/ike/proposal/parse.js';
import { formatProposalList } from '../../src/ike/proposal/format.js';
import { ProtocolId } from '../../src/ike/transforms.js';
import { defaultCryptoWorkers } from '../../src/crypto/pool/defaults.js';
import { type ConfigProblem, type TunsecConfig, formatProblem, loadConfig, loadConfigOrThrow } from '../../src/config/index.js';

function load(text: string): { config: TunsecConfig; warnings: string[] } {
  const r = loadConfig({ text, baseDir: '/etc/tunsec' });
  if (!r.ok) throw new Error(r.error.message);
  return { config: r.config, warnings: r.warnings.map(formatProblem) };
}

function problems(text: string): ConfigProblem[] {
  const r = loadConfig({ text, baseDir: '/etc/tunsec' });
  if (r.ok) throw new Error('the configuration loaded');
  return [...r.error.problems];
}

function errors(text: string): string[] {
  return problems(text)
    .filter((p) => p.severity === 'error')
    .map(formatProblem);
}

/** A minimal valid configuration; `conn` and `child` lines are added under dc1 and dc1.children.cache. */
function minimal({ conn = '', child = '', top = '' } = {}): string {
  const indent = (s: string, n: number): string =>
    s
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => ' '.repeat(n) + l)
      .join('\n');
  return `${top}
authorities:
  cacerts: x509ca/ca.pem
connections:
  dc1:
    remote_addrs: 192.0.2.1
    local:
      certs: x509/me.pem
${indent(conn, 4)}
    children:
      cache:
        mode: transport
${indent(child, 8)}
`;
}

describe('the example configuration', () => {
  const exampleUrl = new URL('../../examples/tunsec.yaml', import.meta.url);

  it('examples/tunsec.yaml loads without errors or warnings', () => {
    const r = loadConfig({ path: exampleUrl.pathname });
    expect(r.ok ? [] : r.error.messages).toEqual([]);
    expect(r.warnings).toEqual([]);
  });

  it('it carries the mission proposals, strict, and a transport-mode host-to-host child over IPv4 and IPv6', () => {
    const config = loadConfigOrThrow({ path: exampleUrl.pathname });
    const v4 = config.connections['moon-sun'];
    const v6 = config.connections['moon-sun-v6'];
    expect(v4?.proposals.strict).toBe(true);
    expect(formatProposalList(v4?.proposals.proposals ?? [])).toBe('aes128gcm16-prfsha384-ecp384bp');
    expect(formatProposalList(v4?.children.host?.esp_proposals.proposals ?? [])).toBe('aes128gcm16-ecp384bp-noesn');
    expect(v4?.children.host?.mode).toBe('transport');
    expect(v4?.local_addrs).toEqual(['10.77.0.1']);
    expect(v6?.remote_addrs).toEqual(['fd77::2']);
    expect(v6?.children.host?.mode).toBe('transport');
    expect(v4?.local.id).toEqual({ type: 'ID_FQDN', value: 'moon.ikev2.test', text: 'moon.ikev2.test' });
    expect(v4?.local.certs).toEqual([new URL('../../examples/x509/moonCert.pem', import.meta.url).pathname]);
    expect(config.secrets['private-moon']).toEqual({ type: 'private', file: new URL('../../examples/private/moonKey.pem', import.meta.url).pathname });
  });
});

describe('defaults', () => {
  const { config, warnings } = load(minimal());
  const dc1 = config.connections.dc1!;
  const cache = dc1.children.cache!;

  it('a minimal configuration loads without warnings', () => {
    expect(warnings).toEqual([]);
  });

  it("the connection gets swanctl.conf's defaults", () => {
    expect(dc1).toMatchObject({
      version: 2,
      local_addrs: ['%any'],
      local_port: 500,
      remote_port: 500,
      send_cert: 'ifasked',
      send_certreq: true,
      dpd_delay: 0,
      dpd_timeout: 0,
      keyingtries: 1,
      encap: false,
      fragmentation: 'yes',
      mobike: false,
      unique: 'no',
      remote: { auth: 'pubkey', id: { type: 'ID_ANY' }, certs: [], cacerts: [] },
    });
    expect(dc1.local.id).toBeUndefined();
  });

  it('IKE lifetimes: rekey_time 4h, over_time 10% of it, rand_time = over_time, closed at rekey_time + over_time', () => {
    expect(dc1).toMatchObject({ rekey_time: 14400, reauth_time: 0, over_time: 1440, rand_time: 1440, life_time: 15840 });
  });

  it("proposals default to 'default'", () => {
    expect(dc1.proposals.text).toBe('default');
    expect(dc1.proposals.proposals).toEqual(defaultProposals(ProtocolId.IKE));
    expect(cache.esp_proposals.proposals).toEqual(defaultProposals(ProtocolId.ESP));
  });

  it('the child defaults to transport mode (unlike strongSwan), dynamic selectors, and 1h rekeying with 10% margin', () => {
    expect(cache).toMatchObject({
      mode: 'transport',
      start_action: 'none',
      dpd_action: 'clear',
      close_action: 'none',
      replay_window: 32,
      policy: 'private',
      rekey_time: 3600,
      life_time: 3960,
      rand_time: 360,
      rekey_bytes: 0,
      life_bytes: 0,
      rand_bytes: 0,
      rekey_packets: 0,
      life_packets: 0,
      rand_packets: 0,
    });
    expect(cache.local_ts).toEqual([{ dynamic: true, protocol: 0, startPort: 0, endPort: 65535, text: 'dynamic' }]);
  });

  it('the daemon and authorities sections have defaults, relative paths resolve against the base directory', () => {
    expect(config.daemon).toEqual({
      pid_file: '/run/tunsec/tunsec.pid',
      control_socket: '/run/tunsec/tunsec.sock',
      log: { dmn: 1, mgr: 1, ike: 1, chd: 1, job: 1, cfg: 1, knl: 1, net: 1, asn: 1, enc: 1, lib: 1, esp: 1, tun: 1 },
      global: 'drop',
      prefer_configured_proposals: true,
      keep_alive: 20,
      bypass_rules: true,
      datapath: 'userspace',
      tun_name: 'tunsec0',
      watch_credentials: 10,
      tun_mtu: 'auto',
      offload: 'auto',
      datapath_crypto: 'native',
      fwmark: 0x7473,
      route_table: 220,
      route_priority: 220,
      backstop_table: 221,
      backstop_priority: 221,
      hold_packets: 16,
      retransmit: { timeout: 4, base: 1.8, tries: 5 },
      mss_clamp: true,
      crypto_workers: defaultCryptoWorkers(),
      limits: {
        half_open_max: 1024,
        half_open_per_peer: 16,
        half_open_timeout: 30,
        cookie_threshold: 10,
        ike_init_rate: 10,
        ike_auth_rate: 10,
        peers_max: 4096,
        invalid_spi_rate: 10,
        fragments_per_sa: 4,
        fragment_bytes: 65535,
        fragments_total_bytes: 4 * 1024 * 1024,
        fragment_timeout: 30,
      },
    });
    expect(config.authorities).toEqual({ cacerts: ['/etc/tunsec/x509ca/ca.pem'], crls: [], strictcrl: 'no' });
    expect(dc1.local.certs).toEqual(['/etc/tunsec/x509/me.pem']);
  });

  it('a TUN device name longer than 15 octets is refused with its key path', () => {
    const r = loadConfig({ text: minimal({ top: 'daemon:\n  tun_name: a-very-long-interface\n' }) });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.problems.map((p) => p.path)).toContain('daemon.tun_name');
  });

  it('daemon.crypto_workers takes 0 (inline) up to 64 workers and refuses anything else with its key path and the range', () => {
    for (const n of [0, 1, 4, 64]) expect(load(minimal({ top: `daemon:\n  crypto_workers: ${n}\n` })).config.daemon?.crypto_workers).toBe(n);
    expect(defaultCryptoWorkers(2)).toBe(1);
    expect(defaultCryptoWorkers(1)).toBe(1);
    expect(defaultCryptoWorkers(16)).toBe(4);
    for (const bad of ['-1', '65', '2.5', 'many']) {
      const found = problems(minimal({ top: `daemon:\n  crypto_workers: ${bad}\n` })).filter((p) => p.path === 'daemon.crypto_workers');
      expect(found.map((p) => p.message)).toEqual([expect.stringContaining('from 0 (key exchange and signatures inline on the main thread) to 64')]);
    }
  });

  it('daemon.offload takes auto, on or off and refuses anything else with its key path', () => {
    for (const v of ['auto', 'on', 'off'] as const) expect(load(minimal({ top: `daemon:\n  offload: ${v}\n` })).config.daemon?.offload).toBe(v);
    const r = loadConfig({ text: minimal({ top: 'daemon:\n  offload: yes\n' }) });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.problems.map((p) => p.path)).toContain('daemon.offload');
  });

  it('the backstop table and rule follow route_table and route_priority unless set', () => {
    expect(load(minimal({ top: 'daemon:\n  route_table: 300\n  route_priority: 400\n' })).config.daemon).toMatchObject({
      backstop_table: 301,
      backstop_priority: 401,
    });
    expect(load(minimal({ top: 'daemon:\n  backstop_table: 99\n  backstop_priority: 500\n' })).config.daemon).toMatchObject({
      backstop_table: 99,
      backstop_priority: 500,
    });
  });

  it('a backstop that would hide the TUN routes (same table, or a rule ahead of theirs) is refused with its key path', () => {
    const sameTable = problems(minimal({ top: 'daemon:\n  backstop_table: 220\n' }));
    expect(sameTable.map((p) => [p.path, formatProblem(p)])).toEqual([
      ['daemon.backstop_table', expect.stringContaining('must differ from route_table (220)')],
    ]);
    const ahead = problems(minimal({ top: 'daemon:\n  backstop_priority: 219\n' }));
    expect(ahead.map((p) => [p.path, formatProblem(p)])).toEqual([
      ['daemon.backstop_priority', expect.stringContaining("must lie between route_priority (220) and the main table's rule (32766), exclusive; got 219")],
    ]);
  });

  it('log levels: default applies to every subsystem not named', () => {
    const { config: c } = load(minimal({ top: 'daemon:\n  log:\n    default: 0\n    ike: 3\n' }));
    expect(c.daemon.log).toMatchObject({ ike: 3, cfg: 0, esp: 0 });
  });

  it('a child life_time alone gives rekey_time = life_time / 1.1, as in strongSwan', () => {
    const { config: c } = load(minimal({ child: 'life_time: 2h' }));
    expect(c.connections.dc1?.children.cache).toMatchObject({ rekey_time: 6545, life_time: 7200, rand_time: 655 });
  });

  it('reauth_time alone switches IKE rekeying off and derives over_time from it', () => {
    const { config: c } = load(minimal({ conn: 'reauth_time: 24h' }));
    expect(c.connections.dc1).toMatchObject({ rekey_time: 0, reauth_time: 86400, over_time: 8640, rand_time: 8640, life_time: 95040 });
  });

  it('yes/no and YAML booleans are both accepted', () => {
    const { config: c } = load(minimal({ conn: 'encap: yes\nsend_certreq: false\nmobike: no\nfragmentation: accept' }));
    expect(c.connections.dc1).toMatchObject({ encap: true, send_certreq: false, mobike: false, fragmentation: 'accept' });
  });

  it('lists may be YAML lists or comma-separated strings', () => {
    const { config: c } = load(
      minimal({ conn: 'local_addrs: [10.0.0.1, "fd00::1"]\nremote_addrs: 10.0.0.2, fd00::2', child: 'local_ts: 10.1.0.0/16[tcp/443], fd01::/64' }).replace(
        '    remote_addrs: 192.0.2.1\n',
        '',
      ),
    );
    expect(c.connections.dc1?.local_addrs).toEqual(['10.0.0.1', 'fd00::1']);
    expect(c.connections.dc1?.remote_addrs).toEqual(['10.0.0.2', 'fd00::2']);
    expect(c.connections.dc1?.children.cache?.local_ts.map((t) => [t.startAddress, t.endAddress, t.protocol, t.startPort])).toEqual([
      ['10.1.0.0', '10.1.255.255', 6, 443],
      ['fd01::', 'fd01::ffff:ffff:ffff:ffff', 0, 0],
    ]);
  });

  it('proposals may be a YAML list, the last one ending in "!"', () => {
    const { config: c } = load(minimal({ conn: 'proposals:\n  - aes256gcm16-prfsha384-ecp384\n  - aes128gcm16-prfsha384-ecp384bp!' }));
    expect(formatProposalList(c.connections.dc1?.proposals.proposals ?? [])).toBe('aes256gcm16-prfsha384-ecp384,aes128gcm16-prfsha384-ecp384bp');
  });

  it('without "!" the default proposals are appended', () => {
    const { config: c } = load(minimal({ child: 'esp_proposals: aes128gcm16-ecp384bp' }));
    expect(c.connections.dc1?.children.cache?.esp_proposals.proposals).toHaveLength(1 + defaultProposals(ProtocolId.ESP).length);
  });

  it("'start|trap' is read as 'trap|start'", () => {
    expect(load(minimal({ child: "start_action: 'start|trap'" })).config.connections.dc1?.children.cache?.start_action).toBe('trap|start');
  });
});

describe('one exact message per problem, with its key path', () => {
  it.each([
    [
      'an unknown algorithm in esp_proposals',
      minimal({ child: 'esp_proposals: aes128gcm17-ecp384bp' }),
      "connections.dc1.children.cache.esp_proposals: unknown algorithm 'aes128gcm17' in proposal 'aes128gcm17-ecp384bp'",
    ],
    [
      'an AEAD IKE proposal without a PRF',
      minimal({ conn: 'proposals: aes128gcm16-ecp384bp' }),
      "connections.dc1.proposals: IKE proposal 'aes128gcm16-ecp384bp' has no PRF; name one (e.g. prfsha384): with an AEAD algorithm there is no integrity algorithm to derive it from",
    ],
    ['a typo in a key', minimal({ child: 'rekey_tme: 1h' }), "connections.dc1.children.cache.rekey_tme: unknown key (did you mean 'rekey_time'?)"],
    ['an unknown key with no close match', minimal({ conn: 'colour: blue' }), 'connections.dc1.colour: unknown key'],
    [
      'a swanctl.conf key tunsec does not support',
      minimal({ conn: 'vips: 0.0.0.0' }),
      "connections.dc1.vips: unknown key: tunsec does not support the swanctl.conf setting 'vips'",
    ],
    [
      'a connection setting written inside local',
      minimal({ conn: 'remote:\n  cacerts: ca.pem\n  send_cert: always' }),
      "connections.dc1.remote.send_cert: unknown key here; 'send_cert' is a setting of the connection (connections.dc1)",
    ],
    [
      'a misspelt mode',
      minimal({ child: 'mode: tunel' }).replace('        mode: transport\n', ''),
      "connections.dc1.children.cache.mode: must be one of 'transport', 'tunnel', 'pass', 'drop', got 'tunel'",
    ],
    [
      'a bad time',
      minimal({ conn: 'rekey_time: 4x' }),
      "connections.dc1.rekey_time: invalid time '4x': use seconds, or a number with s, m, h or d (e.g. 90s, 30m, 4h, 1d)",
    ],
    [
      'a bad byte count',
      minimal({ child: 'life_bytes: 5t' }),
      "connections.dc1.children.cache.life_bytes: invalid byte count '5t': use a number, optionally with k, m or g (1024-based, e.g. 500m)",
    ],
    [
      'a packet count with a suffix',
      minimal({ child: 'life_packets: 1k' }),
      "connections.dc1.children.cache.life_packets: invalid packet count '1k': use a plain number",
    ],
    [
      'a replay window too large',
      minimal({ child: 'replay_window: 5000000' }),
      'connections.dc1.children.cache.replay_window: must be between 0 and 65536, got 5000000',
    ],
    ['a port out of range', minimal({ conn: 'remote_port: 70000' }), 'connections.dc1.remote_port: must be between 1 and 65535, got 70000'],
    [
      'a host name as address',
      minimal({ conn: 'local_addrs: gw.example.com' }),
      "connections.dc1.local_addrs: 'gw.example.com' is not an IP address or %any (tunsec does not resolve host names, ranges or subnets here)",
    ],
    [
      'a subnet with host bits',
      minimal({ child: 'remote_ts: 10.0.0.1/24' }),
      "connections.dc1.children.cache.remote_ts: invalid traffic selector '10.0.0.1/24': host bits are set (did you mean 10.0.0.0/24?)",
    ],
    ['IKEv1', minimal({ conn: 'version: 1' }), 'connections.dc1.version: tunsec speaks IKEv2 only; version must be 2, got a number (1)'],
    ['MOBIKE on', minimal({ conn: 'mobike: yes' }), "connections.dc1.mobike: tunsec does not implement MOBIKE (RFC 4555); only 'no' is accepted"],
    [
      'an auth method other than pubkey or null',
      minimal({ conn: 'remote:\n  auth: psk' }),
      "connections.dc1.remote.auth: must be one of 'pubkey', 'null', got 'psk'",
    ],
    [
      'an identity that is no IPv6 address',
      minimal({ conn: 'remote:\n  id: fd77::zz' }),
      "connections.dc1.remote.id: 'fd77::zz' is neither an IPv6 address nor an FQDN; write 'keyid:fd77::zz' if a key ID is meant",
    ],
    [
      'a CHILD_SA that expires before it rekeys',
      minimal({ child: 'rekey_time: 2h\nlife_time: 1h' }),
      'connections.dc1.children.cache.rekey_time: rekey_time (2h) must be less than life_time (1h): the CHILD_SA would expire before it is rekeyed',
    ],
    [
      'a CHILD rand_time as long as rekey_time',
      minimal({ child: 'rekey_time: 1h\nlife_time: 2h\nrand_time: 1h' }),
      'connections.dc1.children.cache.rand_time: rand_time (1h) must be less than rekey_time (1h): the random amount subtracted from rekey_time could start rekeying at once',
    ],
    [
      'byte limits the wrong way round',
      minimal({ child: 'rekey_bytes: 2g\nlife_bytes: 1g' }),
      'connections.dc1.children.cache.rekey_bytes: rekey_bytes (2g) must be less than life_bytes (1g): the CHILD_SA would expire before it is rekeyed',
    ],
    [
      'an IKE rand_time longer than rekey_time',
      minimal({ conn: 'rand_time: 5h' }),
      'connections.dc1.rand_time: rand_time (5h) must be less than rekey_time (4h): the random time subtracted from rekey_time could start it at once',
    ],
    [
      'start_action start towards %any',
      minimal({ conn: 'remote_addrs: "%any"', child: 'start_action: start' }).replace('    remote_addrs: 192.0.2.1\n', ''),
      "connections.dc1.children.cache.start_action: 'start' initiates the connection, but remote_addrs is %any: there is no peer address to initiate to",
    ],
    [
      'no local certificate',
      minimal().replace('    local:\n      certs: x509/me.pem\n', ''),
      "connections.dc1.local.certs: required with auth 'pubkey': the certificate tunsec authenticates with",
    ],
    [
      'nothing to verify the peer with',
      minimal().replace('authorities:\n  cacerts: x509ca/ca.pem\n', ''),
      "connections.dc1.remote.cacerts: required: nothing to verify the peer's certificate with (set remote.cacerts, remote.certs or authorities.cacerts)",
    ],
    [
      'a child that is not a section',
      minimal().replace('      cache:\n        mode: transport\n', '      cache: fast\n'),
      "connections.dc1.children.cache: expected a section (key: value pairs), got 'fast'",
    ],
    ['a log level out of range', minimal({ top: 'daemon:\n  log:\n    ike: 5' }), 'daemon.log.ike: must be between -1 and 4, got 5'],
    ['an unknown log subsystem', minimal({ top: 'daemon:\n  log:\n    iek: 2' }), "daemon.log.iek: unknown key (did you mean 'ike'?)"],
    [
      'a bad metrics address',
      minimal({ top: 'daemon:\n  metrics: localhost' }),
      "daemon.metrics: expected address:port (e.g. 127.0.0.1:9810 or [::1]:9810), got 'localhost'",
    ],
    ['a bad global state', minimal({ top: 'daemon:\n  global: pass' }), "daemon.global: must be one of 'clear', 'drop', got 'pass'"],
    [
      'a badly named secret',
      minimal({ top: 'secrets:\n  moon:\n    file: moon.pem' }),
      "secrets.moon: secret sections are named private<suffix>, rsa<suffix>, ecdsa<suffix> or pkcs8<suffix>, e.g. 'private-moon'",
    ],
    [
      'a connection name with a space',
      minimal().replace('  dc1:', '  "dc 1":'),
      "connections.dc 1: 'dc 1' is not a valid connection name (letters, digits, '.', '_' and '-', starting with a letter or digit)",
    ],
  ])('%s', (_what, text, message) => {
    expect(errors(text)).toEqual([message]);
  });

  it('a missing remote_addrs is reported as required', () => {
    expect(errors(minimal().replace('    remote_addrs: 192.0.2.1\n', ''))).toEqual(['connections.dc1.remote_addrs: required']);
  });

  it('a missing connections section is reported as required, and a misspelt one as unknown', () => {
    expect(errors('daemon: {}\n')).toEqual(['connections: required']);
    expect(errors('conections: {}\n')).toEqual(['connections: required', "conections: unknown key (did you mean 'connections'?)"]);
  });

  it('an empty file says what it needs', () => {
    expect(errors('')).toEqual(["the configuration is empty; it needs at least a 'connections' section"]);
  });
});

describe('several problems at once', () => {
  it('every problem in every section is reported, each with its path', () => {
    const text = `
daemon:
  global: pass
authorities:
  cacerts: ca.pem
connections:
  dc1:
    remote_adrs: 192.0.2.1
    local:
      certs: me.pem
    children:
      cache:
        esp_proposals: aes128gcm17-ecp384bp,aes128gcm16-sha999
        mode: tunel
      web:
        rekey_time: 2h
        life_time: 1h
  dc2:
    remote_addrs: 192.0.2.2
    rekey_time: soon
    local:
      certs: me.pem
`;
    expect(errors(text)).toEqual([
      "daemon.global: must be one of 'clear', 'drop', got 'pass'",
      'connections.dc1.remote_addrs: required',
      "connections.dc1.remote_adrs: unknown key (did you mean 'remote_addrs'?)",
      "connections.dc1.children.cache.esp_proposals: unknown algorithm 'aes128gcm17' in proposal 'aes128gcm17-ecp384bp'",
      "connections.dc1.children.cache.esp_proposals: unknown algorithm 'sha999' in proposal 'aes128gcm16-sha999'",
      "connections.dc1.children.cache.mode: must be one of 'transport', 'tunnel', 'pass', 'drop', got 'tunel'",
      'connections.dc1.children.web.rekey_time: rekey_time (2h) must be less than life_time (1h): the CHILD_SA would expire before it is rekeyed',
      "connections.dc2.rekey_time: invalid time 'soon': use seconds, or a number with s, m, h or d (e.g. 90s, 30m, 4h, 1d)",
    ]);
  });

  it('problems carry the line of the key they concern', () => {
    const text = minimal({ child: 'replay_window: -1' });
    const line = text.split('\n').findIndex((l) => l.includes('replay_window')) + 1;
    expect(problems(text).map((p) => [formatProblem(p), p.line])).toEqual([
      ['connections.dc1.children.cache.replay_window: must be between 0 and 65536, got -1', line],
    ]);
  });

  it('the ConfigError message lists the problems with their lines', () => {
    const text = minimal({ child: 'mode: tunel' }).replace('        mode: transport\n', '');
    const line = text.split('\n').findIndex((l) => l.includes('tunel')) + 1;
    const r = loadConfig({ text, path: 'tunsec.yaml' });
    expect(r.ok).toBe(false);
    expect(r.ok ? '' : r.error.message).toBe(
      `tunsec.yaml: 1 problem\n  line ${line}: connections.dc1.children.cache.mode: must be one of 'transport', 'tunnel', 'pass', 'drop', got 'tunel'`,
    );
  });
});

describe('YAML syntax errors', () => {
  it('an unclosed quote is reported with line and column', () => {
    const p = problems('connections:\n  dc1:\n    remote_addrs: "192.0.2.1\n');
    expect(p).toHaveLength(1);
    expect(p[0]?.line).toBeGreaterThanOrEqual(3);
    expect(formatProblem(p[0]!)).toMatch(/^line \d+, column \d+: .*quote/i);
  });

  it('bad indentation is reported at its line', () => {
    const p = problems('connections:\n  dc1:\n    remote_addrs: 192.0.2.1\n   local: {}\n');
    expect(p[0]?.line).toBe(4);
    expect(formatProblem(p[0]!)).toMatch(/^line 4, column \d+: /);
  });

  it('a key given twice is an error at the second one', () => {
    const p = problems('connections:\n  dc1:\n    remote_addrs: 192.0.2.1\n    remote_addrs: 192.0.2.2\n');
    expect(formatProblem(p[0]!)).toMatch(/^line 4, column 5: Map keys must be unique/);
  });
});

describe('warnings', () => {
  it('a CHILD_SA rekey margin shorter than a retransmission sequence loads with a warning', () => {
    const { warnings } = load(minimal({ child: 'rekey_time: 59m\nlife_time: 60m' }));
    expect(warnings).toEqual([
      'connections.dc1.children.cache.life_time: life_time (1h) leaves only 60s after rekey_time (59m); a rekeying exchange with retransmissions can take up to 165s',
    ]);
  });

  it('an IKE over_time shorter than a retransmission sequence loads with a warning', () => {
    expect(load(minimal({ conn: 'over_time: 60s' })).warnings).toEqual([
      'connections.dc1.over_time: over_time (1m) leaves less than 165s for rekeying to complete before the IKE SA is closed',
    ]);
  });

  it('a life limit with rekeying off warns that the SA will not be replaced', () => {
    expect(load(minimal({ child: 'rekey_time: 0\nlife_time: 8h' })).warnings).toEqual([
      'connections.dc1.children.cache.life_time: life_time is 8h but rekey_time is 0 (no rekeying): the CHILD_SA will expire without being replaced',
    ]);
  });

  it('dpd_timeout is accepted for swanctl compatibility but warned about', () => {
    expect(load(minimal({ conn: 'dpd_timeout: 150s' })).warnings).toEqual([
      'connections.dc1.dpd_timeout: has no effect with IKEv2 (a dead peer is detected by retransmission timeouts, as in strongSwan)',
    ]);
  });

  it('warnings are returned alongside errors too', () => {
    const r = loadConfig({ text: minimal({ conn: 'dpd_timeout: 150s', child: 'replay_window: -1' }) });
    expect(r.ok).toBe(false);
    expect(r.warnings.map(formatProblem)).toHaveLength(1);
  });
});

describe('reading files', () => {
  it('a missing file is one clear problem', () => {
    const r = loadConfig({ path: '/nonexistent/tunsec.yaml' });
    expect(r.ok ? [] : r.error.messages).toEqual(["cannot read /nonexistent/tunsec.yaml: ENOENT: no such file or directory, open '/nonexistent/tunsec.yaml'"]);
  });
});

describe('docs/configuration.md', () => {
  const doc = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
  const yamlBlocks = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');

  it('the opening example loads', () => {
    const r = loadConfig({ text: yamlBlocks[0] ?? '', baseDir: '/etc/tunsec' });
    expect(r.ok ? [] : r.error.messages).toEqual([]);
  });

  it('the example of reported problems is what tunsec reports', () => {
    const text = (yamlBlocks[1] ?? '').replace(/^ {2}/gm, '');
    const r = loadConfig({ text, path: 'tunsec.yaml' });
    const shown = /```yaml[\s\S]*?```\n\s*```\n([\s\S]*?)```/.exec(doc)?.[1]?.replace(/^ {2}/gm, '');
    expect(r.ok ? '' : `${r.error.message}\n`).toBe(shown);
  });
});

describe('YAML conveniences', () => {
  it('merge keys share settings between children', () => {
    const text = minimal({ child: '<<: *common' }).replace('children:\n', 'children:\n      base: &common\n        mode: tunnel\n        rekey_time: 20m\n');
    const { config } = load(text);
    expect(config.connections.dc1?.children.cache).toMatchObject({ mode: 'transport', rekey_time: 1200 });
    expect(config.connections.dc1?.children.base).toMatchObject({ mode: 'tunnel', rekey_time: 1200 });
  });
});
