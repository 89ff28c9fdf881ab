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
import { CryptoError, type AeadAlgorithm, type AeadContext, type Prf } from '../../crypto/types.js';
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

/**
 * The SK_* of `keys` copied into one ArrayBuffer (views of it), the originals
 * wiped: seven keys held for the IKE SA's life cost one allocation instead of
 * seven (docs/notes/memory.md).
 */
const NO_KEY = Buffer.alloc(0);

function inOneAllocation(keys: IkeSaKeys): IkeSaKeys {
  const names = Object.keys(keys) as Array<keyof IkeSaKeys>;
  const arena = Buffer.alloc(names.reduce((n, k) => n + keys[k].length, 0));
  let at = 0;
  const out = {} as IkeSaKeys;
  for (const k of names) {
    arena.set(keys[k], at);
    // SK_ai / SK_ar are empty with AEAD ciphers (RFC 5282 §5): one shared empty view for all
    out[k] = keys[k].length === 0 ? NO_KEY : arena.subarray(at, at + keys[k].length);
    at += keys[k].length;
    keys[k].fill(0);
  }
  return out;
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
  const keys = inOneAllocation(
    deriveIkeSaKeys({
      prf,
      skeyseed,
      Ni: input.Ni,
      Nr: input.Nr,
      spiI: input.spiI,
      spiR: input.spiR,
      encrKeyMaterialLength: aead.keyMaterialLength,
      integKeyLength: 0,
    }),
  );
  skeyseed.fill(0);
  return new IkeKeyset(prf, keys, new OnDemandAead(aead, keys.SK_ei), new OnDemandAead(aead, keys.SK_er));
}

/**
 * An SK_e context (RFC 5282) that keys a cipher for each message only: an IKE
 * SA seals or opens a message now and then (DPD, rekeys), and a context kept
 * keyed costs several KiB of OpenSSL state per direction and IKE SA
 * (docs/notes/memory.md). The key material is the keyset's SK_ei/SK_er, wiped
 * when the keyset is destroyed; using the context after that throws.
 */
class OnDemandAead implements AeadContext {
  readonly implementation: AeadContext['implementation'];
  private destroyed = false;

  constructor(
    readonly algorithm: AeadAlgorithm,
    private readonly material: Buffer,
  ) {
    const probe = algorithm.createContext(material);
    this.implementation = probe.implementation;
    probe.destroy();
  }

  private use<T>(op: (ctx: AeadContext) => T): T {
    if (this.destroyed) throw new CryptoError('AEAD context used after destroy()');
    const ctx = this.algorithm.createContext(this.material);
    try {
      return op(ctx);
    } finally {
      ctx.destroy();
    }
  }

  seal(iv: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Buffer {
    return this.use((c) => c.seal(iv, aad, plaintext));
  }

  open(iv: Uint8Array, aad: Uint8Array, ciphertextAndIcv: Uint8Array): Buffer | null {
    return this.use((c) => c.open(iv, aad, ciphertextAndIcv));
  }

  sealInPlace(buf: Uint8Array, ivOff: number, aad: Uint8Array, ptOff: number, ptLen: number): void {
    this.use((c) => c.sealInPlace(buf, ivOff, aad, ptOff, ptLen));
  }

  openInPlace(buf: Uint8Array, ivOff: number, aad: Uint8Array, ctOff: number, ctLen: number): boolean {
    return this.use((c) => c.openInPlace(buf, ivOff, aad, ctOff, ctLen));
  }

  destroy(): void {
    this.destroyed = true;
  }
}
