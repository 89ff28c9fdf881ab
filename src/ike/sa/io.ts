/** What an IKE SA needs of the sockets (the daemon's IKE sockets, or a test's in-memory wire). */
import type { Endpoint } from '../net/udp.js';

export interface IkeSaIo {
  /** Send datagrams (one, or the fragments of one message) from `local` to `remote`. */
  send(local: Endpoint, remote: Endpoint, datagrams: Buffer[]): void;
  /** NAT-T port to float to (§2.23); 4500 in production. */
  readonly nattPort: number;
  /** Send a NAT-keepalive (RFC 3948 §2.3) from the NAT-T socket of `local`. */
  sendKeepalive?(local: Endpoint, remote: Endpoint): void;
  /** Milliseconds between keepalives while behind a NAT; 0 = none (default 20 s, charon.keep_alive). */
  readonly keepaliveMs?: number;
}
