/**
 * `node --import tsx fuzz/seed.ts [TARGET…]`: (re)writes fuzz/corpus/<target>/
 * from the strongSwan fixture (test/fixtures/strongswan-5.9.8-ecp384bp-demo)
 * — each target's seeds() — plus hand-made seeds where the fixture has
 * nothing to offer (CRLs signed with the fixture CA's key, configurations,
 * control requests). The corpus is committed; run this after changing a
 * target's input format.
 */
import { createPrivateKey } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodePem } from '../src/pki/pem.js';
import { issueCrl, createCa, type Issued } from '../src/pki/issue.js';
import { parseCertificate } from '../src/pki/index.js';
import { corpusDir, FUZZ_DIR } from './lib/corpus.js';
import { certificatesDer, demoFile } from './lib/fixtures.js';
import { loadTarget, TARGET_NAMES } from './targets/index.js';

const tagged = (mode: number, body: Uint8Array | string): Buffer => Buffer.concat([Buffer.from([mode]), Buffer.from(body)]);

function pkiSeeds(): Buffer[] {
  const certs = certificatesDer();
  const out: Buffer[] = [];
  for (const c of certs) out.push(tagged(0, c.der));
  out.push(tagged(2, certs.map((c) => encodePem('CERTIFICATE', c.der)).join('')));
  const ca: Issued = {
    certificate: parseCertificate(certs[0]!.der, 'ca'),
    privateKey: createPrivateKey(readFileSync(demoFile('pki/ca/caKey.pem'))),
    certificatePem: encodePem('CERTIFICATE', certs[0]!.der),
  };
  const moon = parseCertificate(certs[1]!.der, 'moon');
  const revoking = issueCrl(ca, {
    revoked: [
      { serialNumber: moon.serialNumber, reason: 'keyCompromise' },
      { serialNumber: 77, reason: 'superseded' },
    ],
    crlNumber: 5,
  });
  const empty = issueCrl(ca, { nextUpdate: null });
  const other = issueCrl(createCa({ subject: 'C=CH, O=fuzz, CN=other CA', key: 'p256' }), { revoked: [{ serialNumber: 1 }] });
  out.push(tagged(1, revoking.der), tagged(1, empty.der), tagged(1, other.der), tagged(2, revoking.pem + empty.pem));
  out.push(tagged(3, moon.subject.der), tagged(3, 'C=CH, O=IKEv2 Interop Test, CN=moon'));
  return out;
}

function configSeeds(): Buffer[] {
  const example = readFileSync(join(FUZZ_DIR, '..', 'examples', 'tunsec.yaml'));
  const key = (b: string): string => `"0x${b.repeat(16)}c0ffee01"`;
  const texts = [
    `connections:
  moon-sun:
    local_addrs: 10.77.0.1
    remote_addrs: 10.77.0.2
    proposals: aes128gcm16-prfsha384-ecp384bp!
    encap: yes
    fragmentation: yes
    local: { certs: [moon.pem], id: moon.ikev2.test }
    remote: { id: "C=CH, O=IKEv2 Interop Test, CN=sun" }
    children:
      net:
        mode: tunnel
        local_ts: 10.1.0.0/16, fd77:1::/64
        remote_ts: [10.2.0.0/16, "10.3.0.1-10.3.0.9[udp/53]"]
        esp_proposals: [aes256gcm16-esn, default]
        life_time: 2h
        rekey_bytes: 1G
        rekey_packets: 10k
        replay_window: 128
        start_action: start
`,
    `daemon:
  datapath: userspace
  tun_mtu: 1400
manual:
  sas:
    to-sun:
      local_addr: 10.77.0.1
      remote_addr: 10.77.0.2
      spi_in: 0x2001
      spi_out: 0x1001
      mode: tunnel
      encap: yes
      esp_proposal: aes128gcm16-esn
      key_in: ${key('5b')}
      key_out: ${key('4a')}
`,
    `defaults: &d
  local_addrs: fd77::1
  remote_addrs: fd77::2
connections:
  a:
    <<: *d
    local: { id: "@moon" }
    remote: { id: "%any" }
  b: { <<: *d, version: 2 }
`,
  ];
  return [example, ...texts.map((t) => Buffer.from(t))];
}

function controlSeeds(): Buffer[] {
  const settings = { local_addr: '10.9.0.1', remote_addr: '10.9.0.2', spi_in: '0x2001', spi_out: '0x1001', key_in: 'aa'.repeat(20), key_out: 'bb'.repeat(20) };
  const requests: unknown[] = [
    { id: 1, command: 'status', args: {} },
    { id: 2, command: 'list-sas', args: { name: 'moon-sun' } },
    { id: 3, command: 'list-conns' },
    { id: 'x', command: 'check', args: { name: 'a' } },
    { id: 5, command: 'up', args: { name: 'moon-sun', timeout: 5 } },
    { id: 6, command: 'down', args: { name: 'moon-sun', timeout: 0 } },
    { id: 7, command: 'reload' },
    { id: 8, command: 'global-status' },
    { id: 9, command: 'global-down', args: { timeout: 3601 } },
    { id: 10, command: 'global-up' },
    { id: 11, command: 'sa-add', args: { name: 'm', settings } },
    {
      id: 12,
      command: 'sa-add',
      args: {
        name: 'tun',
        settings: {
          ...settings,
          spi_in: 4097,
          spi_out: 4098,
          mode: 'tunnel',
          encap: 'yes',
          esp_proposal: 'aes256gcm16-esn',
          key_in: 'cc'.repeat(36),
          key_out: 'dd'.repeat(36),
        },
      },
    },
    { id: 13, command: 'sa-list' },
    { id: 14, command: 'sa-del', args: { name: 'm' } },
    { id: null, command: 'nope', args: [] },
  ];
  return [...requests.map((r) => Buffer.from(JSON.stringify(r))), Buffer.from('{"id":1,"command":"status"'), Buffer.from('  \t ')];
}

const EXTRA: Record<string, () => Buffer[]> = { pki: pkiSeeds, config: configSeeds, control: controlSeeds };

const wanted = process.argv.slice(2);
for (const name of wanted.length > 0 ? wanted : TARGET_NAMES) {
  const target = await loadTarget(name);
  await target.setup?.();
  const inputs = [...(target.seeds?.() ?? []), ...(EXTRA[name]?.() ?? [])];
  const dir = corpusDir(name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  inputs.forEach((b, i) => writeFileSync(join(dir, `seed-${String(i).padStart(3, '0')}`), b));
  const size = readdirSync(dir).reduce((n, f) => n + readFileSync(join(dir, f)).length, 0);
  console.log(`${name}: ${inputs.length} seeds, ${size} octets`);
}
