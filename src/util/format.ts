/**
 * Small text formatting shared by every layer's log lines and messages, so an
 * SPI or a count reads the same in the ESP datapath, IKE and the daemon.
 */

/** An SPI as strongSwan and `ip xfrm` print it: eight lower-case hex digits (`c0ffee01`). */
export function spiHex(spi: number): string {
  return (spi >>> 0).toString(16).padStart(8, '0');
}

/** `1 problem`, `3 problems`, `2 children`: the count with the noun, in the plural (`many`, by default with an `s`) unless the count is one. */
export function plural(count: number, noun: string, many = `${noun}s`): string {
  return `${count} ${count === 1 ? noun : many}`;
}

/** The message of a thrown value (an Error's message, anything else as text). */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
