/**
 * Manual (static) SAs and policies — `ip xfrm state add` + `ip xfrm policy
 * add` for tunsec's datapath: each `manual.sas.NAME` (or `tunsec sa add
 * NAME …`) becomes an inbound and an outbound ESP SA sharing one reqid, an
 * outbound `protect` policy with that SA active, and the inbound policy —
 * installed through the same IpsecBackend calls IKE uses, so the datapath's
 * route following (./datapath.ts) brings the selected traffic into the TUN
 * device. reqids come from MANUAL_REQID_BASE up, far above the configured
 * children's (1, 2, … in configuration order, reload adds above the highest).
 *
 * Keys are never logged nor returned by `list`.
 */
import type { ManualSaConfig } from '../config/index.js';
import type { PolicySpec, SaCounters, SaSpec, TrafficSelector } from '../esp/api.js';
import type { SecurityAssociationDatabase } from '../esp/sadb.js';
import { EncrId } from '../ike/transforms.js';
import { parseTrafficSelector } from '../ike/ts/syntax.js';
import { formatRanges, resolveTsConfig, toEspSelectors } from '../ike/ts/index.js';
import type { DaemonLogger } from './logger.js';
import type { ManualSaInfo, ManualSaListResult } from '../control/protocol.js';
import { spiHex } from '../util/format.js';

/** The first reqid of manual SAs. */
export const MANUAL_REQID_BASE = 0x10000;

const NO_LIFETIMES = { softSeconds: 0, hardSeconds: 0, softBytes: 0, hardBytes: 0, softPackets: 0, hardPackets: 0 };

interface Installed {
  config: ManualSaConfig;
  origin: 'config' | 'runtime';
  reqid: number;
  local: TrafficSelector[];
  remote: TrafficSelector[];
  localText: string;
  remoteText: string;
  installedAt: number;
}

const DYNAMIC = parseTrafficSelector('dynamic');
const dynamicTs = DYNAMIC.ok ? [DYNAMIC.value] : [];

const zero: SaCounters = { bytes: 0, packets: 0, replayDrops: 0, icvFailures: 0, badPadding: 0, policyDrops: 0, lastUsed: 0 };

export interface ManualSasOptions {
  sad: SecurityAssociationDatabase;
  log: DaemonLogger;
  /** Whether ESP-in-UDP can be sent from `address:port` (a bound NAT-T socket there). */
  udpAvailable: (address: string, port: number) => boolean;
  /** Resolves when the routes of the policies added or removed so far are in place (the datapath's route queue). */
  routesSettled?: () => Promise<void>;
}

export class ManualSas {
  private readonly installed = new Map<string, Installed>();
  private nextReqid = MANUAL_REQID_BASE;

  constructor(private readonly options: ManualSasOptions) {}

  /** After add() or delete(): resolves once traffic follows the new policies (their TUN routes are in or out). */
  settled(): Promise<void> {
    return this.options.routesSettled?.() ?? Promise.resolve();
  }

  get names(): string[] {
    return [...this.installed.keys()];
  }

  has(name: string): boolean {
    return this.installed.has(name);
  }

  /** Install one SA pair and its policies; throws an Error saying why not (nothing is left installed then). */
  add(sa: ManualSaConfig, origin: 'config' | 'runtime'): ManualSaInfo {
    const { sad, log } = this.options;
    if (this.installed.has(sa.name)) throw new Error(`manual SA '${sa.name}' exists already (tunsec sa del ${sa.name} first)`);
    if (sad.inboundSa(sa.spi_in)) throw new Error(`manual SA '${sa.name}': an inbound SA with SPI ${spiHex(sa.spi_in)} is installed already`);
    if (sad.querySa(sa.spi_out, 'out')) throw new Error(`manual SA '${sa.name}': an outbound SA with SPI ${spiHex(sa.spi_out)} is installed already`);
    if (sa.encap && !this.options.udpAvailable(sa.local_addr, sa.encap.local_port)) {
      throw new Error(
        `manual SA '${sa.name}': ESP-in-UDP needs a NAT-T socket on ${sa.local_addr}:${sa.encap.local_port}, and the daemon has none (local_port must be the daemon's NAT-T port; encap SAs in the configuration file bind their local_addr at start)`,
      );
    }
    let localRanges, remoteRanges;
    try {
      localRanges = resolveTsConfig(sa.local_ts.length > 0 ? sa.local_ts : dynamicTs, sa.local_addr);
      remoteRanges = resolveTsConfig(sa.remote_ts.length > 0 ? sa.remote_ts : dynamicTs, sa.remote_addr);
    } catch (err) {
      throw new Error(`manual SA '${sa.name}': traffic selectors: ${(err as Error).message}`);
    }
    const reqid = this.nextReqid++;
    const local = toEspSelectors(localRanges);
    const remote = toEspSelectors(remoteRanges);
    const common = {
      localAddress: sa.local_addr,
      remoteAddress: sa.remote_addr,
      mode: sa.mode,
      ...(sa.encap ? { encap: { localPort: sa.encap.local_port, remotePort: sa.encap.remote_port } } : {}),
      esn: sa.esn,
      lifetimes: NO_LIFETIMES,
      reqid,
      localSelectors: local,
      remoteSelectors: remote,
    };
    const aead = (hex: string) => ({ transformId: EncrId.AES_GCM_16, keyBits: sa.key_bits, keyMaterial: Buffer.from(hex, 'hex') });
    const inbound: SaSpec = { ...common, spi: sa.spi_in, direction: 'in', aead: aead(sa.key_in), replayWindow: sa.replay_window };
    const outbound: SaSpec = { ...common, spi: sa.spi_out, direction: 'out', aead: aead(sa.key_out), replayWindow: 0 };
    const policy = (direction: 'in' | 'out'): PolicySpec => ({
      reqid,
      direction,
      local,
      remote,
      action: 'protect',
      failureMode: sa.policy,
      priority: 100,
      mode: sa.mode,
      localAddress: sa.local_addr,
      remoteAddress: sa.remote_addr,
    });
    try {
      sad.addSa(inbound);
      sad.addSa(outbound);
      sad.addPolicy(policy('out'));
      sad.addPolicy(policy('in'));
      sad.setOutboundSa(reqid, sa.spi_out);
    } catch (err) {
      sad.deletePolicy(reqid, 'out');
      sad.deletePolicy(reqid, 'in');
      sad.deleteSa(sa.spi_in, 'in');
      sad.deleteSa(sa.spi_out, 'out');
      throw new Error(`manual SA '${sa.name}': ${(err as Error).message}`);
    } finally {
      inbound.aead.keyMaterial.fill(0);
      outbound.aead.keyMaterial.fill(0);
    }
    const entry: Installed = {
      config: sa,
      origin,
      reqid,
      local,
      remote,
      localText: formatRanges(localRanges),
      remoteText: formatRanges(remoteRanges),
      installedAt: Date.now(),
    };
    this.installed.set(sa.name, entry);
    log.log(
      'esp',
      'info',
      `manual SA ${sa.name}{${reqid}} installed (${origin}): SPIs ${spiHex(sa.spi_in)}_i ${spiHex(sa.spi_out)}_o, ${sa.local_addr} === ${sa.remote_addr}, ${sa.mode}${sa.encap ? ` in UDP ${sa.encap.local_port}/${sa.encap.remote_port}` : ''}, ${sa.esp_proposal}, TS ${entry.localText} === ${entry.remoteText}, ${sa.policy}`,
    );
    return this.info(entry);
  }

  /** Remove an SA pair and its policies (policies first: routes go, then the SAs); false when unknown. */
  delete(name: string, why = 'deleted'): boolean {
    const entry = this.installed.get(name);
    if (!entry) return false;
    const { sad, log } = this.options;
    this.installed.delete(name);
    sad.deletePolicy(entry.reqid, 'out');
    sad.deletePolicy(entry.reqid, 'in');
    sad.deleteSa(entry.config.spi_in, 'in');
    sad.deleteSa(entry.config.spi_out, 'out');
    log.log('esp', 'info', `manual SA ${name}{${entry.reqid}} removed (${why})`);
    return true;
  }

  deleteAll(why: string): void {
    for (const name of [...this.installed.keys()]) this.delete(name, why);
  }

  list(): ManualSaListResult {
    return { sas: [...this.installed.values()].map((e) => this.info(e)) };
  }

  private info(e: Installed): ManualSaInfo {
    const { sad } = this.options;
    const sa = e.config;
    const cin = sad.querySa(sa.spi_in, 'in');
    const cout = sad.querySa(sa.spi_out, 'out');
    const i = cin ?? zero;
    const o = cout ?? zero;
    return {
      name: sa.name,
      origin: e.origin,
      reqid: e.reqid,
      mode: sa.mode,
      encap: sa.encap ? { ...sa.encap } : null,
      proposal: sa.esp_proposal,
      local_addr: sa.local_addr,
      remote_addr: sa.remote_addr,
      spi_in: spiHex(sa.spi_in),
      spi_out: spiHex(sa.spi_out),
      installed_in: cin !== undefined,
      installed_out: cout !== undefined,
      local_ts: e.localText,
      remote_ts: e.remoteText,
      policy: sa.policy,
      installed: new Date(e.installedAt).toISOString(),
      bytes_in: i.bytes,
      packets_in: i.packets,
      bytes_out: o.bytes,
      packets_out: o.packets,
      replay_window: sa.replay_window,
      replay_drops: i.replayDrops,
      icv_failures: i.icvFailures,
      bad_padding: i.badPadding,
      policy_drops: i.policyDrops,
    };
  }
}
