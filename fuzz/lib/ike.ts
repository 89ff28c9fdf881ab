/**
 * What both IKE targets do with decoded payloads: run the parsers the IKE
 * tasks apply to received payloads (proposals, traffic selectors, IDs,
 * certificates, CERTREQ hashes, AUTH data, SIGNATURE_HASH_ALGORITHMS) and
 * accept only their documented errors (PkiError, CryptoError).
 */
import { createHash, type KeyObject } from 'node:crypto';
import { decodeSignatureHashAlgorithms } from '../../src/crypto/rfc7427.js';
import { verifyAuth } from '../../src/crypto/signature.js';
import { CryptoError } from '../../src/crypto/types.js';
import {
  CertEncoding,
  describePayloads,
  idToString,
  NotifyType,
  notifyTypeName,
  PayloadType,
  selectorToString,
  type Payload,
} from '../../src/ike/codec/index.js';
import { defaultProposals, fromProposalSubstructures, selectProposal, type Proposal } from '../../src/ike/proposal/index.js';
import { ProtocolId } from '../../src/ike/transforms.js';
import { rangesFromPayload } from '../../src/ike/ts/payload.js';
import {
  certMatchesIdentity,
  certReqMatchesChain,
  identityFromIdPayload,
  identityToString,
  parseCertificate,
  PkiError,
  TrustStore,
  validateCertificate,
  type Certificate,
} from '../../src/pki/index.js';
import { certificatesDer } from './fixtures.js';
import { featureOf } from './target.js';

let ca: Certificate | undefined;
let store: TrustStore | undefined;
let moonKey: KeyObject | undefined;
let proposals: Proposal[] = [];

function setup(): void {
  if (ca) return;
  const certs = certificatesDer();
  ca = parseCertificate(certs[0]!.der, 'fixture CA');
  moonKey = parseCertificate(certs[1]!.der, 'fixture moon').publicKey;
  store = new TrustStore();
  store.addTrustAnchor(ca);
  proposals = [...defaultProposals(ProtocolId.IKE), ...defaultProposals(ProtocolId.ESP)];
}

/** The documented errors of the downstream parsers. */
function tolerated(what: string, f: () => string): string {
  try {
    return f();
  } catch (err) {
    if (err instanceof PkiError) return featureOf(`${what}-pki`, err.message);
    if (err instanceof CryptoError) return featureOf(`${what}-crypto`, err.message);
    throw err;
  }
}

const OCTETS = createHash('sha256').update('fuzz').digest();

/** Feature of what the payload parsers make of `payloads`; throws only on an undocumented error. */
export function exercisePayloads(payloads: readonly Payload[]): string {
  setup();
  const features: string[] = [describePayloads(payloads).slice(0, 120)];
  for (const p of payloads) {
    switch (p.type) {
      case PayloadType.SA: {
        const received = fromProposalSubstructures(p.proposals);
        const chosen = selectProposal(received, proposals);
        features.push(`sa:${received.map((r) => (r.unacceptable ? 'x' : r.transforms.length)).join('.')}:${chosen ? 'chosen' : 'none'}`);
        break;
      }
      case PayloadType.TSi:
      case PayloadType.TSr: {
        const r = rangesFromPayload(p.selectors);
        p.selectors.forEach((s) => selectorToString(s));
        features.push(`ts:${r.ranges.length}/${r.ignored.length}`);
        break;
      }
      case PayloadType.IDi:
      case PayloadType.IDr:
        idToString(p);
        features.push(
          tolerated('id', () => {
            const id = identityFromIdPayload({ idType: p.idType, data: p.data });
            identityToString(id);
            return `id:${id.type}`;
          }),
        );
        break;
      case PayloadType.CERT:
        if (p.encoding === CertEncoding.X509_SIGNATURE) {
          features.push(
            tolerated('cert', () => {
              const cert = parseCertificate(p.data, 'peer CERT payload');
              const v = validateCertificate(cert, store!);
              const m = certMatchesIdentity(cert, { type: 'fqdn', value: 'moon.ikev2.test' });
              return `cert:${v.ok}:${m.ok}`;
            }),
          );
        }
        break;
      case PayloadType.CERTREQ:
        features.push(`certreq:${certReqMatchesChain([ca!], p.caKeyHashes)}`);
        break;
      case PayloadType.AUTH:
        features.push(tolerated('auth', () => `auth:${p.method}:${verifyAuth({ method: p.method, publicKey: moonKey!, octets: OCTETS, authData: p.data })}`));
        break;
      case PayloadType.NOTIFY:
        notifyTypeName(p.notifyType);
        if (p.notifyType === NotifyType.SIGNATURE_HASH_ALGORITHMS) {
          features.push(tolerated('sha', () => `sha:${decodeSignatureHashAlgorithms(p.data).length}`));
        }
        break;
      default:
        break;
    }
  }
  return features.join('|');
}
