import { describe, expect, it } from 'vitest';
import {
  FIRST_STATUS_NOTIFY,
  NOTIFY_TYPE_REFERENCES,
  NotifyType,
  isErrorNotify,
  isKnownNotify,
  notifyTypeFromName,
  notifyTypeName,
} from '../../../src/ike/codec/index.js';

describe('Notify Message Type registry (RFC 7296 §3.10.1, IANA)', () => {
  it('has the RFC 7296 error numbers', () => {
    expect([
      NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD,
      NotifyType.INVALID_IKE_SPI,
      NotifyType.INVALID_MAJOR_VERSION,
      NotifyType.INVALID_SYNTAX,
      NotifyType.INVALID_MESSAGE_ID,
      NotifyType.INVALID_SPI,
      NotifyType.NO_PROPOSAL_CHOSEN,
      NotifyType.INVALID_KE_PAYLOAD,
      NotifyType.AUTHENTICATION_FAILED,
      NotifyType.SINGLE_PAIR_REQUIRED,
      NotifyType.NO_ADDITIONAL_SAS,
      NotifyType.INTERNAL_ADDRESS_FAILURE,
      NotifyType.FAILED_CP_REQUIRED,
      NotifyType.TS_UNACCEPTABLE,
      NotifyType.INVALID_SELECTORS,
      NotifyType.TEMPORARY_FAILURE,
      NotifyType.CHILD_SA_NOT_FOUND,
    ]).toEqual([1, 4, 5, 7, 9, 11, 14, 17, 24, 34, 35, 36, 37, 38, 39, 43, 44]);
  });

  it('has the status numbers of RFC 7296 and the extensions tunsec meets', () => {
    expect(NotifyType.INITIAL_CONTACT).toBe(16384);
    expect(NotifyType.NAT_DETECTION_SOURCE_IP).toBe(16388);
    expect(NotifyType.NAT_DETECTION_DESTINATION_IP).toBe(16389);
    expect(NotifyType.COOKIE).toBe(16390);
    expect(NotifyType.USE_TRANSPORT_MODE).toBe(16391);
    expect(NotifyType.REKEY_SA).toBe(16393);
    expect(NotifyType.MOBIKE_SUPPORTED).toBe(16396);
    expect(NotifyType.ADDITIONAL_IP4_ADDRESS).toBe(16397);
    expect(NotifyType.NO_NATS_ALLOWED).toBe(16402);
    expect(NotifyType.MULTIPLE_AUTH_SUPPORTED).toBe(16404);
    expect(NotifyType.ANOTHER_AUTH_FOLLOWS).toBe(16405);
    expect(NotifyType.REDIRECT_SUPPORTED).toBe(16406);
    expect(NotifyType.EAP_ONLY_AUTHENTICATION).toBe(16417);
    expect(NotifyType.CHILDLESS_IKEV2_SUPPORTED).toBe(16418);
    expect(NotifyType.IKEV2_MESSAGE_ID_SYNC_SUPPORTED).toBe(16420);
    expect(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED).toBe(16430);
    expect(NotifyType.SIGNATURE_HASH_ALGORITHMS).toBe(16431);
    expect(NotifyType.USE_PPK).toBe(16435);
    expect(NotifyType.INTERMEDIATE_EXCHANGE_SUPPORTED).toBe(16438);
    expect(NotifyType.USE_AGGFRAG).toBe(16442);
  });

  it('numbers the status types 16384..16446 without gaps and cites a reference for every entry', () => {
    const status = Object.keys(NOTIFY_TYPE_REFERENCES)
      .map(Number)
      .filter((n) => n >= FIRST_STATUS_NOTIFY)
      .sort((a, b) => a - b);
    expect(status).toEqual(Array.from({ length: 16446 - 16384 + 1 }, (_, i) => 16384 + i));
    for (const ref of Object.values(NOTIFY_TYPE_REFERENCES)) expect(ref).toMatch(/\S/);
  });

  it('maps names to numbers and back for every known type', () => {
    for (const n of Object.keys(NOTIFY_TYPE_REFERENCES).map(Number)) {
      expect(notifyTypeFromName(notifyTypeName(n))).toBe(n);
    }
    expect(notifyTypeFromName('IKEV2_FRAGMENTATION_SUPPORTED')).toBe(16430);
    expect(notifyTypeFromName('NOT_A_NOTIFY')).toBeUndefined();
    expect(notifyTypeFromName('toString')).toBeUndefined();
    expect(notifyTypeFromName('16430')).toBeUndefined();
  });

  it('names unknown types by their range and classifies them as errors below 16384 and status from 16384 on', () => {
    expect(notifyTypeName(8200)).toBe('UNKNOWN_ERROR_8200');
    expect(notifyTypeName(40000)).toBe('UNKNOWN_STATUS_40000');
    expect(isKnownNotify(8200)).toBe(false);
    expect(isErrorNotify(8200)).toBe(true);
    expect(isErrorNotify(16383)).toBe(true);
    expect(isErrorNotify(16384)).toBe(false);
    expect(isErrorNotify(NotifyType.COOKIE)).toBe(false);
    expect(isErrorNotify(NotifyType.NO_PROPOSAL_CHOSEN)).toBe(true);
  });
});
