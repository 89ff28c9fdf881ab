/**
 * Runs a real `tunsec daemon` (the CLI, from source through tsx) inside a
 * network namespace, collecting its JSON log lines; stopped by PID.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { issueCertificate, type Issued } from '../../src/pki/issue.js';
import type { NetnsPair, NetnsSide } from '../support/netns.js';
import { pidFromFile, run, waitFor, type RunResult } from '../support/proc.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));

/** node arguments running the CLI from source. */
export const SOURCE_CLI = ['--import', 'tsx', join(repo, 'src/cli/main.ts')];
/** node arguments running the built CLI (`npm run build` first). */
export const DIST_CLI = [join(repo, 'dist/src/cli/main.js')];

export interface LogLine {
  level?: string;
  msg?: string;
  event?: string;
  [key: string]: unknown;
}

/** `daemon:` lines for quick failure detection: retransmit after 0.5 s, ×1.5, 2 times (a silent peer counts as dead ~2.4 s after a request). */
export const FAST_RETRANSMIT = ['retransmit_timeout: 0.5', 'retransmit_base: 1.5', 'retransmit_tries: 2'];

export class TunsecDaemon {
  readonly dir = mkdtempSync('/tmp/tsd-');
  readonly lines: LogLine[] = [];
  /** A command the daemon is run under, e.g. `setpriv --bounding-set -net_raw` (default none). */
  wrapper: string[] = [];
  /** How node runs the CLI: the TypeScript source through tsx (default), or `DIST_CLI` (the build: less CPU and memory per daemon, for fleets). */
  entry: string[] = SOURCE_CLI;
  private child?: ChildProcess;
  private exit?: Promise<number | null>;

  constructor(
    private readonly netns: string,
    /** The YAML configuration; `${DIR}` is replaced with this daemon's temp dir. */
    private readonly yaml: string,
    readonly files: Record<string, string> = {},
  ) {}

  async start(): Promise<void> {
    for (const [name, content] of Object.entries(this.files)) writeFileSync(join(this.dir, name), content, { mode: 0o600 });
    const config = join(this.dir, 'tunsec.yaml');
    writeFileSync(config, this.yaml.replaceAll('${DIR}', this.dir));
    const child = spawn('ip', ['netns', 'exec', this.netns, ...this.wrapper, process.execPath, ...this.entry, 'daemon', '-c', config], {
      cwd: repo,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.exit = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
    let buf = '';
    const onData = (chunk: Buffer): void => {
      buf += chunk.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          this.lines.push(JSON.parse(line) as LogLine);
        } catch {
          this.lines.push({ msg: line });
        }
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
  }

  // 45 s: each daemon compiles src/ through tsx as it starts; with three starting at once on a loaded
  // 2-core machine, daemon_started was seen to take over 20 s.
  async event(name: string, timeoutMs = 45_000): Promise<LogLine> {
    try {
      return await waitFor(`tunsec event ${name}`, () => this.lines.find((l) => l.event === name), timeoutMs);
    } catch (err) {
      throw new Error(`${(err as Error).message}; tunsec log:\n${this.text()}`);
    }
  }

  /** The daemon's PID (from its pid file), while it runs. */
  pid(): number | undefined {
    return this.child && this.child.exitCode === null && this.child.signalCode === null ? pidFromFile(join(this.dir, 'tunsec.pid')) : undefined;
  }

  text(): string {
    return this.lines.map((l) => (l.event ? JSON.stringify(l) : `${l.level ?? ''} ${l.msg ?? ''}`)).join('\n');
  }

  /** Run `tunsec <args>` against this daemon's control socket, inside its namespace. */
  cli(...args: string[]): Promise<RunResult> {
    return run(
      'ip',
      ['netns', 'exec', this.netns, process.execPath, '--import', 'tsx', join(repo, 'src/cli/main.ts'), ...args, '--socket', join(this.dir, 'tunsec.sock')],
      { timeoutMs: 60_000 },
    );
  }

  /** SIGKILL: the daemon dies without a word (no DELETE), as in a crash or power loss. Its directory stays for a restart. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGKILL');
    await this.exit;
  }

  /** SIGTERM (graceful: DELETEs sent), then SIGKILL after a grace period. Resolves with the exit code. */
  async stop(graceMs = 8000): Promise<number | null> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) {
      rmSync(this.dir, { recursive: true, force: true });
      return child?.exitCode ?? null;
    }
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    const code = await this.exit!;
    clearTimeout(timer);
    rmSync(this.dir, { recursive: true, force: true });
    return code;
  }
}

export interface TunsecHostConfig {
  /** Connection and CHILD_SA name. */
  name: string;
  local: string;
  remote: string;
  localId: string;
  remoteId: string;
  mode: 'transport' | 'tunnel';
  startAction: 'start' | 'trap' | 'none';
  /** Failure mode of the child's policy (default private). */
  policy?: 'private' | 'private-or-clear';
  /** The child's esp_proposals (default the mission's strict `aes128gcm16-ecp384bp!`). */
  espProposals?: string;
  /** Extra YAML lines for the child section (eight-space indented), e.g. `life_packets: 5`. */
  childExtra?: string[];
  /** Extra YAML lines for the connection section (four-space indented), e.g. `rekey_time: 5s`. */
  connExtra?: string[];
  /** More children, as YAML lines relative to `children:` (six-space indented), e.g. shunts. */
  extraChildren?: string[];
  encap?: boolean;
  localTs?: string;
  remoteTs?: string;
  /** Extra YAML lines for the daemon section (two-space indented). */
  daemonExtra?: string[];
}

/**
 * The head every test configuration shares: pid file and control socket in `${DIR}`, the given
 * `daemon:` lines, and the credentials of `credentialFiles` (CA, key); `connections:` follows.
 */
export function daemonAndCredentials(daemonLines: readonly string[]): string[] {
  return [
    'daemon:',
    '  pid_file: ${DIR}/tunsec.pid',
    '  control_socket: ${DIR}/tunsec.sock',
    ...daemonLines.map((l) => `  ${l}`),
    'authorities:',
    '  cacerts: [${DIR}/ca.pem]',
    'secrets:',
    '  private-key:',
    '    file: ${DIR}/key.pem',
  ];
}

/**
 * A one-connection tunsec configuration with the mission's strict proposals.
 * Credentials are `${DIR}/ca.pem`, `${DIR}/cert.pem`, `${DIR}/key.pem` (see `credentialFiles`).
 */
export function tunsecYaml(o: TunsecHostConfig): string {
  return [
    ...daemonAndCredentials(o.daemonExtra ?? []),
    'connections:',
    `  ${o.name}:`,
    `    local_addrs: "${o.local}"`,
    `    remote_addrs: "${o.remote}"`,
    '    proposals: aes128gcm16-prfsha384-ecp384bp!',
    `    encap: ${o.encap ? 'yes' : 'no'}`,
    ...(o.connExtra ?? []).map((l) => `    ${l}`),
    '    local:',
    '      certs: [${DIR}/cert.pem]',
    `      id: ${o.localId}`,
    '    remote:',
    `      id: ${o.remoteId}`,
    '    children:',
    `      ${o.name}:`,
    `        mode: ${o.mode}`,
    `        local_ts: ${o.localTs ?? 'dynamic'}`,
    `        remote_ts: ${o.remoteTs ?? 'dynamic'}`,
    `        esp_proposals: ${o.espProposals ?? 'aes128gcm16-ecp384bp!'}`,
    `        start_action: ${o.startAction}`,
    ...(o.policy ? [`        policy: ${o.policy}`] : []),
    ...(o.childExtra ?? []).map((l) => `        ${l}`),
    ...(o.extraChildren ?? []).map((l) => `      ${l}`),
    '',
  ].join('\n');
}

/** The files `tunsecYaml` refers to. */
export function credentialFiles(caPem: string, issued: { certificatePem: string; privateKeyPem?: string }): Record<string, string> {
  return { 'ca.pem': caPem, 'cert.pem': issued.certificatePem, 'key.pem': issued.privateKeyPem! };
}

export type PeerName = 'moon' | 'sun';

/** One certificate per side of a NetnsPair (moon = a, sun = b), with `<name>.tunsec.test` and the side's addresses as SANs. */
export function peerCertificates(ca: Issued, pair: NetnsPair, organization: string): Record<PeerName, Issued> {
  const issue = (name: PeerName, side: NetnsSide): Issued =>
    issueCertificate(ca, {
      subject: `C=CH, O=${organization}, CN=${name}`,
      key: 'p384',
      subjectAltNames: { dns: [`${name}.tunsec.test`], ip: [side.ip4, side.ip6] },
    });
  return { moon: issue('moon', pair.a), sun: issue('sun', pair.b) };
}

/**
 * A tunsec daemon for one side of a NetnsPair (moon = a, sun = b) talking to
 * the other side over `family`, identities `<name>.tunsec.test`.
 */
export function peerDaemon(
  pair: NetnsPair,
  ca: Issued,
  certs: Record<PeerName, Issued>,
  name: PeerName,
  o: Omit<TunsecHostConfig, 'local' | 'remote' | 'localId' | 'remoteId'> & { family?: 'ip4' | 'ip6' },
): TunsecDaemon {
  const [me, other, peer] = name === 'moon' ? [pair.a, pair.b, 'sun'] : [pair.b, pair.a, 'moon'];
  const family = o.family ?? 'ip4';
  return new TunsecDaemon(
    me.ns,
    tunsecYaml({ ...o, local: me[family], remote: other[family], localId: `${name}.tunsec.test`, remoteId: `${peer}.tunsec.test` }),
    credentialFiles(ca.certificatePem, certs[name]),
  );
}

/** Start the responder, then the initiator (start_action start), and wait until both have the CHILD_SA. */
export async function startResponderThenInitiator(responder: TunsecDaemon, initiator: TunsecDaemon): Promise<void> {
  await responder.start();
  await responder.event('daemon_started');
  await initiator.start();
  await initiator.event('child_established');
  await responder.event('child_established');
}
