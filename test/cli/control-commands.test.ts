/**
 * The control commands of `tunsec` against a fake daemon: a real control
 * socket server (src/daemon/control/server.ts) whose handlers answer what
 * the test says and record what they were asked. Covers what the CLI sends,
 * how it prints results, its exit codes and `{"error":…}` under --json, the
 * `monitor` event stream, per-command help and the bash completion script
 * (run by the real bash).
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { CertInfo, ListCertsResult, ListConnsResult, RekeyResult, UpResult } from '../../src/control/protocol.js';
import { COMMANDS, main } from '../../src/cli/main.js';
import { bashCompletion } from '../../src/cli/commands/completion.js';
import { ControlError, ControlServer, ControlStream, type ControlHandler } from '../../src/daemon/control/server.js';
import type { DaemonLogger } from '../../src/daemon/logger.js';
import { CLI, REPO, collectingLogger, tempDir } from '../daemon/support.js';

interface Fake {
  path: string;
  asked: Array<{ command: string; args: Record<string, unknown> }>;
  logger: DaemonLogger;
}

const CERT: CertInfo = {
  kind: 'own',
  subject: 'C=CH, O=test, CN=moon',
  issuer: 'C=CH, O=test, CN=Test CA',
  serial: '0x02',
  sans: ['DNS:moon.tunsec.test', 'IP:10.1.0.1'],
  not_before: '2026-01-01T00:00:00Z',
  not_after: '2036-01-01T00:00:00Z',
  validity: 'valid',
  key: 'ECDSA P-384',
  fingerprint: 'ab'.repeat(32),
  ca: false,
  source: '/etc/tunsec/x509/moon.pem',
  connections: ['moon-sun'],
};

describe('tunsec control commands against a fake daemon', () => {
  const dirs: Array<ReturnType<typeof tempDir>> = [];
  const servers: ControlServer[] = [];
  afterEach(() => {
    for (const s of servers.splice(0)) s.stop();
    for (const d of dirs.splice(0)) d.remove();
  });

  async function fake(handlers: Record<string, ControlHandler>): Promise<Fake> {
    const dir = tempDir('tunsec-cli-');
    dirs.push(dir);
    const path = join(dir.path, 'tunsec.sock');
    const { logger } = collectingLogger();
    const asked: Fake['asked'] = [];
    const recorded: Record<string, ControlHandler> = {};
    for (const [name, h] of Object.entries(handlers)) {
      recorded[name] = (args) => {
        asked.push({ command: name, args });
        return h(args);
      };
    }
    const server = new ControlServer({ path, log: logger, handlers: recorded, peerCredentials: () => ({ pid: 1, uid: 0, gid: 0 }) });
    servers.push(server);
    await server.start();
    return { path, asked, logger };
  }

  async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
    let out = '';
    let err = '';
    const code = await main(argv, { out: (t) => (out += t), err: (t) => (err += t) });
    return { code, out, err };
  }

  it('up --child and down --child send the child and print the CHILD_SA; rekey prints old and new SPIs', async () => {
    const d = await fake({
      up: (args): UpResult => ({
        name: String(args.name),
        state: 'established',
        already: false,
        spi_i: '1111111111111111',
        spi_r: '2222222222222222',
        children: 2,
        child: { name: 'udp', reqid: 2, spi_in: 'c0000001', spi_out: 'c0000002' },
      }),
      down: (args) => ({ name: args.name, child: args.child, deleted: 1 }),
      rekey: (args): RekeyResult => ({
        name: String(args.name),
        child: null,
        ike_sas: [{ old_spi_i: '1111111111111111', old_spi_r: '2222222222222222', spi_i: '3333333333333333', spi_r: '4444444444444444' }],
        child_sas: [],
      }),
    });
    expect(await cli('up', 'moon-sun', '--child', 'udp', '-t', '5', '-s', d.path)).toEqual({
      code: 0,
      out: 'moon-sun/udp: established (CHILD_SA {2} c0000001_i c0000002_o on IKE_SA 1111111111111111_i 2222222222222222_r)\n',
      err: '',
    });
    expect(await cli('down', 'moon-sun', '--child=udp', `--socket=${d.path}`)).toEqual({ code: 0, out: 'moon-sun/udp: 1 CHILD_SA deleted\n', err: '' });
    expect(await cli('rekey', 'moon-sun', '--socket', d.path)).toEqual({
      code: 0,
      out: 'moon-sun: IKE_SA rekeyed: 1111111111111111_i 2222222222222222_r → 3333333333333333_i 4444444444444444_r\n',
      err: '',
    });
    expect(d.asked).toEqual([
      { command: 'up', args: { name: 'moon-sun', timeout: 5, child: 'udp' } },
      { command: 'down', args: { name: 'moon-sun', timeout: 10, child: 'udp' } },
      { command: 'rekey', args: { name: 'moon-sun', timeout: 30 } },
    ]);
  });

  it('a failure exits 3 when not found, 4 on a timeout, 1 otherwise; under --json it is {"error":{code,message}} on stdout and nothing on stderr', async () => {
    const d = await fake({
      up: () => {
        throw new ControlError('timeout', 'moon-sun: not established after 5 s; the attempt goes on');
      },
      down: () => {
        throw new ControlError('failed', 'the daemon is stopping');
      },
      rekey: () => {
        throw new ControlError('not_found', "no connection named 'nope'");
      },
    });
    expect(await cli('rekey', 'nope', '-s', d.path)).toEqual({ code: 3, out: '', err: "tunsec: no connection named 'nope'\n" });
    expect(await cli('up', 'moon-sun', '-s', d.path)).toMatchObject({ code: 4, out: '' });
    expect(await cli('down', 'moon-sun', '-s', d.path)).toMatchObject({ code: 1, out: '' });
    for (const [argv, code, error] of [
      [['rekey', 'nope'], 3, { code: 'not_found', message: "no connection named 'nope'" }],
      [['up', 'moon-sun'], 4, { code: 'timeout', message: 'moon-sun: not established after 5 s; the attempt goes on' }],
      [['down', 'moon-sun'], 1, { code: 'failed', message: 'the daemon is stopping' }],
    ] as const) {
      const r = await cli(...argv, '--json', '-s', d.path);
      expect(r.code).toBe(code);
      expect(r.err).toBe('');
      expect(JSON.parse(r.out)).toEqual({ error });
    }
    const nobody = join(dirname(d.path), 'nobody.sock');
    const gone = await cli('status', '--json', '-s', nobody);
    expect(gone.code).toBe(1);
    expect(JSON.parse(gone.out)).toEqual({
      error: { code: 'unavailable', message: `cannot reach the daemon at ${nobody}: ENOENT (is tunsec daemon running?)` },
    });
    const bad = await cli('list-sas', '--frobnicate', '--json', '-s', d.path);
    expect(bad.code).toBe(2);
    expect(JSON.parse(bad.out)).toEqual({ error: { code: 'usage', message: "unknown option '--frobnicate'" } });
  });

  it('list-certs prints each certificate as swanctl does, and NAME selects the certificates of that connection (text and JSON)', async () => {
    const other: CertInfo = { ...CERT, kind: 'ca', subject: 'C=CH, O=test, CN=Test CA', sans: [], ca: true, connections: ['other'] };
    const d = await fake({ 'list-certs': (): ListCertsResult => ({ certificates: [CERT, other] }) });
    const r = await cli('list-certs', 'moon-sun', '-s', d.path);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(
      new RegExp(
        [
          '^own certificate, used by moon-sun:',
          '  subject:  "C=CH, O=test, CN=moon"',
          '  issuer:   "C=CH, O=test, CN=Test CA"',
          '  serial:   0x02',
          '  altNames: DNS:moon.tunsec.test, IP:10.1.0.1',
          '  flags:    end entity',
          '  validity: not before 2026-01-01T00:00:00Z',
          '            not after  2036-01-01T00:00:00Z, valid \\(\\d+ days left\\)',
          '  pubkey:   ECDSA P-384',
          `  sha256:   ${Array(32).fill('ab').join(':')}`,
          '  source:   /etc/tunsec/x509/moon.pem',
          '$',
        ].join('\n'),
      ),
    );
    const json = await cli('list-certs', 'other', '--json', '-s', d.path);
    expect(JSON.parse(json.out)).toEqual({ certificates: [other] });
  });

  it('monitor prints the events that follow its subscription, as lines or JSON lines, and --count ends it', async () => {
    const d = await fake({
      monitor: (args) =>
        new ControlStream({ events: args.events ?? 'all' }, (send) =>
          d.logger.subscribe((e) => e.event !== undefined && send({ event: e.event, time: e.time, subsys: e.subsys, msg: e.msg, ...e.fields })),
        ),
    });
    const emitWhenSubscribed = async (): Promise<void> => {
      while (d.logger.subscriberCount === 0) await new Promise((r) => setTimeout(r, 10));
      d.logger.event('ike', 'child_rekeyed', 'CHILD_SA host{1} rekeyed: a_i b_o → c_i d_o', { name: 'host', spi_in: 'c' });
      d.logger.event('ike', 'child_deleted', 'CHILD_SA udp{2} deleted', { name: 'udp' });
    };
    const [json] = await Promise.all([cli('monitor', '--json', '--count', '2', '--events', 'child_rekeyed,child_deleted', '-s', d.path), emitWhenSubscribed()]);
    expect(json.code).toBe(0);
    const lines = json.out
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toMatchObject([
      { event: 'child_rekeyed', subsys: 'ike', msg: 'CHILD_SA host{1} rekeyed: a_i b_o → c_i d_o', name: 'host', spi_in: 'c' },
      { event: 'child_deleted', name: 'udp' },
    ]);
    expect(json.err).toBe(`tunsec: monitoring child_rekeyed, child_deleted of the daemon at ${d.path} (Ctrl-C to stop)\n`);
    expect(d.asked[0]).toEqual({ command: 'monitor', args: { events: ['child_rekeyed', 'child_deleted'] } });
    // once the client is gone the daemon forgets the subscription
    while (d.logger.subscriberCount > 0) await new Promise((r) => setTimeout(r, 10));
    const [text] = await Promise.all([cli('monitor', '-n', '1', '-s', d.path), emitWhenSubscribed()]);
    expect(text.out).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z child_rekeyed {5}CHILD_SA host\{1\} rekeyed: a_i b_o → c_i d_o\n$/);
  });

  it('every command answers --help and help VERB with the same text naming each of its options, and refuses an unknown option with exit 2', async () => {
    for (const spec of COMMANDS) {
      const a = await cli(spec.name, '--help');
      const b = await cli('help', spec.name);
      expect(a.code, spec.name).toBe(0);
      expect(a.out).toBe(b.out);
      expect(a.out.startsWith(`usage: tunsec ${spec.name} `), spec.name).toBe(true);
      for (const option of Object.keys(spec.options)) expect(a.out, `${spec.name} --${option}`).toContain(`--${option}`);
      const bad = await cli(spec.name, '--frobnicate');
      // check is a Nagios plugin: a usage error is UNKNOWN (3) on stdout
      if (spec.name === 'check') expect(bad).toEqual({ code: 3, out: "TUNSEC UNKNOWN - usage: unknown option '--frobnicate'\n", err: '' });
      else
        expect(bad, spec.name).toEqual({
          code: 2,
          out: '',
          err: `tunsec: unknown option '--frobnicate'\nusage: tunsec ${spec.name} ${spec.synopsis}\n(tunsec help ${spec.name} for the options)\n`,
        });
    }
    expect((await cli('help', 'frobnicate')).code).toBe(2);
  });

  it('the bash completion script completes verbs, options, and connection and child names from the daemon (run by bash)', async () => {
    const d = await fake({
      'list-conns': (): ListConnsResult => ({
        connections: [
          { name: 'moon-sun', children: [{ name: 'host' }, { name: 'udp' }] },
          { name: 'moon-venus', children: [{ name: 'net' }] },
        ] as unknown as ListConnsResult['connections'],
      }),
    });
    const dir = tempDir('tunsec-completion-');
    dirs.push(dir);
    const script = join(dir.path, 'tunsec.bash');
    writeFileSync(script, bashCompletion(COMMANDS));
    const complete = (line: string): Promise<string[]> =>
      new Promise((resolve, reject) => {
        // the words as bash splits the line; the cursor at its end
        const words = line.split(' ');
        const program = [
          `tunsec() { ${JSON.stringify(process.execPath)} --import tsx ${JSON.stringify(CLI)} "$@"; }`,
          `source ${JSON.stringify(script)}`,
          `COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')})`,
          `COMP_CWORD=${words.length - 1}`,
          '_tunsec',
          'printf "%s\\n" "${COMPREPLY[@]}"',
        ].join('\n');
        const child = spawn('bash', ['-c', program], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        child.stdout.setEncoding('utf8').on('data', (t: string) => (out += t));
        child.stderr.setEncoding('utf8').on('data', (t: string) => (err += t));
        child.on('error', reject);
        child.on('close', (code) => (code === 0 ? resolve(out.split('\n').filter((l) => l !== '')) : reject(new Error(`bash: exit ${code}: ${err}`))));
      });
    expect(await complete('tunsec re')).toEqual(['rekey', 'reload']);
    expect(await complete('tunsec list-')).toEqual(['list-sas', 'list-conns', 'list-certs']);
    expect(await complete('tunsec up --ch')).toEqual(['--child']);
    expect(await complete('tunsec global ')).toEqual(['down', 'up', 'status']);
    expect(await complete(`tunsec up -s ${d.path} moon-`)).toEqual(['moon-sun', 'moon-venus']);
    expect(await complete(`tunsec rekey -s ${d.path} moon-sun --child `)).toEqual(['host', 'udp']);
    expect(await complete('tunsec monitor --events child_r')).toEqual(['child_rekeyed']);
    expect(await complete('tunsec help lis')).toEqual(['list-sas', 'list-conns', 'list-certs']);
  }, 120_000);

  it('examples/tunsec.bash-completion is the script tunsec completion bash prints', () => {
    expect(readFileSync(join(REPO, 'examples/tunsec.bash-completion'), 'utf8')).toBe(bashCompletion(COMMANDS));
  });
});
