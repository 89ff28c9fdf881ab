/**
 * Issue 9, secrets, over a real IKE exchange between two in-process peers:
 * every log line at every level (the IKE logger's debug included) is free of
 * the IKE SA keys (SK_d, SK_ei/er, SK_pi/pr), the CHILD SA key material and
 * the private keys; deleting the SAs wipes the IKE keys and the SAD's copies
 * of the ESP keys.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { freePorts, peerConfig, startPeer, testPki, type TestPeer } from './support/peers.js';

const peers: TestPeer[] = [];
afterEach(() => {
  for (const p of peers.splice(0)) p.stop();
});

/** Every way a secret could be written into a text line. */
const renderings = (b: Buffer): string[] => [b.toString('hex'), b.toString('hex').toUpperCase(), b.toString('base64'), b.subarray(0, 16).toString('hex')];

describe('secrets stay out of the logs and are wiped with their SAs', () => {
  it('no key of the IKE SA, the CHILD SA or the certificates appears in any log line, and deletion zeroes them', async () => {
    const pki = testPki();
    const ports = await freePorts();
    const moonCert = pki.host('moon.tunsec.test', { ip: ['127.0.0.1'] });
    const sunCert = pki.host('sun.tunsec.test', { ip: ['127.0.0.2'] });
    const moon = await startPeer('127.0.0.1', ports, [
      {
        config: peerConfig(pki, moonCert, 'moon.tunsec.test', 'sun.tunsec.test', { fragmentSize: 576 }),
        localAddrs: ['127.0.0.1'],
        remoteAddrs: ['127.0.0.2'],
        remotePort: ports.ike,
      },
    ]);
    const sun = await startPeer(
      '127.0.0.2',
      ports,
      [
        {
          config: peerConfig(pki, sunCert, 'sun.tunsec.test', 'moon.tunsec.test', { fragmentSize: 576 }),
          localAddrs: ['127.0.0.2'],
          remoteAddrs: ['127.0.0.1'],
          remotePort: ports.ike,
        },
      ],
      { cookieThreshold: 0 },
    );
    peers.push(moon, sun);

    const sa = await moon.manager.initiate('host-host');
    const keys = sa.ctx.keys!;
    const ikeKeys = [keys.skD, keys.skEi, keys.skEr, keys.skPi, keys.skPr];
    const ikeCopies = ikeKeys.map((k) => Buffer.from(k));
    const espHeld = [...moon.sad.listSas(), ...sun.sad.listSas()].map((e) => e.spec.aead.keyMaterial as Buffer);
    const espCopies = espHeld.map((k) => Buffer.from(k));
    expect(espHeld).toHaveLength(4);
    const privateKeys = [moonCert, sunCert].map((c) => c.privateKey!.export({ format: 'der', type: 'pkcs8' }) as Buffer);

    const text = [moon.log.text(), sun.log.text()].join('\n');
    expect(text).toMatch(/COOKIE/); // the debug-level lines are in there too
    for (const secret of [...ikeCopies, ...espCopies]) for (const r of renderings(secret)) expect(text).not.toContain(r);
    for (const der of privateKeys) {
      for (let off = 0; off + 32 <= der.length; off += 32) expect(text).not.toContain(der.subarray(off, off + 32).toString('hex'));
      expect(text).not.toContain(der.toString('base64').slice(40, 100));
    }

    await moon.manager.deleteAll(2000);
    await new Promise((r) => setTimeout(r, 100));
    expect(moon.sad.listSas()).toHaveLength(0);
    for (const k of ikeKeys) expect(k.every((b) => b === 0)).toBe(true);
    for (const k of espHeld.slice(0, 2)) expect(k.every((b) => b === 0)).toBe(true);
  });
});
