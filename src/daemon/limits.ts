/**
 * `daemon.limits` (docs/configuration.md) → the IKE SA manager's options
 * (src/ike/manager.ts) and the process-wide RFC 7383 reassembly limits
 * (src/ike/codec/fragments.ts). docs/notes/hardening.md explains the defaults.
 */
import type { LimitsConfig } from '../config/index.js';
import type { ManagerOptions } from '../ike/manager.js';

export type ManagerLimitOptions = Pick<
  ManagerOptions,
  | 'cookieThreshold'
  | 'halfOpenMax'
  | 'halfOpenPerPeer'
  | 'halfOpenTimeoutMs'
  | 'initPerPeerPerSecond'
  | 'authPerPeerPerSecond'
  | 'peersMax'
  | 'invalidSpiPerSecond'
  | 'reassembly'
>;

export function managerLimits(l: LimitsConfig): ManagerLimitOptions {
  return {
    cookieThreshold: l.cookie_threshold,
    halfOpenMax: l.half_open_max,
    halfOpenPerPeer: l.half_open_per_peer,
    halfOpenTimeoutMs: l.half_open_timeout * 1000,
    initPerPeerPerSecond: l.ike_init_rate,
    authPerPeerPerSecond: l.ike_auth_rate,
    peersMax: l.peers_max,
    invalidSpiPerSecond: l.invalid_spi_rate,
    reassembly: {
      maxPending: l.fragments_per_sa,
      maxBytes: l.fragment_bytes,
      timeoutMs: l.fragment_timeout * 1000,
      totalBytes: l.fragments_total_bytes,
    },
  };
}
