/**
 * Whether negotiated selectors allow transport mode (RFC 7296 §1.3.1,
 * RFC 4301 §4.1): a transport mode SA protects traffic between the two IKE
 * endpoints themselves, so every local range must be exactly our IKE
 * address and every remote range exactly the peer's (protocols and ports may
 * still be restricted). strongSwan enforces the same and falls back to
 * tunnel mode otherwise.
 *
 * With NAT in front of the peer (RFC 7296 §2.23.1), the peer's selectors
 * name its private address, which we cannot check against the outer address;
 * `remoteBehindNat` then only requires the remote ranges to be one single
 * host address.
 */
import { parseIp } from '../../util/ip.js';
import { type TsRange, formatRange } from './range.js';

export type TransportModeCheck = { allowed: true } | { allowed: false; reason: string };

export function transportModeAllowed(
  ts: { local: readonly TsRange[]; remote: readonly TsRange[] },
  localAddr: string,
  remoteAddr: string,
  options: { remoteBehindNat?: boolean } = {},
): TransportModeCheck {
  const local = parseIp(localAddr);
  const remote = parseIp(remoteAddr);
  if (local === undefined || remote === undefined) throw new TypeError(`'${localAddr}' / '${remoteAddr}' are not IP addresses`);
  if (ts.local.length === 0 || ts.remote.length === 0) return { allowed: false, reason: 'no traffic selectors' };

  const isHost = (r: TsRange, address?: Buffer): boolean => r.startAddress.equals(r.endAddress) && (address === undefined || r.startAddress.equals(address));

  for (const r of ts.local) {
    if (!isHost(r, local)) return { allowed: false, reason: `local selector ${formatRange(r)} is not our address ${localAddr}` };
  }
  if (options.remoteBehindNat === true) {
    const first = ts.remote[0]!;
    for (const r of ts.remote) {
      if (!isHost(r, first.startAddress)) {
        return { allowed: false, reason: `remote selector ${formatRange(r)} is not a single peer address` };
      }
    }
  } else {
    for (const r of ts.remote) {
      if (!isHost(r, remote)) return { allowed: false, reason: `remote selector ${formatRange(r)} is not the peer's address ${remoteAddr}` };
    }
  }
  return { allowed: true };
}
