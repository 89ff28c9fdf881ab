/**
 * Address octets shared between SAD entries and SPD selectors.
 *
 * Every SA and policy between the same two hosts names the same addresses (a host-to-host
 * CHILD_SA has six of them per SA and side: outer local/remote and the selectors' start/end), and
 * a 4- or 16-octet Buffer of its own costs ~230 bytes (object, ArrayBuffer, backing store). The
 * packet path only reads these octets, so one Buffer per address text serves every holder while
 * any of them is alive; a weak reference lets the last holder's collection drop it.
 */
import { parseIp } from '../util/ip.js';

const interned = new Map<string, WeakRef<Buffer>>();
const collected = new FinalizationRegistry<string>((text) => {
  // only if the entry was not replaced by a newer Buffer for the same text meanwhile
  if (interned.get(text)?.deref() === undefined) interned.delete(text);
});

/** The octets of the IP address `text` (shared, never to be written), or undefined if it is not one. */
export function addressOctets(text: string): Buffer | undefined {
  const known = interned.get(text)?.deref();
  if (known) return known;
  const parsed = parseIp(text);
  if (!parsed) return undefined;
  interned.set(text, new WeakRef(parsed));
  collected.register(parsed, text);
  return parsed;
}
