/**
 * From the loaded configuration to what the IKE layer runs with: for every
 * connection an `IkePeerConfig` (certificate chain, the private key that
 * matches it, trust store, identities, proposals, children) inside the
 * `ConnectionEntry` the SA manager looks connections up by.
 *
 * Files are read here, not while the configuration is checked. Every problem
 * is collected (one message each, naming the connection, the key and the
 * file: "connection dc1: local.certs: /etc/x.pem: no CERTIFICATE block"), so
 * an operator sees them all at once.
 *
 * Private keys come only from `secrets`, as with swanctl: every secret is
 * loaded and a connection uses the one whose public key is its certificate's.
 * A key file lying next to the certificate is not guessed.
 */
import type { KeyObject } from 'node:crypto';
import type { AuthoritiesConfig, ChildConfig, ConnectionConfig, SecretConfig, TunsecConfig } from '../config/index.js';
import type { Identity as ConfigIdentity } from '../config/index.js';
import type { SaLifetimes } from '../esp/api.js';
import type { ConnectionEntry } from '../ike/manager.js';
import type { ChildPeerConfig, IkePeerConfig } from '../ike/sa/peer-config.js';
import type { TrafficSelectorConfig } from '../ike/ts/index.js';
import { type IpPrefix, parsePrefix } from '../util/prefix.js';
import {
  PkiError,
  TrustStore,
  certMatchesIdentity,
  identityToString,
  intermediatesToSend,
  keyMatchesCertificate,
  loadCertificateChain,
  loadCertificates,
  loadPrivateKey,
  NULL_IDENTITY,
  parseIdentity,
  subjectIdentity,
  type Certificate,
  type Identity,
} from '../pki/index.js';

/** strongSwan's default fragment size (charon.fragment_size): the largest IKE datagram, IP header included. */
export const FRAGMENT_SIZE = 1280;

export interface LoadedSecret {
  /** The section name, `private-moon`. */
  name: string;
  file: string;
  key: KeyObject;
}

export interface SecretsResult {
  keys: LoadedSecret[];
  errors: string[];
  warnings: string[];
}

export interface ResolvedConnection {
  name: string;
  entry: ConnectionEntry;
  /** Children with `start_action: start` (or `trap|start`): the connection is initiated when loaded. */
  startChildren: string[];
  /** Children with `start_action: trap` (or `trap|start`): their policies are installed when loaded and traffic triggers negotiation. */
  trapChildren: string[];
  /** `mode: pass | drop` children: bypass / discard policies installed when loaded, never negotiated. */
  shunts: ShuntConfig[];
  keyingtries: number;
  /** Per child: what follows when DPD (or any unanswered exchange) declares the peer dead. */
  dpdActions: Record<string, 'clear' | 'trap' | 'restart'>;
  /** Per child: what follows when the peer deletes the CHILD_SA or its IKE_SA. */
  closeActions: Record<string, 'none' | 'trap' | 'start'>;
  /** Per child: seconds without a packet before the SA is closed (0 = never). */
  inactivity: Record<string, number>;
  /**
   * A group connection: the prefixes of remote_addrs (./groups.ts makes its per-peer
   * instances); absent for a connection with one peer (or %any).
   */
  group?: IpPrefix[];
}

/** A shunt policy (swanctl's `mode = pass | drop`): its traffic bypasses IPsec or is discarded. */
export interface ShuntConfig {
  name: string;
  mode: 'pass' | 'drop';
  localTs: TrafficSelectorConfig[];
  remoteTs: TrafficSelectorConfig[];
  reqid?: number;
}

export interface CredentialsResult {
  connections: ResolvedConnection[];
  /** Every problem; a non-empty list means the daemon cannot start. */
  errors: string[];
  /** To be logged: loose key file permissions, skipped files in CA directories, settings without effect. */
  warnings: string[];
}

/** Resolve every connection of the configuration; problems of all of them are reported. */
export function resolveCredentials(config: TunsecConfig): CredentialsResult {
  const errors = new Set<string>();
  const warnings = new Set<string>();
  const secrets = loadSecrets(config.secrets);
  secrets.errors.forEach((e) => errors.add(e));
  secrets.warnings.forEach((w) => warnings.add(w));
  if (config.authorities.strictcrl === 'ifuri') {
    warnings.add(
      "authorities.strictcrl: 'ifuri' acts as 'no' for now: tunsec does not fetch CRLs from distribution points, and certificate validation has no per-certificate strict mode yet",
    );
  }
  const connections: ResolvedConnection[] = [];
  for (const conn of Object.values(config.connections)) {
    const r = resolveConnection(conn, config.authorities, secrets.keys);
    r.errors.forEach((e) => errors.add(e));
    r.warnings.forEach((w) => warnings.add(w));
    if (r.connection) connections.push(r.connection);
  }
  // reqids in configuration order: stable across restarts, and what trap policies and CHILD_SAs share
  let reqid = 1;
  for (const c of connections) {
    for (const child of c.entry.config.children) child.reqid = reqid++;
    for (const shunt of c.shunts) shunt.reqid = reqid++;
  }
  return { connections, errors: [...errors], warnings: [...warnings] };
}

const KEY_TYPES: Readonly<Record<SecretConfig['type'], readonly string[] | undefined>> = {
  private: undefined,
  pkcs8: undefined,
  rsa: ['rsa', 'rsa-pss'],
  ecdsa: ['ec'],
};

/** Load every private key of `secrets`, with permission warnings. */
export function loadSecrets(secrets: Record<string, SecretConfig>): SecretsResult {
  const keys: LoadedSecret[] = [];
  const errors: string[] = [];
  const warnings: string[] = [];
  for (const [name, secret] of Object.entries(secrets)) {
    try {
      const loaded = loadPrivateKey(secret.file);
      const allowed = KEY_TYPES[secret.type];
      const type = loaded.key.asymmetricKeyType ?? 'unknown';
      if (allowed && !allowed.includes(type)) {
        errors.push(
          `secrets.${name}: ${secret.file}: holds ${type === 'ec' ? 'an ECDSA' : type === 'rsa' || type === 'rsa-pss' ? 'an RSA' : `a ${type}`} key, but the section is named ${secret.type}<suffix> (use private<suffix> for any key type)`,
        );
        continue;
      }
      warnings.push(...loaded.warnings.map((w) => `secrets.${name}: ${w}`));
      keys.push({ name, file: secret.file, key: loaded.key });
    } catch (err) {
      if (!(err instanceof PkiError)) throw err;
      errors.push(`secrets.${name}: ${err.message}`);
    }
  }
  return { keys, errors, warnings };
}

interface ConnectionResult {
  connection?: ResolvedConnection;
  errors: string[];
  warnings: string[];
}

/** One connection: its credentials, trust store, identities and children. */
export function resolveConnection(conn: ConnectionConfig, authorities: AuthoritiesConfig, keys: readonly LoadedSecret[]): ConnectionResult {
  const errors: string[] = [];
  const warnings: string[] = [];
  const at = (key: string, message: string): string => `connection ${conn.name}: ${key}: ${message}`;
  const pki = <T>(key: string, f: () => T): T | undefined => {
    try {
      return f();
    } catch (err) {
      if (!(err instanceof PkiError)) throw err;
      errors.push(key.startsWith('authorities.') ? `${key}: ${err.message}` : at(key, err.message));
      return undefined;
    }
  };

  // Our certificate: the first file's first certificate; the rest of that file and the other files are its chain.
  let certificate: Certificate | undefined;
  const intermediates: Certificate[] = [];
  const localNull = conn.local.auth === 'null';
  const remoteNull = conn.remote.auth === 'null';
  const [first, ...more] = localNull ? [] : conn.local.certs;
  if (localNull) {
    // RFC 7619: no certificate, no key; the configuration's checks refused local.certs already.
  } else if (first === undefined) {
    errors.push(at('local.certs', "required with auth 'pubkey'"));
  } else {
    const chain = pki('local.certs', () => loadCertificateChain(first));
    if (chain) {
      certificate = chain.certificate;
      intermediates.push(...chain.intermediates);
    }
    for (const file of more) intermediates.push(...(pki('local.certs', () => loadCertificates(file)) ?? []));
  }

  // The private key: whichever secret is the key pair of our certificate.
  let privateKey: KeyObject | undefined;
  if (certificate && first !== undefined) {
    const match = keys.find((k) => keyMatchesCertificate(k.key, certificate));
    if (match) {
      privateKey = match.key;
    } else {
      const subject = `'${certificate.subject.text}'`;
      errors.push(
        keys.length === 0
          ? at(
              'local.certs',
              `${first}: no private key for certificate ${subject}: no key is loaded from secrets (add its file under secrets, e.g. secrets: { private-${conn.name}: { file: … } }; tunsec does not look for key files next to certificates)`,
            )
          : at(
              'local.certs',
              `${first}: no private key in secrets matches certificate ${subject} (tried ${keys.map((k) => `secrets.${k.name} ${k.file}`).join(', ')})`,
            ),
      );
    }
  }

  // Identities.
  let localId: Identity | undefined;
  if (localNull) {
    // ID_NULL unless an identity is configured (RFC 7619 §3 allows one; nothing proves it).
    localId = conn.local.id === undefined || conn.local.id.type === 'ID_NULL' ? NULL_IDENTITY : pki('local.id', () => toPkiIdentity(conn.local.id!));
  } else if (certificate) {
    if (conn.local.id === undefined) {
      localId = subjectIdentity(certificate);
    } else if (conn.local.id.type === 'ID_ANY') {
      errors.push(
        at('local.id', `'${conn.local.id.text}' matches any identity; it cannot be sent as ours (leave local.id out to use the certificate's subject DN)`),
      );
    } else {
      localId = pki('local.id', () => toPkiIdentity(conn.local.id!));
      if (localId) {
        const m = certMatchesIdentity(certificate, localId);
        if (!m.ok) errors.push(at('local.id', `'${conn.local.id.text}' is not vouched for by ${first}: ${m.reason}`));
      }
    }
  }
  const remoteId = conn.remote.id.type === 'ID_ANY' ? undefined : pki('remote.id', () => toPkiIdentity(conn.remote.id));

  // Trust: CA certificates (files or directories), pinned peer certificates, CRLs.
  const trust = new TrustStore();
  const errorsBeforeTrust = errors.length;
  const sources: Array<[string, string]> = [
    ...authorities.cacerts.map((p): [string, string] => ['authorities.cacerts', p]),
    ...conn.remote.cacerts.map((p): [string, string] => ['remote.cacerts', p]),
  ];
  for (const [key, path] of sources) {
    const report = pki(key, () => trust.loadTrustAnchors(path));
    if (report) warnings.push(...report.warnings.map((w) => `${key}: ${w}`));
  }
  for (const path of conn.remote.certs) {
    // A pinned certificate is trusted as it is (a path of length one).
    pki('remote.certs', () => loadCertificates(path).forEach((c) => trust.addTrustAnchor(c)));
  }
  if (!remoteNull && trust.trustAnchors.length === 0 && errors.length === errorsBeforeTrust) {
    errors.push(
      at('remote.cacerts', 'no CA certificate was loaded (authorities.cacerts, remote.cacerts and remote.certs gave none): no peer could be authenticated'),
    );
  }
  for (const path of authorities.crls) {
    const report = pki('authorities.crls', () => trust.loadCrls(path));
    if (report) warnings.push(...report.warnings.map((w) => `authorities.crls: ${w}`));
  }

  if (certificate) {
    const now = Date.now();
    if (certificate.notAfter.getTime() < now)
      warnings.push(at('local.certs', `${first}: certificate '${certificate.subject.text}' expired on ${certificate.notAfter.toISOString()}`));
    if (certificate.notBefore.getTime() > now)
      warnings.push(at('local.certs', `${first}: certificate '${certificate.subject.text}' is not valid before ${certificate.notBefore.toISOString()}`));
  }

  const children = Object.values(conn.children)
    .filter((c): c is ChildConfig & { mode: 'transport' | 'tunnel' } => c.mode === 'transport' || c.mode === 'tunnel')
    .map((c) => childConfig(c));
  const shunts: ShuntConfig[] = Object.values(conn.children)
    .filter((c): c is ChildConfig & { mode: 'pass' | 'drop' } => c.mode === 'pass' || c.mode === 'drop')
    .map((c) => ({ name: c.name, mode: c.mode, localTs: c.local_ts, remoteTs: c.remote_ts }));
  if (children.length > 1) {
    warnings.push(
      `connection ${conn.name}: only child ${children[0]!.name} is created with the IKE SA when initiating; the others (${children
        .slice(1)
        .map((c) => c.name)
        .join(', ')}) follow through CREATE_CHILD_SA once it is up (start_action start) or when their traffic appears (trap)`,
    );
  }

  if (errors.length > 0 || !localId || (!localNull && (!certificate || !privateKey))) return { errors, warnings };
  // Intermediates listed only under authorities.cacerts / remote.cacerts are sent too when they chain our certificate.
  const sentIntermediates = certificate ? intermediatesToSend(certificate, trust, intermediates) : [];
  const peer: IkePeerConfig = {
    name: conn.name,
    ikeProposals: conn.proposals.proposals,
    localId,
    ...(remoteId ? { remoteId } : {}),
    localAuth: conn.local.auth,
    remoteAuth: conn.remote.auth,
    ...(conn.remote.id.pattern === 'wildcard' ? { remoteIdPattern: { kind: 'wildcard' as const, suffix: conn.remote.id.value.slice(2) } } : {}),
    ...(conn.remote.id.pattern === 'fromcert-ip' ? { remoteIdPattern: { kind: 'fromcert-ip' as const } } : {}),
    ...(certificate ? { certificate } : {}),
    intermediates: sentIntermediates,
    ...(privateKey ? { privateKey } : {}),
    trust,
    strictCrl: authorities.strictcrl === 'yes',
    sendCert: conn.send_cert,
    sendCertReq: conn.send_certreq,
    fragmentation: conn.fragmentation !== 'no',
    fragmentSize: FRAGMENT_SIZE,
    forceEncap: conn.encap,
    // reauth_time: make-before-break reauthentication (a new IKE SA with IKE_AUTH, src/ike/manager.ts)
    ikeLifetimes: { rekeyTime: conn.rekey_time, randTime: conn.rand_time, overTime: conn.over_time, reauthTime: conn.reauth_time },
    dpdDelay: conn.dpd_delay,
    unique: conn.unique,
    children,
  };
  const anyAddress = (a: string): string => (a === '%any4' || a === '%any6' ? '%any' : a);
  const remoteAddrs = [...new Set(conn.remote_addrs.map(anyAddress))];
  // A group names its peers by prefix; a bare address among the prefixes is a one-host prefix.
  const group =
    conn.policy_group !== undefined || remoteAddrs.some((a) => a.includes('/'))
      ? remoteAddrs.flatMap((a) => {
          const p = parsePrefix(a);
          return p.ok ? [p.value] : [];
        })
      : undefined;
  return {
    connection: {
      name: conn.name,
      entry: {
        config: peer,
        localAddrs: [...new Set(conn.local_addrs.map(anyAddress))],
        remoteAddrs,
        remotePort: conn.remote_port,
        ...(group ? { remotePrefixes: group } : {}),
      },
      ...(group ? { group } : {}),
      startChildren: Object.values(conn.children)
        .filter((c) => c.start_action === 'start' || c.start_action === 'trap|start')
        .map((c) => c.name),
      shunts,
      trapChildren: Object.values(conn.children)
        .filter((c) => c.start_action === 'trap' || c.start_action === 'trap|start')
        .map((c) => c.name),
      keyingtries: conn.keyingtries,
      dpdActions: Object.fromEntries(Object.values(conn.children).map((c) => [c.name, c.dpd_action])),
      closeActions: Object.fromEntries(Object.values(conn.children).map((c) => [c.name, c.close_action])),
      inactivity: Object.fromEntries(Object.values(conn.children).map((c) => [c.name, c.inactivity])),
    },
    errors,
    warnings,
  };
}

/** A configured identity (already checked by src/config) as the IKE layer's type. */
export function toPkiIdentity(id: ConfigIdentity): Identity {
  return parseIdentity(id.text);
}

/** soft = rekey, hard = life (seconds, bytes, packets; 0 = none). */
export function childLifetimes(child: ChildConfig): SaLifetimes {
  return {
    softSeconds: child.rekey_time,
    hardSeconds: child.life_time,
    softBytes: child.rekey_bytes,
    hardBytes: child.life_bytes,
    softPackets: child.rekey_packets,
    hardPackets: child.life_packets,
  };
}

export function childConfig(child: ChildConfig & { mode: 'transport' | 'tunnel' }, reqid?: number): ChildPeerConfig {
  return {
    name: child.name,
    ...(reqid === undefined ? {} : { reqid }),
    espProposals: child.esp_proposals.proposals,
    mode: child.mode,
    localTs: child.local_ts,
    remoteTs: child.remote_ts,
    replayWindow: child.replay_window,
    lifetimes: childLifetimes(child),
    rand: { seconds: child.rand_time, bytes: child.rand_bytes, packets: child.rand_packets },
    policy: child.policy,
  };
}

/** `moon.ikev2.test`, `C=CH, O=…, CN=moon` — for logs. */
/** `loaded connection dc1: 192.0.2.1 → 192.0.2.2:500, local id moon, certificate 'CN=moon'` */
export function describeConnection(c: ResolvedConnection): string {
  const e = c.entry;
  return `loaded connection ${c.name}: ${e.localAddrs.join(',')} → ${e.remoteAddrs.join(',')}:${e.remotePort}, local id ${describeIdentity(e.config.localId)}, ${e.config.certificate ? `certificate '${e.config.certificate.subject.text}'` : 'NULL authentication (RFC 7619)'}${e.config.remoteAuth === 'null' ? ', peer NULL authentication' : ''}`;
}

export function describeIdentity(id: Identity | undefined): string {
  return id === undefined ? '%any' : identityToString(id);
}
