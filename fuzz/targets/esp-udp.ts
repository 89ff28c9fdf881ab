/** esp-udp: ESP-in-UDP (RFC 3948) as the NAT-T socket hands it over (bare ESP) → PacketEngine.inbound. See fuzz/lib/esp.ts. */
import { espTarget } from '../lib/esp.js';

export const target = espTarget('esp-udp', true);
