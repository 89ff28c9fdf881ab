/**
 * `tunsec up` when the peer refuses the CHILD_SA (issue 17): two `tunsec
 * daemon` processes in their own network namespaces whose IKE proposals match
 * and whose ESP proposals do not (moon offers AES-128-GCM-16, sun takes only
 * AES-256-GCM-16). The IKE_SA comes up, the CHILD_SA is refused with
 * NO_PROPOSAL_CHOSEN (RFC 7296 §1.2: the IKE_SA stays, as in strongSwan).
 * Like `swanctl --initiate --child`, `up` must then fail with the reason, and
 * `status` / `check` must not say all is well.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CheckResult, StatusResult } from '../../src/control/protocol.js';
import { createCa } from '../../src/pki/issue.js';
import { NetnsPair } from '../support/netns.js';
import { requireRootAndPrograms, type RunResult } from '../support/proc.js';
import { peerCertificates, peerDaemon, type PeerName, type TunsecDaemon } from './tunsec-daemon.js';

requireRootAndPrograms('tunsec up with a refused CHILD_SA', ['ip']);

const CLI = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const ca = createCa({ subject: 'C=CH, O=tunsec up, CN=tunsec up Root CA', key: 'p384' });
const CONN = 'host-host';
const REFUSAL = 'peer answered NO_PROPOSAL_CHOSEN to the ESP proposals we offered: aes128gcm16-noesn';

describe('tunsec up when the peer refuses the CHILD_SA (ESP proposal mismatch)', () => {
  let pair: NetnsPair;
  let moon: TunsecDaemon;
  let sun: TunsecDaemon;
  const atMoon = (...args: string[]): Promise<RunResult> =>
    pair.exec(pair.a, process.execPath, ['--import', 'tsx', CLI, ...args, '--socket', join(moon.dir, 'tunsec.sock')], 90_000);

  beforeAll(async () => {
    pair = await NetnsPair.create('uc');
    const certs = peerCertificates(ca, pair, 'tunsec up');
    const daemon = (name: PeerName, espProposals: string): TunsecDaemon =>
      peerDaemon(pair, ca, certs, name, { name: CONN, mode: 'transport', startAction: 'none', espProposals });
    moon = daemon('moon', 'aes128gcm16-ecp384bp!');
    sun = daemon('sun', 'aes256gcm16-ecp384bp!');
    for (const d of [sun, moon]) {
      await d.start();
      await d.event('daemon_started');
    }
  }, 60_000);

  afterAll(async () => {
    await moon?.stop();
    await sun?.stop();
    expect(await pair?.destroy()).toEqual([]);
  });

  it('up exits 1 and says the IKE_SA is up but the CHILD_SA failed, with the reason', async () => {
    const up = await atMoon('up', CONN);
    expect({ code: up.code, stdout: up.stdout }).toEqual({ code: 1, stdout: '' });
    expect(up.stderr).toContain(`${CONN}: IKE_SA established, but CHILD_SA ${CONN} failed: ${REFUSAL}`);
    expect(await moon.event('child_failed')).toMatchObject({ name: CONN, reason: REFUSAL });
    expect(sun.text()).toContain(`no acceptable ESP proposal: peer offered aes128gcm16-noesn; configured aes256gcm16-noesn`);
  }, 60_000);

  it('status shows the connection with its CHILD_SA failed and the reason; --json lists it', async () => {
    const text = await atMoon('status');
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(
      new RegExp(
        `\\n${CONN}: established \\(1 CHILD_SA failed\\) since .*, 1 IKE_SA, 0 CHILD_SAs\\n  CHILD_SA ${CONN}: failed since \\S+: ${REFUSAL.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n`,
      ),
    );
    const json = await atMoon('status', '--json');
    const conn = (JSON.parse(json.stdout) as StatusResult).connections.find((c) => c.name === CONN)!;
    expect(conn).toMatchObject({ state: 'established', ike_sas: 1, children: 0, failed_children: [{ name: CONN, reason: REFUSAL }] });
  }, 60_000);

  it('check is CRITICAL (exit 2): the connection carries no traffic', async () => {
    const check = await atMoon('check', CONN, '--json');
    expect(check.code).toBe(2);
    const r = JSON.parse(check.stdout) as CheckResult;
    expect(r.summary).toBe(`${CONN}: CHILD_SA ${CONN} failed`);
  }, 60_000);
});
