/**
 * IKE_AUTH authentication (RFC 7296 §1.2, §2.15, §3.5, §3.6, §3.8) with
 * certificates: IDi/IDr, CERT (our certificate and intermediates, by the
 * send_cert policy), AUTH by RFC 7427 Digital Signature when the peer announced
 * SIGNATURE_HASH_ALGORITHMS, else the classic method for the key type
 * (RSA method 1, ECDSA methods 9/10/11 of RFC 4754; Ed25519 / Ed448 have
 * none, RFC 8420 needs method 14 with Identity), INITIAL_CONTACT; and the
 * peer's side: path validation to a trust anchor (with CRLs), the peer ID
 * matched against the certificate, the AUTH signature verified.
 */
import type { KeyObject } from 'node:crypto';
import { CryptoError } from '../../crypto/types.js';
import { parseDigitalSignatureAuthData } from '../../crypto/rfc7427.js';
import { chooseSignatureAlgorithm, eddsaKeyType, signAuth, verifyAuth, SignatureAuthMethod, SignatureSchemeRefused } from '../../crypto/signature.js';
import {
  certMatchesIdentity,
  identityPatternMatches,
  identityFromIdPayload,
  identityToIdPayload,
  identityToString,
  namesMatch,
  parseCertificate,
  validateCertificate,
  type Certificate,
  type Identity,
} from '../../pki/index.js';
import { CertEncoding, ExchangeType, NotifyType, PayloadType, notifyTypeName, isErrorNotify, type PayloadOf } from '../codec/index.js';
import { idPayload, notify } from '../codec/build.js';
import { signedOctets } from '../auth/signed-octets.js';
import type { IkeSaContext } from '../sa/context.js';
import { BaseTask, ExchangeFailure, findNotify, firstOfType, notifiesOf, payloadsOfType, type TaskMessage, type TaskStatus } from './task.js';

const AUTH_FAILED = NotifyType.AUTHENTICATION_FAILED;

export function sameIdentity(a: Identity, b: Identity): boolean {
  if (a.type !== b.type) return false;
  if (a.type === 'dn' && b.type === 'dn') return a.der.equals(b.der);
  return a.type === 'fqdn' || a.type === 'rfc822' ? a.value.toLowerCase() === b.value.toLowerCase() : a.value === b.value;
}

/** Classic signature method for a key (RFC 7296 §3.8, RFC 4754). */
function classicMethod(key: KeyObject): SignatureAuthMethod {
  if (key.asymmetricKeyType === 'rsa') return SignatureAuthMethod.RSA_DIGITAL_SIGNATURE;
  const ed = eddsaKeyType(key);
  if (ed) {
    throw new ExchangeFailure(
      `the peer refuses our signature scheme: it announced no SIGNATURE_HASH_ALGORITHMS (RFC 7427), which our ${ed === 'ed25519' ? 'Ed25519' : 'Ed448'} key needs (RFC 8420 signs only with AUTH method 14 and hash Identity); our credentials are not at fault`,
      AUTH_FAILED,
    );
  }
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (curve === 'prime256v1') return SignatureAuthMethod.ECDSA_SHA256_P256;
  if (curve === 'secp384r1') return SignatureAuthMethod.ECDSA_SHA384_P384;
  if (curve === 'secp521r1') return SignatureAuthMethod.ECDSA_SHA512_P521;
  throw new ExchangeFailure(`no classic AUTH method for a ${key.asymmetricKeyType} key on ${curve ?? 'no curve'}; the peer must support RFC 7427`, AUTH_FAILED);
}

export class IkeAuthTask extends BaseTask {
  readonly name = 'IKE_AUTH';

  constructor(private readonly sa: IkeSaContext) {
    super();
  }

  /** Our ID, CERT and AUTH payloads for the message we send. */
  private addOwn(msg: TaskMessage): void {
    const { sa } = this;
    const { config } = sa;
    const initiator = sa.originalInitiator;
    const ownId = identityToIdPayload(config.localId);
    msg.payloads.push(idPayload(initiator ? PayloadType.IDi : PayloadType.IDr, ownId));
    const sendCert = config.sendCert === 'always' || (config.sendCert === 'ifasked' && sa.peerCertReqs.length > 0);
    if (sendCert) {
      for (const cert of [config.certificate, ...config.intermediates]) {
        msg.payloads.push({ type: PayloadType.CERT, encoding: CertEncoding.X509_SIGNATURE, data: cert.der });
      }
    }
    if (initiator) {
      if (sa.sendInitialContact) msg.payloads.push(notify(NotifyType.INITIAL_CONTACT));
      if (config.remoteId) msg.payloads.push(idPayload(PayloadType.IDr, identityToIdPayload(config.remoteId)));
    }
    const octets = this.signedOctetsOf(initiator, ownId);
    let signed;
    try {
      if (sa.peerSignatureHashes.length > 0) {
        const algorithm = chooseSignatureAlgorithm({ key: config.privateKey, peerHashes: sa.peerSignatureHashes });
        signed = signAuth({ method: SignatureAuthMethod.DIGITAL_SIGNATURE, privateKey: config.privateKey, octets, algorithm });
      } else {
        signed = signAuth({ method: classicMethod(config.privateKey), privateKey: config.privateKey, octets });
      }
    } catch (err) {
      if (err instanceof SignatureSchemeRefused) throw new ExchangeFailure(`${err.message}; our credentials are not at fault`, AUTH_FAILED);
      if (err instanceof CryptoError) throw new ExchangeFailure(`cannot sign AUTH: ${err.message}`, AUTH_FAILED);
      throw err;
    }
    msg.payloads.push({ type: PayloadType.AUTH, method: signed.method, data: signed.authData });
  }

  /** Authenticate the peer from its ID, CERT and AUTH payloads; throws AUTHENTICATION_FAILED with one clear reason. */
  private verifyPeer(msg: TaskMessage): void {
    const { sa } = this;
    const { config } = sa;
    const peerIsInitiator = !sa.originalInitiator;
    const idP = firstOfType(msg, peerIsInitiator ? PayloadType.IDi : PayloadType.IDr);
    const auth = firstOfType(msg, PayloadType.AUTH);
    if (!idP || !auth)
      throw new ExchangeFailure(
        `peer's IKE_AUTH lacks ${idP ? 'AUTH' : peerIsInitiator ? 'IDi' : 'IDr'}`,
        peerIsInitiator ? NotifyType.INVALID_SYNTAX : AUTH_FAILED,
      );
    let peerId: Identity;
    try {
      peerId = identityFromIdPayload({ idType: idP.idType, data: idP.data });
    } catch (err) {
      throw new ExchangeFailure(`peer ID unusable: ${(err as Error).message}`, AUTH_FAILED);
    }
    const shownId = identityToString(peerId);
    if (config.remoteId && !sameIdentity(config.remoteId, peerId)) {
      throw new ExchangeFailure(`peer identity ${shownId} is not the configured remote id ${identityToString(config.remoteId)}`, AUTH_FAILED);
    }
    const certs = this.peerCertificates(payloadsOfType(msg, PayloadType.CERT));
    const peerCert = certs[0];
    if (!peerCert)
      throw new ExchangeFailure(
        `peer ${shownId} sent no X.509 certificate (send_cert policy? we ${config.sendCertReq ? 'sent' : 'did not send'} a CERTREQ)`,
        AUTH_FAILED,
      );
    const validation = validateCertificate(peerCert, config.trust, { intermediates: certs.slice(1), strictCrl: config.strictCrl });
    if (!validation.ok) {
      // A missing intermediate looks exactly like an unknown CA: say which it might be.
      const hint = validation.reason.startsWith('no trusted CA for issuer')
        ? ` (the peer sent ${certs.length - 1} CA certificate${certs.length === 2 ? '' : 's'} with its own; if that issuer is an intermediate CA, the peer did not send it and it is not in authorities.cacerts)`
        : '';
      throw new ExchangeFailure(validation.reason + hint, AUTH_FAILED);
    }
    for (const note of validation.notes) sa.log.log('info', `${sa.name}: ${note}`);
    const match = certMatchesIdentity(peerCert, peerId);
    if (!match.ok) throw new ExchangeFailure(match.reason, AUTH_FAILED);
    if (config.remoteIdPattern) {
      const admitted = identityPatternMatches(config.remoteIdPattern, peerId, peerCert, sa.remote.address);
      if (!admitted.ok) throw new ExchangeFailure(admitted.reason, AUTH_FAILED);
    }

    const octets = this.signedOctetsOf(peerIsInitiator, idP);
    let ok: boolean;
    try {
      ok = verifyAuth({ method: auth.method, publicKey: peerCert.publicKey, octets, authData: auth.data });
    } catch (err) {
      if (err instanceof CryptoError) throw new ExchangeFailure(`peer ${shownId}: AUTH method ${auth.method} unusable: ${err.message}`, AUTH_FAILED);
      throw err;
    }
    if (!ok) throw new ExchangeFailure(`peer ${shownId}: AUTH signature does not verify with its certificate`, AUTH_FAILED);
    sa.peerId = peerId;
    sa.peerCertificate = peerCert;
    const scheme =
      auth.method === SignatureAuthMethod.DIGITAL_SIGNATURE
        ? `RFC 7427 signature (${parseDigitalSignatureAuthData(auth.data).algorithm.name})`
        : `AUTH method ${auth.method}`;
    sa.log.log('info', `${sa.name}: authentication of '${shownId}' with ${scheme} successful`);
  }

  /**
   * Why a peer that refuses our AUTH might not reach its trust anchor: the
   * chain we sent stops below a self-signed root, so a peer that trusts only
   * the root needs the intermediate we did not send.
   */
  private chainHint(): string {
    const { config } = this.sa;
    if (config.sendCert === 'never') return ' (we send no certificate: send_cert is never)';
    const sent = [config.certificate, ...config.intermediates];
    const top = sent[sent.length - 1]!;
    if (namesMatch(top.subject, top.issuer)) return '';
    return ` (our chain as sent ends at '${top.subject.text}', issued by '${top.issuer.text}': if the peer trusts only a root CA, an intermediate CA certificate may be missing; list it under authorities.cacerts or local.certs)`;
  }

  /** §2.15: what the original initiator (`byInitiator`) or responder signs, with its ID payload body. */
  private signedOctetsOf(byInitiator: boolean, id: Parameters<typeof signedOctets>[0]['id']): Buffer {
    const { sa } = this;
    const keys = sa.keys!;
    return signedOctets({
      realMessage: byInitiator ? sa.initRequest! : sa.initResponse!,
      peerNonce: byInitiator ? sa.Nr! : sa.Ni!,
      prf: keys.prf,
      skP: byInitiator ? keys.skPi : keys.skPr,
      id,
    });
  }

  private peerCertificates(payloads: PayloadOf<PayloadType.CERT>[]): Certificate[] {
    const certs: Certificate[] = [];
    for (const p of payloads) {
      if (p.encoding !== CertEncoding.X509_SIGNATURE) continue;
      try {
        certs.push(parseCertificate(p.data, 'peer CERT payload'));
      } catch (err) {
        throw new ExchangeFailure(`peer's CERT payload does not parse: ${(err as Error).message}`, AUTH_FAILED);
      }
    }
    return certs;
  }

  override buildRequest(msg: TaskMessage): void {
    if (msg.exchangeType === ExchangeType.IKE_AUTH) this.addOwn(msg);
  }

  override processResponse(msg: TaskMessage): TaskStatus {
    if (msg.exchangeType !== ExchangeType.IKE_AUTH) return 'need_more';
    const failed = findNotify(msg, AUTH_FAILED);
    if (failed) throw new ExchangeFailure(`peer answered AUTHENTICATION_FAILED: it did not accept our credentials${this.chainHint()}`, undefined);
    const error = notifiesOf(msg).find((n) => isErrorNotify(n.notifyType) && n.notifyType < 16384 && !firstOfType(msg, PayloadType.AUTH));
    if (error) throw new ExchangeFailure(`IKE_AUTH failed: peer answered ${notifyTypeName(error.notifyType)}`, undefined);
    this.verifyPeer(msg);
    return 'done';
  }

  override processRequest(msg: TaskMessage): void {
    if (msg.exchangeType !== ExchangeType.IKE_AUTH) return;
    this.verifyPeer(msg);
    this.sa.peerInitialContact = findNotify(msg, NotifyType.INITIAL_CONTACT) !== undefined;
  }

  override buildResponse(msg: TaskMessage): TaskStatus {
    if (msg.exchangeType !== ExchangeType.IKE_AUTH) return 'need_more';
    this.addOwn(msg);
    return 'done';
  }
}
