/**
 * NAT detection (RFC 7296 §2.23): NAT_DETECTION_SOURCE_IP and
 * NAT_DETECTION_DESTINATION_IP in IKE_SA_INIT, each SHA-1(SPIi | SPIr | IP | Port).
 * A destination hash that does not match our address means we are behind a
 * NAT; a source hash that matches none of the peer's addresses means the peer
 * is. Either way ESP is UDP-encapsulated (RFC 3948) and IKE floats to 4500.
 * `encap: yes` sends a random source hash so the peer sees a NAT too (what
 * strongSwan does to force encapsulation).
 */
import { createHash, randomBytes } from 'node:crypto';
import { ExchangeType, NotifyType } from '../codec/index.js';
import { parseIp } from '../../util/ip.js';
import { notify } from '../codec/build.js';
import type { Endpoint } from '../net/udp.js';
import type { IkeSaContext } from '../sa/context.js';
import { BaseTask, notifiesOf, type TaskMessage, type TaskStatus } from './task.js';

export function natdHash(spiI: Buffer, spiR: Buffer, ep: Endpoint): Buffer {
  const ip = parseIp(ep.address);
  if (!ip) throw new Error(`NAT-D: "${ep.address}" is not an IP address`);
  const port = Buffer.alloc(2);
  port.writeUInt16BE(ep.port);
  return createHash('sha1').update(spiI).update(spiR).update(ip).update(port).digest();
}

/** §2.23: with a NAT detected (after IKE_SA_INIT), IKE moves to the NAT-T port from IKE_AUTH on (and ESP is UDP-encapsulated). */
export function floatToNattPort(ctx: IkeSaContext, remote: Endpoint, nattPort: number): void {
  if (!ctx.udpEncapsulation || ctx.local.port === nattPort) return;
  ctx.local = { address: ctx.local.address, port: nattPort };
  ctx.remote = { address: remote.address, port: nattPort };
}

export class IkeNatdTask extends BaseTask {
  readonly name = 'IKE_NATD';

  constructor(private readonly sa: IkeSaContext) {
    super();
  }

  private add(msg: TaskMessage): void {
    const { sa } = this;
    const source = sa.config.forceEncap ? randomBytes(20) : natdHash(sa.spiI, sa.spiR, sa.local);
    msg.payloads.push(
      notify(NotifyType.NAT_DETECTION_SOURCE_IP, { data: source }),
      notify(NotifyType.NAT_DETECTION_DESTINATION_IP, { data: natdHash(sa.spiI, sa.spiR, sa.remote) }),
    );
  }

  /** `spiR` is what the peer used when hashing: zero in the IKE_SA_INIT request (§2.23). */
  private check(msg: TaskMessage, spiR: Buffer): void {
    const { sa } = this;
    const sources = notifiesOf(msg).filter((n) => n.notifyType === NotifyType.NAT_DETECTION_SOURCE_IP);
    const dest = notifiesOf(msg).find((n) => n.notifyType === NotifyType.NAT_DETECTION_DESTINATION_IP);
    if (sources.length === 0 || !dest) return; // peer does not do NAT-T detection (forceEncap still applies)
    const expectedSource = natdHash(sa.spiI, spiR, sa.remote);
    sa.natRemote = !sources.some((s) => s.data.equals(expectedSource));
    sa.natLocal = !dest.data.equals(natdHash(sa.spiI, spiR, sa.local));
    if (sa.natRemote) sa.log.log('info', `${sa.name}: remote host is behind NAT (or forces UDP encapsulation)`);
    if (sa.natLocal) sa.log.log('info', `${sa.name}: local host is behind NAT, sending keepalives`);
  }

  override buildRequest(msg: TaskMessage): void {
    if (msg.exchangeType === ExchangeType.IKE_SA_INIT) this.add(msg);
  }

  override processResponse(msg: TaskMessage): TaskStatus {
    if (msg.exchangeType !== ExchangeType.IKE_SA_INIT) return 'need_more';
    this.check(msg, this.sa.spiR);
    return 'done';
  }

  override processRequest(msg: TaskMessage): void {
    if (msg.exchangeType === ExchangeType.IKE_SA_INIT) this.check(msg, Buffer.alloc(8));
  }

  override buildResponse(msg: TaskMessage): TaskStatus {
    if (msg.exchangeType !== ExchangeType.IKE_SA_INIT) return 'need_more';
    this.add(msg);
    return 'done';
  }
}
