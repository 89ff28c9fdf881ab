/**
 * NULL Authentication (RFC 7619) end to end with real daemons in network
 * namespaces: two `tunsec daemon`s with `auth: null` on both sides and no
 * certificate anywhere, in both roles; the ping passes through ESP (a
 * capture holds no cleartext ICMP) and both sides show the SA with '%null'.
 *
 * strongSwan 5.9.8 (and strongSwan as of today) does not implement RFC 7619:
 * swanctl refuses `auth = null`, and charon has no verifier for AUTH method 13.
 * The second part proves that against the real charon and that tunsec's NULL
 * AUTH offered to it fails cleanly, with a log line that names the reason.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import type { ListSasResult } from '../../src/control/protocol.js';
import { controlRequest } from '../../src/cli/control-client.js';
import { createCa, issueCertificate } from '../../src/pki/issue.js';
import { Capture } from '../support/capture.js';
import { NetnsPair, type NetnsSide } from '../support/netns.js';
import { requireRootAndPrograms, waitFor } from '../support/proc.js';
import { StrongSwan, requireStrongSwan } from '../support/strongswan.js';
import { FAST_RETRANSMIT, TunsecDaemon } from './tunsec-daemon.js';

requireRootAndPrograms('NULL authentication interop', ['ip', 'ping', 'tcpdump']);
requireStrongSwan();

/** A host with auth null on both sides: no certificate, no key, no CA. */
function nullYaml(me: NetnsSide, peer: NetnsSide, o: { startAction: 'start' | 'none'; mode: 'tunnel' | 'transport'; encap?: boolean }): string {
  return [
    'daemon:',
    '  pid_file: ${DIR}/tunsec.pid',
    '  control_socket: ${DIR}/tunsec.sock',
    ...FAST_RETRANSMIT.map((l) => `  ${l}`),
    'connections:',
    '  oe:',
    `    local_addrs: ${me.ip4}`,
    `    remote_addrs: ${peer.ip4}`,
    '    proposals: aes128gcm16-prfsha384-ecp384bp!',
    `    encap: ${o.encap ? 'yes' : 'no'}`,
    '    local:',
    '      auth: null',
    '    remote:',
    '      auth: null',
    '    children:',
    '      oe:',
    `        mode: ${o.mode}`,
    '        esp_proposals: aes128gcm16-ecp384bp!',
    `        start_action: ${o.startAction}`,
    '',
  ].join('\n');
}

/** The control socket straight from the test process (a CLI start-up through tsx costs seconds). */
async function listSas(d: TunsecDaemon): Promise<ListSasResult> {
  return (await controlRequest(join(d.dir, 'tunsec.sock'), 'list-sas')) as ListSasResult;
}

describe('NULL Authentication (RFC 7619) between tunsec daemons', () => {
  let pair: NetnsPair;
  beforeAll(async () => {
    pair = await NetnsPair.create('na');
  });
  afterAll(async () => {
    await pair?.destroy();
  });

  it.each(['moon', 'sun'] as const)(
    'NULL auth: %s initiates, with no certificate on either side, and ping passes through ESP',
    async (initiatorName) => {
      const [ini, res] = initiatorName === 'moon' ? [pair.a, pair.b] : [pair.b, pair.a];
      const responder = new TunsecDaemon(res.ns, nullYaml(res, ini, { startAction: 'none', mode: 'transport' }));
      const initiator = new TunsecDaemon(ini.ns, nullYaml(ini, res, { startAction: 'start', mode: 'transport' }));
      try {
        await responder.start();
        await responder.event('daemon_started');
        await initiator.start();
        await initiator.event('child_established');
        await responder.event('child_established');
        const clear = await Capture.start(res.ns, res.ifname, ['icmp']);
        const esp = await Capture.start(res.ns, res.ifname, ['-c', '4', 'esp']);
        try {
          const ping = await pair.exec(ini, 'ping', ['-c', '3', '-i', '0.2', '-W', '2', res.ip4], 20_000);
          expect(ping.code, `${ping.stdout}\n${ping.stderr}\n${initiator.text()}`).toBe(0);
          expect((await clear.stop()).filter((p) => p.protocol === 'icmp')).toEqual([]);
          expect((await esp.stop()).length).toBeGreaterThan(0);
        } finally {
          await clear.stop();
          await esp.stop();
        }
        for (const d of [initiator, responder]) {
          const [sa] = (await listSas(d)).ike_sas;
          expect(sa?.state).toBe('established');
          expect(sa?.local_id).toBe('%null');
          expect(sa?.remote_id).toBe('%null');
          expect(sa?.local_auth).toBe('null');
          expect(sa?.remote_auth).toBe('null');
          expect(sa?.children.length).toBe(1);
        }
        // What an operator reads (one CLI run: each one compiles the CLI).
        const text = await responder.cli('list-sas');
        expect(text.stdout).toContain("remote '%null'");
        expect(text.stdout).toContain('[NULL auth: unauthenticated]');
        expect(responder.text()).toContain("peer '%null' authenticated with NULL Authentication (RFC 7619)");
      } finally {
        await initiator.stop();
        await responder.stop();
      }
    },
    90_000,
  );
});

describe('NULL Authentication against strongSwan 5.9.8, which does not implement RFC 7619', () => {
  let pair: NetnsPair;
  const ca = createCa({ subject: 'C=CH, O=tunsec null, CN=tunsec NULL Test CA', key: 'p384' });
  beforeAll(async () => {
    pair = await NetnsPair.create('nb');
  });
  afterAll(async () => {
    await pair?.destroy();
  });

  function charon(auth: { local?: string; remote?: string }): StrongSwan {
    const cert = issueCertificate(ca, { subject: 'C=CH, O=tunsec null, CN=moon', key: 'p384', subjectAltNames: { dns: ['moon.null.test'], ip: [pair.a.ip4] } });
    return new StrongSwan({
      netns: pair.a.ns,
      connections: [
        {
          name: 'oe',
          localAddrs: [pair.a.ip4],
          remoteAddrs: [pair.b.ip4],
          proposals: 'aes128gcm16-prfsha384-ecp384bp',
          localId: 'moon.null.test',
          remoteId: '%any',
          certPem: cert.certificatePem,
          keyPem: cert.privateKeyPem!,
          caPem: ca.certificatePem,
          ...(auth.local ? { localAuth: auth.local } : {}),
          ...(auth.remote ? { remoteAuth: auth.remote } : {}),
          children: [{ name: 'oe', mode: 'tunnel', espProposals: 'aes128gcm16-ecp384bp', localTs: ['dynamic'], remoteTs: ['dynamic'] }],
        },
      ],
    });
  }

  it("swanctl 5.9.8 refuses 'auth = null' when loading the connection (no RFC 7619 support to interoperate with)", async () => {
    const ss = charon({ remote: 'null' });
    try {
      const err = await ss.start().then(
        () => undefined,
        (e: Error) => e.message,
      );
      expect(err).toBeDefined();
      expect(err).toMatch(/invalid value for: auth|loading connection 'oe' failed/);
    } finally {
      await ss.stop();
    }
  }, 60_000);

  it("NULL auth: tunsec initiates to strongSwan (auth pubkey) and is refused with AUTHENTICATION_FAILED, and tunsec's log says why", async () => {
    const ss = charon({});
    const tunsec = new TunsecDaemon(pair.b.ns, nullYaml(pair.b, pair.a, { startAction: 'start', mode: 'tunnel', encap: true }));
    try {
      await ss.start();
      await tunsec.start();
      await tunsec.event('daemon_started');
      await waitFor('tunsec to report the refusal', () => tunsec.text().includes('peer answered AUTHENTICATION_FAILED'), 30_000).catch(() => undefined);
      const log = tunsec.text();
      expect(log, log).toContain('peer answered AUTHENTICATION_FAILED');
      expect(log).toContain('we authenticate with NULL Authentication, RFC 7619');
      expect(await ss.listSas()).toEqual({});
    } finally {
      await tunsec.stop();
      await ss.stop();
    }
  }, 90_000);
});
