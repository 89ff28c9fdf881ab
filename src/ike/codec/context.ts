/**
 * What a payload decoder may need to know about the message around it, and
 * the generic payload header fields (RFC 7296 §3.2) every payload keeps.
 */

export interface DecodeContext {
  /**
   * The R (Response) flag of the message. A request's SA payload numbers its
   * proposals 1, 2, 3, ...; a response echoes the number of the one chosen
   * (§3.3.1).
   */
  isResponse: boolean;
}

/**
 * RESERVED bits: RFC 7296 says they MUST be sent as zero and MUST be ignored
 * on receipt. tunsec ignores them for every decision, but the decoder keeps
 * any non-zero value it sees in an optional `reserved`/`headerReserved`
 * field so that re-encoding a decoded message reproduces its octets exactly
 * (and an AUTH computed over a received ID payload body sees what the peer
 * signed). Code that builds messages leaves those fields out: they are then
 * zero on the wire, as the RFC requires.
 */
export interface GenericHeaderFields {
  /**
   * The Critical bit (§3.2). Only meaningful for payload types the receiver
   * does not know; for known payloads it is ignored on receipt. Kept when set.
   */
  critical?: boolean;
  /** The 7 RESERVED bits after the Critical bit, only when non-zero. */
  headerReserved?: number;
}
