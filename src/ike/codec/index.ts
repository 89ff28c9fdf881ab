/**
 * The IKEv2 message codec (RFC 7296 §3, RFC 7383, RFC 5282). One module per
 * payload family under ./payloads/; this file is the public surface.
 */
export { IkeParseError, IkeIntegrityError, IkeEncodeError } from './errors.js';
export { NotifyType, NOTIFY_TYPE_REFERENCES, FIRST_STATUS_NOTIFY, isErrorNotify, isKnownNotify, notifyTypeName, notifyTypeFromName } from './notify.js';
export { PayloadType, payloadTypeName, isKnownPayloadType } from './payload-type.js';
export type { DecodeContext, GenericHeaderFields } from './context.js';
export {
  ExchangeType,
  IKE_HEADER_LENGTH,
  IKE_MAJOR_VERSION,
  FLAG_INITIATOR,
  FLAG_RESPONSE,
  FLAG_VERSION,
  type IkeHeader,
  type DecodedHeader,
  decodeHeader,
  encodeHeader,
  exchangeTypeName,
} from './header.js';
export { type Payload, type PayloadOf, type UnknownPayload, payloadNumber, encodePayloadChain, decodePayloadChain } from './chain.js';
export {
  type IkeMessage,
  type EncryptOptions,
  type EncodeOptions,
  type DecryptedSk,
  decodeMessage,
  encodeMessage,
  decryptSk,
  decodeEncryptedMessage,
  payloadsOf,
  describeMessage,
  describePayloads,
} from './message.js';
export {
  type FragmentOptions,
  type ReassemblyLimits,
  type ReassemblyResult,
  type ReassemblyRejectReason,
  type ReassemblyCounters,
  DEFAULT_REASSEMBLY_LIMITS,
  FragmentReassembler,
  fragmentMessage,
} from './fragments.js';
export { dnFromString, dnToString } from './dn.js';

export type { SaPayload, ProposalSubstructure, TransformSubstructure, TransformAttribute } from './payloads/sa.js';
export type { KePayload } from './payloads/ke.js';
export {
  IdType,
  type IdPayload,
  type Identification,
  encodeIdBody,
  idTypeName,
  idToString,
  idFromString,
  ipId,
  fqdnId,
  rfc822Id,
  dnId,
  keyId,
  nullId,
} from './payloads/id.js';
export { CertEncoding, SHA1_LENGTH, type CertPayload, type CertReqPayload, parseHashAndUrl, hashAndUrlData } from './payloads/cert.js';
export { AuthMethod, type AuthPayload } from './payloads/auth.js';
export { NONCE_MIN_LENGTH, NONCE_MAX_LENGTH, type NoncePayload } from './payloads/nonce.js';
export type { NotifyPayload } from './payloads/notify.js';
export { type DeletePayload, deleteSpiSize } from './payloads/delete.js';
export type { VendorIdPayload } from './payloads/vendor.js';
export { TsType, type TsPayload, type TrafficSelector, type AddressRangeSelector, type UnknownSelector, selectorToString } from './payloads/ts.js';
export type { EncryptedPayload, EncryptedFragmentPayload } from './payloads/encrypted.js';
export { CfgType, ConfigAttributeType, type CpPayload, type ConfigAttribute } from './payloads/cp.js';
export type { EapPayload } from './payloads/eap.js';
export { notify, nonce, idPayload, deletePayload, addressRange, prefixSelector, tsPayload, type SelectorOptions } from './build.js';
