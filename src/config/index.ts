/** tunsec's YAML configuration: see docs/configuration.md. */
export type { ConfigSource, LoadResult } from './load.js';
export { loadConfig, loadConfigOrThrow } from './load.js';
export type { ConfigProblem } from './problems.js';
export { ConfigError, describeProblem, formatProblem } from './problems.js';
export type * from './types.js';
export { parseIdentity } from './identity.js';
export { parseTrafficSelector } from '../ike/ts/syntax.js';
export { formatDuration, parseByteCount, parseDuration, parsePacketCount } from './units.js';
export { REKEY_MARGIN_SECONDS } from './lifetimes.js';
export { LOG_SUBSYSTEMS, MAX_REPLAY_WINDOW } from './schema.js';
