/**
 * Certificate requests (RFC 7296 §3.7): CERTREQ with the SHA-1 hashes of our
 * trust anchors' public keys — in the IKE_SA_INIT response (responder) and in
 * the IKE_AUTH request (initiator), as strongSwan does — and remembering which
 * CAs the peer asked for (send_cert = ifasked).
 */
import { CertEncoding, ExchangeType, PayloadType } from '../codec/index.js';
import type { IkeSaContext } from '../sa/context.js';
import { BaseTask, payloadsOfType, type TaskMessage, type TaskStatus } from './task.js';

export class IkeCertPreTask extends BaseTask {
  readonly name = 'IKE_CERT_PRE';

  constructor(private readonly sa: IkeSaContext) {
    super();
  }

  private addCertReq(msg: TaskMessage): void {
    // A peer with NULL Authentication (RFC 7619) has no certificate to send.
    if (!this.sa.config.sendCertReq || this.sa.config.remoteAuth === 'null') return;
    const hashes = this.sa.config.trust.certificateAuthorityHashes();
    if (hashes.length > 0) msg.payloads.push({ type: PayloadType.CERTREQ, encoding: CertEncoding.X509_SIGNATURE, caKeyHashes: hashes });
  }

  private collect(msg: TaskMessage): void {
    for (const req of payloadsOfType(msg, PayloadType.CERTREQ)) {
      if (req.encoding === CertEncoding.X509_SIGNATURE) this.sa.peerCertReqs.push(...req.caKeyHashes);
      // An empty CERTREQ still means "send your certificate" (§3.7 allows it).
      if (req.caKeyHashes.length === 0) this.sa.peerCertReqs.push(Buffer.alloc(0));
    }
  }

  override buildRequest(msg: TaskMessage): void {
    if (msg.exchangeType === ExchangeType.IKE_AUTH) this.addCertReq(msg);
  }

  override processResponse(msg: TaskMessage): TaskStatus {
    if (msg.exchangeType === ExchangeType.IKE_SA_INIT) {
      this.collect(msg);
      return 'need_more';
    }
    return 'done';
  }

  override processRequest(msg: TaskMessage): void {
    if (msg.exchangeType === ExchangeType.IKE_AUTH) this.collect(msg);
  }

  override buildResponse(msg: TaskMessage): TaskStatus {
    if (msg.exchangeType === ExchangeType.IKE_SA_INIT) {
      this.addCertReq(msg);
      return 'need_more';
    }
    return 'done';
  }
}
