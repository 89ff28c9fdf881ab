/**
 * A TCP transfer of an exact size between two network namespaces, checked end to end.
 *
 * iperf3's receiver tally (`sum_received`) is taken when the control channel says the test
 * ended, so with `-n` it can miss whatever was still in flight or in socket buffers (seen:
 * 0.93 MB of 4 MB on a busy machine). Here the receiver reads until the sender closes the
 * connection and reports the byte count and a SHA-256 of the stream, so "every byte arrived,
 * intact and in order" is what the test asserts, whatever the machine's load.
 */
import { spawn } from 'node:child_process';
import type { NetnsPair, NetnsSide } from './netns.js';
import { stopPid } from './proc.js';

export interface TcpTransferResult {
  /** Bytes the sender wrote before closing its side. */
  sent: number;
  /** Bytes the receiver read before it saw the sender's FIN. */
  received: number;
  /** Whether the receiver's SHA-256 of the stream equals the sender's. */
  intact: boolean;
}

/** Receiver: listens on argv[1]:argv[2], accepts one connection, prints its byte count and digest. */
const RECEIVER = `
const net = require('node:net'), crypto = require('node:crypto');
const [host, port] = process.argv.slice(1);
const server = net.createServer((c) => {
  server.close();
  const h = crypto.createHash('sha256'); let n = 0;
  c.on('data', (d) => { n += d.length; h.update(d); });
  c.on('end', () => { process.stdout.write(JSON.stringify({ received: n, digest: h.digest('hex') }) + '\\n'); c.end(); });
  c.on('error', (e) => { process.stderr.write(String(e) + '\\n'); process.exit(2); });
});
server.listen(Number(port), host, () => process.stdout.write('listening\\n'));
`;

/** Sender: connects to argv[1]:argv[2] (from argv[4] if given) and writes argv[3] pseudo-random bytes. */
const SENDER = `
const net = require('node:net'), crypto = require('node:crypto');
const [host, port, total, bind] = process.argv.slice(1);
const chunk = crypto.randomBytes(65536), h = crypto.createHash('sha256');
const c = net.connect({ host, port: Number(port), ...(bind ? { localAddress: bind } : {}) }, () => {
  let left = Number(total);
  const pump = () => {
    while (left > 0) {
      const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
      left -= piece.length; h.update(piece);
      if (!c.write(piece)) return void c.once('drain', pump);
    }
    c.end();
  };
  pump();
});
c.resume();
c.on('close', () => process.stdout.write(JSON.stringify({ sent: Number(total), digest: h.digest('hex') }) + '\\n'));
c.on('error', (e) => { process.stderr.write(String(e) + '\\n'); process.exit(2); });
`;

/**
 * Send `bytes` from `from` to `target` (an address of `to`) over TCP and report what arrived.
 * `bind` picks the sender's source address (tunnel mode: the inner address).
 */
export async function tcpTransfer(
  pair: NetnsPair,
  from: NetnsSide,
  to: NetnsSide,
  target: string,
  opts: { bytes: number; bind?: string; port?: number; timeoutMs?: number },
): Promise<TcpTransferResult> {
  const port = String(opts.port ?? 5202);
  const receiver = spawn('ip', ['netns', 'exec', to.ns, process.execPath, '-e', RECEIVER, target, port], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  receiver.stdout.on('data', (d: Buffer) => (out += d.toString()));
  receiver.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((resolve) => receiver.once('close', () => resolve()));
  try {
    await waitUntil(
      () => out.includes('listening\n'),
      exited,
      10_000,
      () => `receiver did not listen on ${target}:${port}: ${err}`,
    );
    const sender = await pair.exec(
      from,
      process.execPath,
      ['-e', SENDER, target, port, String(opts.bytes), ...(opts.bind ? [opts.bind] : [])],
      opts.timeoutMs ?? 60_000,
    );
    if (sender.code !== 0) throw new Error(`sender failed (exit ${sender.code}): ${sender.stderr}`);
    const sent = JSON.parse(sender.stdout.trim()) as { sent: number; digest: string };
    await waitUntil(
      () => out.split('\n').length > 2,
      exited,
      10_000,
      () => `receiver reported nothing: ${err}`,
    );
    const got = JSON.parse(out.split('\n')[1]!) as { received: number; digest: string };
    return { sent: sent.sent, received: got.received, intact: got.digest === sent.digest };
  } finally {
    if (receiver.pid !== undefined && receiver.exitCode === null) await stopPid(receiver.pid);
  }
}

async function waitUntil(done: () => boolean, exited: Promise<void>, timeoutMs: number, why: () => string): Promise<void> {
  let gone = false;
  void exited.then(() => (gone = true));
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (gone && !done()) throw new Error(why());
    if (Date.now() > deadline) throw new Error(why());
    await new Promise((r) => setTimeout(r, 20));
  }
}
