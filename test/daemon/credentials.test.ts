import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfigOrThrow } from '../../src/config/index.js';
import { FRAGMENT_SIZE, resolveCredentials } from '../../src/daemon/credentials.js';
import { formatProposal } from '../../src/ike/proposal/index.js';
import { identityToString } from '../../src/pki/index.js';
import { issueCertificate, issueIntermediate } from '../../src/pki/issue.js';
import { tempDir, writePki, type PkiFiles } from './support.js';

describe('resolving credentials for connections', () => {
  let dir: ReturnType<typeof tempDir>;
  let pki: PkiFiles;
  let moon: ReturnType<PkiFiles['host']>;

  beforeEach(() => {
    dir = tempDir('tunsec-creds-');
    pki = writePki(dir.path);
    moon = pki.host('moon.tunsec.test', '10.77.0.1');
  });
  afterEach(() => dir.remove());

  function config(yaml: string) {
    return loadConfigOrThrow({ text: yaml, path: 'test.yaml', baseDir: dir.path });
  }

  const connection = (extra = '', local = '', secrets = 'secrets:\n  private-moon:\n    file: private/moon.tunsec.testKey.pem\n') => `
authorities:
  cacerts: [x509ca]
${secrets}
connections:
  dc1:
    local_addrs: 10.77.0.1
    remote_addrs: 10.77.0.2
    remote_port: 4501
    proposals: aes128gcm16-prfsha384-ecp384bp!
${extra}
    local:
      certs: [x509/moon.tunsec.test.pem]
${local}
    remote:
      id: sun.tunsec.test
    children:
      host:
        esp_proposals: aes256gcm16-ecp384bp!
        mode: tunnel
        local_ts: 10.1.0.0/24
        remote_ts: 10.2.0.0/24[tcp/443]
        rekey_time: 30m
        life_bytes: 1500m
        rekey_bytes: 1g
        replay_window: 128
        policy: private-or-clear
        start_action: start
`;

  it('finds the key that matches the certificate among all secrets and builds the peer configuration', () => {
    const stray = pki.strayKey('other');
    const yaml = connection(
      '    fragmentation: accept\n    encap: yes\n    send_cert: always\n    send_certreq: no\n',
      '',
      `secrets:\n  private-other:\n    file: ${stray}\n  ecdsa-moon:\n    file: private/moon.tunsec.testKey.pem\n`,
    );
    const r = resolveCredentials(config(yaml));
    expect(r.errors).toEqual([]);
    const [c] = r.connections;
    const peer = c!.entry.config;
    expect(peer.privateKey!.equals(moon.issued.privateKey!)).toBe(true);
    expect(peer.certificate!.fingerprint).toBe(moon.issued.certificate.fingerprint);
    // strongSwan's default local identity: the certificate's subject DN.
    expect(peer.localId.type).toBe('dn');
    expect(identityToString(peer.localId)).toBe('C=CH, O=tunsec test, CN=moon.tunsec.test');
    expect(peer.remoteId).toEqual({ type: 'fqdn', value: 'sun.tunsec.test' });
    expect(peer.trust.trustAnchors.map((a) => a.fingerprint)).toEqual([pki.ca.certificate.fingerprint]);
    expect(peer.ikeProposals.map(formatProposal)).toEqual(['aes128gcm16-prfsha384-ecp384bp']);
    expect(peer).toMatchObject({
      fragmentation: true,
      fragmentSize: FRAGMENT_SIZE,
      forceEncap: true,
      sendCert: 'always',
      sendCertReq: false,
      strictCrl: false,
    });
    expect(c!.entry).toMatchObject({ localAddrs: ['10.77.0.1'], remoteAddrs: ['10.77.0.2'], remotePort: 4501 });
    expect(c!.startChildren).toEqual(['host']);
    const child = peer.children[0]!;
    expect(child).toMatchObject({ name: 'host', mode: 'tunnel', replayWindow: 128, policy: 'private-or-clear' });
    expect(child.espProposals.map(formatProposal)).toEqual(['aes256gcm16-ecp384bp-noesn']);
    expect(child.localTs.map((t) => t.text)).toEqual(['10.1.0.0/24']);
    expect(child.remoteTs[0]).toMatchObject({ protocol: 6, startPort: 443, endPort: 443 });
    // soft = rekey, hard = life; life_time derived as rekey_time + 10%.
    expect(child.lifetimes).toEqual({ softSeconds: 1800, hardSeconds: 1980, softBytes: 2 ** 30, hardBytes: 1500 * 2 ** 20, softPackets: 0, hardPackets: 0 });
  });

  it('an intermediate CA listed only under authorities.cacerts that chains our Ed25519 certificate is sent with it; the root is not', () => {
    const int = issueIntermediate(pki.ca, { subject: 'C=CH, O=tunsec test, CN=tunsec Intermediate CA', key: 'ed25519' });
    writeFileSync(join(dir.path, 'x509ca', 'intermediate.pem'), int.certificatePem);
    const leaf = issueCertificate(int, { subject: 'C=CH, O=tunsec test, CN=moon.tunsec.test', key: 'ed25519', subjectAltNames: { dns: ['moon.tunsec.test'] } });
    writeFileSync(join(dir.path, 'x509', 'moon.tunsec.test.pem'), leaf.certificatePem);
    writeFileSync(join(dir.path, 'private', 'moon.tunsec.testKey.pem'), leaf.privateKeyPem!, { mode: 0o600 });
    const r = resolveCredentials(config(connection()));
    expect(r.errors).toEqual([]);
    const peer = r.connections[0]!.entry.config;
    expect(peer.privateKey!.asymmetricKeyType).toBe('ed25519');
    expect(peer.certificate!.fingerprint).toBe(leaf.certificate.fingerprint);
    expect(peer.intermediates.map((c) => c.subject.text)).toEqual(['C=CH, O=tunsec test, CN=tunsec Intermediate CA']);
  });

  it('without intermediates our certificate issued by the root goes alone', () => {
    const r = resolveCredentials(config(connection()));
    expect(r.connections[0]!.entry.config.intermediates).toEqual([]);
  });

  it('maps fragmentation: no to no fragmentation, and an explicit local.id that the certificate carries', () => {
    const r = resolveCredentials(config(connection('    fragmentation: no\n', '      id: moon.tunsec.test\n')));
    expect(r.errors).toEqual([]);
    expect(r.connections[0]!.entry.config.fragmentation).toBe(false);
    expect(r.connections[0]!.entry.config.localId).toEqual({ type: 'fqdn', value: 'moon.tunsec.test' });
  });

  it('without any secret, names the connection, the certificate file and that keys are not guessed', () => {
    const r = resolveCredentials(config(connection('', '', '')));
    expect(r.connections).toEqual([]);
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]).toMatch(
      /^connection dc1: local\.certs: .*moon\.tunsec\.test\.pem: no private key for certificate 'C=CH, O=tunsec test, CN=moon\.tunsec\.test'/,
    );
    expect(r.errors[0]).toContain('does not look for key files next to certificates');
  });

  it('with only a key that belongs to another certificate, says that no secret matches and which were tried', () => {
    const stray = pki.strayKey('wrong');
    const r = resolveCredentials(config(connection('', '', `secrets:\n  private-wrong:\n    file: ${stray}\n`)));
    expect(r.connections).toEqual([]);
    expect(r.errors).toEqual([
      expect.stringMatching(
        /^connection dc1: local\.certs: .*moon\.tunsec\.test\.pem: no private key in secrets matches certificate '.*CN=moon\.tunsec\.test' \(tried secrets\.private-wrong .*wrongKey\.pem\)$/,
      ),
    ]);
  });

  it('reports a certificate file without a certificate with the connection, the key and the file', () => {
    const file = join(dir.path, 'x509', 'moon.tunsec.test.pem');
    writeFileSync(file, moon.issued.privateKeyPem!); // a PEM file, but no CERTIFICATE block in it
    const r = resolveCredentials(config(connection()));
    expect(r.errors).toEqual([`connection dc1: local.certs: ${file}: no CERTIFICATE block`]);
  });

  it('reports every problem at once: missing CA file, missing secret file, identity not in the certificate', () => {
    const yaml = connection('', '      id: mars.tunsec.test\n', 'secrets:\n  private-gone:\n    file: private/gone.pem\n').replace(
      'cacerts: [x509ca]',
      'cacerts: [x509ca/nothere.pem]',
    );
    const r = resolveCredentials(config(yaml));
    expect(r.errors).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^secrets\.private-gone: .*gone\.pem: cannot read private key \(no such file\)$/),
        expect.stringMatching(/^authorities\.cacerts: .*nothere\.pem: no such file or directory$/),
        expect.stringMatching(/^connection dc1: local\.id: 'mars\.tunsec\.test' is not vouched for by .*moon\.tunsec\.test\.pem: /),
        expect.stringMatching(/^connection dc1: local\.certs: .*no private key/),
      ]),
    );
  });

  it('returns a warning for a private key file that group or others can read', () => {
    chmodSync(moon.key, 0o644);
    const r = resolveCredentials(config(connection()));
    expect(r.errors).toEqual([]);
    expect(r.warnings).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^secrets\.private-moon: .*moon\.tunsec\.testKey\.pem: private key file is accessible by group and others \(mode 0644\)/),
      ]),
    );
  });

  it('refuses a secret section whose type names another key algorithm', () => {
    const yaml = connection('', '', 'secrets:\n  rsa-moon:\n    file: private/moon.tunsec.testKey.pem\n');
    const r = resolveCredentials(config(yaml));
    expect(r.errors).toEqual(
      expect.arrayContaining([expect.stringMatching(/^secrets\.rsa-moon: .*: holds an ECDSA key, but the section is named rsa<suffix>/)]),
    );
  });

  it('trusts pinned peer certificates (remote.certs) as they are', () => {
    const sun = pki.host('sun.tunsec.test', '10.77.0.2');
    const yaml = connection()
      .replace('  cacerts: [x509ca]\n', '')
      .replace('      id: sun.tunsec.test\n', `      id: sun.tunsec.test\n      certs: [${sun.cert}]\n`);
    const r = resolveCredentials(config(yaml));
    expect(r.errors).toEqual([]);
    expect(r.connections[0]!.entry.config.trust.trustAnchors.map((a) => a.fingerprint)).toEqual([sun.issued.certificate.fingerprint]);
  });
});
