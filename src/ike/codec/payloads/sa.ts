/**
 * Security Association payload (RFC 7296 §3.3): proposals, transforms and
 * transform attributes. Types only for now; the codec fills in parse/encode.
 */

/** Transform attribute (§3.3.5): TV format when `value` is a number (AF=1), TLV when a Buffer. */
export interface TransformAttribute {
  type: number;
  value: number | Buffer;
}

/** Transform substructure (§3.3.2). */
export interface TransformSubstructure {
  type: number;
  id: number;
  attributes: TransformAttribute[];
}

/** Proposal substructure (§3.3.1). `spi` is empty in IKE_SA_INIT, 8 octets for an IKE rekey, 4 for ESP/AH. */
export interface ProposalSubstructure {
  number: number;
  protocolId: number;
  spi: Buffer;
  transforms: TransformSubstructure[];
}
