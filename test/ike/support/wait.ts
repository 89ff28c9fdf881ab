/** Resolve once `cond()` holds (checked every `everyMs`), reject after `ms` naming `what`. */
export function waitUntil(cond: () => boolean, ms = 8000, what = 'condition', everyMs = 5): Promise<void> {
  return new Promise((resolve, reject) => {
    const start = Date.now();
    const tick = (): void => {
      if (cond()) return resolve();
      if (Date.now() - start > ms) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, everyMs);
    };
    tick();
  });
}
