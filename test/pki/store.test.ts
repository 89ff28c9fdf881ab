/** The trust store (src/pki/store.ts): loading, lookups, CERTREQ. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { spkiSha1 } from '../../src/pki/certificate.js';
import { issueCrl } from '../../src/pki/issue.js';
import { TrustStore, certReqMatchesChain } from '../../src/pki/store.js';
import { buildChain } from '../../src/pki/validate.js';
import { endEntity, intermediate, root, tempDir } from './helpers.js';

const tmp = tempDir();
afterAll(tmp.cleanup);

const rootA = root('C=CH, O=tunsec test, CN=Root A');
const rootB = root('C=CH, O=tunsec test, CN=Root B', { key: 'rsa2048' });
const int = intermediate(rootA);
const sun = endEntity(int);

describe('loading', () => {
  it('a cacerts directory loads every certificate file, PEM or DER, and reports unreadable ones as warnings', () => {
    const dir = join(tmp.dir, 'cacerts');
    mkdirSync(dir);
    writeFileSync(join(dir, 'a.pem'), rootA.certificatePem);
    writeFileSync(join(dir, 'b.der'), rootB.certificate.der);
    writeFileSync(join(dir, 'notes.txt'), 'not a certificate');
    writeFileSync(join(dir, '.hidden.pem'), 'ignored');
    mkdirSync(join(dir, 'subdir'));
    const store = new TrustStore();
    const report = store.loadTrustAnchors(dir);
    expect(report.loaded.map((c) => c.subject.text)).toEqual(['C=CH, O=tunsec test, CN=Root A', 'C=CH, O=tunsec test, CN=Root B']);
    expect(report.warnings).toEqual([`${join(dir, 'notes.txt')}: not a valid X.509 certificate (Certificate: expected tag 0x30, found 0x6e); skipped`]);
    expect(store.trustAnchors).toHaveLength(2);
  });

  it('a single CA bundle file loads all its certificates; a missing path is an error', () => {
    const file = join(tmp.dir, 'bundle.pem');
    writeFileSync(file, rootA.certificatePem + rootB.certificatePem);
    const store = new TrustStore();
    expect(store.loadTrustAnchors(file).loaded).toHaveLength(2);
    expect(() => store.loadTrustAnchors(join(tmp.dir, 'missing'))).toThrow(`${join(tmp.dir, 'missing')}: no such file or directory`);
  });

  it('intermediates and CRLs load from files and directories', () => {
    const dir = join(tmp.dir, 'crls');
    mkdirSync(dir);
    writeFileSync(join(dir, 'a.crl'), issueCrl(rootA).der);
    writeFileSync(join(dir, 'int.crl.pem'), issueCrl(int).pem);
    const chainFile = join(tmp.dir, 'intermediates.pem');
    writeFileSync(chainFile, int.certificatePem);
    const store = new TrustStore();
    store.addTrustAnchor(rootA.certificate);
    expect(store.loadIntermediates(chainFile).loaded).toHaveLength(1);
    expect(store.loadCrls(dir).loaded.map((c) => c.issuer.text)).toEqual(['C=CH, O=tunsec test, CN=Root A', 'CN=Intermediate']);
    expect(store.crlsIssuedBy(int.certificate).map((c) => c.source)).toEqual([join(dir, 'int.crl.pem')]);
  });
});

describe('lookups', () => {
  const store = new TrustStore();
  store.addTrustAnchor(rootA.certificate);
  store.addTrustAnchor(rootB.certificate);
  store.addIntermediate(int.certificate);

  it('finds CA certificates by subject DN, in any spelling', () => {
    expect(store.findBySubject('c=ch, o=TUNSEC TEST, cn=root b')).toEqual([rootB.certificate]);
    expect(store.findBySubject(int.certificate.subject)).toEqual([int.certificate]);
    expect(store.findBySubject('CN=nobody')).toEqual([]);
  });

  it('finds CA certificates by the SHA-1 of their SubjectPublicKeyInfo', () => {
    expect(store.findBySpkiSha1(spkiSha1(rootB.certificate))).toBe(rootB.certificate);
    expect(store.findBySpkiSha1(spkiSha1(int.certificate))).toBe(int.certificate);
    expect(store.findBySpkiSha1(Buffer.alloc(20))).toBeUndefined();
  });

  it('offers the issuer candidates of a certificate, trust anchors first', () => {
    expect(store.issuerCandidates(sun.certificate)).toEqual([int.certificate]);
    expect(store.issuerCandidates(int.certificate)).toEqual([rootA.certificate]);
  });
});

describe('CERTREQ (RFC 7296 §3.7)', () => {
  const store = new TrustStore();
  store.addTrustAnchor(rootA.certificate);
  store.addTrustAnchor(rootB.certificate);
  store.addIntermediate(int.certificate);
  const hashA = spkiSha1(rootA.certificate);
  const hashB = spkiSha1(rootB.certificate);

  it('our CERTREQ lists the SHA-1 SPKI hash of every trust anchor', () => {
    expect(store.certificateAuthorityHashes()).toEqual([hashA, hashB]);
  });

  it("tells which of our trust anchors a peer's CERTREQ asked for, ignoring unknown hashes", () => {
    expect(store.requestedTrustAnchors([Buffer.alloc(20, 1), hashB])).toEqual([rootB.certificate]);
    expect(store.requestedAuthorities([spkiSha1(int.certificate)])).toEqual([int.certificate]);
    expect(store.requestedTrustAnchors([spkiSha1(int.certificate)])).toEqual([]);
  });

  it('send_cert ifasked: a chain is requested when the CERTREQ names one of its CAs, or names none at all', () => {
    const built = buildChain(sun.certificate, store);
    expect(built.ok).toBe(true);
    if (!built.ok) return;
    expect(built.chain.map((c) => c.subject.text)).toEqual(['CN=sun', 'CN=Intermediate', 'C=CH, O=tunsec test, CN=Root A']);
    expect(certReqMatchesChain(built.chain, [hashA])).toBe(true);
    expect(certReqMatchesChain(built.chain, [spkiSha1(int.certificate)])).toBe(true);
    expect(certReqMatchesChain(built.chain, [hashB])).toBe(false);
    expect(certReqMatchesChain(built.chain, [])).toBe(true);
  });
});
