/**
 * Handshake crypto costs on this machine: what one IKE_SA_INIT + IKE_AUTH
 * (+ a PFS rekey) spends in key exchange, signatures and key derivation.
 * `npm run bench` (or `npx tsx bench/crypto.ts [--quick]`). Writes
 * bench/results/crypto-<timestamp>.json, crypto-latest.json and crypto-latest.md.
 */
import { createPrivateKey, generateKeyPairSync, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { keyExchangeGroup } from '../src/crypto/ke/index.js';
import { signAuth, verifyAuth, SignatureAuthMethod } from '../src/crypto/signature.js';
import { prfFor, prfPlus } from '../src/crypto/prf.js';
import { deriveIkeSaKeys, deriveSkeyseed } from '../src/crypto/ikev2-keys.js';
import { AES_GCM_16_128 } from '../src/crypto/aead.js';
import { PrfId } from '../src/ike/transforms.js';
import { markdownTable, summarize, type BenchRow } from './stats.js';

const quick = process.argv.includes('--quick');
const REPS = quick ? 3 : 5;
const MIN_MS = quick ? 150 : 400;

/** Operations per second of `op`, measured over at least MIN_MS after a warm-up. */
function rate(op: () => void): number {
  for (let i = 0; i < 5; i++) op();
  let n = 0;
  const t0 = process.hrtime.bigint();
  let elapsed = 0;
  do {
    op();
    n++;
    elapsed = Number(process.hrtime.bigint() - t0) / 1e6;
  } while (elapsed < MIN_MS);
  return (n * 1000) / elapsed;
}

function measure(caseName: string, metric: string, unit: string, op: () => void): BenchRow {
  const samples: number[] = [];
  for (let i = 0; i < REPS; i++) samples.push(rate(op));
  const row = summarize(caseName, metric, unit, samples.map((s) => Math.round(s * 10) / 10));
  process.stderr.write(`  ${caseName.padEnd(44)} ${row.median.toFixed(1).padStart(10)} ${unit}\n`);
  return row;
}

const here = fileURLToPath(new URL('.', import.meta.url));
/** Works from bench/ (tsx) and from dist/bench/ (compiled). */
const repoRoot = join(here, '..');
const pki = join(repoRoot, 'test/fixtures/strongswan-5.9.8-ecp384bp-demo/pki');

const rows: BenchRow[] = [];
process.stderr.write(`tunsec crypto bench (${quick ? 'quick' : 'full'}: ${REPS} reps × ≥${MIN_MS} ms)\n`);

for (const id of [29, 20, 19, 31, 14]) {
  const group = keyExchangeGroup(id)!;
  const peer = group.generate().publicValue;
  rows.push(measure(`ke ${group.name} keygen+secret`, 'ops_per_s', 'op/s', () => group.generate().computeSharedSecret(peer)));
}

const octets = Buffer.alloc(600, 7); // about the size of the AUTH octets (IKE_SA_INIT message + nonce + prf)
const rsa2048 = createPrivateKey(readFileSync(join(pki, 'moon/key.pem')));
const rsa2048Pub = new X509Certificate(readFileSync(join(pki, 'moon/cert.pem'))).publicKey;
const keys: Array<[string, KeyObject, KeyObject]> = [['rsa-2048', rsa2048, rsa2048Pub]];
const rsa3072 = generateKeyPairSync('rsa', { modulusLength: 3072 });
keys.push(['rsa-3072', rsa3072.privateKey, rsa3072.publicKey]);
const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
keys.push(['ecdsa-p384', p384.privateKey, p384.publicKey]);
for (const [name, priv, pub] of keys) {
  const signed = signAuth({ method: SignatureAuthMethod.DIGITAL_SIGNATURE, privateKey: priv, octets });
  rows.push(measure(`auth method 14 ${name} sign`, 'ops_per_s', 'op/s', () => signAuth({ method: SignatureAuthMethod.DIGITAL_SIGNATURE, privateKey: priv, octets })));
  rows.push(
    measure(`auth method 14 ${name} verify`, 'ops_per_s', 'op/s', () =>
      verifyAuth({ method: SignatureAuthMethod.DIGITAL_SIGNATURE, publicKey: pub, octets, authData: signed.authData }),
    ),
  );
}

const prf = prfFor(PrfId.HMAC_SHA2_384)!;
const ni = Buffer.alloc(32, 1);
const nr = Buffer.alloc(32, 2);
const gir = Buffer.alloc(48, 3);
const spi = Buffer.alloc(8, 4);
rows.push(
  measure('kdf SKEYSEED + SK_* (prfsha384, aes128gcm16)', 'ops_per_s', 'op/s', () => {
    const skeyseed = deriveSkeyseed(prf, ni, nr, gir);
    deriveIkeSaKeys({ prf, skeyseed, Ni: ni, Nr: nr, spiI: spi, spiR: spi, encrKeyMaterialLength: AES_GCM_16_128.keyMaterialLength, integKeyLength: 0 });
  }),
);
rows.push(measure('prf+ 1 kB (prfsha384)', 'ops_per_s', 'op/s', () => prfPlus(prf, gir, ni, 1024)));

const result = {
  bench: 'crypto',
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, model: cpus()[0]?.model ?? 'unknown', node: process.version, loadavg: loadavg() },
  reps: REPS,
  rows,
};
const outDir = join(repoRoot, 'bench/results');
mkdirSync(outDir, { recursive: true });
const stamp = result.date.replace(/[:.]/g, '-');
const json = JSON.stringify(result, null, 2) + '\n';
writeFileSync(join(outDir, `crypto-${stamp}.json`), json);
writeFileSync(join(outDir, 'crypto-latest.json'), json);
const md = `# Handshake crypto costs\n\n${result.date}, ${result.machine.model} × ${result.machine.cpus}, Node ${result.machine.node}, load ${result.machine.loadavg.map((l) => l.toFixed(2)).join(' ')}\n\n${markdownTable(rows)}\n`;
writeFileSync(join(outDir, 'crypto-latest.md'), md);
process.stdout.write(md);
