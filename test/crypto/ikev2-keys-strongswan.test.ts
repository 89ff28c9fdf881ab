/**
 * IKEv2 key derivation against a real peer: the recorded strongSwan 5.9.8
 * exchange in test/fixtures/strongswan-5.9.8-ecp384bp-demo (proposal
 * aes128gcm16-prfsha384-ecp384bp; moon 10.77.0.1 initiates everything).
 *
 * Inputs come from the wire (exchange.pcap): SPIs from the IKE headers,
 * nonces from the Nonce payloads of IKE_SA_INIT and, for the rekeys, of the
 * CREATE_CHILD_SA exchanges, whose Encrypted payloads are opened here with
 * the derived SK_ei/SK_er (AES-GCM-16-128, RFC 5282). The D-H secrets come
 * from the charon logs (level 4 prints them; the private values are not
 * logged). Expected values: the logs' SKEYSEED / Sk_* / CHILD_SA key dumps
 * and the tshark key files in wireshark-keys/.
 *
 * The IKE codec is being written elsewhere; this file walks payload chains
 * with a minimal local reader (RFC 7296 §3.2 generic payload header).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AES_GCM_16_128 } from '../../src/crypto/aead.js';
import { PRF_HMAC_SHA2_384 } from '../../src/crypto/prf.js';
import { deriveChildKeymat, deriveIkeSaKeys, deriveRekeyedSkeyseed, deriveSkeyseed, wipe, type IkeSaKeys } from '../../src/crypto/ikev2-keys.js';
import { CryptoError } from '../../src/crypto/types.js';
import { dumpsLabelled } from '../support/charon-log.js';
import { demoFile } from '../support/fixture.js';
import { readIkeMessages, type UdpDatagram } from '../support/pcap.js';

const prf = PRF_HMAC_SHA2_384;
/** ENCR_AES_GCM_16 with 128-bit key: 16 octets of key + 4 of salt (RFC 5282 §7.1, RFC 4106 §8.1). */
const ENCR_KEY_MATERIAL = AES_GCM_16_128.keyMaterialLength;

// ---------------------------------------------------------------- wire walking

/** Payload types used here (RFC 7296 §3.2). */
const PT = { SA: 33, KE: 34, NONCE: 40, SK: 46 } as const;
const IKE_HEADER_LENGTH = 28;
const FLAG_INITIATOR = 0x08;

interface Payload {
  type: number;
  /** Payload body after the 4-octet generic payload header. */
  body: Buffer;
}

/** Walk a payload chain starting with `firstType` (RFC 7296 §3.2). An SK payload ends the chain. */
function walkPayloads(firstType: number, data: Buffer): Payload[] {
  const payloads: Payload[] = [];
  let type = firstType;
  let offset = 0;
  while (type !== 0) {
    const next = data[offset]!;
    const length = data.readUInt16BE(offset + 2);
    if (length < 4 || offset + length > data.length) throw new Error(`bad payload length ${length} at ${offset}`);
    payloads.push({ type, body: data.subarray(offset + 4, offset + length) });
    if (type === PT.SK) break; // its Next Payload names the first inner payload
    type = next;
    offset += length;
  }
  return payloads;
}

function only(payloads: Payload[], type: number): Buffer {
  const found = payloads.filter((p) => p.type === type);
  expect(found).toHaveLength(1);
  return found[0]!.body;
}

interface IkeMessage {
  frame: number;
  raw: Buffer;
  spiI: Buffer;
  spiR: Buffer;
  exchangeType: number;
  /** Sent by the original initiator of the IKE SA (Flags I bit). */
  fromInitiator: boolean;
  messageId: number;
}

const wire = readIkeMessages(demoFile('exchange.pcap'));

function message(frame: number): IkeMessage {
  const d: UdpDatagram | undefined = wire.find((m) => m.frame === frame);
  if (d === undefined) throw new Error(`no IKE message in frame ${frame}`);
  const raw = d.payload;
  return {
    frame,
    raw,
    spiI: raw.subarray(0, 8),
    spiR: raw.subarray(8, 16),
    exchangeType: raw[18]!,
    fromInitiator: (raw[19]! & FLAG_INITIATOR) !== 0,
    messageId: raw.readUInt32BE(20),
  };
}

function clearPayloads(m: IkeMessage): Payload[] {
  return walkPayloads(m.raw[16]!, m.raw.subarray(IKE_HEADER_LENGTH));
}

/**
 * Open the Encrypted payload (RFC 7296 §3.14) of a message that has only that
 * payload, with AES-GCM (RFC 5282 §3, §5.1): IV = the 8 octets after the
 * generic payload header, ICV = the last 16 octets, AAD = the IKE header and
 * the Encrypted payload header (all octets before the IV). The plaintext ends
 * with Padding and a Pad Length octet.
 */
function openSk(m: IkeMessage, keys: IkeSaKeys): Payload[] {
  const [sk] = clearPayloads(m);
  expect(sk?.type).toBe(PT.SK);
  const skStart = IKE_HEADER_LENGTH;
  const firstInner = m.raw[skStart]!;
  const aad = m.raw.subarray(0, skStart + 4);
  const iv = sk!.body.subarray(0, 8);
  const ciphertextAndIcv = sk!.body.subarray(8);
  const ctx = AES_GCM_16_128.createContext(m.fromInitiator ? keys.SK_ei : keys.SK_er);
  const plaintext = ctx.open(iv, aad, ciphertextAndIcv);
  ctx.destroy();
  if (plaintext === null) throw new Error(`frame ${m.frame}: ICV does not verify`);
  const padLength = plaintext[plaintext.length - 1]!;
  return walkPayloads(firstInner, plaintext.subarray(0, plaintext.length - 1 - padLength));
}

/** Nonce Data of a Nonce payload body (RFC 7296 §3.9). */
const nonceData = (payloads: Payload[]): Buffer => only(payloads, PT.NONCE);

/** KE payload body: D-H Group Num, RESERVED, Key Exchange Data (RFC 7296 §3.4). */
function keGroup(payloads: Payload[]): { group: number; dataLength: number } {
  const body = only(payloads, PT.KE);
  return { group: body.readUInt16BE(0), dataLength: body.length - 4 };
}

/** SPI of the single proposal in an SA payload (RFC 7296 §3.3.1: Proposal header, SPI Size at octet 6). */
function proposalSpi(payloads: Payload[]): Buffer {
  const sa = only(payloads, PT.SA);
  expect(sa[0]).toBe(0); // last proposal
  const spiSize = sa[6]!;
  return sa.subarray(8, 8 + spiSize);
}

// ------------------------------------------------------------------ logged keys

const moonLog = demoFile('moon-initiator.charon.log');
const sunLog = demoFile('sun-responder.charon.log');
const logged = (label: string): Buffer[] => {
  const moon = dumpsLabelled(moonLog, label);
  // both daemons log the same secrets (a cheap check the fixture is self-consistent)
  expect(dumpsLabelled(sunLog, label)).toEqual(moon);
  return moon;
};

/** wireshark-keys/ikev2_decryption_table rows: SPIi,SPIr,SK_ei,SK_er,"encr",SK_ai,SK_ar,"integ". */
const ikeTable = readFileSync(demoFile('wireshark-keys/ikev2_decryption_table'), 'utf8')
  .trim()
  .split('\n')
  .map((line) => {
    const [spiI, spiR, skEi, skEr] = line.split(',');
    return { spiI: spiI!, spiR: spiR!, skEi: skEi!, skEr: skEr! };
  });

/** wireshark-keys/esp_sa rows: "IPv4","src","dst","0xSPI","encr","0xkey","integ","0x". */
const espTable = readFileSync(demoFile('wireshark-keys/esp_sa'), 'utf8')
  .trim()
  .split('\n')
  .map((line) => {
    const f = line.split(',').map((s) => s.replace(/^"|"$/g, ''));
    return { src: f[1]!, dst: f[2]!, spi: f[3]!.replace(/^0x/, ''), key: f[5]!.replace(/^0x/, '') };
  });

const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex');

// ------------------------------------------------------------------ the exchange

// Frames 8/9: IKE_SA_INIT; 31/32: CREATE_CHILD_SA rekeying the CHILD_SA (PFS);
// 35/36: CREATE_CHILD_SA rekeying the IKE SA; 43/44: INFORMATIONAL on the new IKE SA.
const initRequest = message(8);
const initResponse = message(9);

describe('the recorded exchange, as far as key derivation needs it', () => {
  it('frames 8/9 are the IKE_SA_INIT request and response, with group 29 (brainpoolP384r1) KE payloads', () => {
    expect([initRequest.exchangeType, initResponse.exchangeType]).toEqual([34, 34]);
    expect(initRequest.fromInitiator).toBe(true);
    expect(initResponse.fromInitiator).toBe(false);
    expect(hexOf(initRequest.spiR)).toBe('0000000000000000');
    expect(initResponse.spiI).toEqual(initRequest.spiI);
    for (const m of [initRequest, initResponse]) {
      expect(keGroup(clearPayloads(m))).toEqual({ group: 29, dataLength: 96 });
    }
    expect(logged('shared Diffie Hellman secret')).toHaveLength(2);
  });
});

describe('RFC 7296 §2.14: the initial IKE SA reproduces strongSwan', () => {
  const Ni = nonceData(clearPayloads(initRequest));
  const Nr = nonceData(clearPayloads(initResponse));
  const spiI = initResponse.spiI;
  const spiR = initResponse.spiR;
  const gir = logged('shared Diffie Hellman secret')[0]!;

  it("SKEYSEED = prf(Ni | Nr, g^ir) with HMAC-SHA-384 equals moon's and sun's logged SKEYSEED", () => {
    expect(Ni).toHaveLength(32);
    expect(Nr).toHaveLength(32);
    expect(gir).toHaveLength(48);
    expect(hexOf(deriveSkeyseed(prf, Ni, Nr, gir))).toBe(hexOf(logged('SKEYSEED')[0]!));
  });

  it('prf+ (SKEYSEED, Ni | Nr | SPIi | SPIr) yields the logged Sk_d, Sk_ei, Sk_er, Sk_pi, Sk_pr (AEAD: no SK_a)', () => {
    const keys = deriveIkeSaKeys({
      prf,
      skeyseed: deriveSkeyseed(prf, Ni, Nr, gir),
      Ni,
      Nr,
      spiI,
      spiR,
      encrKeyMaterialLength: ENCR_KEY_MATERIAL,
      integKeyLength: 0,
    });
    expect(hexOf(keys.SK_d)).toBe(hexOf(logged('Sk_d secret')[0]!));
    expect(hexOf(keys.SK_ei)).toBe(hexOf(logged('Sk_ei secret')[0]!));
    expect(hexOf(keys.SK_er)).toBe(hexOf(logged('Sk_er secret')[0]!));
    expect(hexOf(keys.SK_pi)).toBe(hexOf(logged('Sk_pi secret')[0]!));
    expect(hexOf(keys.SK_pr)).toBe(hexOf(logged('Sk_pr secret')[0]!));
    expect(keys.SK_ai).toHaveLength(0);
    expect(keys.SK_ar).toHaveLength(0);
    // and the first row of the tshark decryption table
    expect(ikeTable[0]).toEqual({ spiI: hexOf(spiI), spiR: hexOf(spiR), skEi: hexOf(keys.SK_ei), skEr: hexOf(keys.SK_er) });
  });
});

/** Everything derived from the initial exchange; built once, used by the rekey tests. */
function initialIkeSa(): { keys: IkeSaKeys; Ni: Buffer; Nr: Buffer } {
  const Ni = nonceData(clearPayloads(initRequest));
  const Nr = nonceData(clearPayloads(initResponse));
  const skeyseed = deriveSkeyseed(prf, Ni, Nr, logged('shared Diffie Hellman secret')[0]!);
  const keys = deriveIkeSaKeys({
    prf,
    skeyseed,
    Ni,
    Nr,
    spiI: initResponse.spiI,
    spiR: initResponse.spiR,
    encrKeyMaterialLength: ENCR_KEY_MATERIAL,
    integKeyLength: 0,
  });
  return { keys, Ni, Nr };
}

describe('RFC 7296 §2.17: CHILD_SA keying material reproduces strongSwan', () => {
  it('the first CHILD_SA (IKE_AUTH, no PFS): KEYMAT = prf+(SK_d, Ni | Nr) gives the logged ESP keys and esp_sa rows 1-2', () => {
    const { keys, Ni, Nr } = initialIkeSa();
    // charon logs the prf+ seed: here exactly Ni | Nr of IKE_SA_INIT
    expect(hexOf(logged('seed')[0]!)).toBe(hexOf(Buffer.concat([Ni, Nr])));
    const keymat = deriveChildKeymat({ prf, skD: keys.SK_d, Ni, Nr, encrKeyMaterialLength: ENCR_KEY_MATERIAL, integKeyLength: 0 });
    expect(hexOf(keymat.initiatorToResponder.encr)).toBe(hexOf(logged('encryption initiator key')[0]!));
    expect(hexOf(keymat.responderToInitiator.encr)).toBe(hexOf(logged('encryption responder key')[0]!));
    expect(keymat.initiatorToResponder.integ).toHaveLength(0);
    expect(keymat.responderToInitiator.integ).toHaveLength(0);
    // moon (10.77.0.1) initiated: its outbound SA carries the initiator→responder key
    expect(espTable[0]).toMatchObject({ src: '10.77.0.1', dst: '10.77.0.2', key: hexOf(keymat.initiatorToResponder.encr) });
    expect(espTable[1]).toMatchObject({ src: '10.77.0.2', dst: '10.77.0.1', key: hexOf(keymat.responderToInitiator.encr) });
  });

  it('the rekeyed CHILD_SA (CREATE_CHILD_SA with PFS): KEYMAT = prf+(SK_d, g^ir (new) | Ni | Nr) gives the logged keys and esp_sa rows 3-4', () => {
    const { keys } = initialIkeSa();
    const request = message(31);
    const response = message(32);
    expect([request.exchangeType, response.exchangeType, request.messageId, response.messageId]).toEqual([36, 36, 2, 2]);
    const reqPayloads = openSk(request, keys);
    const respPayloads = openSk(response, keys);
    const Ni = nonceData(reqPayloads);
    const Nr = nonceData(respPayloads);
    expect(keGroup(reqPayloads)).toEqual({ group: 29, dataLength: 96 });
    expect(keGroup(respPayloads)).toEqual({ group: 29, dataLength: 96 });
    const gir = logged('DH secret')[0]!;
    expect(gir).toHaveLength(48);
    // charon's logged seed is g^ir | Ni | Nr, with the nonces of this exchange as they are on the wire
    expect(hexOf(logged('seed')[1]!)).toBe(hexOf(Buffer.concat([gir, Ni, Nr])));

    const keymat = deriveChildKeymat({ prf, skD: keys.SK_d, Ni, Nr, gir, encrKeyMaterialLength: ENCR_KEY_MATERIAL, integKeyLength: 0 });
    expect(hexOf(keymat.initiatorToResponder.encr)).toBe(hexOf(logged('encryption initiator key')[1]!));
    expect(hexOf(keymat.responderToInitiator.encr)).toBe(hexOf(logged('encryption responder key')[1]!));

    // The ESP SPIs come from the SA payloads: each side proposes the SPI it receives on (RFC 7296 §3.3.1),
    // so traffic moon→sun uses the SPI in sun's response.
    const moonInbound = hexOf(proposalSpi(reqPayloads));
    const sunInbound = hexOf(proposalSpi(respPayloads));
    expect(espTable[2]).toEqual({ src: '10.77.0.1', dst: '10.77.0.2', spi: sunInbound, key: hexOf(keymat.initiatorToResponder.encr) });
    expect(espTable[3]).toEqual({ src: '10.77.0.2', dst: '10.77.0.1', spi: moonInbound, key: hexOf(keymat.responderToInitiator.encr) });
  });

  it('with PFS the KEYMAT differs from what prf+(SK_d, Ni | Nr) alone would give', () => {
    const { keys } = initialIkeSa();
    const reqPayloads = openSk(message(31), keys);
    const respPayloads = openSk(message(32), keys);
    const noPfs = deriveChildKeymat({
      prf,
      skD: keys.SK_d,
      Ni: nonceData(reqPayloads),
      Nr: nonceData(respPayloads),
      encrKeyMaterialLength: ENCR_KEY_MATERIAL,
      integKeyLength: 0,
    });
    expect(hexOf(noPfs.initiatorToResponder.encr)).not.toBe(hexOf(logged('encryption initiator key')[1]!));
  });
});

describe('RFC 7296 §2.18: the rekeyed IKE SA reproduces strongSwan', () => {
  function rekeyExchange(): { Ni: Buffer; Nr: Buffer; newSpiI: Buffer; newSpiR: Buffer; oldKeys: IkeSaKeys } {
    const { keys } = initialIkeSa();
    const request = message(35);
    const response = message(36);
    expect([request.exchangeType, response.exchangeType, request.messageId, response.messageId]).toEqual([36, 36, 4, 4]);
    const reqPayloads = openSk(request, keys);
    const respPayloads = openSk(response, keys);
    expect(keGroup(reqPayloads)).toEqual({ group: 29, dataLength: 96 });
    expect(keGroup(respPayloads)).toEqual({ group: 29, dataLength: 96 });
    return {
      Ni: nonceData(reqPayloads),
      Nr: nonceData(respPayloads),
      // an IKE SA proposal carries the sender's new 8-octet IKE SPI (RFC 7296 §3.3.1)
      newSpiI: proposalSpi(reqPayloads),
      newSpiR: proposalSpi(respPayloads),
      oldKeys: keys,
    };
  }

  it('the CREATE_CHILD_SA (frames 35/36) opens with the old SK_ei/SK_er and carries SA, Nonce and KE with the new SPIs', () => {
    const { Ni, Nr, newSpiI, newSpiR } = rekeyExchange();
    expect(Ni).toHaveLength(32);
    expect(Nr).toHaveLength(32);
    expect(newSpiI).toHaveLength(8);
    expect(newSpiR).toHaveLength(8);
    // the frames sent on the new IKE SA (43/44) use exactly these SPIs
    expect(message(43).spiI).toEqual(newSpiI);
    expect(message(43).spiR).toEqual(newSpiR);
  });

  it('SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr) equals the second logged SKEYSEED', () => {
    const { Ni, Nr, oldKeys } = rekeyExchange();
    const gir = logged('shared Diffie Hellman secret')[1]!;
    expect(hexOf(deriveRekeyedSkeyseed(prf, oldKeys.SK_d, gir, Ni, Nr))).toBe(hexOf(logged('SKEYSEED')[1]!));
  });

  it('the new SK_* (new nonces, new SPIs) equal the logged ones, the second ikev2_decryption_table row, and open frames 43/44', () => {
    const { Ni, Nr, newSpiI, newSpiR, oldKeys } = rekeyExchange();
    const gir = logged('shared Diffie Hellman secret')[1]!;
    const keys = deriveIkeSaKeys({
      prf,
      skeyseed: deriveRekeyedSkeyseed(prf, oldKeys.SK_d, gir, Ni, Nr),
      Ni,
      Nr,
      spiI: newSpiI,
      spiR: newSpiR,
      encrKeyMaterialLength: ENCR_KEY_MATERIAL,
      integKeyLength: 0,
    });
    expect(hexOf(keys.SK_d)).toBe(hexOf(logged('Sk_d secret')[1]!));
    expect(hexOf(keys.SK_ei)).toBe(hexOf(logged('Sk_ei secret')[1]!));
    expect(hexOf(keys.SK_er)).toBe(hexOf(logged('Sk_er secret')[1]!));
    expect(hexOf(keys.SK_pi)).toBe(hexOf(logged('Sk_pi secret')[1]!));
    expect(hexOf(keys.SK_pr)).toBe(hexOf(logged('Sk_pr secret')[1]!));
    expect(ikeTable[1]).toEqual({ spiI: hexOf(newSpiI), spiR: hexOf(newSpiR), skEi: hexOf(keys.SK_ei), skEr: hexOf(keys.SK_er) });
    // The final DELETE exchange runs on the new IKE SA: only the new keys open it.
    expect(openSk(message(43), keys).map((p) => p.type)).toEqual([42]); // Delete
    expect(openSk(message(44), keys)).toEqual([]); // empty INFORMATIONAL response
    expect(() => openSk(message(43), oldKeys)).toThrow(/ICV does not verify/);
  });

  it("keying the new IKE SA with the old SPIs, as a buggy rekey would, does not give strongSwan's keys", () => {
    const { Ni, Nr, oldKeys } = rekeyExchange();
    const gir = logged('shared Diffie Hellman secret')[1]!;
    const wrong = deriveIkeSaKeys({
      prf,
      skeyseed: deriveRekeyedSkeyseed(prf, oldKeys.SK_d, gir, Ni, Nr),
      Ni,
      Nr,
      spiI: initResponse.spiI,
      spiR: initResponse.spiR,
      encrKeyMaterialLength: ENCR_KEY_MATERIAL,
      integKeyLength: 0,
    });
    expect(hexOf(wrong.SK_d)).not.toBe(hexOf(logged('Sk_d secret')[1]!));
  });
});

describe('every encrypted IKE message of the capture opens with the keys derived here', () => {
  it('all 16 SK/SKF payloads verify (old IKE SA for frames 10-38, rekeyed IKE SA for 43-44)', () => {
    const { keys } = initialIkeSa();
    let opened = 0;
    for (const d of wire) {
      const m = message(d.frame);
      if (m.exchangeType === 34) continue;
      const firstType = m.raw[16]!;
      if (firstType === 53) {
        // SKF (RFC 7383 §2.5): Fragment Number and Total Fragments (4 octets) precede the IV; AAD covers them too.
        const aad = m.raw.subarray(0, IKE_HEADER_LENGTH + 8);
        const body = m.raw.subarray(IKE_HEADER_LENGTH + 8);
        const ctx = AES_GCM_16_128.createContext(m.fromInitiator ? keys.SK_ei : keys.SK_er);
        expect(ctx.open(body.subarray(0, 8), aad, body.subarray(8)), `frame ${m.frame}`).not.toBeNull();
        opened++;
        continue;
      }
      if (d.frame >= 43) continue; // checked above with the rekeyed IKE SA's keys
      expect(() => openSk(m, keys), `frame ${m.frame}`).not.toThrow();
      opened++;
    }
    expect(opened).toBe(14);
  });
});

describe('key material API', () => {
  it('returns separate Buffers that wipe() zeroes, without touching the others', () => {
    const { keys, Ni, Nr } = initialIkeSa();
    const keymat = deriveChildKeymat({ prf, skD: keys.SK_d, Ni, Nr, encrKeyMaterialLength: 20, integKeyLength: 32 });
    const skD = Buffer.from(keys.SK_d);
    wipe(keymat);
    for (const k of [keymat.initiatorToResponder.encr, keymat.initiatorToResponder.integ, keymat.responderToInitiator.encr]) {
      expect(k.every((b) => b === 0)).toBe(true);
    }
    expect(keymat.initiatorToResponder.integ).toHaveLength(32);
    expect(keys.SK_d).toEqual(skD);
    wipe(keys);
    for (const k of Object.values(keys)) expect(k.every((b: number) => b === 0)).toBe(true);
    expect(keys.SK_d.buffer).not.toBe(keys.SK_ei.buffer);
  });

  it('rejects IKE SPIs that are not 8 octets and the fixed-key PRFs (AES128-XCBC, AES128-CMAC) of §2.14', () => {
    const base = { prf, skeyseed: Buffer.alloc(48), Ni: Buffer.alloc(32), Nr: Buffer.alloc(32), encrKeyMaterialLength: 20, integKeyLength: 0 };
    expect(() => deriveIkeSaKeys({ ...base, spiI: Buffer.alloc(4), spiR: Buffer.alloc(8) })).toThrow(CryptoError);
    const xcbc = { ...prf, transformId: 4, name: 'PRF_AES128_XCBC', compute: prf.compute.bind(prf) };
    const cmac = { ...xcbc, transformId: 8, name: 'PRF_AES128_CMAC' };
    for (const fixedKey of [xcbc, cmac]) {
      expect(() => deriveSkeyseed(fixedKey, Buffer.alloc(32), Buffer.alloc(32), Buffer.alloc(48))).toThrow(CryptoError);
      expect(() => deriveRekeyedSkeyseed(fixedKey, Buffer.alloc(16), Buffer.alloc(48), Buffer.alloc(32), Buffer.alloc(32))).toThrow(CryptoError);
    }
  });
});
