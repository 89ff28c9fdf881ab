import { mkdirSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CredentialWatch, credentialPaths } from '../../src/daemon/credential-watch.js';
import { tempDir } from './support.js';

describe('credential files watched for renewal', () => {
  const dirs: Array<ReturnType<typeof tempDir>> = [];
  afterEach(() => dirs.splice(0).forEach((d) => d.remove()));

  function setUp(settleMs = 0) {
    const dir = tempDir();
    dirs.push(dir);
    const cert = join(dir.path, 'cert.pem');
    const key = join(dir.path, 'key.pem');
    const cas = join(dir.path, 'cacerts');
    writeFileSync(cert, 'cert 1');
    writeFileSync(key, 'key 1');
    mkdirSync(cas);
    writeFileSync(join(cas, 'root.pem'), 'root 1');
    const reports: string[][] = [];
    const watch = new CredentialWatch({ paths: () => [cert, key, cas], changed: (p) => reports.push(p), intervalMs: 60_000, settleMs });
    watch.start();
    return { dir, cert, key, cas, reports, watch };
  }

  it('reports nothing while the files stay as they are', () => {
    const { reports, watch } = setUp();
    watch.poll();
    watch.poll();
    watch.stop();
    expect(reports).toEqual([]);
  });

  it('reports a file replaced by rename (a new inode), as ACME clients write, and a file rewritten in a watched directory', () => {
    const { dir, cert, cas, reports, watch } = setUp();
    writeFileSync(join(dir.path, 'cert.tmp'), 'cert 2 (longer)');
    renameSync(join(dir.path, 'cert.tmp'), cert);
    watch.poll();
    writeFileSync(join(cas, 'root.pem'), 'root 2 (longer)');
    watch.poll();
    watch.stop();
    expect(reports).toEqual([[cert], [join(cas, 'root.pem')]]);
  });

  it('follows a symlink swapped to a new target, and reports a file added to or removed from a directory', () => {
    const { dir, cas, reports, watch } = setUp();
    const live = join(dir.path, 'live.pem');
    writeFileSync(join(dir.path, 'v1.pem'), 'v1');
    writeFileSync(join(dir.path, 'v2.pem'), 'v2 (renewed)');
    symlinkSync(join(dir.path, 'v1.pem'), live);
    const linked = new CredentialWatch({ paths: () => [live], changed: (p) => reports.push(p), intervalMs: 60_000 });
    linked.start();
    unlinkSync(live);
    symlinkSync(join(dir.path, 'v2.pem'), live);
    linked.poll();
    linked.stop();
    writeFileSync(join(cas, 'intermediate.pem'), 'new CA');
    watch.poll();
    rmSync(join(cas, 'root.pem'));
    watch.poll();
    watch.stop();
    expect(reports).toEqual([[live], [cas, join(cas, 'intermediate.pem')], [cas, join(cas, 'root.pem')]]);
  });

  it('waits until the files have been quiet for the settle time, so a certificate and its key written one after the other are one reload', () => {
    const { cert, key, reports, watch } = setUp(2000);
    writeFileSync(cert, 'cert 2 (longer)');
    watch.poll(10_000);
    writeFileSync(key, 'key 2 (longer)');
    watch.poll(11_000);
    watch.poll(12_500);
    expect(reports).toEqual([]);
    watch.poll(13_100);
    watch.stop();
    expect(reports).toEqual([[cert, key]]);
  });

  it('names every credential file and directory a configuration uses, once', () => {
    expect(
      credentialPaths({
        authorities: { cacerts: ['/etc/tunsec/ca'], crls: ['/etc/tunsec/crls'] },
        secrets: { a: { file: '/etc/tunsec/key.pem' } },
        connections: {
          dc1: { local: { certs: ['/etc/tunsec/host.pem'] }, remote: { certs: [], cacerts: ['/etc/tunsec/ca'] } },
          dc2: { local: { certs: ['/etc/tunsec/host.pem'] }, remote: { certs: ['/etc/tunsec/peer.pem'], cacerts: [] } },
        },
      }),
    ).toEqual(['/etc/tunsec/ca', '/etc/tunsec/crls', '/etc/tunsec/key.pem', '/etc/tunsec/host.pem', '/etc/tunsec/peer.pem']);
  });
});
