/**
 * A real strongSwan 5.9.8 charon inside one of the test's network namespaces,
 * with its own mount namespace (private /run for the compiled-in pid file),
 * its own strongswan.conf and vici socket. Datapath: kernel-libipsec (the host
 * kernel has no ESP), which forces UDP encapsulation and supports tunnel mode only.
 * Started and stopped by PID file, never by name.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, readFileSync, existsSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, must, pidFromFile, stopPid, waitFor, haveProgram, type RunResult } from './proc.js';

export const CHARON_BIN = '/usr/lib/ipsec/charon';

export interface StrongSwanChild {
  name: string;
  mode: 'tunnel' | 'transport';
  espProposals: string;
  localTs: string[];
  remoteTs: string[];
  rekeyTime?: string;
  lifeTime?: string;
  randTime?: string;
  startAction?: 'none' | 'trap' | 'start';
}

export interface StrongSwanConnection {
  name: string;
  localAddrs: string[];
  remoteAddrs: string[];
  proposals: string;
  localId: string;
  remoteId: string;
  /** PEM of this side's certificate (and its private key), and the CA that must sign the peer. */
  certPem: string;
  keyPem: string;
  caPem: string;
  /** More CA certificates for swanctl/x509ca (e.g. an intermediate charon sends with its own certificate). */
  extraCaPems?: string[];
  sendCert?: 'always' | 'ifasked' | 'never';
  /** `local.auth` / `remote.auth` (default pubkey); anything else is written as given, for tests of what charon refuses. */
  localAuth?: string;
  remoteAuth?: string;
  fragmentation?: 'yes' | 'accept' | 'force' | 'no';
  encap?: boolean;
  mobike?: boolean;
  rekeyTime?: string;
  overTime?: string;
  randTime?: string;
  dpdDelay?: string;
  children: StrongSwanChild[];
}

export interface StrongSwanOptions {
  netns: string;
  /** Log levels per subsystem (charon filelog); ike/chd 4 logs every key. */
  logLevels?: Partial<Record<'ike' | 'chd' | 'knl' | 'enc' | 'net' | 'esp' | 'mgr' | 'cfg', number>>;
  /** UDP ports charon binds (defaults 500/4500). */
  connections: StrongSwanConnection[];
}

/** Fails loudly (never skips) when strongSwan is not installed: CI must not pass silently. */
export function requireStrongSwan(): void {
  const missing = [CHARON_BIN, 'swanctl'].filter((p) => !haveProgram(p));
  if (missing.length) {
    throw new Error(`strongSwan is required for interop tests but missing: ${missing.join(', ')} (run scripts/setup-system.sh as root)`);
  }
}

function swanctlConf(c: StrongSwanConnection): string {
  const lines: string[] = [];
  const opt = (key: string, v: string | undefined, indent: string): void => {
    if (v !== undefined) lines.push(`${indent}${key} = ${v}`);
  };
  lines.push(`    ${c.name} {`, `        version = 2`);
  opt('local_addrs', c.localAddrs.join(','), '        ');
  opt('remote_addrs', c.remoteAddrs.join(','), '        ');
  opt('proposals', c.proposals, '        ');
  opt('fragmentation', c.fragmentation, '        ');
  opt('encap', c.encap === undefined ? undefined : c.encap ? 'yes' : 'no', '        ');
  opt('mobike', c.mobike === undefined ? undefined : c.mobike ? 'yes' : 'no', '        ');
  opt('rekey_time', c.rekeyTime, '        ');
  opt('over_time', c.overTime, '        ');
  opt('rand_time', c.randTime, '        ');
  opt('dpd_delay', c.dpdDelay, '        ');
  lines.push(`        local {`, `            auth = ${c.localAuth ?? 'pubkey'}`, `            certs = ${c.name}-cert.pem`, `            id = ${c.localId}`);
  opt('send_cert', c.sendCert, '            ');
  lines.push(
    `        }`,
    `        remote {`,
    `            auth = ${c.remoteAuth ?? 'pubkey'}`,
    `            id = ${c.remoteId}`,
    `        }`,
    `        children {`,
  );
  for (const ch of c.children) {
    lines.push(`            ${ch.name} {`);
    opt('mode', ch.mode, '                ');
    opt('esp_proposals', ch.espProposals, '                ');
    opt('local_ts', ch.localTs.join(','), '                ');
    opt('remote_ts', ch.remoteTs.join(','), '                ');
    opt('rekey_time', ch.rekeyTime, '                ');
    opt('life_time', ch.lifeTime, '                ');
    opt('rand_time', ch.randTime, '                ');
    opt('start_action', ch.startAction ?? 'none', '                ');
    lines.push(`            }`);
  }
  lines.push(`        }`, `    }`);
  return lines.join('\n');
}

export class StrongSwan {
  readonly dir: string;
  private readonly runDir: string;

  constructor(private readonly options: StrongSwanOptions) {
    requireStrongSwan();
    // Short path: the vici socket path must stay below 108 octets.
    this.dir = mkdtempSync('/tmp/tsss-');
    this.runDir = join(this.dir, 'run');
  }

  get vici(): string {
    return `unix://${join(this.runDir, 'charon.vici')}`;
  }

  get logPath(): string {
    return join(this.dir, 'charon.log');
  }

  private get env(): NodeJS.ProcessEnv {
    return { ...process.env, STRONGSWAN_CONF: join(this.dir, 'strongswan.conf'), SWANCTL_DIR: join(this.dir, 'swanctl') };
  }

  private writeConfig(): void {
    const d = this.dir;
    for (const sub of ['run', 'swanctl/x509', 'swanctl/x509ca', 'swanctl/private', 'swanctl/conf.d']) mkdirSync(join(d, sub), { recursive: true });
    const lv = { ike: 2, chd: 2, knl: 1, enc: 1, net: 1, esp: 1, mgr: 1, cfg: 1, ...this.options.logLevels };
    writeFileSync(
      join(d, 'strongswan.conf'),
      `charon {
    load_modular = no
    load = random nonce openssl aes gcm sha1 sha2 hmac kdf pem pkcs1 pkcs8 x509 revocation constraints pubkey kernel-libipsec kernel-netlink socket-default vici
    install_routes = yes
    plugins {
        vici {
            socket = ${this.vici}
        }
        kernel-libipsec {
            allow_peer_ts = yes
        }
        kernel-netlink {
            fwmark = !0x42
        }
        socket-default {
            fwmark = 0x42
        }
    }
    filelog {
        charon-test {
            path = ${this.logPath}
            time_format = %H:%M:%S
            ike_name = yes
            append = no
            flush_line = yes
            default = 1
${Object.entries(lv)
  .map(([k, v]) => `            ${k} = ${v}`)
  .join('\n')}
        }
    }
    syslog {
        daemon {
            default = -1
        }
        auth {
            default = -1
        }
    }
}
swanctl {
    load = pem pkcs1 pkcs8 x509 revocation constraints pubkey openssl random
}
`,
    );
    const conns: string[] = [];
    const cas = new Set<string>();
    for (const c of this.options.connections) {
      writeFileSync(join(d, 'swanctl/x509', `${c.name}-cert.pem`), c.certPem);
      writeFileSync(join(d, 'swanctl/private', `${c.name}-key.pem`), c.keyPem, { mode: 0o600 });
      cas.add(c.caPem);
      for (const pem of c.extraCaPems ?? []) cas.add(pem);
      conns.push(swanctlConf(c));
    }
    [...cas].forEach((pem, i) => writeFileSync(join(d, 'swanctl/x509ca', `ca${i}.pem`), pem));
    writeFileSync(join(d, 'swanctl/swanctl.conf'), `connections {\n${conns.join('\n')}\n}\n`);
  }

  /** Start charon in the namespace and load the configuration. */
  async start(): Promise<void> {
    this.writeConfig();
    const out = join(this.dir, 'charon.stdout');
    const { spawn } = await import('node:child_process');
    const { openSync } = await import('node:fs');
    const fd = openSync(out, 'w');
    const child = spawn(
      'ip',
      [
        'netns',
        'exec',
        this.options.netns,
        'unshare',
        '--mount',
        '--propagation',
        'private',
        '--',
        'sh',
        '-c',
        'mount --bind "$1" /run && exec "$2"',
        'sh',
        this.runDir,
        CHARON_BIN,
      ],
      { env: this.env, stdio: ['ignore', fd, fd], detached: true },
    );
    child.unref();
    writeFileSync(join(this.dir, 'launch.pid'), String(child.pid));
    try {
      await waitFor('charon to start (pid file and vici socket)', () => this.pid() !== undefined && existsSync(join(this.runDir, 'charon.vici')), 15_000);
    } catch (err) {
      throw new Error(`${(err as Error).message}; charon output: ${readFileSync(out, 'utf8')}`);
    }
    await must('swanctl', ['--load-all', '--noprompt', '--uri', this.vici], { env: this.env });
  }

  pid(): number | undefined {
    return pidFromFile(join(this.runDir, 'charon.pid'));
  }

  swanctl(args: string[], timeoutMs = 30_000): Promise<RunResult> {
    const [cmd, ...rest] = args;
    return run('swanctl', [cmd!, '--uri', this.vici, ...rest], { env: this.env, timeoutMs });
  }

  async initiate(child: string, timeoutSec = 20): Promise<RunResult> {
    return this.swanctl(['--initiate', '--child', child, '--timeout', String(timeoutSec)], (timeoutSec + 5) * 1000);
  }

  /** `swanctl --list-sas --raw`, parsed into nested objects. */
  async listSas(): Promise<Record<string, ViciValue>> {
    const r = await this.swanctl(['--list-sas', '--raw']);
    if (r.code !== 0) throw new Error(`swanctl --list-sas failed: ${r.stderr}`);
    const result: Record<string, ViciValue> = {};
    for (const line of r.stdout.split('\n')) {
      const m = /^list-sa event (\{.*\})\s*$/.exec(line.trim());
      if (m) Object.assign(result, parseRaw(m[1]!) as Record<string, ViciValue>);
    }
    return result;
  }

  log(): string {
    return existsSync(this.logPath) ? readFileSync(this.logPath, 'utf8') : '';
  }

  /** Keep a copy of the log next to the test output for post-mortems. */
  saveLog(to: string): void {
    if (existsSync(this.logPath)) copyFileSync(this.logPath, to);
  }

  async stop(): Promise<void> {
    const pid = this.pid();
    if (pid !== undefined) await stopPid(pid);
    const launcher = pidFromFile(join(this.dir, 'launch.pid'));
    if (launcher !== undefined) await stopPid(launcher, 1000);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export type ViciValue = string | ViciValue[] | { [key: string]: ViciValue };

/**
 * Parser for swanctl's --raw output: `{key=value key={...} key=[a b]}`.
 * Values run up to the next space that is followed by `key=`, `}` or `]`.
 */
export function parseRaw(text: string): ViciValue {
  let i = 0;
  const ws = (): void => {
    while (text[i] === ' ') i++;
  };
  const parseValue = (): ViciValue => {
    ws();
    if (text[i] === '{') {
      i++;
      const obj: Record<string, ViciValue> = {};
      for (;;) {
        ws();
        if (text[i] === '}') {
          i++;
          return obj;
        }
        const eq = text.indexOf('=', i);
        const brace = text.indexOf('{', i);
        const bracket = text.indexOf('[', i);
        // Sections print as `name {`, lists as `name [`, key/values as `key=value`.
        const candidates = [eq, brace, bracket].filter((x) => x >= 0);
        const stop = Math.min(...candidates);
        const key = text.slice(i, stop).trim();
        i = stop;
        if (text[i] === '=') i++;
        obj[key] = parseValue();
      }
    }
    if (text[i] === '[') {
      i++;
      const list: ViciValue[] = [];
      for (;;) {
        ws();
        if (text[i] === ']') {
          i++;
          return list;
        }
        const start = i;
        while (i < text.length && text[i] !== ' ' && text[i] !== ']') i++;
        list.push(text.slice(start, i));
      }
    }
    const start = i;
    // A scalar ends at " key=" , " key {", " key [", "}" or "]".
    for (;;) {
      if (i >= text.length || text[i] === '}' || text[i] === ']') break;
      if (text[i] === ' ' && /^ [A-Za-z0-9_-]+(=| \{| \[)/.test(text.slice(i, i + 64))) break;
      i++;
    }
    return text.slice(start, i);
  };
  return parseValue();
}
