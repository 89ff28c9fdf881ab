/**
 * The keys of an established IKE SA (RFC 7296 §2.14) in the form the
 * exchanges use them: the PRF, SK_d, SK_pi/SK_pr, and one AEAD context per
 * direction (SK_ei seals what the original initiator sends, SK_er what the
 * responder sends, RFC 5282). IVs for the SK payload come from a per-SA
 * counter so they never repeat under a key.
 */
import { aeadFor } from '../../crypto/aead.js';
import { deriveIkeSaKeys, deriveRekeyedSkeyseed, deriveSkeyseed, wipe, type IkeSaKeys } from '../../crypto/ikev2-keys.js';
import { prfFor } from '../../crypto/prf.js';
import type { AeadContext, Prf } from '../../crypto/types.js';
import { transformOfType, type SelectedProposal } from '../proposal/index.js';
import { TransformType } from '../transforms.js';

export class IkeKeyset {
  private ivCounter = 0n;
  private destroyed = false;

  constructor(
    readonly prf: Prf,
    private readonly keys: IkeSaKeys,
    /** Seals messages sent by the original initiator (SK_ei). */
    readonly aeadI: AeadContext,
    /** Seals messages sent by the original responder (SK_er). */
    readonly aeadR: AeadContext,
  ) {}

  get skD(): Buffer {
    return this.keys.SK_d;
  }
  get skPi(): Buffer {
    return this.keys.SK_pi;
  }
  get skPr(): Buffer {
    return this.keys.SK_pr;
  }
  /** SK_ei / SK_er (key ‖ salt): only for the key log (Wireshark's ikev2_decryption_table). */
  get skEi(): Buffer {
    return this.keys.SK_ei;
  }
  get skEr(): Buffer {
    return this.keys.SK_er;
  }

  /** The context sealing what `originalInitiator ? I : R` sends. */
  sealerFor(originalInitiator: boolean): AeadContext {
    return originalInitiator ? this.aeadI : this.aeadR;
  }

  /** A fresh 8-octet explicit IV (a counter; RFC 5282 §3.1 only needs uniqueness per key). */
  nextIv(): Buffer {
    const iv = Buffer.alloc(8);
    iv.writeBigUInt64BE(++this.ivCounter);
    return iv;
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.aeadI.destroy();
    this.aeadR.destroy();
    wipe(this.keys);
  }
}

export class UnsupportedSuiteError extends Error {
  override readonly name = 'UnsupportedSuiteError';
}

/** The PRF and AEAD of a selected IKE proposal; tunsec's IKE SAs use AEAD ciphers (RFC 5282) only. */
export function ikeSuite(selected: SelectedProposal): { prf: Prf; aead: NonNullable<ReturnType<typeof aeadFor>> } {
  const encr = transformOfType(selected, TransformType.ENCR);
  const prfT = transformOfType(selected, TransformType.PRF);
  const prf = prfT ? prfFor(prfT.id) : undefined;
  const aead = encr ? aeadFor(encr.id, encr.keyLength ?? 0) : undefined;
  if (!prf) throw new UnsupportedSuiteError(`IKE proposal has no supported PRF`);
  if (!aead) throw new UnsupportedSuiteError(`IKE proposal has no supported AEAD encryption (tunsec implements AES-GCM-16)`);
  return { prf, aead };
}

export interface IkeKeyInput {
  selected: SelectedProposal;
  Ni: Uint8Array;
  Nr: Uint8Array;
  gir: Uint8Array;
  spiI: Uint8Array;
  spiR: Uint8Array;
  /** For an IKE SA rekey (§2.18): the old SA's SK_d and PRF. */
  rekeyOf?: { skD: Uint8Array; prf: Prf };
}

/** SKEYSEED and SK_* for a new IKE SA (§2.14), or a rekeyed one (§2.18). */
export function deriveKeyset(input: IkeKeyInput): IkeKeyset {
  const { prf, aead } = ikeSuite(input.selected);
  const skeyseed = input.rekeyOf
    ? deriveRekeyedSkeyseed(input.rekeyOf.prf, input.rekeyOf.skD, input.gir, input.Ni, input.Nr)
    : deriveSkeyseed(prf, input.Ni, input.Nr, input.gir);
  const keys = deriveIkeSaKeys({
    prf,
    skeyseed,
    Ni: input.Ni,
    Nr: input.Nr,
    spiI: input.spiI,
    spiR: input.spiR,
    encrKeyMaterialLength: aead.keyMaterialLength,
    integKeyLength: 0,
  });
  skeyseed.fill(0);
  return new IkeKeyset(prf, keys, aead.createContext(keys.SK_ei), aead.createContext(keys.SK_er));
}
