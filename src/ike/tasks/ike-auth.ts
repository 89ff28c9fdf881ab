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
import {
  chooseSignatureAlgorithm,
  eddsaKeyType,
  signAuth,
  verifyAuth,
  SignatureAuthMethod,
  SignatureSchemeRefused,
  type SignAuthRequest,
  type SignedAuth,
} from '../../crypto/signature.js';
import { CryptoWorkerError } from '../../crypto/pool/types.js';
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
import { AuthMethod, CertEncoding, ExchangeType, NotifyType, PayloadType, notifyTypeName, isErrorNotify, type PayloadOf } from '../codec/index.js';
import { idPayload, notify } from '../codec/build.js';
import { signedOctets } from '../auth/signed-octets.js';
import { sharedKeyMic, sharedKeyMicMatches } from '../auth/shared-key-mic.js';
import type { AuthRefusal, IkeSaContext } from '../sa/context.js';
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

/** §2.21.2: the INFORMATIONAL that tells the responder its AUTH was not accepted, when `err` is that failure (sent once, unanswered). */
export function authFailedNotice(err: unknown, messageId: number): TaskMessage | undefined {
  if (!(err instanceof ExchangeFailure) || err.notify !== NotifyType.AUTHENTICATION_FAILED) return undefined;
  return { exchangeType: ExchangeType.INFORMATIONAL, messageId, payloads: [notify(NotifyType.AUTHENTICATION_FAILED)] };
}

export class IkeAuthTask extends BaseTask {
  readonly name = 'IKE_AUTH';
  /** Crypto off the main thread (sa.crypto not inline): our AUTH signed by a worker, or the error. */
  private presigned?: { octets: Buffer; signed?: SignedAuth; error?: unknown };
  /** Crypto off the main thread: the peer's AUTH checked by a worker, or the error. */
  private preverified?: { authData: Buffer; valid?: boolean; error?: unknown };

  constructor(private readonly sa: IkeSaContext) {
    super();
  }

  /** Our ID, CERT and AUTH payloads for the message we send. */
  private addOwn(msg: TaskMessage): void {
    const { sa } = this;
    const { config } = sa;
    const initiator = sa.originalInitiator;
    const ownId = identityToIdPayload(config.localId);
    const nullAuth = config.localAuth === 'null';
    msg.payloads.push(idPayload(initiator ? PayloadType.IDi : PayloadType.IDr, ownId));
    const sendCert = !nullAuth && (config.sendCert === 'always' || (config.sendCert === 'ifasked' && sa.peerCertReqs.length > 0));
    if (sendCert) {
      for (const cert of [config.certificate!, ...config.intermediates]) {
        msg.payloads.push({ type: PayloadType.CERT, encoding: CertEncoding.X509_SIGNATURE, data: cert.der });
      }
    }
    if (initiator) {
      if (sa.sendInitialContact) msg.payloads.push(notify(NotifyType.INITIAL_CONTACT));
      if (config.remoteId && config.remoteId.type !== 'null') msg.payloads.push(idPayload(PayloadType.IDr, identityToIdPayload(config.remoteId)));
    }
    const octets = this.signedOctetsOf(initiator, ownId);
    if (nullAuth) {
      msg.payloads.push({ type: PayloadType.AUTH, method: AuthMethod.NULL_AUTHENTICATION, data: this.nullAuthData(initiator, octets) });
      return;
    }
    const privateKey = config.privateKey;
    if (!privateKey) throw new ExchangeFailure(`${config.name}: local auth pubkey without a private key`, AUTH_FAILED);
    let signed;
    try {
      const request = this.signRequest(privateKey, octets);
      signed = this.takePresigned(octets) ?? signAuth(request);
    } catch (err) {
      if (err instanceof SignatureSchemeRefused) throw new ExchangeFailure(`${err.message}; our credentials are not at fault`, AUTH_FAILED);
      if (err instanceof CryptoError || err instanceof CryptoWorkerError) throw new ExchangeFailure(`cannot sign AUTH: ${err.message}`, AUTH_FAILED);
      throw err;
    }
    msg.payloads.push({ type: PayloadType.AUTH, method: signed.method, data: signed.authData });
  }

  /** What we sign with: RFC 7427 when the peer announced hashes, else the classic method of the key. */
  private signRequest(privateKey: KeyObject, octets: Buffer): SignAuthRequest {
    const peerHashes = this.sa.peerSignatureHashes;
    if (peerHashes.length === 0) return { method: classicMethod(privateKey), privateKey, octets };
    const algorithm = chooseSignatureAlgorithm({ key: privateKey, peerHashes });
    return { method: SignatureAuthMethod.DIGITAL_SIGNATURE, privateKey, octets, algorithm };
  }

  /** Crypto off the main thread: the signature prepareRequest / prepareRespond made; undefined inline or when none was made (signed here then). */
  private takePresigned(octets: Buffer): SignedAuth | undefined {
    const prepared = this.presigned;
    this.presigned = undefined;
    if (!prepared || !prepared.octets.equals(octets)) return undefined;
    if (prepared.error !== undefined) throw prepared.error;
    return prepared.signed!;
  }

  /** Crypto off the main thread: sign our AUTH in a worker, ahead of addOwn (which reports any error). */
  private prepareSign(): Promise<void> | undefined {
    const { sa } = this;
    const privateKey = sa.config.privateKey;
    if (sa.config.localAuth === 'null' || !privateKey || this.presigned) return undefined;
    const octets = this.signedOctetsOf(sa.originalInitiator, identityToIdPayload(sa.config.localId));
    let request: SignAuthRequest;
    try {
      request = this.signRequest(privateKey, octets);
    } catch {
      return undefined; // addOwn reports it
    }
    return sa.crypto.signAuth(request).then(
      (signed) => void (this.presigned = { octets, signed }),
      (error: unknown) => void (this.presigned = { octets, error }),
    );
  }

  /** Crypto off the main thread: check the peer's AUTH signature in a worker, ahead of verifyPeer (which does every other check first). */
  private prepareVerify(msg: TaskMessage): Promise<void> | undefined {
    const { sa } = this;
    const peerIsInitiator = !sa.originalInitiator;
    const idP = firstOfType(msg, peerIsInitiator ? PayloadType.IDi : PayloadType.IDr);
    const auth = firstOfType(msg, PayloadType.AUTH);
    const certPayload = payloadsOfType(msg, PayloadType.CERT).find((p) => p.encoding === CertEncoding.X509_SIGNATURE);
    if (!idP || !auth || auth.method === AuthMethod.NULL_AUTHENTICATION || !certPayload) return undefined;
    let publicKey: KeyObject;
    try {
      publicKey = parseCertificate(certPayload.data, 'peer CERT payload').publicKey;
    } catch {
      return undefined; // verifyPeer reports it
    }
    const authData = auth.data;
    return sa.crypto.verifyAuth({ method: auth.method, publicKey, octets: this.signedOctetsOf(peerIsInitiator, idP), authData }).then(
      (valid) => void (this.preverified = { authData, valid }),
      (error: unknown) => void (this.preverified = { authData, error }),
    );
  }

  /** Crypto off the main thread: the verdict prepareVerify got; undefined inline or when none was made (verified here then). */
  private takePreverified(authData: Buffer): boolean | undefined {
    const prepared = this.preverified;
    this.preverified = undefined;
    if (!prepared || !prepared.authData.equals(authData)) return undefined;
    if (prepared.error !== undefined) throw prepared.error;
    return prepared.valid === true;
  }

  prepareRequest(exchangeType: number): Promise<void> | undefined {
    if (exchangeType !== ExchangeType.IKE_AUTH || this.sa.crypto.inline) return undefined;
    return this.prepareSign();
  }

  prepareResponse(msg: TaskMessage): Promise<void> | undefined {
    if (msg.exchangeType !== ExchangeType.IKE_AUTH || this.sa.crypto.inline) return undefined;
    return this.prepareVerify(msg);
  }

  /**
   * Responder: the initiator's signature first; ours is signed only once the peer's verified
   * (or when the peer's AUTH is NULL Authentication's MIC, checked by verifyPeer before ours is sent).
   */
  prepareRespond(msg: TaskMessage): Promise<void> | undefined {
    if (msg.exchangeType !== ExchangeType.IKE_AUTH || this.sa.crypto.inline) return undefined;
    const verifying = this.prepareVerify(msg);
    if (!verifying) return firstOfType(msg, PayloadType.AUTH)?.method === AuthMethod.NULL_AUTHENTICATION ? this.prepareSign() : undefined;
    return verifying.then(() => (this.preverified?.valid === true ? this.prepareSign() : undefined));
  }

  /**
   * RFC 7619 §2.1: NULL Authentication's AUTH is the Shared Key MIC of §2.15 with
   * SK_pi (the original initiator's) or SK_pr (the responder's) as the secret.
   */
  private nullAuthData(byInitiator: boolean, octets: Buffer): Buffer {
    const keys = this.sa.keys!;
    return sharedKeyMic(keys.prf, byInitiator ? keys.skPi : keys.skPr, octets);
  }

  /** Refuse the peer's IKE_AUTH: counted, then AUTHENTICATION_FAILED with the reason. */
  private refuse(reason: string, kind: AuthRefusal = 'other'): never {
    this.sa.onAuthRefused(kind);
    throw new ExchangeFailure(reason, AUTH_FAILED);
  }

  /** Authenticate the peer from its ID, CERT and AUTH payloads; throws AUTHENTICATION_FAILED with one clear reason. */
  private verifyPeer(msg: TaskMessage): void {
    const { sa } = this;
    const { config } = sa;
    const peerIsInitiator = !sa.originalInitiator;
    const idP = firstOfType(msg, peerIsInitiator ? PayloadType.IDi : PayloadType.IDr);
    const auth = firstOfType(msg, PayloadType.AUTH);
    if (!idP || !auth) {
      sa.onAuthRefused('other');
      throw new ExchangeFailure(
        `peer's IKE_AUTH lacks ${idP ? 'AUTH' : peerIsInitiator ? 'IDi' : 'IDr'}`,
        peerIsInitiator ? NotifyType.INVALID_SYNTAX : AUTH_FAILED,
      );
    }
    let peerId: Identity;
    try {
      peerId = identityFromIdPayload({ idType: idP.idType, data: idP.data });
    } catch (err) {
      this.refuse(`peer ID unusable: ${(err as Error).message}`);
    }
    const shownId = identityToString(peerId);
    const remoteAuth = config.remoteAuth ?? 'pubkey';
    if (auth.method === AuthMethod.NULL_AUTHENTICATION) {
      if (remoteAuth !== 'null')
        this.refuse(
          `peer '${shownId}' offered NULL Authentication (RFC 7619), i.e. no proof of identity, but remote.auth is pubkey: it must authenticate with a certificate`,
          'null-auth',
        );
      this.verifyNullAuth(peerIsInitiator, idP, auth.data, peerId, shownId);
      return;
    }
    if (peerId.type === 'null') this.refuse(`peer sent ID_NULL with AUTH method ${auth.method}; RFC 7619 §3 allows ID_NULL only with NULL Authentication`);
    if (remoteAuth === 'null')
      this.refuse(
        `peer '${shownId}' authenticated with AUTH method ${auth.method}, but remote.auth is null: this connection expects NULL Authentication (RFC 7619) and has no trust anchors to verify a certificate`,
      );
    this.verifyCertificateAuth(msg, peerIsInitiator, idP, auth, peerId, shownId);
  }

  /** RFC 7619: the peer's AUTH must be the Shared Key MIC under its SK_p; its identity is taken as sent, proven by nothing. */
  private verifyNullAuth(peerIsInitiator: boolean, idP: PayloadOf<PayloadType.IDi>, authData: Buffer, peerId: Identity, shownId: string): void {
    const { sa } = this;
    const { config } = sa;
    if (config.remoteId && !sameIdentity(config.remoteId, peerId))
      this.refuse(`peer identity ${shownId} is not the configured remote id ${identityToString(config.remoteId)}`);
    const expected = this.nullAuthData(peerIsInitiator, this.signedOctetsOf(peerIsInitiator, idP));
    if (!sharedKeyMicMatches(expected, authData))
      this.refuse(
        `peer '${shownId}': NULL Authentication data does not verify (it was not computed over these IKE_SA_INIT messages and keys: a peer bug, or someone in the path changed them)`,
      );
    sa.peerId = peerId;
    sa.peerAuth = 'null';
    sa.log.log('info', `${sa.name}: peer '${shownId}' authenticated with NULL Authentication (RFC 7619): its identity is not proven`);
  }

  /** §2.15 with certificates: path validation, the ID against the certificate, the AUTH signature. */
  private verifyCertificateAuth(
    msg: TaskMessage,
    peerIsInitiator: boolean,
    idP: PayloadOf<PayloadType.IDi>,
    auth: PayloadOf<PayloadType.AUTH>,
    peerId: Identity,
    shownId: string,
  ): void {
    const { sa } = this;
    const { config } = sa;
    if (config.remoteId && !sameIdentity(config.remoteId, peerId)) {
      this.refuse(`peer identity ${shownId} is not the configured remote id ${identityToString(config.remoteId)}`);
    }
    const certs = this.peerCertificates(payloadsOfType(msg, PayloadType.CERT));
    const peerCert = certs[0];
    if (!peerCert) this.refuse(`peer ${shownId} sent no X.509 certificate (send_cert policy? we ${config.sendCertReq ? 'sent' : 'did not send'} a CERTREQ)`);
    const validation = validateCertificate(peerCert, config.trust, { intermediates: certs.slice(1), strictCrl: config.strictCrl });
    if (!validation.ok) {
      // A missing intermediate looks exactly like an unknown CA: say which it might be.
      const hint = validation.reason.startsWith('no trusted CA for issuer')
        ? ` (the peer sent ${certs.length - 1} CA certificate${certs.length === 2 ? '' : 's'} with its own; if that issuer is an intermediate CA, the peer did not send it and it is not in authorities.cacerts)`
        : '';
      this.refuse(validation.reason + hint);
    }
    for (const note of validation.notes) sa.log.log('info', `${sa.name}: ${note}`);
    const match = certMatchesIdentity(peerCert, peerId);
    if (!match.ok) this.refuse(match.reason);
    if (config.remoteIdPattern) {
      const admitted = identityPatternMatches(config.remoteIdPattern, peerId, peerCert, sa.remote.address);
      if (!admitted.ok) this.refuse(admitted.reason);
    }

    const octets = this.signedOctetsOf(peerIsInitiator, idP);
    let ok = false;
    try {
      ok = this.takePreverified(auth.data) ?? verifyAuth({ method: auth.method, publicKey: peerCert.publicKey, octets, authData: auth.data });
    } catch (err) {
      if (err instanceof CryptoError) this.refuse(`peer ${shownId}: AUTH method ${auth.method} unusable: ${err.message}`);
      if (err instanceof CryptoWorkerError) throw new ExchangeFailure(`cannot verify the AUTH of peer ${shownId}: ${err.message}`, AUTH_FAILED);
      throw err;
    }
    if (!ok) this.refuse(`peer ${shownId}: AUTH signature does not verify with its certificate`);
    sa.peerId = peerId;
    sa.peerCertificate = peerCert;
    sa.peerAuth = 'pubkey';
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
    if (config.localAuth === 'null')
      return ' (we authenticate with NULL Authentication, RFC 7619: a peer that does not implement it, or requires a certificate, refuses it)';
    if (config.sendCert === 'never') return ' (we send no certificate: send_cert is never)';
    if (!config.certificate) return '';
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
        this.refuse(`peer's CERT payload does not parse: ${(err as Error).message}`);
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
