/** esp-raw: raw ESP as the raw sockets deliver it (IPv4 with its header, IPv6 bare) → PacketEngine.inbound. See fuzz/lib/esp.ts. */
import { espTarget } from '../lib/esp.js';

export const target = espTarget('esp-raw', false);
