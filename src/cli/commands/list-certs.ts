/**
 * `tunsec list-certs [NAME]`: the certificates in use, laid out like
 * `swanctl --list-certs`: each connection's own certificate and the
 * intermediates sent with it, the trusted CAs, and the peers' certificates on
 * the IKE SAs up now.
 *
 *   own certificate, used by moon-sun:
 *     subject:  "CN=moon.tunsec.test"
 *     issuer:   "CN=tunsec test CA"
 *     serial:   0x02
 *     altNames: DNS:moon.tunsec.test
 *     validity: not before 2026-12-01T00:00:00Z
 *               not after  2027-12-01T00:00:00Z, valid (360 days left)
 *     pubkey:   ECDSA P-384
 *     sha256:   3a:5f:…
 *     source:   /etc/tunsec/x509/moon.pem
 */
import type { CertInfo, CertKind, ListCertsResult } from '../../control/protocol.js';
import { CONTROL_OPTIONS, controlTarget, parseArgs, runControl, usage, type CommandSpec } from './common.js';

export const listCertsCommand: CommandSpec = {
  name: 'list-certs',
  synopsis: '[NAME] [options]',
  summary: 'certificates in use: own, intermediates, CAs, peers (subject, SANs, validity, key)',
  description: `The certificates the daemon uses (of connection NAME, or all): each
connection's own certificate and the intermediates sent with it, the trusted CA
certificates, and the certificates peers authenticated with on the IKE_SAs up
now. Each with subject, issuer, serial, subjectAltNames, validity (and whether it
holds now), key type and SHA-256 fingerprint.`,
  options: CONTROL_OPTIONS,
  positionals: 'connection',
  control: true,
  async run(args, io) {
    const parsed = parseArgs(this, args);
    if (parsed.positionals.length > 1) throw usage(this, 'list-certs takes at most one connection NAME');
    const name = parsed.positionals[0];
    const target = controlTarget(this, parsed);
    const only = (r: ListCertsResult): ListCertsResult =>
      name === undefined ? r : { certificates: r.certificates.filter((c) => c.connections.includes(name)) };
    return runControl(
      io,
      target,
      'list-certs',
      {},
      (result) => {
        io.out(formatCerts(only(result as ListCertsResult)));
        return 0;
      },
      0,
      (result) => only(result as ListCertsResult),
    );
  },
};

const TITLE: Readonly<Record<CertKind, string>> = {
  own: 'own certificate',
  intermediate: 'intermediate CA certificate (sent)',
  ca: 'CA certificate (trusted)',
  peer: 'peer certificate',
};

export function formatCerts(r: ListCertsResult, now = Date.now()): string {
  if (r.certificates.length === 0) return 'no certificates\n';
  return r.certificates.map((c) => formatCert(c, now)).join('\n');
}

function formatCert(c: CertInfo, now: number): string {
  const left = Math.floor((Date.parse(c.not_after) - now) / 86_400_000);
  const state = c.validity === 'valid' ? `valid (${left} day${left === 1 ? '' : 's'} left)` : c.validity;
  const lines = [
    `${TITLE[c.kind]}, used by ${c.connections.join(', ')}${c.ike_sas ? ` on IKE_SA ${c.ike_sas.join(', ')}` : ''}:`,
    `  subject:  "${c.subject}"`,
    `  issuer:   "${c.issuer}"`,
    `  serial:   ${c.serial}`,
  ];
  if (c.sans.length > 0) lines.push(`  altNames: ${c.sans.join(', ')}`);
  lines.push(
    `  flags:    ${c.ca ? 'CA' : 'end entity'}`,
    `  validity: not before ${c.not_before}`,
    `            not after  ${c.not_after}, ${state}`,
    `  pubkey:   ${c.key}`,
    `  sha256:   ${c.fingerprint.match(/../g)?.join(':') ?? c.fingerprint}`,
    `  source:   ${c.source}`,
  );
  return `${lines.join('\n')}\n`;
}
