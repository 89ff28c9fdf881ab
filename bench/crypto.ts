/**
 * Crypto costs on this machine: what one IKE_SA_INIT + IKE_AUTH (+ a PFS
 * rekey) spends in key exchange, signatures and key derivation, and what one
 * ESP packet costs in AES-128-GCM (node:crypto vs the native addon).
 * `npm run bench` (or `npx tsx bench/crypto.ts [--quick]`). Writes
 * bench/results/crypto-<timestamp>.json, crypto-latest.json and crypto-latest.md.
 */
import { parseArgs } from 'node:util';
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
import type { AeadContext, AeadImplementation } from '../src/crypto/types.js';
import { PrfId } from '../src/ike/transforms.js';
import { markdownTable, summarize, type BenchRow } from './stats.js';

// node's parseArgs: --quick, and a clear error for anything else
const quick = parseArgs({ options: { quick: { type: 'boolean' } }, strict: true }).values.quick === true;
const REPS = quick ? 3 : 5;
const MIN_MS = quick ? 150 : 400;

/**
 * Operations per second of `op`, measured over at least MIN_MS after a warm-up. `inner` calls of
 * `op` per clock reading, for operations of about a microsecond where reading the clock would
 * show in the result.
 */
function rate(op: () => void, inner = 1): number {
  for (let i = 0; i < 5 * inner; i++) op();
  let n = 0;
  const t0 = process.hrtime.bigint();
  let elapsed = 0;
  do {
    for (let i = 0; i < inner; i++) op();
    n += inner;
    elapsed = Number(process.hrtime.bigint() - t0) / 1e6;
  } while (elapsed < MIN_MS);
  return (n * 1000) / elapsed;
}

function measure(caseName: string, metric: string, unit: string, op: () => void, inner = 1): BenchRow {
  const samples: number[] = [];
  for (let i = 0; i < REPS; i++) samples.push(rate(op, inner));
  const row = summarize(
    caseName,
    metric,
    unit,
    samples.map((s) => Math.round(s * 10) / 10),
  );
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
  rows.push(
    measure(`auth method 14 ${name} sign`, 'ops_per_s', 'op/s', () => signAuth({ method: SignatureAuthMethod.DIGITAL_SIGNATURE, privateKey: priv, octets })),
  );
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

/*
 * ESP packet crypto, AES-128-GCM-16 (RFC 4106): one packet per call, laid out as on the wire
 * (SPI 4 | seq 4 | IV 8 | payload | ICV 16), AAD = the packet's own SPI ‖ seq (no ESN).
 * "in place": sealInPlace/openInPlace on the packet buffer. Open rows restore the sealed packet
 * (one memcpy of the packet) before every call, since opening in place replaces the ciphertext.
 */
const espMaterial = Buffer.alloc(AES_GCM_16_128.keyMaterialLength, 0x42);
const espImpls: AeadImplementation[] = ['node', 'native'];
const ESP_INNER = 64;
function espPacket(ctx: AeadContext, size: number): { packet: Buffer; sealed: Buffer; aad: Buffer } {
  const packet = Buffer.alloc(16 + size + 16, 0x17);
  packet.writeUInt32BE(0xc0ffee01, 0);
  packet.writeUInt32BE(1, 4);
  packet.writeBigUInt64BE(0x1234n, 8);
  const aad = packet.subarray(0, 8);
  ctx.sealInPlace(packet, 8, aad, 16, size);
  const sealed = Buffer.from(packet);
  if (!ctx.openInPlace(packet, 8, aad, 16, size)) throw new Error('bench: ESP packet does not open');
  return { packet, sealed, aad };
}
const implLabel = (impl: AeadImplementation): string => (impl === 'node' ? 'node:crypto' : 'native');
for (const size of [64, 1400]) {
  for (const impl of espImpls) {
    const ctx = AES_GCM_16_128.createContext(espMaterial, { implementation: impl });
    const { packet, sealed, aad } = espPacket(ctx, size);
    rows.push(
      measure(`esp aes128gcm16 seal ${size} B ${implLabel(impl)} in place`, 'ops_per_s', 'pkt/s', () => ctx.sealInPlace(packet, 8, aad, 16, size), ESP_INNER),
    );
    rows.push(
      measure(
        `esp aes128gcm16 open ${size} B ${implLabel(impl)} in place`,
        'ops_per_s',
        'pkt/s',
        () => {
          packet.set(sealed);
          if (!ctx.openInPlace(packet, 8, aad, 16, size)) throw new Error('bench: open failed');
        },
        ESP_INNER,
      ),
    );
    ctx.destroy();
  }
}
for (const impl of espImpls) {
  // the Buffer-returning API IKE uses (SK payloads): one allocation per call
  const ctx = AES_GCM_16_128.createContext(espMaterial, { implementation: impl });
  const iv = Buffer.alloc(8, 1);
  const aad = Buffer.alloc(8, 2);
  const payload = Buffer.alloc(1400, 3);
  rows.push(measure(`esp aes128gcm16 seal() 1400 B ${implLabel(impl)} new Buffer`, 'ops_per_s', 'pkt/s', () => ctx.seal(iv, aad, payload), ESP_INNER));
  ctx.destroy();
}
{
  // a forged packet: the ICV fails; the native path then re-encrypts to restore the ciphertext
  const ctx = AES_GCM_16_128.createContext(espMaterial, { implementation: 'native' });
  const { packet, sealed, aad } = espPacket(ctx, 1400);
  sealed[sealed.length - 1]! ^= 1;
  packet.set(sealed);
  rows.push(
    measure(
      'esp aes128gcm16 open 1400 B native in place, bad ICV',
      'ops_per_s',
      'pkt/s',
      () => {
        if (ctx.openInPlace(packet, 8, aad, 16, 1400)) throw new Error('bench: forged packet opened');
      },
      ESP_INNER,
    ),
  );
  ctx.destroy();
}

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
const md = `# Crypto costs (handshake, ESP AES-GCM)\n\n${result.date}, ${result.machine.model} × ${result.machine.cpus}, Node ${result.machine.node}, load ${result.machine.loadavg.map((l) => l.toFixed(2)).join(' ')}\n\n${markdownTable(rows)}\n`;
writeFileSync(join(outDir, 'crypto-latest.md'), md);
process.stdout.write(md);
