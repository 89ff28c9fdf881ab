/** Exchange mechanics (RFC 7296 §2.1-§2.4): message ID windows, the response cache and request retransmission. */
export type { TimerHandle, Timers } from './timers.js';
export { systemTimers } from './timers.js';
export type { PeerUnreachable, RetransmitSettings, RetransmitterOptions, RetransmitterState } from './retransmit.js';
export { DEFAULT_RETRANSMIT, Retransmitter, retransmitInterval, retransmitSchedule, retransmitSettings } from './retransmit.js';
export type { RequestVerdict, RequestWindowCounters, ResponseMatch, ResponseWindowCounters } from './message-id.js';
export { MAX_MESSAGE_ID, MESSAGE_ID_REKEY_THRESHOLD, RequestWindow, ResponseWindow } from './message-id.js';
