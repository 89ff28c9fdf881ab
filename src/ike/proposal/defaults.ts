/**
 * What the keyword `default` stands for, and what a proposal list without the
 * strict `!` gets appended.
 *
 * Shaped like strongSwan's defaults (a classic and an AEAD proposal for IKE,
 * AEAD first for ESP, every key exchange method optional in ESP), restricted
 * to algorithms of at least 128-bit security strength: strongSwan's second
 * rounds (3DES, SHA-1, AES-XCBC/CMAC, PRF_HMAC_SHA1) and its rarely used
 * ciphers (AES-CTR, AES-CCM, Camellia, 8/12-octet ICVs) are left out.
 * Written as proposal strings so they read like configuration.
 */
import { ProtocolId } from '../transforms.js';
import type { ProposalProtocol } from './types.js';

const KE_METHODS = [
  'curve25519',
  'ecp256',
  'ecp384',
  'ecp521',
  'ecp256bp',
  'ecp384bp',
  'ecp512bp',
  'curve448',
  'modp3072',
  'modp4096',
  'modp6144',
  'modp8192',
  'modp2048',
].join('-');

const PRFS = 'prfsha256-prfsha384-prfsha512';

export const DEFAULT_PROPOSAL_STRINGS: Readonly<Record<ProposalProtocol, readonly string[]>> = {
  [ProtocolId.IKE]: [
    `aes128-aes192-aes256-sha256-sha384-sha512-${PRFS}-${KE_METHODS}`,
    `aes128gcm16-aes192gcm16-aes256gcm16-chacha20poly1305-${PRFS}-${KE_METHODS}`,
  ],
  [ProtocolId.ESP]: [`aes128gcm16-aes192gcm16-aes256gcm16-${KE_METHODS}-none-noesn`, `aes128-aes192-aes256-sha256-sha384-sha512-${KE_METHODS}-none-noesn`],
  [ProtocolId.AH]: [`sha256-sha384-sha512-${KE_METHODS}-none-noesn`],
};
