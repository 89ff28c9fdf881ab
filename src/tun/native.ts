/**
 * The native addon as src/tun sees it. The loader and typings live in src/native/addon.ts
 * (shared with src/crypto); this module re-exports them for existing importers.
 */
export { loadNative, nativeAvailable, OffloadStat } from '../native/addon.js';
export type { NativeAddon, NativeConstants, NativePoller } from '../native/addon.js';
