/**
 * Notify Message Types (RFC 7296 §3.10.1 and the IANA "IKEv2 Notify Message
 * Error Types" / "Status Types" registries), names and numbers both ways.
 *
 * Types 0–16383 report errors, 16384–65535 carry status. An unrecognized
 * type still decodes (it is only a number in the Notify payload); what to do
 * with it is the exchange's business: an unknown *error* type in a response
 * means the request failed, unknown error types in requests and unknown
 * status types anywhere are ignored (§3.10.1).
 */

export enum NotifyType {
  // ---- Error types (RFC 7296 unless noted) ----
  UNSUPPORTED_CRITICAL_PAYLOAD = 1,
  INVALID_IKE_SPI = 4,
  INVALID_MAJOR_VERSION = 5,
  INVALID_SYNTAX = 7,
  INVALID_MESSAGE_ID = 9,
  INVALID_SPI = 11,
  NO_PROPOSAL_CHOSEN = 14,
  INVALID_KE_PAYLOAD = 17,
  AUTHENTICATION_FAILED = 24,
  SINGLE_PAIR_REQUIRED = 34,
  NO_ADDITIONAL_SAS = 35,
  INTERNAL_ADDRESS_FAILURE = 36,
  FAILED_CP_REQUIRED = 37,
  TS_UNACCEPTABLE = 38,
  INVALID_SELECTORS = 39,
  UNACCEPTABLE_ADDRESSES = 40,
  UNEXPECTED_NAT_DETECTED = 41,
  USE_ASSIGNED_HoA = 42,
  TEMPORARY_FAILURE = 43,
  CHILD_SA_NOT_FOUND = 44,
  INVALID_GROUP_ID = 45,
  AUTHORIZATION_FAILED = 46,
  STATE_NOT_FOUND = 47,

  // ---- Status types ----
  INITIAL_CONTACT = 16384,
  SET_WINDOW_SIZE = 16385,
  ADDITIONAL_TS_POSSIBLE = 16386,
  IPCOMP_SUPPORTED = 16387,
  NAT_DETECTION_SOURCE_IP = 16388,
  NAT_DETECTION_DESTINATION_IP = 16389,
  COOKIE = 16390,
  USE_TRANSPORT_MODE = 16391,
  HTTP_CERT_LOOKUP_SUPPORTED = 16392,
  REKEY_SA = 16393,
  ESP_TFC_PADDING_NOT_SUPPORTED = 16394,
  NON_FIRST_FRAGMENTS_ALSO = 16395,
  MOBIKE_SUPPORTED = 16396,
  ADDITIONAL_IP4_ADDRESS = 16397,
  ADDITIONAL_IP6_ADDRESS = 16398,
  NO_ADDITIONAL_ADDRESSES = 16399,
  UPDATE_SA_ADDRESSES = 16400,
  COOKIE2 = 16401,
  NO_NATS_ALLOWED = 16402,
  AUTH_LIFETIME = 16403,
  MULTIPLE_AUTH_SUPPORTED = 16404,
  ANOTHER_AUTH_FOLLOWS = 16405,
  REDIRECT_SUPPORTED = 16406,
  REDIRECT = 16407,
  REDIRECTED_FROM = 16408,
  TICKET_LT_OPAQUE = 16409,
  TICKET_REQUEST = 16410,
  TICKET_ACK = 16411,
  TICKET_NACK = 16412,
  TICKET_OPAQUE = 16413,
  LINK_ID = 16414,
  USE_WESP_MODE = 16415,
  ROHC_SUPPORTED = 16416,
  EAP_ONLY_AUTHENTICATION = 16417,
  CHILDLESS_IKEV2_SUPPORTED = 16418,
  QUICK_CRASH_DETECTION = 16419,
  IKEV2_MESSAGE_ID_SYNC_SUPPORTED = 16420,
  IPSEC_REPLAY_COUNTER_SYNC_SUPPORTED = 16421,
  IKEV2_MESSAGE_ID_SYNC = 16422,
  IPSEC_REPLAY_COUNTER_SYNC = 16423,
  SECURE_PASSWORD_METHODS = 16424,
  PSK_PERSIST = 16425,
  PSK_CONFIRM = 16426,
  ERX_SUPPORTED = 16427,
  IFOM_CAPABILITY = 16428,
  GROUP_SENDER = 16429,
  IKEV2_FRAGMENTATION_SUPPORTED = 16430,
  SIGNATURE_HASH_ALGORITHMS = 16431,
  CLONE_IKE_SA_SUPPORTED = 16432,
  CLONE_IKE_SA = 16433,
  PUZZLE = 16434,
  USE_PPK = 16435,
  PPK_IDENTITY = 16436,
  NO_PPK_AUTH = 16437,
  INTERMEDIATE_EXCHANGE_SUPPORTED = 16438,
  IP4_ALLOWED = 16439,
  IP6_ALLOWED = 16440,
  ADDITIONAL_KEY_EXCHANGE = 16441,
  USE_AGGFRAG = 16442,
  SUPPORTED_AUTH_METHODS = 16443,
  SA_RESOURCE_INFO = 16444,
  USE_PPK_INT = 16445,
  PPK_IDENTITY_KEY = 16446,
}

/**
 * Where each type is defined, as the IANA registry cites it. Typed as a full
 * Record so that adding a member to the enum without a reference fails to compile.
 */
export const NOTIFY_TYPE_REFERENCES: Readonly<Record<NotifyType, string>> = {
  [NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD]: 'RFC 7296',
  [NotifyType.INVALID_IKE_SPI]: 'RFC 7296',
  [NotifyType.INVALID_MAJOR_VERSION]: 'RFC 7296',
  [NotifyType.INVALID_SYNTAX]: 'RFC 7296',
  [NotifyType.INVALID_MESSAGE_ID]: 'RFC 7296',
  [NotifyType.INVALID_SPI]: 'RFC 7296',
  [NotifyType.NO_PROPOSAL_CHOSEN]: 'RFC 7296',
  [NotifyType.INVALID_KE_PAYLOAD]: 'RFC 7296',
  [NotifyType.AUTHENTICATION_FAILED]: 'RFC 7296',
  [NotifyType.SINGLE_PAIR_REQUIRED]: 'RFC 7296',
  [NotifyType.NO_ADDITIONAL_SAS]: 'RFC 7296',
  [NotifyType.INTERNAL_ADDRESS_FAILURE]: 'RFC 7296',
  [NotifyType.FAILED_CP_REQUIRED]: 'RFC 7296',
  [NotifyType.TS_UNACCEPTABLE]: 'RFC 7296',
  [NotifyType.INVALID_SELECTORS]: 'RFC 7296',
  [NotifyType.UNACCEPTABLE_ADDRESSES]: 'RFC 4555',
  [NotifyType.UNEXPECTED_NAT_DETECTED]: 'RFC 4555',
  [NotifyType.USE_ASSIGNED_HoA]: 'RFC 5026',
  [NotifyType.TEMPORARY_FAILURE]: 'RFC 7296',
  [NotifyType.CHILD_SA_NOT_FOUND]: 'RFC 7296',
  [NotifyType.INVALID_GROUP_ID]: 'G-IKEv2 (draft-ietf-ipsecme-g-ikev2)',
  [NotifyType.AUTHORIZATION_FAILED]: 'G-IKEv2 (draft-ietf-ipsecme-g-ikev2)',
  [NotifyType.STATE_NOT_FOUND]: 'RFC 9370',
  [NotifyType.INITIAL_CONTACT]: 'RFC 7296',
  [NotifyType.SET_WINDOW_SIZE]: 'RFC 7296',
  [NotifyType.ADDITIONAL_TS_POSSIBLE]: 'RFC 7296',
  [NotifyType.IPCOMP_SUPPORTED]: 'RFC 7296',
  [NotifyType.NAT_DETECTION_SOURCE_IP]: 'RFC 7296',
  [NotifyType.NAT_DETECTION_DESTINATION_IP]: 'RFC 7296',
  [NotifyType.COOKIE]: 'RFC 7296',
  [NotifyType.USE_TRANSPORT_MODE]: 'RFC 7296',
  [NotifyType.HTTP_CERT_LOOKUP_SUPPORTED]: 'RFC 7296',
  [NotifyType.REKEY_SA]: 'RFC 7296',
  [NotifyType.ESP_TFC_PADDING_NOT_SUPPORTED]: 'RFC 7296',
  [NotifyType.NON_FIRST_FRAGMENTS_ALSO]: 'RFC 7296',
  [NotifyType.MOBIKE_SUPPORTED]: 'RFC 4555',
  [NotifyType.ADDITIONAL_IP4_ADDRESS]: 'RFC 4555',
  [NotifyType.ADDITIONAL_IP6_ADDRESS]: 'RFC 4555',
  [NotifyType.NO_ADDITIONAL_ADDRESSES]: 'RFC 4555',
  [NotifyType.UPDATE_SA_ADDRESSES]: 'RFC 4555',
  [NotifyType.COOKIE2]: 'RFC 4555',
  [NotifyType.NO_NATS_ALLOWED]: 'RFC 4555',
  [NotifyType.AUTH_LIFETIME]: 'RFC 4478',
  [NotifyType.MULTIPLE_AUTH_SUPPORTED]: 'RFC 4739',
  [NotifyType.ANOTHER_AUTH_FOLLOWS]: 'RFC 4739',
  [NotifyType.REDIRECT_SUPPORTED]: 'RFC 5685',
  [NotifyType.REDIRECT]: 'RFC 5685',
  [NotifyType.REDIRECTED_FROM]: 'RFC 5685',
  [NotifyType.TICKET_LT_OPAQUE]: 'RFC 5723',
  [NotifyType.TICKET_REQUEST]: 'RFC 5723',
  [NotifyType.TICKET_ACK]: 'RFC 5723',
  [NotifyType.TICKET_NACK]: 'RFC 5723',
  [NotifyType.TICKET_OPAQUE]: 'RFC 5723',
  [NotifyType.LINK_ID]: 'RFC 5739',
  [NotifyType.USE_WESP_MODE]: 'RFC 5840',
  [NotifyType.ROHC_SUPPORTED]: 'RFC 5857',
  [NotifyType.EAP_ONLY_AUTHENTICATION]: 'RFC 5998',
  [NotifyType.CHILDLESS_IKEV2_SUPPORTED]: 'RFC 6023',
  [NotifyType.QUICK_CRASH_DETECTION]: 'RFC 6290',
  [NotifyType.IKEV2_MESSAGE_ID_SYNC_SUPPORTED]: 'RFC 6311',
  [NotifyType.IPSEC_REPLAY_COUNTER_SYNC_SUPPORTED]: 'RFC 6311',
  [NotifyType.IKEV2_MESSAGE_ID_SYNC]: 'RFC 6311',
  [NotifyType.IPSEC_REPLAY_COUNTER_SYNC]: 'RFC 6311',
  [NotifyType.SECURE_PASSWORD_METHODS]: 'RFC 6467',
  [NotifyType.PSK_PERSIST]: 'RFC 6631',
  [NotifyType.PSK_CONFIRM]: 'RFC 6631',
  [NotifyType.ERX_SUPPORTED]: 'RFC 6867',
  [NotifyType.IFOM_CAPABILITY]: '3GPP TS 24.303',
  [NotifyType.GROUP_SENDER]: 'G-IKEv2 (formerly SENDER_REQUEST_ID)',
  [NotifyType.IKEV2_FRAGMENTATION_SUPPORTED]: 'RFC 7383',
  [NotifyType.SIGNATURE_HASH_ALGORITHMS]: 'RFC 7427',
  [NotifyType.CLONE_IKE_SA_SUPPORTED]: 'RFC 7791',
  [NotifyType.CLONE_IKE_SA]: 'RFC 7791',
  [NotifyType.PUZZLE]: 'RFC 8019',
  [NotifyType.USE_PPK]: 'RFC 8784',
  [NotifyType.PPK_IDENTITY]: 'RFC 8784',
  [NotifyType.NO_PPK_AUTH]: 'RFC 8784',
  [NotifyType.INTERMEDIATE_EXCHANGE_SUPPORTED]: 'RFC 9242',
  [NotifyType.IP4_ALLOWED]: 'RFC 8983',
  [NotifyType.IP6_ALLOWED]: 'RFC 8983',
  [NotifyType.ADDITIONAL_KEY_EXCHANGE]: 'RFC 9370',
  [NotifyType.USE_AGGFRAG]: 'RFC 9347',
  [NotifyType.SUPPORTED_AUTH_METHODS]: 'RFC 9593',
  [NotifyType.SA_RESOURCE_INFO]: 'RFC 9611',
  [NotifyType.USE_PPK_INT]: 'RFC 9867',
  [NotifyType.PPK_IDENTITY_KEY]: 'RFC 9867',
};

/** First status type; everything below is an error type (§3.10.1). */
export const FIRST_STATUS_NOTIFY = 16384;

/** True for Notify Message Types 0–16383 (errors), known or not. */
export function isErrorNotify(type: number): boolean {
  return type < FIRST_STATUS_NOTIFY;
}

/** True if tunsec has a name for this type. */
export function isKnownNotify(type: number): type is NotifyType {
  return Object.prototype.hasOwnProperty.call(NOTIFY_TYPE_REFERENCES, type);
}

/**
 * IANA name of a Notify Message Type, e.g. 16430 → "IKEV2_FRAGMENTATION_SUPPORTED".
 * Unknown types read "UNKNOWN_ERROR_<n>" or "UNKNOWN_STATUS_<n>".
 */
export function notifyTypeName(type: number): string {
  if (isKnownNotify(type)) return NotifyType[type];
  return `${isErrorNotify(type) ? 'UNKNOWN_ERROR' : 'UNKNOWN_STATUS'}_${type}`;
}

/** The Notify Message Type with this IANA name (exact spelling), or undefined. */
export function notifyTypeFromName(name: string): NotifyType | undefined {
  const value = (NotifyType as unknown as Record<string, number | string>)[name];
  return typeof value === 'number' ? (value as NotifyType) : undefined;
}
