/** Every fuzz target, by name (fuzz/run.ts runs them in this order). */
import type { FuzzTarget } from '../lib/target.js';
import { target as config } from './config.js';
import { target as control } from './control.js';
import { target as espRaw } from './esp-raw.js';
import { target as espUdp } from './esp-udp.js';
import { target as ikeEngine } from './ike-engine.js';
import { target as ikeMessage } from './ike-message.js';
import { target as ikeSk } from './ike-sk.js';
import { target as pki } from './pki.js';
import { target as vici } from './vici.js';

const TARGETS = {
  'ike-message': ikeMessage,
  'ike-sk': ikeSk,
  'ike-engine': ikeEngine,
  pki,
  'esp-raw': espRaw,
  'esp-udp': espUdp,
  config,
  control,
  vici,
} as const;

export type TargetName = keyof typeof TARGETS;
export const TARGET_NAMES = Object.keys(TARGETS) as TargetName[];

export async function loadTarget(name: string): Promise<FuzzTarget> {
  if (!Object.hasOwn(TARGETS, name)) throw new Error(`unknown target '${name}'; targets: ${TARGET_NAMES.join(', ')}`);
  return TARGETS[name as TargetName];
}
