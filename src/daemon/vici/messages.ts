/**
 * tunsec's state as the messages strongSwan's vici plugin sends, with its key
 * names (vici README, "Server-issued events": list-sa, list-conn, list-cert,
 * ike-updown, child-updown, …) and charon's value spellings (`ESTABLISHED`,
 * `INSTALLED`, `TRANSPORT`, `AES_GCM_16`, `PRF_HMAC_SHA2_384`, `ECP_384_BP`),
 * so that swanctl prints tunsec's SAs as it prints charon's.
 *
 * The figures come from the control socket's views (../control/views.ts:
 * identities, counters, ages); the algorithms and unique IDs from the SAs.
 */
import type { AuthClassName, ChildSaInfo, ConnInfo, IkeSaInfo } from '../../control/protocol.js';
import type { ViciInput, ViciInputValue } from '../../control/vici/message.js';
import { strongswanAlgorithmName, transformOfType, type SelectedProposal } from '../../ike/proposal/index.js';
import type { IkeSa } from '../../ike/sa/ike-sa.js';
import type { ChildSaRecord } from '../../ike/sa/context.js';
import { EsnId, KeId, TransformType } from '../../ike/transforms.js';
import type { Certificate } from '../../pki/index.js';
import { describeIdentity, type ResolvedConnection } from '../credentials.js';
import { spiHex } from '../../util/format.js';

/**
 * charon numbers every IKE_SA and CHILD_SA (`uniqueid`, swanctl's `#N`) and
 * `--ike-id`/`--child-id` select by it. tunsec's SAs get theirs here, the
 * first time VICI sees them; a rekeyed SA is a new SA with a new number, as in charon.
 */
export class ViciIds {
  private next = { ike: 1, child: 1 };
  private readonly ike = new WeakMap<IkeSa, number>();
  private readonly child = new WeakMap<ChildSaRecord, number>();

  ikeId(sa: IkeSa): number {
    let id = this.ike.get(sa);
    if (id === undefined) this.ike.set(sa, (id = this.next.ike++));
    return id;
  }

  childId(child: ChildSaRecord): number {
    let id = this.child.get(child);
    if (id === undefined) this.child.set(child, (id = this.next.child++));
    return id;
  }
}

const IKE_STATES: Readonly<Record<IkeSa['state'], string>> = {
  created: 'CREATED',
  connecting: 'CONNECTING',
  established: 'ESTABLISHED',
  deleting: 'DELETING',
  destroyed: 'DESTROYING',
};

const yes = (b: boolean): 'yes' | undefined => (b ? 'yes' : undefined);

/** encr-alg, encr-keysize, integ-alg, integ-keysize, prf-alg, dh-group of a negotiated proposal, as charon names them. */
function algorithms(p: SelectedProposal | undefined): Record<string, ViciInputValue> {
  if (!p) return {};
  const encr = transformOfType(p, TransformType.ENCR);
  const integ = transformOfType(p, TransformType.INTEG);
  const prf = transformOfType(p, TransformType.PRF);
  const ke = transformOfType(p, TransformType.KE);
  const esn = transformOfType(p, TransformType.ESN);
  return {
    'encr-alg': encr ? strongswanAlgorithmName(TransformType.ENCR, encr.id) : undefined,
    'encr-keysize': encr?.keyLength,
    'integ-alg': integ && integ.id !== 0 ? strongswanAlgorithmName(TransformType.INTEG, integ.id) : undefined,
    'prf-alg': prf ? strongswanAlgorithmName(TransformType.PRF, prf.id) : undefined,
    'dh-group': ke && ke.id !== KeId.NONE ? strongswanAlgorithmName(TransformType.KE, ke.id) : undefined,
    esn: esn?.id === EsnId.ESN ? '1' : undefined,
  };
}

/**
 * The keys of one IKE_SA in list-sa / ike-updown (without `child-sas`). `info`
 * is the SA as the control socket's `list-sas` view shows it; absent for an SA
 * already destroyed (an ike-updown down event), whose figures then come from the SA itself.
 */
export function ikeSaKeys(sa: IkeSa, info: IkeSaInfo | undefined, ids: ViciIds, now = Date.now()): Record<string, ViciInputValue> {
  const ctx = sa.ctx;
  const established = info?.established_age ?? (ctx.establishedAt === undefined ? undefined : Math.max(0, Math.floor((now - ctx.establishedAt) / 1000)));
  return {
    uniqueid: ids.ikeId(sa),
    version: 2,
    state: IKE_STATES[sa.state],
    'local-host': info?.local.address ?? ctx.local.address,
    'local-port': info?.local.port ?? ctx.local.port,
    'local-id': info?.local_id ?? describeIdentity(ctx.config.localId),
    'remote-host': info?.remote.address ?? ctx.remote.address,
    'remote-port': info?.remote.port ?? ctx.remote.port,
    'remote-id': info?.remote_id ?? describeIdentity(ctx.peerId ?? ctx.config.remoteId),
    initiator: yes(ctx.originalInitiator),
    'initiator-spi': ctx.spiI.toString('hex'),
    'responder-spi': ctx.spiR.toString('hex'),
    'nat-local': yes(ctx.natLocal),
    'nat-remote': yes(ctx.natRemote),
    'nat-any': yes(ctx.natLocal || ctx.natRemote),
    ...algorithms(ctx.selected),
    established,
    ...lifetimeKeys(sa, now),
  };
}

/** rekey-time, reauth-time, life-time: seconds until each is due, as charon lists them. */
function lifetimeKeys(sa: IkeSa, now: number): Record<string, ViciInputValue> {
  const d = sa.state === 'established' ? sa.lifetimeDeadlines : {};
  const left = (at: number | undefined): number | undefined => (at === undefined ? undefined : Math.max(0, Math.floor((at - now) / 1000)));
  return { 'rekey-time': left(d.rekeyAt), 'reauth-time': left(d.reauthAt), 'life-time': left(d.endAt) };
}

/** The keys of one CHILD_SA in list-sa's `child-sas` (and the updown/rekey events). */
export function childSaKeys(
  child: ChildSaRecord,
  info: ChildSaInfo | undefined,
  ids: ViciIds,
  state: 'INSTALLED' | 'DELETING' | 'REKEYED' = 'INSTALLED',
  now = Date.now(),
): Record<string, ViciInputValue> {
  const age = info?.installed_age ?? Math.max(0, Math.floor((now - child.installedAt) / 1000));
  const rekey = child.rekeySeconds ? Math.max(0, child.rekeySeconds - age) : undefined;
  const hard = child.config?.lifetimes.hardSeconds;
  return {
    name: child.name,
    uniqueid: ids.childId(child),
    reqid: child.reqid,
    state,
    mode: child.mode.toUpperCase(),
    protocol: 'ESP',
    encap: yes(child.encap),
    'spi-in': spiHex(child.inboundSpi),
    'spi-out': spiHex(child.outboundSpi),
    ...algorithms(child.proposal),
    'bytes-in': info?.bytes_in ?? 0,
    'packets-in': info?.packets_in ?? 0,
    'use-in': info?.last_in ?? undefined,
    'bytes-out': info?.bytes_out ?? 0,
    'packets-out': info?.packets_out ?? 0,
    'use-out': info?.last_out ?? undefined,
    'rekey-time': rekey,
    'life-time': hard ? Math.max(0, hard - age) : undefined,
    'install-time': age,
    'local-ts': child.localTs,
    'remote-ts': child.remoteTs,
  };
}

/** The `child-sas` section: charon keys each CHILD_SA by `name-uniqueid`. */
export function childSasSection(
  children: ReadonlyArray<{ child: ChildSaRecord; info?: ChildSaInfo; state?: 'INSTALLED' | 'DELETING' }>,
  ids: ViciIds,
): ViciInput {
  return new Map(children.map(({ child, info, state }) => [`${child.name}-${ids.childId(child)}`, childSaKeys(child, info, ids, state)]));
}

/** A list-sa event (and ike-updown/child-updown): the IKE_SA's keys under its connection name. */
export function listSaEvent(sa: IkeSa, body: Record<string, ViciInputValue>): ViciInput {
  return new Map<string, ViciInputValue>([[sa.ctx.config.name, body]]);
}

/**
 * A list-conn event: one connection with its local/remote auth rounds and
 * children, from the control socket's `list-conns` view plus the lifetimes of
 * the resolved configuration.
 */
export function listConnEvent(info: ConnInfo, conn: ResolvedConnection | undefined): ViciInput {
  const cfg = conn?.entry.config;
  const children = new Map<string, ViciInputValue>();
  for (const ch of info.children) {
    const c = cfg?.children.find((x) => x.name === ch.name);
    children.set(ch.name, {
      mode: ch.mode.toUpperCase(),
      rekey_time: c?.lifetimes.softSeconds ?? 0,
      rekey_bytes: c?.lifetimes.softBytes ?? 0,
      rekey_packets: c?.lifetimes.softPackets ?? 0,
      dpd_action: conn?.dpdActions[ch.name],
      close_action: conn?.closeActions[ch.name],
      'local-ts': ch.local_ts,
      'remote-ts': ch.remote_ts,
    });
  }
  for (const shunt of conn?.shunts ?? []) {
    children.set(shunt.name, {
      mode: shunt.mode.toUpperCase(),
      rekey_time: 0,
      rekey_bytes: 0,
      rekey_packets: 0,
      'local-ts': shunt.localTs.map((t) => t.text),
      'remote-ts': shunt.remoteTs.map((t) => t.text),
    });
  }
  const life = cfg?.ikeLifetimes;
  return new Map<string, ViciInputValue>([
    [
      info.name,
      {
        local_addrs: info.local_addrs,
        remote_addrs: info.remote_addrs,
        version: 'IKEv2',
        reauth_time: life?.reauthTime ?? 0,
        rekey_time: life?.rekeyTime ?? 0,
        unique: cfg?.unique === undefined ? 'UNIQUE_NO' : `UNIQUE_${cfg.unique.toUpperCase()}`,
        dpd_delay: cfg?.dpdDelay ?? 0,
        remote_port: info.remote_port,
        encap: yes(info.encap),
        // swanctl prints "<side> <class> authentication:"; strongSwan has no class for RFC 7619, so NULL shows as `null`.
        'local-1': { class: authClass(info.local_auth), id: info.local_id, ...(info.certificate === null ? {} : { certs: [info.certificate] }) },
        'remote-1': { class: authClass(info.remote_auth), id: info.remote_id },
        children,
      },
    ],
  ]);
}

function authClass(auth: AuthClassName): string {
  return auth === 'null' ? 'null' : 'public key';
}

/** A list-cert event: one X.509 certificate (DER), CA or end entity, and whether its private key is loaded. */
export function listCertEvent(cert: Certificate, hasPrivateKey: boolean): ViciInput {
  return { type: 'X509', flag: cert.basicConstraints?.cA ? 'CA' : 'NONE', has_privkey: yes(hasPrivateKey), data: cert.der };
}
